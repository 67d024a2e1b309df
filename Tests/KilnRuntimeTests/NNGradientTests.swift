import Foundation
import KilnCore
import KilnGraph
import KilnRuntime
import TestSupport
import Testing

/// Gradients of the neural-network ops: the reference backward against finite differences, the
/// framework's oneDNN backward against the reference one, hand-worked examples, and BatchNorm's
/// moving statistics as MXNet 1.9 updates them.
@Suite struct NNGradientTests {
    /// One op with attributes and arguments small enough for a debug build.
    struct Case: Sendable, CustomTestStringConvertible {
        let name: String
        let build: @Sendable () throws -> (symbol: Symbol, arguments: [String: NDArray], auxiliaryStates: [String: NDArray])
        var testDescription: String { name }
    }

    static let data = Symbol.variable("data")

    /// Arguments for every input of `symbol`: `data` as given, the rest uniform in [-1, 1];
    /// auxiliary states as moving statistics (mean in [-0.5, 0.5], variance in [0.5, 1.5]).
    static func arguments(_ symbol: Symbol, data: NDArray, seed: UInt64 = 3) throws -> ([String: NDArray], [String: NDArray]) {
        let s = try symbol.graph.inferShapes(["data": data.shape])
        var args: [String: NDArray] = [:], aux: [String: NDArray] = [:]
        for (k, (name, shape)) in zip(symbol.listArguments(), s.arguments).enumerated() {
            args[name] = name == "data" ? data : NDArray.randomUniform(shape: shape, low: -1, high: 1, seed: seed &+ UInt64(k))
        }
        for (k, (name, shape)) in zip(symbol.listAuxiliaryStates(), s.auxiliaryStates).enumerated() {
            let (low, high): (Float, Float) = name.hasSuffix("var") ? (0.5, 1.5) : (-0.5, 0.5)
            aux[name] = NDArray.randomUniform(shape: shape, low: low, high: high, seed: seed &+ 100 &+ UInt64(k))
        }
        return (args, aux)
    }

    /// Distinct values 0.05 apart in random order: no two elements of a pooling window are within a
    /// finite-difference step of each other, so the argmax does not move under the step.
    static func spaced(_ shape: Shape, seed: UInt64 = 11) -> NDArray {
        var rng = SplitMix64(seed: seed)
        let values = (0..<shape.elementCount).map { Float($0) * 0.05 - 1 }.shuffled(using: &rng)
        return NDArray(shape: shape, values: values)
    }

    static func random(_ shape: Shape, seed: UInt64 = 5) -> NDArray { NDArray.randomUniform(shape: shape, low: -1, high: 1, seed: seed) }

    static func op(_ name: String, _ data: @escaping @Sendable () -> NDArray, _ make: @escaping @Sendable (Symbol) -> Symbol) -> Case {
        Case(name: name) {
            let symbol = make(Self.data)
            let (args, aux) = try arguments(symbol, data: data())
            return (symbol, args, aux)
        }
    }

