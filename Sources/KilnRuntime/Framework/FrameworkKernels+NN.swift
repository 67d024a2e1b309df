import CDNNL
import KilnCore
import KilnGraph

// Framework kernels of the neural-network ops: oneDNN primitives created once at bind, reading the
// input arrays' buffers and writing the output array's buffer (plain C order, no copies).
//
// Weights are declared with format `any`, so oneDNN picks its fast blocked layout, and are reordered
// into it at the first run and whenever a new weight array arrives (forcing a plain weights layout
// would select oneDNN's reference convolution, about 1000x slower). Where oneDNN computes something
// other than MXNet (an include-pad average whose last window runs past the padded input in the
// `full` convention), the kernel runs the Swift loop instead.
//
// Backward passes (`DNNLNNBackward.swift`) are oneDNN primitives too, created at the first backward
// that needs them and kept: backward data and backward weights (with bias) of convolution,
// deconvolution and inner product, pooling backward (max reads the workspace its training forward
// recorded), and batch normalization backward.

extension FrameworkKernels {
    static var neuralNetwork: [String: KernelFactory] {
        [
            "Convolution": { try DNNLConvolutionKernel($0, transposed: false) },
            "Deconvolution": { try DNNLConvolutionKernel($0, transposed: true) },
            "FullyConnected": { try DNNLInnerProductKernel($0) },
            "BatchNorm": { try DNNLBatchNormKernel($0) },
            "Pooling": poolingKernel,
        ]
    }

    static let poolingKernel: KernelFactory = { sig in
        let plan = try PoolingPlan.make(sig)
        if DNNLPoolingKernel.computesLikeMXNet(plan) { return try DNNLPoolingKernel(plan, node: sig.node.name) }
        // The Swift loops, forward and backward, where oneDNN would not compute MXNet's result.
        return try ReferenceKernels.poolingKernel(sig)
    }
}

/// Convolution, or deconvolution (`transposed`), as one oneDNN primitive with its bias fused.
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

final class DNNLConvolutionKernel: Kernel {
    let node: String
    let stream: DNNLStream
    let primitive: DNNLPrimitive
    let src: DNNLMemory, dst: DNNLMemory, bias: DNNLMemory?
    let weights: PackedWeights
    let descriptors: ConvolutionDescriptors
    private var hint: NNForwardHint?
    private var dataGradient: NNDataGradient?
    private var weightsGradient: NNWeightsGradient?

    init(_ sig: KernelSignature, transposed: Bool) throws {
        let g = transposed ? try WindowGeometry.deconvolution(sig) : try WindowGeometry.convolution(sig)
        node = sig.node.name
        stream = try DNNLStream(node: node)
        let d = try ConvolutionDescriptors(g, transposed: transposed, hasBias: sig.inputShapes.count > 2, node: node)
        descriptors = d
        primitive = try DNNL.primitive(dnnl_convolution_desc_t(), node: node, what: d.what, d.forward(dnnl_forward_inference))
        guard let chosen = primitive.queryMemoryDesc(dnnl_query_weights_md) else {
            throw RuntimeError.dnnl(call: "dnnl_primitive_desc_query_md(weights)", status: 2, node: node)
        }
        weights = try PackedWeights(user: d.userWeights, chosen: chosen, node: node)
        src = try DNNL.placeholderMemory(d.src, node: node)
        dst = try DNNL.placeholderMemory(d.dst, node: node)
        bias = d.hasBias ? try DNNL.placeholderMemory(d.bias, node: node) : nil
    }

    /// The oneDNN implementation in use, for reports and tests.
    var implementation: String { DNNL.implementationName(primitive) }

    func forward(_ inputs: [NDArray], _ outputs: inout [NDArray], isTrain: Bool) throws {
        try runWeightedForward(primitive, weights: weights, src: src, dst: dst, bias: bias, stream: stream, node: node,
                               inputs, &outputs)
    }

    func backward(_ inputs: [NDArray], _ outputs: [NDArray], _ outputGradients: [NDArray],
                  _ inputGradients: inout [NDArray], needed: [Bool]) throws {
        let wantBias = descriptors.hasBias && needed[2]
        try withSourcePointers([inputs[0], inputs[1], outputGradients[0]][...]) { p in
            try ReferenceNN.withWantedGradients(&inputGradients, needed) { d in
                if let dx = NNBackward.pointer(d[0]) {
                    try dataGradientPrimitives().run(weights: inputs[1], weightsPointer: p[1], outputGradient: p[2], into: dx, stream: stream)
                }
                if needed[1] || wantBias {
                    try weightsGradientPrimitives().run(source: p[0], outputGradient: p[2], weightGradient: NNBackward.pointer(d[1]),
                                                        biasGradient: wantBias ? NNBackward.pointer(d[2]) : nil, stream: stream)
                }
            }
        }
    }

