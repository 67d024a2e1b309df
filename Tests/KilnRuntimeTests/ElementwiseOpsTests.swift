import Foundation
import KilnCore
import KilnGraph
import KilnRuntime
import TestSupport
import Testing

// Tests of the elementwise family's kernels: MXNet's golden outputs on both backends, hand-worked
// values per op, the framework against the reference on random data, and Dropout's statistics.

/// The backends under test.
enum ElementwiseBackend: String, CaseIterable, Sendable, CustomTestStringConvertible {
    case reference, framework
    var backend: OpByOpBackend { self == .reference ? .reference : .framework }
    var testDescription: String { rawValue }
}

/// The ops this family owns, by their MXNet names.
let elementwiseFamilyOps: Set<String> = [
    "Activation", "LeakyReLU", "relu", "sigmoid", "tanh", "exp", "log", "sqrt", "rsqrt", "square",
    "elemwise_add", "elemwise_sub", "elemwise_mul", "elemwise_div",
    "broadcast_add", "broadcast_sub", "broadcast_mul", "broadcast_div",
    "_plus_scalar", "_minus_scalar", "_rminus_scalar", "_mul_scalar", "_div_scalar", "_rdiv_scalar",
    "_power_scalar", "_maximum_scalar", "_minimum_scalar",
    "add_n", "clip", "Dropout", "SoftmaxOutput", "softmax", "log_softmax", "_copy", "Cast",
]

/// Binds `symbol` with the given arrays (by variable name) and runs it once.
func runElementwise(_ symbol: Symbol, _ inputs: [String: NDArray], on backend: ElementwiseBackend,
                    isTrain: Bool = false) throws -> [NDArray] {
    let exec = try symbol.bind(shapes: inputs.mapValues(\.shape), types: inputs.mapValues(\.dtype),
                                     sharedBuffer: inputs, backend: backend.backend)
    try exec.forward(isTrain: isTrain)
    return exec.outputs
}

/// Runs a one-input op on float32 values and returns the output values.
func evaluate(_ build: (Symbol) -> Symbol, _ values: [Float], shape: Shape? = nil, on backend: ElementwiseBackend) throws -> [Float] {
    let x = NDArray(shape: shape ?? [values.count], values: values)
    return try runElementwise(build(.variable("x")), ["x": x], on: backend)[0].floats()
}

/// Whether two value lists agree within `tolerance` relative to max(1, largest expected magnitude).
func close(_ actual: [Float], _ expected: [Double], tolerance: Double = 1e-5) -> Bool {
    guard actual.count == expected.count else { return false }
    let scale = max(1, expected.map(abs).max() ?? 0)
    return zip(actual, expected).allSatisfy { abs(Double($0) - $1) <= tolerance * scale }
}

// MARK: - Golden cases from MXNet 1.9.1

@Suite("ElementwiseOps golden")
struct ElementwiseOpsGoldenTests {
    static let cases = Golden.caseNames(ops: elementwiseFamilyOps)

    @Test func allFamilyCasesAreFound() {
        #expect(Self.cases.count == 99)
    }

    @Test("MXNet's output", arguments: cases, ElementwiseBackend.allCases)
    func matchesMXNet(_ name: String, _ backend: ElementwiseBackend) throws {
        let c = try Golden.opCase(name)
        let exec = try c.symbol.bind(shapes: c.arguments.mapValues(\.shape), types: c.arguments.mapValues(\.dtype),
                                           sharedBuffer: c.arguments, backend: backend.backend)
        try exec.forward()
        #expect(exec.outputs.count == c.outputs.count)
        for (actual, expected) in zip(exec.outputs, c.outputs) {
            #expect(actual.dtype == expected.dtype)
            // Cast must be exact; everything else within 1e-4 of max(1, max |expected|).
            expectClose(actual, expected, relative: c.op == "Cast" ? 0 : 1e-4, "\(name) [\(backend)]")
        }
    }
}

// MARK: - Hand-worked values

