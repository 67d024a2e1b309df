import KilnCore
import KilnEngine
import KilnEngineCore
import KilnGraph
import KilnRuntime
import TestSupport
import Testing

/// A small graph with random weights, its IR, and the whole-graph check against the framework.
struct Case {
    let bound: Bound
    let ir: EngineIR

    init(_ symbol: Symbol, data: Shape, extraInputs: [String: Shape] = [:], constants extra: [String: NDArray] = [:], seed: UInt64 = 3) throws {
        let graph = symbol.graph
        var given: [String: Shape] = extraInputs
        given["data"] = data
        for (k, v) in extra { given[k] = v.shape }
        let shapes = try graph.inferShapes(given)
        var weights = randomWeights(graph, shapes: shapes, data: Set(given.keys).subtracting(extra.keys), seed: seed)
        weights.merge(extra) { _, b in b }
        bound = try Bound(symbol, weights: weights, data: NDArray.randomNormal(shape: data, seed: seed &+ 100))
        ir = try EngineIR(graph: bound.graph, shapes: bound.shapes, types: bound.types, constants: bound.constants, capabilities: CPUCapabilities.capabilities)
    }

    /// The IR after one pass (checked), and how many rewrites it made.
    func after(_ pass: any EnginePass, from start: EngineIR? = nil) throws -> (EngineIR, Int) {
        var ir = start ?? self.ir
        let n = try pass.apply(to: &ir)
        try ir.check(after: pass.name, policy: CPUCapabilities.fusion)
        return (ir, n)
    }

    /// Compiles the whole graph with the engine and compares every output with the framework's.
    func expectEngineMatchesFramework(_ what: String, sourceLocation: SourceLocation = #_sourceLocation) throws {
        let (_, outputs) = try bound.runEngine()
        let framework = try bound.runFramework()
        #expect(outputs.count == framework.count, sourceLocation: sourceLocation)
        for (k, (e, f)) in zip(outputs, framework).enumerated() {
            expectClose(e, f, relative: 1e-4, "\(what) output \(k)", sourceLocation: sourceLocation)
        }
    }
}

extension EngineIR {
    /// Op summaries in order (`convolution`, `eltwise(relu)`), for structural comparisons.
    var kinds: [String] { ops.map(\.lowering.summary) }
}

@Suite struct IdentityRemovalTests {
    /// data -> conv -> Dropout -> relu -> _copy -> (output): the identities go, readers read through.
    @Test func dropoutAndCopyAreRemoved() throws {
        let x = Symbol.variable("data")
        let conv = Symbol.convolution(x, kernel: [3, 3], numFilter: 4, pad: [1, 1], name: "conv0")
        let y = Symbol.copy(.activation(.dropout(conv, p: 0.3, name: "drop0"), kind: .relu, name: "relu0"), name: "copy0")
        let c = try Case(y, data: [2, 3, 8, 8])
        #expect(c.ir.kinds == ["convolution", "identity", "eltwise(relu)", "identity"])
        let (after, n) = try c.after(IdentityRemoval())
        #expect(n == 2)
        #expect(after.kinds == ["convolution", "eltwise(relu)"])
        #expect(after.ops[1].inputs == [after.ops[0].output])
        #expect(after.outputs == [after.ops[1].output])
        try c.expectEngineMatchesFramework("identities")
    }

    /// An identity whose input is the group's input: the output is the input, copied out.
    @Test func identityOfTheInputIsTheInput() throws {
        let y = Symbol.copy(.variable("data"), name: "copy0")
        let c = try Case(y, data: [2, 5])
        let (after, _) = try c.after(IdentityRemoval())
        #expect(after.ops.isEmpty)
        #expect(after.values[after.outputs[0]].inputName == "data")
        try c.expectEngineMatchesFramework("identity of the input")
    }
}

