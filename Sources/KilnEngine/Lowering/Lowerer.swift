import CDNNL
import Foundation
import KilnCore
import KilnEngineCore
import KilnGraph
import KilnRuntime

// Lowering: each op of the optimized IR becomes one oneDNN primitive, created now (at compile).
// Layouts follow oneDNN's choices: convolutions are created with `any` for source, weights and
// destination, so activations inside the group stay in the blocked layout oneDNN prefers (such as
// 16 channels innermost); pooling, eltwise, BatchNorm and add keep the layout they receive. A reorder
// is added only where a consumer needs another layout: at the group's borders (plain inputs into the
// first conv, blocked results out to plain outputs) and before the few ops that read plain rows
// (Flatten/Reshape, FC, softmax). Weights are reordered once, here, into the layout chosen for them.
//
// ```
// input (plain) ─reorder─> conv0 ──> pool0 ──> conv1 [sum, relu] ──> ... ─reorder─> output (plain)
//                          blocked    blocked   blocked
// ```
//
// Buffers are only described here; the memory planner (Planner/) places the intermediates in one
// arena by liveness and EnginePlan binds them.

/// One buffer a step reads or writes.
struct PlannedBuffer {
    enum Kind: Equatable {
        /// An intermediate, placed in the arena by liveness.
        case arena
        /// A primitive's scratchpad, live during its step only.
        case scratch
        /// A group input's array, bound at each run.
        case input(String)
        /// A group output's array, bound at each run.
        case output(Int)
        /// Bytes the plan owns (constants, weights in their chosen layout), by index into `owned`.
        case owned(Int)
        /// Another buffer's bytes under another descriptor (a reshape, an FC's 2-D view).
        case view(of: Int)
    }

    var kind: Kind
    var desc: dnnl_memory_desc_t
    var label: String
    /// What a stored number is per real one: 1 for f32 and bf16; for int8 the quantization scale
    /// (stored = round(real * scale)).
    var scale: Float = 1
    var bytes: Int { DNNL.size(desc) }
    var isQuantized: Bool { desc.data_type == dnnl_s8 || desc.data_type == dnnl_u8 }
}

/// How the lowering represents numbers inside a group (see ``EngineOptions/precision``).
struct LoweringNumerics: Sendable {
    enum Mode: Sendable, Equatable { case fp32, bf16, int8 }
    /// A calibrated value's range: its minimum and the |x| threshold it is quantized over.
    struct Range: Sendable, Equatable {
        var min: Float
        var threshold: Float
    }

    var mode: Mode = .fp32
    /// For int8: activation ranges by value name (the producing node's name, or the input's).
    var ranges: [String: Range] = [:]
    /// For int8: nodes kept in fp32 by the user.
    var floatNodes: Set<String> = []
    /// Whether fp32 convolutions without a recorded algorithm are timed to choose one.
    var choosesConvolutions = true

    static let fp32 = LoweringNumerics()

    /// The type activations of conv and FC take inside a group (int8 picks per value).
    var activationType: dnnl_data_type_t { mode == .bf16 ? dnnl_bf16 : dnnl_f32 }
}

/// One primitive execution.
struct PlannedStep {
    enum Role: Equatable { case compute, borderReorder, innerReorder }
    let primitive: DNNLPrimitive
    var args: [(Int32, Int)]
    let label: String
    let role: Role
    /// What the op was lowered as (`convolution`), or `reorder`.
    let kind: String
}

/// Bytes owned by a plan, freed with it.
final class OwnedBytes: @unchecked Sendable {
    let pointer: UnsafeMutableRawPointer
    let count: Int

    /// `count` bytes, 64-byte aligned; zeroed unless `zeroed` is false (the arena: every buffer in it
    /// is written before it is read, and leaving its pages untouched keeps binding fast).
    init(count: Int, zeroed: Bool = true) {
        self.count = count
        pointer = UnsafeMutableRawPointer.allocate(byteCount: max(count, 1), alignment: 64)
        if zeroed { memset(pointer, 0, max(count, 1)) }
    }

    deinit { pointer.deallocate() }
}

/// Turns an optimized IR into primitives and buffer descriptions.
final class Lowerer {
    let ir: EngineIR
    let stream: DNNLStream
    let numerics: LoweringNumerics
    private(set) var buffers: [PlannedBuffer] = []
    private(set) var steps: [PlannedStep] = []
    private(set) var owned: [OwnedBytes] = []
    private var valueBuffer: [Int: Int] = [:]
    private var reordered: [(value: Int, buffer: Int)] = []
    /// Index of the last op reading each value; group outputs are read after every op.
    private var lastUse: [Int: Int] = [:]
    private var current = 0
    /// Algorithms chosen for convolutions by timing, by op index (the IR records them after lowering).
    private(set) var chosenAlgorithms: [Int: ConvolutionAlgorithm] = [:]

    init(ir: EngineIR, stream: DNNLStream, numerics: LoweringNumerics = .fp32) {
        self.ir = ir
        self.stream = stream
        self.numerics = numerics
    }

    func lower() throws {
        for (i, op) in ir.ops.enumerated() { for v in op.reads { lastUse[v] = i } }
        for v in ir.outputs { lastUse[v] = Int.max }
        for (i, op) in ir.ops.enumerated() {
            current = i
            try lower(op)
        }
        for (k, v) in ir.outputs.enumerated() {
            let source = try buffer(for: v)
            let plain = try EngineDNNL.plain(ir.values[v].shape.dims, node: "output")
            // An op that writes plain memory may write straight into the caller's output array.
            if buffers[source].kind == .arena, DNNL.equal(buffers[source].desc, plain), ir.outputs.filter({ $0 == v }).count == 1,
               valueBuffer.allSatisfy({ $0.key == v || root($0.value) != source }) {
                buffers[source].kind = .output(k)
                continue
            }
            let target = add(.output(k), plain, label: "output \(k)")
            try addReorder(from: source, to: target, role: .borderReorder, label: "output \(k) (\(ir.values[v].name))")
        }
    }