@Suite("ElementwiseOps hand-worked")
struct ElementwiseOpsHandTests {
    @Test(arguments: ElementwiseBackend.allCases)
    func plainUnaryOps(_ b: ElementwiseBackend) throws {
        #expect(try evaluate({ .relu($0) }, [-2, 0, 3], on: b) == [0, 0, 3])
        #expect(close(try evaluate({ .sigmoid($0) }, [0, 2], on: b), [0.5, 0.8807970779778823]))
        #expect(close(try evaluate({ .tanh($0) }, [0, 1], on: b), [0, 0.7615941559557649]))
        #expect(close(try evaluate({ .exp($0) }, [0, 1, -1], on: b), [1, M_E, 1 / M_E]))
        #expect(close(try evaluate({ .log($0) }, [1, Float(M_E), 0.5], on: b), [0, 1, -0.6931471805599453]))
        #expect(close(try evaluate({ .sqrt($0) }, [4, 2, 0], on: b), [2, 1.4142135623730951, 0]))
        #expect(close(try evaluate({ .rsqrt($0) }, [4, 0.25], on: b), [0.5, 2]))
        #expect(try evaluate({ .square($0) }, [-3, 0.5], on: b) == [9, 0.25])
    }

    @Test(arguments: ElementwiseBackend.allCases)
    func activation(_ b: ElementwiseBackend) throws {
        #expect(close(try evaluate({ .activation($0, kind: .relu) }, [-1, 2], on: b), [0, 2]))
        #expect(close(try evaluate({ .activation($0, kind: .sigmoid) }, [0], on: b), [0.5]))
        #expect(close(try evaluate({ .activation($0, kind: .tanh) }, [0.5], on: b), [0.46211715726000974]))
        // softrelu(0) = ln 2; large inputs give x itself, not infinity.
        #expect(close(try evaluate({ .activation($0, kind: .softReLU) }, [0, 1, 30, 100], on: b),
                      [0.6931471805599453, 1.3132616875182228, 30, 100]))
        #expect(close(try evaluate({ .activation($0, kind: .softSign) }, [1, -3, 0], on: b), [0.5, -0.75, 0]))
    }

    @Test(arguments: ElementwiseBackend.allCases)
    func leakyReLUVariants(_ b: ElementwiseBackend) throws {
        #expect(close(try evaluate({ .leakyReLU($0) }, [-4, 2], on: b), [-1, 2]))
        #expect(close(try evaluate({ .leakyReLU($0, slope: 0.1) }, [-4, 2], on: b), [-0.4, 2]))
        #expect(close(try evaluate({ .leakyReLU($0, kind: .elu, slope: 0.7) }, [-1, 1, 0], on: b),
                      [0.7 * (exp(-1.0) - 1), 1, 0]))
        // SELU's constants: λ = 1.0507009873554805, α = 1.6732632423543772.
        #expect(close(try evaluate({ .leakyReLU($0, kind: .selu) }, [1, -1, 0], on: b),
                      [1.0507009873554805, 1.0507009873554805 * 1.6732632423543772 * (exp(-1.0) - 1), 0]))
        #expect(close(try evaluate({ .leakyReLU($0, kind: .gelu) }, [1, -1, 2], on: b),
                      [0.8413447460685429, -0.15865525393145707, 1.9544997361036416]))
        // rrelu at inference: slope (0.125 + 0.334) / 2 = 0.2295, as MXNet gives (-0.2295 for -1).
        #expect(close(try evaluate({ .leakyReLU($0, kind: .rrelu) }, [-1, 2], on: b), [-0.2295, 2]))
    }

    @Test(arguments: ElementwiseBackend.allCases)
    func preluScalesPerChannel(_ b: ElementwiseBackend) throws {
        let data = Symbol.variable("x"), gamma = Symbol.variable("g")
        let net = Symbol.leakyReLU(data, kind: .prelu, gamma: gamma)
        let x = NDArray(shape: [2, 3, 2], values: [-1, 1, -2, 2, -3, 3, -1, -1, -1, -1, 4, -4])
        let perChannel = try runElementwise(net, ["x": x, "g": NDArray(shape: [3], values: [0.1, 0.2, 0.3])], on: b)[0]
        #expect(close(perChannel.floats(), [-0.1, 1, -0.4, 2, -0.9, 3, -0.1, -0.1, -0.2, -0.2, 4, -1.2]))
        let shared = try runElementwise(net, ["x": x, "g": NDArray(shape: [1], values: [0.5])], on: b)[0]
        #expect(close(shared.floats(), [-0.5, 1, -1, 2, -1.5, 3, -0.5, -0.5, -0.5, -0.5, 4, -2]))
    }

    @Test(arguments: ElementwiseBackend.allCases)
    func scalarOps(_ b: ElementwiseBackend) throws {
        let v: [Float] = [-2, 0.5, 4]
        #expect(close(try evaluate({ .plusScalar($0, 2.5) }, v, on: b), [0.5, 3, 6.5]))
        #expect(close(try evaluate({ .minusScalar($0, 2.5) }, v, on: b), [-4.5, -2, 1.5]))
        #expect(close(try evaluate({ .reverseMinusScalar($0, 2.5) }, v, on: b), [4.5, 2, -1.5]))
        #expect(close(try evaluate({ .multiplyScalar($0, -0.5) }, v, on: b), [1, -0.25, -2]))
        #expect(close(try evaluate({ .divideScalar($0, 4) }, v, on: b), [-0.5, 0.125, 1]))
        #expect(close(try evaluate({ .reverseDivideScalar($0, 3) }, v, on: b), [-1.5, 6, 0.75]))
        #expect(close(try evaluate({ .powerScalar($0, 3) }, v, on: b), [-8, 0.125, 64]))
        #expect(close(try evaluate({ .powerScalar($0, 2) }, v, on: b), [4, 0.25, 16]))
        #expect(close(try evaluate({ .powerScalar($0, 0.5) }, [4, 0.25], on: b), [2, 0.5]))
        #expect(close(try evaluate({ .powerScalar($0, -2) }, [2, -0.5], on: b), [0.25, 4]))
        #expect(close(try evaluate({ .maximumScalar($0, 0.5) }, v, on: b), [0.5, 0.5, 4]))
        #expect(close(try evaluate({ .minimumScalar($0, -0.3) }, v, on: b), [-2, -0.3, -0.3]))
        // Operators build the same ops.
        #expect(close(try evaluate({ 1.0 - $0 }, v, on: b), [3, 0.5, -3]))
        #expect(close(try evaluate({ 2.0 / $0 }, v, on: b), [-1, 4, 0.5]))
        #expect(close(try evaluate({ -$0 }, v, on: b), [2, -0.5, -4]))
    }

    @Test(arguments: ElementwiseBackend.allCases)
    func scalarOpsOnIntegers(_ b: ElementwiseBackend) throws {
        // MXNet 1.9: with is_int (the default) the scalar is cast to the input's type first, so
        // int32 + 2.5 adds 2; with is_int=False the result is float64.
        let x = NDArray(shape: [4], dtype: .int32, values: [-3, -1, 5, 7])
        let plus = try Symbol.apply("_plus_scalar", [.variable("x")], attributes: ["scalar": "2.5"])
        let y = try runElementwise(plus, ["x": x], on: b)[0]
        #expect(y.dtype == .int32)
        #expect(y.doubles() == [-1, 1, 7, 9])
        let div = try Symbol.apply("_div_scalar", [.variable("x")], attributes: ["scalar": "2.5"])
        #expect(try runElementwise(div, ["x": x], on: b)[0].doubles() == [-1, 0, 2, 3])
        let exact = try Symbol.apply("_plus_scalar", [.variable("x")], attributes: ["scalar": "2.5", "is_int": "False"])
        let z = try runElementwise(exact, ["x": x], on: b)[0]
        #expect(z.dtype == .float64)
        #expect(z.doubles() == [-0.5, 1.5, 7.5, 9.5])
    }

    @Test(arguments: ElementwiseBackend.allCases)
    func clipFollowsMXNetEvenWithCrossedBounds(_ b: ElementwiseBackend) throws {
        #expect(close(try evaluate({ .clip($0, min: -0.5, max: 0.5) }, [-2, 0.25, 3], on: b), [-0.5, 0.25, 0.5]))
        // a_min > a_max: MXNet tests the upper bound first, giving [3, 3, 1, 1].
        #expect(try evaluate({ .clip($0, min: 3, max: 1) }, [-5, 0, 2, 5], on: b) == [3, 3, 1, 1])
    }

    @Test(arguments: ElementwiseBackend.allCases)
    func binaryAndBroadcast(_ b: ElementwiseBackend) throws {
        let l = Symbol.variable("l"), r = Symbol.variable("r")
        let x = NDArray(shape: [2, 2], values: [1, 2, 3, 4]), y = NDArray(shape: [2, 2], values: [4, 3, 2, 1])
        #expect(try runElementwise(l + r, ["l": x, "r": y], on: b)[0].floats() == [5, 5, 5, 5])
        #expect(try runElementwise(l - r, ["l": x, "r": y], on: b)[0].floats() == [-3, -1, 1, 3])
        #expect(try runElementwise(l * r, ["l": x, "r": y], on: b)[0].floats() == [4, 6, 6, 4])
        #expect(close(try runElementwise(l / r, ["l": x, "r": y], on: b)[0].floats(), [0.25, 2.0 / 3, 1.5, 4]))

        let column = NDArray(shape: [2, 1], values: [10, 20]), row = NDArray(shape: [3], values: [1, 2, 3])
        // (2,1) with (3,): both sides broadcast to (2,3).
        let sum = try runElementwise(.broadcastAdd(l, r), ["l": column, "r": row], on: b)[0]
        #expect(sum.shape == [2, 3])
        #expect(sum.floats() == [11, 12, 13, 21, 22, 23])
        #expect(try runElementwise(.broadcastSubtract(l, r), ["l": column, "r": row], on: b)[0].floats() == [9, 8, 7, 19, 18, 17])
        #expect(try runElementwise(.broadcastSubtract(l, r), ["l": row, "r": column], on: b)[0].floats() == [-9, -8, -7, -19, -18, -17])
        // Only the lhs broadcast, under a commuting and a non-commuting op.
        let full = NDArray(shape: [2, 3], values: [1, 2, 3, 4, 5, 6])
        #expect(try runElementwise(.broadcastMultiply(l, r), ["l": column, "r": full], on: b)[0].floats() == [10, 20, 30, 80, 100, 120])
        #expect(close(try runElementwise(.broadcastDivide(l, r), ["l": column, "r": full], on: b)[0].floats(),
                      [10, 5, 10.0 / 3, 5, 4, 20.0 / 6]))
        #expect(close(try runElementwise(.broadcastDivide(l, r), ["l": full, "r": column], on: b)[0].floats(),
                      [0.1, 0.2, 0.3, 0.2, 0.25, 0.3]))
    }

    @Test(arguments: ElementwiseBackend.allCases)
    func addN(_ b: ElementwiseBackend) throws {
        let net = try Symbol.addN([.variable("a"), .variable("b"), .variable("c")])
        let out = try runElementwise(net, ["a": NDArray(shape: [3], values: [1, 2, 3]), "b": NDArray(shape: [3], values: [10, 20, 30]),
                                           "c": NDArray(shape: [3], values: [100, 200, 300])], on: b)[0]
        #expect(out.floats() == [111, 222, 333])
        let single = try Symbol.addN([.variable("a")])
        #expect(try runElementwise(single, ["a": NDArray(shape: [2], values: [4, 5])], on: b)[0].floats() == [4, 5])
    }

    @Test(arguments: ElementwiseBackend.allCases)
    func softmaxWithTemperature(_ b: ElementwiseBackend) throws {
        // MXNet 1.9 gives [0.18632373, 0.3071959, 0.5064804] for softmax([1, 2, 3], temperature=2).
        let expected = [0.18632373, 0.3071959, 0.5064804]
        #expect(close(try evaluate({ .softmax($0, temperature: 2) }, [1, 2, 3], shape: [1, 3], on: b), expected, tolerance: 1e-6))
        #expect(close(try evaluate({ .logSoftmax($0, temperature: 2) }, [1, 2, 3], shape: [1, 3], on: b), expected.map { log($0) }, tolerance: 1e-6))
        // Along axis 0 of a (2, 2) array; large inputs must not overflow.
        #expect(close(try evaluate({ .softmax($0, axis: 0) }, [1000, 0, 1000, 0], shape: [2, 2], on: b), [0.5, 0.5, 0.5, 0.5]))
        #expect(close(try evaluate({ .softmax($0) }, [0, log(3)], shape: [2], on: b), [0.25, 0.75]))
    }

    @Test(arguments: ElementwiseBackend.allCases)
    func softmaxOutputModes(_ b: ElementwiseBackend) throws {
        let v: [Float] = [0, log(3), 0, 0, log(2), log(5)]
        // Default: along the last axis, as MXNet 1.9.1's CPU (oneDNN) path and the golden
        // SoftmaxOutput_4d_flatten case do; preserve_shape gives the same.
        let lastAxis: [Double] = [0.2, 0.6, 0.2, 0.125, 0.25, 0.625]
        #expect(close(try evaluate({ .softmaxOutput($0) }, v, shape: [1, 2, 3], on: b), lastAxis))
        #expect(close(try evaluate({ .softmaxOutput($0, preserveShape: true) }, v, shape: [1, 2, 3], on: b), lastAxis))
        // multi_output: along axis 1 for each trailing position.
        let multi = try evaluate({ .softmaxOutput($0, multiOutput: true) }, v, shape: [1, 2, 3], on: b)
        let multiExpected: [Double] = [0.5, 0.6, 1.0 / 6, 0.5, 0.4, 5.0 / 6]
        #expect(close(multi, multiExpected))
    }

    @Test(arguments: ElementwiseBackend.allCases)
    func copyIsTheIdentity(_ b: ElementwiseBackend) throws {
        #expect(try evaluate({ .copy($0) }, [1, -2, 3], on: b) == [1, -2, 3])
    }

    @Test(arguments: ElementwiseBackend.allCases)
    func castLikeMXNet(_ b: ElementwiseBackend) throws {
        let v: [Float] = [-2.7, -0.5, 0.5, 1.5, 2.5, 255.9, 256.5, 300, -1]
        func cast(_ t: DType, _ x: NDArray) throws -> NDArray { try runElementwise(.cast(.variable("x"), dtype: t), ["x": x], on: b)[0] }
        let x = NDArray(shape: [9], values: v)
        // Values MXNet 1.9.1 printed for these inputs.
        #expect(try cast(.int32, x).doubles() == [-2, 0, 0, 1, 2, 255, 256, 300, -1])
        #expect(try cast(.uint8, x).doubles() == [254, 0, 0, 1, 2, 255, 0, 44, 255])
        #expect(try cast(.int8, x).doubles() == [-2, 0, 0, 1, 2, -1, 0, 44, -1])
        #expect(try cast(.int64, x).doubles() == [-2, 0, 0, 1, 2, 255, 256, 300, -1])
        let i = NDArray(shape: [3], dtype: .int32, values: [-3, 200, 100])
        #expect(try cast(.uint8, i).doubles() == [253, 200, 100])
        #expect(try cast(.int8, i).doubles() == [-3, -56, 100])
        // Out of int32's range: x86's integer indefinite, INT_MIN.
        #expect(try cast(.int32, NDArray(shape: [2], values: [3e9, .nan])).doubles() == [-2147483648, -2147483648])
        // float16 rounds to nearest even: 0.1 -> 0x2E66; 65520 overflows to infinity.
        let h = try cast(.float16, NDArray(shape: [2], values: [0.1, 65520]))
        h.withUnsafeBufferPointer(as: UInt16.self) { #expect(Array($0) == [0x2E66, 0x7C00]) }
    }

    @Test(arguments: ElementwiseBackend.allCases)
    func castRoundTripsEveryDTypePair(_ b: ElementwiseBackend) throws {
        // Small integers are exact in every dtype, so any chain of casts keeps them.
        let values: [Double] = [0, 1, 7, 100, 127]
        for from in DType.allCases {
            for to in DType.allCases {
                let x = NDArray(shape: [5], dtype: from, values: values)
                let y = try runElementwise(.cast(.variable("x"), dtype: to), ["x": x], on: b)[0]
                #expect(y.dtype == to)
                #expect(y.doubles() == values, "\(from) -> \(to)")
            }
        }
    }

    @Test(arguments: ElementwiseBackend.allCases)
    func softmaxOutputDType(_ b: ElementwiseBackend) throws {
        let y = try runElementwise(.softmax(.variable("x"), dtype: .float64), ["x": NDArray(shape: [2], values: [0, 0])], on: b)[0]
        #expect(y.dtype == .float64)
        #expect(y.doubles() == [0.5, 0.5])
    }

    @Test func useLengthIsRefusedByTheKernels() throws {
        let net = try Symbol.apply("softmax", [.variable("x"), .variable("len")], attributes: ["use_length": "True"], name: "sm")
        #expect(throws: RuntimeError.self) {
            _ = try runElementwise(net, ["x": NDArray(zeros: [2, 3]), "len": NDArray(zeros: [2])], on: .reference)
        }
    }
}

