import Foundation

/// Errors of the zoo experiment: what it was given does not fit together.
public enum ZooExperimentError: Error, CustomStringConvertible, Equatable {
    /// A caller error, as a sentence naming the batch or setting at fault.
    case invalidArgument(String)

    public var description: String {
        switch self {
        case let .invalidArgument(reason): return reason.hasSuffix(".") ? reason : reason + "."
        }
    }
}

/// A batch of images and their class labels, as the zoo experiment feeds them to a model.
public struct LabeledBatch: Sendable {
    /// The images, (n, ...) with the examples along axis 0.
    public var data: NDArray
    /// The class of each of the n images.
    public var labels: [Int]

    public init(data: NDArray, labels: [Int]) {
        self.data = data
        self.labels = labels
    }
}

/// What the zoo experiment measured for one model: the same test set run in pure framework mode and
/// with the engine, timed without binding and compilation.
public struct ZooResult: Sendable, Equatable {
    /// The model's name.
    public let name: String
    /// The images classified in each mode.
    public let images: Int
    /// The batch size bound.
    public let batch: Int
    /// Seconds to classify every image with the framework alone, op by op.
    public let frameworkSeconds: Double
    /// Top-1 accuracy in framework mode, in [0, 1].
    public let frameworkAccuracy: Double
    /// Seconds to classify every image with the engine (compilation not counted).
    public let engineSeconds: Double
    /// Top-1 accuracy with the engine, in [0, 1].
    public let engineAccuracy: Double
    /// Images whose predicted class differs between the two modes.
    public let disagreements: Int

    public init(name: String, images: Int, batch: Int, frameworkSeconds: Double, frameworkAccuracy: Double,
                engineSeconds: Double, engineAccuracy: Double, disagreements: Int) {
        self.name = name
        self.images = images
        self.batch = batch
        self.frameworkSeconds = frameworkSeconds
        self.frameworkAccuracy = frameworkAccuracy
        self.engineSeconds = engineSeconds
        self.engineAccuracy = engineAccuracy
        self.disagreements = disagreements
    }

    /// Framework time over engine time; compilation is in neither.
    public var speedUp: Double { engineSeconds > 0 ? frameworkSeconds / engineSeconds : .infinity }
    /// |framework accuracy - engine accuracy|.
    public var accuracyDifference: Double { abs(frameworkAccuracy - engineAccuracy) }
    /// Images per second in framework mode.
    public var frameworkImagesPerSecond: Double { frameworkSeconds > 0 ? Double(images) / frameworkSeconds : .infinity }
    /// Images per second with the engine.
    public var engineImagesPerSecond: Double { engineSeconds > 0 ? Double(images) / engineSeconds : .infinity }

    /// The seed's block for this model:
    ///
    ///     Model: cifar_resnet56_v1
    ///     Pure framework time: 12.34 s, accuracy 0.9301
    ///     Engine time: 4.01 s, accuracy 0.9301
    ///     Speed-up: 3.08x
    ///     Absolute accuracy difference: 0.0000
    public var block: String {
        """
        Model: \(name)
        Pure framework time: \(String(format: "%.2f", frameworkSeconds)) s, accuracy \(String(format: "%.4f", frameworkAccuracy))
        Engine time: \(String(format: "%.2f", engineSeconds)) s, accuracy \(String(format: "%.4f", engineAccuracy))
        Speed-up: \(String(format: "%.2f", speedUp))x
        Absolute accuracy difference: \(String(format: "%.4f", accuracyDifference))
        """
    }

    /// The result as JSON-ready values (numbers and strings), for `kiln zoo --json`.
    public var jsonObject: [String: Any] {
        ["model": name, "images": images, "batch": batch,
         "framework_seconds": frameworkSeconds, "framework_accuracy": frameworkAccuracy,
         "framework_images_per_s": frameworkImagesPerSecond,
         "engine_seconds": engineSeconds, "engine_accuracy": engineAccuracy,
         "engine_images_per_s": engineImagesPerSecond,
         "speed_up": speedUp, "accuracy_difference": accuracyDifference, "disagreements": disagreements]
    }
}

