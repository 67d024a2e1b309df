import KilnCore
import KilnGraph
import Testing

/// Shape and type rules of the neural-network ops, their schemas and their Symbol constructors.
@Suite struct NNOpsShapeTests {
    let data = Symbol.variable("data")

    // MARK: Convolution

    struct ConvCase: Sendable, CustomTestStringConvertible {
        var data: Shape, kernel: [Int], stride: [Int] = [], dilate: [Int] = [], pad: [Int] = []
        var numFilter: Int, numGroup = 1
        var weight: Shape, output: Shape
        var testDescription: String { "data \(data) kernel \(kernel) -> \(output)" }
    }

    static let convCases: [ConvCase] = [
        ConvCase(data: [2, 3, 7, 6], kernel: [3, 3], numFilter: 4, weight: [4, 3, 3, 3], output: [2, 4, 5, 4]),
        ConvCase(data: [2, 3, 7, 7], kernel: [3, 3], stride: [2, 2], pad: [1, 1], numFilter: 5, weight: [5, 3, 3, 3], output: [2, 5, 4, 4]),
        ConvCase(data: [1, 2, 9, 8], kernel: [3, 3], dilate: [2, 2], pad: [2, 2], numFilter: 3, weight: [3, 2, 3, 3], output: [1, 3, 9, 8]),
        ConvCase(data: [2, 4, 5, 5], kernel: [3, 3], pad: [1, 1], numFilter: 6, numGroup: 2, weight: [6, 2, 3, 3], output: [2, 6, 5, 5]),
        ConvCase(data: [2, 4, 7, 7], kernel: [3, 3], stride: [2, 2], pad: [1, 1], numFilter: 4, numGroup: 4, weight: [4, 1, 3, 3], output: [2, 4, 4, 4]),
        ConvCase(data: [2, 3, 10], kernel: [3], numFilter: 4, weight: [4, 3, 3], output: [2, 4, 8]),
        ConvCase(data: [2, 3, 16], kernel: [5], stride: [2], dilate: [2], pad: [2], numFilter: 3, weight: [3, 3, 5], output: [2, 3, 6]),
        ConvCase(data: [1, 2, 3, 4, 5], kernel: [1, 2, 3], numFilter: 2, weight: [2, 2, 1, 2, 3], output: [1, 2, 3, 3, 3]),
    ]

    @Test(arguments: convCases)
    func convolutionShapes(_ c: ConvCase) throws {
        let conv = Symbol.convolution(data, kernel: c.kernel, numFilter: c.numFilter, stride: c.stride, dilate: c.dilate,
                                      pad: c.pad, numGroup: c.numGroup, name: "conv")
        #expect(conv.listArguments() == ["data", "conv_weight", "conv_bias"])
        let s = try conv.inferShape(["data": c.data])
        #expect(s.byName["conv_weight"] == c.weight)
        #expect(s.byName["conv_bias"] == [c.numFilter])
        #expect(s.outputs == [c.output])
    }

    @Test func convolutionWithoutBiasHasTwoArguments() throws {
        let conv = Symbol.convolution(data, kernel: [1, 1], numFilter: 3, noBias: true, name: "c")
        #expect(conv.listArguments() == ["data", "c_weight"])
        #expect(try conv.inferShape(["data": [1, 2, 4, 4]]).outputs == [[1, 3, 4, 4]])
    }

    @Test func convolutionChannelLastShapesFollowMXNet() throws {
        let conv = Symbol.convolution(data, kernel: [3, 3], numFilter: 8, layout: .nhwc, name: "c")
        let s = try conv.inferShape(["data": [2, 10, 9, 3]])
        #expect(s.byName["c_weight"] == [8, 3, 3, 3])
        #expect(s.outputs == [[2, 8, 7, 8]])
    }

