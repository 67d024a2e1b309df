import CDNNL
import Foundation
import KilnCore
import KilnGraph
import Synchronization

// The engine cache's key: SHA-256 of everything that decides what a compiled plan holds.
//
// ```
// key = SHA-256( format version
//                | Hash128 of the graph: each node's op, name, sorted attributes and inputs, each
//                  variable's shape and dtype and, for a constant, the Hash128 of its bytes; the heads
//                | compile options | CPU features | oneDNN version )
// ```
//
// Weights are part of the key because the plan stores them folded: the same graph with other
// weights must not load a plan made for the old ones. They enter through their fast 128-bit
// digests (Hash128.swift), so keying a ResNet costs about a millisecond.

enum CacheKey {
    /// The key of a group compiled with these shapes, types, constants and options, as 32 bytes.
    static func compute(graph: Graph, shapes: InferredShapes, types: InferredTypes, constants: [String: NDArray],
                        options: EngineOptions, numerics: String = "") -> [UInt8] {
        // The graph's description as bytes: integers as 8 little-endian bytes, strings as their length
        // and UTF-8, so no two descriptions run together. Hashed with Hash128; the key is SHA-256 over
        // that digest and the rest.
        var text: [UInt8] = []
        text.reserveCapacity(graph.nodes.count * 200)
        func put(_ v: Int) { withUnsafeBytes(of: Int64(v).littleEndian) { text.append(contentsOf: $0) } }
        func put(_ s: String) {
            put(s.utf8.count)
            text.append(contentsOf: s.utf8)
        }
        for (i, n) in graph.nodes.enumerated() {
            put(n.op)
            put(n.name)
            put(n.attributes.values.count)
            for k in n.attributes.values.keys.sorted() {
                put(k)
                put(n.attributes.values[k] ?? "")
            }
            put(n.inputs.count)
            for e in n.inputs {
                put(e.node)
                put(e.index)
            }
            guard n.isVariable else { continue }
            let shape = shapes.nodeOutputs[i][0]
            put(shape.rank)
            for d in shape.dims { put(d) }
            put(Int(types.nodeOutputs[i][0].rawValue))
            if let c = constants[n.name] {
                put(c.shape.rank)
                for d in c.shape.dims { put(d) }
                put(Int(c.dtype.rawValue))
                text.append(contentsOf: WeightDigests.shared.digest(of: c, name: n.name))
            } else {
                put(-1)
            }
        }
        put(graph.heads.count)
        for e in graph.heads {
            put(e.node)
            put(e.index)
        }
        var h = SHA256()
        h.update("kiln-engine-plan format \(PlanFile.formatVersion)\ngraph ")
        h.update(text.withUnsafeBytes { Hash128.hash($0) })
        h.update("\noptions \(options.compiledForm)\ncpu \(cpuFeatures)\nonednn \(oneDNNVersion)\n")
        // Algorithms chosen by timing depend on how many threads share the work.
        if options.tune && options.precision == .fp32 { h.update("threads \(threadCount)\n") }
        if !numerics.isEmpty { h.update("numerics \(numerics)\n") }
        return h.digest
    }

    /// Digests of weight arrays, remembered per variable name with the array itself. An array that
    /// shares its buffer with the remembered one has the same bytes (arrays are copy-on-write, and the
    /// reference held here makes any later write copy first), so binding the same weights again
    /// does not hash them again.
    final class WeightDigests: Sendable {
        static let shared = WeightDigests()
        private let remembered = Mutex<[String: (array: NDArray, digest: [UInt8])]>([:])

        func digest(of array: NDArray, name: String) -> [UInt8] {
            if let hit = remembered.withLock({ $0[name] }), hit.array.sharesStorage(with: array), hit.array.shape == array.shape,
               hit.array.dtype == array.dtype {
                return hit.digest
            }
            let digest = array.withUnsafeBytes { Hash128.hash($0) }
            remembered.withLock { d in
                if d.count > 4096 { d.removeAll() }
                d[name] = (array, digest)
            }
            return digest
        }
    }

    /// What decides which kernels oneDNN generates on this machine: the ISA it dispatches to, and the
    /// processor's model and cpuid flags as Linux reports them.
    /// The threads oneDNN's OpenMP runtime uses: OMP_NUM_THREADS when set, else every core.
    static var threadCount: Int {
        ProcessInfo.processInfo.environment["OMP_NUM_THREADS"].flatMap { Int($0.split(separator: ",").first ?? "") }
            ?? ProcessInfo.processInfo.activeProcessorCount
    }

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