    // MARK: Buffers

    private func add(_ kind: PlannedBuffer.Kind, _ desc: dnnl_memory_desc_t, label: String, scale: Float = 1) -> Int {
        buffers.append(PlannedBuffer(kind: kind, desc: desc, label: label, scale: scale))
        return buffers.count - 1
    }

    // MARK: int8

    /// The calibrated range of value `v`, when int8 lowering may quantize it.
    private func range(_ v: Int) -> LoweringNumerics.Range? {
        guard numerics.mode == .int8, let r = numerics.ranges[ir.values[v].name], r.threshold > 0, r.threshold.isFinite else { return nil }
        return r
    }

    /// The int8 type value `v` is stored in: u8 when calibration saw nothing negative.
    private func quantizedType(_ v: Int) -> dnnl_data_type_t {
        if let b = valueBuffer[v], buffers[b].isQuantized { return buffers[b].desc.data_type }
        return (range(v)?.min ?? -1) >= 0 ? dnnl_u8 : dnnl_s8
    }

    /// The scale of value `v` stored as `type`: 1 unless int8, then the full int8 range over its threshold.
    private func scale(of v: Int, as type: dnnl_data_type_t) -> Float {
        if let b = valueBuffer[v], buffers[b].isQuantized, buffers[b].desc.data_type == type { return buffers[b].scale }
        guard type == dnnl_u8 || type == dnnl_s8, let r = range(v) else { return 1 }
        return (type == dnnl_u8 ? 255 : 127) / r.threshold
    }

    /// Whether a conv or FC runs in int8: its input and output calibrated and the user did not keep it in fp32.
    private func runsInt8(_ op: EngineIR.Op) -> Bool {
        guard numerics.mode == .int8, range(op.inputs[0]) != nil,
              !([op.name] + op.fused).contains(where: numerics.floatNodes.contains) else { return false }
        // Post-ops other than ReLU run on real numbers and quantize after the last of them (see
        // `realDomainPostOps`), which needs an eltwise last; fusion puts the sum first, so it is.
        guard realDomainPostOps(op) else { return true }
        if case .eltwise = op.postOps.last { return true }
        return false
    }

    /// Whether `op`'s post-ops include a function that does not commute with scaling (anything but
    /// ReLU): then output scales bring the accumulator to real units, the post-ops run there, and the
    /// last eltwise's scale quantizes.
    private func realDomainPostOps(_ op: EngineIR.Op) -> Bool {
        op.postOps.contains { p in
            if case let .eltwise(e) = p { return !(e.algorithm == .relu && e.alpha == 0) }
            return false
        }
    }

    /// A descriptor for value `v` read by an op computing in floats: int8 values are read as f32.
    private func floatView(_ desc: dnnl_memory_desc_t) -> dnnl_memory_desc_t {
        desc.data_type == dnnl_s8 || desc.data_type == dnnl_u8 ? EngineDNNL.retyped(desc, dnnl_f32) : desc
    }

    /// Per-output-channel symmetric int8 scales of a weight (channels on axis 0): 127 / max |w_c|.
    private func weightScales(_ v: Int, channels: Int) throws -> [Float] {
        guard let w = ir.values[v].constant, channels > 0, w.shape.elementCount % channels == 0 else {
            throw EngineError.missingConstant(node: "int8 weights", input: ir.values[v].name)
        }
        let values = w.floats(), per = w.shape.elementCount / channels
        return (0..<channels).map { c in
            var m: Float = 0
            for i in (c * per)..<((c + 1) * per) { m = max(m, abs(values[i])) }
            return m > 0 ? 127 / m : 1
        }
    }

    /// The buffer a view or buffer finally reads.
    func root(_ b: Int) -> Int {
        var r = b
        while case let .view(of: next) = buffers[r].kind { r = next }
        return r
    }

    /// The buffer holding a value as written (inputs plain, constants plain and owned).
    private func buffer(for v: Int) throws -> Int {
        if let b = valueBuffer[v] { return b }
        let value = ir.values[v]
        let desc = try EngineDNNL.plain(value.shape.dims, node: value.name)
        let b: Int
        switch value.origin {
        case let .input(name):
            b = add(.input(name), desc, label: name)
        case let .constant(array):
            let bytes = OwnedBytes(count: DNNL.size(desc))
            array.withUnsafeBytes { src in
                if let base = src.baseAddress { bytes.pointer.copyMemory(from: base, byteCount: min(src.count, bytes.count)) }
            }
            owned.append(bytes)
            b = add(.owned(owned.count - 1), desc, label: value.name)
        case .computed:
            throw EngineError.invalidIR(pass: "lowering", reason: "%\(v) (\(value.name)) is read before an op writes it")
        }
        valueBuffer[v] = b
        return b
    }