    @Test func wrongWeightShapeNamesNodeInputAndShapes() throws {
        let w = Symbol.variable("w")
        let conv = Symbol.convolution(data, weight: w, kernel: [3, 3], numFilter: 4, noBias: true, name: "conv1")
        let error = #expect(throws: GraphError.self) { try conv.inferShape(["data": [1, 3, 8, 8], "w": [4, 2, 3, 3]]) }
        #expect(error == .inputDoesNotFitWeight(node: "conv1", op: "Convolution", input: "data", shape: [1, 3, 8, 8],
                                                weight: "weight", weightShape: [4, 2, 3, 3], expected: "(4, 3, 3, 3)"))
        let text = error.map { "\($0)" } ?? ""
        #expect(text == "Node 'conv1' (Convolution): its input 'data' of shape (1, 3, 8, 8) and its weight of shape (4, 2, 3, 3) do not fit together; for this input the weight would need shape (4, 3, 3, 3).")
    }

    @Test func wrongBiasShapeIsReported() throws {
        let conv = Symbol.convolution(data, bias: .variable("b"), kernel: [3, 3], numFilter: 4, name: "conv1")
        let error = #expect(throws: GraphError.self) { try conv.inferShape(["data": [1, 3, 8, 8], "b": [5]]) }
        #expect(error == .inputDoesNotFitWeight(node: "conv1", op: "Convolution", input: "data", shape: [1, 3, 8, 8],
                                                weight: "bias", weightShape: [5], expected: "(4,)"))
    }

    @Test func kernelLargerThanPaddedInputIsAnError() throws {
        let conv = Symbol.convolution(data, kernel: [5, 5], numFilter: 2, pad: [1, 1], name: "big")
        let error = #expect(throws: GraphError.self) { try conv.inferShape(["data": [1, 1, 2, 2]]) }
        #expect(error == .invalidShape(node: "big", op: "Convolution", reason: "kernel (5, 5) is larger than the padded input (4, 4)"))
        let dilated = Symbol.convolution(data, kernel: [3, 3], numFilter: 2, dilate: [3, 3], name: "dil")
        let e2 = #expect(throws: GraphError.self) { try dilated.inferShape(["data": [1, 1, 6, 6]]) }
        #expect("\(e2!)".contains("spanning (7, 7)"))
    }

    @Test func numFilterNotDivisibleByNumGroupIsAnError() throws {
        let conv = Symbol.convolution(data, kernel: [3, 3], numFilter: 5, numGroup: 2, name: "g")
        let error = #expect(throws: GraphError.self) { try conv.inferShape(["data": [1, 4, 8, 8]]) }
        #expect(error == .invalidShape(node: "g", op: "Convolution", reason: "num_filter 5 is not divisible by num_group 2"))
        let channels = Symbol.convolution(data, kernel: [3, 3], numFilter: 4, numGroup: 2, name: "g2")
        let e2 = #expect(throws: GraphError.self) { try channels.inferShape(["data": [1, 3, 8, 8]]) }
        #expect(e2 == .invalidShape(node: "g2", op: "Convolution", reason: "the data's 3 channels are not divisible by num_group 2"))
    }

    @Test func dataRankMustMatchKernel() throws {
        let conv = Symbol.convolution(data, kernel: [3, 3], numFilter: 2, name: "c")
        let error = #expect(throws: GraphError.self) { try conv.inferShape(["data": [1, 3, 8]]) }
        guard case let .shapeMismatch(node, _, input, expected, actual) = error else { Issue.record("\(String(describing: error))"); return }
        #expect(node == "c" && input == "data" && actual == [1, 3, 8])
        #expect(expected.contains("rank 4"))
    }

    @Test func tupleLengthsAreChecked() throws {
        let conv = Symbol.convolution(data, kernel: [3, 3], numFilter: 2, stride: [2], name: "c")
        let error = #expect(throws: GraphError.self) { try conv.inferShape(["data": [1, 3, 8, 8]]) }
        guard case let .invalidAttribute(node, _, attribute, value, _) = error else { Issue.record("\(String(describing: error))"); return }
        #expect(node == "c" && attribute == "stride" && value == "(2,)")
    }

    @Test func convolutionSchemaHasMXNetDefaults() throws {
        let d = try #require(OpRegistry.shared.lookup("Convolution"))
        let a = try d.resolve(["kernel": "(3, 3)", "num_filter": "8"], node: "c")
        #expect(a["stride"] == "()" && a["dilate"] == "()" && a["pad"] == "()")
        #expect(a["num_group"] == "1" && a["workspace"] == "1024" && a["no_bias"] == "False")
        #expect(a["cudnn_tune"] == "None" && a["cudnn_off"] == "False" && a["layout"] == "None")
        #expect(d.fusion == .complex)
        // GPU-only attributes are accepted.
        let gpu = try d.resolve(["kernel": "(3, 3)", "num_filter": "8", "cudnn_tune": "fastest", "workspace": "2048", "cudnn_off": "True"], node: "c")
        #expect(gpu["cudnn_tune"] == "fastest")
        #expect(throws: GraphError.self) { try d.resolve(["num_filter": "8"], node: "c") }
        #expect(throws: GraphError.self) { try d.resolve(["kernel": "(3, 3)", "num_filter": "8", "cudnn_tune": "slow"], node: "c") }
    }

    // MARK: Deconvolution

    struct DeconvCase: Sendable, CustomTestStringConvertible {
        var data: Shape, kernel: [Int], stride: [Int] = [], pad: [Int] = [], adj: [Int] = [], targetShape: [Int] = []
        var numFilter: Int, numGroup = 1, weight: Shape, output: Shape
        var testDescription: String { "data \(data) kernel \(kernel) -> \(output)" }
    }

    static let deconvCases: [DeconvCase] = [
        DeconvCase(data: [2, 2, 3, 3], kernel: [2, 2], stride: [2, 2], numFilter: 3, weight: [2, 3, 2, 2], output: [2, 3, 6, 6]),
        DeconvCase(data: [1, 3, 4, 5], kernel: [3, 3], stride: [2, 2], pad: [1, 1], adj: [1, 1], numFilter: 2, weight: [3, 2, 3, 3], output: [1, 2, 8, 10]),
        DeconvCase(data: [1, 4, 3, 3], kernel: [3, 3], stride: [2, 2], numFilter: 4, numGroup: 2, weight: [4, 2, 3, 3], output: [1, 4, 7, 7]),
        DeconvCase(data: [2, 3, 5], kernel: [3], stride: [2], pad: [1], adj: [1], numFilter: 2, weight: [3, 2, 3], output: [2, 2, 10]),
        // target_shape decides pad and adj: full size 2*(4-1)+3 = 9, target 8 -> pad 1, adj 1.
        DeconvCase(data: [1, 1, 4, 4], kernel: [3, 3], stride: [2, 2], targetShape: [8, 8], numFilter: 1, weight: [1, 1, 3, 3], output: [1, 1, 8, 8]),
        DeconvCase(data: [1, 1, 4, 4], kernel: [3, 3], stride: [2, 2], targetShape: [7, 9], numFilter: 1, weight: [1, 1, 3, 3], output: [1, 1, 7, 9]),
    ]

    @Test(arguments: deconvCases)
    func deconvolutionShapes(_ c: DeconvCase) throws {
        let d = Symbol.deconvolution(data, kernel: c.kernel, numFilter: c.numFilter, stride: c.stride, pad: c.pad,
                                     adj: c.adj, targetShape: c.targetShape, numGroup: c.numGroup, noBias: false, name: "d")
        let s = try d.inferShape(["data": c.data])
        #expect(s.byName["d_weight"] == c.weight)
        #expect(s.byName["d_bias"] == [c.numFilter])
        #expect(s.outputs == [c.output])
    }

    @Test func deconvolutionHasNoBiasByDefault() throws {
        let d = Symbol.deconvolution(data, kernel: [3, 3], numFilter: 2, name: "d")
        #expect(d.listArguments() == ["data", "d_weight"])
        let def = try #require(OpRegistry.shared.lookup("Deconvolution"))
        let a = try def.resolve(["kernel": "(3, 3)", "num_filter": "2"], node: "d")
        #expect(a["no_bias"] == "True" && a["workspace"] == "512" && a["adj"] == "()" && a["target_shape"] == "()")
    }

    @Test func deconvolutionAdjMustBeBelowStride() throws {
        let d = Symbol.deconvolution(data, kernel: [3, 3], numFilter: 2, stride: [2, 2], adj: [2, 2], name: "d")
        let error = #expect(throws: GraphError.self) { try d.inferShape(["data": [1, 1, 4, 4]]) }
        #expect("\(error!)".contains("adj (2, 2) must be smaller than stride (2, 2)"))
    }

    // MARK: FullyConnected

    @Test(arguments: [
        (Shape([3, 7]), true, Shape([5, 7]), Shape([3, 5])),
        (Shape([2, 3, 2, 2]), true, Shape([5, 12]), Shape([2, 5])),
        (Shape([2, 3, 5]), false, Shape([5, 5]), Shape([2, 3, 5])),
        (Shape([4, 2, 6]), false, Shape([5, 6]), Shape([4, 2, 5])),
    ])
    func fullyConnectedShapes(_ dataShape: Shape, _ flatten: Bool, _ weight: Shape, _ output: Shape) throws {
        let fc = Symbol.fullyConnected(data, numHidden: 5, flatten: flatten, name: "fc")
        let s = try fc.inferShape(["data": dataShape])
        #expect(s.byName["fc_weight"] == weight)
        #expect(s.byName["fc_bias"] == [5])
        #expect(s.outputs == [output])
    }

    @Test func fullyConnectedWrongWeightIsReported() throws {
        let fc = Symbol.fullyConnected(data, weight: .variable("w"), numHidden: 5, noBias: true, name: "fc1")
        #expect(fc.listArguments() == ["data", "w"])
        let error = #expect(throws: GraphError.self) { try fc.inferShape(["data": [2, 8], "w": [5, 7]]) }
        #expect(error == .inputDoesNotFitWeight(node: "fc1", op: "FullyConnected", input: "data", shape: [2, 8],
                                                weight: "weight", weightShape: [5, 7], expected: "(5, 8)"))
    }

    // MARK: BatchNorm

    @Test(arguments: [(Shape([2, 3, 4, 4]), 1, 3), (Shape([5, 3]), 1, 3), (Shape([2, 3, 3, 4]), -1, 4), (Shape([2, 2, 3, 5]), 3, 5), (Shape([2, 3, 6]), 1, 3)])
    func batchNormShapes(_ dataShape: Shape, _ axis: Int, _ channels: Int) throws {
        let bn = Symbol.batchNorm(data, axis: axis, name: "bn")
        #expect(bn.listArguments() == ["data", "bn_gamma", "bn_beta"])
        #expect(bn.listAuxiliaryStates() == ["bn_moving_mean", "bn_moving_var"])
        #expect(bn.outputs.count == 1)
        let s = try bn.inferShape(["data": dataShape])
        for name in ["bn_gamma", "bn_beta", "bn_moving_mean", "bn_moving_var"] { #expect(s.byName[name] == [channels]) }
        #expect(s.auxiliaryStates == [[channels], [channels]])
        #expect(s.outputs == [dataShape])
    }

    /// simple_bind types untyped arguments float32: a BatchNorm first in a graph, bound with its
    /// statistics' types known and the data's not (as a Gluon v2 ResNet is), still infers.
    @Test func batchNormDataDefaultsToFloat32WhenOnlyItsStatisticsAreTyped() throws {
        let bn = Symbol.batchNorm(data, name: "bn")
        let given: [String: DType] = ["bn_gamma": .float32, "bn_beta": .float32, "bn_moving_mean": .float32, "bn_moving_var": .float32]
        let types = try bn.graph.inferTypes(given)
        #expect(types.outputs == [.float32])
        #expect(throws: GraphError.self) { try bn.graph.inferTypes(["data": .float16, "bn_gamma": .float16]) }
    }

    @Test func batchNormOutputMeanVarShowsThreeOutputs() throws {
        let bn = Symbol.batchNorm(data, outputMeanVar: true, name: "bn")
        #expect(bn.listOutputs() == ["bn_output", "bn_mean", "bn_var"])
        #expect(try bn.inferShape(["data": [2, 3, 4]]).outputs == [[2, 3, 4], [3], [3]])
    }

    @Test func batchNormSchemaAndErrors() throws {
        let def = try #require(OpRegistry.shared.lookup("BatchNorm"))
        let a = try def.resolve([:], node: "bn")
        #expect(a["eps"] == "0.001" && a["momentum"] == "0.9" && a["fix_gamma"] == "True")
        #expect(a["use_global_stats"] == "False" && a["output_mean_var"] == "False" && a["axis"] == "1")
        #expect(a["min_calib_range"] == "None" && a["max_calib_range"] == "None" && a["cudnn_off"] == "False")
        #expect(def.fusion == .broadcast)
        let bn = Symbol.batchNorm(data, axis: 4, name: "bn")
        let error = #expect(throws: GraphError.self) { try bn.inferShape(["data": [2, 3, 4, 4]]) }
        #expect("\(error!)".contains("axis 4 is out of range"))
        let wrong = Symbol.batchNorm(data, gamma: .variable("g"), name: "bn2")
        let e2 = #expect(throws: GraphError.self) { try wrong.inferShape(["data": [2, 3, 4, 4], "g": [4]]) }
        #expect(e2 == .inputDoesNotFitWeight(node: "bn2", op: "BatchNorm", input: "data", shape: [2, 3, 4, 4],
                                             weight: "gamma", weightShape: [4], expected: "(3,)"))
    }

    @Test func batchNormKeepsFloat32StatisticsForHalfData() throws {
        let bn = Symbol.batchNorm(data, name: "bn")
        let t = try bn.inferType(["data": .float16])
        #expect(t.byName["bn_gamma"] == .float32 && t.byName["bn_moving_var"] == .float32)
        #expect(t.outputs == [.float16])
    }

    // MARK: Pooling

    struct PoolCase: Sendable, CustomTestStringConvertible {
        var data: Shape, kernel: [Int], stride: [Int] = [], pad: [Int] = []
        var convention: Symbol.PoolingConvention = .valid, global = false, output: Shape
        var testDescription: String { "data \(data) kernel \(kernel) \(convention) -> \(output)" }
    }

    static let poolCases: [PoolCase] = [
        PoolCase(data: [2, 3, 6, 6], kernel: [2, 2], stride: [2, 2], output: [2, 3, 3, 3]),
        PoolCase(data: [1, 2, 7, 7], kernel: [3, 3], stride: [2, 2], pad: [1, 1], output: [1, 2, 4, 4]),
        PoolCase(data: [1, 2, 8, 8], kernel: [3, 3], stride: [2, 2], convention: .full, output: [1, 2, 4, 4]),
        PoolCase(data: [1, 2, 7, 5], kernel: [2, 2], stride: [2, 2], output: [1, 2, 3, 2]),
        PoolCase(data: [1, 2, 7, 5], kernel: [2, 2], stride: [2, 2], convention: .full, output: [1, 2, 4, 3]),
        PoolCase(data: [2, 3, 4, 5], kernel: [], global: true, output: [2, 3, 1, 1]),
        PoolCase(data: [2, 3, 9], kernel: [3], stride: [2], output: [2, 3, 4]),
        PoolCase(data: [2, 3, 9], kernel: [2], stride: [2], pad: [1], output: [2, 3, 5]),
        PoolCase(data: [2, 3, 9], kernel: [3], stride: [2], convention: .same, output: [2, 3, 5]),
        PoolCase(data: [1, 1, 4, 4, 4], kernel: [2, 2, 2], stride: [2, 2, 2], output: [1, 1, 2, 2, 2]),
        PoolCase(data: [2, 3, 7], kernel: [1], global: true, output: [2, 3, 1]),
    ]

    @Test(arguments: poolCases)
    func poolingShapes(_ c: PoolCase) throws {
        let p = Symbol.pooling(data, kernel: c.kernel, globalPool: c.global, convention: c.convention, stride: c.stride, pad: c.pad, name: "p")
        #expect(p.listArguments() == ["data"])
        #expect(try p.inferShape(["data": c.data]).outputs == [c.output])
    }

    @Test func maxPoolingHasMXNetsHiddenWorkspaceOutput() throws {
        let max = Symbol.pooling(data, kernel: [2, 2], stride: [2, 2], name: "p")
        #expect(max.outputs.count == 1)
        #expect(max.listOutputs() == ["p_output"])
        #expect(try max.graph.outputCount(of: 1) == 2)
        let s = try max.inferShape(["data": [1, 2, 4, 4]])
        #expect(s.nodeOutputs[1] == [[1, 2, 2, 2], [1, 2, 2, 2]])
        #expect(try max.inferType().nodeOutputs[1] == [.float32, .int32])
        // Average and sum pooling, and a global max pool without a kernel, have none (as in MXNet's files).
        let avg = Symbol.pooling(data, kernel: [2, 2], poolType: .avg, name: "a")
        let global = Symbol.pooling(data, globalPool: true, name: "g")
        #expect(try avg.graph.outputCount(of: 1) == 1)
        #expect(try global.graph.outputCount(of: 1) == 1)
    }

    @Test func poolingKernelLargerThanPaddedInputIsAnError() throws {
        let p = Symbol.pooling(data, kernel: [5, 5], name: "pool1")
        let error = #expect(throws: GraphError.self) { try p.inferShape(["data": [1, 1, 4, 6]]) }
        #expect(error == .invalidShape(node: "pool1", op: "Pooling", reason: "kernel (5, 5) is larger than the padded input (4, 6)"))
    }

    @Test func poolingNeedsAKernelUnlessGlobal() throws {
        let p = Symbol.pooling(data, name: "pool1")
        let error = #expect(throws: GraphError.self) { try p.inferShape(["data": [1, 1, 4, 6]]) }
        guard case let .invalidAttribute(node, _, attribute, _, _) = error else { Issue.record("\(String(describing: error))"); return }
        #expect(node == "pool1" && attribute == "kernel")
    }

    @Test func poolingSchemaHasMXNetDefaults() throws {
        let def = try #require(OpRegistry.shared.lookup("Pooling"))
        let a = try def.resolve([:], node: "p")
        #expect(a["kernel"] == "()" && a["pool_type"] == "max" && a["global_pool"] == "False")
        #expect(a["pooling_convention"] == "valid" && a["stride"] == "()" && a["pad"] == "()")
        #expect(a["p_value"] == "None" && a["count_include_pad"] == "None" && a["layout"] == "None" && a["cudnn_off"] == "False")
        #expect(try PoolingParameters(def.resolve(["global_pool": "True"], node: "p")).countIncludePad)
        #expect(try !PoolingParameters(def.resolve(["kernel": "(2, 2)", "count_include_pad": "False"], node: "p")).countIncludePad)
        #expect(throws: GraphError.self) { try def.resolve(["pool_type": "median"], node: "p") }
        let lp = Symbol.pooling(data, kernel: [2, 2], poolType: .lp, name: "lp")
        #expect(throws: GraphError.self) { try lp.inferShape(["data": [1, 1, 4, 4]]) }
    }

    // MARK: Constructors write MXNet's attributes

    @Test func constructorsWriteOnlyGivenAttributes() throws {
        let conv = Symbol.convolution(data, kernel: [3, 3], numFilter: 8, pad: [1, 1], name: "c")
        #expect(conv.outputs[0].node.attributes.values == ["kernel": "(3, 3)", "num_filter": "8", "pad": "(1, 1)"])
        let bn = Symbol.batchNorm(data, eps: 1e-5, fixGamma: false, name: "bn")
        #expect(bn.outputs[0].node.attributes.values == ["eps": "1e-05", "fix_gamma": "False"])
        let pool = Symbol.pooling(data, kernel: [2, 2], poolType: .avg, stride: [2, 2], countIncludePad: false, name: "p")
        #expect(pool.outputs[0].node.attributes.values == ["kernel": "(2, 2)", "pool_type": "avg", "stride": "(2, 2)", "count_include_pad": "False"])
        let deconv = Symbol.deconvolution(data, kernel: [2, 2], numFilter: 3, noBias: false, name: "d")
        #expect(deconv.outputs[0].node.attributes.values == ["kernel": "(2, 2)", "num_filter": "3", "no_bias": "False"])
        let fc = Symbol.fullyConnected(data, numHidden: 10, flatten: false, name: "fc")
        #expect(fc.outputs[0].node.attributes.values == ["num_hidden": "10", "flatten": "False"])
    }

    @Test func weightInputsAreDeclared() throws {
        let r = OpRegistry.shared
        #expect(try #require(r.lookup("Convolution")).weightInputs(["no_bias": "False"]) == [1, 2])
        #expect(try #require(r.lookup("Convolution")).weightInputs(["no_bias": "True"]) == [1])
        #expect(try #require(r.lookup("Deconvolution")).weightInputs(["no_bias": "True"]) == [1])
        #expect(try #require(r.lookup("FullyConnected")).weightInputs(["no_bias": "False"]) == [1, 2])
        #expect(try #require(r.lookup("BatchNorm")).weightInputs([:]) == [1, 2, 3, 4])
        #expect(try #require(r.lookup("Pooling")).weightInputs([:]) == [])
    }
}
