// Module: a symbol bound for training and inference on batches (MXNet's mx.mod.Module).
//
//   Module(symbol:) ─ bind(dataShapes:labelShapes:) ─ initParams(initializer:) ─ initOptimizer(_:)
//        │                                                                        │
//        └──────────── per batch: forward(batch, isTrain: true) ─ backward() ─ update()
//
// The Module owns the parameters (argParams, auxParams) and hands them to its executor before each
// forward, so an executor reshaped for a batch of another size sees the same, current weights.
// Inputs (data and labels) are bound without gradients, parameters with gradReq write.

import Foundation
import KilnCore
import KilnGraph
import KilnRuntime

/// A symbol with its parameters, trained and evaluated batch by batch (MXNet's `mx.mod.Module`).
///
/// ```
/// let module = try Module(symbol: net, dataNames: ["data"], labelNames: ["softmax_label"])
/// try module.fit(trainData: train, evalData: test, epochs: 10,
///                optimizer: SGD(learningRate: 0.1, momentum: 0.9), initializer: Xavier())
/// let probabilities = try module.predict(data: test)
/// ```
public final class Module {
    public let symbol: Symbol
    public let dataNames: [String]
    public let labelNames: [String]
    /// Parameters bound without a gradient and never updated (MXNet's `fixed_param_names`).
    public let fixedParameterNames: Set<String>
    /// What runs the graph; it must implement backward for training.
    public let backend: any Backend

    /// The arguments that are parameters (all but data and labels), in the symbol's order.
    public let parameterNames: [String]
    /// The auxiliary states (BatchNorm's moving statistics), in the symbol's order.
    public let auxiliaryNames: [String]

    /// What `bind` was given.
    public private(set) var dataShapes: [DataDescription] = []
    public private(set) var labelShapes: [DataDescription] = []
    public private(set) var isBound = false
    public private(set) var forTraining = false
    public private(set) var paramsInitialized = false
    public private(set) var optimizer: Optimizer?

    var argParams: [String: NDArray] = [:]
    var auxParams: [String: NDArray] = [:]
    /// The executor bound for `dataShapes`, and the one that ran the last forward (another one when a
    /// batch came with other shapes).
    var mainExecutor: Executor?
    var currentExecutor: Executor?
    /// Executors reshaped from the main one, by their input shapes (a last short batch, evaluation
    /// data in other batches), kept so that each shape is compiled once.
    var reshapedExecutors: [[String: Shape]: Executor] = [:]
    var lastForwardWasTraining = false

    /// - Parameters:
    ///   - dataNames, labelNames: the symbol's input variables fed from each batch's data and label.
    ///     A label name the symbol does not have is ignored (a symbol without a loss).
    public init(symbol: Symbol, dataNames: [String] = ["data"], labelNames: [String] = ["softmax_label"],
                fixedParameterNames: [String] = [], backend: any Backend = OpByOpBackend.framework) throws {
        let arguments = symbol.listArguments()
        for name in dataNames where !arguments.contains(name) {
            throw KilnTrainError.invalidArgument("The data name '\(name)' is not an argument of the symbol; its arguments are \(arguments.joined(separator: ", "))")
        }
        for name in fixedParameterNames where !arguments.contains(name) {
            throw KilnTrainError.invalidArgument("The fixed parameter '\(name)' is not an argument of the symbol")
        }
        self.symbol = symbol
        self.dataNames = dataNames
        self.labelNames = labelNames.filter(arguments.contains)
        self.fixedParameterNames = Set(fixedParameterNames)
        self.backend = backend
        let inputs = Set(dataNames + labelNames)
        parameterNames = arguments.filter { !inputs.contains($0) }
        auxiliaryNames = symbol.listAuxiliaryStates()
    }

    /// A module holding the symbol and parameters of an MXNet checkpoint (`PREFIX-symbol.json`,
    /// `PREFIX-EPOCH.params`); bind it, then predict or go on training.
    public static func load(prefix: String, epoch: Int, dataNames: [String] = ["data"], labelNames: [String] = ["softmax_label"],
                            backend: any Backend = OpByOpBackend.framework) throws -> Module {
        let (symbol, args, aux) = try Checkpoint.load(prefix: prefix, epoch: epoch)
        let module = try Module(symbol: symbol, dataNames: dataNames, labelNames: labelNames, backend: backend)
        module.argParams = args
        module.auxParams = aux
        module.paramsInitialized = true
        return module
    }

    // MARK: Binding

