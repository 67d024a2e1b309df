import Foundation
import KilnCore
import KilnGraph
import KilnRuntime
import TestSupport
import Testing

// Gradients of the elementwise family: finite differences for every op on the reference backend (in
// float64, so the differences are accurate), the framework's float32 backward against the reference,
// hand-worked SoftmaxOutput gradients, and Dropout's mask shared by forward and backward.

/// Float64 values of magnitude in [low, high] (random sign when `signed`), each at least 0.05 away
/// from every point of `avoid`, so finite differences never straddle a kink or a bound.
func gradientSample(_ shape: Shape, _ low: Double, _ high: Double, signed: Bool = true, avoid: [Double] = [],
                    seed: UInt64) -> NDArray {
    var rng = SplitMix64(seed: seed)
    var values: [Double] = []
    while values.count < shape.elementCount {
        var v = low + (high - low) * Double(rng.nextFloat())
        if signed && rng.next() % 2 == 0 { v = -v }
        if avoid.allSatisfy({ abs(v - $0) >= 0.05 }) { values.append(v) }
    }
    return NDArray(shape: shape, dtype: .float64, values: values)
}

/// Class labels 0, 1, ... (cycling through `classes`) as float64, with `ignored` at the listed positions.
func classLabels(_ shape: Shape, classes: Int, ignored: [Int: Double] = [:]) -> NDArray {
    var values = (0..<shape.elementCount).map { Double(($0 * 2 + 1) % classes) }
    for (i, v) in ignored { values[i] = v }
    return NDArray(shape: shape, dtype: .float64, values: values)
}

/// One op configuration whose gradients are checked.
struct GradientCase: Sendable, CustomTestStringConvertible {
    let name: String
    let symbol: @Sendable () throws -> Symbol
    /// Float64 arguments by name.
    let inputs: @Sendable () -> [String: NDArray]
    /// The arguments whose gradients are checked (every argument but a label by default).
    var check: [String]? = nil
    var testDescription: String { name }

    func checkedArguments() throws -> [String] {
        try check ?? symbol().listArguments().filter { !$0.hasSuffix("label") }
    }

    static func unary(_ name: String, _ build: @escaping @Sendable (Symbol) -> Symbol, shape: Shape = [2, 3, 4],
                      _ low: Double, _ high: Double, signed: Bool = true, avoid: [Double] = []) -> GradientCase {
        GradientCase(name: name, symbol: { build(.variable("x")) },
                     inputs: { ["x": gradientSample(shape, low, high, signed: signed, avoid: avoid, seed: 11)] })
    }

    static func binary(_ name: String, _ build: @escaping @Sendable (Symbol, Symbol) -> Symbol, _ lhs: Shape, _ rhs: Shape,
                       rhsLow: Double = 0.1) -> GradientCase {
        GradientCase(name: name, symbol: { build(.variable("l"), .variable("r")) },
                     inputs: { ["l": gradientSample(lhs, 0.1, 2, seed: 21), "r": gradientSample(rhs, rhsLow, 2, seed: 22)] })
    }

    static func scalar(_ op: String, _ s: Double, _ low: Double, _ high: Double, signed: Bool = true, avoid: [Double] = []) -> GradientCase {
        unary("\(op) \(s)", { x in Symbol.make(op, [x], attributes: ["scalar": AttributeText.number(s)]) },
              low, high, signed: signed, avoid: avoid)
    }

    static func softmaxOutput(_ name: String, _ data: Shape, label: NDArray, _ attributes: [String: String]) -> GradientCase {
        GradientCase(name: "SoftmaxOutput " + name,
                     symbol: { Symbol.make("SoftmaxOutput", [.variable("x"), .variable("label")], attributes: attributes) },
                     inputs: { ["x": gradientSample(data, 0, 2, seed: 31), "label": label] })
    }
}

