import KilnCore
import KilnGraph
import KilnRuntime

/// Finite-difference check of a symbol's gradients: the independent truth for every `backward`.
///
/// The loss is `L = Σ_k w_k · out_k` with fixed random weights `w` (so every output element matters
/// differently); its gradient is compared with central differences
/// `(L(x + ε e_i) − L(x − ε e_i)) / 2ε` on a sample of elements of each checked argument.
public struct GradientCheck {
    public struct Result: CustomStringConvertible {
        public let argument: String
        public let worstRelativeError: Double
        public let checked: Int
        public var description: String { "\(argument): worst relative error \(worstRelativeError) over \(checked) elements" }
    }

    public let symbol: Symbol
    public let arguments: [String: NDArray]
    public let auxiliaryStates: [String: NDArray]
    public let backend: any Backend

    public init(symbol: Symbol, arguments: [String: NDArray], auxiliaryStates: [String: NDArray] = [:],
                backend: any Backend = OpByOpBackend.reference) {
        self.symbol = symbol
        self.arguments = arguments
        self.auxiliaryStates = auxiliaryStates
        self.backend = backend
    }

    /// Checks the gradient of each argument in `check` at up to `samples` elements each; returns the
    /// worst relative error per argument, measured as |analytic − numeric| / max(1e-2, |analytic|, |numeric|).
    public func run(check: [String], epsilon: Double = 1e-2, samples: Int = 24, isTrain: Bool = true, seed: UInt64 = 7) throws -> [Result] {
        let shapes = arguments.mapValues(\.shape)
        let shared = arguments.merging(auxiliaryStates) { a, _ in a }
        var reqs: [String: GradReq] = [:]
        for name in symbol.listArguments() { reqs[name] = check.contains(name) ? .write : .null }
        let exec = try symbol.bind(shapes: shapes, types: arguments.mapValues(\.dtype), gradReqs: reqs, sharedBuffer: shared, backend: backend)
        try exec.forward(isTrain: isTrain)
        let weights = exec.outputs.enumerated().map { k, o in NDArray.randomUniform(shape: o.shape, low: -1, high: 1, seed: seed &+ UInt64(k)) }
        try exec.backward(weights)

        func loss(_ args: [String: NDArray]) throws -> Double {
            let e = try symbol.bind(shapes: shapes, types: arguments.mapValues(\.dtype),
                                          sharedBuffer: args.merging(auxiliaryStates) { a, _ in a }, backend: backend)
            try e.forward(isTrain: isTrain)
            var l = 0.0
            for (o, w) in zip(e.outputs, weights) { for i in 0..<o.elementCount { l += o.element(i) * w.element(i) } }
            return l
        }

        var rng = SplitMix64(seed: seed)
        var results: [Result] = []
        for name in check {
            guard let x = arguments[name], let analytic = exec.gradDict[name] else {
                throw RuntimeError.missingArgument(name: name, known: Array(arguments.keys))
            }
            let count = x.elementCount
            let picks = count <= samples ? Array(0..<count) : (0..<samples).map { _ in Int(rng.next() % UInt64(count)) }
            var worst = 0.0
            for i in picks {
                var plus = x, minus = x
                plus.setElement(i, x.element(i) + epsilon)
                minus.setElement(i, x.element(i) - epsilon)
                var a = arguments
                a[name] = plus
                let lp = try loss(a)
                a[name] = minus
                let lm = try loss(a)
                let numeric = (lp - lm) / (2 * epsilon)
                let g = analytic.element(i)
                worst = max(worst, abs(g - numeric) / max(1e-2, abs(g), abs(numeric)))
            }
            results.append(Result(argument: name, worstRelativeError: worst, checked: picks.count))
        }
        return results
    }
}
