import CDNNL
import KilnCore
import KilnEngineCore
import KilnGraph
import KilnRuntime

// A compiled group: the primitives in order, their memory objects bound once to the arena and to
// the packed weights, and the few that point at the caller's arrays (inputs and outputs), which
// `run` re-points before executing. Nothing is allocated per op at run time.
//
// ```
// run(inputs):  bind input arrays ─> execute step 0 ... step n (one stream) ─> outputs (plain)
//               arena: [ conv0 out | pool0 out | ... reused by liveness ... ]
// ```

/// What compiling a group did, for reports, verbose output and tests.
public struct EngineReport: Sendable, CustomStringConvertible {
    /// One primitive executed by the plan.
    public struct Primitive: Sendable {
        /// Node names merged into it (`conv0+bn0+relu0`), or what a reorder moves.
        public let label: String
        /// What it was lowered as (`convolution`, `eltwise(relu)`, `reorder`).
        public let kind: String
        /// oneDNN's implementation (`brg:avx512_core`, `jit:uni`, `ref:any`).
        public let implementation: String
        /// Layout of its destination (`plain`, `blocked 16b`).
        public let destinationLayout: String
        /// Whether it is a reorder at the group's border (inputs in, outputs out).
        public let isBorderReorder: Bool
    }

    /// How the plan was obtained.
    public enum CacheOutcome: Sendable, Equatable {
        /// Compiled; no cache directory was given.
        case compiled
        /// Not in the disk cache: compiled and stored.
        case miss
        /// Found in this process's plan cache: primitives and weights shared, nothing compiled.
        case memoryHit
        /// Loaded from the disk cache: passes skipped, primitives created again.
        case diskHit
        /// A disk entry existed but could not be used (the reason); compiled and stored again.
        case rebuilt(String)
    }

    /// Op nodes in the group as given, and ops after the passes.
    public var graphOps = 0
    /// Ops in the IR after the passes.
    public var optimizedOps = 0
    /// What each pass did (empty when the IR came from a cache).
    public var passes: [PassRecord] = []
    /// The primitives in execution order.
    public var primitives: [Primitive] = []
    /// Bytes of the arena holding every intermediate and scratchpad, reused by liveness.
    public var arenaBytes = 0
    /// Bytes those buffers would take if none were reused.
    public var intermediateBytes = 0
    /// Bytes of weights and other constants the plan holds (in their chosen layouts).
    public var constantBytes = 0
    /// How the plan was obtained.
    public var cache: CacheOutcome = .compiled
    /// The cache key (hex SHA-256).
    public var cacheKey = ""
    /// Seconds spent: building the IR and running the passes (or loading the cache entry), lowering
    /// and planning, and in all.
    public var optimizeSeconds = 0.0
    /// Seconds spent lowering and planning (or making a plan over a cached core).
    public var lowerSeconds = 0.0
    /// Seconds the whole compile took.
    public var totalSeconds = 0.0
    /// The precision the plan computes in (fp32 when a requested one is not available; see ``notes``).
    public var precision = "fp32"
    /// Things a user should know about the compile (a precision fallback, ops kept in fp32).
    public var notes: [String] = []

    /// Reorders inside the group (between ops), as opposed to at its borders.
    public var innerReorders: Int { primitives.filter { $0.kind == "reorder" && !$0.isBorderReorder }.count }
    /// Reorders at the group's borders (plain inputs in, outputs out).
    public var borderReorders: Int { primitives.filter { $0.kind == "reorder" && $0.isBorderReorder }.count }