/// Every op of the family, with several attribute sets. SoftmaxOutput is not here: its gradient is
/// not that of its output (see `ElementwiseGradientSoftmaxOutputTests`).
let elementwiseGradientCases: [GradientCase] = [
    .unary("Activation relu", { .activation($0, kind: .relu) }, 0.1, 2),
    .unary("Activation sigmoid", { .activation($0, kind: .sigmoid) }, 0, 3),
    .unary("Activation tanh", { .activation($0, kind: .tanh) }, 0, 2),
    .unary("Activation softrelu", { .activation($0, kind: .softReLU) }, 0, 3),
    .unary("Activation softsign", { .activation($0, kind: .softSign) }, 0.1, 2),
    .unary("relu", { .relu($0) }, 0.1, 2),
    .unary("sigmoid", { .sigmoid($0) }, 0, 3),
    .unary("tanh", { .tanh($0) }, 0, 2),
    .unary("exp", { .exp($0) }, 0, 2),
    .unary("log", { .log($0) }, 0.3, 3, signed: false),
    .unary("sqrt", { .sqrt($0) }, 0.3, 3, signed: false),
    .unary("rsqrt", { .rsqrt($0) }, 0.3, 3, signed: false),
    .unary("square", { .square($0) }, 0, 2),
    .unary("LeakyReLU leaky", { .leakyReLU($0) }, 0.1, 2),
    .unary("LeakyReLU leaky slope -0.5", { .leakyReLU($0, slope: -0.5) }, 0.1, 2),
    .unary("LeakyReLU elu", { .leakyReLU($0, kind: .elu) }, 0.1, 2),
    .unary("LeakyReLU elu slope 1.3", { .leakyReLU($0, kind: .elu, slope: 1.3) }, 0.1, 2),
    .unary("LeakyReLU selu", { .leakyReLU($0, kind: .selu) }, 0.1, 2),
    .unary("LeakyReLU gelu", { .leakyReLU($0, kind: .gelu) }, 0, 3),
    .unary("LeakyReLU rrelu training", { .leakyReLU($0, kind: .rrelu, name: "rrelu0") }, 0.1, 2),
    GradientCase(name: "LeakyReLU prelu per channel",
                 symbol: { .leakyReLU(.variable("x"), kind: .prelu, gamma: .variable("gamma")) },
                 inputs: { ["x": gradientSample([2, 3, 2, 2], 0.1, 2, seed: 41), "gamma": gradientSample([3], 0.1, 0.5, seed: 42)] }),
    GradientCase(name: "LeakyReLU prelu shared gamma",
                 symbol: { .leakyReLU(.variable("x"), kind: .prelu, gamma: .variable("gamma")) },
                 inputs: { ["x": gradientSample([3, 4], 0.1, 2, seed: 43), "gamma": gradientSample([1], 0.1, 0.5, seed: 44)] }),
    .binary("elemwise_add", { $0 + $1 }, [2, 3], [2, 3]),
    .binary("elemwise_sub", { $0 - $1 }, [2, 3], [2, 3]),
    .binary("elemwise_mul", { $0 * $1 }, [2, 3], [2, 3]),
    .binary("elemwise_div", { $0 / $1 }, [2, 3], [2, 3], rhsLow: 0.5),
    .binary("broadcast_add (2,3,4)+(3,1)", { .broadcastAdd($0, $1) }, [2, 3, 4], [3, 1]),
    .binary("broadcast_add (1,3,1)+(2,3,4)", { .broadcastAdd($0, $1) }, [1, 3, 1], [2, 3, 4]),
    .binary("broadcast_sub (2,1,4)-(1,3,1)", { .broadcastSubtract($0, $1) }, [2, 1, 4], [1, 3, 1]),
    .binary("broadcast_sub (3,)-(2,3)", { .broadcastSubtract($0, $1) }, [3], [2, 3]),
    .binary("broadcast_mul (2,3,4)*(4,)", { .broadcastMultiply($0, $1) }, [2, 3, 4], [4]),
    .binary("broadcast_mul (2,3,1)*(1,3,1)", { .broadcastMultiply($0, $1) }, [2, 3, 1], [1, 3, 1]),
    .binary("broadcast_div (2,3)/(2,1)", { .broadcastDivide($0, $1) }, [2, 3], [2, 1], rhsLow: 0.5),
    .binary("broadcast_div (1,3)/(2,3)", { .broadcastDivide($0, $1) }, [1, 3], [2, 3], rhsLow: 0.5),
    .scalar("_plus_scalar", 1.5, 0, 2),
    .scalar("_minus_scalar", 0.5, 0, 2),
    .scalar("_rminus_scalar", 2, 0, 2),
    .scalar("_mul_scalar", -1.5, 0, 2),
    .scalar("_div_scalar", 0.25, 0, 2),
    .scalar("_div_scalar", -3, 0, 2),
    .scalar("_rdiv_scalar", 2, 0.3, 2),
    .scalar("_power_scalar", 2, 0, 2),
    .scalar("_power_scalar", 3, 0, 2),
    .scalar("_power_scalar", 0.5, 0.3, 2, signed: false),
    .scalar("_power_scalar", -1.5, 0.3, 2, signed: false),
    .scalar("_power_scalar", -1, 0.3, 2),
    .scalar("_power_scalar", 2.5, 0.3, 2, signed: false),
    .scalar("_maximum_scalar", 0.3, 0, 2, avoid: [0.3]),
    .scalar("_minimum_scalar", -0.2, 0, 2, avoid: [-0.2]),
    GradientCase(name: "add_n of 3", symbol: { try .addN([.variable("a"), .variable("b"), .variable("c")]) },
                 inputs: { ["a": gradientSample([2, 3], 0, 1, seed: 51), "b": gradientSample([2, 3], 0, 1, seed: 52),
                            "c": gradientSample([2, 3], 0, 1, seed: 53)] }),
    .unary("clip(-0.5, 0.5)", { .clip($0, min: -0.5, max: 0.5) }, 0, 1, avoid: [-0.5, 0.5]),
    .unary("clip(0, 1.2)", { .clip($0, min: 0, max: 1.2) }, 0, 2, avoid: [0, 1.2]),
    .unary("Dropout p=0.5", { .dropout($0, name: "drop0") }, shape: [4, 6], 0.1, 2),
    .unary("Dropout p=0.3 axes (1,)", { .dropout($0, p: 0.3, axes: [1], name: "drop1") }, shape: [3, 4, 5], 0.1, 2),
    .unary("Dropout mode always", { .dropout($0, p: 0.25, mode: .always, name: "drop2") }, shape: [5, 5], 0.1, 2),
    .unary("softmax", { .softmax($0) }, 0, 2),
    .unary("softmax axis 1", { .softmax($0, axis: 1) }, 0, 2),
    .unary("softmax axis 0 temperature 2", { .softmax($0, axis: 0, temperature: 2) }, 0, 2),
    .unary("softmax temperature 0.5", { .softmax($0, temperature: 0.5) }, 0, 2),
    .unary("log_softmax", { .logSoftmax($0) }, 0, 2),
    .unary("log_softmax temperature 3", { .logSoftmax($0, temperature: 3) }, 0, 2),
    .unary("log_softmax axis 1 temperature 0.5", { .logSoftmax($0, axis: 1, temperature: 0.5) }, 0, 2),
    .unary("_copy", { .copy($0) }, 0, 2),
    .unary("Cast to float32", { .cast($0, dtype: .float32) }, 0, 2),
]

