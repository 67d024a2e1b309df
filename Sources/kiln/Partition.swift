import ArgumentParser
import Foundation
import Kiln

/// Explains what binding with the engine would do: each engine group and, for every node left to the
/// framework, why.
struct Partition: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Show how the CPU engine would partition a model: its groups, the share of nodes and FLOPs offloaded, and why each other node stays in the framework.")

    @Option(help: "The symbol JSON file.") var symbol: String
    @Option(help: "The parameters file; its arrays count as weights known at bind.") var params: String?
    @Option(name: .customLong("shape"), help: "An input shape, NAME=D1,D2,... (e.g. data=1,3,32,32); repeat for several.")
    var shapes: [String] = []
    @Option(help: "Ops to keep out of engine groups, comma-separated (as KILN_ENGINE_EXCLUDE).") var exclude: String?
    @Option(help: "The smallest group worth an engine node (as KILN_ENGINE_MIN_GROUP).") var minGroup: Int?
    @Flag(help: "Print the report as JSON.") var json = false
    @Option(help: "Also write the partitioned symbol to this JSON file.") var output: String?

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
            let (partitioned, report) = try sym.partitionedWithReport(for: .cpu(options), argParams: args, auxParams: aux, shapes: given)
            print(json ? report.json() : report.text(), terminator: "")
            if let output {
                try partitioned.save(jsonFile: output)
                if !json { print("wrote the partitioned symbol to \(output)") }
            }
        }
    }
}
