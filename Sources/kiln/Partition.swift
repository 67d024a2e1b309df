import ArgumentParser
import Foundation
import Kiln

/// Explains what binding with the engine would do: each engine group and, for every node left to the
/// framework, why.
struct Partition: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Show how the engine would partition a model: its groups, the share of nodes and FLOPs offloaded, and why each other node stays in the framework.",
        discussion: """
            With --context gpu: the cuda engine's partition, then where each node left to the framework runs on \
            the GPU: on the GPU, or on the CPU with copies (an op with no GPU kernel), with the reason.
            """)

    @Option(help: "The symbol JSON file.") var symbol: String
    @Option(help: "The parameters file; its arrays count as weights known at bind.") var params: String?
    @Option(name: .customLong("shape"), help: "An input shape, NAME=D1,D2,... (e.g. data=1,3,32,32); repeat for several.")
    var shapes: [String] = []
    @Option(help: "Ops to keep out of engine groups, comma-separated (as KILN_ENGINE_EXCLUDE).") var exclude: String?
    @Option(parsing: .unconditional, help: "The smallest group worth an engine node (as KILN_ENGINE_MIN_GROUP).") var minGroup: Int?
    @Flag(help: "Print the report as JSON.") var json = false
    @Option(help: "Also write the partitioned symbol to this JSON file.") var output: String?
    @Option(help: "cpu (the CPU engine) or gpu / gpu(N) (the cuda engine, and the GPU framework's placements).") var context: String = "cpu"

    func validate() throws {
        try requireOption(minGroup.map { $0 >= 1 } ?? true, "--min-group", minGroup ?? 0, "give a group size of at least 1")
    }

    func run() throws {
        try reportingErrors {
            let sym = try Symbol.load(jsonFile: symbol)
            var args: [String: NDArray] = [:], aux: [String: NDArray] = [:]
            if let params { (args, aux) = try Checkpoint.loadParams(params) }
            var given: [String: Shape] = [:]
            for s in shapes { let (n, sh) = try parseShapeOption(s); given[n] = sh }
            var settings: [String: String] = [:]
            if let exclude { settings["exclude"] = exclude }
            if let minGroup { settings["min_group"] = String(minGroup) }
            let options = try EngineOptions(parsing: settings)
            let place = try parseContext(context)
            let (partitioned, report) = try sym.partitionedWithReport(for: place == .cpu ? .cpu(options) : .cuda(options),
                                                                      argParams: args, auxParams: aux, shapes: given)
            print(json ? report.json() : report.text(), terminator: "")
            if case let .gpu(ordinal) = place, !json {
                // Placement needs no GPU: it reads the GPU kernel table only.
                var known = given
                for (k, v) in args.merging(aux, uniquingKeysWith: { a, _ in a }) where known[k] == nil { known[k] = v.shape }
                let g = partitioned.graph
                let placements = CUDABackend(device: ordinal).placements(g, shapes: try g.inferShapes(known), types: try g.inferTypes([:]))
                    .filter { $0.op != "_kiln_engine" }
                print("\nOn gpu(\(ordinal)), nodes outside engine groups: \(placements.filter(\.onGPU).count) on the GPU, \(placements.filter { !$0.onGPU }.count) on the CPU with copies")
                for p in placements where !p.onGPU { print("  \(p.node) (\(p.op)): on the CPU, \(p.reason ?? "")") }
            }
            if let output {
                try partitioned.save(jsonFile: output)
                if !json { print("wrote the partitioned symbol to \(output)") }
            }
        }
    }
}