// MARK: - Finite differences on the reference backend

@Suite("Elementwise gradients: finite differences")
struct ElementwiseGradientCheckTests {
    @Test func everyOpHasACase() throws {
        var covered = Set<String>()
        for c in elementwiseGradientCases {
            for n in try c.symbol().graph.nodes where !n.isVariable { covered.insert(n.op) }
        }
        covered.insert("SoftmaxOutput")  // checked against its cross-entropy below
        #expect(elementwiseFamilyOps.subtracting(covered).isEmpty, "no gradient case for \(elementwiseFamilyOps.subtracting(covered).sorted())")
    }

    @Test("reference backward matches finite differences", arguments: elementwiseGradientCases)
    func referenceMatchesFiniteDifferences(_ c: GradientCase) throws {
        // Float64 throughout, except Cast's float32 output: central differences with ε = 1e-4 are
        // accurate to about 1e-8, or 1e-4 through the float32 rounding.
        let epsilon = c.name.hasPrefix("Cast") ? 1e-2 : 1e-4
        let check = GradientCheck(symbol: try c.symbol(), arguments: c.inputs(), backend: OpByOpBackend.reference)
        for r in try check.run(check: try c.checkedArguments(), epsilon: epsilon) {
            #expect(r.worstRelativeError < 1e-4, "\(c.name): \(r)")
        }
    }

    @Test("framework backward matches finite differences in float32", arguments: elementwiseGradientCases)
    func frameworkMatchesFiniteDifferences(_ c: GradientCase) throws {
        let args = c.inputs().mapValues { $0.converted(to: .float32) }
        let check = GradientCheck(symbol: try c.symbol(), arguments: args, backend: OpByOpBackend.framework)
        for r in try check.run(check: try c.checkedArguments(), epsilon: 1e-2) {
            #expect(r.worstRelativeError < 1e-2, "\(c.name): \(r)")
        }
    }
}

// MARK: - Framework against reference

/// Runs forward (training) and backward with fixed random head gradients; the gradients by argument.
func elementwiseGradients(_ symbol: Symbol, _ inputs: [String: NDArray], on backend: OpByOpBackend,
                          headSeed: UInt64 = 5) throws -> [String: NDArray] {
    let exec = try symbol.bind(shapes: inputs.mapValues(\.shape), types: inputs.mapValues(\.dtype), gradReq: .write,
                                     sharedBuffer: inputs, backend: backend)
    try exec.forward(isTrain: true)
    let heads = exec.outputs.enumerated().map { k, o in
        NDArray.randomUniform(shape: o.shape, low: -1, high: 1, seed: headSeed &+ UInt64(k)).converted(to: o.dtype)
    }
    try exec.backward(heads)
    return exec.gradDict
}

