import CDNNL
import KilnCore
import KilnGraph

// The tensor family's oneDNN kernels: concat, a reorder with permuted strides for transpose, and the
// reduction primitive for sum and mean. Each builds its primitive at bind for plain (C-order)
// layouts and wraps the arrays' own buffers at run time, without copies.

/// A memory object for one argument slot, created on first use over the array's buffer and pointed at
/// the current buffer on every later run.
final class DNNLSlot {
    let desc: dnnl_memory_desc_t
    let node: String
    private var memory: DNNLMemory?

    init(_ desc: dnnl_memory_desc_t, node: String) {
        self.desc = desc
        self.node = node
    }

    func bind(_ pointer: UnsafeRawPointer) throws -> DNNLMemory {
        let p = UnsafeMutableRawPointer(mutating: pointer)
        if let m = memory {
            try m.setPointer(p, node: node)
            return m
        }
        let m = try DNNLMemory(desc, pointer: p, node: node)
        memory = m
        return m
    }
}

extension DNNL {
    /// A plain C-order descriptor for any rank up to oneDNN's limit (a 0-d shape becomes `(1,)`).
    static func plainDesc(_ shape: Shape, _ type: DType, node: String) throws -> dnnl_memory_desc_t {
        shape.rank == 0 ? try memoryDesc([1], strides: [1], type, node: node)
                        : try memoryDesc(shape.dims, strides: shape.strides, type, node: node)
    }

    /// Whether oneDNN has a data type for `type` and can describe arrays of rank `rank`.
    static func canDescribe(_ type: DType, rank: Int) -> Bool {
        dataType(type) != dnnl_data_type_undef && rank <= Int(kiln_dnnl_max_ndims())
    }
}

/// Concat on oneDNN's concat primitive.
final class DNNLConcatKernel: Kernel {
    let primitive: DNNLPrimitive
    let stream: DNNLStream
    let sources: [DNNLSlot]
    let destination: DNNLSlot

    init(_ sig: KernelSignature, axis: Int) throws {
        let node = sig.node.name, type = sig.outputTypes[0]
        let srcDescs = try sig.inputShapes.map { try DNNL.plainDesc($0, type, node: node) }
        var dstDesc = try DNNL.plainDesc(sig.outputShapes[0], type, node: node)
        var pd: dnnl_primitive_desc_t?
        let engine = try DNNL.requireEngine(node: node)
        let status = srcDescs.withUnsafeBufferPointer {
            dnnl_concat_primitive_desc_create(&pd, &dstDesc, Int32($0.count), Int32(axis), $0.baseAddress, nil, engine)
        }
        try DNNL.check(status, "dnnl_concat_primitive_desc_create", node: node)
        guard let pd else { throw RuntimeError.dnnl(call: "dnnl_concat_primitive_desc_create", status: 5, node: node) }
        primitive = try DNNLPrimitive(primitiveDesc: pd, node: node, what: "concat")
        stream = try DNNLStream(node: node)
        sources = srcDescs.map { DNNLSlot($0, node: node) }
        destination = DNNLSlot(dstDesc, node: node)
    }

    func forward(_ inputs: [NDArray], _ outputs: inout [NDArray], isTrain: Bool) throws {
        try withRawPointers(inputs) { pointers in
            try outputs[0].withUnsafeMutableBytes { out in
                guard let base = out.baseAddress else { return }
                var args: [(Int32, DNNLMemory)] = []
                for (i, p) in pointers.enumerated() { args.append((DNNLArg.multipleSource(i), try sources[i].bind(p))) }
                args.append((DNNLArg.dst, try destination.bind(base)))
                try primitive.execute(args, stream: stream)
            }
        }
    }
}

/// transpose as a oneDNN reorder: the source is described with the output's dims and the input's
/// strides permuted, so reading it in C order walks the input transposed.
final class DNNLTranspose {
    let primitive: DNNLPrimitive
    let stream: DNNLStream
    let source: DNNLSlot
    let destination: DNNLSlot

