import KilnCore
import KilnGraph
@testable import KilnRuntime
import TestSupport
import Testing

/// The neural-network ops' kernels: reference loops against hand-worked examples, reference and
/// framework kernels against MXNet 1.9.1's golden outputs, and the two backends against each other.
@Suite struct NNOpsTests {
    /// The backends every kernel test runs on.
    enum BackendChoice: String, CaseIterable, Sendable {
        case reference, framework
        var backend: OpByOpBackend { self == .reference ? .reference : .framework }
    }

    static let backends = BackendChoice.allCases

    // MARK: Hand-worked examples (both backends)

    /// x = 1...16 as a 4x4 image.
    static let ramp4x4 = NDArray(shape: [1, 1, 4, 4], values: (1...16).map(Float.init))
    /// An asymmetric 3x3 kernel: [[1, 2, 0], [0, 1, 0], [0, 0, -1]].
    static let kernel3x3 = NDArray(shape: [1, 1, 3, 3], values: [1, 2, 0, 0, 1, 0, 0, 0, -1])

    @Test(arguments: backends)
    func convolution3x3WorkedByHand(_ backend: BackendChoice) throws {
        // Output (y, x) = x[y][x] + 2 x[y][x+1] + x[y+1][x+1] - x[y+2][x+2] + 0.5 (the bias), e.g.
        // (0, 0): 1 + 4 + 6 - 11 + 0.5 = 0.5.
        let conv = Symbol.convolution(.variable("data"), kernel: [3, 3], numFilter: 1, name: "c")
        let out = try run(conv, ["data": Self.ramp4x4, "c_weight": Self.kernel3x3, "c_bias": NDArray(shape: [1], values: [0.5])], backend)
        #expect(out[0].shape == [1, 1, 2, 2])
        #expect(out[0].floats() == [0.5, 3.5, 12.5, 15.5])
    }

    @Test(arguments: backends)
    func convolutionWithPadAndStrideWorkedByHand(_ backend: BackendChoice) throws {
        // Windows start at (2y - 1, 2x - 1); padding reads zeros. (1, 0): 2*5 + 9 - 14 + 0.5 = 5.5.
        let conv = Symbol.convolution(.variable("data"), kernel: [3, 3], numFilter: 1, stride: [2, 2], pad: [1, 1], name: "c")
        let out = try run(conv, ["data": Self.ramp4x4, "c_weight": Self.kernel3x3, "c_bias": NDArray(shape: [1], values: [0.5])], backend)
        #expect(out[0].floats() == [-4.5, -4.5, 5.5, 15.5])
    }

    @Test(arguments: backends)
    func groupedConvolutionIsOneConvolutionPerGroup(_ backend: BackendChoice) throws {
        // Two groups of one channel: each output channel sees only its own input channel.
        let data = NDArray(shape: [1, 2, 2, 2], values: [1, 2, 3, 4, 10, 20, 30, 40])
        let weight = NDArray(shape: [2, 1, 1, 1], values: [2, -1])
        let conv = Symbol.convolution(.variable("data"), kernel: [1, 1], numFilter: 2, numGroup: 2, noBias: true, name: "c")
        let out = try run(conv, ["data": data, "c_weight": weight], backend)
        #expect(out[0].floats() == [2, 4, 6, 8, -10, -20, -30, -40])
    }

    @Test(arguments: backends)
    func convolution1DWorkedByHand(_ backend: BackendChoice) throws {
        // [1, 2, 3, 4, 5] * [1, 0, -1] with dilation 2: x[i] - x[i+4] -> one output, 1 - 5 = -4.
        let conv = Symbol.convolution(.variable("data"), kernel: [3], numFilter: 1, dilate: [2], noBias: true, name: "c")
        let out = try run(conv, ["data": NDArray(shape: [1, 1, 5], values: [1, 2, 3, 4, 5]),
                                 "c_weight": NDArray(shape: [1, 1, 3], values: [1, 0, -1])], backend)
        #expect(out[0].shape == [1, 1, 1])
        #expect(out[0].floats() == [-4])
    }