@Suite struct ConstantFoldingTests {
    /// add(conv(x), relu(_copy(c))) with c constant: relu(_copy(c)) folds into one constant.
    @Test func opsOnConstantsFold() throws {
        let x = Symbol.variable("data"), c = Symbol.variable("c")
        let conv = Symbol.convolution(x, kernel: [1, 1], numFilter: 3, name: "conv0")
        let y = Symbol.elementwiseAdd(conv, .activation(.copy(c, name: "copy0"), kind: .relu, name: "relu0"), name: "add0")
        let constant = NDArray.randomNormal(shape: [2, 3, 4, 4], seed: 5)
        let k = try Case(y, data: [2, 3, 4, 4], constants: ["c": constant])
        #expect(k.ir.kinds == ["convolution", "identity", "eltwise(relu)", "add"])
        let (after, n) = try k.after(ConstantFolding())
        #expect(n == 2)
        #expect(after.kinds == ["convolution", "add"])
        let folded = try #require(after.values[after.ops[1].inputs[1]].constant)
        expectClose(folded, constant.map { max(0, $0) }, relative: 0, "relu(c) folded")
        try k.expectEngineMatchesFramework("folded constants")
    }

    @Test func nothingFoldsWithoutConstants() throws {
        let y = Symbol.activation(.variable("data"), kind: .tanh, name: "tanh0")
        let c = try Case(y, data: [4, 4])
        let (after, n) = try c.after(ConstantFolding())
        #expect(n == 0)
        #expect(after.kinds == ["eltwise(tanh)"])
    }
}

@Suite struct BatchNormFoldingTests {
    /// conv (no bias) -> BatchNorm: one conv with folded weights and a new bias.
    @Test(arguments: [false, true], [false, true])
    func batchNormFoldsIntoConvolution(convHasBias: Bool, fixGamma: Bool) throws {
        let x = Symbol.variable("data")
        let conv = Symbol.convolution(x, kernel: [3, 3], numFilter: 8, pad: [1, 1], noBias: !convHasBias, name: "conv0")
        let y = Symbol.batchNorm(conv, eps: 1e-5, fixGamma: fixGamma, name: "bn0")
        // gamma is random (not 1), so fix_gamma=True is checked to ignore it.
        let c = try Case(y, data: [2, 4, 6, 6])
        #expect(c.ir.kinds == ["convolution", "batch_norm"])
        let (after, n) = try c.after(BatchNormFolding())
        #expect(n == 1)
        #expect(after.kinds == ["convolution"])
        #expect(after.ops[0].fused == ["bn0"])
        guard case let .convolution(spec) = after.ops[0].lowering else { Issue.record("not a convolution"); return }
        #expect(spec.hasBias && after.ops[0].inputs.count == 3)
        #expect(after.outputs == [after.ops[0].output])
        try c.expectEngineMatchesFramework("conv+bn (bias \(convHasBias), fix_gamma \(fixGamma))")
    }

    @Test func batchNormFoldsIntoFullyConnected() throws {
        let fc = Symbol.fullyConnected(.variable("data"), numHidden: 6, name: "fc0")
        let y = Symbol.batchNorm(fc, fixGamma: false, name: "bn0")
        let c = try Case(y, data: [3, 5])
        let (after, n) = try c.after(BatchNormFolding())
        #expect(n == 1)
        #expect(after.kinds == ["inner_product"])
        try c.expectEngineMatchesFramework("fc+bn")
    }

    /// The conv's output is also a group output: folding would change it, so the BatchNorm stays
    /// (and runs as oneDNN's batch normalization, in the conv's layout).
    @Test func batchNormStaysWhenTheConvOutputIsReadElsewhere() throws {
        let conv = Symbol.convolution(.variable("data"), kernel: [3, 3], numFilter: 8, pad: [1, 1], name: "conv0")
        let y = Symbol.group([conv, .batchNorm(conv, fixGamma: false, name: "bn0")])
        let c = try Case(y, data: [2, 4, 6, 6])
        let (after, n) = try c.after(BatchNormFolding())
        #expect(n == 0)
        #expect(after.kinds == ["convolution", "batch_norm"])
        try c.expectEngineMatchesFramework("conv and bn both outputs")
    }

