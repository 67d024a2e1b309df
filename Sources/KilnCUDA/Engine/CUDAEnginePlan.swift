// A compiled CUDA engine group: steps lowered to launches on fixed device addresses in one arena,
// run once eagerly, then captured into a CUDA graph that every forward replays with one launch.
//
//   host float NCHW ─memcpy─> pinned ─H2D─> staging ─┐
//   ┌─────────────────── CUDA graph ─────────────────┘
//   │ reorder to NHWC fp16 ─> conv+epilogue ─> ... ─> head (pool + dense, writes float)
//   └──────────────────────────────────────────────────┐
//   host float <─memcpy─ pinned <─D2H─ output staging <┘        then the slot's event
//
// Pinned buffers come in slots, one CUDA graph each, used in turn, so that a forward can be started
// while earlier ones still run (``start(_:)``): the host fills slot 1's input while the device works
// on slot 0. A slot is refilled only after its event says its last forward is done; the arena is
// shared, since one stream runs the forwards in order.
//
//   host:   fill 0, launch 0 │ fill 1, launch 1 │ fill 2, launch 2 │ wait 0, fill 0 ...
//   device:                  │ forward 0        │ forward 1        │ forward 2 ...
//
// The arena's offsets come from the engine core's memory planner over the steps' value lifetimes:
// two values share bytes only when one is dead before the other is written.
import Foundation
import KilnCore
import KilnEngineCore
import KilnGraph
import KilnRuntime

/// What a compiled CUDA engine group did with its graph.
public struct CUDAEngineReport: Sendable, CustomStringConvertible {
    public var precision: String
    public var layout: String
    /// Engine steps and the kernels (cuDNN, cuBLAS and generated) they launch per forward.
    public var steps: Int
    public var launches: Int
    /// Op nodes absorbed into another step (BatchNorm folded, activations and adds fused).
    public var fusedNodes: Int
    public var arenaBytes: Int
    /// The sum of every intermediate value's size, for comparison with the arena.
    public var intermediateBytes: Int
    public var weightBytes: Int
    public var workspaceBytes: Int
    /// Convolutions run as cuDNN's fused conv-bias-residual-activation call (the others: conv, then a
    /// generated epilogue).
    public var fusedConvolutions: Int = 0
    /// Whether forwards replay a CUDA graph (else the launches run one by one).
    public var graphCaptured: Bool
    public var compileSeconds: Double
    public var notes: [String]
    /// What each of the engine core's passes did.
    public var passes: [PassRecord] = []
    /// The device time per launch, when the engine profiles (`KILN_ENGINE_CUDA_PROFILE=1`).
    public var profile: [String] = []

    public var description: String {
        var s = "cuda engine group: \(precision) \(layout), \(steps) steps (\(fusedNodes) nodes fused in, \(fusedConvolutions) convolutions as one cuDNN call), \(launches) launches per forward"
        s += graphCaptured ? " in one CUDA graph" : " (no CUDA graph)"
        s += "; arena \(arenaBytes) bytes (intermediates \(intermediateBytes)), weights \(weightBytes), workspace \(workspaceBytes); compiled in \(String(format: "%.3f", compileSeconds)) s"
        for p in passes where p.rewrites > 0 { s += "\n  pass \(p)" }
        for n in notes { s += "\n  note: \(n)" }
        for line in profile { s += "\n  \(line)" }
        return s
    }
}

final class CUDAEnginePlan: CompiledGraph {
    let device: CUDADevice
    let engineGraph: CUDASteps
    let storage: StorageType
    let channelsLast: Bool
    private(set) var report: CUDAEngineReport
    /// Device address of each base value.
    private var address: [Int: UnsafeMutableRawPointer] = [:]
    /// The forward's device work in order, each with a label for profiles.
    private var launches: [(label: String, run: () throws -> Void)] = []
    private var keep: [AnyObject] = []
    private let arena: DeviceBuffer?
    private var workspace: DeviceBuffer?
    /// Per group input: its name, logical shape and float staging on the device.
    private var inputStaging: [(name: String, shape: Shape, device: UnsafeMutableRawPointer)] = []
    /// Group outputs (base values) a fused head writes as float itself, with where.
    private var floatOutputs: [Int: UnsafeMutableRawPointer] = [:]
    /// Per group output: its logical shape and float staging on the device.
    private var outputStaging: [(shape: Shape, device: UnsafeMutableRawPointer)] = []
    private var pinnedBlocks: [UnsafeMutableRawPointer] = []
    /// Pinned host buffers, event and CUDA graph per forward in flight (see the file's note).
    private var slots: [Slot] = []
    /// The slot the next forward uses.
    private var nextSlot = 0
    /// How many forwards may be in flight at once.
    static let slotCount = 3

