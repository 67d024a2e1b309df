import KilnCore
import KilnGraph
import KilnRuntime
import KilnTrain

/// The base of Gluon's layers and models (Gluon's `Block`): a name prefix, parameters and children.
///
/// Subclasses register their parameters with ``registerParameter(_:)`` and their children with
/// ``registerChild(_:name:)`` in the order Gluon's attribute assignments would (that order is the
/// order of ``collectParams(_:)`` and of the structural names in ``saveParameters(to:)``). Children
/// meant to live in this block's name scope are created inside ``nameScope(_:)``.
open class Block {
    /// The full prefix, such as `cifarresnetv10_stage1_`; parameter names are `prefix + key`.
    public let prefix: String
    /// The scope this block's children are created in; nil for the empty prefix (they then count in the
    /// scope that was current when this block was made, as in Gluon).
    public let scope: NameScope?
    /// Children by structural name (`"0"`, `"body"`, `"stage1"`...), in registration order.
    public private(set) var children: [(name: String, block: Block)] = []
    /// This block's own parameters, in registration order.
    public private(set) var ownParameters: [Parameter] = []

    /// A block named in the current ``NameScope``.
    ///
    /// - Parameters:
    ///   - prefix: nil for `hint + count + "_"`; a given prefix (such as `"stage1_"`, or `""` to share the
    ///     parent's) is appended to the current scope's.
    ///   - hint: the kind used in automatic names (`conv`, `batchnorm`, `dense`, `relu`, `pool`...; Gluon's `_alias()`).
    public init(prefix: String? = nil, hint: String) {
        let current = NameScope.current ?? NameScope.global
        let full: String
        if let prefix { full = current.prefix + prefix } else { full = current.nextPrefix(hint: hint) }
        self.prefix = full
        scope = prefix == "" ? nil : NameScope(prefix: full)
    }

    /// The prefix without its trailing underscore (Gluon's `name`).
    public var name: String { prefix.hasSuffix("_") ? String(prefix.dropLast()) : prefix }

    /// Runs `body` with this block's scope current, so blocks made in it are named under this prefix.
    /// A block with the empty prefix has no scope of its own and runs `body` as it is.
    public func nameScope<R>(_ body: () throws -> R) rethrows -> R {
        guard let scope else { return try body() }
        return try NameScope.$current.withValue(scope) { try body() }
    }

    /// Registers a parameter under `key`'s name: its full name becomes `prefix + key`.
    @discardableResult
    public func registerParameter(_ parameter: Parameter) -> Parameter {
        parameter.name = prefix + parameter.key
        ownParameters.append(parameter)
        return parameter
    }

    /// Registers a child under a structural name (Gluon's attribute name or a Sequential's index).
    @discardableResult
    public func registerChild<B: Block>(_ child: B, name: String) -> B {
        children.append((name, child))
        return child
    }

    /// This block's parameters and its children's, depth first (Gluon's `collect_params()`).
    public func collectParams() -> ParameterDict {
        var all: [Parameter] = []
        func walk(_ b: Block) {
            all.append(contentsOf: b.ownParameters)
            for c in b.children { walk(c.block) }
        }
        walk(self)
        return ParameterDict(all)
    }

    /// The parameters whose full names match `regex` from their start (Gluon's `collect_params('.*weight')`).
    public func collectParams(_ regex: String) throws -> ParameterDict {
        try collectParams().selecting(regex)
    }

    /// Initializes every parameter of the block and its children (Gluon's `net.initialize(init)`):
    /// weights by `initializer` (Gluon's default `Uniform(scale: 0.07)`), biases, beta and running means
    /// 0, gamma and running variances 1. Parameters of unknown shape initialize on the first run.
    public func initialize(_ initializer: any Initializer = Uniform(scale: 0.07), seed: UInt64 = 0, forceReinit: Bool = false) throws {
        try collectParams().initialize(initializer, seed: seed, forceReinit: forceReinit)
    }

    /// The parameters by structural name (`features.0.weight`, `stage1.0.body.1.gamma`), as Gluon's
    /// `_collect_params_with_prefix` names them in `save_parameters` files.
    public func structuralParameters() -> [(name: String, parameter: Parameter)] {
        var out: [(String, Parameter)] = []
        var seen = Set<ObjectIdentifier>()
        func walk(_ b: Block, _ path: String) {
            let p = path.isEmpty ? "" : path + "."
            for param in b.ownParameters where seen.insert(ObjectIdentifier(param)).inserted {
                out.append((p + param.key, param))
            }
            for c in b.children { walk(c.block, p + c.name) }
        }
        walk(self, "")
        return out
    }
}