    public var description: String {
        var lines = [
            "cpu engine (\(precision)): \(graphOps) ops -> \(optimizedOps) after passes -> \(primitives.count) primitives (\(borderReorders) border reorders, \(innerReorders) inner)",
            "  arena \(arenaBytes) bytes for \(intermediateBytes) bytes of intermediates; constants \(constantBytes) bytes",
            "  cache \(cache), key \(cacheKey.prefix(16)); optimize \(ms(optimizeSeconds)), lower \(ms(lowerSeconds)), total \(ms(totalSeconds))",
        ]
        lines += notes.map { "  note: \($0)" }
        lines += passes.map { "  pass \($0)" }
        lines += primitives.map { "  \($0.kind) \($0.label) [\($0.implementation)] -> \($0.destinationLayout)" }
        return lines.joined(separator: "\n")
    }

    private func ms(_ s: Double) -> String { String(Int((s * 1000).rounded())) + " ms" }
}

/// What compiling a group produces and plans share: the optimized IR, the primitives (created once),
/// the weights in their chosen layouts and the memory plan. A plan made from it owns only its arena,
/// stream and memory objects, so the process's plan cache can hand one core to several plans.
final class CompiledCore: @unchecked Sendable {
    let ir: EngineIR
    let buffers: [PlannedBuffer]
    let steps: [PlannedStep]
    let owned: [OwnedBytes]
    let memoryPlan: MemoryPlan
    /// The report's parts that belong to the compiled result (primitives, memory).
    private(set) var report: EngineReport
    /// Convolutions (op indices) whose algorithm was chosen by per-op timing, and the choice; whole-plan
    /// tuning (PlanTuning.swift) revisits them.
    let tuned: [Int: ConvolutionAlgorithm]
    private let roots: [Int]

    /// Lowers `ir`. `tuned`, when given, names the convolutions an earlier lowering chose by timing
    /// (this lowering then finds their algorithms recorded in `ir`).
    init(ir: EngineIR, report template: EngineReport, numerics: LoweringNumerics = .fp32,
         tuned: [Int: ConvolutionAlgorithm]? = nil) throws {
        let stream = try EngineDNNL.wrap("plan") { try DNNLStream(node: "plan") }
        let lowerer = Lowerer(ir: ir, stream: stream, numerics: numerics)
        try lowerer.lower()
        // The algorithms chosen by timing go into the IR, so that a cached copy lowers without timing.
        var decided = ir
        for (i, algorithm) in lowerer.chosenAlgorithms {
            if case var .convolution(spec) = decided.ops[i].lowering {
                spec.algorithm = algorithm
                decided.ops[i].lowering = .convolution(spec)
            }
        }
        self.ir = decided
        self.tuned = tuned ?? lowerer.chosenAlgorithms
        buffers = lowerer.buffers
        steps = lowerer.steps
        owned = lowerer.owned
        roots = buffers.indices.map { lowerer.root($0) }
        // Lifetimes of arena buffers and scratchpads, by the steps touching them (views count for their root).
        var first: [Int: Int] = [:], last: [Int: Int] = [:]
        for (s, step) in lowerer.steps.enumerated() {
            for (_, b) in step.args {
                let r = lowerer.root(b)
                switch lowerer.buffers[r].kind {
                case .arena, .scratch:
                    first[r] = min(first[r] ?? s, s)
                    last[r] = max(last[r] ?? s, s)
                default: break
                }
            }
        }
        let sizes = lowerer.buffers.map(\.bytes)
        memoryPlan = MemoryPlanner.plan(first.keys.sorted().map {
            Lifetime(id: $0, bytes: sizes[$0], first: first[$0] ?? 0, last: last[$0] ?? 0)
        })
        var r = template
        r.optimizedOps = ir.ops.count
        r.arenaBytes = memoryPlan.arenaBytes
        r.intermediateBytes = memoryPlan.totalBytes
        r.constantBytes = owned.reduce(0) { $0 + $1.count }
        let planned = lowerer.buffers
        r.primitives = lowerer.steps.map { step in
            let dst = step.args.first { $0.0 == DNNLArg.dst || $0.0 == DNNLArg.to }.map { EngineDNNL.layoutName(planned[$0.1].desc) } ?? "?"
            return EngineReport.Primitive(label: step.label, kind: step.kind, implementation: EngineDNNL.implementation(step.primitive),
                                          destinationLayout: dst, isBorderReorder: step.role == .borderReorder)
        }
        report = r
    }

