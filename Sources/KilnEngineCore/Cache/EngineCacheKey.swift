import KilnCore
import KilnGraph
import Synchronization

// An engine cache's key: SHA-256 of everything that decides what a compiled plan holds. The graph's
// part is the same for every engine; each engine adds the lines that decide its own code (the CPU
// engine its options, CPU features and oneDNN version; the cuda engine its precision, GPU
// architecture and library versions).
//
// ```
// key = SHA-256( "kiln-engine-plan format N\ngraph " | Hash128 of the graph: each node's op, name,
//                sorted attributes and inputs, each variable's shape and dtype and, for a constant,
//                the Hash128 of its bytes; the heads
//              | the engine's lines, in order )
// ```
//
// Weights are part of the key because plans store them folded: the same graph with other weights
// must not load a plan made for the old ones. They enter through their fast 128-bit digests
// (Hash128.swift), so keying a ResNet costs about a millisecond.

/// The key of a compiled engine group (see the file's note).
public enum EngineCacheKey {
    /// The key of a group compiled with these shapes, types and constants, for an engine whose
    /// compiled form also depends on `engineLines` (written after the graph, one per line), as 32 bytes.
    public static func compute(graph: Graph, shapes: InferredShapes, types: InferredTypes, constants: [String: NDArray],
                               formatVersion: Int, engineLines: [String]) -> [UInt8] {
        var h = SHA256()
        h.update("kiln-engine-plan format \(formatVersion)\ngraph ")
        h.update(graphDigest(graph: graph, shapes: shapes, types: types, constants: constants))
        h.update("\n" + engineLines.map { $0 + "\n" }.joined())
        return h.digest
    }

    /// Hash128 of the graph's description: integers as 8 little-endian bytes, strings as their length
    /// and UTF-8, so no two descriptions run together.
    public static func graphDigest(graph: Graph, shapes: InferredShapes, types: InferredTypes, constants: [String: NDArray]) -> [UInt8] {
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
        return text.withUnsafeBytes { Hash128.hash($0) }
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
}