/// SoftmaxOutput configurations, for the framework comparison.
let softmaxOutputGradientCases: [GradientCase] = [
    .softmaxOutput("plain", [4, 5], label: classLabels([4], classes: 5), [:]),
    .softmaxOutput("batch, grad_scale 2", [4, 5], label: classLabels([4], classes: 5), ["normalization": "batch", "grad_scale": "2"]),
    .softmaxOutput("valid, use_ignore", [4, 5], label: classLabels([4], classes: 5, ignored: [1: -1]),
                   ["normalization": "valid", "use_ignore": "True"]),
    .softmaxOutput("valid, ignore_label 3 without use_ignore", [4, 5], label: classLabels([4], classes: 5, ignored: [2: 3]),
                   ["normalization": "valid", "ignore_label": "3"]),
    .softmaxOutput("smooth_alpha", [4, 5], label: classLabels([4], classes: 5), ["smooth_alpha": "0.2"]),
    .softmaxOutput("out_grad", [4, 5], label: classLabels([4], classes: 5), ["out_grad": "True"]),
    .softmaxOutput("multi_output", [2, 4, 3], label: classLabels([2, 3], classes: 4), ["multi_output": "True"]),
    .softmaxOutput("multi_output 4-D, batch", [2, 3, 2, 2], label: classLabels([2, 2, 2], classes: 3),
                   ["multi_output": "True", "normalization": "batch"]),
    .softmaxOutput("multi_output, valid, use_ignore", [2, 4, 3], label: classLabels([2, 3], classes: 4, ignored: [4: -1]),
                   ["multi_output": "True", "normalization": "valid", "use_ignore": "True"]),
    .softmaxOutput("preserve_shape", [2, 3, 4], label: classLabels([2, 3], classes: 4), ["preserve_shape": "True"]),
    .softmaxOutput("probability label", [3, 4],
                   label: NDArray(shape: [3, 4], dtype: .float64, values: [0.25, 0.25, 0.5, 0, 1, 0, 0, 0, 0.1, 0.2, 0.3, 0.4]),
                   ["grad_scale": "1.5", "normalization": "batch"]),
]

@Suite("Elementwise gradients: framework against reference")
struct ElementwiseGradientFrameworkTests {
    @Test("framework backward equals reference backward", arguments: elementwiseGradientCases + softmaxOutputGradientCases)
    func frameworkEqualsReference(_ c: GradientCase) throws {
        let symbol = try c.symbol()
        let inputs = c.inputs().mapValues { $0.converted(to: .float32) }
        let reference = try elementwiseGradients(symbol, inputs, on: .reference)
        let framework = try elementwiseGradients(symbol, inputs, on: .framework)
        for name in try c.checkedArguments() {
            let r = try #require(reference[name]), f = try #require(framework[name])
            #expect(r.maxAbs() > 0, "\(c.name): the gradient of \(name) is all zeros, so the comparison proves little")
            expectClose(f, r, relative: 1e-5, "\(c.name) d\(name)")
        }
    }