    static let cases: [Case] = [
        op("conv2d k3 p1 bias", { random([2, 3, 5, 5]) }) { .convolution($0, kernel: [3, 3], numFilter: 4, pad: [1, 1], name: "c") },
        op("conv2d k3 s2 p1 dilate2 no_bias", { random([1, 2, 7, 6]) }) {
            .convolution($0, kernel: [3, 3], numFilter: 3, stride: [2, 2], dilate: [2, 2], pad: [1, 1], noBias: true, name: "c")
        },
        op("conv2d k3x2 groups2", { random([2, 4, 5, 4]) }) { .convolution($0, kernel: [3, 2], numFilter: 6, numGroup: 2, name: "c") },
        op("conv2d depthwise", { random([1, 3, 4, 4]) }) { .convolution($0, kernel: [3, 3], numFilter: 3, pad: [1, 1], numGroup: 3, name: "c") },
        // 16 or more input channels per group: oneDNN's blocked layouts in the framework's backward.
        op("conv2d 16 channels k3 p1", { random([2, 16, 4, 4]) }) { .convolution($0, kernel: [3, 3], numFilter: 5, pad: [1, 1], name: "c") },
        op("conv2d 32 channels groups2 s2", { random([1, 32, 5, 5]) }) {
            .convolution($0, kernel: [3, 3], numFilter: 4, stride: [2, 2], numGroup: 2, name: "c")
        },
        op("conv1d k3 s2 p1 dilate2", { random([2, 2, 9]) }) {
            .convolution($0, kernel: [3], numFilter: 3, stride: [2], dilate: [2], pad: [1], name: "c")
        },
        op("conv1d groups2 no_bias", { random([2, 4, 6]) }) { .convolution($0, kernel: [2], numFilter: 2, numGroup: 2, noBias: true, name: "c") },
        op("deconv2d k3 s2 p1 adj1 bias", { random([2, 3, 3, 3]) }) {
            .deconvolution($0, kernel: [3, 3], numFilter: 2, stride: [2, 2], pad: [1, 1], adj: [1, 1], noBias: false, name: "d")
        },
        op("deconv2d k2 groups2", { random([1, 4, 3, 2]) }) { .deconvolution($0, kernel: [2, 2], numFilter: 4, numGroup: 2, name: "d") },
        op("deconv2d k3 dilate2", { random([1, 2, 3, 3]) }) { .deconvolution($0, kernel: [3, 3], numFilter: 2, dilate: [2, 2], name: "d") },
        op("deconv2d 16 channels k2 s2 bias", { random([2, 16, 3, 3]) }) {
            .deconvolution($0, kernel: [2, 2], numFilter: 3, stride: [2, 2], noBias: false, name: "d")
        },
        op("deconv2d k3 s2 target_shape", { random([1, 2, 3, 3]) }) {
            .deconvolution($0, kernel: [3, 3], numFilter: 2, stride: [2, 2], targetShape: [6, 6], name: "d")
        },
        op("deconv1d k3 s2 bias", { random([2, 2, 4]) }) { .deconvolution($0, kernel: [3], numFilter: 3, stride: [2], noBias: false, name: "d") },
        op("fc flatten bias", { random([3, 2, 3, 2]) }) { .fullyConnected($0, numHidden: 4, name: "f") },
        op("fc flatten false", { random([2, 3, 5]) }) { .fullyConnected($0, numHidden: 4, flatten: false, name: "f") },
        op("fc no_bias", { random([4, 6]) }) { .fullyConnected($0, numHidden: 3, noBias: true, name: "f") },
        op("batchnorm fix_gamma", { random([4, 3, 2, 2]) }) { .batchNorm($0, name: "bn") },
        op("batchnorm gamma", { random([4, 3, 2, 2]) }) { .batchNorm($0, eps: 1e-5, fixGamma: false, name: "bn") },
        op("batchnorm 2d", { random([5, 3]) }) { .batchNorm($0, fixGamma: false, name: "bn") },
        op("batchnorm axis -1", { random([2, 3, 4]) }) { .batchNorm($0, fixGamma: false, axis: -1, name: "bn") },
        op("batchnorm use_global_stats", { random([3, 2, 2, 2]) }) { .batchNorm($0, fixGamma: false, useGlobalStats: true, name: "bn") },
        op("batchnorm output_mean_var", { random([4, 2, 3]) }) { .batchNorm($0, fixGamma: false, outputMeanVar: true, name: "bn") },
        op("max 2x2 s2", { spaced([2, 2, 4, 4]) }) { .pooling($0, kernel: [2, 2], stride: [2, 2], name: "p") },
        op("max 3x3 s2 p1", { spaced([1, 2, 5, 5]) }) { .pooling($0, kernel: [3, 3], stride: [2, 2], pad: [1, 1], name: "p") },
        op("max 3x3 s2 full", { spaced([1, 2, 6, 6]) }) { .pooling($0, kernel: [3, 3], convention: .full, stride: [2, 2], name: "p") },
        op("avg 3x3 p1 count_include_pad", { random([1, 2, 4, 4]) }) {
            .pooling($0, kernel: [3, 3], poolType: .avg, pad: [1, 1], countIncludePad: true, name: "p")
        },
        op("avg 3x3 p1 exclude pad", { random([1, 2, 4, 4]) }) {
            .pooling($0, kernel: [3, 3], poolType: .avg, pad: [1, 1], countIncludePad: false, name: "p")
        },
        op("avg 3x3 s2 p1 full include pad", { random([1, 2, 6, 6]) }) {
            .pooling($0, kernel: [3, 3], poolType: .avg, convention: .full, stride: [2, 2], pad: [1, 1], name: "p")
        },
        op("avg 3x3 s2 full exclude pad", { random([1, 2, 6, 6]) }) {
            .pooling($0, kernel: [3, 3], poolType: .avg, convention: .full, stride: [2, 2], countIncludePad: false, name: "p")
        },
        op("sum 2x2 s1", { random([2, 1, 3, 4]) }) { .pooling($0, kernel: [2, 2], poolType: .sum, name: "p") },
        op("sum 2x2 s2 p1", { random([1, 2, 5, 5]) }) { .pooling($0, kernel: [2, 2], poolType: .sum, stride: [2, 2], pad: [1, 1], name: "p") },
        op("global max", { spaced([2, 3, 3, 3]) }) { .pooling($0, poolType: .max, globalPool: true, name: "p") },
        op("global avg", { random([2, 3, 3, 2]) }) { .pooling($0, poolType: .avg, globalPool: true, name: "p") },
        op("global sum", { random([1, 2, 3, 3]) }) { .pooling($0, poolType: .sum, globalPool: true, name: "p") },
        op("max1d k3 s2", { spaced([2, 2, 7]) }) { .pooling($0, kernel: [3], stride: [2], name: "p") },
        op("avg1d k2 s2 p1", { random([2, 2, 5]) }) { .pooling($0, kernel: [2], poolType: .avg, stride: [2], pad: [1], name: "p") },
    ]