    /// One forward's host side: pinned inputs and outputs, the event recorded after its last copy,
    /// the graph replaying it, and which forward last used it.
    final class Slot {
        var inputs: [UnsafeMutableRawPointer] = []
        var outputs: [UnsafeMutableRawPointer] = []
        var event: Ptr = nil
        var graphExec: Ptr = nil
        /// Counts the forwards started in this slot; a pending result is good while it is unchanged.
        var generation = 0
    }

    /// Whether convolutions try cuDNN's fused conv-bias-residual-activation call first.
    let fusedConvolutions: Bool
    /// Whether cuDNN times the algorithms of each convolution (else its heuristics rank them).
    let timesAlgorithms: Bool
    /// Whether every algorithm the fused convolution call runs is timed on the device, the fastest
    /// kept (else the first that runs, in cuDNN's ranking).
    let tunesFusedConvolutions: Bool

    /// Lowers an optimized IR (the engine core's pipeline has run on it) onto `device`.
    init(ir: EngineIR, passes: [PassRecord], device: CUDADevice,
         precision: CUDAEngine.Precision, captureGraph: Bool, fusedConvolutions: Bool = true, timesAlgorithms: Bool = false,
         profiles: Bool = false, tunesFusedConvolutions: Bool = false, started: ContinuousClock.Instant? = nil) throws {
        self.fusedConvolutions = fusedConvolutions
        self.tunesFusedConvolutions = tunesFusedConvolutions
        self.timesAlgorithms = timesAlgorithms
        let clock = ContinuousClock(), start = started ?? clock.now
        self.device = device
        try device.makeCurrent()
        switch precision {
        case .fp32: storage = .f32
        case .fp16: storage = .f16
        case .bf16: storage = .bf16
        }
        channelsLast = storage != .f32
        engineGraph = try CUDASteps(ir, channelsLast: channelsLast)
        let g = engineGraph

        // Lifetimes of base values, in steps: inputs are written at -1 (border conversion), outputs live to the end.
        var first: [Int: Int] = [:], last: [Int: Int] = [:]
        func use(_ v: Int, _ t: Int) { let b = g.base(v); first[b] = min(first[b] ?? t, t); last[b] = max(last[b] ?? t, t) }
        for (_, v) in g.inputs { use(v, -1) }
        for (t, s) in g.steps.enumerated() { for v in s.reads + [s.writes] { use(v, t) } }
        for v in g.outputs { use(v, g.steps.count) }
        // 256 bytes: the alignment cuDNN and cuBLAS prefer for their operands.
        let elementBytes = storage.byteSize, end = g.steps.count
        let plan = MemoryPlanner.plan(first.keys.sorted().map { v in
            Lifetime(id: v, bytes: g.values[v].shape.elementCount * elementBytes, first: first[v] ?? -1, last: last[v] ?? end)
        }, alignment: 256)
        arena = plan.arenaBytes > 0 ? try device.pool.allocate(plan.arenaBytes) : nil
        if let arena { for (v, o) in plan.offsets { address[v] = arena.pointer + o } }

        report = CUDAEngineReport(precision: precision.rawValue, layout: channelsLast ? "NHWC" : "NCHW", steps: g.steps.count, launches: 0,
                                  fusedNodes: ir.ops.reduce(0) { $0 + $1.fused.count }, arenaBytes: plan.arenaBytes,
                                  intermediateBytes: plan.totalBytes, weightBytes: 0,
                                  workspaceBytes: 0, graphCaptured: false, compileSeconds: 0, notes: [], passes: passes)
        try lower(g)
        for _ in 0..<Self.slotCount {
            let slot = Slot()
            slot.inputs = try inputStaging.map { try pinned($0.shape.elementCount * 4) }
            slot.outputs = try outputStaging.map { try pinned($0.shape.elementCount * 4) }
            var event: Ptr = nil
            try device.runtime.check(device.runtime.eventCreate(&event), "cudaEventCreate")
            slot.event = event
            slots.append(slot)
        }
        try record(slots[0])
        try device.synchronize()
        if captureGraph {
            do {
                for slot in slots { try capture(slot) }
                report.graphCaptured = true
            } catch {
                for slot in slots where slot.graphExec != nil {
                    _ = device.runtime.graphExecDestroy(slot.graphExec)
                    slot.graphExec = nil
                }
                report.notes.append("CUDA graph capture failed, forwards launch one by one: \(error)")
            }
        }
        if profiles { report.profile = try profile() }
        report.notes.append("generated kernels: \(device.cubinCompiles) compiled by NVRTC, \(device.cubinCacheHits) from the engine cache, in this process so far")
        let d = clock.now - start
        report.compileSeconds = Double(d.components.seconds) + Double(d.components.attoseconds) * 1e-18
    }

