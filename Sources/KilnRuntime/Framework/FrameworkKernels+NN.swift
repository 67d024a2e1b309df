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
        return ClosureKernel { inputs, outputs, _ in
            inputs[0].withUnsafeBufferPointer(as: Float.self) { data in
                outputs[0].withUnsafeMutableBufferPointer(as: Float.self) { out in ReferenceNN.pooling(plan, data: data, out: out) }
            }
        }
    }
}

/// Convolution, or deconvolution (`transposed`), as one oneDNN primitive with its bias fused.
final class DNNLConvolutionKernel: Kernel {
    let node: String
    let stream: DNNLStream
    let primitive: DNNLPrimitive
    let src: DNNLMemory, dst: DNNLMemory, bias: DNNLMemory?
    let weights: PackedWeights

    init(_ sig: KernelSignature, transposed: Bool) throws {
        let g = transposed ? try WindowGeometry.deconvolution(sig) : try WindowGeometry.convolution(sig)
        node = sig.node.name
        stream = try DNNLStream(node: node)
        let hasBias = sig.inputShapes.count > 2
        // 1-D ops run as 2-D ones of height 1 (the same memory): oneDNN has fast 2-D kernels for
        // cases, such as dilation, where its 1-D choice is the reference implementation.
        let kernel = g.kernel
        // oneDNN's weights are (groups, out/group, in/group, kernel...) for both ops, or without the
        // group axis when there is one group.
        let perGroup = [g.outChannelsPerGroup, g.inChannelsPerGroup] + kernel
        let weightDims = g.groups > 1 ? [g.groups] + perGroup : perGroup
        var srcMd = try DNNL.memoryDesc([g.batch, g.inChannels] + g.input, node: node)
        var dstMd = try DNNL.memoryDesc([g.batch, g.outChannels] + g.output, node: node)
        var anyWeights = try DNNL.memoryDesc(weightDims, tag: dnnl_format_tag_any, node: node)
        var biasMd = hasBias ? try DNNL.memoryDesc([g.outChannels], node: node) : dnnl_memory_desc_t()
        let strides = DNNL.int64s(g.stride)
        let dilates = DNNL.int64s(g.dilate.map { $0 - 1 })  // oneDNN counts dilation from 0
        // Symmetric padding fits both: oneDNN floors the size relation as MXNet does, and for the
        // transposed op the `adj` rows are the ones no input reaches.
        let padding = DNNL.int64s(g.pad)
        let node = self.node
        if transposed {
            primitive = try DNNL.primitive(dnnl_deconvolution_desc_t(), node: node, what: "deconvolution") { d in
                dnnl_dilated_deconvolution_forward_desc_init(d, dnnl_forward_inference, dnnl_deconvolution_direct, &srcMd, &anyWeights,
                                                             &biasMd, &dstMd, strides, dilates, padding, padding)
            }
        } else {
            primitive = try DNNL.primitive(dnnl_convolution_desc_t(), node: node, what: "convolution") { d in
                dnnl_dilated_convolution_forward_desc_init(d, dnnl_forward_inference, dnnl_convolution_direct, &srcMd, &anyWeights,
                                                           &biasMd, &dstMd, strides, dilates, padding, padding)
            }
        }
        // MXNet's weights: (out, in/group, kernel...) for convolution, which is oneDNN's order;
        // (in, out/group, kernel...) for deconvolution, described here by strides.
        let userWeights: dnnl_memory_desc_t
        if transposed {
            let area = kernel.reduce(1, *)
            let spatialStrides = Shape(kernel).strides
            let perGroupStrides = [area, g.outChannelsPerGroup * area] + spatialStrides
            let strides = g.groups > 1 ? [g.inChannelsPerGroup * g.outChannelsPerGroup * area] + perGroupStrides : perGroupStrides
            userWeights = try DNNL.memoryDesc(weightDims, strides: strides, node: node)
        } else {
            userWeights = try DNNL.memoryDesc(weightDims, node: node)
        }
        guard let chosen = primitive.queryMemoryDesc(dnnl_query_weights_md) else {
            throw RuntimeError.dnnl(call: "dnnl_primitive_desc_query_md(weights)", status: 2, node: node)
        }
        weights = try PackedWeights(user: userWeights, chosen: chosen, node: node)
        src = try DNNL.placeholderMemory(srcMd, node: node)
        dst = try DNNL.placeholderMemory(dstMd, node: node)
        bias = hasBias ? try DNNL.placeholderMemory(biasMd, node: node) : nil
    }

    /// The oneDNN implementation in use, for reports and tests.
    var implementation: String { DNNL.implementationName(primitive) }

    func forward(_ inputs: [NDArray], _ outputs: inout [NDArray], isTrain: Bool) throws {
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
}

/// FullyConnected as a oneDNN inner product on the data viewed as a (rows, inputs) matrix.
final class DNNLInnerProductKernel: Kernel {
    let node: String
    let stream: DNNLStream
    let primitive: DNNLPrimitive
    let src: DNNLMemory, dst: DNNLMemory, bias: DNNLMemory?
    let weights: PackedWeights

