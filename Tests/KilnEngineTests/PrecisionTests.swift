import Foundation
import KilnCore
import KilnEngine
import KilnEngineCore
import KilnGraph
import KilnRuntime
import TestSupport
import Testing

/// bf16 and int8 inside engine groups, against the fp32 framework and against int8 arithmetic
/// simulated independently.
@Suite struct PrecisionTests {
    static func resnet() throws -> (GoldenModel, Bound) {
        let model = try GoldenModel.load("cifar_resnet20_v1")
        return (model, try Bound(model.symbol, weights: model.weights, data: model.input))
    }

    static func argmax(_ a: NDArray) -> [Int] { a.argmaxLastAxis() }

    @Test func bf16RunsNativelyOrSaysItFellBack() throws {
        let (_, bound) = try Self.resnet()
        let (plan, outputs) = try bound.runEngine(EngineOptions(precision: .bf16))
        let framework = try bound.runFramework()
        if CPUEngine.hasNativeBF16 {
            #expect(plan.report.precision == "bf16")
            #expect(plan.report.primitives.filter { $0.kind == "convolution" }.allSatisfy { $0.implementation.contains("bf16") }, "\(plan.report)")
            // bf16 keeps 8 bits of mantissa: a few parts in a thousand per op, a few percent after 20 convs.
            expectClose(outputs[0], framework[0], relative: 5e-2, "bf16 vs fp32")
            #expect(Self.argmax(outputs[0]) == Self.argmax(framework[0]))
        } else {
            #expect(plan.report.precision == "fp32")
            #expect(plan.report.notes.contains { $0.contains("AVX512_BF16") })
            expectClose(outputs[0], framework[0], relative: 1e-4, "fallback fp32")
        }
    }

    @Test(.enabled(if: CPUEngine.hasInt8DotProducts, "this CPU has no VNNI: oneDNN 2.6's AVX2 int8 kernels do not reproduce the hand-quantized arithmetic (up to 20 steps off, measured 2026-12-07); see the closing note of issue 13"))
    func int8ResNetWithMinMaxCalibrationStaysNearFP32() throws {
        let (_, bound) = try Self.resnet()
        let calibrator = try Calibrator(graph: bound.graph, shapes: bound.shapes, types: bound.types, constants: bound.constants, method: .minMax)
        _ = try calibrator.observe(bound.inputs)
        let engine = CPUEngine(options: EngineOptions(precision: .int8), calibration: calibrator.table())
        let plan = try engine.compilePlan(bound.graph, shapes: bound.shapes, types: bound.types, constants: bound.constants)
        #expect(plan.report.precision == "int8")
        #expect(plan.report.primitives.filter { $0.kind == "convolution (int8)" }.count == 21, "\(plan.report)")
        let outputs = try plan.run(bound.inputs, isTrain: false)
        let framework = try bound.runFramework()
        // 21 requantized layers: errors of about 1% of the output scale were measured; 5% is the bound.
        expectClose(outputs[0], framework[0], relative: 5e-2, "int8 vs fp32")
        #expect(Self.argmax(outputs[0]) == Self.argmax(framework[0]))
    }

    /// One conv + activation in int8 against the same arithmetic done by hand: the input quantized to
    /// s8 at 127 / max|x|, each filter to s8 at 127 / max|w_c|, the conv in exact arithmetic on the
    /// quantized numbers (the reference kernel on their dequantized values), the activation, the result
    /// requantized (ReLU: u8 at 255 / max(y); tanh: s8 at 127 / max|y|). The engine must agree to
    /// within one output step.
    @Test(.enabled(if: CPUEngine.hasInt8DotProducts, "this CPU has no VNNI: oneDNN 2.6's AVX2 int8 kernels do not reproduce the hand-quantized arithmetic (up to 20 steps off, measured 2026-12-07); see the closing note of issue 13"),
          arguments: [(channels: 3, filters: 4, kind: ActivationKind.relu), (channels: 16, filters: 8, kind: .relu),
                      (channels: 3, filters: 4, kind: .tanh), (channels: 16, filters: 8, kind: .tanh)])
    func int8ConvMatchesHandQuantizedArithmetic(channels: Int, filters: Int, kind: ActivationKind) throws {
        let conv = Symbol.convolution(.variable("data"), kernel: [3, 3], numFilter: filters, pad: [1, 1], name: "conv")
        let symbol = Symbol.activation(conv, kind: kind, name: "act")
        let x = NDArray.randomNormal(shape: Shape([2, channels, 6, 6]), seed: 3)
        let weight = NDArray.randomNormal(shape: Shape([filters, channels, 3, 3]), std: 0.3, seed: 4)
        let bias = NDArray.randomNormal(shape: Shape([filters]), std: 0.2, seed: 5)
        let weights = ["conv_weight": weight, "conv_bias": bias]
        let bound = try Bound(symbol, weights: weights, data: x)
        let calibrator = try Calibrator(graph: bound.graph, shapes: bound.shapes, types: bound.types, constants: bound.constants, method: .minMax)
        let fp32 = try calibrator.observe(bound.inputs)[0]
        let table = calibrator.table()
        let plan = try CPUEngine(options: EngineOptions(precision: .int8), calibration: table)
            .compilePlan(bound.graph, shapes: bound.shapes, types: bound.types, constants: bound.constants)
        #expect(plan.report.primitives.contains { $0.kind == "convolution (int8)" }, "\(plan.report)")
        let int8 = try plan.run(bound.inputs, isTrain: false)[0]

        // The hand-made simulation.
        let xs = x.floats(), inScale = 127 / (xs.map(abs).max() ?? 1)
        let xq = NDArray(shape: x.shape, values: xs.map { ($0 * inScale).rounded(.toNearestOrEven).clamped(-128, 127) / inScale })
        let ws = weight.floats(), per = ws.count / filters
        var wq = [Float](repeating: 0, count: ws.count)
        for c in 0..<filters {
            let slice = ws[(c * per)..<((c + 1) * per)]
            let s = 127 / (slice.map(abs).max() ?? 1)
            for i in slice.indices { wq[i] = (ws[i] * s).rounded(.toNearestOrEven).clamped(-127, 127) / s }
        }
        let reference = try Bound(symbol, weights: ["conv_weight": NDArray(shape: weight.shape, values: wq), "conv_bias": bias], data: xq)
        let y = try OpByOpBackend.reference.compile(reference.graph, shapes: reference.shapes, types: reference.types, constants: reference.constants)
            .run(reference.inputs, isTrain: false)[0].floats()
        guard let outRange = table.ranges["act"] else { Issue.record("no range for act in \(table.ranges.keys.sorted())"); return }
        let unsigned = outRange.min >= 0
        #expect(unsigned == (kind == .relu))
        let outScale = (unsigned ? 255 : 127) / outRange.threshold
        let expected = y.map { ($0 * outScale).rounded(.toNearestOrEven).clamped(unsigned ? 0 : -128, unsigned ? 255 : 127) / outScale }
        let got = int8.floats()
        let worst = zip(got, expected).map { abs($0 - $1) }.max() ?? 0
        #expect(worst <= 1.01 / outScale, "worst \(worst) vs one step \(1 / outScale)")
        // And the whole is near fp32, as a sanity bound (144 quantized products per output: a few percent).
        expectClose(int8, fp32, relative: 0.1, "int8 conv vs fp32")
    }