    @Test func largeArraysTakeTheVectorPaths() throws {
        // Shapes past any small-size special case, with a strided softmax and a broadcast reduction.
        let x = Symbol.variable("x"), w = Symbol.variable("w")
        let net = Symbol.softmax(.broadcastMultiply(.activation(x, kind: .tanh), w), axis: 1)
        let inputs = ["x": gradientSample([8, 16, 9, 9], 0, 2, seed: 61).converted(to: .float32),
                      "w": gradientSample([1, 16, 1, 9], 0.1, 2, seed: 62).converted(to: .float32)]
        let reference = try elementwiseGradients(net, inputs, on: .reference)
        let framework = try elementwiseGradients(net, inputs, on: .framework)
        for name in ["x", "w"] {
            expectClose(try #require(framework[name]), try #require(reference[name]), relative: 1e-5, "d\(name)")
        }
    }

    @Test(arguments: ElementwiseBackend.allCases)
    func castSendsTheGradientBackInTheInputsType(_ b: ElementwiseBackend) throws {
        let x = NDArray(shape: [4], values: [1, 2, 3, 4])
        let exec = try Symbol.cast(.variable("x"), dtype: .float16).bind(shapes: ["x": [4]], gradReq: .write,
                                                                               sharedBuffer: ["x": x], backend: b.backend)
        try exec.forward(isTrain: true)
        // 0.1 is not a float16: the head gradient holds its nearest float16, 0.0999755859375.
        try exec.backward([NDArray(shape: [4], dtype: .float16, values: [0.1, -2, 0.5, 1000])])
        let g = try #require(exec.gradDict["x"])
        #expect(g.dtype == .float32)
        #expect(g.doubles() == [0.0999755859375, -2, 0.5, 1000])
    }

    @Test(arguments: ElementwiseBackend.allCases)
    func gradientsAccumulateWhereAnArrayFeedsSeveralOps(_ b: ElementwiseBackend) throws {
        // y = exp(x) + x * x: dy/dx = exp(x) + 2x, the sum of three paths.
        let x = Symbol.variable("x")
        let net = Symbol.exp(x) + x * x
        let values: [Float] = [-1, 0, 0.5, 2]
        let exec = try net.bind(shapes: ["x": [4]], gradReq: .write, sharedBuffer: ["x": NDArray(shape: [4], values: values)],
                                      backend: b.backend)
        try exec.forward(isTrain: true)
        try exec.backward()
        #expect(close(try #require(exec.gradDict["x"]).floats(), values.map { Foundation.exp(Double($0)) + 2 * Double($0) }))
    }
}

// MARK: - SoftmaxOutput

@Suite("Elementwise gradients: SoftmaxOutput")
struct ElementwiseGradientSoftmaxOutputTests {
    /// dx of a SoftmaxOutput node after a training forward (the head gradient is whatever `head` says).
    static func gradient(_ data: NDArray, _ label: NDArray, _ attributes: [String: String], on b: ElementwiseBackend,
                         head: Float = 1) throws -> NDArray {
        let net = Symbol.make("SoftmaxOutput", [.variable("x"), .variable("label")], attributes: attributes)
        let exec = try net.bind(shapes: ["x": data.shape, "label": label.shape], gradReqs: ["x": .write, "label": .write],
                                      sharedBuffer: ["x": data, "label": label], backend: b.backend)
        try exec.forward(isTrain: true)
        try exec.backward([NDArray(shape: data.shape, values: [Float](repeating: head, count: data.elementCount))])
        #expect(try #require(exec.gradDict["label"]).maxAbs() == 0, "the label gets no gradient")
        return try #require(exec.gradDict["x"])
    }

    static let third = 1.0 / 3
    /// Zeros in, so every probability is 1/3 and the gradients are easy to work by hand.
    static let zeros23 = NDArray(zeros: [2, 3])

    @Test(arguments: ElementwiseBackend.allCases)
    func plainGradientIsProbabilityMinusOneHot(_ b: ElementwiseBackend) throws {
        // softmax([0, ln 2, ln 3]) = [1, 2, 3] / 6; label 2.
        let data = NDArray(shape: [1, 3], values: [0, Float(Foundation.log(2.0)), Float(Foundation.log(3.0))])
        let sixth = 1.0 / 6
        let g = try Self.gradient(data, NDArray(shape: [1], values: [2]), [:], on: b)
        #expect(close(g.floats(), [sixth, 2 * sixth, 3 * sixth - 1]))
        // Labels are read as C casts a float: 1.7 is class 1.
        let truncated = try Self.gradient(data, NDArray(shape: [1], values: [1.7]), [:], on: b)
        #expect(close(truncated.floats(), [sixth, 2 * sixth - 1, 3 * sixth]))
    }