/// The seed's model-zoo experiment: a classifier run over a whole test set in pure framework mode and
/// with the CPU engine, comparing time (compilation excluded) and top-1 accuracy.
public enum ZooExperiment {
    /// Time and correct answers of one mode.
    public struct Pass: Sendable {
        /// Seconds spent classifying, from the first timed batch to the last prediction read.
        public let seconds: Double
        /// The predicted class of each image, in order.
        public let predictions: [Int]
        /// Images whose prediction equals their label.
        public let correct: Int
    }

    /// Every batch of one pass of `loader`, with labels as integers, stopping after `limit` images
    /// (the last batch cut short). Reading happens once, before any timing, so that both modes
    /// classify the very same arrays and neither pays for decoding or transforms.
    public static func batches(from loader: DataLoader, limit: Int? = nil) throws -> [LabeledBatch] {
        if let limit, limit < 1 { throw ZooExperimentError.invalidArgument("The zoo experiment's limit must be at least 1 image, not \(limit)") }
        loader.reset()
        var out: [LabeledBatch] = []
        var taken = 0
        while let batch = try loader.next() {
            guard let data = batch.data.first, let label = batch.label.first else {
                throw ZooExperimentError.invalidArgument("The zoo experiment needs batches with one data array and one label array")
            }
            // A padded batch (lastBatch .pad) repeats examples from the start; count each once.
            var n = data.shape[0] - batch.pad
            if let limit { n = min(n, limit - taken) }
            let labels = label.floats().prefix(n).map { Int($0) }
            out.append(LabeledBatch(data: n == data.shape[0] ? data : try rows(of: data, count: n, paddedTo: n), labels: labels))
            taken += n
            if let limit, taken >= limit { break }
        }
        loader.reset()
        return out
    }

    /// Runs the experiment over the batches of `data` (see ``batches(from:limit:)``); `data`'s batch
    /// size must be `batch`.
    @discardableResult
    public static func run(name: String, symbol: Symbol, weights: [String: NDArray], data: DataLoader, batch: Int,
                           limit: Int? = nil, engineOptions: EngineOptions = EngineOptions(), dataName: String = "data",
                           context: Context = .cpu, printBlock: Bool = true) throws -> ZooResult {
        guard data.batchSize == batch else {
            throw ZooExperimentError.invalidArgument("The data loader makes batches of \(data.batchSize), but the zoo experiment binds batch \(batch)")
        }
        return try run(name: name, symbol: symbol, weights: weights, batches: batches(from: data, limit: limit), batch: batch,
                       limit: nil, engineOptions: engineOptions, dataName: dataName, context: context, printBlock: printBlock)
    }

    /// Runs `symbol` with `weights` (arguments and auxiliary states by name) over `batches`, first in
    /// pure framework mode (`simpleBind(..., engine: .framework)`), then with the engine
    /// (`.cpu(engineOptions)`), and prints the seed's block unless `printBlock` is false.
    ///
    /// Each mode binds for `batch` images, runs one untimed warm-up batch (the engine compiles at bind
    /// and builds its kernels on first use), then times the whole set. A batch shorter than `batch` is
    /// padded with zeros and only its real images count. Accuracy is top-1: the arg-max of output 0's
    /// last axis against the label.
    @discardableResult
    public static func run(name: String, symbol: Symbol, weights: [String: NDArray], batches: [LabeledBatch], batch: Int,
                           limit: Int? = nil, engineOptions: EngineOptions = EngineOptions(), dataName: String = "data",
                           context: Context = .cpu, printBlock: Bool = true) throws -> ZooResult {
        let inputs = try prepare(batches, batch: batch, limit: limit)
        let labels = inputs.flatMap(\.labels)
        let framework = try evaluate(symbol: symbol, weights: weights, inputs: inputs, engine: .framework, dataName: dataName, context: context)
        let selection: EngineSelection = context == .cpu ? .cpu(engineOptions) : .cuda(engineOptions)
        let engine = try evaluate(symbol: symbol, weights: weights, inputs: inputs, engine: selection, dataName: dataName, context: context)
        let images = Double(labels.count)
        let result = ZooResult(
            name: name, images: labels.count, batch: batch,
            frameworkSeconds: framework.seconds, frameworkAccuracy: Double(framework.correct) / images,
            engineSeconds: engine.seconds, engineAccuracy: Double(engine.correct) / images,
            disagreements: zip(framework.predictions, engine.predictions).filter { $0 != $1 }.count)
        if printBlock { print(result.block) }
        return result
    }