    /// A buffer holding value `v` in layout `desc`: its own when the layouts agree, else a reordered
    /// copy (made once per layout; for constants at compile, for the rest by a reorder step).
    private func ensure(_ v: Int, _ desc: dnnl_memory_desc_t) throws -> Int {
        let b = try buffer(for: v)
        if DNNL.equal(buffers[b].desc, desc) { return b }
        if let hit = reordered.first(where: { $0.value == v && DNNL.equal(buffers[$0.buffer].desc, desc) }) { return hit.buffer }
        let value = ir.values[v]
        let target: Int
        if case .constant = value.origin {
            let bytes = OwnedBytes(count: DNNL.size(desc))
            owned.append(bytes)
            target = add(.owned(owned.count - 1), desc, label: value.name + " (reordered)")
            try reorderNow(from: buffers[b].desc, pointer: try ownedPointer(b), to: desc, pointer: bytes.pointer, node: value.name)
        } else {
            target = add(.arena, desc, label: value.name + " (reordered)", scale: scale(of: v, as: desc.data_type))
            try addReorder(from: b, to: target, role: value.inputName != nil ? .borderReorder : .innerReorder, label: "reorder \(value.name)")
        }
        reordered.append((v, target))
        return target
    }

    private func ownedPointer(_ b: Int) throws -> UnsafeMutableRawPointer {
        guard case let .owned(k) = buffers[root(b)].kind else {
            throw EngineError.invalidIR(pass: "lowering", reason: "buffer \(buffers[b].label) is not a constant")
        }
        return owned[k].pointer
    }

    /// A view of buffer `b` under another descriptor (same bytes).
    private func view(_ b: Int, _ desc: dnnl_memory_desc_t, label: String) -> Int {
        if DNNL.equal(buffers[b].desc, desc) { return b }
        return add(.view(of: b), desc, label: label)
    }

    /// The destination of `op` in layout `desc`. With a `sum` post-op it must start out holding the
    /// residual: the residual's own buffer when nothing reads it later (the conv then adds in
    /// place), else a copy.
    private func destination(_ op: EngineIR.Op, _ desc: dnnl_memory_desc_t, sources: [Int] = [], scale: Float = 1) throws -> Int {
        let d: Int
        if let r = residual(of: op) {
            if let rb = try residualInPlace(op, desc, sources: sources) {
                d = rb
                // The residual's bytes become the output's: from here on they hold the output's scale.
                buffers[rb].scale = scale
            } else {
                d = add(.arena, desc, label: ir.values[op.output].name, scale: scale)
                try addReorder(from: try ensureReadable(r), to: d, role: .innerReorder, label: "residual \(ir.values[r].name) into \(op.name)")
            }
        } else {
            d = add(.arena, desc, label: ir.values[op.output].name, scale: scale)
        }
        valueBuffer[op.output] = d
        return d
    }

    /// The value a `sum` post-op of `op` adds, if any.
    private func residual(of op: EngineIR.Op) -> Int? {
        op.postOps.lazy.compactMap { p -> Int? in if case let .sum(v) = p { return v } else { return nil } }.first
    }

    /// The residual's buffer when `op` may write its output over it (same layout and type, nothing
    /// reads it later, not one of the op's sources).
    private func residualInPlace(_ op: EngineIR.Op, _ desc: dnnl_memory_desc_t, sources: [Int]) throws -> Int? {
        guard let r = residual(of: op) else { return nil }
        let rb = try buffer(for: r)
        guard rb == root(rb), buffers[rb].kind == .arena, DNNL.equal(buffers[rb].desc, desc), canOverwrite(rb),
              !sources.contains(where: { root($0) == rb }) else { return nil }
        return rb
    }

    private func ensureReadable(_ v: Int) throws -> Int { try buffer(for: v) }

    /// Whether the arena buffer `b` may be overwritten by the current op: no value living in it is
    /// read later or is a group output.
    private func canOverwrite(_ b: Int) -> Bool {
        for (v, vb) in valueBuffer where root(vb) == b {
            if (lastUse[v] ?? -1) > current || ir.isOutput(v) { return false }
        }
        return true
    }

    // MARK: Steps

    private func addStep(_ primitive: DNNLPrimitive, _ args: [(Int32, Int)], label: String, role: PlannedStep.Role, kind: String) throws {
        var all = args
        if let scratch = primitive.queryMemoryDesc(dnnl_query_scratchpad_md), DNNL.size(scratch) > 0 {
            all.append((DNNLArg.scratchpad, add(.scratch, scratch, label: "scratchpad of \(label)")))
        }
        steps.append(PlannedStep(primitive: primitive, args: all, label: label, role: role, kind: kind))
    }

    private func addReorder(from source: Int, to target: Int, role: PlannedStep.Role, label: String) throws {
        // Requantizes on the way: stored numbers move from the source's scale to the target's.
        let ratio = buffers[target].scale / buffers[source].scale
        let scaling = ratio == 1 ? EngineDNNL.Scaling() : EngineDNNL.Scaling(output: [ratio])
        let p = try EngineDNNL.reorder(from: buffers[source].desc, to: buffers[target].desc, scaling: scaling, node: label)
        try addStep(p, [(DNNLArg.from, source), (DNNLArg.to, target)], label: label, role: role, kind: "reorder")
    }

    /// Runs a reorder at compile (weights and constants into a primitive's layout).
    private func reorderNow(from source: dnnl_memory_desc_t, pointer src: UnsafeMutableRawPointer,
                            to target: dnnl_memory_desc_t, pointer dst: UnsafeMutableRawPointer,
                            scaling: EngineDNNL.Scaling = EngineDNNL.Scaling(), node: String) throws {
        let p = try EngineDNNL.reorder(from: source, to: target, scaling: scaling, node: node)
        let a = try EngineDNNL.wrap(node) { try DNNLMemory(source, pointer: src, node: node) }
        let b = try EngineDNNL.wrap(node) { try DNNLMemory(target, pointer: dst, node: node) }
        var args: [(Int32, DNNLMemory)] = [(DNNLArg.from, a), (DNNLArg.to, b)]
        if let scratch = p.queryMemoryDesc(dnnl_query_scratchpad_md), DNNL.size(scratch) > 0 {
            args.append((DNNLArg.scratchpad, try EngineDNNL.wrap(node) { try DNNLMemory(scratch, pointer: nil, node: node) }))
        }
        try EngineDNNL.wrap(node) { try p.execute(args, stream: stream) }
    }