    // MARK: Finite differences (reference backend)

    @Test(arguments: cases)
    func referenceGradientMatchesFiniteDifferences(_ c: Case) throws {
        let (symbol, args, aux) = try c.build()
        // Only the first output: BatchNorm's `mean` and `var` outputs pass no gradient back, in MXNet
        // as here (`batchNormIgnoresGradientsOfMeanAndVar`), so the loss must not include them.
        let check = GradientCheck(symbol: symbol[0], arguments: args, auxiliaryStates: aux, backend: OpByOpBackend.reference)
        for r in try check.run(check: symbol.listArguments()) {
            #expect(r.worstRelativeError < 5e-3, "\(c.name): \(r)")
        }
    }

    // MARK: Framework against reference

    /// Binds `symbol` on a backend with every argument's gradient, runs a training forward and a
    /// backward with the given head gradients.
    static func trained(_ symbol: Symbol, _ args: [String: NDArray], _ aux: [String: NDArray], heads: [NDArray]? = nil,
                        backend: OpByOpBackend, isTrain: Bool = true) throws -> Executor {
        let exec = try symbol.bind(shapes: args.mapValues(\.shape), gradReq: .write,
                                         sharedBuffer: args.merging(aux) { a, _ in a }, backend: backend)
        try exec.forward(isTrain: isTrain)
        let h = heads ?? exec.outputs.enumerated().map { k, o in NDArray.randomUniform(shape: o.shape, low: -1, high: 1, seed: 40 &+ UInt64(k)) }
        try exec.backward(h)
        return exec
    }

    @Test(arguments: cases)
    func frameworkBackwardMatchesReference(_ c: Case) throws {
        let (symbol, args, aux) = try c.build()
        let reference = try Self.trained(symbol, args, aux, backend: .reference)
        let framework = try Self.trained(symbol, args, aux, backend: .framework)
        for (i, (f, r)) in zip(framework.outputs, reference.outputs).enumerated() {
            expectClose(f, r, relative: 1e-4, "\(c.name) output \(i)")
        }
        for name in symbol.listArguments() {
            guard let f = framework.gradDict[name], let r = reference.gradDict[name] else {
                Issue.record("\(c.name): no gradient for \(name)")
                continue
            }
            expectClose(f, r, relative: 1e-4, "\(c.name) gradient of \(name)")
        }
        for name in symbol.listAuxiliaryStates() {
            guard let f = framework.auxDict[name], let r = reference.auxDict[name] else { continue }
            expectClose(f, r, relative: 1e-4, "\(c.name) auxiliary state \(name)")
        }
    }