    init(_ sig: KernelSignature) throws {
        try sig.requireFloat32()
        let p = try FullyConnectedParameters(sig.attributes)
        node = sig.node.name
        stream = try DNNLStream(node: node)
        let (rows, k) = p.matrixShape(data: sig.inputShapes[0])
        var srcMd = try DNNL.memoryDesc([rows, k], node: node)
        var dstMd = try DNNL.memoryDesc([rows, p.numHidden], node: node)
        var anyWeights = try DNNL.memoryDesc([p.numHidden, k], tag: dnnl_format_tag_any, node: node)
        var biasMd = p.noBias ? dnnl_memory_desc_t() : try DNNL.memoryDesc([p.numHidden], node: node)
        primitive = try DNNL.primitive(dnnl_inner_product_desc_t(), node: node, what: "inner product") { d in
            dnnl_inner_product_forward_desc_init(d, dnnl_forward_inference, &srcMd, &anyWeights, &biasMd, &dstMd)
        }
        guard let chosen = primitive.queryMemoryDesc(dnnl_query_weights_md) else {
            throw RuntimeError.dnnl(call: "dnnl_primitive_desc_query_md(weights)", status: 2, node: node)
        }
        weights = try PackedWeights(user: try DNNL.memoryDesc([p.numHidden, k], node: node), chosen: chosen, node: node)
        src = try DNNL.placeholderMemory(srcMd, node: node)
        dst = try DNNL.placeholderMemory(dstMd, node: node)
        bias = p.noBias ? nil : try DNNL.placeholderMemory(biasMd, node: node)
    }

    var implementation: String { DNNL.implementationName(primitive) }

    func forward(_ inputs: [NDArray], _ outputs: inout [NDArray], isTrain: Bool) throws {
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
}

/// Max, average or sum pooling as a oneDNN pooling primitive. Sum pooling is the include-pad
/// average scaled back by the window area, fused as a linear post-op.
final class DNNLPoolingKernel: Kernel {
    let node: String
    let stream: DNNLStream
    let primitive: DNNLPrimitive
    let src: DNNLMemory, dst: DNNLMemory

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
        stream = try DNNLStream(node: node)
        let g = plan.geometry
        var srcMd = try DNNL.memoryDesc([g.batch, g.inChannels] + g.input, node: node)
        var dstMd = try DNNL.memoryDesc([g.batch, g.inChannels] + g.output, node: node)
        let algorithm: dnnl_alg_kind_t
        switch plan.poolType {
        case .max: algorithm = dnnl_pooling_max
        case .avg: algorithm = plan.countIncludePad ? dnnl_pooling_avg_include_padding : dnnl_pooling_avg_exclude_padding
        case .sum: algorithm = dnnl_pooling_avg_include_padding
        case .lp: throw RuntimeError.unsupported(node: node, op: "Pooling", reason: "pool_type lp (Lp pooling) is not implemented")
        }
        let strides = DNNL.int64s(g.stride), kernel = DNNL.int64s(g.kernel)
        let dilation: [Int64] = [0, 0]
        let before = DNNL.int64s(g.pad), after = DNNL.int64s(plan.padAfter)
        let attr = plan.poolType == .sum ? try DNNLAttributes.linear(scale: Float(g.kernelArea), node: node) : nil
        primitive = try DNNL.primitive(dnnl_pooling_v2_desc_t(), attr: attr?.handle, node: node, what: "pooling") { d in
            dnnl_pooling_v2_forward_desc_init(d, dnnl_forward_inference, algorithm, &srcMd, &dstMd, strides, kernel, dilation, before, after)
        }
        src = try DNNL.placeholderMemory(srcMd, node: node)
        dst = try DNNL.placeholderMemory(dstMd, node: node)
    }

    var implementation: String { DNNL.implementationName(primitive) }

    func forward(_ inputs: [NDArray], _ outputs: inout [NDArray], isTrain: Bool) throws {
        try withSourcePointers(inputs[...]) { p in
            try src.setPointer(p[0], node: node)
            try withDestinationPointer(&outputs[0]) { out in
                try dst.setPointer(out, node: node)
                try primitive.execute([(DNNLArg.src, src), (DNNLArg.dst, dst)], stream: stream)
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
/// batch's into buffers owned here and leaves the moving statistics as they are. With `fix_gamma`
/// the scale is not passed at all, so oneDNN uses 1.
final class DNNLBatchNormKernel: Kernel {
    let node: String
    let stream: DNNLStream
    let parameters: BatchNormParameters
    let channels: Int
    let inference: DNNLPrimitive
    let training: DNNLPrimitive?
    let src: DNNLMemory, dst: DNNLMemory, mean: DNNLMemory, variance: DNNLMemory, scale: DNNLMemory, shift: DNNLMemory
    let batchMean: DNNLMemory, batchVariance: DNNLMemory

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
        var dataMd = try DNNL.memoryDesc([outer, c, inner, 1], node: node)
        let affine = (p.fixGamma ? 0 : dnnl_use_scale.rawValue) | dnnl_use_shift.rawValue
        let eps = Float(p.eps)
        let node = self.node
        inference = try DNNL.primitive(dnnl_batch_normalization_desc_t(), node: node, what: "batch normalization") { d in
            dnnl_batch_normalization_forward_desc_init(d, dnnl_forward_inference, &dataMd, eps, affine | dnnl_use_global_stats.rawValue)
        }
        training = p.useGlobalStats ? nil : try DNNL.primitive(dnnl_batch_normalization_desc_t(), node: node, what: "batch normalization (training)") { d in
            dnnl_batch_normalization_forward_desc_init(d, dnnl_forward_training, &dataMd, eps, affine)
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
            m = Array(UnsafeBufferPointer(start: batchMean.pointer?.assumingMemoryBound(to: Float.self), count: channels))
            v = Array(UnsafeBufferPointer(start: batchVariance.pointer?.assumingMemoryBound(to: Float.self), count: channels))
        } else {
            m = inputs[3].floats()
            v = inputs[4].floats()
        }
        let eps = parameters.eps
        outputs[1] = NDArray(shape: [channels], values: m)
        outputs[2] = NDArray(shape: [channels], values: v.map { Float(1 / (Double($0) + eps).squareRoot()) })
    }
}