    /// Weights reordered once into the layout a primitive chose, in bytes the plan owns.
    private func packedWeights(_ v: Int, userDims: [Int], userTag: dnnl_format_tag_t? = nil, chosen: dnnl_memory_desc_t,
                               scaling: EngineDNNL.Scaling = EngineDNNL.Scaling(), node: String) throws -> Int {
        guard let array = ir.values[v].constant else { throw EngineError.missingConstant(node: node, input: ir.values[v].name) }
        let user = try userTag.map { try EngineDNNL.tagged(userDims, tag: $0, node: node) } ?? EngineDNNL.plain(userDims, node: node)
        guard array.dtype == .float32, array.byteCount == DNNL.size(user) else {
            throw EngineError.invalidIR(pass: "lowering", reason: "the weight \(ir.values[v].name) of shape \(array.shape) does not fit \(node), which needs \(Shape(userDims))")
        }
        let bytes = OwnedBytes(count: DNNL.size(chosen))
        owned.append(bytes)
        try array.withUnsafeBytes { raw in
            guard let base = raw.baseAddress else { return }
            try reorderNow(from: user, pointer: UnsafeMutableRawPointer(mutating: base), to: chosen, pointer: bytes.pointer, scaling: scaling, node: node)
        }
        return add(.owned(owned.count - 1), chosen, label: ir.values[v].name + " (packed)")
    }

    /// A plain per-channel vector the plan owns.
    private func ownedVector(_ values: [Float], label: String) throws -> Int {
        let desc = try EngineDNNL.plain([values.count], node: label)
        let bytes = OwnedBytes(count: values.count * 4)
        values.withUnsafeBytes { src in if let base = src.baseAddress { bytes.pointer.copyMemory(from: base, byteCount: src.count) } }
        owned.append(bytes)
        return add(.owned(owned.count - 1), desc, label: label)
    }

    // MARK: Ops

    private func lower(_ op: EngineIR.Op) throws {
        let node = ([op.name] + op.fused).joined(separator: "+")
        let inShape = ir.values[op.inputs.first ?? op.output].shape.dims
        let outShape = ir.values[op.output].shape.dims
        switch op.lowering {
        case let .convolution(spec):
            try convolution(op, spec, node: node, input: inShape, output: outShape)
        case let .deconvolution(spec):
            try deconvolution(op, spec, node: node, input: inShape, output: outShape)
        case let .innerProduct(spec):
            try innerProduct(op, spec, node: node, input: inShape, output: outShape)
        case let .batchNorm(spec):
            try batchNorm(op, spec, node: node)
        case let .eltwise(spec):
            var md = floatView(buffers[try buffer(for: op.inputs[0])].desc)
            let algorithm = try spec.algorithm.dnnl(node: op.name)
            let p = try EngineDNNL.primitive(dnnl_eltwise_desc_t(), node: node, what: "eltwise") { d in
                dnnl_eltwise_forward_desc_init(d, dnnl_forward_inference, algorithm, &md, spec.alpha, spec.beta)
            }
            let src = try ensure(op.inputs[0], try EngineDNNL.chosen(p, dnnl_query_src_md, node: node))
            let dst = try destination(op, try EngineDNNL.chosen(p, dnnl_query_dst_md, node: node))
            try addStep(p, [(DNNLArg.src, src), (DNNLArg.dst, dst)], label: node, role: .compute, kind: op.lowering.summary)
        case .add:
            // Both operands in the layout of the one an op computed (inputs and constants are plain).
            let computed = op.inputs.first { if case .computed = ir.values[$0].origin { return true } else { return false } } ?? op.inputs[0]
            var md = floatView(buffers[try buffer(for: computed)].desc)
            let a = try ensure(op.inputs[0], md), b = try ensure(op.inputs[1], md)
            let p = try EngineDNNL.primitive(dnnl_binary_desc_t(), node: node, what: "binary add") { d in
                dnnl_binary_desc_init(d, dnnl_binary_add, &md, &md, &md)
            }
            let dst = try destination(op, try EngineDNNL.chosen(p, dnnl_query_dst_md, node: node))
            try addStep(p, [(DNNLArg.src, a), (DNNLArg.src1, b), (DNNLArg.dst, dst)], label: node, role: .compute, kind: "add")
        case let .binary(spec):
            // The first operand in the layout it was computed in; the second the same when it has the
            // same shape, else plain with its axes of size 1, which oneDNN broadcasts.
            var md = floatView(buffers[try buffer(for: op.inputs[0])].desc)
            let bShape = ir.values[op.inputs[1]].shape.dims
            var bmd = bShape == inShape ? md : try EngineDNNL.plain(bShape, node: node)
            let a = try ensure(op.inputs[0], md), b = try ensure(op.inputs[1], bmd)
            let algorithm = spec.operation == .multiply ? dnnl_binary_mul : dnnl_binary_add
            let p = try EngineDNNL.primitive(dnnl_binary_desc_t(), node: node, what: "binary \(spec.operation.rawValue)") { d in
                dnnl_binary_desc_init(d, algorithm, &md, &bmd, &md)
            }
            let dst = try destination(op, try EngineDNNL.chosen(p, dnnl_query_dst_md, node: node))
            try addStep(p, [(DNNLArg.src, a), (DNNLArg.src1, b), (DNNLArg.dst, dst)], label: node, role: .compute, kind: op.lowering.summary)
        case let .pooling(spec):
            try pooling(op, spec, node: node, input: inShape, output: outShape)
        case .reshape:
            let source = try ensure(op.inputs[0], try EngineDNNL.plain(inShape, node: node))
            valueBuffer[op.output] = view(source, try EngineDNNL.plain(outShape, node: node), label: node)
        case let .concat(axis):
            try concat(op, axis: axis, node: node)
        case let .softmax(axis):
            var md = try EngineDNNL.plain(inShape, node: node)
            let src = try ensure(op.inputs[0], md)
            let p = try EngineDNNL.primitive(dnnl_softmax_desc_t(), node: node, what: "softmax") { d in
                dnnl_softmax_forward_desc_init(d, dnnl_forward_inference, &md, Int32(axis))
            }
            let dst = try destination(op, try EngineDNNL.chosen(p, dnnl_query_dst_md, node: node))
            try addStep(p, [(DNNLArg.src, src), (DNNLArg.dst, dst)], label: node, role: .compute, kind: op.lowering.summary)
        case .identity:
            valueBuffer[op.output] = try buffer(for: op.inputs[0])
        case .averagePoolingDense:
            // Only the cuda engine's pipeline fuses the head; a cached IR that holds one is not
            // trusted (CPUEngine rebuilds an entry that does not lower).
            throw EngineError.unsupportedNode(node: op.name, op: op.op, reason: "the cpu engine does not lower a fused pooling head")
        }
    }

