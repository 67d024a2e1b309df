import CDNNL
import KilnCore
import KilnGraph

// Convolution and Deconvolution: y = conv(x, W) + b, or its transpose, as one oneDNN convolution
// primitive made at bind, with the bias fused. The weights are declared with format `any` so that
// oneDNN picks its blocked layout and ``PackedWeights`` reorders MXNet's array into it once (plain
// weights would select oneDNN's reference convolution, about 1000x slower); the activations stay
// plain NCHW, so neighbouring ops read them without a reorder. Deconvolution's weights, (in,
// out/group, kernel...) in MXNet, are described to oneDNN by strides rather than copied.

/// Convolution, or deconvolution (`transposed`), as one oneDNN primitive with its bias fused.
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
        try runWeightedBackward(hasBias: descriptors.hasBias, stream: stream, dataGradient: dataGradientPrimitives,
                                weightsGradient: weightsGradientPrimitives, inputs, outputGradients, &inputGradients, needed: needed)
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
