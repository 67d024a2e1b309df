import Foundation
import KilnCore
import KilnEngineCore
import KilnGraph
import KilnRuntime
import Testing
@testable import KilnCUDA

/// The CUDA backend's parts that need no GPU (library search, the capability answers, the
/// allocator's rounding, broadcast strides, exact float literals), the behaviour without a GPU, and
/// (skipped, saying why, where there is none) kernels on a GPU against the reference kernels.
@Suite struct CUDATests {
    /// Every library is either loaded with a path or reported by name with what to set.
    @Test func librariesAreLoadedOrExplained() {
        let cuda = CUDA.shared
        #expect(cuda.libraries.map(\.name) == ["driver", "runtime", "cublas", "cudnn", "nvrtc"])
        for l in cuda.libraries where !l.isLoaded {
            let text = l.error ?? ""
            #expect(text.contains("lib") && text.contains("KILN_CUDA_PATH"), "\(text)")
        }
        #expect(cuda.isAvailable == (cuda.unavailabilityReason == nil))
    }

    /// KILN_CUDA_PATH's folders come first, each with its lib64/ and lib/.
    @Test func cudaPathFoldersComeFirst() {
        let folders = DynamicLibrary.searchFolders(environment: ["KILN_CUDA_PATH": "/opt/a:/opt/b"])
        #expect(Array(folders.prefix(6)) == ["/opt/a", "/opt/a/lib64", "/opt/a/lib", "/opt/b", "/opt/b/lib64", "/opt/b/lib"])
        #expect(DynamicLibrary.searchFolders(environment: [:]).isEmpty)
    }