    deinit {
        // Forwards still queued read the pinned buffers: they finish before those are freed.
        _ = device.runtime.streamSynchronize(device.stream)
        for slot in slots {
            if slot.graphExec != nil { _ = device.runtime.graphExecDestroy(slot.graphExec) }
            if slot.event != nil { _ = device.runtime.eventDestroy(slot.event) }
        }
        for p in pinnedBlocks { _ = device.runtime.freeHost(p) }
    }

    private func pointer(_ v: Int) -> UnsafeMutableRawPointer { address[engineGraph.base(v)]! }

    private func pinned(_ bytes: Int) throws -> UnsafeMutableRawPointer {
        var p: Ptr = nil
        try device.runtime.check(device.runtime.mallocHost(&p, max(bytes, 1)), "cudaMallocHost")
        guard let q = p else { throw CUDAError.outOfMemory(bytes: bytes, device: device.ordinal, message: "no pinned host memory") }
        pinnedBlocks.append(q)
        return q
    }

    /// A device copy of float values converted to the storage type.
    private func upload(_ values: [Float], as t: StorageType) throws -> DeviceBuffer {
        var a: NDArray
        switch t {
        case .f32:
            a = NDArray(shape: [values.count], values: values)
        case .f16, .bf16:
            a = NDArray(zeros: [values.count], dtype: t == .f16 ? .float16 : .bfloat16)
            a.withUnsafeMutableBufferPointer(as: UInt16.self) { p in
                for (i, v) in values.enumerated() { p[i] = t == .f16 ? floatToHalfBits(v) : floatToBFloat16Bits(v) }
            }
        }
        let b = try device.upload(a)
        keep.append(b)
        report.weightBytes += a.byteCount
        return b
    }

    private func floats(_ a: NDArray) -> [Float] {
        a.withUnsafeBufferPointer(as: Float.self) { Array($0) }
    }

    private func generated(_ k: (name: String, source: String)) throws -> Ptr { try device.function(k.name, source: k.source) }

    private func descriptor(_ shape: Shape) throws -> TensorDescriptor {
        let d = try TensorDescriptor(device.cudnn, dims: shape.dims, dataType: storage.cudnn,
                                     format: channelsLast && shape.rank == 4 ? CUDNNAPI.formatNHWC : CUDNNAPI.formatNCHW)
        keep.append(d)
        return d
    }

