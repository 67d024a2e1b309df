import Foundation
import KilnCore
import KilnTrain
import Testing

/// Metrics on hand-worked batches, with padding, and against MXNet 1.9.1 on the golden batches.
@Suite struct MetricTests {
    /// Four examples, three classes. Row maxima: class 0, 2, 1, 1. Labels 0, 1, 1, 2.
    static let probabilities = NDArray(shape: [4, 3], values: [
        0.7, 0.2, 0.1,
        0.1, 0.3, 0.6,
        0.2, 0.5, 0.3,
        0.3, 0.4, 0.3,
    ])
    static let labels = NDArray(shape: [4], values: [0, 1, 1, 2])

    @Test func accuracyWorkedByHand() throws {
        // Rows 0 and 2 are right: 2 / 4.
        let m = Accuracy()
        try m.update(labels: [Self.labels], predictions: [Self.probabilities])
        #expect(m.get().name == "accuracy")
        #expect(m.get().value == 0.5)
        // A second batch with 1 right of 2 adds up: 3 / 6.
        try m.update(labels: [NDArray(shape: [2], values: [0, 0])], predictions: [NDArray(shape: [2, 2], values: [0.9, 0.1, 0.2, 0.8])])
        #expect(m.get().value == 0.5)
        m.reset()
        #expect(m.get().value.isNaN)
    }

    @Test func accuracyIgnoresPaddedRows() throws {
        // With pad 2 only rows 0 and 1 count: row 0 right, row 1 wrong: 1 / 2.
        let m = Accuracy()
        try m.update(labels: [Self.labels], predictions: [Self.probabilities], pad: 2)
        #expect(m.get().value == 0.5)
        #expect(m.instanceCount == 2)
        #expect(throws: KilnTrainError.self) { try m.update(labels: [Self.labels], predictions: [Self.probabilities], pad: 5) }
    }

    /// Labels from a user's data that are no class index (1e30, infinite, NaN) count as wrong; the
    /// Float-to-Int conversion trapped on 1e30.
    @Test(arguments: [Float(1e30), -1e30, .infinity, .nan])
    func labelsThatAreNoIndexCountAsWrong(label: Float) throws {
        let m = Accuracy()
        try m.update(labels: [NDArray(shape: [2], values: [label, 1])], predictions: [NDArray(shape: [2], values: [0, 1])])
        #expect(m.get().value == 0.5)
        let top = try TopKAccuracy(topK: 2)
        try top.update(labels: [NDArray(shape: [1], values: [label])], predictions: [NDArray(shape: [1, 3], values: [0.2, 0.5, 0.3])])
        #expect(top.get().value == 0)
    }

    @Test func accuracyTakesClassIndicesShapedAsTheLabel() throws {
        let m = Accuracy()
        try m.update(labels: [Self.labels], predictions: [NDArray(shape: [4], values: [0, 1, 2, 2])])
        #expect(m.get().value == 0.75)
    }

    @Test func accuracyArgmaxesAlongAxisOneOfSpatialPredictions() throws {
        // (batch 1, classes 2, 3 pixels): classes per pixel 1, 0, 1; labels 1, 1, 1: 2 / 3.
        let m = Accuracy()
        try m.update(labels: [NDArray(shape: [1, 3], values: [1, 1, 1])],
                     predictions: [NDArray(shape: [1, 2, 3], values: [0.1, 0.9, 0.2, 0.9, 0.1, 0.8])])
        #expect(abs(m.get().value - 2.0 / 3.0) < 1e-12)
    }

    @Test func topKWorkedByHand() throws {
        // Top 2 of each row: {0,1}, {2,1}, {1,2}, {1,0 or 2}. Labels 0 yes, 1 yes, 1 yes, 2: 0.3 ties 0.3 and
        // counts as in (only 0.4 is strictly above): 4 / 4.
        let m = try TopKAccuracy(topK: 2)
        try m.update(labels: [Self.labels], predictions: [Self.probabilities])
        #expect(m.get().name == "top_k_accuracy_2")
        #expect(m.get().value == 1)
        let strict = try TopKAccuracy(topK: 2)
        try strict.update(labels: [NDArray(shape: [1], values: [0])], predictions: [NDArray(shape: [1, 3], values: [0.1, 0.5, 0.4])])
        #expect(strict.get().value == 0)
        #expect(throws: KilnTrainError.self) { try TopKAccuracy(topK: 1) }
    }

