import CDNNL
import KilnCore
import KilnGraph

// BatchNorm: y = gamma · (x - mean) / sqrt(var + eps) + beta, per channel, as oneDNN batch
// normalization on an (outer, channels, inner, 1) view of the data: any `axis` becomes oneDNN's
// channel axis without a copy, and four axes select its fast NCHW implementations. Inference uses
// the moving statistics; training, the batch's, with the moving ones updated in backward as MXNet
// 1.9 does.

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