// MARK: - Dropout

@Suite("ElementwiseOps Dropout")
struct ElementwiseOpsDropoutTests {
    @Test(arguments: ElementwiseBackend.allCases)
    func inferenceIsTheIdentity(_ b: ElementwiseBackend) throws {
        let x = NDArray.randomNormal(shape: [4, 5], seed: 1)
        let y = try runElementwise(.dropout(.variable("x"), p: 0.5), ["x": x], on: b)[0]
        #expect(y.floats() == x.floats())
    }

    @Test(arguments: ElementwiseBackend.allCases, [0.1, 0.3, 0.5, 0.8])
    func trainingKeepsAboutOneMinusPAndScales(_ b: ElementwiseBackend, _ p: Double) throws {
        let n = 100_000
        let x = NDArray(shape: [n], values: [Float](repeating: 2, count: n))
        let y = try runElementwise(.dropout(.variable("x"), p: p, name: "drop"), ["x": x], on: b, isTrain: true)[0].floats()
        let kept = y.filter { $0 != 0 }
        let fraction = Double(kept.count) / Double(n)
        // A binomial fraction's standard deviation is below 0.0016 here; allow about 6 of them.
        #expect(abs(fraction - (1 - p)) < 0.01, "kept \(fraction), expected \(1 - p)")
        let scaled = Float(2 / (1 - p))
        #expect(kept.allSatisfy { abs($0 - scaled) <= 1e-5 * scaled })
    }

