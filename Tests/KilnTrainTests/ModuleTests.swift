import Foundation
import KilnCore
import KilnGraph
import KilnRuntime
import KilnTrain
import Synchronization
import Testing

/// Module end to end on real ops: training on separable data, checkpoints, prediction and scoring
/// with padded batches, the update rule it applies, progress output, and misuse.
@Suite struct ModuleTests {
    /// The backend the tests train on: the framework's, as users get by default.
    static let backend: any Backend = OpByOpBackend.framework

    /// data (n, 4) -> FullyConnected(2) -> SoftmaxOutput
    static func linearClassifier() -> Symbol {
        let fc = Symbol.fullyConnected(.variable("data"), numHidden: 2, name: "fc")
        return Symbol.make("SoftmaxOutput", [fc, .variable("softmax_label")], name: "softmax")
    }

    static func module(_ symbol: Symbol = linearClassifier()) throws -> Module {
        try Module(symbol: symbol, dataNames: ["data"], labelNames: ["softmax_label"], backend: backend)
    }

    static let train = gaussianBlobs(count: 300, seed: 1)
    static let validation = gaussianBlobs(count: 100, seed: 2)

    static func temporaryDirectory() throws -> URL {
        let url = FileManager.default.temporaryDirectory.appendingPathComponent("kiln-train-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: url, withIntermediateDirectories: true)
        return url
    }

    // MARK: Training

    @Test func fitSeparatesGaussianBlobs() throws {
        // 300 examples in batches of 32: 9 full batches and one with 12 examples and 20 padded rows.
        let trainIter = ArrayIter(data: Self.train.data, label: Self.train.label, batchSize: 32)
        let validationIter = ArrayIter(data: Self.validation.data, label: Self.validation.label, batchSize: 32)
        let module = try Self.module()
        // Xavier with seed 9 happens to point the classifier the wrong way: 0% before training, so
        // passing needs the gradients to flow (other seeds start anywhere from 0% to 100%).
        try module.bind(dataShapes: trainIter.provideData, labelShapes: trainIter.provideLabel)
        try module.initParams(initializer: Xavier(), seed: 9)
        let initial = try module.score(data: validationIter)
        #expect(initial.value < 0.1, "accuracy before training \(initial.value)")
        let summaries = try module.fit(trainData: trainIter, evalData: validationIter, epochs: 8,
                                       optimizer: SGD(learningRate: 0.5, momentum: 0.9), progress: .silent)
        #expect(summaries.count == 8)
        let first = try #require(summaries.first), last = try #require(summaries.last)
        #expect(last.batches == 10 && last.samples == 300, "every example once per epoch, padding not counted")
        let validationAccuracy = try #require(last.validationMetric?.value)
        #expect(validationAccuracy > 0.95, "validation accuracy \(validationAccuracy)")
        #expect(last.trainMetric.value > 0.95)
        let firstLoss = try #require(first.trainLoss), lastLoss = try #require(last.trainLoss)
        #expect(lastLoss < firstLoss, "loss \(firstLoss) -> \(lastLoss)")
        #expect(lastLoss < 0.2)
    }

    @Test func fitWithBatchNormMatchesMXNetsModuleIncludingMovingStatistics() throws {
        // FullyConnected -> BatchNorm (fix_gamma False, momentum 0.8) -> relu -> FullyConnected -> SoftmaxOutput,
        // 2 epochs of SGD on the golden data in padded batches of 4: parameters and moving statistics.
        let golden = try TrainGolden.load("module")
        let bn = try #require(golden["batchnorm"] as? [String: Any])
        let data = NDArray(shape: Shape(ints(golden["data_shape"])), values: floats(golden["data"]))
        let label = NDArray(shape: [data.shape[0]], values: floats(golden["label"]))
        let shapes = try #require(bn["shapes"] as? [String: Any])
        func arrays(_ key: String) throws -> [String: NDArray] {
            let values = try #require(bn[key] as? [String: Any])
            return Dictionary(uniqueKeysWithValues: values.map { ($0.key, NDArray(shape: Shape(ints(shapes[$0.key])), values: floats($0.value))) })
        }
        var h = Symbol.fullyConnected(.variable("data"), numHidden: 5, name: "fc1")
        h = Symbol.batchNorm(h, momentum: 0.8, fixGamma: false, name: "bn")
        h = Symbol.make("Activation", [h], attributes: ["act_type": "relu"], name: "relu")
        h = Symbol.fullyConnected(h, numHidden: 3, name: "fc2")
        let module = try Self.module(Symbol.make("SoftmaxOutput", [h, .variable("softmax_label")], name: "softmax"))
        var after: [(argParams: [String: NDArray], auxParams: [String: NDArray])] = []
        try module.fit(trainData: ArrayIter(data: data, label: label, batchSize: 4), epochs: 2,
                       optimizer: SGD(learningRate: 0.1, momentum: 0.9, weightDecay: 0.01),
                       argParams: try arrays("initial"), auxParams: try arrays("initial_aux"), progress: .silent,
                       epochEndCallback: { _ in after.append(module.getParams()) })
        let expected = try #require(bn["after_epoch"] as? [[String: [String: Any]]])
        #expect(after.count == 2 && expected.count == 2)
        for (epoch, (mine, theirs)) in zip(after, expected).enumerated() {
            for (kind, mineArrays) in [("arg", mine.argParams), ("aux", mine.auxParams)] {
                let theirArrays = try #require(theirs[kind])
                #expect(Set(mineArrays.keys) == Set(theirArrays.keys))
                for (name, value) in theirArrays {
                    let a = try #require(mineArrays[name]).doubles(), e = doubles(value)
                    for (x, y) in zip(a, e) { #expect(abs(x - y) < 1e-4, "epoch \(epoch) \(kind) \(name): \(a) vs MXNet \(e)") }
                }
            }
        }
    }

    @Test func fitTakesAShortLastBatch() throws {
        // 300 examples in batches of 32 served short: 9 batches of 32 and one of 12, on a reshaped executor.
        let trainIter = ArrayIter(data: Self.train.data, label: Self.train.label, batchSize: 32, lastBatch: .short)
        let module = try Self.module()
        let summaries = try module.fit(trainData: trainIter, epochs: 3, optimizer: SGD(learningRate: 0.5, momentum: 0.9),
                                       initializer: Xavier(), seed: 9, progress: .silent)
        #expect(summaries.map(\.samples) == [300, 300, 300])
        #expect(summaries.map(\.batches) == [10, 10, 10])
        #expect(try #require(summaries.last).trainMetric.value > 0.95)
        #expect(module.outputs.first?.shape == [12, 2], "the last forward ran the short batch")
    }

    @Test func updateAppliesTheOptimizerWithGradientsRescaledByTheBatchSize() throws {
        // With SGD (lr 0.5, no momentum, no decay), Module's update is w -= 0.5 / 32 * gradient.
        let module = try Self.module()
        let iter = ArrayIter(data: Self.train.data, label: Self.train.label, batchSize: 32)
        try module.bind(dataShapes: iter.provideData, labelShapes: iter.provideLabel)
        try module.initParams(initializer: Xavier(), seed: 3)
        let sgd = SGD(learningRate: 0.5)
        try module.initOptimizer(sgd)
        #expect(sgd.rescaleGradient == 1.0 / 32)
        #expect(sgd.weightDecayMultipliers["fc_bias"] == 0, "MXNet's Module decays only *_weight and *_gamma")
        let before = module.getParams().argParams
        let batch = try #require(try iter.next())
        try module.forward(batch, isTrain: true)
        try module.backward()
        let gradients = module.gradients
        try module.update()
        let after = module.getParams().argParams
        for name in ["fc_weight", "fc_bias"] {
            let w0 = try #require(before[name]).floats(), w1 = try #require(after[name]).floats()
            let g = try #require(gradients[name]).floats()
            #expect(g.contains { $0 != 0 }, "\(name) has a gradient")
            for i in w0.indices { #expect(abs(w1[i] - (w0[i] - 0.5 / 32 * g[i])) < 1e-6, "\(name)[\(i)]") }
        }
    }

    @Test(arguments: ["sgd_momentum_wd", "nag_clip", "adam_wd"])
    func fitMatchesMXNetsModule(_ caseName: String) throws {
        // MXNet 1.9.1's Module.fit from the same weights on the same 10 examples in batches of 4 (the
        // last padded with examples 0 and 1): the parameters after each of 2 epochs.
        let golden = try TrainGolden.load("module")
        let c = try #require((golden["cases"] as? [[String: Any]])?.first { $0["name"] as? String == caseName })
        let data = NDArray(shape: Shape(ints(golden["data_shape"])), values: floats(golden["data"]))
        let label = NDArray(shape: [data.shape[0]], values: floats(golden["label"]))
        let initial = try #require(golden["initial"] as? [String: Any])
        let k = try #require(c["kwargs"] as? [String: Any])
        let lr = number(k["learning_rate"]), wd = number(k["wd"]) ?? 0, clip = number(k["clip_gradient"])
        let optimizer: Optimizer
        switch c["optimizer"] as? String {
        case "sgd": optimizer = SGD(learningRate: lr, momentum: number(k["momentum"]) ?? 0, weightDecay: wd, clipGradient: clip)
        case "nag": optimizer = NAG(learningRate: lr, momentum: number(k["momentum"]) ?? 0, weightDecay: wd, clipGradient: clip)
        default: optimizer = Adam(learningRate: lr ?? 0.001, weightDecay: wd, clipGradient: clip)
        }
        let fc = Symbol.fullyConnected(.variable("data"), numHidden: 3, name: "fc")
        let module = try Self.module(Symbol.make("SoftmaxOutput", [fc, .variable("softmax_label")], name: "softmax"))
        var after: [[String: NDArray]] = []
        try module.fit(trainData: ArrayIter(data: data, label: label, batchSize: 4), epochs: 2, optimizer: optimizer,
                       argParams: ["fc_weight": NDArray(shape: [3, 4], values: floats(initial["fc_weight"])),
                                   "fc_bias": NDArray(shape: [3], values: floats(initial["fc_bias"]))],
                       progress: .silent, epochEndCallback: { _ in after.append(module.getParams().argParams) })
        let expected = try #require(c["params_after_epoch"] as? [[String: Any]])
        #expect(after.count == 2 && expected.count == 2)
        for (epoch, (mine, theirs)) in zip(after, expected).enumerated() {
            for name in ["fc_weight", "fc_bias"] {
                let a = try #require(mine[name]).doubles(), e = doubles(theirs[name])
                #expect(a.count == e.count)
                for (x, y) in zip(a, e) { #expect(abs(x - y) < 1e-5, "\(caseName) epoch \(epoch) \(name): \(a) vs MXNet \(e)") }
            }
        }
    }

    // MARK: Prediction and scoring with padding

    /// Softmax of data · weightᵀ + bias, row by row, from the module's parameters.
    static func expectedProbabilities(_ data: NDArray, _ params: [String: NDArray]) throws -> [[Double]] {
        let w = try #require(params["fc_weight"]).doubles(), b = try #require(params["fc_bias"]).doubles()
        let x = data.doubles(), features = data.shape[1], classes = b.count
        return (0..<data.shape[0]).map { r in
            let z = (0..<classes).map { c in b[c] + (0..<features).reduce(0) { $0 + x[r * features + $1] * w[c * features + $1] } }
            let m = z.max() ?? 0
            let e = z.map { Foundation.exp($0 - m) }
            let s = e.reduce(0, +)
            return e.map { $0 / s }
        }
    }

    @Test(arguments: [ArrayIter.LastBatch.pad, .short])
    func predictReturnsEveryExampleOnceInOrder(_ lastBatch: ArrayIter.LastBatch) throws {
        // 100 examples in batches of 32: the last batch has 4 examples (28 padded rows, or a short batch).
        let module = try Self.module()
        let iter = ArrayIter(data: Self.validation.data, label: Self.validation.label, batchSize: 32, lastBatch: lastBatch)
        try module.bind(dataShapes: iter.provideData, labelShapes: iter.provideLabel, forTraining: false)
        try module.initParams(initializer: Xavier(), seed: 9)
        let predicted = try module.predict(data: iter)
        #expect(predicted.shape == [100, 2])
        let expected = try Self.expectedProbabilities(Self.validation.data, module.getParams().argParams)
        let p = predicted.doubles()
        for r in 0..<100 { for c in 0..<2 { #expect(abs(p[r * 2 + c] - expected[r][c]) < 1e-5, "row \(r)") } }
    }

    /// Inference needs no label (MXNet's `Module.predict`): bound without label shapes and fed batches
    /// without labels, the module predicts what it predicts with them.
    @Test func predictWithoutLabels() throws {
        let module = try Self.module()
        let unlabelled = ArrayIter(data: Self.validation.data, label: nil, batchSize: 25)
        try module.bind(dataShapes: unlabelled.provideData, forTraining: false)
        try module.initParams(initializer: Xavier(), seed: 12)
        let predicted = try module.predict(data: unlabelled)
        let expected = try Self.expectedProbabilities(Self.validation.data, module.getParams().argParams)
        let p = predicted.doubles()
        #expect(predicted.shape == [100, 2])
        for r in 0..<100 { for c in 0..<2 { #expect(abs(p[r * 2 + c] - expected[r][c]) < 1e-5, "row \(r)") } }
    }

    @Test func scoreCountsEachExampleOnce() throws {
        let module = try Self.module()
        let iter = ArrayIter(data: Self.validation.data, label: Self.validation.label, batchSize: 32)
        try module.bind(dataShapes: iter.provideData, labelShapes: iter.provideLabel, forTraining: false)
        try module.initParams(initializer: Xavier(), seed: 11)
        // Accuracy by hand from the expected probabilities over the 100 examples (not 128 rows).
        let expected = try Self.expectedProbabilities(Self.validation.data, module.getParams().argParams)
        let labels = Self.validation.label.floats()
        let correct = expected.indices.filter { r in (expected[r][1] > expected[r][0] ? 1 : 0) == Int(labels[r]) }.count
        let accuracy = Accuracy()
        let score = try module.score(data: iter, metric: accuracy)
        #expect(score.name == "accuracy")
        #expect(accuracy.instanceCount == 100)
        #expect(abs(score.value - Double(correct) / 100) < 1e-12)
    }

    // MARK: Checkpoints

    @Test func checkpointRoundTrip() throws {
        let dir = try Self.temporaryDirectory()
        defer { try? FileManager.default.removeItem(at: dir) }
        let prefix = dir.appendingPathComponent("blobs").path
        let module = try Self.module()
        let trainIter = ArrayIter(data: Self.train.data, label: Self.train.label, batchSize: 50)
        try module.fit(trainData: trainIter, epochs: 2, optimizer: SGD(learningRate: 0.1, momentum: 0.9),
                       initializer: Xavier(), progress: .silent, checkpointPrefix: prefix)
        // MXNet's do_checkpoint names the file after epoch i `PREFIX-(i+1).params`.
        for file in ["blobs-symbol.json", "blobs-0001.params", "blobs-0002.params"] {
            #expect(FileManager.default.fileExists(atPath: dir.appendingPathComponent(file).path), "\(file)")
        }
        let saved = try NDArray.loadParams(from: dir.appendingPathComponent("blobs-0002.params").path)
        #expect(Set(saved.map(\.name)) == ["arg:fc_weight", "arg:fc_bias"])

        let loaded = try Module.load(prefix: prefix, epoch: 2, backend: Self.backend)
        let iter = ArrayIter(data: Self.validation.data, label: Self.validation.label, batchSize: 32)
        try loaded.bind(dataShapes: iter.provideData, labelShapes: iter.provideLabel, forTraining: false)
        for (name, value) in module.getParams().argParams {
            #expect(try #require(loaded.getParams().argParams[name]).floats() == value.floats(), "\(name)")
        }
        #expect(try loaded.predict(data: iter).floats() == module.predict(data: iter).floats())
    }

    // MARK: Parameters

    @Test func initParamsFollowsMXNetsRules() throws {
        // fc_bias -> 0; fc_weight -> Xavier; a variable with __init__ uses it; given values win.
        let scale = Symbol.variable("scale", shape: [1], attributes: ["__init__": #"["constant", {"value": 0.25}]"#])
        let fc = Symbol.fullyConnected(.variable("data"), numHidden: 3, name: "fc")
        let net = Symbol.make("SoftmaxOutput", [Symbol.make("broadcast_mul", [fc, scale]), .variable("softmax_label")], name: "softmax")
        let module = try Self.module(net)
        try module.bind(dataShapes: [DataDescription(name: "data", shape: [4, 5])],
                        labelShapes: [DataDescription(name: "softmax_label", shape: [4])])
        #expect(module.parameterNames == ["fc_weight", "fc_bias", "scale"])
        try module.initParams(initializer: Xavier())
        let p = module.getParams().argParams
        #expect(try #require(p["fc_bias"]).floats() == [0, 0, 0])
        #expect(try #require(p["scale"]).floats() == [0.25])
        // Xavier bound for (3, 5): sqrt(3 / 4) = 0.866
        let w = try #require(p["fc_weight"]).floats()
        #expect(w.allSatisfy { abs($0) < 0.8661 } && w.contains { $0 != 0 })

        let given = NDArray(shape: [3], values: [1, 2, 3])
        try module.initParams(initializer: Xavier(), argParams: ["fc_bias": given], allowMissing: true, forceInit: true)
        #expect(try #require(module.getParams().argParams["fc_bias"]).floats() == [1, 2, 3])
        #expect(throws: KilnTrainError.missingParameter(name: "fc_weight")) {
            try module.initParams(argParams: ["fc_bias": given], forceInit: true)
        }
        #expect(throws: KilnTrainError.self) {
            try module.initParams(argParams: ["fc_bias": NDArray(zeros: [4])], allowMissing: true, forceInit: true)
        }
    }

    // MARK: Progress

    final class Captured: Sendable {
        let text = Mutex<String>("")
        func append(_ s: String) { text.withLock { $0 += s } }
    }

    @Test func progressPrintsLinesEveryIntervalAndASummaryPerEpoch() throws {
        let captured = Captured()
        let progress = TrainingProgress(inPlace: false, interval: 4) { captured.append($0) }
        let module = try Self.module()
        let trainIter = ArrayIter(data: Self.train.data, label: Self.train.label, batchSize: 32)
        let validationIter = ArrayIter(data: Self.validation.data, label: Self.validation.label, batchSize: 32)
        try module.fit(trainData: trainIter, evalData: validationIter, epochs: 2, optimizer: SGD(learningRate: 0.1),
                       initializer: Xavier(), progress: progress)
        let lines = captured.text.withLock { $0 }.split(separator: "\n").map(String.init)
        // 10 batches an epoch: lines at batches 4 and 8, then the summary; the count is known from epoch 2.
        #expect(lines.count == 6, "\(lines)")
        #expect(lines[0].hasPrefix("Epoch 1/2  batch 4  loss "))
        #expect(lines[0].contains("accuracy") && lines[0].hasSuffix("samples/s"))
        #expect(lines[2].hasPrefix("Epoch 1/2  train loss "))
        #expect(lines[2].contains("train accuracy") && lines[2].contains("validation accuracy") && lines[2].hasSuffix(" s"))
        #expect(lines[3].hasPrefix("Epoch 2/2  batch 4/10  loss "))
        #expect(!captured.text.withLock { $0 }.contains("\r"))
    }

    @Test func progressOnATerminalRewritesOneLine() throws {
        let captured = Captured()
        let progress = TrainingProgress(inPlace: true) { captured.append($0) }
        let module = try Self.module()
        let trainIter = ArrayIter(data: Self.train.data, label: Self.train.label, batchSize: 32)
        try module.fit(trainData: trainIter, epochs: 1, optimizer: SGD(learningRate: 0.1), initializer: Xavier(), progress: progress)
        let text = captured.text.withLock { $0 }
        // Everything before the summary's newline is carriage-return rewrites; the summary ends the line.
        #expect(text.hasPrefix("\r"))
        #expect(text.hasSuffix("\n") && text.filter { $0 == "\n" }.count == 1)
        #expect(text.contains("Epoch 1/1  train loss"))
    }

    // MARK: Misuse

    @Test func callsOutOfOrderAreRefused() throws {
        let module = try Self.module()
        let iter = ArrayIter(data: Self.train.data, label: Self.train.label, batchSize: 32)
        let batch = try #require(try iter.next())
        #expect(throws: KilnTrainError.notReady(operation: "forward", needs: "bind")) { try module.forward(batch) }
        #expect(throws: KilnTrainError.notReady(operation: "initParams", needs: "bind")) { try module.initParams() }
        try module.bind(dataShapes: iter.provideData, labelShapes: iter.provideLabel)
        #expect(throws: KilnTrainError.notReady(operation: "forward", needs: "initParams")) { try module.forward(batch) }
        try module.initParams(initializer: Xavier())
        try module.forward(batch, isTrain: false)
        #expect(throws: KilnTrainError.notReady(operation: "backward", needs: "forward(isTrain: true)")) { try module.backward() }
        #expect(throws: KilnTrainError.notReady(operation: "update", needs: "initOptimizer")) { try module.update() }
        #expect(throws: KilnTrainError.self) { try Module(symbol: Self.linearClassifier(), dataNames: ["pixels"]) }
        #expect(throws: KilnTrainError.self) {
            try module.bind(dataShapes: [DataDescription(name: "image", shape: [2, 4])])
        }
    }
}