    /// A BatchNorm on the group's input has nothing to fold into.
    @Test func batchNormOnInputRunsAlone() throws {
        let y = Symbol.batchNorm(.variable("data"), fixGamma: false, name: "bn0")
        let c = try Case(y, data: [2, 3, 5, 5])
        let (after, n) = try c.after(BatchNormFolding())
        #expect(n == 0 && after.kinds == ["batch_norm"])
        try c.expectEngineMatchesFramework("bn alone")
    }
}

@Suite struct PostOpFusionTests {
    @Test(arguments: [ActivationKind.relu, .sigmoid, .tanh, .softReLU])
    func activationFusesIntoConvolution(kind: ActivationKind) throws {
        let conv = Symbol.convolution(.variable("data"), kernel: [3, 3], numFilter: 8, name: "conv0")
        let c = try Case(.activation(conv, kind: kind, name: "act0"), data: [2, 3, 7, 7])
        let (after, n) = try c.after(PostOpFusion(policy: CPUCapabilities.fusion))
        #expect(n == 1)
        #expect(after.kinds == ["convolution"])
        #expect(after.ops[0].postOps.count == 1)
        try c.expectEngineMatchesFramework("conv+\(kind)")
    }

    @Test(arguments: [LeakyReLUKind.leaky, .elu, .gelu])
    func leakyReLUFusesIntoFullyConnected(kind: LeakyReLUKind) throws {
        let fc = Symbol.fullyConnected(.variable("data"), numHidden: 7, name: "fc0")
        let c = try Case(.leakyReLU(fc, kind: kind, slope: 0.1, name: "act0"), data: [4, 9])
        let (after, n) = try c.after(PostOpFusion(policy: CPUCapabilities.fusion))
        #expect(n == 1 && after.kinds == ["inner_product"])
        try c.expectEngineMatchesFramework("fc+\(kind)")
    }

    /// ResNet's block: relu(bn(conv2(relu(bn(conv1(x))))) + x) after BatchNorm folding is two convs,
    /// the second with post-ops [sum(x), relu].
    @Test func residualBlockBecomesTwoConvolutions() throws {
        let x = Symbol.variable("data")
        let a = Symbol.activation(.batchNorm(.convolution(x, kernel: [3, 3], numFilter: 16, pad: [1, 1], noBias: true, name: "conv1"),
                                             fixGamma: false, name: "bn1"), kind: .relu, name: "relu1")
        let b = Symbol.batchNorm(.convolution(a, kernel: [3, 3], numFilter: 16, pad: [1, 1], noBias: true, name: "conv2"), fixGamma: false, name: "bn2")
        let y = Symbol.activation(.elementwiseAdd(b, x, name: "add0"), kind: .relu, name: "relu2")
        let c = try Case(y, data: [2, 16, 8, 8])
        var ir = c.ir
        _ = try BatchNormFolding().apply(to: &ir)
        #expect(ir.kinds == ["convolution", "eltwise(relu)", "convolution", "add", "eltwise(relu)"])
        let (after, n) = try c.after(PostOpFusion(policy: CPUCapabilities.fusion), from: ir)
        #expect(n == 3)
        #expect(after.kinds == ["convolution", "convolution"])
        let input = try #require(after.values.firstIndex { $0.inputName == "data" })
        #expect(after.ops[1].postOps == [.sum(input), .eltwise(EltwiseSpec(algorithm: .relu))])
        #expect(after.ops[1].fused == ["bn2", "add0", "relu2"])
        try c.expectEngineMatchesFramework("residual block")
        // The whole pipeline gives the same two primitives, and the sum runs in place (no copy of x).
        let plan = try c.bound.engine()
        #expect(plan.report.primitives.filter { $0.kind == "convolution" }.count == 2)
    }

