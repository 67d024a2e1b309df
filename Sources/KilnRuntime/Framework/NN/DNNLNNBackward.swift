import CDNNL
import KilnCore

// The pieces the neural-network framework kernels' backward passes are built from. oneDNN makes a
// backward primitive from a backward descriptor plus a forward-training primitive descriptor, the
// "hint" that tells it which layouts the forward chose:
//
//     forward (inference, at bind)      y  = conv(x, W) + b
//     hint    (training, first backward)     same descriptor, prop_kind forward_training
//     backward data                     dx = conv_bwd_data(dy, W)     W packed for this primitive
//     backward weights                  dW, db = conv_bwd_weights(x, dy)
//                                       dW comes in oneDNN's chosen layout and is reordered into
//                                       the caller's plain gradient array
//
// Activations and their gradients stay plain C order; only weights and weight gradients use the
// layouts oneDNN picks (`format_tag_any`), as in the forward kernels.

/// Argument slots of backward primitives (oneDNN's `DNNL_ARG_DIFF_*`, plain number macros).
enum NNGradientArg {
    static let diffSrc = Int32(DNNL_ARG_DIFF_SRC_0)
    static let diffDst = Int32(DNNL_ARG_DIFF_DST_0)
    static let diffWeights = Int32(DNNL_ARG_DIFF_WEIGHTS_0)
    static let diffBias = Int32(DNNL_ARG_DIFF_BIAS)
    static let diffScale = Int32(DNNL_ARG_DIFF_SCALE)
    static let diffShift = Int32(DNNL_ARG_DIFF_SHIFT)
}

/// A primitive descriptor that is only a forward hint for backward descriptors; destroyed with its owner.
final class NNForwardHint {
    let handle: dnnl_primitive_desc_t

    init<Desc>(_ empty: Desc, node: String, what: String, _ initialize: (UnsafeMutablePointer<Desc>) -> dnnl_status_t) throws {
        handle = try NNBackward.primitiveDesc(empty, hint: nil, node: node, what: what, initialize)
    }

    deinit { dnnl_primitive_desc_destroy(handle) }

    /// The memory descriptor the forward chose for an argument kind.
    func memoryDesc(_ what: dnnl_query_t, index: Int32 = 0) -> dnnl_memory_desc_t? {
        dnnl_primitive_desc_query_md(handle, what, index)?.pointee
    }
}

enum NNBackward {
    /// A primitive descriptor for an op descriptor built by `initialize`, with an optional forward hint.
    static func primitiveDesc<Desc>(_ empty: Desc, hint: dnnl_primitive_desc_t?, node: String, what: String,
                                    _ initialize: (UnsafeMutablePointer<Desc>) -> dnnl_status_t) throws -> dnnl_primitive_desc_t {
        var desc = empty
        try DNNL.check(initialize(&desc), "\(what) descriptor init", node: node)
        var pd: dnnl_primitive_desc_t?
        let engine = try DNNL.requireEngine(node: node)
        try withUnsafePointer(to: &desc) { d in
            try DNNL.check(dnnl_primitive_desc_create(&pd, UnsafeRawPointer(d), nil, engine, hint), "dnnl_primitive_desc_create(\(what))", node: node)
        }
        guard let pd else { throw RuntimeError.dnnl(call: "dnnl_primitive_desc_create(\(what))", status: 5, node: node) }
        return pd
    }

    /// A backward primitive for an op descriptor and the forward hint.
    static func primitive<Desc>(_ empty: Desc, hint: NNForwardHint, node: String, what: String,
                                _ initialize: (UnsafeMutablePointer<Desc>) -> dnnl_status_t) throws -> DNNLPrimitive {
        let pd = try primitiveDesc(empty, hint: hint.handle, node: node, what: what, initialize)
        return try DNNLPrimitive(primitiveDesc: pd, node: node, what: what)
    }

    /// The memory descriptor a primitive chose, or an error naming the query.
    static func chosen(_ p: DNNLPrimitive, _ what: dnnl_query_t, index: Int32 = 0, name: String) throws -> dnnl_memory_desc_t {
        guard let md = p.queryMemoryDesc(what, index: index) else {
            throw RuntimeError.dnnl(call: "dnnl_primitive_desc_query_md(\(name))", status: 2, node: p.node)
        }
        return md
    }

    /// The raw pointer of a gradient buffer, or nil when the gradient is not wanted.
    static func pointer(_ b: UnsafeMutableBufferPointer<Float>?) -> UnsafeMutableRawPointer? {
        guard let b else { return nil }
        return b.baseAddress.map { UnsafeMutableRawPointer($0) } ?? placeholderBuffer
    }
}

/// The data gradient of a weighted op (convolution, deconvolution, inner product):
/// `dx = op_bwd_data(dy, W)` with `W` packed once per weight array into the layout this primitive chose.
final class NNDataGradient {
    let node: String
    let primitive: DNNLPrimitive
    let weights: PackedWeights
    let diffSrc: DNNLMemory, diffDst: DNNLMemory