    /// One mode over batches already padded to the bound batch size: bind, warm up on the first batch,
    /// then time every batch.
    public static func evaluate(symbol: Symbol, weights: [String: NDArray], inputs: [LabeledBatch], engine: EngineSelection,
                                dataName: String = "data", context: Context = .cpu) throws -> Pass {
        guard let first = inputs.first else { throw ZooExperimentError.invalidArgument("The zoo experiment got no images") }
        var shared = weights
        shared[dataName] = first.data
        let exec = try symbol.simpleBind(context: context, shapes: [dataName: first.data.shape], types: [dataName: first.data.dtype],
                                         sharedBuffer: shared, engine: engine)
        try exec.forward(isTrain: false, [dataName: first.data])
        let clock = ContinuousClock()
        var predictions: [Int] = []
        predictions.reserveCapacity(inputs.count * first.data.shape[0])
        let start = clock.now
        for input in inputs {
            try exec.forward(isTrain: false, [dataName: input.data])
            guard let output = exec.outputs.first else {
                throw ZooExperimentError.invalidArgument("The model has no output to classify with")
            }
            predictions.append(contentsOf: output.argmaxLastAxis().prefix(input.labels.count))
        }
        let elapsed = clock.now - start
        let seconds = Double(elapsed.components.seconds) + Double(elapsed.components.attoseconds) * 1e-18
        let labels = inputs.flatMap(\.labels)
        return Pass(seconds: seconds, predictions: predictions, correct: zip(predictions, labels).filter { $0 == $1 }.count)
    }

    /// The batches cut to `limit` images and each padded with zeros to `batch` rows; the labels keep
    /// only the real images.
    static func prepare(_ batches: [LabeledBatch], batch: Int, limit: Int?) throws -> [LabeledBatch] {
        guard batch >= 1 else { throw ZooExperimentError.invalidArgument("The zoo experiment needs a batch of at least 1, not \(batch)") }
        if let limit, limit < 1 { throw ZooExperimentError.invalidArgument("The zoo experiment's limit must be at least 1 image, not \(limit)") }
        var out: [LabeledBatch] = []
        var taken = 0
        for (k, b) in batches.enumerated() {
            let rowsHeld = b.data.shape.rank >= 1 ? b.data.shape[0] : 0
            guard rowsHeld == b.labels.count else {
                throw ZooExperimentError.invalidArgument("Batch \(k) holds \(rowsHeld) images of shape \(b.data.shape) but \(b.labels.count) labels")
            }
            guard rowsHeld <= batch else {
                throw ZooExperimentError.invalidArgument("Batch \(k) holds \(rowsHeld) images, more than the bound batch of \(batch)")
            }
            var n = rowsHeld
            if let limit { n = min(n, limit - taken) }
            guard n > 0 else { break }
            let data = n == batch && rowsHeld == batch ? b.data : try rows(of: b.data, count: n, paddedTo: batch)
            out.append(LabeledBatch(data: data, labels: Array(b.labels.prefix(n))))
            taken += n
        }
        guard !out.isEmpty else { throw ZooExperimentError.invalidArgument("The zoo experiment got no images") }
        return out
    }

    /// The first `count` rows of `array` followed by zero rows up to `total` rows.
    static func rows(of array: NDArray, count: Int, paddedTo total: Int) throws -> NDArray {
        let dims = array.shape.dims
        guard !dims.isEmpty, count <= dims[0], count <= total else {
            throw ZooExperimentError.invalidArgument("Cannot take \(count) rows of an array of shape \(array.shape)")
        }
        var out = NDArray(zeros: Shape([total] + dims.dropFirst()), dtype: array.dtype)
        let rowBytes = dims[0] > 0 ? array.byteCount / dims[0] : 0
        out.withUnsafeMutableBytes { dst in
            array.withUnsafeBytes { src in
                if let d = dst.baseAddress, let s = src.baseAddress { d.copyMemory(from: s, byteCount: count * rowBytes) }
            }
        }
        return out
    }
}