    /// Lowers every step (and the border conversions) to launches.
    private func lower(_ g: CUDASteps) throws {
        var count = 0
        let cudnn = device.cudnn, handle = device.cudnnHandle
        let mathType = storage == .f32 ? CUDNNAPI.fmaMath : CUDNNAPI.tensorOpMath
        // Inputs: host float NCHW into float staging, then converted (or written in place for fp32 NCHW).
        // Converting on the host instead (no launch) cost more than the launch: at batch 64 the host's
        // packing into 16-bit NHWC took 0.7 ms a forward and capped asynchronous throughput.
        for (name, v) in g.inputs {
            let shape = g.values[v].shape
            let bytes = shape.elementCount * 4
            // The copy from the slot's pinned memory (see record(_:)) is part of the captured graph.
            let target: UnsafeMutableRawPointer
            if storage == .f32 {
                target = pointer(v)
            } else {
                let staging = try device.pool.allocate(bytes)
                keep.append(staging)
                target = staging.pointer
            }
            inputStaging.append((name, shape, target))
            count += 1
            if storage != .f32 {
                let staging = target
                let f = try generated(GeneratedKernels.reorder(from: .f32, to: storage, toChannelsLast: true))
                let dims = Self.chw(shape), y = pointer(v), n = shape.elementCount
                add("input \(name) to \(storage) NHWC") { [device] in
                    try device.launch(f, count: n, arguments: [.pointer(staging), .pointer(y), .int64(Int64(n)), .int32(dims.0), .int32(dims.1), .int32(dims.2)])
                }
                count += 1
            }
        }
        var workspaceNeed = 0
        for step in g.steps {
            switch step {
            case let .head(xv, zv, weight, bias, relu):
                try head(g, x: xv, y: zv, weight: weight, bias: bias, relu: relu)
                count += 1
            case let .convolution(xv, yv, weight, bias, p, residual, activation):
                guard p.kernel.count == 2 else { throw CUDAError.unsupported(node: "", op: "Convolution", reason: "a \(p.kernel.count)-d kernel") }
                let xs = g.values[xv].shape, ys = g.values[yv].shape
                let x = try descriptor(xs), y = try descriptor(ys)
                var w = weight
                if channelsLast { w = Self.toKRSC(w) }
                let wb = try upload(floats(w), as: storage)
                let f = try FilterDescriptor(cudnn, dims: weight.shape.dims, dataType: storage.cudnn,
                                             format: channelsLast ? CUDNNAPI.formatNHWC : CUDNNAPI.formatNCHW)
                let c = try ConvolutionDescriptor(cudnn, pad: p.pad, stride: p.stride, dilate: p.dilate, groups: p.groups, mathType: mathType)
                keep.append(f)
                keep.append(c)
                let xp = pointer(xv), yp = pointer(yv)
                let relu = activation == EltwiseSpec(algorithm: .relu)
                if activation == nil || relu,
                   let fused = try fusedConvolution(x: x, y: y, filter: f, weights: wb, convolution: c, bias: bias, residual: residual.map { pointer($0) },
                                                    relu: relu, xp: xp, yp: yp, shape: ys) {
                    workspaceNeed = max(workspaceNeed, fused.workspace)
                    add("convolution fused \(ys.dims)", fused.launch)
                    count += 1
                    report.fusedConvolutions += 1
                    continue
                }
                // Not fused: the plain convolution, then the generated epilogue.
                guard let (algo, need) = try device.forwardAlgorithm(x: x, w: f, conv: c, y: y) else {
                    throw CUDAError.call(library: "cuDNN", function: "cudnnGetConvolutionForwardAlgorithm_v7", status: -1,
                                         message: "no forward algorithm fits this convolution")
                }
                workspaceNeed = max(workspaceNeed, need)
                let biasBuffer = try upload(bias, as: .f32)
                let epilogue = try generated(GeneratedKernels.epilogue(storage, channelsLast: channelsLast, scale: false, shift: true,
                                                                       residual: residual != nil, activation: activation))
                let rp = residual.map { pointer($0) }
                let n = ys.elementCount, channels = Int32(ys[1]), hw = Int32(ys[2] * ys[3])
                let xd = x.handle, yd = y.handle, fd = f.handle, cd = c.handle
                add("convolution+epilogue \(ys.dims)") { [unowned self] in
                    var one: Float = 1, zero: Float = 0
                    try cudnn.check(cudnn.convolutionForward(handle, &one, xd, xp, fd, wb.pointer, cd, algo, self.workspace?.pointer,
                                                             self.workspace?.byteCount ?? 0, &zero, yd, yp), "cudnnConvolutionForward")
                    try device.launch(epilogue, count: n, arguments: [.pointer(yp), .pointer(yp), .pointer(nil), .pointer(biasBuffer.pointer),
                                                                      .pointer(rp), .int64(Int64(n)), .int32(channels), .int32(hw)])
                }
                count += 2
            case let .affine(xv, yv, scale, shift, activation):
                let ys = g.values[yv].shape
                let sb = try upload(scale, as: .f32), tb = try upload(shift, as: .f32)
                let f = try generated(GeneratedKernels.epilogue(storage, channelsLast: channelsLast && ys.rank == 4, scale: true, shift: true,
                                                                residual: false, activation: activation))
                let xp = pointer(xv), yp = pointer(yv), n = ys.elementCount
                let channels = Int32(ys.rank > 1 ? ys[1] : 1), hw = Int32(ys.dims.dropFirst(2).reduce(1, *))
                add("scale-shift \(ys.dims)") { [device] in
                    try device.launch(f, count: n, arguments: [.pointer(xp), .pointer(yp), .pointer(sb.pointer), .pointer(tb.pointer), .pointer(nil),
                                                               .int64(Int64(n)), .int32(channels), .int32(hw)])
                }
                count += 1
            case let .pointwise(ins, yv, activation):
                let f = try generated(GeneratedKernels.pointwise(storage, binary: ins.count == 2, activation: activation))
                let a = pointer(ins[0]), b = ins.count == 2 ? pointer(ins[1]) : nil, yp = pointer(yv), n = g.values[yv].shape.elementCount
                add("pointwise \(g.values[yv].shape.dims)") { [device] in
                    try device.launch(f, count: n, arguments: [.pointer(a), .pointer(b), .pointer(yp), .int64(Int64(n))])
                }
                count += 1
            case let .pooling(xv, yv, p):
                let xs = g.values[xv].shape
                guard xs.rank == 4, case let .success(w) = p.geometry(input: [xs[2], xs[3]]), w.padBefore == w.padAfter else {
                    throw CUDAError.unsupported(node: "", op: "Pooling", reason: "a window that does not fit cuDNN's symmetric padding")
                }
                let x = try descriptor(xs), y = try descriptor(g.values[yv].shape)
                let pooling = try PoolingDescriptor(cudnn, mode: Self.cudnnMode(p.algorithm), kernel: w.kernel, pad: w.padBefore, stride: w.stride)
                keep.append(pooling)
                let d = pooling.handle
                let xp = pointer(xv), yp = pointer(yv), xd = x.handle, yd = y.handle
                add("pooling \(xs.dims)") {
                    var one: Float = 1, zero: Float = 0
                    try cudnn.check(cudnn.poolingForward(handle, d, &one, xd, xp, &zero, yd, yp), "cudnnPoolingForward")
                }
                count += 1
            case let .fullyConnected(xv, yv, weight, bias, activation):
                let ys = g.values[yv].shape
                let hidden = weight.shape[0], columns = weight.elementCount / max(hidden, 1)
                let rows = ys.elementCount / max(hidden, 1)
                let wb = try upload(floats(weight), as: storage)
                let bb = try bias.map { try upload($0, as: .f32) }
                let epilogue = (bias != nil || activation != nil)
                    ? try generated(GeneratedKernels.epilogue(storage, channelsLast: true, scale: false, shift: bias != nil, residual: false, activation: activation))
                    : nil
                let xp = pointer(xv), yp = pointer(yv), n = ys.elementCount
                let cublas = device.cublas, blas = device.cublasHandle, t = storage.cudaDataType
                add("fully connected \(ys.dims)") { [device] in
                    var one: Float = 1, zero: Float = 0
                    try cublas.check(cublas.gemmEx(blas, CUBLASAPI.opT, CUBLASAPI.opN, Int32(hidden), Int32(rows), Int32(columns), &one,
                                                   wb.pointer, t, Int32(columns), xp, t, Int32(columns), &zero, yp, t, Int32(hidden),
                                                   CUBLASAPI.computeF32, CUBLASAPI.gemmDefault), "cublasGemmEx")
                    if let epilogue {
                        try device.launch(epilogue, count: n, arguments: [.pointer(yp), .pointer(yp), .pointer(nil), .pointer(bb?.pointer),
                                                                          .pointer(nil), .int64(Int64(n)), .int32(Int32(hidden)), .int32(1)])
                    }
                }
                count += epilogue == nil ? 1 : 2
            case let .softmax(xv, yv, view):
                let xs = g.values[xv].shape
                let nhwc = channelsLast && xs.rank == 4 && view == [xs[0], xs[1], xs[2] * xs[3], 1]
                let d = try TensorDescriptor(cudnn, dims: nhwc ? xs.dims : view, dataType: storage.cudnn,
                                             format: nhwc ? CUDNNAPI.formatNHWC : CUDNNAPI.formatNCHW)
                keep.append(d)
                let xp = pointer(xv), yp = pointer(yv), dh = d.handle
                add("softmax \(xs.dims)") {
                    var one: Float = 1, zero: Float = 0
                    try cudnn.check(cudnn.softmaxForward(handle, CUDNNAPI.softmaxAccurate, CUDNNAPI.softmaxModeChannel, &one, dh, xp, &zero, dh, yp),
                                    "cudnnSoftmaxForward")
                }
                count += 1
            case let .reorderToNCHW(xv, yv):
                let shape = g.values[xv].shape
                let f = try generated(GeneratedKernels.reorder(from: storage, to: storage, toChannelsLast: false))
                let dims = Self.chw(shape), xp = pointer(xv), yp = pointer(yv), n = shape.elementCount
                add("reorder to NCHW \(shape.dims)") { [device] in
                    try device.launch(f, count: n, arguments: [.pointer(xp), .pointer(yp), .int64(Int64(n)), .int32(dims.0), .int32(dims.1), .int32(dims.2)])
                }
                count += 1
            }
        }
        // Outputs: converted to float NCHW staging (or read in place for fp32 NCHW, or written as
        // float by the fused head).
        for v in g.outputs {
            let shape = g.values[v].shape
            let bytes = shape.elementCount * 4
            if let written = floatOutputs[g.base(v)] {
                outputStaging.append((shape, written))
            } else if storage == .f32 {
                outputStaging.append((shape, pointer(v)))
            } else {
                let staging = try device.pool.allocate(bytes)
                keep.append(staging)
                outputStaging.append((shape, staging.pointer))
                let f = try generated(GeneratedKernels.reorder(from: storage, to: .f32, toChannelsLast: false))
                let dims = Self.chw(shape), x = pointer(v), n = shape.elementCount
                // A value stored NHWC is read as such; others (rank != 4) are plain, which C=n, H=W=1 copies as is.
                let plain = !(channelsLast && shape.rank == 4)
                add("output to float \(shape.dims)") { [device] in
                    try device.launch(f, count: n, arguments: [.pointer(x), .pointer(staging.pointer), .int64(Int64(n)),
                                                               .int32(plain ? Int32(n) : dims.0), .int32(plain ? 1 : dims.1), .int32(plain ? 1 : dims.2)])
                }
                count += 1
            }
        }
        // The copies to the slot's pinned memory (see record(_:)).
        count += outputStaging.count
        if workspaceNeed > 0 {
            workspace = try device.pool.allocate(workspaceNeed)
            report.workspaceBytes = workspaceNeed
        }
        report.launches = count
    }