    /// oneDNN's logical weight dims of a 2-D (de)convolution, (g, out/g, in/g, kh, kw) or without g
    /// for one group; refuses data that is not 4-D.
    private func groupedWeightDims(_ op: EngineIR.Op, input: [Int], output: [Int], numFilter o: Int, groups g: Int, kernel: [Int]) throws -> [Int] {
        guard input.count == 4, output.count == 4 else {
            throw EngineError.unsupportedNode(node: op.name, op: op.op, reason: "data of shape \(Shape(input)) is not 4-D")
        }
        let perGroup = [o / g, input[1] / g] + kernel
        return g > 1 ? [g] + perGroup : perGroup
    }

    private func convolution(_ op: EngineIR.Op, _ spec: ConvolutionSpec, node: String, input: [Int], output: [Int]) throws {
        let (o, g) = (spec.numFilter, spec.groups)
        let weightDims = try groupedWeightDims(op, input: input, output: output, numFilter: o, groups: g, kernel: spec.kernel)
        let quantized = runsInt8(op)
        let srcType = quantized ? quantizedType(op.inputs[0]) : numerics.activationType
        let weightType = quantized ? dnnl_s8 : numerics.activationType
        // Output in int8 when calibrated; an uncalibrated output stays f32 (and so does the residual it adds).
        var dstType = numerics.activationType
        if quantized, range(op.output) != nil {
            dstType = quantizedType(op.output)
            // Unless the residual is stored unsigned, the sum stays signed, so that its negative part survives.
            if let r = residual(of: op), valueBuffer[r].map({ buffers[$0].desc.data_type }) != dnnl_u8 { dstType = dnnl_s8 }
        }
        let anySource = try EngineDNNL.any(input, type: srcType, node: node)
        var weights = try EngineDNNL.any(weightDims, type: weightType, node: node)
        var bias = try EngineDNNL.plain([o], node: node)
        var dst = try EngineDNNL.any(output, type: dstType, node: node)
        let strides = EngineDNNL.int64s(spec.stride), dilates = EngineDNNL.int64s(spec.dilate.map { $0 - 1 })
        let padding = EngineDNNL.int64s(spec.pad)
        let hasBias = spec.hasBias

        // int8: stored output = k * outputScale'[c] * (sum of stored src * stored weights + bias[c] * srcScale * weightScale[c]),
        // with k = dstScale when the post-ops commute with scaling (ReLU, sum), else 1: the post-ops
        // then see real numbers and the last eltwise's scale quantizes. The sum adds what the
        // destination holds, stored at `contentsScale`, brought to the same units.
        let srcScale = quantized ? scale(of: op.inputs[0], as: srcType) : 1
        let dstScale = scale(of: op.output, as: dstType)
        let k: Float = quantized && realDomainPostOps(op) ? 1 : dstScale
        let weightScales = quantized ? try weightScales(op.inputs[1], channels: o) : []
        var algorithm = ConvolutionAlgorithm.direct
        func make(contentsScale: Float, sumType: dnnl_data_type_t, _ choice: ConvolutionAlgorithm) throws -> DNNLPrimitive {
            var scaling = EngineDNNL.Scaling(sum: k / contentsScale, sumType: sumType, lastEltwise: dstScale / k)
            if quantized {
                scaling.output = weightScales.map { k / (srcScale * $0) }
                scaling.outputMask = 1 << 1
            }
            var src = anySource
            if choice == .directInPlace, let b = valueBuffer[op.inputs[0]] { src = buffers[b].desc }
            let kind = choice == .winograd ? dnnl_convolution_winograd : dnnl_convolution_direct
            return try EngineDNNL.primitive(dnnl_convolution_desc_t(), postOps: op.postOps, scaling: scaling, node: node, what: "convolution") { d in
                if hasBias {
                    return dnnl_dilated_convolution_forward_desc_init(d, dnnl_forward_inference, kind, &src, &weights, &bias,
                                                                      &dst, strides, dilates, padding, padding)
                }
                return dnnl_dilated_convolution_forward_desc_init(d, dnnl_forward_inference, kind, &src, &weights, nil,
                                                                  &dst, strides, dilates, padding, padding)
            }
        }
        if let chosen = spec.algorithm {
            algorithm = chosen
        } else if !quantized, numerics.mode == .fp32, numerics.choosesConvolutions, g == 1, spec.kernel == [3, 3], spec.stride == [1, 1],
                  spec.dilate.allSatisfy({ $0 <= 1 }) {
            algorithm = try chooseAlgorithm(op) { try make(contentsScale: dstScale, sumType: dnnl_data_type_undef, $0) }
            chosenAlgorithms[current] = algorithm
        }
        // The sum adds the residual as stored: in place it keeps its own scale, copied it is requantized first.
        var p: DNNLPrimitive
        do {
            p = try make(contentsScale: dstScale, sumType: dnnl_data_type_undef, algorithm)
        } catch where algorithm != .direct {
            // A cached choice this oneDNN cannot create (another CPU): direct always exists.
            algorithm = .direct
            p = try make(contentsScale: dstScale, sumType: dnnl_data_type_undef, .direct)
        }
        let srcArg = try ensure(op.inputs[0], try EngineDNNL.chosen(p, dnnl_query_src_md, node: node))
        if quantized, let rb = try residualInPlace(op, try EngineDNNL.chosen(p, dnnl_query_dst_md, node: node), sources: [srcArg]),
           buffers[rb].scale != dstScale {
            p = try make(contentsScale: buffers[rb].scale, sumType: buffers[rb].desc.data_type, algorithm)
        }
        var weightScaling = EngineDNNL.Scaling()
        if quantized {
            weightScaling.output = weightScales
            weightScaling.outputMask = g > 1 ? 0b11 : 0b1
        }
        var args: [(Int32, Int)] = [
            (DNNLArg.src, srcArg),
            (DNNLArg.weights, try packedWeights(op.inputs[1], userDims: weightDims, chosen: try EngineDNNL.chosen(p, dnnl_query_weights_md, node: node),
                                                scaling: weightScaling, node: node)),
        ]
        if hasBias {
            if quantized, let b = ir.values[op.inputs[2]].constant {
                let values = b.floats()
                args.append((DNNLArg.bias, try ownedVector(values.indices.map { values[$0] * srcScale * weightScales[$0] }, label: node + " bias (int8)")))
            } else {
                args.append((DNNLArg.bias, try ensure(op.inputs[2], bias)))
            }
        }
        args.append((DNNLArg.dst, try destination(op, try EngineDNNL.chosen(p, dnnl_query_dst_md, node: node), sources: args.map(\.1), scale: dstScale)))
        try addStep(p, args, label: node, role: .compute, kind: quantized ? "convolution (int8)" : "convolution")
    }

