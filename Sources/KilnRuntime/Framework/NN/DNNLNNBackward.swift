import CDNNL
import KilnCore

// The pieces the neural-network framework kernels' backward passes are built from. oneDNN makes a
// backward primitive from a backward descriptor plus a forward-training primitive descriptor, the
// "hint" that tells it which layouts the forward chose:
//
//     forward (inference, at bind)      y  = conv(x, W) + b                 plain x, y; packed W
//     hint    (training, first backward)     same op, prop_kind forward_training
//     backward data                     dx = conv_bwd_data(dy, W)
//     backward weights                  dW, db = conv_bwd_weights(x, dy)
//
// Layouts, chosen by measurement (LeNet-5 shapes, batch 100, 2 cores):
// - Convolution backward lets oneDNN choose the activations' layout too (`any`) and reorders the
//   plain arrays in and out: on plain NCHW it falls back to its gemm path, which took 13 ms for
//   the weights gradient of a 1->20-channel 5x5 convolution on 28x28 images against about 1 ms
//   blocked. Weights and their gradients are reordered between MXNet's layout and oneDNN's. The
//   data gradient stays plain for inputs with fewer than 16 channels per group, where blocking
//   was the slow choice (20 ms against 1.6 ms for that same layer).
// - Inner product backward keeps plain weights: with `any` weights oneDNN's brgemm weights
//   gradient took 4 ms for a 500->10 layer (0.03 ms plain) and was no faster elsewhere.

/// Argument slots of backward primitives (oneDNN's `DNNL_ARG_DIFF_*`, plain number macros).
enum NNGradientArg {
    static let diffSrc = Int32(DNNL_ARG_DIFF_SRC_0)
    static let diffDst = Int32(DNNL_ARG_DIFF_DST_0)
    static let diffWeights = Int32(DNNL_ARG_DIFF_WEIGHTS_0)
    static let diffBias = Int32(DNNL_ARG_DIFF_BIAS)
    static let diffScale = Int32(DNNL_ARG_DIFF_SCALE)
    static let diffShift = Int32(DNNL_ARG_DIFF_SHIFT)
}

/// A primitive descriptor that is only a forward hint for backward descriptors; destroyed with its
/// owner, which must keep it as long as the backward primitives made with it (oneDNN's backward
/// descriptors keep a pointer to their hint).
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

/// A plain activation array (or activation gradient) handed to a primitive that may have chosen
/// another layout for it: reordered into a buffer owned here (an input) or out of it (an output)
/// when the layouts differ, passed by pointer when they do not.
final class NNActivation {
    let node: String
    private let plain: DNNLMemory
    private let converted: DNNLMemory?
    private let reorder: DNNLPrimitive?

    init(plain plainMd: dnnl_memory_desc_t, chosen: dnnl_memory_desc_t, isOutput: Bool, node: String) throws {
        self.node = node
        plain = try DNNL.placeholderMemory(plainMd, node: node)
        if DNNL.equal(plainMd, chosen) {
            converted = nil
            reorder = nil
        } else {
            converted = try DNNLMemory(chosen, pointer: nil, node: node)
            reorder = isOutput ? try NNBackward.reorder(from: chosen, to: plainMd, node: node)
                               : try NNBackward.reorder(from: plainMd, to: chosen, node: node)
        }
    }

    /// The memory to pass for an input whose plain buffer is `pointer` (reordered first when needed).
    func input(_ pointer: UnsafeMutableRawPointer, stream: DNNLStream) throws -> DNNLMemory {
        try plain.setPointer(pointer, node: node)
        guard let converted, let reorder else { return plain }
        try reorder.execute([(DNNLArg.from, plain), (DNNLArg.to, converted)], stream: stream)
        return converted
    }

    /// The memory to pass for an output whose plain buffer is `pointer`; ``finishOutput(stream:)``
    /// moves the result there once the primitive has run.
    func output(_ pointer: UnsafeMutableRawPointer) throws -> DNNLMemory {
        try plain.setPointer(pointer, node: node)
        return converted ?? plain
    }

    func finishOutput(stream: DNNLStream) throws {
        guard let converted, let reorder else { return }
        try reorder.execute([(DNNLArg.from, converted), (DNNLArg.to, plain)], stream: stream)
    }
}

extension NNBackward {
    /// A reorder primitive between two layouts of the same array.
    static func reorder(from: dnnl_memory_desc_t, to: dnnl_memory_desc_t, node: String) throws -> DNNLPrimitive {
        var (a, b) = (from, to)
        var pd: dnnl_primitive_desc_t?
        let engine = try DNNL.requireEngine(node: node)
        try DNNL.check(dnnl_reorder_primitive_desc_create(&pd, &a, engine, &b, engine, nil), "dnnl_reorder_primitive_desc_create", node: node)
        guard let pd else { throw RuntimeError.dnnl(call: "dnnl_reorder_primitive_desc_create", status: 5, node: node) }
        return try DNNLPrimitive(primitiveDesc: pd, node: node, what: "reorder")
    }
}

/// The data gradient of a weighted op (convolution, deconvolution, inner product):
/// `dx = op_bwd_data(dy, W)` with `W` packed once per weight array into the layout this primitive
/// chose, and `dy`, `dx` reordered from and to plain arrays when it chose another layout for them.
final class NNDataGradient {
    let node: String
    let primitive: DNNLPrimitive
    let weights: PackedWeights
    let diffSrc: NNActivation, diffDst: NNActivation

