import Foundation
import Kiln
import TestSupport
import Testing

/// The zoo experiment on the LeNet golden fixture (real MXNet 1.9.1 weights and outputs): four
/// images whose labels are set from MXNet's own predictions, three right and one wrong, so that the
/// accuracy is known by hand to be 3/4 in both modes.
@Suite struct ZooExperimentTests {
    func lenet() throws -> (symbol: Symbol, weights: [String: NDArray], images: NDArray, labels: [Int], mxnetClasses: [Int]) {
        let base = Fixtures.url("golden/models/lenet/lenet").path
        let (symbol, args, aux) = try Checkpoint.load(prefix: base, epoch: 0)
        let images = try NDArray.load(npyFile: Fixtures.url("golden/models/lenet/input.npy").path)
        let mxnet = try NDArray.load(npyFile: Fixtures.url("golden/models/lenet/output.npy").path).argmaxLastAxis()
        // Images 0, 1, 2 labelled with MXNet's class (right), image 3 with another class (wrong).
        let labels = [mxnet[0], mxnet[1], mxnet[2], (mxnet[3] + 1) % 10]
        return (symbol, args.merging(aux) { a, _ in a }, images, labels, mxnet)
    }

    @Test func accuracyByHandAndNoDifferenceInFP32() throws {
        let (symbol, weights, images, labels, _) = try lenet()
        // Batch 3: one full batch and one of a single image, padded with zeros, whose padding must not count.
        let dataset = try ArrayDataset(data: images, label: NDArray(shape: [4], dtype: .int32, values: labels.map(Double.init)))
        let loader = try DataLoader(dataset: dataset, batchSize: 3)
        let result = try ZooExperiment.run(name: "lenet", symbol: symbol, weights: weights, data: loader, batch: 3, printBlock: false)
        #expect(result.name == "lenet" && result.images == 4 && result.batch == 3)
        #expect(result.frameworkAccuracy == 0.75)
        #expect(result.engineAccuracy == 0.75)
        #expect(result.accuracyDifference == 0.0)
        #expect(result.disagreements == 0)
        #expect(result.frameworkSeconds > 0 && result.engineSeconds > 0)
        #expect(result.speedUp == result.frameworkSeconds / result.engineSeconds)
    }

    @Test func limitCountsOnlyTheFirstImages() throws {
        let (symbol, weights, images, labels, _) = try lenet()
        let batches = [LabeledBatch(data: images, labels: labels)]
        // The first two images are labelled right: accuracy 1.
        let two = try ZooExperiment.run(name: "lenet", symbol: symbol, weights: weights, batches: batches, batch: 4, limit: 2, printBlock: false)
        #expect(two.images == 2 && two.frameworkAccuracy == 1 && two.engineAccuracy == 1)
        // Wrong label given to image 0 as well: 2 of 4.
        var relabelled = labels
        relabelled[0] = (relabelled[0] + 1) % 10
        let half = try ZooExperiment.run(name: "lenet", symbol: symbol, weights: weights,
                                         batches: [LabeledBatch(data: images, labels: relabelled)], batch: 4, printBlock: false)
        #expect(half.frameworkAccuracy == 0.5 && half.engineAccuracy == 0.5 && half.accuracyDifference == 0)
    }

    @Test func predictionsMatchMXNetInBothModes() throws {
        let (symbol, weights, images, labels, mxnet) = try lenet()
        let inputs = [LabeledBatch(data: images, labels: labels)]
        for mode in [EngineSelection.framework, .cpu(EngineOptions())] {
            let pass = try ZooExperiment.evaluate(symbol: symbol, weights: weights, inputs: inputs, engine: mode)
            #expect(pass.predictions == mxnet, "\(mode)")
            #expect(pass.correct == 3)
        }
    }

    @Test func seedBlockFormat() {
        let r = ZooResult(name: "cifar_resnet56_v1", images: 10000, batch: 16, frameworkSeconds: 12.34, frameworkAccuracy: 0.9301,
                          engineSeconds: 4.01, engineAccuracy: 0.9301, disagreements: 0)
        #expect(r.block == """
            Model: cifar_resnet56_v1
            Pure framework time: 12.34 s, accuracy 0.9301
            Engine time: 4.01 s, accuracy 0.9301
            Speed-up: 3.08x
            Absolute accuracy difference: 0.0000
            """)
    }

    @Test func mismatchedInputsAreErrors() throws {
        let (symbol, weights, images, labels, _) = try lenet()
        #expect(throws: ZooExperimentError.self) {
            try ZooExperiment.run(name: "x", symbol: symbol, weights: weights,
                                  batches: [LabeledBatch(data: images, labels: Array(labels.prefix(3)))], batch: 4, printBlock: false)
        }
        #expect(throws: ZooExperimentError.self) {
            try ZooExperiment.run(name: "x", symbol: symbol, weights: weights,
                                  batches: [LabeledBatch(data: images, labels: labels)], batch: 2, printBlock: false)
        }
    }
}