    init(_ primitive: DNNLPrimitive, userWeights: dnnl_memory_desc_t, node: String) throws {
        self.node = node
        self.primitive = primitive
        weights = try PackedWeights(user: userWeights, chosen: try NNBackward.chosen(primitive, dnnl_query_weights_md, name: "weights"), node: node)
        diffSrc = try DNNL.placeholderMemory(try NNBackward.chosen(primitive, dnnl_query_diff_src_md, name: "diff_src"), node: node)
        diffDst = try DNNL.placeholderMemory(try NNBackward.chosen(primitive, dnnl_query_diff_dst_md, name: "diff_dst"), node: node)
    }

    func run(weights array: NDArray, weightsPointer: UnsafeMutableRawPointer, outputGradient: UnsafeMutableRawPointer,
             into dataGradient: UnsafeMutableRawPointer, stream: DNNLStream) throws {
        let w = try weights.memory(for: array, pointer: weightsPointer, stream: stream)
        try diffDst.setPointer(outputGradient, node: node)
        try diffSrc.setPointer(dataGradient, node: node)
        try primitive.execute([(NNGradientArg.diffDst, diffDst), (DNNLArg.weights, w), (NNGradientArg.diffSrc, diffSrc)], stream: stream)
    }
}

/// The weight and bias gradients of a weighted op: `dW, db = op_bwd_weights(x, dy)`. `dW` is computed
/// in the layout the primitive chose, into a buffer owned here, and reordered into the caller's array.
final class NNWeightsGradient {
    let node: String
    let primitive: DNNLPrimitive
    let src: DNNLMemory, diffDst: DNNLMemory
    /// dW in the primitive's layout (owned) and over the caller's array, with the reorder between them.
    let packed: DNNLMemory, user: DNNLMemory
    let unpack: DNNLPrimitive
    /// db over the caller's array, and an owned buffer for when only dW is wanted.
    let diffBias: DNNLMemory?, biasScratch: DNNLMemory?

    init(_ primitive: DNNLPrimitive, userWeights: dnnl_memory_desc_t, hasBias: Bool, node: String) throws {
        self.node = node
        self.primitive = primitive
        src = try DNNL.placeholderMemory(try NNBackward.chosen(primitive, dnnl_query_src_md, name: "src"), node: node)
        diffDst = try DNNL.placeholderMemory(try NNBackward.chosen(primitive, dnnl_query_diff_dst_md, name: "diff_dst"), node: node)
        var chosen = try NNBackward.chosen(primitive, dnnl_query_diff_weights_md, name: "diff_weights")
        packed = try DNNLMemory(chosen, pointer: nil, node: node)
        user = try DNNL.placeholderMemory(userWeights, node: node)
        var to = userWeights
        var pd: dnnl_primitive_desc_t?
        let engine = try DNNL.requireEngine(node: node)
        try DNNL.check(dnnl_reorder_primitive_desc_create(&pd, &chosen, engine, &to, engine, nil), "dnnl_reorder_primitive_desc_create(diff_weights)", node: node)
        guard let pd else { throw RuntimeError.dnnl(call: "dnnl_reorder_primitive_desc_create(diff_weights)", status: 5, node: node) }
        unpack = try DNNLPrimitive(primitiveDesc: pd, node: node, what: "weights gradient reorder")
        if hasBias {
            let biasMd = try NNBackward.chosen(primitive, dnnl_query_diff_weights_md, index: 1, name: "diff_bias")
            diffBias = try DNNL.placeholderMemory(biasMd, node: node)
            biasScratch = try DNNLMemory(biasMd, pointer: nil, node: node)
        } else {
            diffBias = nil
            biasScratch = nil
        }
    }

    /// Computes the gradients; `weightGradient` or `biasGradient` nil means not wanted.
    func run(source: UnsafeMutableRawPointer, outputGradient: UnsafeMutableRawPointer,
             weightGradient: UnsafeMutableRawPointer?, biasGradient: UnsafeMutableRawPointer?, stream: DNNLStream) throws {
        try src.setPointer(source, node: node)
        try diffDst.setPointer(outputGradient, node: node)
        var args: [(Int32, DNNLMemory)] = [(DNNLArg.src, src), (NNGradientArg.diffDst, diffDst), (NNGradientArg.diffWeights, packed)]
        if let diffBias, let biasScratch {
            if let biasGradient { try diffBias.setPointer(biasGradient, node: node) }
            args.append((NNGradientArg.diffBias, biasGradient == nil ? biasScratch : diffBias))
        }
        try primitive.execute(args, stream: stream)
        guard let weightGradient else { return }
        try user.setPointer(weightGradient, node: node)
        try unpack.execute([(DNNLArg.from, packed), (DNNLArg.to, user)], stream: stream)
    }
}
