import ArgumentParser
import Foundation
import Kiln

/// The seed's hello world: LeNet-5 trained on MNIST with the symbolic API, saved, loaded back and
/// scored on the 10,000 test images.
struct LeNet: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "lenet",
        abstract: "Train LeNet-5 on MNIST, save the checkpoint, load it back and report test accuracy.")

    @Option(help: "The folder holding MNIST (IDX or CSV files); default $KILN_DATA_DIR/mnist, else ~/.kiln/data/mnist.")
    var dataDir: String?
    @Option(parsing: .unconditional, help: "Training epochs.") var epochs: Int = 5
    @Option(parsing: .unconditional, help: "Examples per batch.") var batchSize: Int = 128
    @Option(parsing: .unconditional, help: "SGD learning rate.") var learningRate: Double = 0.05
    @Option(parsing: .unconditional, help: "SGD momentum.") var momentum: Double = 0.9
    @Option(parsing: .unconditional, help: "Weight decay.") var weightDecay: Double = 0.0001
    @Option(parsing: .unconditional, help: "Seed for initialization and shuffling.") var seed: UInt64 = 42
    @Option(help: "Checkpoint prefix; PREFIX-symbol.json and PREFIX-EPOCH.params are written.")
    var prefix: String = "lenet"

    /// LeNet-5 as in MXNet's TensorRT test.
    static func symbol() -> Symbol {
        var x = Symbol.variable("data")
        x = .convolution(x, kernel: [5, 5], numFilter: 20, name: "conv1")
        x = .activation(x, kind: .tanh, name: "tanh1")
        x = .pooling(x, kernel: [2, 2], poolType: .max, stride: [2, 2], name: "pool1")
        x = .convolution(x, kernel: [5, 5], numFilter: 50, name: "conv2")
        x = .activation(x, kind: .tanh, name: "tanh2")
        x = .pooling(x, kernel: [2, 2], poolType: .max, stride: [2, 2], name: "pool2")
        x = .flatten(x, name: "flatten")
        x = .fullyConnected(x, numHidden: 500, name: "fc1")
        x = .activation(x, kind: .tanh, name: "tanh3")
        x = .fullyConnected(x, numHidden: 10, name: "fc2")
        return .softmaxOutput(x, name: "softmax")
    }

    /// Top-1 accuracy of a bound checkpoint over one pass of an iterator.
    static func accuracy(_ symbol: Symbol, _ params: [String: NDArray], _ data: any DataIter, engine: EngineSelection) throws -> Double {
        var shapes: [String: Shape] = [:]
        for d in data.provideData + data.provideLabel { shapes[d.name] = d.shape }
        let exec = try symbol.simpleBind(shapes: shapes, sharedBuffer: params, engine: engine)
        data.reset()
        var correct = 0, total = 0
        while let batch = try data.next() {
            for (d, array) in zip(data.provideData, batch.data) { exec.argDict[d.name] = array }
            try exec.forward()
            let predicted = exec.outputs[0].argmaxLastAxis()
            let labels = batch.label[0].floats()
            let n = predicted.count - batch.pad
            for i in 0..<n where predicted[i] == Int(labels[i]) { correct += 1 }
            total += n
        }
        return total == 0 ? 0 : Double(correct) / Double(total)
    }

    func validate() throws {
        try requireOption(epochs >= 1 && epochs <= 10_000, "--epochs", epochs, "give a count from 1 to 10000")
        try requireOption(batchSize >= 1 && batchSize <= 65_536, "--batch-size", batchSize, "give a batch size from 1 to 65536")
        try requireOption(learningRate.isFinite && learningRate > 0, "--learning-rate", learningRate, "give a finite rate above 0")
        try requireOption(momentum.isFinite && momentum >= 0 && momentum < 1, "--momentum", momentum, "give a momentum from 0 up to (not including) 1")
        try requireOption(weightDecay.isFinite && weightDecay >= 0, "--weight-decay", weightDecay, "give a finite decay of 0 or more")
    }

    func run() throws {
        try reportingErrors {
            let env = ProcessInfo.processInfo.environment
            let dir = dataDir ?? ((env["KILN_DATA_DIR"] ?? (NSHomeDirectory() + "/.kiln/data")) + "/mnist")
            print("MNIST from \(dir)")
            let train = try MNISTData(directory: dir, split: .train)
            let test = try MNISTData(directory: dir, split: .test)
            print("training LeNet-5 on \(train.count) images, testing on \(test.count); batch \(batchSize), \(epochs) epochs")
            let trainIter = try MNISTIter(data: train, batchSize: batchSize, shuffle: true, seed: seed)
            let testIter = try MNISTIter(data: test, batchSize: 100, shuffle: false, seed: seed)

            let module = try Module(symbol: Self.symbol())
            let start = Date()
            let summaries = try module.fit(
                trainData: trainIter, evalData: testIter, epochs: epochs,
                optimizer: SGD(learningRate: learningRate, momentum: momentum, weightDecay: weightDecay),
                initializer: Xavier(randomType: .gaussian, factorType: .fanIn, magnitude: 2),
                seed: seed, checkpointPrefix: prefix)
            let seconds = Date().timeIntervalSince(start)
            print(String(format: "trained in %.1f s", seconds))
            guard let last = summaries.last else { throw ValidationError("No epoch ran; give --epochs 1 or more.") }

            // The seed's check: load the checkpoint back and score it with the same iterator.
            let epoch = last.epoch + 1
            let loaded = try Module.load(prefix: prefix, epoch: epoch)
            try loaded.bind(dataShapes: testIter.provideData, labelShapes: testIter.provideLabel, forTraining: false)
            let accuracy = try loaded.score(data: testIter)
            print("checkpoint \(Checkpoint.paths(prefix: prefix, epoch: epoch).params)")

            // As the seed's test does: the same checkpoint and iterator, bound once without and once
            // with the engine (options from KILN_ENGINE_*), accuracies side by side.
            let (symbol, args, aux) = try Checkpoint.load(prefix: prefix, epoch: epoch)
            let options = try EngineOptions(environment: env)
            let frameworkAccuracy = try Self.accuracy(symbol, args.merging(aux) { a, _ in a }, testIter, engine: .framework)
            let engineAccuracy = try Self.accuracy(symbol, args.merging(aux) { a, _ in a }, testIter, engine: .cpu(options))
            print(String(format: "Module.score accuracy:  %.4f", accuracy.value))
            print(String(format: "Framework accuracy:     %.4f", frameworkAccuracy))
            print(String(format: "Engine accuracy:        %.4f", engineAccuracy))
            print(String(format: "difference:             %.4f", abs(engineAccuracy - frameworkAccuracy)))
        }
    }
}
