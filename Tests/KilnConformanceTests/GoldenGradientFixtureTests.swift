import Kiln
import TestSupport
import Testing

/// The fixtures themselves against gradients worked out by hand from their own inputs: proof that the
/// loader pairs every `grad:` with the right arguments and head gradients, so a conformance failure
/// means Kiln, not the harness.
@Suite struct GoldenGradientFixtureTests {
    func load(_ name: String) throws -> GoldenGradientCase { try GoldenGradients.load(name) }

    func expectEqual(_ actual: NDArray?, _ expected: NDArray, _ what: String,
                     sourceLocation: SourceLocation = #_sourceLocation) {
        guard let actual else {
            Issue.record("\(what) is missing", sourceLocation: sourceLocation)
            return
        }
        expectClose(actual, expected, relative: 1e-5, what, sourceLocation: sourceLocation)
    }

    @Test func copyPassesTheHeadGradient() throws {
        let c = try load("_copy_3d")
        expectEqual(c.gradients["data"], c.headGradients[0], "d copy / d data")
    }

    @Test func subtractionNegatesTheRightHandGradient() throws {
        let c = try load("elemwise_sub_3d")
        expectEqual(c.gradients["data"], c.headGradients[0], "d(a-b)/da")
        expectEqual(c.gradients["data1"], c.headGradients[0].map { -$0 }, "d(a-b)/db")
    }

    @Test func scalarMultiplicationScales() throws {
        let c = try load("_mul_scalar_neg0p5")
        expectEqual(c.gradients["data"], c.headGradients[0].map { -0.5 * $0 }, "d(-x/2)/dx")
    }

    @Test func flattenReshapesTheHeadGradient() throws {
        let c = try load("Flatten_4d")
        let x = try #require(c.arguments["data"])
        expectEqual(c.gradients["data"], try c.headGradients[0].reshaped(x.shape), "d flatten / d data")
    }

    @Test func aVariableReadTwiceSumsBothSlots() throws {
        // x * x: 2·x·ograd
        let c = try load("elemwise_mul_same_input")
        let x = try #require(c.arguments["data"])
        expectEqual(c.gradients["data"], try x.zipMap(c.headGradients[0]) { 2 * $0 * $1 }, "d(x·x)/dx")
    }

    @Test func sliceChannelRoutesEachOutputsHeadGradient() throws {
        // data (2, 6, 2) split in 3 along axis 1: output k holds channels 2k and 2k+1
        let c = try load("SliceChannel_3_axis1")
        let x = try #require(c.arguments["data"])
        #expect(x.shape == [2, 6, 2] && c.headGradients.count == 3)
        var values = [Float](repeating: 0, count: x.elementCount)
        for n in 0..<2 { for ch in 0..<6 { for w in 0..<2 {
            values[(n * 6 + ch) * 2 + w] = Float(c.headGradients[ch / 2].element((n * 2 + ch % 2) * 2 + w))
        } } }
        expectEqual(c.gradients["data"], NDArray(shape: x.shape, values: values), "d split / d data")
    }

    @Test func softmaxOutputWithBatchNormalization() throws {
        // (softmax - onehot(label)) / N, whatever the head gradient
        let c = try load("SoftmaxOutput_batch")
        let p = c.outputs[0], y = try #require(c.arguments["op_label"])
        let (n, k) = (p.shape[0], p.shape[1])
        var values = p.floats()
        for i in 0..<n { values[i * k + Int(y.element(i))] -= 1 }
        expectEqual(c.gradients["data"], NDArray(shape: p.shape, values: values.map { $0 / Float(n) }), "d loss / d data")
    }

    @Test func batchNormMovingStatisticsUseTheBiasedVariance() throws {
        // moving = moving·0.9 + batch·0.1, the batch variance divided by N·H·W (not N·H·W − 1)
        let c = try load("BatchNorm_fix_gamma_false")
        let x = try #require(c.arguments["data"])
        let (n, ch, hw) = (x.shape[0], x.shape[1], x.shape[2] * x.shape[3])
        var means = [Float](), vars = [Float]()
        for j in 0..<ch {
            var v = [Double]()
            for i in 0..<n { for s in 0..<hw { v.append(x.element((i * ch + j) * hw + s)) } }
            let m = v.reduce(0, +) / Double(v.count)
            means.append(Float(m))
            vars.append(Float(v.map { ($0 - m) * ($0 - m) }.reduce(0, +) / Double(v.count)))
        }
        let mm = try #require(c.auxiliaryStates["op_moving_mean"]), mv = try #require(c.auxiliaryStates["op_moving_var"])
        expectEqual(c.auxiliaryStatesAfter["op_moving_mean"],
                    try mm.zipMap(NDArray(shape: [ch], values: means)) { 0.9 * $0 + 0.1 * $1 }, "moving mean")
        expectEqual(c.auxiliaryStatesAfter["op_moving_var"],
                    try mv.zipMap(NDArray(shape: [ch], values: vars)) { 0.9 * $0 + 0.1 * $1 }, "moving var")
    }

    @Test func batchNormWithGlobalStatisticsLeavesThemAlone() throws {
        let c = try load("BatchNorm_use_global_stats")
        for (name, before) in c.auxiliaryStates { expectEqual(c.auxiliaryStatesAfter[name], before, name) }
    }

    @Test func everyCaseLoadsCompletely() throws {
        for name in GoldenGradients.caseNames {
            let c = try load(name)
            let arguments = Set(c.symbol.listArguments())
            #expect(Set(c.arguments.keys) == arguments, "\(name): arguments")
            #expect(Set(c.gradients.keys) == Set(c.gradientArguments), "\(name): gradients")
            #expect(c.gradientArguments.allSatisfy { !$0.hasSuffix("label") }, "\(name): a label gets a gradient")
            #expect(arguments.subtracting(c.gradientArguments).allSatisfy { $0.hasSuffix("label") }, "\(name): a non-label argument gets none")
            #expect(Set(c.auxiliaryStatesAfter.keys) == Set(c.auxiliaryStates.keys), "\(name): auxiliary states")
            #expect(c.outputs.count == c.headGradients.count && !c.outputs.isEmpty, "\(name): outputs")
            for (o, g) in zip(c.outputs, c.headGradients) { #expect(o.shape == g.shape, "\(name): head gradient shape") }
        }
    }
}
