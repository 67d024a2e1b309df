// Module's training loop, evaluation and prediction (MXNet's BaseModule.fit, score, predict).
//
//   fit:  bind ─ initParams ─ initOptimizer ─ for each epoch:
//           reset data, metrics ─ for each batch: forward(train) ─ backward ─ update ─ metrics ─ progress
//           epoch summary ─ checkpoint (PREFIX-EPOCH+1.params, as MXNet's do_checkpoint) ─ validation
//
// Progress goes to standard error: on a terminal one line rewritten in place, otherwise a plain line
// every `interval` batches.
//
//   Epoch 3/10  batch 120/469  loss 0.2311  accuracy 0.9342  15234 samples/s
//   Epoch 3/10  train loss 0.2101  train accuracy 0.9400  validation accuracy 0.9611  14980 samples/s  4.0 s

import Foundation
import KilnCore
import KilnGraph

/// A metric's name and value.
public struct MetricValue: Sendable, Equatable, CustomStringConvertible {
    public var name: String
    public var value: Double
    public init(name: String, value: Double) {
        self.name = name
        self.value = value
    }
    public var description: String { "\(name) \(formatMetric(value))" }
}

/// What the batch-end callback of `Module.fit` receives.
public struct BatchEndInfo: Sendable {
    /// The epoch, counted from 0 as in MXNet.
    public var epoch: Int
    /// The batch within the epoch, counted from 0.
    public var batch: Int
    /// The training metric so far in this epoch.
    public var metric: MetricValue
    /// The mean cross-entropy so far in this epoch, when the network ends in a softmax.
    public var loss: Double?
    public var samplesPerSecond: Double
}

/// One epoch of training, as `fit` reports and returns it.
public struct EpochSummary: Sendable {
    /// The epoch, counted from 0 as in MXNet.
    public var epoch: Int
    public var batches: Int
    public var samples: Int
    /// The training metric over the epoch (computed on each batch before its update, as in MXNet).
    public var trainMetric: MetricValue
    /// The mean cross-entropy over the epoch, when the network ends in a softmax.
    public var trainLoss: Double?
    /// The validation metric after the epoch, when validation data is given.
    public var validationMetric: MetricValue?
    public var samplesPerSecond: Double
    public var seconds: Double
}

/// How `fit` reports progress.
public struct TrainingProgress: Sendable {
    /// Whether to rewrite one line in place with a carriage return (on a terminal).
    public var inPlace: Bool
    /// Without in-place lines, how many batches between printed lines.
    public var interval: Int
    /// Whether to print anything.
    public var enabled: Bool
    /// Where text goes.
    public var write: @Sendable (String) -> Void

    public init(inPlace: Bool, interval: Int = 50, enabled: Bool = true, write: @escaping @Sendable (String) -> Void) {
        self.inPlace = inPlace
        self.interval = max(1, interval)
        self.enabled = enabled
        self.write = write
    }

    /// Standard error, in place when it is a terminal, otherwise a line every `interval` batches.
    public static func standardError(interval: Int = 50) -> TrainingProgress {
        TrainingProgress(inPlace: isatty(2) != 0, interval: interval) { FileHandle.standardError.write(Data($0.utf8)) }
    }

    /// Prints nothing.
    public static let silent = TrainingProgress(inPlace: false, enabled: false) { _ in }
}

func formatMetric(_ v: Double) -> String { v.isNaN ? "nan" : String(format: "%.4f", v) }

extension Duration {
    var seconds: Double { Double(components.seconds) + Double(components.attoseconds) * 1e-18 }
}