    // MARK: Hand-worked examples

    static let backends: [OpByOpBackend] = [.reference, .framework]

    @Test(arguments: [0, 1])
    func convolutionBackwardWorkedByHand(_ backendIndex: Int) throws {
        // x = 1...9 as 3x3, w = [[1, 2], [3, 4]], dOut = [[1, 0], [0, 2]].
        // dBias = Σ dOut = 3.
        // dW[i][j] = Σ dOut[y][x] · x[y+i][x+j] = x[i][j] + 2 x[i+1][j+1]: [[1+10, 2+12], [4+16, 5+18]].
        // dX: dOut[0][0] = 1 places w at (0, 0), dOut[1][1] = 2 places 2w at (1, 1):
        //     [[1, 2, 0], [3, 4+2, 4], [0, 6, 8]].
        let conv = Symbol.convolution(Self.data, kernel: [2, 2], numFilter: 1, name: "c")
        let args = ["data": NDArray(shape: [1, 1, 3, 3], values: (1...9).map(Float.init)),
                    "c_weight": NDArray(shape: [1, 1, 2, 2], values: [1, 2, 3, 4]), "c_bias": NDArray(shape: [1], values: [0.5])]
        let exec = try Self.trained(conv, args, [:], heads: [NDArray(shape: [1, 1, 2, 2], values: [1, 0, 0, 2])],
                                    backend: Self.backends[backendIndex])
        #expect(exec.gradDict["c_bias"]?.floats() == [3])
        #expect(exec.gradDict["c_weight"]?.floats() == [11, 14, 20, 23])
        #expect(exec.gradDict["data"]?.floats() == [1, 2, 0, 3, 6, 4, 0, 6, 8])
    }

    @Test(arguments: [0, 1])
    func poolingBackwardWorkedByHand(_ backendIndex: Int) throws {
        // 2x2 windows, stride 2, on a 2x4 input [[1, 5, 2, 0], [3, 4, 8, 8]] with dOut = [10, 20]:
        // max sends 10 to the 5 and 20 to the first 8; avg spreads 2.5 and 5; sum copies 10 and 20.
        let x = NDArray(shape: [1, 1, 2, 4], values: [1, 5, 2, 0, 3, 4, 8, 8])
        let dOut = NDArray(shape: [1, 1, 1, 2], values: [10, 20])
        let expected: [(Symbol.PoolType, [Float])] = [
            (.max, [0, 10, 0, 0, 0, 0, 20, 0]),
            (.avg, [2.5, 2.5, 5, 5, 2.5, 2.5, 5, 5]),
            (.sum, [10, 10, 20, 20, 10, 10, 20, 20]),
        ]
        for (type, grad) in expected {
            let pool = Symbol.pooling(Self.data, kernel: [2, 2], poolType: type, stride: [2, 2], name: "p")
            let exec = try Self.trained(pool, ["data": x], [:], heads: [dOut], backend: Self.backends[backendIndex])
            #expect(exec.gradDict["data"]?.floats() == grad, "\(type)")
        }
    }

