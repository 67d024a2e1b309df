import CDNNL
import KilnCore
import KilnGraph

// FullyConnected: y = x · Wᵀ + b on the data viewed as a (rows, inputs) matrix, as one oneDNN inner
// product primitive made at bind. As in convolution, the forward declares its weights `any` and
// packs them once; the backward primitives keep MXNet's plain weights, the faster choice measured
// in DNNLNNBackward.swift.

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
        try runWeightedBackward(hasBias: hasBias, stream: stream, dataGradient: dataGradientPrimitives,
                                weightsGradient: weightsGradientPrimitives, inputs, outputGradients, &inputGradients, needed: needed)
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