    @Test(arguments: backends)
    func deconvolutionWorkedByHand(_ backend: BackendChoice) throws {
        let data = NDArray(shape: [1, 1, 2, 2], values: [1, 2, 3, 4])
        let weight = NDArray(shape: [1, 1, 2, 2], values: [1, 10, 100, 1000])
        // Stride 2: each input scatters its own scaled copy of the kernel.
        let s2 = Symbol.deconvolution(.variable("data"), kernel: [2, 2], numFilter: 1, stride: [2, 2], name: "d")
        let a = try run(s2, ["data": data, "d_weight": weight], backend)
        #expect(a[0].floats() == [1, 10, 2, 20, 100, 1000, 200, 2000, 3, 30, 4, 40, 300, 3000, 400, 4000])
        // Stride 1: the copies overlap and add; the centre is 1*1000 + 2*100 + 3*10 + 4*1.
        let s1 = Symbol.deconvolution(.variable("data"), kernel: [2, 2], numFilter: 1, name: "d")
        let b = try run(s1, ["data": data, "d_weight": weight], backend)
        #expect(b[0].floats() == [1, 12, 20, 103, 1234, 2040, 300, 3400, 4000])
        // adj adds a row and column no input reaches: they hold the bias alone.
        let adj = Symbol.deconvolution(.variable("data"), kernel: [2, 2], numFilter: 1, stride: [2, 2], adj: [1, 1], noBias: false, name: "d")
        let c = try run(adj, ["data": data, "d_weight": weight, "d_bias": NDArray(shape: [1], values: [0.5])], backend)
        #expect(c[0].shape == [1, 1, 5, 5])
        let v = c[0].floats()
        #expect(Array(v[0..<5]) == [1.5, 10.5, 2.5, 20.5, 0.5])
        #expect(Array(v[20..<25]) == [0.5, 0.5, 0.5, 0.5, 0.5])
    }

    @Test(arguments: backends)
    func fullyConnectedWorkedByHand(_ backend: BackendChoice) throws {
        let fc = Symbol.fullyConnected(.variable("data"), numHidden: 2, name: "fc")
        let out = try run(fc, ["data": NDArray(shape: [2, 3], values: [1, 2, 3, 4, 5, 6]),
                               "fc_weight": NDArray(shape: [2, 3], values: [1, 0, -1, 0.5, 0.5, 0.5]),
                               "fc_bias": NDArray(shape: [2], values: [1, -1])], backend)
        #expect(out[0].floats() == [-1, 2, -1, 6.5])
    }

    @Test(arguments: backends)
    func maxPoolingFullConventionWorkedByHand(_ backend: BackendChoice) throws {
        // x = 1...25 as 5x5; 2x2 windows, stride 2. `full` keeps the last, partial row and column of
        // windows, so each window's maximum is its bottom-right real element.
        let x = NDArray(shape: [1, 1, 5, 5], values: (1...25).map(Float.init))
        let full = Symbol.pooling(.variable("data"), kernel: [2, 2], convention: .full, stride: [2, 2], name: "p")
        let a = try run(full, ["data": x], backend)
        #expect(a[0].shape == [1, 1, 3, 3])
        #expect(a[0].floats() == [7, 9, 10, 17, 19, 20, 22, 24, 25])
        let valid = Symbol.pooling(.variable("data"), kernel: [2, 2], stride: [2, 2], name: "p")
        #expect(try run(valid, ["data": x], backend)[0].floats() == [7, 9, 17, 19])
    }

    @Test(arguments: backends)
    func averagePoolingFullConventionWorkedByHand(_ backend: BackendChoice) throws {
        // MXNet cuts a window at the padded input's end, so the partial windows divide by their
        // real area: (5 + 10) / 2 = 7.5 at (0, 2), 25 / 1 at (2, 2).
        let x = NDArray(shape: [1, 1, 5, 5], values: (1...25).map(Float.init))
        let p = Symbol.pooling(.variable("data"), kernel: [2, 2], poolType: .avg, convention: .full, stride: [2, 2], name: "p")
        #expect(try run(p, ["data": x], backend)[0].floats() == [4, 6, 7.5, 14, 16, 17.5, 21.5, 23.5, 25])
        let sum = Symbol.pooling(.variable("data"), kernel: [2, 2], poolType: .sum, convention: .full, stride: [2, 2], name: "p")
        #expect(try run(sum, ["data": x], backend)[0].floats() == [16, 24, 15, 56, 64, 35, 43, 47, 25])
    }