    @Test(arguments: [0, 1])
    func fullyConnectedBackwardWorkedByHand(_ backendIndex: Int) throws {
        // out = x · Wᵀ + b with x = [[1, 2]], W = [[1, 0], [2, -1], [0, 3]], dOut = [[1, 2, 3]]:
        // dx = dOut · W = [1 + 4, -2 + 9], dW = dOutᵀ · x = [[1, 2], [2, 4], [3, 6]], db = dOut.
        let fc = Symbol.fullyConnected(Self.data, numHidden: 3, name: "f")
        let args = ["data": NDArray(shape: [1, 2], values: [1, 2]), "f_weight": NDArray(shape: [3, 2], values: [1, 0, 2, -1, 0, 3]),
                    "f_bias": NDArray(shape: [3], values: [0, 0, 0])]
        let exec = try Self.trained(fc, args, [:], heads: [NDArray(shape: [1, 3], values: [1, 2, 3])], backend: Self.backends[backendIndex])
        #expect(exec.gradDict["data"]?.floats() == [5, 7])
        #expect(exec.gradDict["f_weight"]?.floats() == [1, 2, 2, 4, 3, 6])
        #expect(exec.gradDict["f_bias"]?.floats() == [1, 2, 3])
    }

    // MARK: BatchNorm's moving statistics and gamma

    /// Channel 0 holds [1, 2, 3, 6] (mean 3, biased variance 14/4 = 3.5; the unbiased one would be
    /// 14/3), channel 1 holds [0, 0, 4, 4] (mean 2, variance 4).
    static let statisticsData = NDArray(shape: [4, 2], values: [1, 0, 2, 0, 3, 4, 6, 4])

    @Test(arguments: [0, 1])
    func batchNormUpdatesMovingStatisticsInBackward(_ backendIndex: Int) throws {
        let backend = Self.backends[backendIndex]
        let bn = Symbol.batchNorm(Self.data, fixGamma: false, name: "bn")
        let aux = ["bn_moving_mean": NDArray(shape: [2], values: [1, -1]), "bn_moving_var": NDArray(shape: [2], values: [2, 0.5])]
        let exec = try bn.bind(shapes: ["data": [4, 2]], gradReq: .write,
                                     sharedBuffer: aux.merging(["data": Self.statisticsData, "bn_gamma": NDArray(shape: [2], values: [1, 1])]) { a, _ in a },
                                     backend: backend)
        try exec.forward(isTrain: true)
        // As in MXNet 1.9, a training forward alone leaves the moving statistics as they are.
        #expect(exec.auxDict["bn_moving_mean"]?.floats() == [1, -1])
        #expect(exec.auxDict["bn_moving_var"]?.floats() == [2, 0.5])
        try exec.backward([NDArray(zeros: [4, 2])])
        // moving = moving · 0.9 + batch · 0.1: mean [0.9 + 0.3, -0.9 + 0.2], var [1.8 + 0.35, 0.45 + 0.4].
        expectClose(exec.auxDict["bn_moving_mean"] ?? NDArray(zeros: [2]), NDArray(shape: [2], values: [1.2, -0.7]), relative: 1e-6, "moving mean")
        expectClose(exec.auxDict["bn_moving_var"] ?? NDArray(zeros: [2]), NDArray(shape: [2], values: [2.15, 0.85]), relative: 1e-6, "moving var")
        // A second training step starts from the updated statistics.
        try exec.forward(isTrain: true)
        try exec.backward([NDArray(zeros: [4, 2])])
        expectClose(exec.auxDict["bn_moving_mean"] ?? NDArray(zeros: [2]), NDArray(shape: [2], values: [1.2 * 0.9 + 0.3, -0.7 * 0.9 + 0.2]),
                    relative: 1e-6, "moving mean after two steps")
    }

    @Test(arguments: [0, 1])
    func batchNormWithGlobalStatisticsKeepsMovingStatistics(_ backendIndex: Int) throws {
        let bn = Symbol.batchNorm(Self.data, fixGamma: false, useGlobalStats: true, name: "bn")
        let aux = ["bn_moving_mean": NDArray(shape: [2], values: [1, -1]), "bn_moving_var": NDArray(shape: [2], values: [3, 0])]
        let args = ["data": Self.statisticsData, "bn_gamma": NDArray(shape: [2], values: [2, 1]), "bn_beta": NDArray(shape: [2], values: [0, 0])]
        let dOut = NDArray(shape: [4, 2], values: [1, 1, 1, 1, 1, 1, 1, 1])
        let exec = try Self.trained(bn, args, aux, heads: [dOut], backend: Self.backends[backendIndex])
        #expect(exec.auxDict["bn_moving_mean"]?.floats() == [1, -1])
        #expect(exec.auxDict["bn_moving_var"]?.floats() == [3, 0])
        // The moving statistics are constants: dx = γ / sqrt(var + eps) · dy.
        let expected: [Float] = (0..<8).map { k in k % 2 == 0 ? Float(2 / (3.001).squareRoot()) : Float(1 / (0.001).squareRoot()) }
        expectClose(exec.gradDict["data"] ?? NDArray(zeros: [4, 2]), NDArray(shape: [4, 2], values: expected), relative: 1e-5, "data gradient")
        #expect(exec.gradDict["bn_beta"]?.floats() == [4, 4])
    }