    @Test(arguments: ElementwiseBackend.allCases)
    func normalizations(_ b: ElementwiseBackend) throws {
        let t = Self.third
        let labels = NDArray(shape: [2], values: [0, 2])
        let null = [t - 1, t, t, t, t, t - 1]
        #expect(close(try Self.gradient(Self.zeros23, labels, [:], on: b).floats(), null))
        // batch: divided by the 2 rows; grad_scale multiplies.
        #expect(close(try Self.gradient(Self.zeros23, labels, ["normalization": "batch", "grad_scale": "3"], on: b).floats(),
                      null.map { $0 * 3 / 2 }))
        // valid: divided by the labels that are not ignore_label (-1 by default), here both.
        #expect(close(try Self.gradient(Self.zeros23, labels, ["normalization": "valid"], on: b).floats(), null.map { $0 / 2 }))
    }

    @Test(arguments: ElementwiseBackend.allCases)
    func ignoreLabel(_ b: ElementwiseBackend) throws {
        let t = Self.third
        // use_ignore: the row labelled ignore_label gets zeros; valid counts only the other row.
        let ignored = NDArray(shape: [2], values: [0, 2])
        #expect(close(try Self.gradient(Self.zeros23, ignored, ["use_ignore": "True", "ignore_label": "2", "normalization": "valid"], on: b).floats(),
                      [t - 1, t, t, 0, 0, 0]))
        #expect(close(try Self.gradient(Self.zeros23, NDArray(shape: [2], values: [1, -1]), ["use_ignore": "True"], on: b).floats(),
                      [t, t - 1, t, 0, 0, 0]))
        // Without use_ignore the row stays, its out-of-range label matching no class (MXNet's rule),
        // yet valid still leaves it out of the count.
        #expect(close(try Self.gradient(Self.zeros23, NDArray(shape: [2], values: [0, -1]), ["normalization": "valid"], on: b).floats(),
                      [t - 1, t, t, t, t, t]))
        // Everything ignored: the count is taken as 1, not 0.
        #expect(close(try Self.gradient(Self.zeros23, NDArray(shape: [2], values: [-1, -1]),
                                        ["normalization": "valid", "use_ignore": "True", "grad_scale": "5"], on: b).floats(),
                      [0, 0, 0, 0, 0, 0]))
    }

    @Test(arguments: ElementwiseBackend.allCases)
    func multiOutput(_ b: ElementwiseBackend) throws {
        let t = Self.third
        // data (2, 3, 2): classes along axis 1, one label per (n, position).
        let data = NDArray(zeros: [2, 3, 2])
        let labels = NDArray(shape: [2, 2], values: [0, 1, 2, 2])
        // Element (n, c, i) is 1/3 - [c == label[n, i]].
        let raw = [t - 1, t, t, t - 1, t, t, t, t, t, t, t - 1, t - 1]
        // null divides by the 2 positions per sample, as MXNet 1.9.1 does; batch by 2 samples x 2 positions.
        #expect(close(try Self.gradient(data, labels, ["multi_output": "True"], on: b).floats(), raw.map { $0 / 2 }))
        #expect(close(try Self.gradient(data, labels, ["multi_output": "True", "normalization": "batch"], on: b).floats(),
                      raw.map { $0 / 4 }))
        // valid with class 2 ignored: the two positions of sample 1 drop out; 2 labels remain.
        let valid = try Self.gradient(data, labels, ["multi_output": "True", "normalization": "valid", "use_ignore": "True", "ignore_label": "2"], on: b)
        #expect(close(valid.floats(), [t - 1, t, t, t - 1, t, t, 0, 0, 0, 0, 0, 0].map { $0 / 2 }))
        // Labels shaped (N, 1, rest) are read the same way.
        let label3 = NDArray(shape: [2, 1, 2], values: [0, 1, 2, 2])
        #expect(close(try Self.gradient(data, label3, ["multi_output": "True"], on: b).floats(), raw.map { $0 / 2 }))
    }

    @Test(arguments: ElementwiseBackend.allCases)
    func smoothingOutGradAndProbabilities(_ b: ElementwiseBackend) throws {
        let t = Self.third
        let labels = NDArray(shape: [2], values: [0, 2])
        // smooth_alpha 0.3 over 3 classes: target 0.7 at the label, 0.15 elsewhere.
        #expect(close(try Self.gradient(Self.zeros23, labels, ["smooth_alpha": "0.3"], on: b).floats(),
                      [t - 0.7, t - 0.15, t - 0.15, t - 0.15, t - 0.15, t - 0.7]))
        // out_grad multiplies by the head gradient (MXNet 1.9.1 wrongly multiplies by the output).
        #expect(close(try Self.gradient(Self.zeros23, labels, ["out_grad": "True"], on: b, head: 7).floats(),
                      [t - 1, t, t, t, t, t - 1].map { $0 * 7 }))
        // A label shaped like the data holds probabilities: no normalization, only grad_scale.
        let p = NDArray(shape: [2, 3], values: [0.5, 0.5, 0, 0, 0, 1])
        #expect(close(try Self.gradient(Self.zeros23, p, ["normalization": "batch", "grad_scale": "2"], on: b).floats(),
                      [t - 0.5, t - 0.5, t, t, t, t - 1].map { $0 * 2 }))
    }

    @Test(arguments: ElementwiseBackend.allCases)
    func headGradientIsIgnoredWithoutOutGrad(_ b: ElementwiseBackend) throws {
        let data = gradientSample([3, 4], 0, 2, seed: 71).converted(to: .float32)
        let labels = NDArray(shape: [3], values: [0, 3, 1])
        let ones = try Self.gradient(data, labels, [:], on: b, head: 1)
        let other = try Self.gradient(data, labels, [:], on: b, head: -4)
        #expect(ones.floats() == other.floats())
    }

    /// The gradient is that of the scaled cross-entropy L = -scale Σ_lines Σ_j target_j log y_j.
    @Test(arguments: softmaxOutputGradientCases.filter { !$0.name.contains("out_grad") && !$0.name.contains("without use_ignore") })
    func isTheGradientOfCrossEntropy(_ c: GradientCase) throws {
        let inputs = c.inputs()
        let symbol = try c.symbol()
        let x = try #require(inputs["x"]), label = try #require(inputs["label"])
        let attributes = try #require(symbol.graph.nodes.last?.attributes)
        let multi = attributes["multi_output"] == "True"
        let gradScale = Double(attributes["grad_scale"] ?? "1") ?? 1
        let alpha = Double(attributes["smooth_alpha"] ?? "0") ?? 0
        let useIgnore = attributes["use_ignore"] == "True"
        let ignore = Double(attributes["ignore_label"] ?? "-1") ?? -1
        let probabilities = label.shape == x.shape
        // (outer, n, inner) lines: axis 1 with multi_output, else the last axis.
        let n = multi ? x.shape[1] : x.shape.dims.last ?? 1
        let inner = multi ? x.shape.dims.dropFirst(2).reduce(1, *) : 1
        let outer = x.elementCount / n / inner
        let kept = (0..<label.elementCount).filter { !useIgnore || label.element($0) != ignore }.count
        let divisor: Double
        switch (probabilities, attributes["normalization"] ?? "null", multi) {
        case (true, _, _): divisor = 1
        case (_, "batch", _): divisor = Double(outer * inner)
        case (_, "valid", _): divisor = Double(max(kept, 1))
        case (_, _, true): divisor = Double(inner)
        default: divisor = 1
        }

        func loss(_ data: NDArray) throws -> Double {
            let exec = try symbol.bind(shapes: ["x": data.shape, "label": label.shape], types: ["x": .float64, "label": .float64],
                                             sharedBuffer: ["x": data, "label": label], backend: OpByOpBackend.reference)
            try exec.forward(isTrain: true)
            let y = exec.outputs[0]
            var l = 0.0
            for o in 0..<outer {
                for i in 0..<inner {
                    let k = label.element(o * inner + i)
                    if useIgnore && k == ignore && !probabilities { continue }
                    for j in 0..<n {
                        let e = (o * n + j) * inner + i
                        let target = probabilities ? label.element(e)
                            : (Double(j) == k ? 1 - alpha : alpha / Double(n - 1))
                        l -= target * Foundation.log(y.element(e))
                    }
                }
            }
            return l * gradScale / divisor
        }

        let analytic = try ElementwiseGradientSoftmaxOutputTests.gradientFloat64(symbol, x, label)
        let epsilon = 1e-5
        for i in 0..<x.elementCount {
            var plus = x, minus = x
            plus.setElement(i, x.element(i) + epsilon)
            minus.setElement(i, x.element(i) - epsilon)
            let numeric = (try loss(plus) - loss(minus)) / (2 * epsilon)
            #expect(abs(numeric - analytic.element(i)) < 1e-6, "\(c.name) element \(i): \(analytic.element(i)) vs \(numeric)")
        }
    }

    static func gradientFloat64(_ symbol: Symbol, _ x: NDArray, _ label: NDArray) throws -> NDArray {
        let exec = try symbol.bind(shapes: ["x": x.shape, "label": label.shape], types: ["x": .float64, "label": .float64],
                                         gradReqs: ["x": .write], sharedBuffer: ["x": x, "label": label], backend: OpByOpBackend.reference)
        try exec.forward(isTrain: true)
        try exec.backward()
        return try #require(exec.gradDict["x"])
    }
}

