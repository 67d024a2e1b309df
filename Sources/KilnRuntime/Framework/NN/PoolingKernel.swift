import CDNNL
import KilnCore
import KilnGraph

// Pooling: max, average (with or without the padding counted) and sum over windows, as one oneDNN
// pooling primitive made at bind. oneDNN has no sum pooling, so sum is the include-pad average
// multiplied back by the window area in a post-op. Where oneDNN would not compute MXNet's result
// (`DNNLPoolingKernel.computesLikeMXNet`), the table runs the Swift loops instead.

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
