import Foundation
import KilnCore
import KilnRuntime
import KilnTrain

/// A learnable array of a block or one of its running statistics (Gluon's `Parameter`).
///
/// Parameters are shared by reference: the block and every ``ParameterDict`` that collects it see the
/// same data. A dimension 0 in ``shape`` is unknown (deferred) until the block first runs on an input
/// or a parameter file gives it.
public final class Parameter {
    /// The full Gluon name, such as `cifarresnetv10_conv0_weight`.
    public internal(set) var name: String
    /// The name within its block, such as `weight` (the last part of the structural name).
    public let key: String
    /// The shape; 0 marks a dimension not known yet.
    public internal(set) var shape: Shape
    /// The element type.
    public let dtype: DType
    /// The gradient request; `.null` for BatchNorm's running statistics and fixed gamma/beta.
    public var gradReq: GradReq
    /// Whether this is an auxiliary state of the graph (running mean and variance) rather than an argument.
    public let isAuxiliary: Bool
    private var value: NDArray?
    /// The initializer to run once the shape becomes known (deferred initialization).
    var pendingInitializer: (any Initializer, UInt64)?

    /// A parameter called `key` within its block; the block gives it its full name when it registers it.
    public init(_ key: String, shape: Shape, dtype: DType = .float32, gradReq: GradReq = .write, isAuxiliary: Bool = false) {
        self.name = key
        self.key = key
        self.shape = shape
        self.dtype = dtype
        self.gradReq = gradReq
        self.isAuxiliary = isAuxiliary
    }

    /// Whether every dimension of the shape is known.
    public var hasKnownShape: Bool { !shape.dims.contains(0) }

    /// Whether the parameter holds data.
    public var isInitialized: Bool { value != nil }

    /// The data; throws when the parameter has none yet.
    public func data() throws -> NDArray {
        guard let value else {
            if pendingInitializer != nil { throw GluonError.deferredShape(parameter: name, shape: shape.dims) }
            throw GluonError.uninitialized(parameter: name)
        }
        return value
    }

    /// The data, or nil before initialization.
    public var dataIfInitialized: NDArray? { value }

    /// Replaces the data. Its shape must equal the known dimensions of ``shape``; unknown ones are taken
    /// from it. `source` names where the data came from, for the error message.
    public func setData(_ array: NDArray, source: String = "the new data") throws {
        guard array.shape.rank == shape.rank,
              zip(array.shape.dims, shape.dims).allSatisfy({ $1 == 0 || $0 == $1 }) else {
            throw GluonError.shapeMismatch(parameter: name, expected: shape.dims, actual: array.shape.dims, source: source)
        }
        shape = array.shape
        value = array.dtype == dtype ? array : array.converted(to: dtype)
        pendingInitializer = nil
    }

    /// Fills the parameter with `initializer` by MXNet's naming rule (weights by the initializer,
    /// biases/beta/running_mean 0, gamma/running_var 1), or defers until the shape is known.
    public func initialize(_ initializer: any Initializer = Uniform(scale: 0.07), seed: UInt64 = 0, forceReinit: Bool = false) throws {
        if value != nil && !forceReinit { return }
        guard hasKnownShape else {
            pendingInitializer = (initializer, seed)
            return
        }
        var array = NDArray(zeros: shape, dtype: dtype)
        try initializer.initialize(&array, name: name, seed: seed)
        value = array
        pendingInitializer = nil
    }

    /// Sets a shape found by inference and runs a deferred initializer.
    func completeShape(_ inferred: Shape) throws {
        guard inferred.rank == shape.rank,
              zip(inferred.dims, shape.dims).allSatisfy({ $1 == 0 || $0 == $1 }) else {
            throw GluonError.shapeMismatch(parameter: name, expected: shape.dims, actual: inferred.dims, source: "shape inference")
        }
        shape = inferred
        if value == nil, let (initializer, seed) = pendingInitializer {
            try initialize(initializer, seed: seed)
        }
    }
}

/// An ordered collection of parameters by full name (Gluon's `ParameterDict`).
public struct ParameterDict: Sequence {
    /// The parameters in Gluon's order: a block's own, then its children's, depth first.
    public private(set) var parameters: [Parameter]

    /// A dictionary of the given parameters, keeping their order and dropping repeats.
    public init(_ parameters: [Parameter] = []) {
        var seen = Set<ObjectIdentifier>()
        self.parameters = parameters.filter { seen.insert(ObjectIdentifier($0)).inserted }
    }

    /// The parameters in order.
    public func makeIterator() -> IndexingIterator<[Parameter]> { parameters.makeIterator() }

    /// The number of parameters.
    public var count: Int { parameters.count }

    /// The full names in order.
    public var names: [String] { parameters.map(\.name) }

    /// The parameter with a full name, or nil.
    public subscript(name: String) -> Parameter? { parameters.first { $0.name == name } }

    /// The data of every initialized parameter by full name (`cifarresnetv10_conv0_weight`), for
    /// `bind(sharedBuffer:)` and Checkpoint.
    public var arrays: [String: NDArray] {
        var out: [String: NDArray] = [:]
        for p in parameters { if let v = p.dataIfInitialized { out[p.name] = v } }
        return out
    }

    /// Initializes every parameter (see ``Parameter/initialize(_:seed:forceReinit:)``); MXNet's Gluon
    /// default is `Uniform(scale: 0.07)` for weights.
    public func initialize(_ initializer: any Initializer = Uniform(scale: 0.07), seed: UInt64 = 0, forceReinit: Bool = false) throws {
        for p in parameters { try p.initialize(initializer, seed: seed, forceReinit: forceReinit) }
    }

    /// Sets each parameter from `arrays` by full name; throws naming the first missing or extra name
    /// unless allowed.
    public func setData(_ arrays: [String: NDArray], source: String = "the given arrays",
                        allowMissing: Bool = false, ignoreExtra: Bool = false) throws {
        let known = Set(names)
        if !ignoreExtra, let extra = arrays.keys.sorted().first(where: { !known.contains($0) }) {
            throw GluonError.extraParameter(file: source, parameter: extra)
        }
        for p in parameters {
            guard let a = arrays[p.name] else {
                if allowMissing { continue }
                throw GluonError.missingParameter(file: source, parameter: p.name)
            }
            try p.setData(a, source: source)
        }
    }

    /// The parameters whose full names match `regex` (Gluon's `collect_params('.*weight')` selection,
    /// matched from the start of the name as Python's `re.match`).
    public func selecting(_ regex: String) throws -> ParameterDict {
        let re: NSRegularExpression
        do { re = try NSRegularExpression(pattern: "^(?:\(regex))") } catch {
            throw GluonError.invalidArgument("The parameter selection '\(regex)' is not a valid regular expression.")
        }
        return ParameterDict(parameters.filter { p in
            re.firstMatch(in: p.name, range: NSRange(p.name.startIndex..., in: p.name)) != nil
        })
    }
}