    /// Global average pooling and the dense layer after it as one generated kernel (the engine core's
    /// fused head: its output is a group output nothing else reads). The kernel writes float into its
    /// own staging buffer, which the output copy reads (no conversion launch). The output's arena
    /// slot is not used, as the memory plan lets that slot share bytes with the pooling's input,
    /// which the kernel is still reading.
    private func head(_ g: CUDASteps, x xv: Int, y zv: Int, weight: NDArray, bias: [Float]?, relu: Bool) throws {
        let xs = g.values[xv].shape
        let channels = xs[1], hw = xs[2] * xs[3], hidden = weight.shape[0]
        let z = g.base(zv)
        let staging = try device.pool.allocate(g.values[zv].shape.elementCount * 4)
        keep.append(staging)
        let target = staging.pointer
        floatOutputs[z] = target
        let f = try generated(GeneratedKernels.head(storage, channelsLast: channelsLast, relu: relu, output: .f32))
        let wb = try upload(floats(weight), as: storage)
        let bb = try bias.map { try upload($0, as: .f32) }
        let x = pointer(xv), batch = UInt32(xs[0])
        let threads = UInt32(min(256, max(32, (max(channels, hidden) + 31) / 32 * 32)))
        add("pooling + fully connected \(g.values[zv].shape.dims)") { [device] in
            try device.launch(f, grid: (batch, 1, 1), block: (threads, 1, 1), sharedBytes: UInt32(channels * 4),
                              arguments: [.pointer(x), .pointer(wb.pointer), .pointer(bb?.pointer), .pointer(target),
                                          .int32(Int32(channels)), .int32(Int32(hw)), .int32(Int32(hidden))])
        }
    }