    private func forwardHint() throws -> NNForwardHint {
        if let hint { return hint }
        let h = try NNForwardHint(dnnl_convolution_desc_t(), node: node, what: descriptors.what + " (training)",
                                  descriptors.forward(dnnl_forward_training, anyActivations: true))
        hint = h
        return h
    }

    private func dataGradientPrimitives() throws -> NNDataGradient {
        if let dataGradient { return dataGradient }
        let what = descriptors.what + " backward data"
        let p = try NNBackward.primitive(dnnl_convolution_desc_t(), hint: try forwardHint(), node: node, what: what, descriptors.backwardData())
        let d = descriptors
        let g = try NNDataGradient(p, userWeights: d.userWeights, plainSource: d.src, plainDestination: d.dst, node: node)
        dataGradient = g
        return g
    }

    private func weightsGradientPrimitives() throws -> NNWeightsGradient {
        if let weightsGradient { return weightsGradient }
        let what = descriptors.what + " backward weights"
        let p = try NNBackward.primitive(dnnl_convolution_desc_t(), hint: try forwardHint(), node: node, what: what, descriptors.backwardWeights())
        let d = descriptors
        let g = try NNWeightsGradient(p, userWeights: d.userWeights, plainSource: d.src, plainDestination: d.dst, hasBias: d.hasBias, node: node)
        weightsGradient = g
        return g
    }
}

/// The oneDNN descriptors of a convolution or deconvolution (both use `dnnl_convolution_desc_t`):
/// plain activations, weights in format `any`, and the caller's weights layout.
struct ConvolutionDescriptors {
    typealias Initializer = (UnsafeMutablePointer<dnnl_convolution_desc_t>) -> dnnl_status_t
    let transposed: Bool
    let hasBias: Bool
    let src: dnnl_memory_desc_t, dst: dnnl_memory_desc_t, anyWeights: dnnl_memory_desc_t, bias: dnnl_memory_desc_t
    /// The activations in format `any`, for the backward primitives.
    let anySrc: dnnl_memory_desc_t, anyDst: dnnl_memory_desc_t
    /// MXNet's weights: (out, in/group, kernel...) for convolution, which is oneDNN's order;
    /// (in, out/group, kernel...) for deconvolution, described by strides.
    let userWeights: dnnl_memory_desc_t
    let strides: [Int64], dilates: [Int64], padding: [Int64]
    let inChannelsPerGroup: Int

    var what: String { transposed ? "deconvolution" : "convolution" }

    init(_ g: WindowGeometry, transposed: Bool, hasBias: Bool, node: String) throws {
        self.transposed = transposed
        self.hasBias = hasBias
        inChannelsPerGroup = g.inChannelsPerGroup
        // 1-D ops run as 2-D ones of height 1 (the same memory): oneDNN has fast 2-D kernels for
        // cases, such as dilation, where its 1-D choice is the reference implementation.
        let kernel = g.kernel
        // oneDNN's weights are (groups, out/group, in/group, kernel...) for both ops, or without the
        // group axis when there is one group.
        let perGroup = [g.outChannelsPerGroup, g.inChannelsPerGroup] + kernel
        let weightDims = g.groups > 1 ? [g.groups] + perGroup : perGroup
        src = try DNNL.memoryDesc([g.batch, g.inChannels] + g.input, node: node)
        dst = try DNNL.memoryDesc([g.batch, g.outChannels] + g.output, node: node)
        anySrc = try DNNL.memoryDesc([g.batch, g.inChannels] + g.input, tag: dnnl_format_tag_any, node: node)
        anyDst = try DNNL.memoryDesc([g.batch, g.outChannels] + g.output, tag: dnnl_format_tag_any, node: node)
        anyWeights = try DNNL.memoryDesc(weightDims, tag: dnnl_format_tag_any, node: node)
        bias = hasBias ? try DNNL.memoryDesc([g.outChannels], node: node) : dnnl_memory_desc_t()
        strides = DNNL.int64s(g.stride)
        dilates = DNNL.int64s(g.dilate.map { $0 - 1 })  // oneDNN counts dilation from 0
        // Symmetric padding fits both: oneDNN floors the size relation as MXNet does, and for the
        // transposed op the `adj` rows are the ones no input reaches.
        padding = DNNL.int64s(g.pad)
        if transposed {
            let area = kernel.reduce(1, *)
            let spatialStrides = Shape(kernel).strides
            let perGroupStrides = [area, g.outChannelsPerGroup * area] + spatialStrides
            let strides = g.groups > 1 ? [g.inChannelsPerGroup * g.outChannelsPerGroup * area] + perGroupStrides : perGroupStrides
            userWeights = try DNNL.memoryDesc(weightDims, strides: strides, node: node)
        } else {
            userWeights = try DNNL.memoryDesc(weightDims, node: node)
        }
    }

