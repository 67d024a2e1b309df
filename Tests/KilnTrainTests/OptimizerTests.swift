import Foundation
import KilnCore
import KilnGraph
import KilnTrain
import Testing

/// Optimizers: steps worked by hand, and every case of MXNet 1.9.1's golden updates.
@Suite struct OptimizerTests {
    func expectValues(_ a: NDArray, _ expected: [Double], tolerance: Double = 1e-6, _ what: String,
                      sourceLocation: SourceLocation = #_sourceLocation) {
        let v = a.doubles()
        #expect(v.count == expected.count, "\(what)", sourceLocation: sourceLocation)
        for (x, e) in zip(v, expected) {
            #expect(abs(x - e) <= tolerance * max(1, abs(e)), "\(what): \(v) vs \(expected)", sourceLocation: sourceLocation)
        }
    }

    // MARK: Worked by hand

    @Test func sgdWithMomentumWeightDecayAndClippingWorkedByHand() throws {
        // w = [1, -2], grad = [4, -0.2] twice; lr 0.1, momentum 0.9, wd 0.01, rescale 0.5, clip 1.
        // step 1: clip(0.5 g) = [1, -0.1]; + wd w = [1.01, -0.12]; mom = -0.1 * that = [-0.101, 0.012];
        //         w = [0.899, -1.988]
        // step 2: clip(0.5 g) + wd w = [1.00899, -0.11988]; mom = 0.9 [-0.101, 0.012] - 0.1 [1.00899, -0.11988]
        //         = [-0.191799, 0.022788]; w = [0.707201, -1.965212]
        let sgd = SGD(learningRate: 0.1, momentum: 0.9, weightDecay: 0.01, rescaleGradient: 0.5, clipGradient: 1)
        var w = NDArray(shape: [2], values: [1, -2])
        let g = NDArray(shape: [2], values: [4, -0.2])
        try sgd.update("w", weight: &w, gradient: g)
        expectValues(w, [0.899, -1.988], "step 1")
        expectValues(sgd.state(of: "w")[0], [-0.101, 0.012], "momentum after step 1")
        try sgd.update("w", weight: &w, gradient: g)
        expectValues(w, [0.707201, -1.965212], "step 2")
        #expect(sgd.updateCount == 2)
    }

    @Test func sgdWithoutMomentumKeepsNoState() throws {
        // w = 2, grad 1, lr 0.5, wd 0.1: w = (1 - 0.05) 2 - 0.5 = 1.4
        let sgd = SGD(learningRate: 0.5, weightDecay: 0.1)
        var w = NDArray(shape: [1], values: [2])
        try sgd.update("w", weight: &w, gradient: NDArray(shape: [1], values: [1]))
        expectValues(w, [1.4], "step")
        #expect(sgd.state(of: "w").isEmpty)
    }

    @Test func nagWorkedByHand() throws {
        // w = [1, -2], grad = [4, -0.2] twice; lr 0.1, momentum 0.9, wd 0.01, rescale 0.5, clip 1.
        // MXNet's kernel: m' = 0.9 m; w' = w - m' + 1.9 (m' - 0.1 (clip(0.5 grad) + 0.01 w)); m = m' - 0.1 (clip(0.5 grad) + 0.01 w').
        // step 1: m' = 0; w' = [1 + 1.9 (-0.101), -2 + 1.9 (0.012)] = [0.8081, -1.9772];
        //         m = [-0.1 (1 + 0.008081), -0.1 (-0.1 - 0.019772)] = [-0.1008081, 0.0119772]
        // step 2: m' = [-0.09072729, 0.01077948]; w' = [0.8081 + 0.09072729 + 1.9 (-0.09072729 - 0.1008081),
        //         -1.9772 - 0.01077948 + 1.9 (0.01077948 + 0.0119772)] = [0.53491005, -1.94474179]
        let nag = NAG(learningRate: 0.1, momentum: 0.9, weightDecay: 0.01, rescaleGradient: 0.5, clipGradient: 1)
        var w = NDArray(shape: [2], values: [1, -2])
        let g = NDArray(shape: [2], values: [4, -0.2])
        try nag.update("w", weight: &w, gradient: g)
        expectValues(w, [0.8081, -1.9772], "step 1")
        expectValues(nag.state(of: "w")[0], [-0.1008081, 0.0119772], "momentum after step 1")
        try nag.update("w", weight: &w, gradient: g)
        expectValues(w, [0.53491005, -1.94474179], "step 2")
    }

    @Test func adamThreeStepsWorkedByHand() throws {
        // w = 0.5, grads 0.1, -0.2, 0.3; lr 0.01, beta1 0.9, beta2 0.999, eps 1e-8 (worked in double):
        // t=1: m = 0.01, v = 1e-5, lr_t = 0.01 sqrt(0.001) / 0.1 = 0.0031623, w = 0.4900000316
        // t=2: m = -0.011, v = 4.999e-5, lr_t = 0.0023532, w = 0.4936610617
        // t=3: m = 0.0201, v = 1.3994e-4, lr_t = 0.0020201, w = 0.4902286538
        let adam = Adam(learningRate: 0.01)
        var w = NDArray(shape: [1], values: [0.5])
        for (g, expected) in zip([0.1, -0.2, 0.3] as [Float], [0.4900000316, 0.4936610617, 0.4902286538]) {
            try adam.update("w", weight: &w, gradient: NDArray(shape: [1], values: [g]))
            expectValues(w, [expected], tolerance: 2e-7, "Adam")
        }
        expectValues(adam.state(of: "w")[0], [0.0201], tolerance: 1e-6, "first moment")
        expectValues(adam.state(of: "w")[1], [1.3994001e-4], tolerance: 1e-6, "second moment")
    }