    @Test(arguments: backends)
    func averagePoolingPaddingCountWorkedByHand(_ backend: BackendChoice) throws {
        // 3x3 windows over x = 1...9 padded by 1. The corner window holds 1+2+4+5 = 12: 12/9 with
        // padding counted, 12/4 without; the top edge holds 21: 21/9 or 21/6; the centre 45/9 both ways.
        let x = NDArray(shape: [1, 1, 3, 3], values: (1...9).map(Float.init))
        let include = Symbol.pooling(.variable("data"), kernel: [3, 3], poolType: .avg, pad: [1, 1], name: "p")
        let a = try run(include, ["data": x], backend)[0].floats()
        #expect(abs(a[0] - 12.0 / 9) < 1e-6 && abs(a[1] - 21.0 / 9) < 1e-6 && abs(a[4] - 5) < 1e-6)
        let exclude = Symbol.pooling(.variable("data"), kernel: [3, 3], poolType: .avg, pad: [1, 1], countIncludePad: false, name: "p")
        let b = try run(exclude, ["data": x], backend)[0].floats()
        #expect(abs(b[0] - 3) < 1e-6 && abs(b[1] - 3.5) < 1e-6 && abs(b[4] - 5) < 1e-6)
    }

    @Test(arguments: backends)
    func globalPoolingWorkedByHand(_ backend: BackendChoice) throws {
        let x = NDArray(shape: [1, 2, 2, 2], values: [1, 2, 3, 6, -1, -2, -3, -4])
        let data = Symbol.variable("data")
        #expect(try run(.pooling(data, globalPool: true, name: "p"), ["data": x], backend)[0].floats() == [6, -1])
        #expect(try run(.pooling(data, poolType: .avg, globalPool: true, name: "p"), ["data": x], backend)[0].floats() == [3, -2.5])
        #expect(try run(.pooling(data, poolType: .sum, globalPool: true, name: "p"), ["data": x], backend)[0].floats() == [12, -10])
    }

    /// data (2 samples, 2 channels) = [[1, 2], [3, 4]]; gamma [2, 0.5], beta [0.1, -1],
    /// moving mean [2, 3], moving variance [4, 0.25], eps 0.
    static func batchNormInputs() -> [String: NDArray] {
        ["data": NDArray(shape: [2, 2], values: [1, 2, 3, 4]),
         "bn_gamma": NDArray(shape: [2], values: [2, 0.5]), "bn_beta": NDArray(shape: [2], values: [0.1, -1]),
         "bn_moving_mean": NDArray(shape: [2], values: [2, 3]), "bn_moving_var": NDArray(shape: [2], values: [4, 0.25])]
    }

    @Test(arguments: backends)
    func batchNormInferenceWorkedByHand(_ backend: BackendChoice) throws {
        // Channel 0: (x - 2) / 2 * 2 + 0.1; channel 1: (x - 3) / 0.5 * 0.5 - 1.
        let bn = Symbol.batchNorm(.variable("data"), eps: 0, fixGamma: false, name: "bn")
        let out = try run(bn, Self.batchNormInputs(), backend)
        try expectClose(out[0], [-0.9, -2, 1.1, 0])
        // fix_gamma reads gamma as 1: channel 0 (x - 2) / 2 + 0.1, channel 1 (x - 3) / 0.5 - 1.
        let fixed = Symbol.batchNorm(.variable("data"), eps: 0, name: "bn")
        try expectClose(try run(fixed, Self.batchNormInputs(), backend)[0], [-0.4, -3, 0.6, 1])
    }

