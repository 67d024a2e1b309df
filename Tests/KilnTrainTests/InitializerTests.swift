import Foundation
import KilnCore
import KilnGraph
import KilnTrain
import TestSupport
import Testing

/// Initializers: bounds worked by hand and checked against MXNet 1.9.1's, the statistics of what they
/// draw, reproducibility, and MXNet's rule of which variable gets what.
@Suite struct InitializerTests {
    // MARK: Xavier's scale

    struct ScaleCase: Sendable, CustomStringConvertible {
        let shape: Shape
        let factor: Xavier.FactorType
        let magnitude: Double
        let expected: Double
        let note: String
        var description: String { "\(shape) \(factor.rawValue) \(magnitude)" }
    }

    static let scaleCases: [ScaleCase] = [
        // fan_in 20, fan_out 10: avg 15, sqrt(3 / 15) = 0.4472136
        ScaleCase(shape: [10, 20], factor: .average, magnitude: 3, expected: 0.4472136, note: "sqrt(3/15)"),
        // (16, 3, 5, 5): receptive field 25, fan_in 75, fan_out 400, avg 237.5: sqrt(3 / 237.5) = 0.1123903
        ScaleCase(shape: [16, 3, 5, 5], factor: .average, magnitude: 3, expected: 0.1123903, note: "sqrt(3/237.5)"),
        // fan_in 75: sqrt(2 / 75) = 0.1632993
        ScaleCase(shape: [16, 3, 5, 5], factor: .fanIn, magnitude: 2, expected: 0.1632993, note: "sqrt(2/75)"),
        // fan_out 400: sqrt(6 / 400) = 0.1224745
        ScaleCase(shape: [16, 3, 5, 5], factor: .fanOut, magnitude: 6, expected: 0.1224745, note: "sqrt(6/400)"),
        // (8, 4, 3): fan_in 12, fan_out 24, avg 18: sqrt(3 / 18) = 0.4082483
        ScaleCase(shape: [8, 4, 3], factor: .average, magnitude: 3, expected: 0.4082483, note: "sqrt(3/18)"),
    ]

    @Test(arguments: scaleCases)
    func xavierScaleWorkedByHand(_ c: ScaleCase) throws {
        let s = try #require(Xavier(randomType: .uniform, factorType: c.factor, magnitude: c.magnitude).scale(for: c.shape))
        #expect(abs(s - c.expected) < 1e-6, "\(c.note): got \(s)")
    }

