import CDNNL
import KilnCore

// Helpers the neural-network framework kernels share: array pointers for oneDNN memory objects,
// op-descriptor plumbing, weights packed once into the layout a primitive chose, and the forward
// run of the weighted ops (convolution, deconvolution, inner product).

/// A 64-byte placeholder buffer that memory objects point at between runs; kernels set the real
/// pointer before every execution, so oneDNN never reads it.
nonisolated(unsafe) let placeholderBuffer: UnsafeMutableRawPointer = {
    let p = UnsafeMutableRawPointer.allocate(byteCount: 64, alignment: 64)
    p.initializeMemory(as: UInt8.self, repeating: 0, count: 64)
    return p
}()

/// Calls `body` with the element buffers of `arrays` as the untyped pointers oneDNN takes. oneDNN
/// only reads through them (they are sources); the arrays stay alive for the call.
func withSourcePointers<R>(_ arrays: ArraySlice<NDArray>, _ collected: [UnsafeMutableRawPointer] = [],
                           _ body: ([UnsafeMutableRawPointer]) throws -> R) rethrows -> R {
    guard let first = arrays.first else { return try body(collected) }
    return try first.withUnsafeBytes { bytes in
        let p = bytes.baseAddress.map { UnsafeMutableRawPointer(mutating: $0) } ?? placeholderBuffer
        return try withSourcePointers(arrays.dropFirst(), collected + [p], body)
    }
}

/// Calls `body` with an array's buffer for writing (copied first if shared, so the array owns what
/// oneDNN writes).
func withDestinationPointer<R>(_ array: inout NDArray, _ body: (UnsafeMutableRawPointer) throws -> R) rethrows -> R {
    try array.withUnsafeMutableBytes { try body($0.baseAddress ?? placeholderBuffer) }
}

extension DNNL {
    /// `dims` as the int64 array oneDNN's descriptor initializers read.
    static func int64s(_ v: [Int]) -> [Int64] { v.map { Int64($0) } }

    /// Creates a primitive from an op descriptor built by `initialize` (a `dnnl_*_desc_init` call).
    static func primitive<Desc>(_ empty: Desc, attr: dnnl_primitive_attr_t? = nil, node: String, what: String,
                                _ initialize: (UnsafeMutablePointer<Desc>) -> dnnl_status_t) throws -> DNNLPrimitive {
        var desc = empty
        try check(initialize(&desc), "\(what) descriptor init", node: node)
        return try withUnsafePointer(to: &desc) { try DNNLPrimitive(opDesc: UnsafeRawPointer($0), attr: attr, node: node, what: what) }
    }

    /// A memory object for a descriptor, pointing at the placeholder until a kernel sets its buffer.
    static func placeholderMemory(_ md: dnnl_memory_desc_t, node: String) throws -> DNNLMemory {
        try DNNLMemory(md, pointer: placeholderBuffer, node: node)
    }

    /// The implementation oneDNN picked for a primitive (`"brg:avx512_core"`, `"gemm:jit"`, `"ref:any"`).
    static func implementationName(_ p: DNNLPrimitive) -> String {
        var name: UnsafePointer<CChar>?
        guard dnnl_primitive_desc_query(p.desc, dnnl_query_impl_info_str, 0, &name) == dnnl_success, let name else { return "?" }
        return String(cString: name)
    }
}

/// Weights in the layout a primitive chose (`format_tag_any`), reordered from the caller's plain
/// array. The packed copy is reused while the same array comes back: the kernel keeps a reference
/// to it, so copy-on-write guarantees a changed weight arrives as a new buffer and is packed again.
final class PackedWeights {
    let node: String
    /// Over the caller's array.
    private let user: DNNLMemory
    /// The primitive's layout, in a buffer owned here; nil when the caller's layout already is it.
    private let packed: DNNLMemory?
    private let reorder: DNNLPrimitive?
    private var lastSource: NDArray?

    init(user userDesc: dnnl_memory_desc_t, chosen: dnnl_memory_desc_t, node: String) throws {
        self.node = node
        user = try DNNL.placeholderMemory(userDesc, node: node)
        if DNNL.equal(userDesc, chosen) {
            packed = nil
            reorder = nil
        } else {
            let target = try DNNLMemory(chosen, pointer: nil, node: node)
            var from = userDesc, to = chosen
            var pd: dnnl_primitive_desc_t?
            let engine = try DNNL.requireEngine(node: node)
            try DNNL.check(dnnl_reorder_primitive_desc_create(&pd, &from, engine, &to, engine, nil), "dnnl_reorder_primitive_desc_create(weights)", node: node)
            guard let pd else { throw RuntimeError.dnnl(call: "dnnl_reorder_primitive_desc_create(weights)", status: 5, node: node) }
            reorder = try DNNLPrimitive(primitiveDesc: pd, node: node, what: "weights reorder")
            packed = target
        }
    }

    /// Whether weights are reordered (false when the primitive reads the caller's layout).
    var reorders: Bool { packed != nil }

    /// The memory to pass as the primitive's weights for `weights`, whose buffer is `pointer`.
    func memory(for weights: NDArray, pointer: UnsafeMutableRawPointer, stream: DNNLStream) throws -> DNNLMemory {
        guard let packed, let reorder else {
            try user.setPointer(pointer, node: node)
            return user
        }
        if let last = lastSource, last.sharesStorage(with: weights) { return packed }
        try user.setPointer(pointer, node: node)
        try reorder.execute([(DNNLArg.from, user), (DNNLArg.to, packed)], stream: stream)
        lastSource = weights
        return packed
    }
}

/// Runs a forward primitive that reads data, packed weights and an optional bias (convolution,
/// deconvolution, inner product) on the arrays' own buffers.
func runWeightedForward(_ primitive: DNNLPrimitive, weights: PackedWeights, src: DNNLMemory, dst: DNNLMemory,
                        bias: DNNLMemory?, stream: DNNLStream, node: String,
                        _ inputs: [NDArray], _ outputs: inout [NDArray]) throws {
    try withSourcePointers(inputs[...]) { p in
        let w = try weights.memory(for: inputs[1], pointer: p[1], stream: stream)
        try src.setPointer(p[0], node: node)
        var args: [(Int32, DNNLMemory)] = [(DNNLArg.src, src), (DNNLArg.weights, w), (DNNLArg.dst, dst)]
        if let bias {
            try bias.setPointer(p[2], node: node)
            args.append((DNNLArg.bias, bias))
        }
        try withDestinationPointer(&outputs[0]) { out in
            try dst.setPointer(out, node: node)
            try primitive.execute(args, stream: stream)
        }
    }
}