    func root(_ b: Int) -> Int { roots[b] }

    /// Adds a line to the report's notes (before the core is shared).
    func appendNote(_ note: String) { report.notes.append(note) }

    /// The primitives' implementations and destination layouts, in order: two cores with the same
    /// signature run the same code.
    var implementationSignature: String {
        report.primitives.map { "\($0.implementation)>\($0.destinationLayout)" }.joined(separator: ";")
    }
}

/// A group compiled by the cpu engine for fixed shapes (see ``CPUEngine``).
///
/// Not safe to run from two threads at once (it owns one arena), like the framework's plans; two
/// plans of the same group may run concurrently.
public final class EnginePlan: CompiledGraph {
    let core: CompiledCore
    /// What compiling this plan did.
    public private(set) var report: EngineReport
    let stream: DNNLStream
    /// `dnnl_exec_arg_t` arrays, one per step, built once.
    let arguments: [[dnnl_exec_arg_t]]
    /// The plan's oneDNN memory objects (destroyed with it), one per buffer a step uses.
    let memories: [dnnl_memory_t]
    let arena: OwnedBytes
    /// Group inputs by name with their shape and the memory objects reading them.
    let inputBindings: [(name: String, shape: Shape, memories: [dnnl_memory_t])]
    let outputBindings: [[dnnl_memory_t]]
    var boundInputs: [NDArray]
    var outputs: [NDArray]

    /// The optimized IR the plan was lowered from.
    public var ir: EngineIR { core.ir }

    init(core: CompiledCore, report: EngineReport) throws {
        self.core = core
        self.report = report
        stream = try EngineDNNL.wrap("plan") { try DNNLStream(node: "plan") }
        let plan = core.memoryPlan
        try MemoryBudget.process.check(bytes: plan.arenaBytes, for: "the cpu engine plan's arena")
        arena = OwnedBytes(count: plan.arenaBytes, zeroed: false)
        var handles: [Int: dnnl_memory_t] = [:]
        var created: [dnnl_memory_t] = []
        var inputs: [String: [dnnl_memory_t]] = [:], outputs: [Int: [dnnl_memory_t]] = [:]
        let engine = try EngineDNNL.engine(node: "plan")
        var failure: EngineError?
        for step in core.steps where failure == nil {
            for (_, b) in step.args where handles[b] == nil {
                let r = core.root(b)
                let pointer: UnsafeMutableRawPointer
                switch core.buffers[r].kind {
                case .arena, .scratch: pointer = arena.pointer + (plan.offsets[r] ?? 0)
                case let .owned(k): pointer = core.owned[k].pointer
                case .input, .output, .view: pointer = arena.pointer   // bound at each run
                }
                var desc = core.buffers[b].desc
                var m: dnnl_memory_t?
                let status = dnnl_memory_create(&m, &desc, engine, pointer)
                guard status == dnnl_success, let m else {
                    failure = .dnnl(call: "dnnl_memory_create", status: Int(status.rawValue), node: core.buffers[b].label)
                    break
                }
                created.append(m)
                handles[b] = m
                if case let .input(name) = core.buffers[r].kind { inputs[name, default: []].append(m) }
                if case let .output(k) = core.buffers[r].kind { outputs[k, default: []].append(m) }
            }
        }
        memories = created
        if let failure { throw failure }
        arguments = core.steps.map { step in step.args.compactMap { a in handles[a.1].map { dnnl_exec_arg_t(arg: a.0, memory: $0) } } }
        let ir = core.ir
        inputBindings = ir.usedInputs.compactMap { name in
            guard let v = ir.values.firstIndex(where: { $0.inputName == name }) else { return nil }
            return (name, ir.values[v].shape, inputs[name] ?? [])
        }
        boundInputs = inputBindings.map { NDArray(zeros: $0.shape) }
        outputBindings = ir.outputs.indices.map { outputs[$0] ?? [] }
        self.outputs = ir.outputs.map { NDArray(zeros: ir.values[$0].shape) }
    }