    @Test func scalesMatchMXNet() throws {
        // The bound or standard deviation MXNet 1.9.1 passed to its random generator, per shape.
        let cases = try TrainGolden.cases("initializers")
        #expect(cases.count == 28)
        for c in cases {
            let kind = try #require(c["kind"] as? String), kwargs = c["kwargs"] as? [String: Any] ?? [:]
            let shape = Shape(ints(c["shape"])), parameters = doubles(c["parameters"])
            let distribution = try #require(c["distribution"] as? String)
            let (expectedDistribution, scale): (String, Double?)
            switch kind {
            case "xavier":
                let x = Xavier(randomType: Xavier.RandomType(rawValue: kwargs["rnd_type"] as? String ?? "uniform") ?? .uniform,
                               factorType: Xavier.FactorType(rawValue: kwargs["factor_type"] as? String ?? "avg") ?? .average,
                               magnitude: number(kwargs["magnitude"]) ?? 3)
                (expectedDistribution, scale) = (x.randomType.rawValue, x.scale(for: shape))
            case "msraprelu":
                let m = MSRAPrelu(factorType: Xavier.FactorType(rawValue: kwargs["factor_type"] as? String ?? "avg") ?? .average,
                                  slope: number(kwargs["slope"]) ?? 0.25)
                (expectedDistribution, scale) = ("gaussian", m.xavier.scale(for: shape))
            case "uniform": (expectedDistribution, scale) = ("uniform", Uniform(scale: number(kwargs["scale"]) ?? 0.07).scale)
            case "normal": (expectedDistribution, scale) = ("gaussian", Normal(sigma: number(kwargs["sigma"]) ?? 0.01).sigma)
            default: Issue.record("unknown kind \(kind)"); continue
            }
            #expect(distribution == expectedDistribution, "\(kind) \(kwargs) \(shape)")
            // uniform: [-scale, scale]; gaussian: mean 0 and standard deviation scale
            let mxnetScale = parameters[1]
            if distribution == "uniform" { #expect(abs(parameters[0] + parameters[1]) < 1e-12) } else { #expect(parameters[0] == 0) }
            #expect(abs((scale ?? .nan) - mxnetScale) < 1e-12, "\(kind) \(kwargs) \(shape): \(scale ?? .nan) vs MXNet \(mxnetScale)")
        }
    }

    // MARK: Statistics of the draws

    /// Mean, standard deviation, smallest and largest value.
    func statistics(_ a: NDArray) -> (mean: Double, std: Double, min: Double, max: Double) {
        let v = a.doubles()
        let mean = v.reduce(0, +) / Double(v.count)
        let variance = v.reduce(0) { $0 + ($1 - mean) * ($1 - mean) } / Double(v.count)
        return (mean, variance.squareRoot(), v.min() ?? .nan, v.max() ?? .nan)
    }

    @Test func xavierUniformStaysInItsBoundWithTheVarianceOfAUniform() throws {
        // (200, 300): avg fan 250, bound sqrt(3 / 250) = 0.1095445; a uniform on [-b, b] has std b / sqrt(3) = 0.0632456.
        var w = NDArray(zeros: [200, 300])
        try Xavier().initialize(&w, name: "fc_weight", seed: 1)
        let s = statistics(w)
        #expect(s.min >= -0.1095445 && s.max < 0.1095445)
        #expect(s.max > 0.109 && s.min < -0.109, "60000 draws reach close to the bound")
        #expect(abs(s.mean) < 0.001)
        #expect(abs(s.std - 0.0632456) < 0.0006)
    }

    @Test func xavierGaussianHasTheScaleAsStandardDeviation() throws {
        // (64, 32, 3, 3), factor in: fan_in 288, std sqrt(2 / 288) = 0.0833333.
        var w = NDArray(zeros: [64, 32, 3, 3])
        try Xavier(randomType: .gaussian, factorType: .fanIn, magnitude: 2).initialize(&w, name: "conv_weight", seed: 2)
        let s = statistics(w)
        #expect(abs(s.mean) < 0.001)
        #expect(abs(s.std - 0.0833333) < 0.0015)
    }

    @Test func msraPreluIsAGaussianXavierOfMagnitudeTwoOverOnePlusSlopeSquared() throws {
        // slope 0.25: magnitude 2 / 1.0625 = 1.8823529; (100, 400) avg fan 250: std sqrt(1.8823529 / 250) = 0.0867722
        let m = MSRAPrelu()
        #expect(abs(m.xavier.magnitude - 1.8823529) < 1e-6)
        var w = NDArray(zeros: [100, 400])
        try m.initialize(&w, name: "fc_weight", seed: 3)
        let s = statistics(w)
        #expect(abs(s.std - 0.0867722) < 0.0015)
        #expect(abs(s.mean) < 0.002)
    }

    @Test func uniformAndNormalDrawWithTheirParameters() throws {
        var generator = SplitMix64(seed: 42)
        var u = NDArray(zeros: [50000])
        try Uniform(scale: 0.5).fillWeight(&u, name: "u", generator: &generator)
        let su = statistics(u)
        #expect(su.min >= -0.5 && su.max < 0.5)
        #expect(abs(su.std - 0.5 / 3.0.squareRoot()) < 0.003)
        var n = NDArray(zeros: [50000])
        try Normal(sigma: 0.2).fillWeight(&n, name: "n", generator: &generator)
        let sn = statistics(n)
        #expect(abs(sn.std - 0.2) < 0.003)
        #expect(abs(sn.mean) < 0.004)
    }

    @Test func constantZeroAndOneFillEveryElement() throws {
        var a = NDArray(zeros: [2, 3])
        try Constant(0.25).initialize(&a, name: "x_weight")
        #expect(a.floats() == [Float](repeating: 0.25, count: 6))
        try One().initialize(&a, name: "x_weight")
        #expect(a.floats() == [Float](repeating: 1, count: 6))
        try Zero().initialize(&a, name: "x_weight")
        #expect(a.floats() == [Float](repeating: 0, count: 6))
        try Constant(values: [1, 2, 3, 4, 5, 6]).initialize(&a, name: "x_weight")
        #expect(a.floats() == [1, 2, 3, 4, 5, 6])
        #expect(throws: KilnTrainError.self) { try Constant(values: [1, 2]).initialize(&a, name: "x_weight") }
    }

    // MARK: Reproducibility

    @Test func valuesDependOnlyOnSeedAndName() throws {
        func draw(_ name: String, _ seed: UInt64) throws -> [Float] {
            var a = NDArray(zeros: [4, 5])
            try Xavier().initialize(&a, name: name, seed: seed)
            return a.floats()
        }
        #expect(try draw("fc1_weight", 7) == draw("fc1_weight", 7))
        #expect(try draw("fc1_weight", 7) != draw("fc2_weight", 7))
        #expect(try draw("fc1_weight", 7) != draw("fc1_weight", 8))
    }

    // MARK: MXNet's rule

    @Test(arguments: [
        ("fc1_weight", InitializationRule.weight), ("fc1_bias", .zero), ("bn_gamma", .one), ("bn_beta", .zero),
        ("bn_moving_mean", .zero), ("bn_moving_var", .one), ("bn_running_mean", .zero), ("bn_running_var", .one),
        ("q_min", .zero), ("q_max", .one),
    ])
    func namesChooseTheRule(_ name: String, _ rule: InitializationRule) throws {
        #expect(InitializationRule(variableName: name) == rule)
        var a = NDArray(shape: [3, 2], values: [7, 7, 7, 7, 7, 7])
        try Constant(0.5).initialize(&a, name: name)
        let expected: Float = rule == .weight ? 0.5 : (rule == .zero ? 0 : 1)
        #expect(a.floats() == [Float](repeating: expected, count: 6))
    }

    @Test func unknownNamesAreRefused() {
        var a = NDArray(zeros: [3])
        #expect(throws: KilnTrainError.unknownInitializationPattern(variable: "data")) {
            try Xavier().initialize(&a, name: "data")
        }
    }