    /// A library that is nowhere gives a sentence naming it and where it was looked for.
    @Test func missingLibraryIsNamed() {
        #expect(throws: CUDAError.self) {
            _ = try DynamicLibrary.open("libkiln-nothing", names: ["libkiln-nothing.so.1"], environment: ["KILN_CUDA_PATH": "/nonexistent"])
        }
        do {
            _ = try DynamicLibrary.open("libkiln-nothing", names: ["libkiln-nothing.so.1"], environment: ["KILN_CUDA_PATH": "/nonexistent"])
        } catch {
            #expect("\(error)".contains("libkiln-nothing") && "\(error)".contains("/nonexistent"))
        }
    }

    /// Small blocks round to 512 bytes, blocks of 1 MiB and more to 2 MiB.
    @Test(arguments: [(1, 512), (512, 512), (513, 1024), ((1 << 20) - 1, 1 << 20), (1 << 20, 2 << 20), ((2 << 20) + 1, 4 << 20)])
    func poolRounding(bytes: Int, rounded: Int) {
        #expect(DeviceMemoryPool.rounded(bytes) == rounded)
    }

    /// Strides of an input read as the broadcast output: 0 on axes where the input has 1 (worked by hand).
    @Test func broadcastStrides() {
        #expect(BinaryKernel.strides([3, 1, 7], to: [3, 5, 7]) == [7, 0, 1])
        #expect(BinaryKernel.strides([5, 1], to: [3, 5, 7]) == [0, 1, 0])
        #expect(BinaryKernel.strides([3, 5, 7], to: [3, 5, 7]) == [35, 7, 1])
    }

    /// Scalars go into generated source as their exact float32 bits.
    @Test func floatLiteralsAreExact() {
        #expect(ScalarKernel.literal(1.5) == "__int_as_float(1069547520)")  // 0x3FC00000
        #expect(ScalarKernel.literal(-2) == "__int_as_float(-1073741824)")  // 0xC0000000
        #expect(ScalarKernel.literal(0.1) == "__int_as_float(\(Int32(bitPattern: Float(0.1).bitPattern)))")
    }

    static func support(_ symbol: Symbol, _ shapes: [String: Shape]) throws -> [String: Support] {
        let g = symbol.graph
        let s = try g.inferShapes(shapes), t = try g.inferTypes([:])
        var answers: [String: Support] = [:]
        for (i, n) in g.nodes.enumerated() where !n.isVariable {
            answers[n.name] = CUDABackend().support(SupportQuery(graph: g, node: i, shapes: s, types: t))
        }
        return answers
    }

    /// The capability answers come from the same entries that build the kernels.
    @Test func supportAnswersWithReasons() throws {
        let x = Symbol.variable("data")
        let conv = try Self.support(.convolution(x, kernel: [3, 3], numFilter: 4, name: "c"), ["data": [1, 2, 8, 8]])
        #expect(conv["c"] == .supported)
        let conv3d = try Self.support(.convolution(x, kernel: [3, 3, 3], numFilter: 4, name: "c"), ["data": [1, 2, 8, 8, 8]])
        #expect(conv3d["c"] == .unsupported("a 3-d kernel; GPU framework kernels take 2-d convolutions"))
        let sum = try Self.support(.pooling(x, kernel: [2, 2], poolType: .sum, stride: [2, 2], name: "p"), ["data": [1, 2, 8, 8]])
        #expect(sum["p"] == .unsupported("pool_type sum"))
        // 'full' rounding up where cuDNN floors: 7 with kernel 2 stride 2 gives 4, not 3.
        let full = try Self.support(.pooling(x, kernel: [2, 2], poolType: .max, convention: .full, stride: [2, 2], name: "p"), ["data": [1, 2, 7, 7]])
        #expect(full["p"] != .supported)
        let fullEven = try Self.support(.pooling(x, kernel: [2, 2], poolType: .max, convention: .full, stride: [2, 2], name: "p"), ["data": [1, 2, 8, 8]])
        #expect(fullEven["p"] == .supported)
        let tempered = try Self.support(.softmax(x, temperature: 2, name: "s"), ["data": [2, 5]])
        #expect(tempered["s"] == .unsupported("temperature 2.0"))
        let transposed = try Self.support(try Symbol.apply("transpose", [x], name: "t"), ["data": [2, 5]])
        #expect(transposed["t"] == .unsupported("no GPU kernel for transpose"))
    }

    /// The GPU runs Dropout as a copy, so it takes only a Dropout that is the identity at inference
    /// (`DropoutParameters.isIdentityAtInference`); with `mode=always` MXNet drops at inference too,
    /// so that node runs on the CPU framework's kernel, which drops.
    @Test func dropoutDroppingAtInferenceRunsOnTheCPU() throws {
        let x = Symbol.variable("data")
        let training = try Self.support(.dropout(x, p: 0.5, mode: .training, name: "d"), ["data": [2, 5]])
        #expect(training["d"] == .supported)
        let always = Symbol.dropout(x, p: 0.5, mode: .always, name: "d")
        let reason: SupportReason = "mode=always, which drops at inference too (the GPU copies Dropout)"
        #expect(try Self.support(always, ["data": [2, 5]])["d"] == .unsupported(reason))
        let g = always.graph
        let placements = CUDABackend().placements(g, shapes: try g.inferShapes(["data": [2, 5]]), types: try g.inferTypes([:]))
        #expect(placements == [GPUPlacement(node: "d", op: "Dropout", onGPU: false, reason: reason.text)])
        // With nothing to drop, mode=always is the identity too.
        let nothing = try Self.support(.dropout(x, p: 0, mode: .always, name: "d"), ["data": [2, 5]])
        #expect(nothing["d"] == .supported)
    }

    /// Without a GPU, binding on one fails with the reason, and the process goes on.
    @Test(.enabled(if: !CUDA.shared.isAvailable, "this machine has a GPU"))
    func bindingWithoutGPUExplains() throws {
        let net = Symbol.fullyConnected(.variable("data"), numHidden: 3, name: "fc")
        do {
            _ = try net.bind(context: .gpu(0), shapes: ["data": [2, 4]], backend: CUDABackend(device: 0))
            Issue.record("binding on a missing GPU succeeded")
        } catch {
            #expect("\(error)".contains("lib"), "\(error)")
        }
    }

    /// A CPU backend refuses a GPU context instead of running there silently.
    @Test func cpuBackendRefusesGPUContext() {
        let net = Symbol.fullyConnected(.variable("data"), numHidden: 3, name: "fc")
        #expect(throws: RuntimeError.self) { _ = try net.bind(context: .gpu(0), shapes: ["data": [2, 4]]) }
    }

    /// On a GPU: convolution, batch norm, pooling and dense layers against the reference kernels.
    @Test(.enabled(if: CUDA.shared.isAvailable, "needs a GPU and CUDA's libraries (see `kiln devices`); `kiln gpu-check` runs the full set there"))
    func kernelsMatchReference() throws {
        var x = Symbol.variable("data")
        x = .convolution(x, kernel: [3, 3], numFilter: 8, pad: [1, 1], name: "c")
        x = .batchNorm(x, eps: 1e-5, fixGamma: false, name: "bn")
        x = .activation(x, kind: .relu, name: "r")
        x = .pooling(x, kernel: [2, 2], poolType: .max, stride: [2, 2], name: "p")
        x = .fullyConnected(x, numHidden: 5, name: "fc")
        let shapes: [String: Shape] = ["data": [2, 3, 8, 8]]
        let ref = try x.bind(shapes: shapes, backend: OpByOpBackend.reference)
        let gpu = try x.bind(context: .gpu(0), shapes: shapes, backend: CUDABackend(device: 0))
        var seed: UInt64 = 1
        for (k, v) in ref.argDict {
            seed += 1
            let a = NDArray.randomNormal(shape: v.shape, seed: seed)
            ref.argDict[k] = a
            gpu.argDict[k] = a
        }
        for (k, v) in ref.auxDict {
            let a = NDArray.randomNormal(shape: v.shape, seed: 99).map { abs($0) + 0.5 }
            ref.auxDict[k] = a
            gpu.auxDict[k] = a
        }
        try ref.forward()
        try gpu.forward()
        let r = ref.outputs[0], g = gpu.outputs[0]
        var worst = 0.0
        for i in 0..<r.elementCount { worst = max(worst, abs(r.element(i) - g.element(i))) }
        #expect(worst < 1e-4)
    }
}

