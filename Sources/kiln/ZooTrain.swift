import ArgumentParser
import Foundation
import Kiln

/// Trains a CIFAR model-zoo network (an exported symbol, gluoncv's architecture and names) on
/// Fashion-MNIST-32 (docs/ZOO.md) with Kiln's own training path (`Module.fit`, framework backend), saving a
/// checkpoint and the test accuracy after every epoch.
struct ZooTrain: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "zoo-train",
        abstract: "Train a CIFAR zoo network (exported symbol) on Fashion-MNIST padded to 3x32x32, with SGD and a cosine schedule.")

    @Option(help: "A zoo network (cifar_resnet20_v1, ...): traced with Kiln's model zoo; its weights are also written in Gluon's format as PREFIX.params.")
    var model: String?
    @Option(help: "Or a symbol JSON (its output: the class scores, as gluoncv exports it).") var symbol: String?
    @Option(help: "Checkpoint prefix: PREFIX-symbol.json and PREFIX-EPOCH.params after every epoch.") var prefix: String
    @Option(help: "Directory with Fashion-MNIST's IDX files (default: $KILN_DATA_DIR/fashion-mnist, then /usr/share/datasets/fashion-mnist).")
    var dataDir: String?
    @Option(parsing: .unconditional, help: "Training epochs.") var epochs: Int = 12
    @Option(parsing: .unconditional, help: "Batch size.") var batchSize: Int = 128
    @Option(parsing: .unconditional, help: "Peak learning rate (cosine decay to 0 over the run).") var learningRate: Double = 0.1
    @Option(parsing: .unconditional, help: "Weight decay.") var weightDecay: Double = 1e-4
    @Option(parsing: .unconditional, help: "Random seed (initialization and shuffling).") var seed: UInt64 = 1
    @Option(parsing: .unconditional, help: "Train on the first N training images only (a smoke test).") var limit: Int?

    /// A split of Fashion-MNIST through the zoo's data pipeline (`Vision.FashionMNIST` with the
    /// `FashionMNIST32` transform, as `kiln zoo` tests with), stacked into (N, 3, 32, 32) and (N,) arrays.
    static func arrays(root: String?, train: Bool, limit: Int?) throws -> (NDArray, NDArray) {
        let set = try Vision.FashionMNIST(root: root, train: train).transformFirst(FashionMNIST32())
        let n = min(limit ?? set.count, set.count)
        var values = [Float](), labels = [Float]()
        values.reserveCapacity(n * 3 * 32 * 32)
        for i in 0..<n {
            let sample = try set.item(at: i)
            values += sample.data.floats()
            labels.append(sample.label.floats().first ?? 0)
        }
        return (NDArray(shape: [n, 3, 32, 32], values: values), NDArray(shape: [n], values: labels))
    }

    func validate() throws {
        try requireOption(epochs >= 1 && epochs <= 10_000, "--epochs", epochs, "give a count from 1 to 10000")
        try requireOption(batchSize >= 1 && batchSize <= 65_536, "--batch-size", batchSize, "give a batch size from 1 to 65536")
        try requireOption(learningRate.isFinite && learningRate > 0, "--learning-rate", learningRate, "give a finite rate above 0")
        try requireOption(weightDecay.isFinite && weightDecay >= 0, "--weight-decay", weightDecay, "give a finite decay of 0 or more")
        try requireOption(limit.map { $0 >= 1 } ?? true, "--limit", limit ?? 0, "give a count of at least 1")
    }

    func run() throws {
        try reportingErrors {
            guard (model == nil) != (symbol == nil) else { throw ValidationError("Give either --model NAME or --symbol FILE.") }
            let net = try model.map { try ModelZoo.get($0).symbol() } ?? Symbol.load(jsonFile: symbol ?? "")
            let folder = (prefix as NSString).deletingLastPathComponent
            if !folder.isEmpty { try FileManager.default.createDirectory(atPath: folder, withIntermediateDirectories: true) }
            let (trainX, trainY) = try Self.arrays(root: dataDir, train: true, limit: limit)
            let (testX, testY) = try Self.arrays(root: dataDir, train: false, limit: nil)
            let n = trainX.shape[0]
            let trainIter = try NDArrayIter(data: trainX, label: trainY, batchSize: batchSize, shuffle: true, seed: seed)
            let testIter = try NDArrayIter(data: testX, label: testY, batchSize: 500)
            let head = Symbol.softmaxOutput(net, label: .variable("softmax_label"), name: "softmax")
            let module = try Module(symbol: head)
            let updatesPerEpoch = (n + batchSize - 1) / batchSize
            let scheduler = try CosineScheduler(maxUpdate: max(2, epochs * updatesPerEpoch), baseLearningRate: learningRate,
                                                warmup: Warmup(steps: min(updatesPerEpoch, epochs * updatesPerEpoch - 1)))
            print("training \(model ?? symbol ?? "") on Fashion-MNIST-32: \(n) images, \(epochs) epochs of \(updatesPerEpoch) batches of \(batchSize); SGD lr \(learningRate) (cosine, 1 epoch warm-up), momentum 0.9, wd \(weightDecay)")
            let start = Date()
            _ = try module.fit(trainData: trainIter, evalData: testIter, epochs: epochs,
                               optimizer: SGD(momentum: 0.9, scheduler: scheduler, weightDecay: weightDecay),
                               initializer: Xavier(randomType: .gaussian, factorType: .fanIn, magnitude: 2), seed: seed,
                               progress: .standardError(interval: 100),
                               epochEndCallback: { s in
                                   let acc = s.validationMetric.map { String(format: "%.4f", $0.value) } ?? "-"
                                   // Through standard error, unbuffered, so that a log shows each epoch as it ends.
                                   FileHandle.standardError.write(Data(String(format: "epoch %d: train accuracy %.4f, test accuracy %@, %.0f s so far\n",
                                                                              s.epoch, s.trainMetric.value, acc, Date().timeIntervalSince(start)).utf8))
                               },
                               checkpointPrefix: prefix)
            print(String(format: "trained in %.0f s", Date().timeIntervalSince(start)))
            if let model {
                let file = try ZooImport.gluonParameters(model: model, checkpoint: prefix, epoch: epochs, output: prefix + ".params")
                print("Gluon parameters for ModelZoo.get(\"\(model)\", pretrained: true): \(file)")
            }
        }
    }
}