    @Test(arguments: backends)
    func batchNormTrainingUsesBatchStatistics(_ backend: BackendChoice) throws {
        // Batch means [2, 3] and (biased) variances [1, 1]: normalized values are -1 and 1 in both
        // channels; then channel 0 * 2 + 0.1 and channel 1 * 0.5 - 1.
        let bn = Symbol.batchNorm(.variable("data"), eps: 0, fixGamma: false, outputMeanVar: true, name: "bn")
        let out = try run(bn, Self.batchNormInputs(), backend, isTrain: true)
        try expectClose(out[0], [-1.9, -1.5, 2.1, -0.5])
        try expectClose(out[1], [2, 3])
        try expectClose(out[2], [1, 1])
        // use_global_stats keeps the moving statistics even in training.
        let global = Symbol.batchNorm(.variable("data"), eps: 0, fixGamma: false, useGlobalStats: true, outputMeanVar: true, name: "bn")
        let g = try run(global, Self.batchNormInputs(), backend, isTrain: true)
        try expectClose(g[0], [-0.9, -2, 1.1, 0])
        try expectClose(g[2], [0.5, 2])
    }

    @Test(arguments: backends)
    func batchNormAlongLastAxis(_ backend: BackendChoice) throws {
        // axis -1 on (1, 2, 2): channels are the last axis, so [[1, 2], [3, 4]] normalizes per column.
        let bn = Symbol.batchNorm(.variable("data"), eps: 0, fixGamma: false, axis: -1, name: "bn")
        var inputs = Self.batchNormInputs()
        inputs["data"] = NDArray(shape: [1, 2, 2], values: [1, 2, 3, 4])
        try expectClose(try run(bn, inputs, backend)[0], [-0.9, -2, 1.1, 0])
    }

    // MARK: Golden files from MXNet 1.9.1

    static let goldenCases = Golden.caseNames(ops: ["Convolution", "Deconvolution", "FullyConnected", "BatchNorm", "Pooling"])

    @Test func goldenCasesCoverEveryNNOp() {
        let counts = Dictionary(grouping: Self.goldenCases, by: { $0.split(separator: "_")[0] }).mapValues(\.count)
        #expect(counts == ["Convolution": 11, "Deconvolution": 6, "FullyConnected": 5, "BatchNorm": 7, "Pooling": 16])
    }

    @Test(arguments: goldenCases, backends)
    func matchesMXNet(_ name: String, _ backend: BackendChoice) throws {
        let golden = try Golden.opCase(name)
        let outputs = try run(golden.symbol, golden.arguments.merging(golden.auxiliaryStates) { a, _ in a }, backend)
        #expect(outputs.count == golden.outputs.count)
        for (got, want) in zip(outputs, golden.outputs) {
            #expect(got.shape == want.shape)
            let tolerance = 1e-4 * max(1, want.maxAbs())
            let diff = try got.maxAbsDifference(want)
            #expect(diff <= tolerance, "\(name) on \(backend): max abs difference \(diff)")
        }
    }

    // MARK: Framework against reference on larger, random cases

