import CDNNL
import Foundation
import KilnCore
import KilnGraph

// The engine cache's key: SHA-256 of everything that decides what a compiled plan holds.
//
// ```
// key = SHA-256( format version | subgraph symbol JSON | each variable's name, shape, dtype
//                | the bytes of each constant (weights) | compile options | CPU features | oneDNN version )
// ```
//
// Weights are part of the key because the plan stores them folded: the same graph with other
// weights must not load a plan made for the old ones.

enum CacheKey {
    /// The key of a group compiled with these shapes, types, constants and options, as 32 bytes.
    static func compute(graph: Graph, shapes: InferredShapes, types: InferredTypes, constants: [String: NDArray],
                        options: EngineOptions) throws -> [UInt8] {
        var h = SHA256()
        h.update("kiln-engine-plan format \(PlanFile.formatVersion)\n")
        h.update(try graph.symbol.jsonString())
        for (i, n) in graph.nodes.enumerated() where n.isVariable {
            let shape = shapes.nodeOutputs[i][0], type = types.nodeOutputs[i][0]
            h.update("\nvariable \(n.name) \(shape.dims) \(type)")
            if let c = constants[n.name] {
                h.update(" constant \(c.shape.dims) \(c.dtype) ")
                c.withUnsafeBytes { h.update($0) }
            }
        }
        h.update("\noptions \(options.compiledForm)\ncpu \(cpuFeatures)\nonednn \(oneDNNVersion)\n")
        return h.digest
    }

    /// What decides which kernels oneDNN generates on this machine: the ISA it dispatches to, and the
    /// processor's model and cpuid flags as Linux reports them.
    static let cpuFeatures: String = {
        var parts = ["isa=\(dnnl_get_effective_cpu_isa().rawValue)"]
        if let text = try? String(contentsOfFile: "/proc/cpuinfo", encoding: .utf8) {
            for key in ["vendor_id", "model name", "flags"] {
                if let line = text.split(separator: "\n").first(where: { $0.hasPrefix(key) }),
                   let colon = line.firstIndex(of: ":") {
                    parts.append("\(key)=" + line[line.index(after: colon)...].trimmingCharacters(in: .whitespaces))
                }
            }
        }
        return parts.joined(separator: ";")
    }()

    /// oneDNN's version and build hash (`2.6.3 (hash ...)`).
    static let oneDNNVersion: String = {
        guard let v = dnnl_version() else { return "unknown" }
        let hash = v.pointee.hash.map { String(cString: $0) } ?? "?"
        return "\(v.pointee.major).\(v.pointee.minor).\(v.pointee.patch) (\(hash))"
    }()
}