    /// The downsampling block: both operands of the add are conv+bn. The one computed last takes
    /// the sum; the other is its residual.
    @Test func addOfTwoConvolutionsFusesIntoTheLaterOne() throws {
        let x = Symbol.variable("data")
        let main = Symbol.convolution(x, kernel: [3, 3], numFilter: 8, stride: [2, 2], pad: [1, 1], name: "conv_main")
        let short = Symbol.convolution(x, kernel: [1, 1], numFilter: 8, stride: [2, 2], name: "conv_short")
        let c = try Case(.elementwiseAdd(main, short, name: "add0"), data: [2, 4, 8, 8])
        let (after, n) = try c.after(PostOpFusion(policy: CPUCapabilities.fusion))
        #expect(n == 1)
        #expect(after.kinds == ["convolution", "convolution"])
        #expect(after.ops[1].name == "conv_short" && after.ops[1].postOps == [.sum(after.ops[0].output)])
        try c.expectEngineMatchesFramework("two convolutions added")
    }

    /// A conv read twice cannot take post-ops: the relu and the add stay.
    @Test func convolutionReadTwiceIsNotFused() throws {
        let conv = Symbol.convolution(.variable("data"), kernel: [3, 3], numFilter: 4, pad: [1, 1], name: "conv0")
        let y = Symbol.elementwiseAdd(.activation(conv, kind: .relu, name: "relu0"), conv, name: "add0")
        let c = try Case(y, data: [2, 4, 6, 6])
        let (after, n) = try c.after(PostOpFusion(policy: CPUCapabilities.fusion))
        #expect(n == 0)
        #expect(after.kinds == ["convolution", "eltwise(relu)", "add"])
        try c.expectEngineMatchesFramework("conv read twice")
    }

    /// conv + relu, then add: the sum may not follow the eltwise, so the add stays a primitive.
    @Test func addAfterActivationIsNotFused() throws {
        let x = Symbol.variable("data")
        let a = Symbol.activation(.convolution(x, kernel: [3, 3], numFilter: 4, pad: [1, 1], name: "conv0"), kind: .relu, name: "relu0")
        let c = try Case(.elementwiseAdd(a, x, name: "add0"), data: [2, 4, 6, 6])
        let (after, _) = try c.after(PostOpFusion(policy: CPUCapabilities.fusion))
        #expect(after.kinds == ["convolution", "add"])
        #expect(after.ops[0].postOps == [.eltwise(EltwiseSpec(algorithm: .relu))])
        try c.expectEngineMatchesFramework("add after relu")
    }
}

@Suite struct DeadOpEliminationTests {
    /// An op whose output nothing reads goes; the rest stays in order.
    @Test func unreadOpIsRemoved() throws {
        let c = try Case(.activation(.variable("data"), kind: .relu, name: "relu0"), data: [2, 3])
        var ir = c.ir
        let dead = ir.values.count
        ir.values.append(EngineIR.Value(shape: [2, 3], name: "tanh0", origin: .computed))
        ir.ops.append(EngineIR.Op(name: "tanh0", op: "Activation", attributes: ["act_type": "tanh"], fusion: .elementwise, weightInputs: [],
                                  lowering: .eltwise(EltwiseSpec(algorithm: .tanh)), inputs: [0], output: dead))
        try ir.check(after: "test", policy: CPUCapabilities.fusion)
        let (after, n) = try c.after(DeadOpElimination(), from: ir)
        #expect(n == 1 && after.kinds == ["eltwise(relu)"])
    }
}

@Suite struct IRCheckTests {
    func base() throws -> EngineIR {
        let conv = Symbol.convolution(.variable("data"), kernel: [3, 3], numFilter: 4, name: "conv0")
        return try Case(.activation(conv, kind: .relu, name: "relu0"), data: [1, 2, 5, 5]).ir
    }

    @Test func readingBeforeWritingIsCaught() throws {
        var ir = try base()
        ir.ops.swapAt(0, 1)
        #expect(throws: EngineCoreError.self) { try ir.check(after: "swap", policy: CPUCapabilities.fusion) }
    }