    @Test func crossEntropyWorkedByHand() throws {
        // -(ln 0.7 + ln 0.3 + ln 0.5 + ln 0.3) / 4 = (0.356675 + 1.203973 + 0.693147 + 1.203973) / 4 = 0.864442
        let m = CrossEntropy()
        try m.update(labels: [Self.labels], predictions: [Self.probabilities])
        #expect(m.get().name == "cross-entropy")
        #expect(abs(m.get().value - 0.864442) < 1e-5)
        // Padding 1 drops the last row: (0.356675 + 1.203973 + 0.693147) / 3 = 0.751265
        m.reset()
        try m.update(labels: [Self.labels], predictions: [Self.probabilities], pad: 1)
        #expect(abs(m.get().value - 0.751265) < 1e-5)
        // A zero probability costs -ln(1e-12) = 27.631021, not infinity.
        m.reset()
        try m.update(labels: [NDArray(shape: [1], values: [1])], predictions: [NDArray(shape: [1, 2], values: [1, 0])])
        #expect(abs(m.get().value - 27.631021) < 1e-4)
        #expect(throws: KilnTrainError.self) {
            try m.update(labels: [NDArray(shape: [1], values: [5])], predictions: [NDArray(shape: [1, 2], values: [1, 0])])
        }
    }

    @Test func metricsByMXNetName() throws {
        #expect(try EvalMetric.named("acc") is Accuracy)
        #expect(try EvalMetric.named("ce") is CrossEntropy)
        #expect((try EvalMetric.named("top_k_accuracy_5") as? TopKAccuracy)?.topK == 5)
        #expect(throws: KilnTrainError.self) { try EvalMetric.named("f1-ish") }
    }

    // MARK: MXNet golden

    struct GoldenBatch {
        let labels: NDArray
        let predictions: NDArray
    }

    func goldenBatches() throws -> [GoldenBatch] {
        let batches = try #require(try TrainGolden.load("metrics")["batches"] as? [[String: Any]])
        return batches.map { b in
            let shape = Shape(ints(b["shape"]))
            return GoldenBatch(labels: NDArray(shape: [shape[0]], values: floats(b["labels"])),
                               predictions: NDArray(shape: shape, values: floats(b["predictions"])))
        }
    }

    func metric(_ label: String) throws -> EvalMetric {
        switch label {
        case "acc": return Accuracy()
        case "top_k_accuracy_2": return try TopKAccuracy(topK: 2)
        case "top_k_accuracy_3": return try TopKAccuracy(topK: 3)
        case "ce": return CrossEntropy()
        default: throw TrainGolden.GoldenError("unknown metric \(label)")
        }
    }

    /// A batch with its first `extra` rows repeated at the end, as a padded last batch carries them.
    func padded(_ b: GoldenBatch, extra: Int) -> GoldenBatch {
        let n = b.labels.shape[0], c = b.predictions.shape[1]
        let l = b.labels.floats(), p = b.predictions.floats()
        return GoldenBatch(labels: NDArray(shape: [n + extra], values: l + l[0..<extra]),
                           predictions: NDArray(shape: [n + extra, c], values: p + p[0..<(extra * c)]))
    }

    @Test(arguments: [0, 2])
    func matchesMXNet(_ extra: Int) throws {
        // MXNet's values come from the unpadded batches; padded copies with pad = extra must give the same.
        let batches = try goldenBatches()
        let cases = try TrainGolden.cases("metrics")
        #expect(cases.count == 4)
        for c in cases {
            let label = try #require(c["metric"] as? String)
            let m = try metric(label)
            #expect(m.name == c["name"] as? String)
            for (b, expected) in zip(batches, doubles(c["values_after_each_batch"])) {
                let batch = padded(b, extra: extra)
                try m.update(labels: [batch.labels], predictions: [batch.predictions], pad: extra)
                #expect(abs(m.get().value - expected) < 1e-6 * max(1, abs(expected)), "\(label) with pad \(extra): \(m.get().value) vs MXNet \(expected)")
            }
        }
    }
}