    /// Binds the symbol for inputs of these shapes (MXNet's `bind`).
    ///
    /// Data and labels get no gradient; parameters get gradReq write when `forTraining` (except fixed
    /// ones). Parameters set before (by `load` or an earlier bind) are kept and must fit the shapes.
    public func bind(dataShapes: [DataDescription], labelShapes: [DataDescription] = [], forTraining: Bool = true) throws {
        for name in dataNames where !dataShapes.contains(where: { $0.name == name }) {
            throw KilnTrainError.invalidArgument("bind got no shape for the data input '\(name)'; given: \(dataShapes.map(\.name).joined(separator: ", "))")
        }
        let arguments = Set(symbol.listArguments())
        for d in dataShapes + labelShapes where !arguments.contains(d.name) {
            throw KilnTrainError.invalidArgument("bind got a shape for '\(d.name)', which is not an argument of the symbol")
        }
        var shapes: [String: Shape] = [:], types: [String: DType] = [:]
        for d in dataShapes + labelShapes {
            shapes[d.name] = d.shape
            types[d.name] = d.dtype
        }
        var requests: [String: GradReq] = [:]
        for name in parameterNames { requests[name] = forTraining && !fixedParameterNames.contains(name) ? .write : .null }
        let executor = try symbol.bind(shapes: shapes, types: types, gradReq: .null, gradReqs: requests, backend: backend)
        if paramsInitialized {
            try checkShapes(argParams, against: executor.argDict, names: parameterNames, allowMissing: false)
            try checkShapes(auxParams, against: executor.auxDict, names: auxiliaryNames, allowMissing: false)
        }
        self.dataShapes = dataShapes
        self.labelShapes = labelShapes
        self.forTraining = forTraining
        mainExecutor = executor
        currentExecutor = executor
        reshapedExecutors = [:]
        isBound = true
    }

    func checkShapes(_ given: [String: NDArray], against bound: [String: NDArray], names: [String], allowMissing: Bool) throws {
        for name in names {
            guard let target = bound[name] else { continue }
            guard let value = given[name] else {
                if allowMissing { continue }
                throw KilnTrainError.missingParameter(name: name)
            }
            guard value.shape == target.shape else {
                throw KilnTrainError.shapeMismatch(what: "The parameter '\(name)'", expected: target.shape, actual: value.shape)
            }
        }
    }

    /// The batch size bound (the first axis of the first data input).
    public var batchSize: Int { dataShapes.first?.shape.dims.first ?? 0 }

    // MARK: Parameters

    /// Initializes the parameters (MXNet's `init_params`): a parameter found in `argParams` or
    /// `auxParams` takes that value; any other is filled by `initializer` when `allowMissing` or no
    /// dictionary is given, and is an error otherwise. Does nothing when already initialized, unless
    /// `forceInit`.
    ///
    /// - Parameter seed: with each parameter's name, determines its random values.
    public func initParams(initializer: (any Initializer)? = Uniform(scale: 0.01), argParams: [String: NDArray]? = nil,
                           auxParams: [String: NDArray]? = nil, allowMissing: Bool = false, forceInit: Bool = false,
                           seed: UInt64 = 0) throws {
        guard let executor = mainExecutor else { throw KilnTrainError.notReady(operation: "initParams", needs: "bind") }
        if paramsInitialized && !forceInit { return }
        let attributes = variableAttributes()
        func fill(_ names: [String], _ bound: [String: NDArray], _ given: [String: NDArray]?) throws -> [String: NDArray] {
            var out: [String: NDArray] = [:]
            for name in names {
                guard var array = bound[name] else { continue }
                if let given, let value = given[name] {
                    guard value.shape == array.shape else {
                        throw KilnTrainError.shapeMismatch(what: "The given value of '\(name)'", expected: array.shape, actual: value.shape)
                    }
                    out[name] = value.dtype == array.dtype ? value : value.converted(to: array.dtype)
                    continue
                }
                if given != nil && !allowMissing { throw KilnTrainError.missingParameter(name: name) }
                guard let initializer else { throw KilnTrainError.missingParameter(name: name) }
                array = NDArray(zeros: array.shape, dtype: array.dtype)
                try initializer.initialize(&array, name: name, attributes: attributes[name] ?? [:], seed: seed)
                out[name] = array
            }
            return out
        }
        let args = try fill(parameterNames, executor.argDict, argParams)
        let aux = try fill(auxiliaryNames, executor.auxDict, auxParams)
        self.argParams = args
        self.auxParams = aux
        paramsInitialized = true
    }

    /// Sets the parameters from dictionaries (MXNet's `set_params`); with `allowMissing`, parameters
    /// not given keep their current values, or are filled by `initializer` when they have none.
    public func setParams(argParams: [String: NDArray], auxParams: [String: NDArray] = [:], allowMissing: Bool = false,
                          initializer: (any Initializer)? = nil, seed: UInt64 = 0) throws {
        var args = argParams, aux = auxParams
        if allowMissing {
            args.merge(self.argParams) { given, _ in given }
            aux.merge(self.auxParams) { given, _ in given }
        }
        try initParams(initializer: initializer, argParams: args, auxParams: aux, allowMissing: allowMissing,
                       forceInit: true, seed: seed)
    }

    /// The current parameters: arguments (without data and labels) and auxiliary states (MXNet's `get_params`).
    public func getParams() -> (argParams: [String: NDArray], auxParams: [String: NDArray]) { (argParams, auxParams) }

    /// Each variable's attributes, where `__init__`, `__lr_mult__` and `__wd_mult__` are read.
    func variableAttributes() -> [String: [String: String]] {
        var result: [String: [String: String]] = [:]
        for node in symbol.graph.nodes where node.isVariable { result[node.name] = node.attributes.values }
        return result
    }