// MARK: - Dropout's mask

@Suite("Elementwise gradients: Dropout mask")
struct ElementwiseGradientDropoutTests {
    /// Forward passes (training unless told) on x, then one backward with head gradient 1.
    static func run(_ net: Symbol, _ x: NDArray, on b: ElementwiseBackend, forwards: [Bool] = [true]) throws -> (y: NDArray, dx: NDArray) {
        let exec = try net.bind(shapes: ["x": x.shape], gradReq: .write, sharedBuffer: ["x": x], backend: b.backend)
        for isTrain in forwards { try exec.forward(isTrain: isTrain) }
        try exec.backward()
        return (exec.outputs[0], try #require(exec.gradDict["x"]))
    }

    @Test(arguments: ElementwiseBackend.allCases)
    func backwardUsesTheForwardsMask(_ b: ElementwiseBackend) throws {
        // With x = 2 everywhere, y = 2 · mask, so dx (head 1) must be exactly y / 2.
        let x = NDArray(shape: [50, 40], values: [Float](repeating: 2, count: 2000))
        let (y, dx) = try Self.run(.dropout(.variable("x"), p: 0.4, name: "d"), x, on: b)
        let mismatches = zip(dx.floats(), y.floats()).filter { $0 != $1 / 2 }.count
        #expect(mismatches == 0, "dx differs from y / 2 at \(mismatches) of 2000 elements")
        let kept = dx.floats().filter { $0 != 0 }
        #expect(kept.allSatisfy { $0 == 1 / (1 - Float(0.4)) }, "kept elements are scaled by 1 / (1 - p)")
        #expect(abs(Double(kept.count) / 2000 - 0.6) < 0.05, "about 1 - p of the elements are kept: \(kept.count) of 2000")
    }

    @Test(arguments: ElementwiseBackend.allCases)
    func backwardFollowsTheLatestForward(_ b: ElementwiseBackend) throws {
        let x = NDArray(shape: [64], values: [Float](repeating: 1, count: 64))
        let net = Symbol.dropout(.variable("x"), name: "d")
        let once = try Self.run(net, x, on: b)
        let twice = try Self.run(net, x, on: b, forwards: [true, true])
        #expect(once.dx.floats() != twice.dx.floats(), "the second forward draws a new mask")
        #expect(twice.dx.floats() == twice.y.floats())
    }

    @Test(arguments: ElementwiseBackend.allCases)
    func sharedMaskAlongAxes(_ b: ElementwiseBackend) throws {
        let x = NDArray(shape: [4, 6, 5], values: [Float](repeating: 1, count: 120))
        let (y, dx) = try Self.run(.dropout(.variable("x"), p: 0.5, axes: [1], name: "d"), x, on: b)
        #expect(dx.floats() == y.floats())
        let g = dx.floats()
        for n in 0..<4 {
            for k in 0..<5 {
                let line = (0..<6).map { g[(n * 6 + $0) * 5 + k] }
                #expect(Set(line).count == 1, "one decision along axis 1 at (\(n), :, \(k)): \(line)")
            }
        }
    }

    @Test(arguments: ElementwiseBackend.allCases)
    func gradientPassesThroughWhenNothingWasDropped(_ b: ElementwiseBackend) throws {
        let x = NDArray(shape: [3, 3], values: [Float](repeating: 1, count: 9))
        // An inference forward (mode training) and p = 0 leave the data alone, and so does backward.
        let inference = try Self.run(.dropout(.variable("x"), name: "d"), x, on: b, forwards: [false])
        #expect(inference.dx.floats() == [Float](repeating: 1, count: 9))
        let none = try Self.run(.dropout(.variable("x"), p: 0, name: "d"), x, on: b)
        #expect(none.dx.floats() == [Float](repeating: 1, count: 9))
        // mode always drops at inference too.
        let always = try Self.run(.dropout(.variable("x"), p: 0.5, mode: .always, name: "d"), x, on: b, forwards: [false])
        #expect(always.dx.floats() == always.y.floats())
        #expect(always.dx.floats().contains(0))
    }
}

// MARK: - Gradient rules

@Suite("Elementwise gradients: rules")
struct ElementwiseGradientRuleTests {
    @Test func everyOpOfTheFamilyIsDifferentiable() throws {
        for op in elementwiseFamilyOps.sorted() {
            let def = try #require(OpRegistry.shared.lookup(op))
            #expect(def.gradient != nil, "\(op) has no gradient rule")
        }
    }

    @Test func rulesNameTheDifferentiableInputs() throws {
        func inputs(_ op: String, _ a: Attributes = [:]) throws -> [Int]? { try #require(OpRegistry.shared.lookup(op)).gradient?.inputs(a) }
        #expect(try inputs("SoftmaxOutput") == [0], "the label gets no gradient")
        #expect(try inputs("LeakyReLU", ["act_type": "prelu"]) == [0, 1], "prelu's gamma is learned")
        #expect(try inputs("LeakyReLU", ["act_type": "rrelu"]) == [0])
        #expect(try inputs("add_n", ["num_args": "3"]) == [0, 1, 2])
        #expect(try inputs("broadcast_div") == [0, 1])
        #expect(try inputs("softmax", ["use_length": "True"]) == [0], "lengths are integers")
    }
}
