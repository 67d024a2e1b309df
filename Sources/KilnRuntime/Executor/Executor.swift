import KilnCore
import KilnGraph

/// Where arrays live and kernels run.
public enum Context: Sendable, Equatable, CustomStringConvertible {
    case cpu
    case gpu(Int)

    public var description: String {
        switch self {
        case .cpu: return "cpu(0)"
        case let .gpu(i): return "gpu(\(i))"
        }
    }
}

/// How an argument's gradient is stored by `backward` (training issue); inference binds use `.null`.
public enum GradReq: String, Sendable {
    case null, write, add
}

/// A symbol bound to shapes and arrays, ready to run (MXNet's `Executor`).
///
/// ```
/// let exec = try net.bind(shapes: ["data": [16, 1, 28, 28]], sharedBuffer: params)
/// exec.argDict["data"] = batch
/// try exec.forward()
/// let probabilities = exec.outputs[0]
/// ```
public final class Executor {
    public let symbol: Symbol
    public let context: Context
    public let backend: any Backend
    /// Argument arrays by name (inputs and weights). Set an entry to feed new data; its shape and dtype
    /// must stay those bound, which `forward` checks.
    public var argDict: [String: NDArray]
    /// Auxiliary states by name (BatchNorm's moving statistics).
    public var auxDict: [String: NDArray]
    /// The outputs of the last `forward`, one per output of the symbol. After ``startForward()``,
    /// reading them waits for that run; should the wait fail, they are NaN and the next
    /// `forward`, `startForward` or ``waitToRead()`` throws the error.
    public var outputs: [NDArray] {
        if let error = resolvePending() { pendingError = error }
        return latestOutputs
    }
    private var latestOutputs: [NDArray]
    /// The run ``startForward()`` started and nobody has waited for yet.
    private var pending: (any PendingRun)?
    /// Why the last wait for a started run failed, until it is thrown.
    private var pendingError: (any Error)?
    /// Gradients by argument name, written by `backward` for arguments bound with a request other than `.null`.
    public private(set) var gradDict: [String: NDArray] = [:]
    /// The gradient request of each argument.
    public let gradReqs: [String: GradReq]
    /// The shapes everything was bound with.
    public let shapes: InferredShapes
    public let types: InferredTypes
    let graph: Graph
    let plan: any CompiledGraph

    init(symbol: Symbol, context: Context, backend: any Backend, shapes: InferredShapes, types: InferredTypes,
         argDict: [String: NDArray], auxDict: [String: NDArray], gradReqs: [String: GradReq] = [:]) throws {
        guard backend.runs(on: context) else {
            throw RuntimeError.invalidArgument("The \(backend.name) backend does not run on \(context); bind with context: .cpu, or with a GPU backend for .gpu")
        }
        self.symbol = symbol
        self.context = context
        self.backend = backend
        self.graph = symbol.graph
        self.shapes = shapes
        self.types = types
        self.argDict = argDict
        self.auxDict = auxDict
        self.gradReqs = gradReqs
        let outputNames = symbol.listOutputs()
        var arrays: [(name: String, shape: Shape, dtype: DType)] = zip(shapes.outputs, types.outputs).enumerated().map {
            ("the output '\($0.offset < outputNames.count ? outputNames[$0.offset] : String($0.offset))'", $0.element.0, $0.element.1)
        }
        for (name, req) in gradReqs.sorted(by: { $0.key < $1.key }) where req != .null {
            if let a = argDict[name] { arrays.append(("the gradient of '\(name)'", a.shape, a.dtype)) }
        }
        try MemoryBudget.process.check(arrays: arrays, for: "the outputs and gradients of the executor")
        for (name, req) in gradReqs where req != .null {
            if let a = argDict[name] { gradDict[name] = NDArray(zeros: a.shape, dtype: a.dtype) }
        }
        plan = try backend.compile(graph, shapes: shapes, types: types, constants: [:])
        latestOutputs = zip(shapes.outputs, types.outputs).map { NDArray(zeros: $0, dtype: $1) }
    }

    /// Runs the graph on the current `argDict` and `auxDict`. With `isTrain`, ops behave as in
    /// training (Dropout drops, BatchNorm uses batch statistics).
    public func forward(isTrain: Bool = false) throws {
        try throwPendingError()
        pending = nil
        let inputs = boundInputs
        // Dropping the previous outputs first lets kernels write the plan's buffers in place instead of
        // copying them (they would otherwise still be shared with `outputs`).
        latestOutputs = []
        latestOutputs = try plan.run(inputs, isTrain: isTrain)
        if isTrain, let p = plan as? OpByOpPlan {
            for (name, value) in p.auxiliaryUpdates() where auxDict[name] != nil { auxDict[name] = value }
        }
    }