    @Test func twoWritersAreCaught() throws {
        var ir = try base()
        ir.ops[1].output = ir.ops[0].output
        #expect { try ir.check(after: "double", policy: CPUCapabilities.fusion) } throws: { "\($0)".contains("another op writes") && "\($0)".contains("'double'") }
    }

    @Test func nonConstantWeightIsCaught() throws {
        var ir = try base()
        let input = try #require(ir.values.firstIndex { $0.inputName == "data" })
        ir.ops[0].inputs[1] = input
        #expect(throws: EngineCoreError.self) { try ir.check(after: "weight", policy: CPUCapabilities.fusion) }
    }

    @Test func postOpsOnlyOnConvAndFC() throws {
        var ir = try base()
        ir.ops[1].postOps = [.eltwise(EltwiseSpec(algorithm: .tanh))]
        #expect { try ir.check(after: "postops", policy: CPUCapabilities.fusion) } throws: { "\($0)".contains("post-ops") }
    }
}

@Suite struct ReshapeIntoFCTests {
    /// pool -> Flatten -> FC: the FC reads the pooled tensor itself, in the pool's layout.
    @Test func flattenBeforeFullyConnectedGoes() throws {
        let conv = Symbol.convolution(.variable("data"), kernel: [3, 3], numFilter: 16, name: "conv0")
        let pooled = Symbol.pooling(conv, kernel: [2, 2], stride: [2, 2], name: "pool0")
        let c = try Case(.fullyConnected(.flatten(pooled, name: "flat0"), numHidden: 5, name: "fc0"), data: [2, 3, 10, 10])
        #expect(c.ir.kinds == ["convolution", "pooling(max)", "reshape", "inner_product"])
        let (after, n) = try c.after(ReshapeIntoFC())
        #expect(n == 1)
        let (cleaned, _) = try c.after(DeadOpElimination(), from: after)
        #expect(cleaned.kinds == ["convolution", "pooling(max)", "inner_product"])
        #expect(cleaned.ops[2].inputs[0] == cleaned.ops[1].output && cleaned.ops[2].fused == ["flat0"])
        try c.expectEngineMatchesFramework("flatten into fc")
        // Nothing is reordered inside the group, and the FC writes the output array itself.
        let plan = try c.bound.engine()
        #expect(plan.report.innerReorders == 0)
        #expect(plan.report.primitives.last?.kind == "inner_product")
    }

    /// A Reshape that is not a flatten, or a flatten read by another op too, stays.
    @Test func otherReshapesStay() throws {
        let x = Symbol.variable("data")
        let odd = try Case(.fullyConnected(.reshape(x, shape: [4, -1], name: "r0"), numHidden: 3, name: "fc0"), data: [2, 2, 3, 3])
        #expect(try odd.after(ReshapeIntoFC()).1 == 0)
        try odd.expectEngineMatchesFramework("reshape (4, -1) then fc")
        let flat = Symbol.flatten(x, name: "flat0")
        let shared = try Case(.group([flat, .fullyConnected(flat, numHidden: 3, name: "fc0")]), data: [2, 2, 3, 3])
        #expect(try shared.after(ReshapeIntoFC()).1 == 0)
        try shared.expectEngineMatchesFramework("flatten read twice")
    }
}

@Suite struct HardSwishFusionTests {
    /// MobileNet v3's activation as GluonCV exports it: x * (clip(x + 3, 0, 6) / 6).
    static func hardSwish(_ x: Symbol, scale: Double = 6) -> Symbol {
        x * (Symbol.clip(x + 3, min: 0, max: 6) / scale)
    }