    func forward(_ prop: dnnl_prop_kind_t, anyActivations: Bool = false) -> Initializer {
        var (src, weights, bias, dst) = (anyActivations ? anySrc : self.src, anyWeights, self.bias, anyActivations ? anyDst : self.dst)
        let (s, d, p, transposed) = (strides, dilates, padding, transposed)
        return { desc in
            transposed
                ? dnnl_dilated_deconvolution_forward_desc_init(desc, prop, dnnl_deconvolution_direct, &src, &weights, &bias, &dst, s, d, p, p)
                : dnnl_dilated_convolution_forward_desc_init(desc, prop, dnnl_convolution_direct, &src, &weights, &bias, &dst, s, d, p, p)
        }
    }

    /// With few input channels per group a blocked data gradient wastes most of its vector lanes:
    /// for 1 -> 20 channels (5x5, 28x28, batch 100) oneDNN's blocked backward data took about 20 ms
    /// against 1.6 ms on plain arrays.
    var plainDataGradient: Bool { inChannelsPerGroup < 16 }

    func backwardData() -> Initializer {
        let plain = plainDataGradient
        var (src, weights, dst) = (plain ? self.src : anySrc, anyWeights, plain ? self.dst : anyDst)
        let (s, d, p, transposed) = (strides, dilates, padding, transposed)
        return { desc in
            transposed
                ? dnnl_dilated_deconvolution_backward_data_desc_init(desc, dnnl_deconvolution_direct, &src, &weights, &dst, s, d, p, p)
                : dnnl_dilated_convolution_backward_data_desc_init(desc, dnnl_convolution_direct, &src, &weights, &dst, s, d, p, p)
        }
    }

    func backwardWeights() -> Initializer {
        var (src, weights, bias, dst) = (anySrc, anyWeights, self.bias, anyDst)
        let (s, d, p, transposed) = (strides, dilates, padding, transposed)
        return { desc in
            transposed
                ? dnnl_dilated_deconvolution_backward_weights_desc_init(desc, dnnl_deconvolution_direct, &src, &weights, &bias, &dst, s, d, p, p)
                : dnnl_dilated_convolution_backward_weights_desc_init(desc, dnnl_convolution_direct, &src, &weights, &bias, &dst, s, d, p, p)
        }
    }
}

/// FullyConnected as a oneDNN inner product on the data viewed as a (rows, inputs) matrix.
final class DNNLInnerProductKernel: Kernel {
    let node: String
    let stream: DNNLStream
    let primitive: DNNLPrimitive
    let src: DNNLMemory, dst: DNNLMemory, bias: DNNLMemory?
    let weights: PackedWeights
    let srcMd: dnnl_memory_desc_t, dstMd: dnnl_memory_desc_t, anyWeights: dnnl_memory_desc_t, biasMd: dnnl_memory_desc_t
    let userWeights: dnnl_memory_desc_t
    let hasBias: Bool
    private var hint: NNForwardHint?
    private var dataGradient: NNDataGradient?
    private var weightsGradient: NNWeightsGradient?

    init(_ sig: KernelSignature) throws {
        try sig.requireFloat32()
        let p = try FullyConnectedParameters(sig.attributes)
        node = sig.node.name
        stream = try DNNLStream(node: node)
        let (rows, k) = p.matrixShape(data: sig.inputShapes[0])
        hasBias = !p.noBias
        srcMd = try DNNL.memoryDesc([rows, k], node: node)
        dstMd = try DNNL.memoryDesc([rows, p.numHidden], node: node)
        anyWeights = try DNNL.memoryDesc([p.numHidden, k], tag: dnnl_format_tag_any, node: node)
        biasMd = p.noBias ? dnnl_memory_desc_t() : try DNNL.memoryDesc([p.numHidden], node: node)
        userWeights = try DNNL.memoryDesc([p.numHidden, k], node: node)
        var (s, w, b, d) = (srcMd, anyWeights, biasMd, dstMd)
        primitive = try DNNL.primitive(dnnl_inner_product_desc_t(), node: node, what: "inner product") { desc in
            dnnl_inner_product_forward_desc_init(desc, dnnl_forward_inference, &s, &w, &b, &d)
        }
        guard let chosen = primitive.queryMemoryDesc(dnnl_query_weights_md) else {
            throw RuntimeError.dnnl(call: "dnnl_primitive_desc_query_md(weights)", status: 2, node: node)
        }
        weights = try PackedWeights(user: userWeights, chosen: chosen, node: node)
        src = try DNNL.placeholderMemory(srcMd, node: node)
        dst = try DNNL.placeholderMemory(dstMd, node: node)
        bias = p.noBias ? nil : try DNNL.placeholderMemory(biasMd, node: node)
    }

    var implementation: String { DNNL.implementationName(primitive) }

    func forward(_ inputs: [NDArray], _ outputs: inout [NDArray], isTrain: Bool) throws {
        try runWeightedForward(primitive, weights: weights, src: src, dst: dst, bias: bias, stream: stream, node: node,
                               inputs, &outputs)
    }