    static let randomCases: [(String, Symbol, [String: Shape])] = {
        let d = Symbol.variable("data")
        return [
            ("conv 3x3 pad 1", .convolution(d, kernel: [3, 3], numFilter: 16, pad: [1, 1], name: "op"), ["data": [2, 8, 13, 11]]),
            ("conv 5x5 stride 2 dilate 2", .convolution(d, kernel: [5, 5], numFilter: 6, stride: [2, 2], dilate: [2, 2], pad: [3, 1], name: "op"), ["data": [2, 5, 17, 15]]),
            ("conv grouped", .convolution(d, kernel: [3, 3], numFilter: 12, numGroup: 3, name: "op"), ["data": [1, 6, 9, 9]]),
            ("conv depthwise", .convolution(d, kernel: [3, 3], numFilter: 8, pad: [1, 1], numGroup: 8, noBias: true, name: "op"), ["data": [2, 8, 10, 10]]),
            ("conv 1x1", .convolution(d, kernel: [1, 1], numFilter: 32, name: "op"), ["data": [3, 16, 6, 6]]),
            ("conv 1-D", .convolution(d, kernel: [7], numFilter: 4, stride: [3], pad: [2], name: "op"), ["data": [2, 3, 40]]),
            ("deconv k4 s2 p1", .deconvolution(d, kernel: [4, 4], numFilter: 5, stride: [2, 2], pad: [1, 1], noBias: false, name: "op"), ["data": [2, 6, 7, 5]]),
            ("deconv grouped dilated adj", .deconvolution(d, kernel: [3, 3], numFilter: 6, stride: [3, 2], dilate: [2, 1], adj: [2, 1], numGroup: 3, noBias: false, name: "op"), ["data": [1, 9, 4, 5]]),
            ("deconv target shape", .deconvolution(d, kernel: [3, 3], numFilter: 2, stride: [2, 2], targetShape: [10, 9], name: "op"), ["data": [1, 3, 5, 5]]),
            ("deconv 1-D", .deconvolution(d, kernel: [5], numFilter: 3, stride: [2], pad: [2], adj: [1], name: "op"), ["data": [2, 4, 11]]),
            ("fc flatten", .fullyConnected(d, numHidden: 37, name: "op"), ["data": [5, 3, 4, 5]]),
            ("fc no flatten", .fullyConnected(d, numHidden: 9, noBias: true, flatten: false, name: "op"), ["data": [2, 3, 4, 17]]),
            ("pool max 3x3 s2 full pad", .pooling(d, kernel: [3, 3], convention: .full, stride: [2, 2], pad: [1, 1], name: "op"), ["data": [2, 3, 12, 11]]),
            ("pool avg exclude full", .pooling(d, kernel: [3, 2], poolType: .avg, convention: .full, stride: [2, 2], pad: [1, 1], countIncludePad: false, name: "op"), ["data": [2, 3, 12, 11]]),
            ("pool avg include full (Swift path)", .pooling(d, kernel: [3, 3], poolType: .avg, convention: .full, stride: [2, 2], name: "op"), ["data": [1, 4, 10, 12]]),
            ("pool sum pad", .pooling(d, kernel: [3, 3], poolType: .sum, stride: [1, 2], pad: [1, 1], name: "op"), ["data": [1, 4, 10, 12]]),
            ("pool 1-D avg", .pooling(d, kernel: [4], poolType: .avg, stride: [3], pad: [2], name: "op"), ["data": [2, 5, 23]]),
            ("bn axis 1", .batchNorm(d, fixGamma: false, name: "op"), ["data": [4, 6, 5, 5]]),
            ("bn axis -1", .batchNorm(d, eps: 1e-5, fixGamma: false, axis: -1, name: "op"), ["data": [3, 5, 7]]),
        ]
    }()

    @Test(arguments: randomCases.indices)
    func frameworkMatchesReference(_ index: Int) throws {
        let (label, symbol, shapes) = Self.randomCases[index]
        let inferred = try symbol.inferShape(shapes)
        var inputs: [String: NDArray] = [:]
        for (k, (name, shape)) in inferred.byName.sorted(by: { $0.key < $1.key }).enumerated() {
            inputs[name] = NDArray.randomNormal(shape: shape, seed: UInt64(100 + k))
            if name.hasSuffix("moving_var") { inputs[name] = inputs[name]!.map { abs($0) + 0.1 } }
        }
        for isTrain in [false, true] {
            let ref = try run(symbol, inputs, .reference, isTrain: isTrain)
            let fw = try run(symbol, inputs, .framework, isTrain: isTrain)
            for (a, b) in zip(ref, fw) {
                let diff = try a.maxAbsDifference(b)
                #expect(diff <= 1e-4 * max(1, a.maxAbs()), "\(label) (isTrain \(isTrain)): max abs difference \(diff)")
            }
        }
    }

    // MARK: Kernel behaviour

    @Test func frameworkConvolutionUsesAFastImplementation() throws {
        let d = Symbol.variable("data")
        let shapes: [Shape] = [[2, 16, 16, 16], [1, 3, 32, 32]]
        for shape in shapes {
            let conv = Symbol.convolution(d, kernel: [3, 3], numFilter: 16, pad: [1, 1], name: "c")
            let sig = try signature(conv, ["data": shape])
            let kernel = try DNNLConvolutionKernel(sig, transposed: false)
            #expect(!kernel.implementation.hasPrefix("ref"), "convolution on \(shape) runs \(kernel.implementation)")
        }
    }