    /// A transposed convolution in fp32 or bf16 (int8 plans keep it in their float type). oneDNN's
    /// weights are (groups, out/g, in/g, kh, kw); MXNet stores (in, out/g, kh, kw), which is oneDNN's
    /// `iohw` (`giohw` with groups) order of the same numbers, so the packing reorder reads it as is.
    private func deconvolution(_ op: EngineIR.Op, _ spec: DeconvolutionSpec, node: String, input: [Int], output: [Int]) throws {
        let (o, g) = (spec.numFilter, spec.groups)
        let weightDims = try groupedWeightDims(op, input: input, output: output, numFilter: o, groups: g, kernel: spec.kernel)
        let type = numerics.activationType
        var src = try EngineDNNL.any(input, type: type, node: node)
        var weights = try EngineDNNL.any(weightDims, type: type, node: node)
        var bias = try EngineDNNL.plain([o], node: node)
        var dst = try EngineDNNL.any(output, type: type, node: node)
        let strides = EngineDNNL.int64s(spec.stride), dilates = EngineDNNL.int64s(spec.dilate.map { $0 - 1 })
        let before = EngineDNNL.int64s(spec.pad), after = EngineDNNL.int64s(zip(spec.pad, spec.adj).map { $0 - $1 })
        let hasBias = spec.hasBias
        let p = try EngineDNNL.primitive(dnnl_deconvolution_desc_t(), postOps: op.postOps, node: node, what: "deconvolution") { d in
            if hasBias {
                return dnnl_dilated_deconvolution_forward_desc_init(d, dnnl_forward_inference, dnnl_deconvolution_direct, &src, &weights,
                                                                    &bias, &dst, strides, dilates, before, after)
            }
            return dnnl_dilated_deconvolution_forward_desc_init(d, dnnl_forward_inference, dnnl_deconvolution_direct, &src, &weights,
                                                                nil, &dst, strides, dilates, before, after)
        }
        var args: [(Int32, Int)] = [
            (DNNLArg.src, try ensure(op.inputs[0], try EngineDNNL.chosen(p, dnnl_query_src_md, node: node))),
            (DNNLArg.weights, try packedWeights(op.inputs[1], userDims: weightDims, userTag: g > 1 ? dnnl_giohw : dnnl_iohw,
                                                chosen: try EngineDNNL.chosen(p, dnnl_query_weights_md, node: node), node: node)),
        ]
        if hasBias { args.append((DNNLArg.bias, try ensure(op.inputs[2], bias))) }
        args.append((DNNLArg.dst, try destination(op, try EngineDNNL.chosen(p, dnnl_query_dst_md, node: node), sources: args.map(\.1))))
        try addStep(p, args, label: node, role: .compute, kind: "deconvolution")
    }