    @Test func trainingIsReproducibleAndDrawsAnewEachPass() throws {
        let x = NDArray(shape: [64], values: [Float](repeating: 1, count: 64))
        let net = Symbol.dropout(.variable("x"), p: 0.5, name: "drop")
        let e1 = try net.bind(shapes: ["x": [64]], sharedBuffer: ["x": x])
        let e2 = try net.bind(shapes: ["x": [64]], sharedBuffer: ["x": x])
        try e1.forward(isTrain: true)
        try e2.forward(isTrain: true)
        let first = e1.outputs[0].floats()
        #expect(first == e2.outputs[0].floats())
        try e1.forward(isTrain: true)
        #expect(first != e1.outputs[0].floats())
    }

    @Test func axesShareOneDecisionAlongThem() throws {
        let x = NDArray(shape: [50, 8], values: [Float](repeating: 1, count: 400))
        let y = try runElementwise(.dropout(.variable("x"), p: 0.5, axes: [1]), ["x": x], on: .framework, isTrain: true)[0].floats()
        for row in 0..<50 {
            let line = y[(row * 8)..<(row * 8 + 8)]
            #expect(Set(line).count == 1)
        }
        #expect(Set(y) == [0, 2])
    }

    @Test(arguments: ElementwiseBackend.allCases)
    func alwaysModeDropsAtInference(_ b: ElementwiseBackend) throws {
        let x = NDArray(shape: [1000], values: [Float](repeating: 1, count: 1000))
        let y = try runElementwise(.dropout(.variable("x"), p: 0.5, mode: .always), ["x": x], on: b)[0].floats()
        #expect(Set(y) == [0, 2])
    }