    @Test func packedWeightsAreReusedUntilTheArrayChanges() throws {
        let conv = Symbol.convolution(.variable("data"), kernel: [3, 3], numFilter: 16, pad: [1, 1], name: "c")
        let exec = try conv.bind(shapes: ["data": [1, 16, 8, 8]], backend: OpByOpBackend.framework)
        exec.argDict["data"] = .randomNormal(shape: [1, 16, 8, 8], seed: 1)
        exec.argDict["c_weight"] = .randomNormal(shape: [16, 16, 3, 3], seed: 2)
        try exec.forward()
        let first = exec.outputs[0]
        // Writing the weights while the kernel holds the packed copy's source must not go unseen.
        exec.argDict["c_weight"]!.setElement(0, 100)
        try exec.forward()
        let reference = try conv.bind(shapes: ["data": [1, 16, 8, 8]], sharedBuffer: exec.argDict, backend: OpByOpBackend.reference)
        try reference.forward()
        #expect(try exec.outputs[0].maxAbsDifference(reference.outputs[0]) < 1e-3)
        #expect(try exec.outputs[0].maxAbsDifference(first) > 1)
    }

    @Test(arguments: backends)
    func channelLastLayoutIsRefusedClearly(_ backend: BackendChoice) throws {
        let conv = Symbol.convolution(.variable("data"), kernel: [3, 3], numFilter: 2, layout: .nhwc, name: "c")
        let error = #expect(throws: RuntimeError.self) { try conv.bind(shapes: ["data": [1, 5, 5, 3]], backend: backend.backend) }
        #expect("\(error!)".contains("layout NHWC"))
        let lp = Symbol.pooling(.variable("data"), kernel: [2, 2], poolType: .lp, pValue: 2, name: "p")
        let e2 = #expect(throws: RuntimeError.self) { try lp.bind(shapes: ["data": [1, 1, 4, 4]], backend: backend.backend) }
        #expect("\(e2!)".contains("lp"))
    }
}

// MARK: Helpers

extension NNOpsTests {
    /// Binds `symbol` with the arrays given (by name) and runs it once.
    func run(_ symbol: Symbol, _ inputs: [String: NDArray], _ backend: BackendChoice, isTrain: Bool = false) throws -> [NDArray] {
        let names = Set(symbol.listArguments() + symbol.listAuxiliaryStates())
        let given = inputs.filter { names.contains($0.key) }
        let exec = try symbol.bind(shapes: given.mapValues(\.shape), sharedBuffer: given, backend: backend.backend)
        try exec.forward(isTrain: isTrain)
        return exec.outputs
    }

    /// The kernel signature of the single op node of `symbol` for the given input shapes.
    func signature(_ symbol: Symbol, _ shapes: [String: Shape]) throws -> KernelSignature {
        let g = symbol.graph
        let s = try g.inferShapes(shapes), t = try g.inferTypes()
        guard let i = g.nodes.lastIndex(where: { !$0.isVariable }) else { throw RuntimeError.invalidArgument("no op node") }
        let (_, ctx) = try g.context(of: i)
        let n = g.nodes[i]
        return KernelSignature(node: ctx, inputShapes: n.inputs.map { s.nodeOutputs[$0.node][$0.index] },
                               inputTypes: n.inputs.map { t.nodeOutputs[$0.node][$0.index] },
                               outputShapes: s.nodeOutputs[i], outputTypes: t.nodeOutputs[i])
    }

    func expectClose(_ array: NDArray, _ expected: [Float], tolerance: Float = 1e-5, sourceLocation: SourceLocation = #_sourceLocation) throws {
        let got = array.floats()
        #expect(got.count == expected.count, sourceLocation: sourceLocation)
        for (a, b) in zip(got, expected) where abs(a - b) > tolerance {
            Issue.record("got \(got), expected \(expected)", sourceLocation: sourceLocation)
            return
        }
    }
}