extension Module {
    /// Trains the module (MXNet's `fit`): binds for the training data's shapes and initializes the
    /// parameters unless done before, then runs `epochs - beginEpoch` epochs. Returns one summary per epoch.
    ///
    /// - Parameters:
    ///   - metric: the training metric (default accuracy); also used for validation unless
    ///     `validationMetric` is given.
    ///   - checkpointPrefix: when given, saves `PREFIX-symbol.json` and `PREFIX-(epoch+1).params`
    ///     after every epoch, as MXNet's `do_checkpoint` callback.
    ///   - seed: the initializer's seed.
    @discardableResult
    public func fit(trainData: any DataIter, evalData: (any DataIter)? = nil, epochs: Int, beginEpoch: Int = 0,
                    optimizer: Optimizer = SGD(learningRate: 0.01), initializer: any Initializer = Uniform(scale: 0.01),
                    argParams: [String: NDArray]? = nil, auxParams: [String: NDArray]? = nil, allowMissing: Bool = false,
                    forceInit: Bool = false, seed: UInt64 = 0,
                    metric: EvalMetric = Accuracy(), validationMetric: EvalMetric? = nil,
                    progress: TrainingProgress = .standardError(),
                    batchEndCallback: ((BatchEndInfo) throws -> Void)? = nil,
                    epochEndCallback: ((EpochSummary) throws -> Void)? = nil,
                    checkpointPrefix: String? = nil) throws -> [EpochSummary] {
        if !isBound || !forTraining {
            try bind(dataShapes: trainData.provideData, labelShapes: trainData.provideLabel, forTraining: true)
        }
        try initParams(initializer: initializer, argParams: argParams, auxParams: auxParams,
                       allowMissing: allowMissing, forceInit: forceInit, seed: seed)
        try initOptimizer(optimizer)

        let loss: CrossEntropy? = endsInSoftmax ? CrossEntropy() : nil
        var knownBatchCount: Int?
        var summaries: [EpochSummary] = []
        let clock = ContinuousClock()
        for epoch in beginEpoch..<max(beginEpoch, epochs) {
            let epochLabel = "Epoch \(epoch + 1)/\(epochs)"
            trainData.reset()
            metric.reset()
            loss?.reset()
            let start = clock.now
            var lastDraw = start
            var batches = 0, samples = 0
            func rate() -> Double {
                let s = (clock.now - start).seconds
                return s > 0 ? Double(samples) / s : 0
            }
            while let batch = try trainData.next() {
                try forward(batch, isTrain: true)
                try backward()
                try update()
                let predictions = Array(outputs.prefix(batch.label.count))
                try metric.update(labels: batch.label, predictions: predictions, pad: batch.pad)
                if let loss, let label = batch.label.first, let output = outputs.first {
                    try loss.update(labels: [label], predictions: [output], pad: batch.pad)
                }
                samples += (batch.data.first?.shape.dims.first ?? 0) - batch.pad
                batches += 1
                let info = BatchEndInfo(epoch: epoch, batch: batches - 1, metric: metricValue(metric),
                                        loss: loss.map { $0.get().value }, samplesPerSecond: rate())
                try batchEndCallback?(info)
                if progress.enabled {
                    let now = clock.now
                    let due = progress.inPlace ? (now - lastDraw).seconds >= 0.1 : batches % progress.interval == 0
                    if due {
                        lastDraw = now
                        let line = progressLine(epochLabel, info, batchCount: knownBatchCount)
                        progress.write(progress.inPlace ? "\r\u{1B}[2K" + line : line + "\n")
                    }
                }
            }
            knownBatchCount = batches
            let seconds = (clock.now - start).seconds
            var summary = EpochSummary(epoch: epoch, batches: batches, samples: samples, trainMetric: metricValue(metric),
                                       trainLoss: loss.map { $0.get().value }, validationMetric: nil,
                                       samplesPerSecond: seconds > 0 ? Double(samples) / seconds : 0, seconds: seconds)
            if let checkpointPrefix { try saveCheckpoint(prefix: checkpointPrefix, epoch: epoch + 1) }
            if let evalData {
                summary.validationMetric = try score(data: evalData, metric: validationMetric ?? metric)
            }
            if progress.enabled {
                progress.write((progress.inPlace ? "\r\u{1B}[2K" : "") + summaryLine(epochLabel, summary) + "\n")
            }
            try epochEndCallback?(summary)
            summaries.append(summary)
        }
        return summaries
    }

    /// Whether the symbol's first output is a softmax, so that cross-entropy of it is the loss.
    var endsInSoftmax: Bool {
        guard let op = symbol.outputs.first?.node.op else { return false }
        let canonical = OpRegistry.shared.lookup(op)?.name ?? op
        return canonical == "SoftmaxOutput" || canonical == "softmax"
    }

    func metricValue(_ metric: EvalMetric) -> MetricValue {
        let (name, value) = metric.get()
        return MetricValue(name: name, value: value)
    }

    func progressLine(_ epochLabel: String, _ info: BatchEndInfo, batchCount: Int?) -> String {
        var parts = [epochLabel, "batch \(info.batch + 1)" + (batchCount.map { "/\($0)" } ?? "")]
        if let loss = info.loss { parts.append("loss \(formatMetric(loss))") }
        parts.append(info.metric.description)
        parts.append(String(format: "%.0f samples/s", info.samplesPerSecond))
        return parts.joined(separator: "  ")
    }

    func summaryLine(_ epochLabel: String, _ s: EpochSummary) -> String {
        var parts = [epochLabel]
        if let loss = s.trainLoss { parts.append("train loss \(formatMetric(loss))") }
        parts.append("train \(s.trainMetric)")
        if let v = s.validationMetric { parts.append("validation \(v)") }
        parts.append(String(format: "%.0f samples/s", s.samplesPerSecond))
        parts.append(String(format: "%.1f s", s.seconds))
        return parts.joined(separator: "  ")
    }

    /// Evaluates `metric` over a data set in inference mode (MXNet's `score`), skipping padded rows.
    ///
    /// - Parameter batches: stop after this many batches (all when nil).
    public func score(data: any DataIter, metric: EvalMetric = Accuracy(), reset: Bool = true, batches: Int? = nil) throws -> MetricValue {
        try requireReady("score", data)
        if reset { data.reset() }
        metric.reset()
        var count = 0
        while batches.map({ count < $0 }) ?? true, let batch = try data.next() {
            try forward(batch, isTrain: false)
            try metric.update(labels: batch.label, predictions: Array(outputs.prefix(batch.label.count)), pad: batch.pad)
            count += 1
        }
        return metricValue(metric)
    }

    /// The first output over a whole data set in inference mode, batches stacked along the first axis,
    /// without padded rows (MXNet's `predict`).
    public func predict(data: any DataIter, reset: Bool = true) throws -> NDArray {
        try requireReady("predict", data)
        if reset { data.reset() }
        var values: [Float] = []
        var rowShape: [Int]?
        var rows = 0
        while let batch = try data.next() {
            try forward(batch, isTrain: false)
            guard let out = outputs.first, let n = out.shape.dims.first else { continue }
            let keep = n - batch.pad
            let perRow = out.elementCount / max(n, 1)
            rowShape = Array(out.shape.dims.dropFirst())
            withFloats(out) { values.append(contentsOf: $0[0..<(keep * perRow)]) }
            rows += keep
        }
        return NDArray(shape: Shape([rows] + (rowShape ?? [])), values: values)
    }

    /// Binds for inference when not bound yet; checks the parameters are there.
    func requireReady(_ operation: String, _ data: any DataIter) throws {
        if !isBound {
            try bind(dataShapes: data.provideData, labelShapes: data.provideLabel.filter { labelNames.contains($0.name) }, forTraining: false)
        }
        guard paramsInitialized else { throw KilnTrainError.notReady(operation: operation, needs: "initParams or fit") }
    }
}