    /// conv -> BN -> hard-swish becomes one convolution with a hard-swish post-op, and the plan
    /// computes what the framework computes op by op.
    @Test func hardSwishAfterConvolutionBecomesAPostOp() throws {
        let x = Symbol.variable("data")
        let bn = Symbol.batchNorm(.convolution(x, kernel: [3, 3], numFilter: 4, pad: [1, 1], name: "conv0"), fixGamma: false, name: "bn0")
        let c = try Case(Self.hardSwish(bn), data: [2, 3, 8, 8])
        #expect(c.ir.kinds == ["convolution", "batch_norm", "eltwise(linear)", "eltwise(clip)", "eltwise(linear)", "binary(multiply)"])
        let plan = try c.bound.engine()
        #expect(plan.ir.kinds == ["convolution"])
        #expect(plan.ir.ops.first?.postOps == [.eltwise(EltwiseSpec(algorithm: .hardSwish))])
        try c.expectEngineMatchesFramework("conv + hard-swish")
    }

    /// A chain that is not hard-sigmoid (divided by 5) stays a product, and still runs in the engine.
    @Test func anotherChainIsNotHardSwish() throws {
        let x = Symbol.variable("data")
        let conv = Symbol.convolution(x, kernel: [1, 1], numFilter: 4, name: "conv0")
        let c = try Case(Self.hardSwish(conv, scale: 5), data: [1, 3, 5, 5])
        let (after, n) = try c.after(HardSwishFusion())
        #expect(n == 0)
        #expect(after.kinds == c.ir.kinds)
        try c.expectEngineMatchesFramework("x * clip(x + 3, 0, 6) / 5")
    }

    /// The composition rule, on hand-worked chains.
    @Test(arguments: [
        ([EltwiseSpec(algorithm: .linear, alpha: 1, beta: 3), EltwiseSpec(algorithm: .clip, alpha: 0, beta: 6),
          EltwiseSpec(algorithm: .linear, alpha: 1 / 6, beta: 0)], true),
        // clip(x / 6 + 0.5, 0, 1): the same function
        ([EltwiseSpec(algorithm: .linear, alpha: 1 / 6, beta: 0.5), EltwiseSpec(algorithm: .clip, alpha: 0, beta: 1)], true),
        // (x + 3), then x / 6 split into * 2 and * (1 / 12)
        ([EltwiseSpec(algorithm: .linear, alpha: 1, beta: 3), EltwiseSpec(algorithm: .clip, alpha: 0, beta: 6),
          EltwiseSpec(algorithm: .linear, alpha: 2, beta: 0), EltwiseSpec(algorithm: .linear, alpha: 1 / 12, beta: 0)], true),
        // ReLU6 alone, hard-sigmoid of the wrong width, two clips, another function
        ([EltwiseSpec(algorithm: .clip, alpha: 0, beta: 6)], false),
        ([EltwiseSpec(algorithm: .linear, alpha: 1, beta: 2), EltwiseSpec(algorithm: .clip, alpha: 0, beta: 4),
          EltwiseSpec(algorithm: .linear, alpha: 0.25, beta: 0)], false),
        ([EltwiseSpec(algorithm: .linear, alpha: 1, beta: 3), EltwiseSpec(algorithm: .clip, alpha: 0, beta: 6),
          EltwiseSpec(algorithm: .clip, alpha: 0, beta: 6), EltwiseSpec(algorithm: .linear, alpha: 1 / 6, beta: 0)], false),
        ([EltwiseSpec(algorithm: .linear, alpha: 1, beta: 3), EltwiseSpec(algorithm: .logistic),
          EltwiseSpec(algorithm: .linear, alpha: 1 / 6, beta: 0)], false),
    ])
    func hardSigmoidIsRecognised(steps: [EltwiseSpec], expected: Bool) {
        #expect(HardSwishFusion.isHardSigmoid(steps) == expected)
    }
}