    /// Starts an inference `forward` and returns without waiting for it, where the bound plan can: a
    /// graph a GPU engine took whole, whose run is queued on the device. Elsewhere this is
    /// `forward()`. Forwards started one after another overlap the host's work (copying the input,
    /// launching) with the device's; ``waitToRead()`` or `outputs` waits for the last one (MXNet's
    /// asynchronous `forward` and `wait_to_read`). The inputs are copied before this returns, so
    /// `argDict` may change at once.
    ///
    /// ```
    /// for batch in batches { exec.argDict["data"] = batch; try exec.startForward() }
    /// let last = try exec.waitToRead()
    /// ```
    public func startForward() throws {
        try throwPendingError()
        pending = nil
        let inputs = boundInputs
        if let startable = plan as? any StartableGraph, let run = try startable.start(inputs) {
            pending = run
        } else {
            try forward()
        }
    }

    /// Waits for the run ``startForward()`` started (if any) and returns the outputs.
    @discardableResult
    public func waitToRead() throws -> [NDArray] {
        try throwPendingError()
        if let error = resolvePending() { throw error }
        return latestOutputs
    }

    /// Waits for the pending run into `latestOutputs`; on failure they become NaN (zeros for integer
    /// outputs) and the error is returned.
    private func resolvePending() -> (any Error)? {
        guard let run = pending else { return nil }
        pending = nil
        do {
            latestOutputs = []
            latestOutputs = try run.wait()
            return nil
        } catch {
            latestOutputs = zip(shapes.outputs, types.outputs).map { shape, dtype in
                dtype == .float32 ? NDArray(shape: shape, values: [Float](repeating: .nan, count: shape.elementCount))
                    : NDArray(zeros: shape, dtype: dtype)
            }
            return error
        }
    }

    /// The arguments and auxiliary states a run reads, by name.
    private var boundInputs: [String: NDArray] { argDict.merging(auxDict) { a, _ in a } }

    private func throwPendingError() throws {
        if let e = pendingError {
            pendingError = nil
            throw e
        }
    }

    static func ones(like a: NDArray) -> NDArray {
        if a.dtype == .float32 { return NDArray(shape: a.shape, values: [Float](repeating: 1, count: a.elementCount)) }
        return NDArray(shape: a.shape, dtype: a.dtype, values: [Double](repeating: 1, count: a.elementCount))
    }

    /// Computes the gradients of the arguments bound with a gradient request, after `forward(isTrain: true)`.
    ///
    /// - Parameter headGradients: the gradient of each output; ones when empty (loss outputs such as
    ///   SoftmaxOutput ignore theirs). One of another dtype than its output is converted to the
    ///   output's, as MXNet copies head gradients into arrays of the outputs' dtypes.
    public func backward(_ headGradients: [NDArray] = []) throws {
        guard let p = plan as? OpByOpPlan else {
            throw RuntimeError.invalidArgument("The \(backend.name) backend runs inference only; bind with the framework backend to train")
        }
        var heads = headGradients.isEmpty ? outputs.map { Self.ones(like: $0) } : headGradients
        guard heads.count == outputs.count else {
            throw RuntimeError.invalidArgument("backward got \(heads.count) head gradients for \(outputs.count) outputs")
        }
        for (k, o) in outputs.enumerated() {
            guard heads[k].shape == o.shape else { throw RuntimeError.argumentShape(name: "head gradient", expected: o.shape, actual: heads[k].shape) }
            // Kernels read gradients by their outputs' bound dtypes.
            heads[k] = heads[k].converted(to: o.dtype)
        }
        var wanted: [Int: String] = [:]
        for (i, n) in graph.nodes.enumerated() where n.isVariable {
            if let r = gradReqs[n.name], r != .null { wanted[i] = n.name }
        }
        let grads = try p.backward(headGradients: heads, wanted: Set(wanted.keys))
        for (i, g) in grads {
            guard let name = wanted[i] else { continue }
            if gradReqs[name] == .add, let old = gradDict[name] { gradDict[name] = try old.addingGradient(g) } else { gradDict[name] = g }
        }
        // MXNet 1.9 updates BatchNorm's moving statistics in its backward pass, not in the forward.
        for (name, value) in p.auxiliaryUpdates() where auxDict[name] != nil { auxDict[name] = value }
    }

    /// Runs `forward` after setting some arguments (MXNet's `forward(is_train, **kwargs)`).
    public func forward(isTrain: Bool = false, _ arguments: [String: NDArray]) throws {
        for (k, v) in arguments {
            guard argDict[k] != nil else { throw RuntimeError.missingArgument(name: k, known: argDict.keys.sorted()) }
            argDict[k] = v
        }
        try forward(isTrain: isTrain)
    }