    /// cuDNN's pooling mode for a pooling algorithm.
    static func cudnnMode(_ a: PoolingSpec.Algorithm) -> Int32 {
        switch a {
        case .max: return CUDNNAPI.poolingMax
        case .avgIncludePad: return CUDNNAPI.poolingAverageIncludePad
        case .avgExcludePad: return CUDNNAPI.poolingAverageExcludePad
        }
    }

    /// Convolution, bias, residual and ReLU (or identity) as one cudnnConvolutionBiasActivationForward,
    /// when cuDNN runs it for this configuration: the algorithms of cuDNN's ranking are tried in turn
    /// on the arena's bytes (identity only runs with IMPLICIT_PRECOMP_GEMM). nil: use conv + epilogue.
    private func fusedConvolution(x: TensorDescriptor, y: TensorDescriptor, filter: FilterDescriptor, weights: DeviceBuffer, convolution: ConvolutionDescriptor,
                                  bias: [Float], residual: UnsafeMutableRawPointer?, relu: Bool, xp: UnsafeMutableRawPointer,
                                  yp: UnsafeMutableRawPointer, shape: Shape) throws -> (launch: () throws -> Void, workspace: Int)? {
        guard fusedConvolutions else { return nil }
        let cudnn = device.cudnn, handle = device.cudnnHandle
        let biasDesc = try TensorDescriptor(cudnn, dims: [1, shape[1], 1, 1], dataType: storage.cudnn,
                                            format: channelsLast ? CUDNNAPI.formatNHWC : CUDNNAPI.formatNCHW)
        keep.append(biasDesc)
        let act = try ActivationDescriptor(cudnn, mode: relu ? CUDNNAPI.activationReLU : CUDNNAPI.activationIdentity)
        keep.append(act)
        let activationDesc = act.handle
        var candidates: [Int32] = [CUDNNAPI.algoImplicitPrecompGEMM]
        if relu {
            let ranked = try device.forwardAlgorithms(x: x, w: filter, conv: convolution, y: y, measure: timesAlgorithms)
            candidates = ranked + candidates.filter { !ranked.contains($0) }
        }
        // The bias in the storage type, as the fused call's half and bfloat16 configurations read it.
        let biasBuffer = try upload(bias, as: storage)
        let z = residual ?? yp
        let alpha2: Float = residual == nil ? 0 : 1
        let xd = x.handle, yd = y.handle, bd = biasDesc.handle, fd = filter.handle, cd = convolution.handle
        // Every candidate the fused call runs, checked once; with several, the fastest on the device.
        var working: [(algorithm: Int32, workspace: Int)] = []
        var scratch: DeviceBuffer?
        for algo in candidates {
            guard let need = device.forwardWorkspace(x: x, w: filter, conv: convolution, y: y, algorithm: algo), need <= 256 << 20 else { continue }
            if need > scratch?.byteCount ?? 0 { scratch = try device.pool.allocate(need) }
            var one: Float = 1, a2 = alpha2
            let status = cudnn.convolutionBiasActivationForward(handle, &one, xd, xp, fd, weights.pointer, cd, algo, scratch?.pointer, need,
                                                                &a2, yd, z, bd, biasBuffer.pointer, activationDesc, yd, yp)
            try device.synchronize()
            guard status == 0 else { continue }
            working.append((algo, need))
            if !tunesFusedConvolutions { break }
        }
        guard var chosen = working.first else { return nil }
        if working.count > 1 {
            let space = scratch
            let ms = try device.deviceMilliseconds(working.map { w in
                { () throws -> Void in
                    var one: Float = 1, a2 = alpha2
                    try cudnn.check(cudnn.convolutionBiasActivationForward(handle, &one, xd, xp, fd, weights.pointer, cd, w.algorithm, space?.pointer,
                                                                           w.workspace, &a2, yd, z, bd, biasBuffer.pointer, activationDesc, yd, yp),
                                    "cudnnConvolutionBiasActivationForward")
                }
            }, repeats: 5)
            if let best = ms.indices.min(by: { ms[$0] < ms[$1] }) { chosen = working[best] }
        }
        let algo = chosen.algorithm
        let launch: () throws -> Void = { [unowned self] in
            var one: Float = 1, a2 = alpha2
            try cudnn.check(cudnn.convolutionBiasActivationForward(handle, &one, xd, xp, fd, weights.pointer, cd, algo,
                                                                   self.workspace?.pointer, self.workspace?.byteCount ?? 0, &a2, yd, z, bd,
                                                                   biasBuffer.pointer, activationDesc, yd, yp), "cudnnConvolutionBiasActivationForward")
        }
        return (launch, chosen.workspace)
    }