    @Test(arguments: [0, 1])
    func batchNormFixGammaHasZeroGammaGradient(_ backendIndex: Int) throws {
        let bn = Symbol.batchNorm(Self.data, name: "bn")
        let (args, aux) = try Self.arguments(bn, data: Self.random([4, 3, 2]))
        let exec = try Self.trained(bn, args, aux, backend: Self.backends[backendIndex])
        #expect(exec.gradDict["bn_gamma"]?.floats() == [0, 0, 0])
        #expect(exec.gradDict["bn_beta"].map { $0.maxAbs() > 0 } == true)
    }

    @Test(arguments: [0, 1])
    func batchNormIgnoresGradientsOfMeanAndVar(_ backendIndex: Int) throws {
        // As MXNet 1.9 (checked with it): only the normalized output's gradient flows back.
        let bn = Symbol.batchNorm(Self.data, fixGamma: false, outputMeanVar: true, name: "bn")
        let (args, aux) = try Self.arguments(bn, data: Self.random([4, 2, 3]))
        let dy = Self.random([4, 2, 3], seed: 8)
        let backend = Self.backends[backendIndex]
        let zero = try Self.trained(bn, args, aux, heads: [dy, NDArray(zeros: [2]), NDArray(zeros: [2])], backend: backend)
        let other = try Self.trained(bn, args, aux, heads: [dy, NDArray(shape: [2], values: [5, 5]), NDArray(shape: [2], values: [7, -7])], backend: backend)
        for name in ["data", "bn_gamma", "bn_beta"] {
            #expect(zero.gradDict[name]?.floats() == other.gradDict[name]?.floats(), "\(name)")
        }
        #expect(zero.gradDict["data"].map { $0.maxAbs() > 0 } == true)
    }

    // MARK: Backward after an inference forward

    @Test func maxPoolingBackwardAfterInferenceForwardRecordsItsArgmax() throws {
        // The framework's max pooling records the argmax only in a training forward; after an
        // inference forward its backward must find it again.
        let pool = Symbol.pooling(Self.data, kernel: [3, 3], stride: [2, 2], pad: [1, 1], name: "p")
        let args = ["data": Self.random([2, 3, 7, 7])]
        let heads = [Self.random([2, 3, 4, 4], seed: 9)]
        let reference = try Self.trained(pool, args, [:], heads: heads, backend: .reference, isTrain: false)
        let framework = try Self.trained(pool, args, [:], heads: heads, backend: .framework, isTrain: false)
        expectClose(framework.gradDict["data"] ?? NDArray(zeros: [1]), reference.gradDict["data"] ?? NDArray(zeros: [2]), relative: 1e-6, "data gradient")
    }

    // MARK: LeNet-5 training step timing (release builds, on request)

