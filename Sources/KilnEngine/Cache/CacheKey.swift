import CDNNL
import Foundation
import KilnCore
import KilnGraph

// The engine cache's key: SHA-256 of everything that decides what a compiled plan holds.
//
// ```
// key = SHA-256( format version | each node: op, name, sorted attributes, inputs | heads
//                | each variable: name, shape, dtype, and for a constant the Hash128 of its bytes
//                | compile options | CPU features | oneDNN version )
// ```
//
// Weights are part of the key because the plan stores them folded: the same graph with other
// weights must not load a plan made for the old ones. They enter through their fast 128-bit
// digests (Hash128.swift), so keying a ResNet costs about a millisecond.

enum CacheKey {
    /// The key of a group compiled with these shapes, types, constants and options, as 32 bytes.
    static func compute(graph: Graph, shapes: InferredShapes, types: InferredTypes, constants: [String: NDArray],
                        options: EngineOptions) -> [UInt8] {
        var h = SHA256()
        h.update("kiln-engine-plan format \(PlanFile.formatVersion)\n")
        for (i, n) in graph.nodes.enumerated() {
            var line = "node \(i) \(n.op) \(n.name.utf8.count):\(n.name)"
            for k in n.attributes.values.keys.sorted() {
                let v = n.attributes.values[k] ?? ""
                line += " \(k.utf8.count):\(k)=\(v.utf8.count):\(v)"
            }
            line += " <- " + n.inputs.map { "\($0.node).\($0.index)" }.joined(separator: ",")
            if n.isVariable {
                line += " shape \(shapes.nodeOutputs[i][0].dims) \(types.nodeOutputs[i][0])"
                if let c = constants[n.name] {
                    line += " constant \(c.shape.dims) \(c.dtype) " + SHA256.hex(c.withUnsafeBytes { Hash128.hash($0) })
                }
            }
            h.update(line + "\n")
        }
        h.update("heads " + graph.heads.map { "\($0.node).\($0.index)" }.joined(separator: ",") + "\n")
        h.update("options \(options.compiledForm)\ncpu \(cpuFeatures)\nonednn \(oneDNNVersion)\n")
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