    func backward(_ inputs: [NDArray], _ outputs: [NDArray], _ outputGradients: [NDArray],
                  _ inputGradients: inout [NDArray], needed: [Bool]) throws {
        let wantBias = hasBias && needed[2]
        try withSourcePointers([inputs[0], inputs[1], outputGradients[0]][...]) { p in
            try ReferenceNN.withWantedGradients(&inputGradients, needed) { d in
                if let dx = NNBackward.pointer(d[0]) {
                    try dataGradientPrimitives().run(weights: inputs[1], weightsPointer: p[1], outputGradient: p[2], into: dx, stream: stream)
                }
                if needed[1] || wantBias {
                    try weightsGradientPrimitives().run(source: p[0], outputGradient: p[2], weightGradient: NNBackward.pointer(d[1]),
                                                        biasGradient: wantBias ? NNBackward.pointer(d[2]) : nil, stream: stream)
                }
            }
        }
    }

    private func forwardHint() throws -> NNForwardHint {
        if let hint { return hint }
        // Plain weights, as the backward primitives take them (see DNNLNNBackward.swift).
        var (s, w, b, d) = (srcMd, userWeights, biasMd, dstMd)
        let h = try NNForwardHint(dnnl_inner_product_desc_t(), node: node, what: "inner product (training)") { desc in
            dnnl_inner_product_forward_desc_init(desc, dnnl_forward_training, &s, &w, &b, &d)
        }
        hint = h
        return h
    }

    private func dataGradientPrimitives() throws -> NNDataGradient {
        if let dataGradient { return dataGradient }
        var (s, w, d) = (srcMd, userWeights, dstMd)
        let p = try NNBackward.primitive(dnnl_inner_product_desc_t(), hint: try forwardHint(), node: node, what: "inner product backward data") { desc in
            dnnl_inner_product_backward_data_desc_init(desc, &s, &w, &d)
        }
        let g = try NNDataGradient(p, userWeights: userWeights, plainSource: srcMd, plainDestination: dstMd, node: node)
        dataGradient = g
        return g
    }

    private func weightsGradientPrimitives() throws -> NNWeightsGradient {
        if let weightsGradient { return weightsGradient }
        var (s, w, b, d) = (srcMd, userWeights, biasMd, dstMd)
        let p = try NNBackward.primitive(dnnl_inner_product_desc_t(), hint: try forwardHint(), node: node, what: "inner product backward weights") { desc in
            dnnl_inner_product_backward_weights_desc_init(desc, &s, &w, &b, &d)
        }
        let g = try NNWeightsGradient(p, userWeights: userWeights, plainSource: srcMd, plainDestination: dstMd, hasBias: hasBias, node: node)
        weightsGradient = g
        return g
    }
}

/// Max, average or sum pooling as a oneDNN pooling primitive. Sum pooling is the include-pad
/// average scaled back by the window area, fused as a linear post-op.
///
/// A training forward of max pooling runs a forward-training primitive that records, in a
/// workspace kept here, where each window's maximum was; the backward reads it. Sum pooling's
/// backward is the average's with the output gradient scaled by the window area.
final class DNNLPoolingKernel: Kernel {
    let node: String
    let stream: DNNLStream
    let primitive: DNNLPrimitive
    let src: DNNLMemory, dst: DNNLMemory
    let plan: PoolingPlan
    let algorithm: dnnl_alg_kind_t
    let srcMd: dnnl_memory_desc_t, dstMd: dnnl_memory_desc_t
    private var training: (primitive: DNNLPrimitive, workspace: DNNLMemory?)?
    /// Whether the workspace holds the argmax of the last forward (a training forward of max pooling).
    private var workspaceIsCurrent = false
    private var backwardPass: (primitive: DNNLPrimitive, diffSrc: DNNLMemory, diffDst: DNNLMemory)?
    /// Kept as long as the backward primitive: oneDNN's backward descriptor points at its hint.
    private var backwardHint: NNForwardHint?
    /// Sum pooling's scaled output gradient; a max pooling's output when the workspace must be recomputed.
    private var scratch: [Float] = []

    /// Whether oneDNN's pooling gives MXNet's result for this plan. It does not when the include-pad
    /// average's last window runs past the padded input (oneDNN divides by the whole kernel area,
    /// MXNet by the part inside `input + pad`), nor when padding reaches a whole kernel (oneDNN
    /// refuses it).
    static func computesLikeMXNet(_ plan: PoolingPlan) -> Bool {
        let g = plan.geometry
        if (0..<2).contains(where: { g.pad[$0] >= g.kernel[$0] || plan.padAfter[$0] >= g.kernel[$0] }) { return false }
        if plan.poolType == .avg && plan.countIncludePad && plan.padAfter != g.pad { return false }
        return true
    }