    /// A new executor for other input shapes (another batch size), sharing this one's weights and
    /// auxiliary states. Arguments whose shape changes start as zeros.
    public func reshaped(_ newShapes: [String: Shape]) throws -> Executor {
        let s = try graph.inferShapes(newShapes)
        var created: [(name: String, shape: Shape, dtype: DType)] = []
        for (name, shape) in zip(graph.argumentNames, s.arguments) where argDict[name]?.shape != shape {
            created.append(("'\(name)'", shape, types.byName[name] ?? .float32))
        }
        try MemoryBudget.process.check(arrays: created, for: "the arguments that reshaping creates")
        var args: [String: NDArray] = [:]
        for (name, shape) in zip(graph.argumentNames, s.arguments) {
            if let old = argDict[name], old.shape == shape { args[name] = old } else {
                args[name] = NDArray(zeros: shape, dtype: types.byName[name] ?? .float32)
            }
        }
        var aux: [String: NDArray] = [:]
        for (name, shape) in zip(graph.auxiliaryNames, s.auxiliaryStates) {
            guard let old = auxDict[name], old.shape == shape else {
                throw RuntimeError.invalidArgument("Reshaping would change the shape of auxiliary state '\(name)'; only input shapes may change")
            }
            aux[name] = old
        }
        return try Executor(symbol: symbol, context: context, backend: backend, shapes: s, types: types, argDict: args, auxDict: aux, gradReqs: gradReqs)
    }
}

extension Symbol {
    /// Binds the symbol for the given input shapes with a given backend; the framework's op-by-op
    /// kernels by default. This is MXNet's `simple_bind` without the engine switch: the umbrella
    /// module's `simpleBind` reads `KILN_USE_ENGINE` and partitions before calling this.
    ///
    /// Shapes not given are inferred (weights from the data). Arrays in `sharedBuffer` (weights and
    /// auxiliary states by name, as a checkpoint gives them) are used as they are and must have the
    /// inferred shapes; every other argument starts as zeros. So labels of loss heads
    /// (``KilnGraph/Symbol/listLabelArguments()``) may be left out at inference, which does not read them.
    ///
    /// - Parameters:
    ///   - gradReq: the gradient request of every argument, unless `gradReqs` names it.
    ///   - gradReqs: per-argument requests (MXNet's dict form of `grad_req`).
    ///   - backend: what runs the graph; the framework's oneDNN kernels by default.
    public func bind(context: Context = .cpu, shapes: [String: Shape], types: [String: DType] = [:],
                           gradReq: GradReq = .null, gradReqs: [String: GradReq] = [:], sharedBuffer: [String: NDArray] = [:],
                           backend: any Backend = OpByOpBackend.framework) throws -> Executor {
        try namingSource {
            try bindNamed(context: context, shapes: shapes, types: types, gradReq: gradReq, gradReqs: gradReqs,
                          sharedBuffer: sharedBuffer, backend: backend)
        }
    }

    private func bindNamed(context: Context, shapes: [String: Shape], types: [String: DType], gradReq: GradReq,
                           gradReqs: [String: GradReq], sharedBuffer: [String: NDArray], backend: any Backend) throws -> Executor {
        let g = graph
        for name in gradReqs.keys where !g.argumentNames.contains(name) {
            throw RuntimeError.missingArgument(name: name, known: g.argumentNames)
        }
        var reqs: [String: GradReq] = [:]
        for name in g.argumentNames { reqs[name] = gradReqs[name] ?? gradReq }
        var givenTypes = types
        for (k, v) in sharedBuffer where givenTypes[k] == nil { givenTypes[k] = v.dtype }
        var givenShapes = shapes
        for (k, v) in sharedBuffer where givenShapes[k] == nil && g.nodes.contains(where: { $0.isVariable && $0.name == k }) {
            givenShapes[k] = v.shape
        }
        let s = try g.inferShapes(givenShapes)
        let t = try g.inferTypes(givenTypes)
        // Arguments and auxiliary states not given start as zeros: check they fit before allocating.
        var created: [(name: String, shape: Shape, dtype: DType)] = []
        for (i, name) in g.argumentNames.enumerated() where sharedBuffer[name] == nil {
            created.append(("'\(name)'", s.arguments[i], t.arguments[i]))
        }
        for (i, name) in g.auxiliaryNames.enumerated() where sharedBuffer[name] == nil {
            created.append(("'\(name)'", s.auxiliaryStates[i], t.auxiliaryStates[i]))
        }
        try MemoryBudget.process.check(arrays: created, for: "the arguments and auxiliary states that bind creates")
        func array(_ name: String, _ shape: Shape, _ dtype: DType) throws -> NDArray {
            guard let v = sharedBuffer[name] else { return NDArray(zeros: shape, dtype: dtype) }
            guard v.shape == shape else { throw RuntimeError.argumentShape(name: name, expected: shape, actual: v.shape) }
            return v
        }
        var args: [String: NDArray] = [:]
        for (i, name) in g.argumentNames.enumerated() { args[name] = try array(name, s.arguments[i], t.arguments[i]) }
        var aux: [String: NDArray] = [:]
        for (i, name) in g.auxiliaryNames.enumerated() { aux[name] = try array(name, s.auxiliaryStates[i], t.auxiliaryStates[i]) }
        return try Executor(symbol: self, context: context, backend: backend, shapes: s, types: t, argDict: args, auxDict: aux, gradReqs: reqs)
    }
}