    /// Saves the symbol and the parameters as MXNet's `save_checkpoint` (`PREFIX-symbol.json`,
    /// `PREFIX-EPOCH.params` with `arg:` and `aux:` names).
    public func saveCheckpoint(prefix: String, epoch: Int) throws {
        guard paramsInitialized else { throw KilnTrainError.notReady(operation: "saveCheckpoint", needs: "initParams") }
        try Checkpoint.save(prefix: prefix, epoch: epoch, symbol: symbol, argParams: argParams, auxParams: auxParams)
    }

    // MARK: Optimizer

    /// Takes the optimizer for ``update()`` (MXNet's `init_optimizer`). As MXNet's Module does, it sets
    /// the optimizer's gradient rescaling to 1 / batch size unless the optimizer has its own, turns weight
    /// decay off for parameters not named `*_weight` or `*_gamma`, and reads the variables'
    /// `__lr_mult__` and `__wd_mult__` attributes.
    public func initOptimizer(_ optimizer: Optimizer) throws {
        guard isBound else { throw KilnTrainError.notReady(operation: "initOptimizer", needs: "bind") }
        if optimizer.rescaleGradient == nil, batchSize > 0 { optimizer.rescaleGradient = 1 / Double(batchSize) }
        optimizer.setMultipliers(from: symbol, parameterNames: parameterNames)
        self.optimizer = optimizer
    }

    // MARK: Running

    /// Runs the network on one batch (MXNet's `forward`). A batch whose shapes differ from those
    /// bound (a smaller last batch) runs on an executor reshaped for it.
    public func forward(_ batch: DataBatch, isTrain: Bool? = nil) throws {
        guard let main = mainExecutor else { throw KilnTrainError.notReady(operation: "forward", needs: "bind") }
        guard paramsInitialized else { throw KilnTrainError.notReady(operation: "forward", needs: "initParams") }
        let training = isTrain ?? forTraining
        guard batch.data.count == dataNames.count else {
            throw KilnTrainError.invalidArgument("The batch has \(batch.data.count) data arrays for the data inputs \(dataNames.joined(separator: ", "))")
        }
        let labels = labelNames.isEmpty ? [] : batch.label
        guard labels.isEmpty || labels.count == labelNames.count else {
            throw KilnTrainError.invalidArgument("The batch has \(batch.label.count) label arrays for the label inputs \(labelNames.joined(separator: ", "))")
        }
        var inputs: [String: NDArray] = [:]
        for (name, array) in zip(dataNames, batch.data) { inputs[name] = array }
        for (name, array) in zip(labelNames, labels) { inputs[name] = array }
        let executor = try executor(for: inputs, main: main)
        for (name, value) in inputs { executor.argDict[name] = value }
        for name in parameterNames { if let p = argParams[name] { executor.argDict[name] = p } }
        for name in auxiliaryNames { if let a = auxParams[name] { executor.auxDict[name] = a } }
        try executor.forward(isTrain: training)
        if training { for name in auxiliaryNames { if let a = executor.auxDict[name] { auxParams[name] = a } } }
        currentExecutor = executor
        lastForwardWasTraining = training
    }

    /// The executor whose input shapes fit `inputs`: the main one, or one reshaped from it.
    func executor(for inputs: [String: NDArray], main: Executor) throws -> Executor {
        if inputs.allSatisfy({ main.argDict[$0.key]?.shape == $0.value.shape }) { return main }
        let shapes = inputs.mapValues(\.shape)
        if let e = reshapedExecutors[shapes] { return e }
        let e = try main.reshaped(shapes)
        reshapedExecutors[shapes] = e
        return e
    }

    /// Computes the parameters' gradients from the last training forward (MXNet's `backward`).
    public func backward() throws {
        guard let executor = currentExecutor, forTraining else { throw KilnTrainError.notReady(operation: "backward", needs: "bind(forTraining: true)") }
        guard lastForwardWasTraining else { throw KilnTrainError.notReady(operation: "backward", needs: "forward(isTrain: true)") }
        try executor.backward()
        // MXNet 1.9 moves BatchNorm's moving statistics in backward; keep whatever the executor holds now.
        for name in auxiliaryNames { if let a = executor.auxDict[name] { auxParams[name] = a } }
    }

    /// Updates every parameter that has a gradient with the optimizer (MXNet's `update`).
    public func update() throws {
        guard let optimizer else { throw KilnTrainError.notReady(operation: "update", needs: "initOptimizer") }
        guard let executor = currentExecutor else { throw KilnTrainError.notReady(operation: "update", needs: "bind") }
        for name in parameterNames where !fixedParameterNames.contains(name) {
            guard let gradient = executor.gradDict[name], var weight = argParams.removeValue(forKey: name) else { continue }
            defer { argParams[name] = weight }
            try optimizer.update(name, weight: &weight, gradient: gradient)
        }
    }

    /// The outputs of the last forward, one per output of the symbol.
    public var outputs: [NDArray] { currentExecutor?.outputs ?? [] }

    /// The gradient of each parameter from the last backward.
    public var gradients: [String: NDArray] { currentExecutor?.gradDict ?? [:] }
}