    init(_ plan: PoolingPlan, node: String) throws {
        self.node = node
        self.plan = plan
        stream = try DNNLStream(node: node)
        let g = plan.geometry
        srcMd = try DNNL.memoryDesc([g.batch, g.inChannels] + g.input, node: node)
        dstMd = try DNNL.memoryDesc([g.batch, g.inChannels] + g.output, node: node)
        switch plan.poolType {
        case .max: algorithm = dnnl_pooling_max
        case .avg: algorithm = plan.countIncludePad ? dnnl_pooling_avg_include_padding : dnnl_pooling_avg_exclude_padding
        case .sum: algorithm = dnnl_pooling_avg_include_padding
        case .lp: throw RuntimeError.unsupported(node: node, op: "Pooling", reason: "pool_type lp (Lp pooling) is not implemented")
        }
        let attr = plan.poolType == .sum ? try DNNLAttributes.linear(scale: Float(g.kernelArea), node: node) : nil
        let initialize = Self.forwardInitializer(dnnl_forward_inference, plan: plan, algorithm: algorithm, src: srcMd, dst: dstMd)
        primitive = try DNNL.primitive(dnnl_pooling_v2_desc_t(), attr: attr?.handle, node: node, what: "pooling", initialize)
        src = try DNNL.placeholderMemory(srcMd, node: node)
        dst = try DNNL.placeholderMemory(dstMd, node: node)
    }

    private func forwardInitializer(_ prop: dnnl_prop_kind_t) -> (UnsafeMutablePointer<dnnl_pooling_v2_desc_t>) -> dnnl_status_t {
        Self.forwardInitializer(prop, plan: plan, algorithm: algorithm, src: srcMd, dst: dstMd)
    }

    private static func forwardInitializer(_ prop: dnnl_prop_kind_t, plan: PoolingPlan, algorithm: dnnl_alg_kind_t, src: dnnl_memory_desc_t,
                                           dst: dnnl_memory_desc_t) -> (UnsafeMutablePointer<dnnl_pooling_v2_desc_t>) -> dnnl_status_t {
        let g = plan.geometry
        var (s, d) = (src, dst)
        let (strides, kernel, before, after) = (DNNL.int64s(g.stride), DNNL.int64s(g.kernel), DNNL.int64s(g.pad), DNNL.int64s(plan.padAfter))
        return { desc in dnnl_pooling_v2_forward_desc_init(desc, prop, algorithm, &s, &d, strides, kernel, [0, 0], before, after) }
    }

    var implementation: String { DNNL.implementationName(primitive) }

    func forward(_ inputs: [NDArray], _ outputs: inout [NDArray], isTrain: Bool) throws {
        let recordArgmax = isTrain && plan.poolType == .max
        try withSourcePointers(inputs[...]) { p in
            try withDestinationPointer(&outputs[0]) { out in
                if recordArgmax { try runTraining(source: p[0], destination: out) } else {
                    try src.setPointer(p[0], node: node)
                    try dst.setPointer(out, node: node)
                    try primitive.execute([(DNNLArg.src, src), (DNNLArg.dst, dst)], stream: stream)
                }
            }
        }
        workspaceIsCurrent = recordArgmax
    }

    /// The forward-training primitive (max pooling): the same output, plus the workspace.
    private func trainingPrimitive() throws -> (primitive: DNNLPrimitive, workspace: DNNLMemory?) {
        if let training { return training }
        let p = try DNNL.primitive(dnnl_pooling_v2_desc_t(), node: node, what: "pooling (training)", forwardInitializer(dnnl_forward_training))
        let ws = try p.queryMemoryDesc(dnnl_query_workspace_md).flatMap { md in DNNL.size(md) > 0 ? try DNNLMemory(md, pointer: nil, node: node) : nil }
        training = (p, ws)
        return (p, ws)
    }

    private func runTraining(source: UnsafeMutableRawPointer, destination: UnsafeMutableRawPointer) throws {
        let t = try trainingPrimitive()
        try src.setPointer(source, node: node)
        try dst.setPointer(destination, node: node)
        var args: [(Int32, DNNLMemory)] = [(DNNLArg.src, src), (DNNLArg.dst, dst)]
        if let ws = t.workspace { args.append((DNNLArg.workspace, ws)) }
        try t.primitive.execute(args, stream: stream)
    }

    private func backwardPrimitive() throws -> (primitive: DNNLPrimitive, diffSrc: DNNLMemory, diffDst: DNNLMemory) {
        if let backwardPass { return backwardPass }
        let g = plan.geometry
        let hint = try NNForwardHint(dnnl_pooling_v2_desc_t(), node: node, what: "pooling (training)", forwardInitializer(dnnl_forward_training))
        var (s, d) = (srcMd, dstMd)
        let (strides, kernel, before, after) = (DNNL.int64s(g.stride), DNNL.int64s(g.kernel), DNNL.int64s(g.pad), DNNL.int64s(plan.padAfter))
        let algorithm = algorithm
        let p = try NNBackward.primitive(dnnl_pooling_v2_desc_t(), hint: hint, node: node, what: "pooling backward") { desc in
            dnnl_pooling_v2_backward_desc_init(desc, algorithm, &s, &d, strides, kernel, [0, 0], before, after)
        }
        let b = (p, try DNNL.placeholderMemory(srcMd, node: node), try DNNL.placeholderMemory(dstMd, node: node))
        backwardHint = hint
        backwardPass = b
        return b
    }