    /// int8 with no table: the first batches run in fp32 while ranges are collected, then the int8 plan
    /// takes over; the table is stored in the cache directory and found by the next compile.
    @Test(.enabled(if: CPUEngine.hasInt8DotProducts, "this CPU has no VNNI: oneDNN 2.6's AVX2 int8 kernels do not reproduce the hand-quantized arithmetic (up to 20 steps off, measured 2026-12-07); see the closing note of issue 13"))
    func int8CalibratesOverTheFirstBatchesThenCaches() throws {
        let (_, bound) = try Self.resnet()
        let dir = try temporaryDirectory("calibration")
        defer { try? FileManager.default.removeItem(atPath: dir) }
        var options = EngineOptions(precision: .int8, cacheDirectory: dir)
        options.calibrationBatches = 2
        options.calibrationMethod = .minmax
        let compiled = try CPUEngine(options: options).compile(bound.graph, shapes: bound.shapes, types: bound.types, constants: bound.constants)
        let calibrating = try #require(compiled as? CalibratingPlan)
        let framework = try bound.runFramework()
        for _ in 0..<2 {
            #expect(calibrating.plan == nil)
            expectClose(try calibrating.run(bound.inputs, isTrain: false)[0], framework[0], relative: 1e-6, "calibration batches answer in fp32")
        }
        let plan = try #require(calibrating.plan)
        #expect(plan.report.precision == "int8")
        let stored = try #require(calibrating.storedTable)
        #expect(FileManager.default.fileExists(atPath: stored))
        expectClose(try calibrating.run(bound.inputs, isTrain: false)[0], framework[0], relative: 5e-2, "int8 after calibration")
        let again = try CPUEngine(options: options, usesProcessCache: false)
            .compile(bound.graph, shapes: bound.shapes, types: bound.types, constants: bound.constants)
        #expect(again is EnginePlan)
    }

    /// A table saved to a file is used as is (`calibration_file`); a missing file is an error naming it.
    @Test func int8ReadsACalibrationFile() throws {
        let (_, bound) = try Self.resnet()
        let calibrator = try Calibrator(graph: bound.graph, shapes: bound.shapes, types: bound.types, constants: bound.constants, method: .minMax)
        _ = try calibrator.observe(bound.inputs)
        let dir = try temporaryDirectory("calibration-file")
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let file = dir + "/table.json"
        try calibrator.table().save(to: file)
        var options = EngineOptions(precision: .int8)
        options.calibrationFile = file
        let plan = try #require(try CPUEngine(options: options).compile(bound.graph, shapes: bound.shapes, types: bound.types,
                                                                        constants: bound.constants) as? EnginePlan)
        #expect(plan.report.precision == "int8" && plan.report.primitives.contains { $0.kind == "convolution (int8)" })
        options.calibrationFile = dir + "/missing.json"
        #expect { try CPUEngine(options: options).compile(bound.graph, shapes: bound.shapes, types: bound.types, constants: bound.constants) }
            throws: { "\($0)".contains("missing.json") }
    }

    @Test func int8WithoutRangesRunsFP32AndSaysSo() throws {
        let (_, bound) = try Self.resnet()
        let plan = try bound.engine(EngineOptions(precision: .int8))
        #expect(plan.report.notes.contains { $0.contains("without a calibration table") })
        #expect(!plan.report.primitives.contains { $0.kind.contains("int8") })
    }
}

private extension Float {
    func clamped(_ lo: Float, _ hi: Float) -> Float { Swift.min(Swift.max(self, lo), hi) }
}