    @Test func parametersCountTheirOwnUpdates() throws {
        // Adam's bias correction uses the parameter's own count; numUpdate is the largest count.
        let adam = Adam(learningRate: 0.01)
        var a = NDArray(shape: [1], values: [0.5]), b = NDArray(shape: [1], values: [0.5])
        let g = NDArray(shape: [1], values: [0.1])
        try adam.update("a", weight: &a, gradient: g)
        try adam.update("a", weight: &a, gradient: g)
        try adam.update("b", weight: &b, gradient: g)
        #expect(adam.updateCount == 2)
        expectValues(b, [0.4900000316], tolerance: 2e-7, "b's first update is a first step")
    }

    @Test func mismatchedGradientsAreRefused() {
        let sgd = SGD()
        var w = NDArray(zeros: [2, 2])
        #expect(throws: KilnTrainError.self) { try sgd.update("w", weight: &w, gradient: NDArray(zeros: [4])) }
        var h = NDArray(zeros: [2], dtype: .float16)
        #expect(throws: KilnTrainError.self) { try sgd.update("h", weight: &h, gradient: NDArray(zeros: [2], dtype: .float16)) }
    }

    @Test func multipliersComeFromTheSymbolAsInMXNetsModule() throws {
        // No weight decay for parameters not named *_weight or *_gamma; __lr_mult__ and __wd_mult__ override.
        let w = Symbol.variable("fc_weight", attributes: ["__lr_mult__": "2"])
        let net = Symbol.group([w, .variable("fc_bias"), .variable("bn_gamma"), .variable("other", attributes: ["__wd_mult__": "3"])])
        let sgd = SGD()
        sgd.weightDecayMultipliers["bn_gamma"] = 0.5   // set by the user: kept
        sgd.setMultipliers(from: net, parameterNames: ["fc_weight", "fc_bias", "bn_gamma", "other"])
        #expect(sgd.learningRateMultipliers == ["fc_weight": 2])
        #expect(sgd.weightDecayMultipliers == ["fc_bias": 0, "bn_gamma": 0.5, "other": 3])
    }

    // MARK: MXNet's golden updates

    static let goldenCaseNames = ["sgd_momentum_wd_clip", "sgd_plain_wd", "sgd_multipliers", "sgd_factor_scheduler",
                                  "nag_momentum_wd_clip", "nag_no_momentum", "adam_default", "adam_wd_clip_rescale"]

    func makeOptimizer(_ c: [String: Any]) throws -> Optimizer {
        let kind = try #require(c["optimizer"] as? String)
        let k = try #require(c["kwargs"] as? [String: Any])
        let lr = number(k["learning_rate"]), wd = number(k["wd"]) ?? 0
        let rescale = number(k["rescale_grad"]), clip = number(k["clip_gradient"])
        var scheduler: (any LRScheduler)?
        if let s = k["lr_scheduler"] as? [String: Any] {
            scheduler = try FactorScheduler(step: Int(number(s["step"]) ?? 1), factor: number(s["factor"]) ?? 1)
        }
        switch kind {
        case "sgd":
            return SGD(learningRate: lr, momentum: number(k["momentum"]) ?? 0, scheduler: scheduler, weightDecay: wd,
                       rescaleGradient: rescale, clipGradient: clip)
        case "nag":
            return NAG(learningRate: lr, momentum: number(k["momentum"]) ?? 0, scheduler: scheduler, weightDecay: wd,
                       rescaleGradient: rescale, clipGradient: clip)
        case "adam":
            return Adam(learningRate: lr ?? 0.001, beta1: number(k["beta1"]) ?? 0.9, beta2: number(k["beta2"]) ?? 0.999,
                        epsilon: number(k["epsilon"]) ?? 1e-8, scheduler: scheduler, weightDecay: wd,
                        rescaleGradient: rescale, clipGradient: clip)
        default:
            throw TrainGolden.GoldenError("unknown optimizer \(kind)")
        }
    }

    @Test(arguments: goldenCaseNames)
    func matchesMXNet(_ caseName: String) throws {
        let c = try #require(try TrainGolden.cases("optimizers").first { $0["name"] as? String == caseName })
        let optimizer = try makeOptimizer(c)
        let names = try #require(c["names"] as? [String])
        let shapes = try #require(c["shapes"] as? [String: Any])
        let attributes = c["attributes"] as? [String: [String: String]] ?? [:]
        // MXNet's Module passes the parameters' names and the symbol; so does this test.
        let symbol = Symbol.group(names.map { Symbol.variable($0, attributes: attributes[$0] ?? [:]) })
        optimizer.setMultipliers(from: symbol, parameterNames: names)
        let initial = try #require(c["initial"] as? [String: Any])
        var weights: [String: NDArray] = [:]
        for n in names { weights[n] = NDArray(shape: Shape(ints(shapes[n])), values: floats(initial[n])) }
        let gradients = try #require(c["gradients"] as? [[String: Any]])
        let expected = try #require(c["weights"] as? [[String: Any]])
        #expect(gradients.count == expected.count && !gradients.isEmpty)
        for (step, (g, e)) in zip(gradients, expected).enumerated() {
            for n in names {
                var w = try #require(weights[n])
                try optimizer.update(n, weight: &w, gradient: NDArray(shape: w.shape, values: floats(g[n])))
                weights[n] = w
                expectValues(w, doubles(e[n]), tolerance: 2e-6, "\(caseName) step \(step + 1) \(n)")
            }
        }
    }
}