    func backward(_ inputs: [NDArray], _ outputs: [NDArray], _ outputGradients: [NDArray],
                  _ inputGradients: inout [NDArray], needed: [Bool]) throws {
        guard needed[0] else { return }
        let b = try backwardPrimitive()
        let outCount = outputGradients[0].elementCount
        try withSourcePointers([inputs[0], outputGradients[0]][...]) { p in
            var args: [(Int32, DNNLMemory)] = [(NNGradientArg.diffDst, b.diffDst), (NNGradientArg.diffSrc, b.diffSrc)]
            if plan.poolType == .max {
                let t = try trainingPrimitive()
                if !workspaceIsCurrent {
                    // The last forward did not record the argmax (it was not a training forward): record it now.
                    if scratch.count != outCount { scratch = [Float](repeating: 0, count: outCount) }
                    try scratch.withUnsafeMutableBytes { try runTraining(source: p[0], destination: $0.baseAddress ?? placeholderBuffer) }
                    workspaceIsCurrent = true
                }
                if let ws = t.workspace { args.append((DNNLArg.workspace, ws)) }
            }
            if plan.poolType == .sum {
                // Σ over a window = area · (include-pad average), so dx = avg_bwd(area · dy).
                let area = Float(plan.geometry.kernelArea)
                if scratch.count != outCount { scratch = [Float](repeating: 0, count: outCount) }
                outputGradients[0].withUnsafeBufferPointer(as: Float.self) { g in
                    for i in 0..<outCount { scratch[i] = g[i] * area }
                }
            }
            try ReferenceNN.withWantedGradients(&inputGradients, needed) { d in
                guard let dx = NNBackward.pointer(d[0]) else { return }
                try b.diffSrc.setPointer(dx, node: node)
                if plan.poolType == .sum {
                    try scratch.withUnsafeMutableBytes { s in
                        try b.diffDst.setPointer(s.baseAddress ?? placeholderBuffer, node: node)
                        try b.primitive.execute(args, stream: stream)
                    }
                } else {
                    try b.diffDst.setPointer(p[1], node: node)
                    try b.primitive.execute(args, stream: stream)
                }
            }
        }
    }
}

/// Primitive attributes holding one post-op, destroyed with their owner.
final class DNNLAttributes {
    let handle: dnnl_primitive_attr_t

    private init(handle: dnnl_primitive_attr_t) { self.handle = handle }

    /// Attributes whose post-op multiplies the result by `scale`.
    static func linear(scale: Float, node: String) throws -> DNNLAttributes {
        var ops: dnnl_post_ops_t?
        try DNNL.check(dnnl_post_ops_create(&ops), "dnnl_post_ops_create", node: node)
        guard let ops else { throw RuntimeError.dnnl(call: "dnnl_post_ops_create", status: 5, node: node) }
        defer { dnnl_post_ops_destroy(ops) }
        try DNNL.check(dnnl_post_ops_append_eltwise(ops, 1, dnnl_eltwise_linear, scale, 0), "dnnl_post_ops_append_eltwise(linear)", node: node)
        var attr: dnnl_primitive_attr_t?
        try DNNL.check(dnnl_primitive_attr_create(&attr), "dnnl_primitive_attr_create", node: node)
        guard let attr else { throw RuntimeError.dnnl(call: "dnnl_primitive_attr_create", status: 5, node: node) }
        let result = DNNLAttributes(handle: attr)
        try DNNL.check(dnnl_primitive_attr_set_post_ops(attr, ops), "dnnl_primitive_attr_set_post_ops", node: node)
        return result
    }

    deinit { dnnl_primitive_attr_destroy(handle) }
}

/// BatchNorm as oneDNN batch normalization on the data viewed as (outer, channels, inner), which is
/// the plain layout oneDNN expects with the channel axis second, whatever `axis` is.
///
/// Inference (or `use_global_stats`) normalizes with the moving statistics; training computes the
/// batch's into buffers owned here. With `fix_gamma` the scale is not passed at all, so oneDNN uses
/// 1 (and gamma's gradient stays zero, as in MXNet).
///
/// The backward after a training forward also computes the new moving statistics, as MXNet 1.9
/// does in its backward: `moving · momentum + batch · (1 - momentum)` with the batch's biased
/// variance; ``auxiliaryUpdates()`` hands them to the executor.
final class DNNLBatchNormKernel: Kernel {
    let node: String
    let stream: DNNLStream
    let parameters: BatchNormParameters
    let channels: Int
    let inference: DNNLPrimitive
    let training: DNNLPrimitive?
    let dataMd: dnnl_memory_desc_t
    let affine: UInt32
    let src: DNNLMemory, dst: DNNLMemory, mean: DNNLMemory, variance: DNNLMemory, scale: DNNLMemory, shift: DNNLMemory
    let batchMean: DNNLMemory, batchVariance: DNNLMemory
    /// Whether the last forward normalized with the batch's statistics.
    private var usedBatchStatistics = false
    private var updates: [(input: Int, value: NDArray)] = []
    /// Backward primitives by whether they differentiate through batch statistics.
    private var backwardPrimitives: [Bool: DNNLPrimitive] = [:]
    /// Kept as long as the backward primitives: oneDNN's backward descriptors point at their hints.
    private var backwardHints: [NNForwardHint] = []
    private var gradientMemory: (diffSrc: DNNLMemory, diffDst: DNNLMemory, diffScale: DNNLMemory, diffShift: DNNLMemory,
                                 dataScratch: DNNLMemory, vectorScratch: DNNLMemory)?