    @Test func theInitAttributeWinsOverTheName() throws {
        // A weight marked ["one", {}] gets ones although its name asks for the initializer.
        var w = NDArray(zeros: [2, 2])
        try Xavier().initialize(&w, name: "fc_weight", attributes: ["__init__": #"["one", {}]"#])
        #expect(w.floats() == [1, 1, 1, 1])
        // A bias marked constant gets the constant, not zero.
        var b = NDArray(zeros: [3])
        try Xavier().initialize(&b, name: "fc_bias", attributes: ["__init__": #"["Constant", {"value": 0.25}]"#])
        #expect(b.floats() == [0.25, 0.25, 0.25])
        // A name no rule covers is fine with an attribute.
        var s = NDArray(zeros: [2])
        try Xavier().initialize(&s, name: "scale", attributes: ["__init__": #"["zero", {}]"#])
        #expect(s.floats() == [0, 0])
    }

    /// Gluon's export writes bare registered names (`"ones"` on cifarresnetv10_batchnorm0_gamma in the
    /// committed gluoncv checkpoint); MXNet's registry reads them as names.
    @Test func bareInitializerNamesAsGluonExportsThem() throws {
        let symbol = try Symbol.load(jsonFile: Fixtures.url("golden/models/cifar_resnet20_v1/cifar_resnet20_v1-symbol.json").path)
        let gamma = try #require(symbol.graph.nodes.first { $0.name == "cifarresnetv10_batchnorm0_gamma" })
        #expect(gamma.attributes["__init__"] == "ones")
        #expect(try initializer(fromAttribute: "ones") is One)
        #expect(try initializer(fromAttribute: "zeros") is Zero)
        #expect(try initializer(fromAttribute: "Xavier") is Xavier)
        #expect(throws: KilnTrainError.self) { try initializer(fromAttribute: "spline") }
    }

    @Test func initAttributesWrittenByMXNetAreRead() throws {
        let attributes = try #require(try TrainGolden.load("initializers")["init_attributes"] as? [String: String])
        #expect(attributes.count == 9)
        for (label, text) in attributes {
            let chosen = try initializer(fromAttribute: text, variable: label)
            switch label {
            case "zero", "batchnorm_moving_mean": #expect(chosen is Zero)
            case "one", "batchnorm_moving_var": #expect(chosen is One)
            case "constant": #expect((chosen as? Constant)?.values == [0.25])
            case "uniform": #expect((chosen as? Uniform)?.scale == 0.3)
            case "normal": #expect((chosen as? Normal)?.sigma == 0.5)
            case "xavier":
                let x = try #require(chosen as? Xavier)
                #expect(x.randomType == .gaussian && x.factorType == .fanIn && x.magnitude == 2.34)
            case "msraprelu":
                let m = try #require(chosen as? MSRAPrelu)
                #expect(m.factorType == .average && m.slope == 0.1)
            default: Issue.record("unexpected label \(label)")
            }
        }
    }

    @Test(arguments: [#"not json"#, #"["xavier", {"factor_type": "sideways"}]"#, #"["orthogonal", {}]"#,
                      #"["constant", {}]"#, #"["uniform", {"scale": "big"}]"#, #"[1, 2]"#])
    func badInitAttributesAreRefusedWithTheVariableNamed(_ text: String) {
        var a = NDArray(zeros: [2, 2])
        do {
            try Xavier().initialize(&a, name: "w_weight", attributes: ["__init__": text])
            Issue.record("accepted \(text)")
        } catch let e as KilnTrainError {
            #expect(e.description.contains("'w_weight'"), "\(e)")
        } catch {
            Issue.record("unexpected \(error)")
        }
    }

    @Test func xavierRefusesVectors() {
        var v = NDArray(zeros: [5])
        #expect(throws: KilnTrainError.self) {
            try Xavier().initialize(&v, name: "w_weight")
        }
    }

    @Test func otherDTypesAreFilledThroughFloat32() throws {
        var a = NDArray(zeros: [2, 2], dtype: .float16)
        try Constant(1.5).initialize(&a, name: "h_weight")
        #expect(a.dtype == .float16)
        #expect(a.floats() == [1.5, 1.5, 1.5, 1.5])
    }
}