@Suite struct SqueezeExcitationTests {
    /// An SE block as GluonCV writes it: global pooling, two dense layers (relu, sigmoid), the gate
    /// expanded to (N, C, 1, 1) and broadcast-multiplied onto the features, then a residual add.
    /// The engine takes it whole: one plan, no framework node.
    @Test func squeezeExcitationRunsInTheEngine() throws {
        let x = Symbol.variable("data")
        let conv = Symbol.activation(.convolution(x, kernel: [3, 3], numFilter: 8, pad: [1, 1], name: "conv0"), kind: .relu, name: "relu0")
        let pooled = Symbol.pooling(conv, poolType: .avg, globalPool: true, name: "pool0")
        let squeeze = Symbol.activation(.fullyConnected(pooled, numHidden: 2, name: "fc0"), kind: .relu, name: "relu1")
        let gate = Symbol.activation(.fullyConnected(squeeze, numHidden: 8, name: "fc1"), kind: .sigmoid, name: "sig0")
        let expanded = Symbol.expandDims(.expandDims(gate, axis: 2, name: "e0"), axis: 3, name: "e1")
        let y = Symbol.broadcastMultiply(conv, expanded, name: "scale0") + conv
        let c = try Case(y, data: [2, 3, 6, 6])
        #expect(c.ir.kinds.contains("binary(multiply)"))
        try c.expectEngineMatchesFramework("SE block")
    }

    /// The gate first (`broadcast_mul(gate, x)`): the operands are swapped so the one that broadcasts
    /// comes second.
    @Test func theBroadcastOperandMayComeFirst() throws {
        let x = Symbol.variable("data")
        let conv = Symbol.convolution(x, kernel: [1, 1], numFilter: 4, name: "conv0")
        let gate = Symbol.activation(.pooling(conv, poolType: .avg, globalPool: true, name: "pool0"), kind: .sigmoid, name: "sig0")
        let c = try Case(Symbol.broadcastMultiply(gate, conv, name: "scale0"), data: [1, 3, 5, 5])
        let product = try #require(c.ir.ops.last)
        #expect(c.ir.values[product.inputs[1]].shape == [1, 4, 1, 1])
        try c.expectEngineMatchesFramework("gate * x")
    }
}

@Suite struct DeconvolutionEngineTests {
    /// simple_pose's upsampling: Deconvolution(4x4, stride 2, pad 1) -> BatchNorm -> relu. The
    /// BatchNorm does not fold (the weight's rows are input channels) but runs in the engine; a relu
    /// straight after a deconvolution is its post-op.
    @Test(arguments: [1, 2])
    func upsamplingRunsInTheEngine(groups: Int) throws {
        let x = Symbol.variable("data")
        let up = Symbol.deconvolution(x, kernel: [4, 4], numFilter: 4, stride: [2, 2], pad: [1, 1], numGroup: groups, noBias: false, name: "up0")
        let direct = try Case(Symbol.activation(up, kind: .relu, name: "relu0"), data: [2, 4, 5, 5])
        let plan = try direct.bound.engine()
        #expect(plan.ir.kinds == ["deconvolution"])
        #expect(plan.ir.ops.first?.postOps == [.eltwise(EltwiseSpec(algorithm: .relu))])
        try direct.expectEngineMatchesFramework("deconv + relu, \(groups) groups")
        let bn = Symbol.activation(.batchNorm(up, fixGamma: false, name: "bn0"), kind: .relu, name: "relu0")
        try Case(bn, data: [1, 4, 6, 6]).expectEngineMatchesFramework("deconv + BN + relu, \(groups) groups")
    }

    /// adj larger than pad would need negative padding after: refused with the attribute named.
    @Test func adjBeyondPadIsRefused() throws {
        let up = Symbol.deconvolution(.variable("data"), kernel: [3, 3], numFilter: 2, stride: [2, 2], adj: [1, 1], name: "up0")
        let graph = up.graph
        let shapes = try graph.inferShapes(["data": [1, 2, 4, 4]])
        let node = try #require(graph.nodes.firstIndex { $0.name == "up0" })
        let s = CPUEngine().support(SupportQuery(graph: graph, node: node, shapes: shapes, types: try graph.inferTypes([:]),
                                                 constants: ["up0_weight"]))
        #expect(s.reason?.description.contains("adj") == true, "\(s)")
    }
}