    init(_ sig: KernelSignature) throws {
        try sig.requireFloat32()
        let p = try BatchNormParameters(sig.attributes)
        node = sig.node.name
        guard let (outer, c, inner) = p.split(sig.inputShapes[0]) else {
            throw sig.unsupported("axis \(p.axis) is out of range for data of shape \(sig.inputShapes[0])")
        }
        parameters = p
        channels = c
        stream = try DNNLStream(node: node)
        // Four axes (outer, channels, inner, 1) rather than three: oneDNN's fast plain-layout
        // implementations take NCHW.
        dataMd = try DNNL.memoryDesc([outer, c, inner, 1], node: node)
        var md = dataMd
        let affine = (p.fixGamma ? 0 : dnnl_use_scale.rawValue) | dnnl_use_shift.rawValue
        self.affine = affine
        let eps = Float(p.eps)
        let node = self.node
        inference = try DNNL.primitive(dnnl_batch_normalization_desc_t(), node: node, what: "batch normalization") { d in
            dnnl_batch_normalization_forward_desc_init(d, dnnl_forward_inference, &md, eps, affine | dnnl_use_global_stats.rawValue)
        }
        training = p.useGlobalStats ? nil : try DNNL.primitive(dnnl_batch_normalization_desc_t(), node: node, what: "batch normalization (training)") { d in
            dnnl_batch_normalization_forward_desc_init(d, dnnl_forward_training, &md, eps, affine)
        }
        let vector = try DNNL.memoryDesc([c], node: node)
        src = try DNNL.placeholderMemory(dataMd, node: node)
        dst = try DNNL.placeholderMemory(dataMd, node: node)
        mean = try DNNL.placeholderMemory(vector, node: node)
        variance = try DNNL.placeholderMemory(vector, node: node)
        scale = try DNNL.placeholderMemory(vector, node: node)
        shift = try DNNL.placeholderMemory(vector, node: node)
        batchMean = try DNNLMemory(vector, pointer: nil, node: node)
        batchVariance = try DNNLMemory(vector, pointer: nil, node: node)
    }

    var implementation: String { DNNL.implementationName(inference) }

    func forward(_ inputs: [NDArray], _ outputs: inout [NDArray], isTrain: Bool) throws {
        let primitive = isTrain ? (training ?? inference) : inference
        let useBatch = primitive !== inference
        usedBatchStatistics = useBatch
        updates = []
        try withSourcePointers(inputs[...]) { p in
            try src.setPointer(p[0], node: node)
            try scale.setPointer(p[1], node: node)
            try shift.setPointer(p[2], node: node)
            try mean.setPointer(p[3], node: node)
            try variance.setPointer(p[4], node: node)
            var args: [(Int32, DNNLMemory)] = [(DNNLArg.src, src), (DNNLArg.dst, dst), (DNNLArg.shift, shift),
                                               (DNNLArg.mean, useBatch ? batchMean : mean),
                                               (DNNLArg.variance, useBatch ? batchVariance : variance)]
            if !parameters.fixGamma { args.append((DNNLArg.scale, scale)) }
            try withDestinationPointer(&outputs[0]) { out in
                try dst.setPointer(out, node: node)
                try primitive.execute(args, stream: stream)
            }
        }
        guard outputs.count == 3 else { return }
        // MXNet's extra outputs: the mean and the inverse standard deviation that normalized.
        let m: [Float], v: [Float]
        if useBatch {
            (m, v) = (batchStatistics(batchMean), batchStatistics(batchVariance))
        } else {
            m = inputs[3].floats()
            v = inputs[4].floats()
        }
        let eps = parameters.eps
        outputs[1] = NDArray(shape: [channels], values: m)
        outputs[2] = NDArray(shape: [channels], values: v.map { Float(1 / (Double($0) + eps).squareRoot()) })
    }

    private func batchStatistics(_ m: DNNLMemory) -> [Float] {
        Array(UnsafeBufferPointer(start: m.pointer?.assumingMemoryBound(to: Float.self), count: channels))
    }