    /// Times `op`'s candidate algorithms (see ConvolutionChoice.swift), each with the reorder its input
    /// needs from the layout the producer wrote, and returns the fastest.
    private func chooseAlgorithm(_ op: EngineIR.Op, _ make: (ConvolutionAlgorithm) throws -> DNNLPrimitive) throws -> ConvolutionAlgorithm {
        let timer = PrimitiveTimer(stream: stream)
        let produced = valueBuffer[op.inputs[0]].map { buffers[$0].desc }
        var best: (ConvolutionAlgorithm, Double)?
        let plainInput = try EngineDNNL.plain(ir.values[op.inputs[0]].shape.dims, node: op.name)
        for candidate in ConvolutionAlgorithm.allCases {
            if candidate == .directInPlace, produced.map({ DNNL.equal($0, plainInput) }) ?? true { continue }
            guard let p = try? make(candidate) else { continue }
            let arguments: [(Int32, dnnl_query_t, Int32)] = [(DNNLArg.src, dnnl_query_src_md, 0), (DNNLArg.weights, dnnl_query_weights_md, 0),
                                                             (DNNLArg.bias, dnnl_query_weights_md, 1), (DNNLArg.dst, dnnl_query_dst_md, 0)]
            var t: Double
            do {
                t = try timer.seconds(p, arguments: arguments)
            } catch KilnCoreError.memoryBudgetExceeded {
                // A candidate whose buffers (Winograd's scratchpad is large) exceed the memory budget
                // is not tried; the plan's own arena check decides whether the rest fits.
                continue
            }
            if let produced, let wanted = p.queryMemoryDesc(dnnl_query_src_md) { t += try timer.reorderSeconds(from: produced, to: wanted) }
            // Winograd rounds differently from direct: it must win clearly.
            let effective = candidate == .winograd ? t / 0.95 : t
            if best == nil || effective < best?.1 ?? .infinity { best = (candidate, effective) }
        }
        return best?.0 ?? .direct
    }

    private func innerProduct(_ op: EngineIR.Op, _ spec: InnerProductSpec, node: String, input: [Int], output: [Int]) throws {
        let rows: Int, k: Int
        if spec.flatten {
            (rows, k) = (input.first ?? 1, input.dropFirst().reduce(1, *))
        } else {
            (rows, k) = (input.dropLast().reduce(1, *), input.last ?? 1)
        }
        // With `flatten` and a 3- to 5-D input, the inner product reads the tensor in the layout its
        // producer chose and oneDNN picks weights to match (no reorder to plain rows); otherwise it
        // reads plain rows.
        let direct = spec.flatten && (3...5).contains(input.count)
        let sourceDims = direct ? input : [rows, k]
        let weightDims = direct ? [spec.numHidden] + input.dropFirst() : [spec.numHidden, k]
        // int8 reads the input quantized and writes f32 (FC layers here are small: logits, heads).
        let quantized = runsInt8(op)
        let srcType = quantized ? quantizedType(op.inputs[0]) : numerics.activationType
        var src: dnnl_memory_desc_t
        if direct {
            let produced = buffers[try buffer(for: op.inputs[0])].desc
            src = EngineDNNL.retyped(produced, srcType)
        } else {
            src = try EngineDNNL.tagged(sourceDims, tag: DNNL.plainTag(rank: sourceDims.count), type: srcType, node: node)
        }
        var weights = try EngineDNNL.any(weightDims, type: quantized ? dnnl_s8 : numerics.activationType, node: node)
        var bias = try EngineDNNL.plain([spec.numHidden], node: node)
        var dst = try EngineDNNL.plain([rows, spec.numHidden], node: node)
        let hasBias = spec.hasBias
        let srcScale = quantized ? scale(of: op.inputs[0], as: srcType) : 1
        let weightScales = quantized ? try weightScales(op.inputs[1], channels: spec.numHidden) : []
        var scaling = EngineDNNL.Scaling()
        if quantized {
            scaling.output = weightScales.map { 1 / (srcScale * $0) }
            scaling.outputMask = 1 << 1
        }
        let p = try EngineDNNL.primitive(dnnl_inner_product_desc_t(), postOps: op.postOps, scaling: scaling, node: node, what: "inner product") { d in
            if hasBias { return dnnl_inner_product_forward_desc_init(d, dnnl_forward_inference, &src, &weights, &bias, &dst) }
            return dnnl_inner_product_forward_desc_init(d, dnnl_forward_inference, &src, &weights, nil, &dst)
        }
        let source: Int
        if direct {
            source = try ensure(op.inputs[0], try EngineDNNL.chosen(p, dnnl_query_src_md, node: node))
        } else {
            let plainInput = try EngineDNNL.tagged(input, tag: DNNL.plainTag(rank: input.count), type: srcType, node: node)
            source = view(try ensure(op.inputs[0], plainInput), src, label: node + " rows")
        }
        var weightScaling = EngineDNNL.Scaling()
        if quantized {
            weightScaling.output = weightScales
            weightScaling.outputMask = 1
        }
        // MXNet's weight (hidden, k) has the bytes of (hidden, c, h, w) in plain order.
        var args: [(Int32, Int)] = [
            (DNNLArg.src, source),
            (DNNLArg.weights, try packedWeights(op.inputs[1], userDims: weightDims,
                                                chosen: try EngineDNNL.chosen(p, dnnl_query_weights_md, node: node), scaling: weightScaling, node: node)),
        ]
        if hasBias {
            if quantized, let b = ir.values[op.inputs[2]].constant {
                let values = b.floats()
                args.append((DNNLArg.bias, try ownedVector(values.indices.map { values[$0] * srcScale * weightScales[$0] }, label: node + " bias (int8)")))
            } else {
                args.append((DNNLArg.bias, try ensure(op.inputs[2], bias)))
            }
        }
        let out = try destination(op, try EngineDNNL.plain(output, node: node), sources: args.map(\.1))
        args.append((DNNLArg.dst, view(out, dst, label: node + " rows")))
        try addStep(p, args, label: node, role: .compute, kind: quantized ? "inner_product (int8)" : "inner_product")
    }