/// The cuda engine's compile up to its kernels, which needs no GPU: the engine core's pipeline with
/// the cuda engine's fusion policy, and the steps it becomes, with BatchNorm folded into the
/// convolution's weights and bias against numbers worked by hand.
@Suite struct CUDAEngineStepTests {
    static func steps(_ y: Symbol, _ shapes: [String: Shape], constants: [String: NDArray] = [:],
                      channelsLast: Bool = false) throws -> (ir: EngineIR, steps: CUDASteps) {
        let g = y.graph
        let (ir, _) = try CUDAEngine.optimize(g, shapes: try g.inferShapes(shapes), types: try g.inferTypes([:]), constants: constants)
        return (ir, try CUDASteps(ir, channelsLast: channelsLast))
    }

    /// conv -> BatchNorm -> add(residual) -> relu is one convolution step; the residual read is the data.
    @Test func residualBlockIsOneStep() throws {
        let x = Symbol.variable("data")
        var y = Symbol.convolution(x, kernel: [1, 1], numFilter: 2, noBias: true, name: "c")
        y = .batchNorm(y, eps: 1e-5, fixGamma: false, name: "bn")
        y = .elementwiseAdd(y, x, name: "add")
        y = .activation(y, kind: .relu, name: "r")
        // w = identity; gamma (2, 3), beta (1, -1), mean (0.5, 0), var (4 - 1e-5, 9 - 1e-5): s = (1, 1).
        let constants: [String: NDArray] = [
            "c_weight": NDArray(shape: [2, 2, 1, 1], values: [1, 0, 0, 1]),
            "bn_gamma": NDArray(shape: [2], values: [2, 3]), "bn_beta": NDArray(shape: [2], values: [1, -1]),
            "bn_moving_mean": NDArray(shape: [2], values: [0.5, 0]), "bn_moving_var": NDArray(shape: [2], values: [4 - 1e-5, 9 - 1e-5]),
        ]
        let (ir, e) = try Self.steps(y, ["data": [1, 2, 1, 1]], constants: constants)
        #expect(ir.ops.count == 1)
        #expect(Set(ir.ops[0].fused) == ["bn", "add", "r"])
        #expect(e.steps.count == 1)
        guard case let .convolution(input, _, weight, bias, _, residual, activation) = e.steps[0] else {
            Issue.record("not a convolution step")
            return
        }
        #expect(residual == input)  // the block's input, read again as the residual
        #expect(activation == EltwiseSpec(algorithm: .relu))
        // s = gamma / sqrt(var + eps) = (1, 1): weights unchanged; bias = (0 - mean) * s + beta = (0.5, -1).
        let w = weight.withUnsafeBufferPointer(as: Float.self) { Array($0) }
        #expect(w.enumerated().allSatisfy { abs($0.element - [1, 0, 0, 1][$0.offset]) < 1e-6 })
        #expect(abs(bias[0] - 0.5) < 1e-6 && abs(bias[1] + 1) < 1e-6)
    }