    /// (C, H, W) of a shape read as (N, C, H, W), missing axes 1; as Int32 for kernel arguments.
    static func chw(_ s: Shape) -> (Int32, Int32, Int32) {
        let d = s.dims
        return (Int32(d.count > 1 ? d[1] : 1), Int32(d.count > 2 ? d[2] : 1), Int32(d.count > 3 ? d.dropFirst(3).reduce(1, *) : 1))
    }

    /// KCRS weights as KRSC (channels last), as cuDNN's NHWC filter format reads them.
    static func toKRSC(_ w: NDArray) -> NDArray {
        let d = w.shape.dims
        let (k, c, r, s) = (d[0], d[1], d[2], d[3])
        var out = NDArray(zeros: w.shape, dtype: .float32)
        w.withUnsafeBufferPointer(as: Float.self) { src in
            out.withUnsafeMutableBufferPointer(as: Float.self) { dst in
                for a in 0..<k { for b in 0..<c { for y in 0..<r { for x in 0..<s {
                    dst[((a * r + y) * s + x) * c + b] = src[((a * c + b) * r + y) * s + x]
                } } } }
            }
        }
        return out
    }

    private func add(_ label: String, _ body: @escaping () throws -> Void) { launches.append((label, body)) }

    private func runLaunches() throws {
        for l in launches { try l.run() }
    }

    /// Device time per launch (median over `rounds` forwards, each queued launch by launch between
    /// events behind a spinning kernel; see ``CUDADevice/deviceMilliseconds(_:repeats:)``),
    /// summed by label, slowest first, as report lines.
    func profile(rounds: Int = 20) throws -> [String] {
        var times = Array(repeating: [Double](), count: launches.count)
        for _ in 0..<max(1, rounds) {
            let ms = try device.deviceMilliseconds(launches.map(\.run), repeats: 1)
            for k in launches.indices { times[k].append(ms[k]) }
        }
        var byLabel: [String: (ms: Double, count: Int)] = [:]
        var total = 0.0
        for (k, l) in launches.enumerated() {
            let sorted = times[k].sorted()
            let median = sorted[sorted.count / 2]
            total += median
            byLabel[l.label, default: (0, 0)].ms += median
            byLabel[l.label, default: (0, 0)].count += 1
        }
        var lines = [String(format: "profile: %d launches, %.3f ms of device time per forward (medians; a graph replay saves the gaps between launches)", launches.count, total)]
        for (label, v) in byLabel.sorted(by: { $0.value.ms > $1.value.ms }) {
            lines.append(String(format: "  %8.3f ms %5.1f%%  %3dx %@", v.ms, total > 0 ? 100 * v.ms / total : 0, v.count, label))
        }
        return lines
    }