    /// The backward primitive: through the batch statistics (`dnnl_backward`), or with the moving
    /// statistics as constants (`use_global_stats`).
    private func backwardPrimitive(batchStatistics: Bool) throws -> DNNLPrimitive {
        if let b = backwardPrimitives[batchStatistics] { return b }
        let flags = affine | (batchStatistics ? 0 : dnnl_use_global_stats.rawValue)
        let eps = Float(parameters.eps)
        var md = dataMd, diff = dataMd
        let hint = try NNForwardHint(dnnl_batch_normalization_desc_t(), node: node, what: "batch normalization (training)") { d in
            dnnl_batch_normalization_forward_desc_init(d, dnnl_forward_training, &md, eps, flags)
        }
        let b = try NNBackward.primitive(dnnl_batch_normalization_desc_t(), hint: hint, node: node, what: "batch normalization backward") { d in
            dnnl_batch_normalization_backward_desc_init(d, dnnl_backward, &diff, &md, eps, flags)
        }
        backwardPrimitives[batchStatistics] = b
        backwardHints.append(hint)
        return b
    }

    private func gradientMemories() throws -> (diffSrc: DNNLMemory, diffDst: DNNLMemory, diffScale: DNNLMemory, diffShift: DNNLMemory,
                                               dataScratch: DNNLMemory, vectorScratch: DNNLMemory) {
        if let gradientMemory { return gradientMemory }
        let vector = try DNNL.memoryDesc([channels], node: node)
        let m = (try DNNL.placeholderMemory(dataMd, node: node), try DNNL.placeholderMemory(dataMd, node: node),
                 try DNNL.placeholderMemory(vector, node: node), try DNNL.placeholderMemory(vector, node: node),
                 try DNNLMemory(dataMd, pointer: nil, node: node), try DNNLMemory(vector, pointer: nil, node: node))
        gradientMemory = m
        return m
    }

    /// Gradients of data, gamma and beta from the output's gradient (the `mean` and `var` outputs'
    /// gradients are ignored, as MXNet ignores them).
    func backward(_ inputs: [NDArray], _ outputs: [NDArray], _ outputGradients: [NDArray],
                  _ inputGradients: inout [NDArray], needed: [Bool]) throws {
        let useBatch = usedBatchStatistics
        let b = try backwardPrimitive(batchStatistics: useBatch)
        let m = try gradientMemories()
        // Gamma's gradient is wanted from oneDNN only when gamma is used; with fix_gamma it stays zero.
        var wanted = needed
        if parameters.fixGamma { wanted[1] = false }
        try withSourcePointers([inputs[0], inputs[1], inputs[2], inputs[3], inputs[4], outputGradients[0]][...]) { p in
            try ReferenceNN.withWantedGradients(&inputGradients, wanted) { d in
                try src.setPointer(p[0], node: node)
                try m.diffDst.setPointer(p[5], node: node)
                if !useBatch {
                    try mean.setPointer(p[3], node: node)
                    try variance.setPointer(p[4], node: node)
                }
                // oneDNN 2.6 counts the shift among the backward's inputs, though dx does not depend on it.
                try shift.setPointer(p[2], node: node)
                var args: [(Int32, DNNLMemory)] = [(DNNLArg.src, src), (NNGradientArg.diffDst, m.diffDst), (DNNLArg.shift, shift),
                                                   (DNNLArg.mean, useBatch ? batchMean : mean),
                                                   (DNNLArg.variance, useBatch ? batchVariance : variance)]
                if let dx = NNBackward.pointer(d[0]) {
                    try m.diffSrc.setPointer(dx, node: node)
                    args.append((NNGradientArg.diffSrc, m.diffSrc))
                } else {
                    args.append((NNGradientArg.diffSrc, m.dataScratch))
                }
                if !parameters.fixGamma {
                    try scale.setPointer(p[1], node: node)
                    args.append((DNNLArg.scale, scale))
                    if let dGamma = NNBackward.pointer(d[1]) {
                        try m.diffScale.setPointer(dGamma, node: node)
                        args.append((NNGradientArg.diffScale, m.diffScale))
                    } else {
                        args.append((NNGradientArg.diffScale, m.vectorScratch))
                    }
                }
                if let dBeta = NNBackward.pointer(d[2]) {
                    try m.diffShift.setPointer(dBeta, node: node)
                    args.append((NNGradientArg.diffShift, m.diffShift))
                } else {
                    args.append((NNGradientArg.diffShift, m.vectorScratch))
                }
                try b.execute(args, stream: stream)
            }
        }
        if useBatch {
            let momentum = parameters.momentum
            func moved(_ moving: NDArray, _ batch: [Float]) -> NDArray {
                NDArray(shape: [channels], values: zip(moving.floats(), batch).map { Float(Double($0) * momentum + Double($1) * (1 - momentum)) })
            }
            updates = [(3, moved(inputs[3], batchStatistics(batchMean))), (4, moved(inputs[4], batchStatistics(batchVariance)))]
        }
    }

    func auxiliaryUpdates() -> [(input: Int, value: NDArray)] { updates }
}