    /// The add of two convolutions goes to the one computed last, moved to the add's place, so the
    /// residual it reads exists when it runs (gluon's downsample branch).
    @Test func residualIsTheEarlierConvolution() throws {
        let x = Symbol.variable("data")
        let body = Symbol.convolution(x, kernel: [1, 1], numFilter: 2, noBias: true, name: "body")
        let down = Symbol.convolution(x, kernel: [1, 1], numFilter: 2, noBias: true, name: "down")
        let y = Symbol.elementwiseAdd(body, down, name: "add")
        let w = NDArray(shape: [2, 2, 1, 1], values: [1, 0, 0, 1])
        let (_, e) = try Self.steps(y, ["data": [1, 2, 2, 2]], constants: ["body_weight": w, "down_weight": w])
        #expect(e.steps.count == 2)
        guard case let .convolution(_, bodyOut, _, _, _, nil, _) = e.steps[0],
              case let .convolution(_, _, _, _, _, residual?, _) = e.steps[1] else {
            Issue.record("expected the add fused into the second convolution")
            return
        }
        #expect(residual == bodyOut)
    }

    /// Channels-last values are reordered before a flatten reads them in NCHW order.
    @Test func flattenOfChannelsLastReorders() throws {
        let y = Symbol.flatten(.activation(.variable("data"), kind: .relu, name: "r"), name: "f")
        let (_, e) = try Self.steps(y, ["data": [2, 3, 4, 4]], channelsLast: true)
        #expect(e.steps.count == 2)
        if case .reorderToNCHW = e.steps[1] {} else { Issue.record("no reorder before the flatten") }
        let (_, plain) = try Self.steps(y, ["data": [2, 3, 4, 4]])
        #expect(plain.steps.count == 1)
    }

    /// Global average pooling, flatten and a dense layer that is the group's output become the fused
    /// head in the cuda engine's pipeline (the cpu engine's has no head pass).
    @Test func headIsOneStep() throws {
        var y = Symbol.pooling(.variable("data"), poolType: .avg, globalPool: true, name: "pool")
        y = .fullyConnected(.flatten(y, name: "flat"), numHidden: 3, name: "fc")
        let constants = ["fc_weight": NDArray.randomNormal(shape: [3, 4], seed: 1), "fc_bias": NDArray(shape: [3], values: [1, 2, 3])]
        let (ir, e) = try Self.steps(y, ["data": [2, 4, 5, 5]], constants: constants)
        #expect(ir.ops.count == 1 && ir.ops[0].lowering == .averagePoolingDense(InnerProductSpec(numHidden: 3, hasBias: true, flatten: true)))
        #expect(Set(ir.ops[0].fused) == ["flat", "pool"])
        guard e.steps.count == 1, case let .head(_, _, _, bias?, relu) = e.steps[0] else {
            Issue.record("not one head step: \(e.steps)")
            return
        }
        #expect(bias == [1, 2, 3] && !relu)
    }

    /// Dropout that drops at inference is refused by both engines with the same sentence, from the
    /// engine core's one rule; in training mode both take it as an identity.
    @Test func dropoutRuleIsShared() throws {
        for (mode, supported) in [("always", false), ("training", true)] {
            let y = try Symbol.apply("Dropout", [.variable("data")], attributes: ["mode": mode], name: "d")
            let q = SupportQuery(graph: y.graph, node: 1)
            let cuda = CUDAEngine().support(q)
            #expect(cuda.isSupported == supported)
            #expect(cuda == CUDAEngine.capabilities.verdict(q).support)
            if !supported { #expect(cuda == .unsupported("attribute mode=always (it drops at inference too) is not supported")) }
        }
    }

    /// The engine's capability answers name what is missing.
    @Test func engineNeedsConstantWeights() throws {
        let y = Symbol.convolution(.variable("data"), kernel: [3, 3], numFilter: 2, name: "c")
        let g = y.graph
        let s = try g.inferShapes(["data": [1, 2, 5, 5]]), t = try g.inferTypes([:])
        let conv = g.nodes.firstIndex { $0.name == "c" }!
        #expect(CUDAEngine().support(SupportQuery(graph: g, node: conv, shapes: s, types: t)) == .unsupported("weight 'weight' is not known at bind"))
        let known = CUDAEngine().support(SupportQuery(graph: g, node: conv, shapes: s, types: t, constants: ["c_weight", "c_bias"]))
        #expect(known == .supported)
        let transposed = try Symbol.apply("transpose", [.variable("data")], name: "t")
        #expect(CUDAEngine().support(SupportQuery(graph: transposed.graph, node: 1)) == .unsupported("op transpose is not supported"))
    }
}