    deinit { for m in memories { dnnl_memory_destroy(m) } }

    func setReport(_ update: (inout EngineReport) -> Void) { update(&report) }

    /// Names of the inputs `run` needs.
    public var inputNames: [String] { inputBindings.map(\.name) }

    /// Runs the plan on `inputs` (by variable name; constants are baked in) and returns plain outputs. Inference only.
    public func run(_ inputs: [String: NDArray], isTrain: Bool) throws -> [NDArray] {
        guard !isTrain else { throw EngineError.trainingNotSupported }
        for (k, binding) in inputBindings.enumerated() {
            guard let a = inputs[binding.name] else { throw EngineError.missingInput(name: binding.name, known: inputNames) }
            guard a.shape == binding.shape else { throw EngineError.inputShape(name: binding.name, expected: binding.shape, actual: a.shape) }
            guard a.dtype == .float32 else { throw EngineError.inputType(name: binding.name, expected: .float32, actual: a.dtype) }
            // The array is kept in `boundInputs` until the next run, so its buffer outlives the execution.
            boundInputs[k] = a
            let pointer = a.withUnsafeBytes { UnsafeMutableRawPointer(mutating: $0.baseAddress) } ?? arena.pointer
            for m in binding.memories { try check(dnnl_memory_set_data_handle(m, pointer), "dnnl_memory_set_data_handle", binding.name) }
        }
        for k in outputBindings.indices {
            // Copies the output first only if the caller still holds the previous run's array.
            let pointer = outputs[k].withUnsafeMutableBytes { $0.baseAddress } ?? arena.pointer
            for m in outputBindings[k] { try check(dnnl_memory_set_data_handle(m, pointer), "dnnl_memory_set_data_handle", "output \(k)") }
        }
        let steps = core.steps
        for s in steps.indices {
            let status = arguments[s].withUnsafeBufferPointer { dnnl_primitive_execute(steps[s].primitive.handle, stream.handle, Int32($0.count), $0.baseAddress) }
            try check(status, "dnnl_primitive_execute", steps[s].label)
        }
        try check(dnnl_stream_wait(stream.handle), "dnnl_stream_wait", "plan")
        return outputs
    }

    /// Time per primitive: runs the plan `rounds` times on `inputs`, waiting after each step, and
    /// returns each step's label, kind, implementation and median seconds (waiting adds a little to each).
    public func profile(_ inputs: [String: NDArray], rounds: Int = 10) throws -> [(label: String, kind: String, implementation: String, seconds: Double)] {
        _ = try run(inputs, isTrain: false)
        let steps = core.steps
        var times = Array(repeating: [Double](), count: steps.count)
        let clock = ContinuousClock()
        for _ in 0..<max(1, rounds) {
            for s in steps.indices {
                let start = clock.now
                let status = arguments[s].withUnsafeBufferPointer { dnnl_primitive_execute(steps[s].primitive.handle, stream.handle, Int32($0.count), $0.baseAddress) }
                try check(status, "dnnl_primitive_execute", steps[s].label)
                try check(dnnl_stream_wait(stream.handle), "dnnl_stream_wait", steps[s].label)
                let d = clock.now - start
                times[s].append(Double(d.components.seconds) + Double(d.components.attoseconds) * 1e-18)
            }
        }
        return steps.indices.map { s in
            let sorted = times[s].sorted()
            return (steps[s].label, steps[s].kind, report.primitives[s].implementation, sorted[sorted.count / 2])
        }
    }

    private func check(_ status: dnnl_status_t, _ call: String, _ node: String) throws {
        if status != dnnl_success { throw EngineError.dnnl(call: call, status: Int(status.rawValue), node: node) }
    }
}