    /// The reorder writing `input` permuted by `axes` (output axis i is input axis `axes[i]`).
    init(input: Shape, axes: [Int], type: DType, node: String) throws {
        let inStrides = input.strides
        let out = Shape(axes.map { input[$0] })
        var srcDesc = try DNNL.memoryDesc(out.dims, strides: axes.map { inStrides[$0] }, type, node: node)
        var dstDesc = try DNNL.plainDesc(out, type, node: node)
        let engine = try DNNL.requireEngine(node: node)
        var pd: dnnl_primitive_desc_t?
        try DNNL.check(dnnl_reorder_primitive_desc_create(&pd, &srcDesc, engine, &dstDesc, engine, nil),
                       "dnnl_reorder_primitive_desc_create(transpose)", node: node)
        guard let pd else { throw RuntimeError.dnnl(call: "dnnl_reorder_primitive_desc_create", status: 5, node: node) }
        primitive = try DNNLPrimitive(primitiveDesc: pd, node: node, what: "transpose reorder")
        stream = try DNNLStream(node: node)
        source = DNNLSlot(srcDesc, node: node)
        destination = DNNLSlot(dstDesc, node: node)
    }

    func run(_ input: NDArray, into output: inout NDArray) throws {
        try input.withUnsafeBytes { src in
            try output.withUnsafeMutableBytes { out in
                guard let s = src.baseAddress, let d = out.baseAddress else { return }
                try primitive.execute([(DNNLArg.from, try source.bind(s)), (DNNLArg.to, try destination.bind(d))], stream: stream)
            }
        }
    }
}

/// sum and mean on oneDNN's reduction primitive. The destination has the input's rank with reduced
/// axes of extent 1, which is the output's layout whatever `keepdims` says.
/// Backward broadcasts the output gradient over the reduced axes in Swift (``ReductionWalk``).
final class DNNLReductionKernel: Kernel {
    let primitive: DNNLPrimitive
    let stream: DNNLStream
    let source: DNNLSlot
    let destination: DNNLSlot
    let walk: ReductionWalk
    let divisor: Float

    init(_ sig: KernelSignature, parameters p: ReductionParameters, mean: Bool) throws {
        let node = sig.node.name, input = sig.inputShapes[0]
        walk = ReductionWalk(input, p)
        divisor = mean ? Float(p.reductionSize(input)) : 1
        var srcDesc = try DNNL.plainDesc(input, .float32, node: node)
        var dstDesc = try DNNL.plainDesc(p.keptShape(input), .float32, node: node)
        var desc = dnnl_reduction_desc_t()
        try DNNL.check(dnnl_reduction_desc_init(&desc, mean ? dnnl_reduction_mean : dnnl_reduction_sum, &srcDesc, &dstDesc, 0, 0),
                       "dnnl_reduction_desc_init", node: node)
        primitive = try withUnsafePointer(to: &desc) {
            try DNNLPrimitive(opDesc: UnsafeRawPointer($0), node: node, what: mean ? "mean reduction" : "sum reduction")
        }
        stream = try DNNLStream(node: node)
        source = DNNLSlot(srcDesc, node: node)
        destination = DNNLSlot(dstDesc, node: node)
    }

    func forward(_ inputs: [NDArray], _ outputs: inout [NDArray], isTrain: Bool) throws {
        try inputs[0].withUnsafeBytes { input in
            try outputs[0].withUnsafeMutableBytes { out in
                guard let src = input.baseAddress, let dst = out.baseAddress else { return }
                try primitive.execute([(DNNLArg.src, try source.bind(src)), (DNNLArg.dst, try destination.bind(dst))], stream: stream)
            }
        }
    }

    func backward(_ inputs: [NDArray], _ outputs: [NDArray], _ outputGradients: [NDArray],
                  _ inputGradients: inout [NDArray], needed: [Bool]) throws {
        guard needed[0] else { return }
        walk.broadcast(outputGradients[0], divisor: divisor, into: &inputGradients[0])
    }
}