/// Turns a checkpoint of a zoo network (as `kiln zoo-train` or MXNet's Module saves it: full names
/// with arg:/aux: prefixes) into the Gluon parameter file `ModelZoo.get(name, pretrained: true)`
/// reads (structural names, as gluoncv's `save_parameters`).
struct ZooImport: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "zoo-import",
        abstract: "Write a zoo network's checkpoint (PREFIX-EPOCH.params) as Gluon's NAME.params for ModelZoo.get(NAME, pretrained: true).")

    @Option(help: "The zoo network (cifar_resnet20_v1, ...).") var model: String
    @Option(help: "The checkpoint prefix.") var checkpoint: String
    @Option(parsing: .unconditional, help: "The checkpoint's epoch.") var epoch: Int
    @Option(help: "The Gluon parameter file to write (default: MODEL_DIR/MODEL.params).") var output: String?

    /// Loads the checkpoint's arrays into the zoo network by full name and saves them by structure.
    static func gluonParameters(model: String, checkpoint: String, epoch: Int, output: String) throws -> String {
        let net = try ModelZoo.get(model)
        let (_, args, aux) = try Checkpoint.load(prefix: checkpoint, epoch: epoch)
        let params = net.collectParams()
        // The checkpoint also holds what the training head added (none has weights here); keep the net's own.
        let arrays = args.merging(aux) { a, _ in a }.filter { params.names.contains($0.key) }
        try params.setData(arrays, source: Checkpoint.paths(prefix: checkpoint, epoch: epoch).params)
        let folder = (output as NSString).deletingLastPathComponent
        if !folder.isEmpty { try FileManager.default.createDirectory(atPath: folder, withIntermediateDirectories: true) }
        try net.saveParameters(to: output)
        return output
    }

    func validate() throws {
        try requireOption(epoch >= 0, "--epoch", epoch, "give an epoch from 0")
    }

    func run() throws {
        try reportingErrors {
            let file = output ?? (ModelZoo.modelDirectory() as NSString).appendingPathComponent(model + ".params")
            print(try Self.gluonParameters(model: model, checkpoint: checkpoint, epoch: epoch, output: file))
        }
    }
}