    @Test func rreluDrawsSlopesInTraining() throws {
        let x = NDArray(shape: [1000], values: [Float](repeating: -1, count: 1000))
        let y = try runElementwise(.leakyReLU(.variable("x"), kind: .rrelu, name: "rr"), ["x": x], on: .framework, isTrain: true)[0].floats()
        #expect(y.allSatisfy { $0 <= -0.125 && $0 > -0.334 })
        #expect(Set(y).count > 100)
    }
}

// MARK: - Framework against reference

/// Every one-input function on random data, and a rank beyond 6, where the framework's oneDNN
/// mapping must agree with the reference's formulas.
@Suite("ElementwiseOps framework vs reference")
struct ElementwiseOpsFrameworkTests {
    static let builders: [(String, @Sendable (Symbol) -> Symbol, Bool)] = [
        ("relu", { .relu($0) }, false), ("sigmoid", { .sigmoid($0) }, false), ("tanh", { .tanh($0) }, false),
        ("exp", { .exp($0) }, false), ("log", { .log($0) }, true), ("sqrt", { .sqrt($0) }, true), ("rsqrt", { .rsqrt($0) }, true),
        ("square", { .square($0) }, false), ("softrelu", { .activation($0, kind: .softReLU) }, false),
        ("softsign", { .activation($0, kind: .softSign) }, false), ("leaky", { .leakyReLU($0, slope: 0.3) }, false),
        ("elu", { .leakyReLU($0, kind: .elu, slope: 0.7) }, false), ("selu", { .leakyReLU($0, kind: .selu) }, false),
        ("gelu", { .leakyReLU($0, kind: .gelu) }, false), ("rrelu", { .leakyReLU($0, kind: .rrelu) }, false),
        ("plus", { $0 + 1.5 }, false), ("rminus", { 1.5 - $0 }, false), ("div", { $0 / 3 }, false), ("rdiv", { 3 / $0 }, true),
        ("pow3", { .powerScalar($0, 3) }, false), ("pow1.5", { .powerScalar($0, 1.5) }, true), ("max", { .maximumScalar($0, 0.2) }, false),
        ("min", { .minimumScalar($0, 0.2) }, false), ("clip", { .clip($0, min: -0.4, max: 0.7) }, false),
        ("softmax", { .softmax($0, axis: 1) }, false), ("log_softmax", { .logSoftmax($0, axis: 2, temperature: 0.7) }, false),
        ("SoftmaxOutput", { .softmaxOutput($0) }, false),
    ]