    /// LeNet-5 at batch 100 (conv 20 5x5, tanh, max pool 2, conv 50 5x5, tanh, max pool 2, FC 500,
    /// tanh, FC 10, SoftmaxOutput), one training step = forward(isTrain) + backward of every weight,
    /// then an SGD step `w -= 0.01 g` (a Swift loop; new weight arrays, so the kernels repack them as
    /// in training), 600 times: one epoch of MNIST.
    /// Prints ms per batch (the best and the median of several rounds: other processes share the
    /// cores) on both backends and checks that their gradients agree. Run with
    /// `KILN_BENCH=1 swift test -c release -Xswiftc -enable-testing --filter lenetTrainingStep`.
    @Test(.enabled(if: ProcessInfo.processInfo.environment["KILN_BENCH"] != nil, "set KILN_BENCH=1 (release build) to time it"))
    func lenetTrainingStepTiming() throws {
        var x = Symbol.convolution(Self.data, kernel: [5, 5], numFilter: 20, name: "conv1")
        x = .pooling(.activation(x, kind: .tanh, name: "tanh1"), kernel: [2, 2], stride: [2, 2], name: "pool1")
        x = .convolution(x, kernel: [5, 5], numFilter: 50, name: "conv2")
        x = .pooling(.activation(x, kind: .tanh, name: "tanh2"), kernel: [2, 2], stride: [2, 2], name: "pool2")
        x = .activation(.fullyConnected(x, numHidden: 500, name: "fc1"), kind: .tanh, name: "tanh3")
        x = .softmaxOutput(.fullyConnected(x, numHidden: 10, name: "fc2"), name: "softmax")
        var (args, _) = try Self.arguments(x, data: NDArray.randomUniform(shape: [100, 1, 28, 28], seed: 1))
        args = args.mapValues { $0.map { $0 * 0.1 } }
        args["softmax_label"] = NDArray(shape: [100], values: (0..<100).map { Float($0 % 10) })
        let head: [NDArray] = []
        let weights = x.listArguments().filter { $0 != "data" && $0 != "softmax_label" }
        let scaled = args

        func bind(_ backend: OpByOpBackend) throws -> Executor {
            let exec = try x.bind(shapes: ["data": [100, 1, 28, 28]], gradReq: .write, gradReqs: ["data": .null, "softmax_label": .null],
                                        sharedBuffer: scaled, backend: backend)
            try exec.forward(isTrain: true)
            try exec.backward(head)
            return exec
        }
        func step(_ exec: Executor, update: Bool) throws {
            try exec.forward(isTrain: true)
            try exec.backward(head)
            guard update else { return }
            for name in weights {
                if let w = exec.argDict[name], let g = exec.gradDict[name] { exec.argDict[name] = try w.zipMap(g) { $0 - 0.01 * $1 } }
            }
        }
        /// Milliseconds per step (best and median over `rounds` rounds of `steps` steps) and in all.
        func time(_ exec: Executor, rounds: Int, steps: Int, update: Bool) throws -> (best: Double, median: Double, total: Double) {
            let clock = ContinuousClock()
            var perStep: [Double] = []
            for _ in 0..<rounds {
                let d = try clock.measure { for _ in 0..<steps { try step(exec, update: update) } }
                perStep.append((Double(d.components.seconds) * 1e3 + Double(d.components.attoseconds) * 1e-15) / Double(steps))
            }
            let total = perStep.reduce(0, +) * Double(steps)
            perStep.sort()
            return (perStep[0], perStep[perStep.count / 2], total)
        }
        let framework = try bind(.framework), reference = try bind(.reference)
        for name in weights {
            expectClose(framework.gradDict[name] ?? NDArray(zeros: [1]), reference.gradDict[name] ?? NDArray(zeros: [2]),
                        relative: 1e-4, "gradient of \(name)")
        }
        let fixed = try time(framework, rounds: 7, steps: 10, update: false)
        // 60 rounds of 10: one epoch of MNIST's 60,000 images.
        let updated = try time(framework, rounds: 60, steps: 10, update: true)
        let slow = try time(reference, rounds: 1, steps: 2, update: false)
        func f(_ v: Double) -> String { String(format: "%.1f", v) }
        print("LeNet-5, batch 100, release: framework forward+backward \(f(fixed.best)) ms/batch best, \(f(fixed.median)) median; " +
              "with an SGD step (weights repacked) \(f(updated.best)) best, \(f(updated.median)) median, " +
              "600 batches (one epoch) in \(f(updated.total / 1000)) s; reference forward+backward \(String(format: "%.0f", slow.best)) ms/batch")
    }
}