    /// One forward's work on the stream: the slot's inputs in, the kernels, the outputs into the slot.
    private func record(_ slot: Slot) throws {
        for (s, host) in zip(inputStaging, slot.inputs) { try device.copy(toDevice: s.device, from: host, bytes: s.shape.elementCount * 4) }
        try runLaunches()
        for (o, host) in zip(outputStaging, slot.outputs) { try device.copy(toHost: host, from: o.device, bytes: o.shape.elementCount * 4) }
    }

    private func capture(_ slot: Slot) throws {
        let rt = device.runtime
        try rt.check(rt.streamBeginCapture(device.stream, RuntimeAPI.captureModeThreadLocal), "cudaStreamBeginCapture")
        var failure: Error?
        do { try record(slot) } catch { failure = error }
        var graph: Ptr = nil
        let ended = rt.streamEndCapture(device.stream, &graph)
        if let failure { throw failure }
        try rt.check(ended, "cudaStreamEndCapture")
        defer { _ = rt.graphDestroy(graph) }
        var exec: Ptr = nil
        try rt.check(rt.graphInstantiate(&exec, graph, 0), "cudaGraphInstantiate")
        slot.graphExec = exec
    }

    func run(_ inputs: [String: NDArray], isTrain: Bool) throws -> [NDArray] {
        guard !isTrain else { throw CUDAError.invalidArgument("The cuda engine runs inference only") }
        return try startRun(inputs).wait()
    }

    /// Waits for the slot's last forward, copies `inputs` into its pinned memory, and queues the
    /// forward (the slot's CUDA graph, or its launches one by one) and the slot's event.
    private func startRun(_ inputs: [String: NDArray]) throws -> Pending {
        try device.makeCurrent()
        var arrays: [NDArray] = []
        for s in inputStaging {
            guard let v = inputs[s.name] else { throw CUDAError.missingInput(name: s.name, known: inputStaging.map(\.name)) }
            guard v.shape == s.shape else { throw CUDAError.inputShape(name: s.name, expected: s.shape, actual: v.shape) }
            guard v.dtype == .float32 else { throw CUDAError.inputType(name: s.name, expected: .float32, actual: v.dtype) }
            arrays.append(v)
        }
        let slot = slots[nextSlot]
        nextSlot = (nextSlot + 1) % slots.count
        let rt = device.runtime
        try rt.check(rt.eventSynchronize(slot.event), "cudaEventSynchronize")
        slot.generation += 1
        for (v, host) in zip(arrays, slot.inputs) {
            v.withUnsafeBytes { if let base = $0.baseAddress { host.copyMemory(from: base, byteCount: $0.count) } }
        }
        if slot.graphExec != nil {
            try rt.check(rt.graphLaunch(slot.graphExec, device.stream), "cudaGraphLaunch")
        } else {
            try record(slot)
        }
        try rt.check(rt.eventRecord(slot.event, device.stream), "cudaEventRecord")
        return Pending(plan: self, slot: slot, generation: slot.generation)
    }

    /// A forward queued in a slot; its outputs are read from the slot's pinned memory once its event
    /// has passed, as long as no later forward has taken the slot.
    final class Pending: PendingRun {
        let plan: CUDAEnginePlan
        let slot: Slot
        let generation: Int

        init(plan: CUDAEnginePlan, slot: Slot, generation: Int) {
            self.plan = plan
            self.slot = slot
            self.generation = generation
        }

        func wait() throws -> [NDArray] {
            guard slot.generation == generation else {
                throw CUDAError.invalidArgument("This forward's outputs were overwritten by \(CUDAEnginePlan.slotCount) later forwards before they were read")
            }
            let rt = plan.device.runtime
            try plan.device.makeCurrent()
            try rt.check(rt.eventSynchronize(slot.event), "cudaEventSynchronize")
            return zip(plan.outputStaging, slot.outputs).map { o, host in
                var a = NDArray(zeros: o.shape, dtype: .float32)
                a.withUnsafeMutableBytes { if let base = $0.baseAddress { base.copyMemory(from: host, byteCount: $0.count) } }
                return a
            }
        }
    }
}

extension CUDAEnginePlan: StartableGraph {
    func start(_ inputs: [String: NDArray]) throws -> (any PendingRun)? { try startRun(inputs) }
}