    @Test(arguments: 0..<builders.count)
    func agreesWithReference(_ k: Int) throws {
        let (name, build, positive) = Self.builders[k]
        let shape: Shape = [3, 4, 5, 2, 3]
        var x = NDArray.randomNormal(shape: shape, std: 2, seed: UInt64(k + 7))
        if positive { x = x.map { abs($0) + 0.1 } }
        let net = build(.variable("x"))
        let reference = try runElementwise(net, ["x": x], on: .reference)[0]
        let framework = try runElementwise(net, ["x": x], on: .framework)[0]
        let diff = try framework.maxAbsDifference(reference)
        #expect(diff <= 1e-5 * max(1, reference.maxAbs()), "\(name): \(diff)")
    }

    @Test func highRankBroadcastAndSum() throws {
        let a = NDArray.randomNormal(shape: [2, 1, 3, 1, 2, 1, 2], seed: 3)
        let b = NDArray.randomNormal(shape: [2, 2, 1, 2, 1, 2, 1], seed: 4)
        for net in [Symbol.broadcastAdd(.variable("a"), .variable("b")), .broadcastDivide(.variable("a"), .variable("b")),
                    .broadcastSubtract(.variable("b"), .variable("a"))] {
            let r = try runElementwise(net, ["a": a, "b": b], on: .reference)[0]
            let f = try runElementwise(net, ["a": a, "b": b], on: .framework)[0]
            #expect(r.shape == [2, 2, 3, 2, 2, 2, 2])
            #expect(try f.maxAbsDifference(r) <= 1e-5 * max(1, r.maxAbs()))
        }
        let c = NDArray.randomNormal(shape: [2, 3, 1, 2, 2, 1, 3], seed: 5)
        let d = NDArray.randomNormal(shape: [2, 3, 1, 2, 2, 1, 3], seed: 6)
        let net = try Symbol.addN([.variable("c"), .variable("d"), .variable("c")])
        let r = try runElementwise(net, ["c": c, "d": d], on: .reference)[0]
        let f = try runElementwise(net, ["c": c, "d": d], on: .framework)[0]
        #expect(try f.maxAbsDifference(r) <= 1e-5 * max(1, r.maxAbs()))
    }

    @Test func zeroSizedArraysRun() throws {
        for b in ElementwiseBackend.allCases {
            let y = try runElementwise(.relu(.variable("x")) + 1.0, ["x": NDArray(zeros: [0, 3])], on: b)[0]
            #expect(y.shape == [0, 3])
        }
    }
}