/// A block that can run symbolically (Gluon's `HybridBlock`): called on a ``Symbol`` it traces into a
/// graph whose node and variable names are Gluon's; called on an ``NDArray`` it traces once per input
/// shape, binds with the framework backend and runs.
open class HybridBlock: Block {
    private var executors: [Shape: Executor] = [:]

    /// The block's computation on a symbol. Subclasses override this (Gluon's `hybrid_forward`); call
    /// children as `child(x)` so each names its ops in its own scope.
    open func forward(_ x: Symbol) throws -> Symbol {
        throw GluonError.invalidArgument("The block '\(prefix)' (\(type(of: self))) does not implement forward(_:).")
    }

    /// Traces the block on `x`, naming ops under this block's prefix.
    public func callAsFunction(_ x: Symbol) throws -> Symbol {
        if prefix.isEmpty || scope == nil { return try forward(x) }
        return try OpNamer.$current.withValue(OpNamer(prefix: prefix)) { try forward(x) }
    }

    /// Traces on a variable `data` (Gluon's `net(mx.sym.var('data'))`).
    public func symbol(input name: String = "data") throws -> Symbol {
        try self(Symbol.variable(name))
    }

    /// Infers the unknown parameter shapes from an input shape and runs deferred initializers.
    public func inferParameterShapes(inputShape: Shape) throws {
        let sym = try symbol()
        let params = collectParams()
        var given: [String: Shape] = ["data": inputShape]
        for p in params where p.hasKnownShape { given[p.name] = p.shape }
        let g = sym.graph
        let s = try g.inferShapes(given)
        var inferred: [String: Shape] = [:]
        for (i, n) in g.argumentNames.enumerated() { inferred[n] = s.arguments[i] }
        for (i, n) in g.auxiliaryNames.enumerated() { inferred[n] = s.auxiliaryStates[i] }
        for p in params where !p.hasKnownShape || !p.isInitialized {
            if let shape = inferred[p.name] { try p.completeShape(shape) }
        }
    }

    /// Runs the block on an input in inference mode (Dropout is the identity, BatchNorm uses the
    /// running statistics), with the framework backend. The executor is cached per input shape; the
    /// parameters' current data is fed on every call.
    public func callAsFunction(_ x: NDArray) throws -> NDArray {
        let params = collectParams()
        let exec: Executor
        if let cached = executors[x.shape] {
            exec = cached
        } else {
            if params.contains(where: { !$0.hasKnownShape || !$0.isInitialized }) {
                try inferParameterShapes(inputShape: x.shape)
            }
            var buffer: [String: NDArray] = [:]
            for p in params { buffer[p.name] = try p.data() }
            // The input's dtype is given: KilnGraph's type inference does not default a BatchNorm's data
            // to float32 when its parameters' types are known (gluoncv's v2 models start with one).
            exec = try symbol().bind(shapes: ["data": x.shape], types: ["data": x.dtype], sharedBuffer: buffer)
            executors[x.shape] = exec
        }
        for p in params {
            let v = try p.data()
            if p.isAuxiliary { exec.auxDict[p.name] = v } else { exec.argDict[p.name] = v }
        }
        exec.argDict["data"] = x
        try exec.forward(isTrain: false)
        return exec.outputs[0]
    }

    /// Forgets the cached executors (after changing the block's structure).
    public func clearCache() { executors = [:] }
}

/// Children run one after another (Gluon's `HybridSequential`); their structural names are `0`, `1`, ...
open class HybridSequential: HybridBlock {
    /// A sequence named `hybridsequentialN_` in the current scope, or `prefix` under it.
    public init(prefix: String? = nil) {
        super.init(prefix: prefix, hint: "hybridsequential")
    }

    /// Appends blocks in order.
    public func add(_ blocks: HybridBlock...) {
        for b in blocks { registerChild(b, name: String(children.count)) }
    }

    /// The children in order.
    public var layers: [HybridBlock] { children.compactMap { $0.block as? HybridBlock } }

    open override func forward(_ x: Symbol) throws -> Symbol {
        var y = x
        for layer in layers { y = try layer(y) }
        return y
    }
}