    /// `plainSource` and `plainDestination` describe the caller's (plain) data and output arrays.
    init(_ primitive: DNNLPrimitive, userWeights: dnnl_memory_desc_t, plainSource: dnnl_memory_desc_t,
         plainDestination: dnnl_memory_desc_t, node: String) throws {
        self.node = node
        self.primitive = primitive
        weights = try PackedWeights(user: userWeights, chosen: try NNBackward.chosen(primitive, dnnl_query_weights_md, name: "weights"), node: node)
        diffSrc = try NNActivation(plain: plainSource, chosen: try NNBackward.chosen(primitive, dnnl_query_diff_src_md, name: "diff_src"),
                                   isOutput: true, node: node)
        diffDst = try NNActivation(plain: plainDestination, chosen: try NNBackward.chosen(primitive, dnnl_query_diff_dst_md, name: "diff_dst"),
                                   isOutput: false, node: node)
    }

    func run(weights array: NDArray, weightsPointer: UnsafeMutableRawPointer, outputGradient: UnsafeMutableRawPointer,
             into dataGradient: UnsafeMutableRawPointer, stream: DNNLStream) throws {
        let w = try weights.memory(for: array, pointer: weightsPointer, stream: stream)
        let dy = try diffDst.input(outputGradient, stream: stream)
        let dx = try diffSrc.output(dataGradient)
        try primitive.execute([(NNGradientArg.diffDst, dy), (DNNLArg.weights, w), (NNGradientArg.diffSrc, dx)], stream: stream)
        try diffSrc.finishOutput(stream: stream)
    }
}

/// The weight and bias gradients of a weighted op: `dW, db = op_bwd_weights(x, dy)`. `dW` is
/// computed in the layout the primitive chose and, when that is not the caller's, into a buffer
/// owned here and reordered into the caller's array; `x` and `dy` are reordered in likewise.
final class NNWeightsGradient {
    let node: String
    let primitive: DNNLPrimitive
    let src: NNActivation, diffDst: NNActivation
    let diffWeights: NNActivation
    /// Where dW goes when only db is wanted.
    let weightsScratch: DNNLMemory
    /// db over the caller's array, and an owned buffer for when only dW is wanted.
    let diffBias: DNNLMemory?, biasScratch: DNNLMemory?

    init(_ primitive: DNNLPrimitive, userWeights: dnnl_memory_desc_t, plainSource: dnnl_memory_desc_t,
         plainDestination: dnnl_memory_desc_t, hasBias: Bool, node: String) throws {
        self.node = node
        self.primitive = primitive
        src = try NNActivation(plain: plainSource, chosen: try NNBackward.chosen(primitive, dnnl_query_src_md, name: "src"),
                               isOutput: false, node: node)
        diffDst = try NNActivation(plain: plainDestination, chosen: try NNBackward.chosen(primitive, dnnl_query_diff_dst_md, name: "diff_dst"),
                                   isOutput: false, node: node)
        let chosen = try NNBackward.chosen(primitive, dnnl_query_diff_weights_md, name: "diff_weights")
        diffWeights = try NNActivation(plain: userWeights, chosen: chosen, isOutput: true, node: node)
        weightsScratch = try DNNLMemory(chosen, pointer: nil, node: node)
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
        let x = try src.input(source, stream: stream)
        let dy = try diffDst.input(outputGradient, stream: stream)
        let dW = try weightGradient.map { try diffWeights.output($0) } ?? weightsScratch
        var args: [(Int32, DNNLMemory)] = [(DNNLArg.src, x), (NNGradientArg.diffDst, dy), (NNGradientArg.diffWeights, dW)]
        if let diffBias, let biasScratch {
            if let biasGradient { try diffBias.setPointer(biasGradient, node: node) }
            args.append((NNGradientArg.diffBias, biasGradient == nil ? biasScratch : diffBias))
        }
        try primitive.execute(args, stream: stream)
        if weightGradient != nil { try diffWeights.finishOutput(stream: stream) }
    }
}

/// Runs the backward of a weighted op (convolution, deconvolution, inner product; inputs data,
/// weights and an optional bias): the data gradient and the weights and bias gradients, where
/// wanted, on primitives the kernel makes at their first use.
func runWeightedBackward(hasBias: Bool, stream: DNNLStream, dataGradient: () throws -> NNDataGradient,
                         weightsGradient: () throws -> NNWeightsGradient, _ inputs: [NDArray], _ outputGradients: [NDArray],
                         _ inputGradients: inout [NDArray], needed: [Bool]) throws {
    let wantBias = hasBias && needed[2]
    try withSourcePointers([inputs[0], inputs[1], outputGradients[0]][...]) { p in
        try ReferenceNN.withWantedGradients(&inputGradients, needed) { d in
            if let dx = NNBackward.pointer(d[0]) {
                try dataGradient().run(weights: inputs[1], weightsPointer: p[1], outputGradient: p[2], into: dx, stream: stream)
            }
            if needed[1] || wantBias {
                try weightsGradient().run(source: p[0], outputGradient: p[2], weightGradient: NNBackward.pointer(d[1]),
                                          biasGradient: wantBias ? NNBackward.pointer(d[2]) : nil, stream: stream)
            }
        }
    }
}