    private func batchNorm(_ op: EngineIR.Op, _ spec: BatchNormSpec, node: String) throws {
        var md = floatView(buffers[try buffer(for: op.inputs[0])].desc)
        let flags = dnnl_use_global_stats.rawValue | dnnl_use_scale.rawValue | dnnl_use_shift.rawValue
        let p = try EngineDNNL.primitive(dnnl_batch_normalization_desc_t(), node: node, what: "batch normalization") { d in
            dnnl_batch_normalization_forward_desc_init(d, dnnl_forward_inference, &md, Float(spec.eps), flags)
        }
        let stats = op.inputs.dropFirst().map { ir.values[$0].constant?.floats() ?? [] }
        let channels = Int(md.ndims) >= 2 ? Int(md.dims.1) : 0
        guard stats.allSatisfy({ $0.count == channels }) else {
            throw EngineError.invalidIR(pass: "lowering", reason: "the statistics of \(node) do not have one entry per channel (\(channels))")
        }
        let gamma = spec.fixGamma ? [Float](repeating: 1, count: channels) : stats[0]
        let src = try ensure(op.inputs[0], try EngineDNNL.chosen(p, dnnl_query_src_md, node: node))
        let args: [(Int32, Int)] = [
            (DNNLArg.src, src),
            (DNNLArg.scale, try ownedVector(gamma, label: node + " scale")),
            (DNNLArg.shift, try ownedVector(stats[1], label: node + " shift")),
            (DNNLArg.mean, try ownedVector(stats[2], label: node + " mean")),
            (DNNLArg.variance, try ownedVector(stats[3], label: node + " variance")),
            (DNNLArg.dst, try destination(op, try EngineDNNL.chosen(p, dnnl_query_dst_md, node: node))),
        ]
        try addStep(p, args, label: node, role: .compute, kind: "batch_norm")
    }

    private func pooling(_ op: EngineIR.Op, _ spec: PoolingSpec, node: String, input: [Int], output: [Int]) throws {
        guard input.count == 4 else {
            throw EngineError.unsupportedNode(node: op.name, op: op.op, reason: "data of shape \(Shape(input)) is not 4-D")
        }
        let g: PoolingGeometry
        switch spec.geometry(input: Array(input[2...])) {
        case let .success(geometry): g = geometry
        case let .failure(refusal): throw EngineError.unsupportedNode(node: op.name, op: op.op, reason: refusal.reason)
        }
        // Pooling keeps the stored type and scale (max and average commute with a positive scale).
        let sourceBuffer = try buffer(for: op.inputs[0])
        var src = buffers[sourceBuffer].desc
        var dst = try EngineDNNL.any(Array(input[..<2]) + g.output, type: src.data_type, node: node)
        let algorithm: dnnl_alg_kind_t
        switch spec.algorithm {
        case .max: algorithm = dnnl_pooling_max
        case .avgIncludePad: algorithm = dnnl_pooling_avg_include_padding
        case .avgExcludePad: algorithm = dnnl_pooling_avg_exclude_padding
        }
        let strides = EngineDNNL.int64s(g.stride), kernel = EngineDNNL.int64s(g.kernel)
        let before = EngineDNNL.int64s(g.padBefore), after = EngineDNNL.int64s(g.padAfter), dilation: [Int64] = [0, 0]
        let p = try EngineDNNL.primitive(dnnl_pooling_v2_desc_t(), node: node, what: "pooling") { d in
            dnnl_pooling_v2_forward_desc_init(d, dnnl_forward_inference, algorithm, &src, &dst, strides, kernel, dilation, before, after)
        }
        let source = try ensure(op.inputs[0], try EngineDNNL.chosen(p, dnnl_query_src_md, node: node))
        let target = try destination(op, try EngineDNNL.chosen(p, dnnl_query_dst_md, node: node), scale: buffers[source].scale)
        try addStep(p, [(DNNLArg.src, source), (DNNLArg.dst, target)], label: node, role: .compute, kind: op.lowering.summary)
    }

    private func concat(_ op: EngineIR.Op, axis: Int, node: String) throws {
        // int8 sources are read as f32 (their scales differ); bf16 and f32 ones as they are.
        let sources = try op.inputs.map { v in try ensure(v, floatView(buffers[try buffer(for: v)].desc)) }
        let descs = sources.map { buffers[$0].desc }
        let attr = try EngineDNNL.attributes(node: node)
        defer { dnnl_primitive_attr_destroy(attr) }
        var pd: dnnl_primitive_desc_t?
        let engine = try EngineDNNL.engine(node: node)
        try descs.withUnsafeBufferPointer { d in
            try EngineDNNL.check(dnnl_concat_primitive_desc_create(&pd, nil, Int32(descs.count), Int32(axis), d.baseAddress, attr, engine),
                                 "dnnl_concat_primitive_desc_create", node: node)
        }
        guard let pd else { throw EngineError.dnnl(call: "dnnl_concat_primitive_desc_create", status: 5, node: node) }
        let p = try EngineDNNL.wrap(node) { try DNNLPrimitive(primitiveDesc: pd, node: node, what: "concat") }
        var args = sources.enumerated().map { (DNNLArg.multipleSource($0.offset), $0.element) }
        args.append((DNNLArg.dst, try destination(op, try EngineDNNL.chosen(p, dnnl_query_dst_md, node: node))))
        try addStep(p, args, label: node, role: .compute, kind: op.lowering.summary)
    }
}
