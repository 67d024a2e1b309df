// ImageRecordIter: batches of decoded, augmented images from a RecordIO file, as MXNet's
// `mx.io.ImageRecordIter` makes them.
//
// Each example goes through MXNet's default augmenter and normalizer, in MXNet's order:
//
//     record ─unpack─> header, labels, JPEG/PNG bytes ─decode─> HWC uint8 (RGB, or gray)
//       ─resize─> shorter side = resize (if set), OpenCV's bilinear (Transforms/Resize.swift)
//       ─crop──> if smaller than data_shape, scaled up to it first; then a data_shape window,
//                centred, or at a random place with randCrop
//       ─mirror─> left-right, with probability 1/2 under randMirror
//       ─normalize─> (pixel - mean[c]) * (scale / std[c]), written CHW as float32
//
// The order of examples is a stream of passes: pass e visits every record once, in file order or,
// with shuffle, in a permutation drawn from (seed, e). A last batch that the pass cannot fill is,
// by `lastBatch`:
//
//     N = 10, batchSize 4      pass 0                      pass 1
//     .roundBatch (MXNet)      [0 1 2 3][4 5 6 7][8 9 0' 1']  [2' 3' 4' 5'][6' 7' 8' 9'] ...
//                              pad 2; the next pass starts after 0' 1'
//     .pad                     [0 1 2 3][4 5 6 7][8 9 0' 1']  [0' 1' 2' 3'] ...
//     .discard                 [0 1 2 3][4 5 6 7]             [0' 1' 2' 3'] ...
//
// (x' is record x of the next pass's order.) The shuffle and the random choices for an example (crop
// place, mirror) come from the module's seeded streams (Support/Randomness.swift): the order of pass e
// from (seed, e), an example's choices from (seed, e, its record), so a run is reproducible for a
// seed whatever the number of decoding threads.

import Dispatch
import Foundation
import KilnCore

/// Batches of images from a RecordIO file of JPEG or PNG records (MXNet's `ImageRecordIter`):
/// data `[batchSize, channels, height, width]` float32 and labels `[batchSize]` float32 (or
/// `[batchSize, labelWidth]` when `labelWidth > 1`).
///
/// ```
/// let train = try ImageRecordIter(pathImgrec: "train.rec", dataShape: [3, 28, 28], batchSize: 128,
///                                 shuffle: true, seed: 1, randCrop: true, randMirror: true,
///                                 meanRGB: [125.3, 123.0, 113.9], stdRGB: [63.0, 62.1, 66.7])
/// while let batch = try train.next() { ... }
/// train.reset()
/// ```
///
/// `DataBatch.index` holds the records' positions in the file (0-based, in file or index order).
public final class ImageRecordIter: DataIter {
    /// What happens to the last batch of a pass when fewer examples than `batchSize` remain.
    public enum LastBatch: Sendable, Equatable {
        /// MXNet's `round_batch=True` (its default): the batch is filled with the first examples of
        /// the next pass, `pad` says how many, and the next pass starts after them.
        case roundBatch
        /// As `roundBatch`, but the next pass starts from its beginning.
        case pad
        /// The batch is dropped.
        case discard
    }

    public let batchSize: Int
    public let provideData: [DataDescription]
    public let provideLabel: [DataDescription]
    /// The `.rec` file.
    public let path: String
    /// Number of records in the file.
    public var recordCount: Int { offsets.count }

    private let reader: RecordIOReader
    private let offsets: [Int]
    private let settings: Settings
    private var passStart = 0
    private var position = 0
    private var orders: [Int: [Int]] = [:]

    /// The per-example work, fixed at creation.
    struct Settings: Sendable {
        var channels: Int
        var height: Int
        var width: Int
        var resize: Int?
        var randomCrop: Bool
        var randomMirror: Bool
        var mean: [Float]
        var multiplier: [Float]
        var labelWidth: Int
        var shuffle: Bool
        var seed: UInt64
        var lastBatch: LastBatch
        var threads: Int
        var strictDecoding: Bool
    }

    /// Opens a RecordIO file of images.
    ///
    /// - Parameters:
    ///   - pathImgrec: the `.rec` file.
    ///   - pathImgidx: its `.idx` file; without one, the record offsets are found by one scan of the
    ///     part headers.
    ///   - dataShape: `[channels, height, width]` of each example; channels 3 (RGB) or 1 (gray).
    ///   - shuffle: visit the records in a new random order each pass.
    ///   - seed: seeds the shuffle and the random augmentations.
    ///   - resize: resize each image so that its shorter side has this length, before cropping.
    ///   - randCrop: crop at a random place instead of the centre.
    ///   - randMirror: flip left-right with probability 1/2.
    ///   - meanRGB, stdRGB: per-channel mean and standard deviation (MXNet's `mean_r/g/b`, `std_r/g/b`);
    ///     a gray image uses the first of each.
    ///   - scale: multiplies the normalized value (MXNet's `scale`, such as 1/255).
    ///   - labelWidth: labels per record (the record's flag when greater than 0, else 1).
    ///   - lastBatch: see ``LastBatch``; MXNet's default is `.roundBatch`.
    ///   - preprocessThreads: threads that decode and augment a batch.
    ///   - strictDecoding: when true (the default), a JPEG that libjpeg can only partly decode throws;
    ///     when false it is used with its missing part gray, as MXNet does.
    public init(pathImgrec: String, pathImgidx: String? = nil, dataShape: Shape, batchSize: Int,
                shuffle: Bool = false, seed: UInt64 = 0, resize: Int? = nil, randCrop: Bool = false,
                randMirror: Bool = false, meanRGB: [Float] = [0, 0, 0], stdRGB: [Float] = [1, 1, 1],
                scale: Float = 1, labelWidth: Int = 1, lastBatch: LastBatch = .roundBatch,
                dataName: String = "data", labelName: String = "softmax_label",
                preprocessThreads: Int = 1, strictDecoding: Bool = true) throws {
        guard dataShape.rank == 3, dataShape[0] == 1 || dataShape[0] == 3, dataShape[1] > 0, dataShape[2] > 0 else {
            throw KilnDataError.invalidArgument(
                "ImageRecordIter's dataShape is [channels, height, width] with 1 or 3 channels, not \(dataShape)")
        }
        guard batchSize > 0 else { throw KilnDataError.invalidArgument("ImageRecordIter's batchSize must be positive, not \(batchSize)") }
        guard labelWidth > 0 else { throw KilnDataError.invalidArgument("ImageRecordIter's labelWidth must be positive, not \(labelWidth)") }
        if let resize, resize <= 0 {
            throw KilnDataError.invalidArgument("ImageRecordIter's resize must be positive, not \(resize)")
        }
        let channels = dataShape[0]
        guard meanRGB.count >= channels, stdRGB.count >= channels else {
            throw KilnDataError.invalidArgument(
                "ImageRecordIter needs \(channels) values in meanRGB and stdRGB, got \(meanRGB.count) and \(stdRGB.count)")
        }
        guard stdRGB.prefix(channels).allSatisfy({ $0 != 0 && $0.isFinite }) else {
            throw KilnDataError.invalidArgument("ImageRecordIter's stdRGB values must be finite and non-zero, not \(stdRGB)")
        }
        guard preprocessThreads > 0 else {
            throw KilnDataError.invalidArgument("ImageRecordIter's preprocessThreads must be positive, not \(preprocessThreads)")
        }
        reader = try RecordIOReader(path: pathImgrec, indexPath: pathImgidx)
        offsets = try reader.index.map { $0.entries.map(\.offset) } ?? reader.scanOffsets()
        guard !offsets.isEmpty else {
            throw KilnDataError.malformedFile(path: pathImgrec, field: "its records", reason: "it holds no records")
        }
        path = pathImgrec
        self.batchSize = batchSize
        settings = Settings(
            channels: channels, height: dataShape[1], width: dataShape[2], resize: resize,
            randomCrop: randCrop, randomMirror: randMirror,
            mean: Array(meanRGB.prefix(channels)),
            // MXNet multiplies by (scale / std) computed once, in float.
            multiplier: stdRGB.prefix(channels).map { scale / $0 },
            labelWidth: labelWidth, shuffle: shuffle, seed: seed, lastBatch: lastBatch, threads: preprocessThreads,
            strictDecoding: strictDecoding)
        provideData = [DataDescription(name: dataName, shape: Shape([batchSize] + dataShape.dims))]
        provideLabel = [DataDescription(name: labelName, shape: labelWidth == 1 ? [batchSize] : [batchSize, labelWidth])]
    }

    // MARK: DataIter

    public func reset() {
        // A pass that has not started stays; otherwise the next pass begins, after any examples a
        // round batch already took from it (from several passes, when the file holds fewer records
        // than a batch).
        guard position > passStart else { return }
        passStart += recordCount
        if settings.lastBatch == .roundBatch {
            while position >= passStart + recordCount { passStart += recordCount }
            position = max(position, passStart)
        } else {
            position = passStart
        }
        orders = orders.filter { $0.key >= passStart / recordCount }
    }

    public func next() throws -> DataBatch? {
        let end = passStart + recordCount
        guard position < end else { return nil }
        let available = end - position
        if available < batchSize && settings.lastBatch == .discard {
            position = end
            return nil
        }
        let streamPositions = Array(position..<(position + batchSize))
        let pad = max(0, batchSize - available)
        let records = streamPositions.map { recordIndex(atStream: $0) }
        let batch = try makeBatch(records: records, streamPositions: streamPositions, pad: pad)
        position += batchSize
        return batch
    }

    // MARK: Order

    /// The record at a place in the stream of passes.
    private func recordIndex(atStream p: Int) -> Int {
        let pass = p / recordCount, i = p % recordCount
        guard settings.shuffle else { return i }
        if let order = orders[pass] { return order[i] }
        let order = shuffledIndices(count: recordCount, seed: settings.seed, epoch: pass)
        orders[pass] = order
        return order[i]
    }

    // MARK: Batches

    private func makeBatch(records: [Int], streamPositions: [Int], pad: Int) throws -> DataBatch {
        let s = settings
        let exampleSize = s.channels * s.height * s.width
        var data = NDArray(zeros: provideData[0].shape, dtype: .float32)
        var labels = [Float](repeating: 0, count: batchSize * s.labelWidth)
        var failures = [Error?](repeating: nil, count: batchSize)
        let reader = self.reader, offsets = self.offsets, path = self.path
        let passes = streamPositions.map { $0 / recordCount }
        data.withUnsafeMutableBufferPointer(as: Float.self) { out in
            labels.withUnsafeMutableBufferPointer { labelOut in
                failures.withUnsafeMutableBufferPointer { failureOut in
                    // Example j writes only its own slots of the three buffers.
                    let slots = Slots(data: out, labels: labelOut, failures: failureOut)
                    let work: @Sendable (Int) -> Void = { j in
                        let record = records[j]
                        do {
                            var rng = SampleGenerator(seed: s.seed, epoch: passes[j], index: record)
                            let payload = try reader.record(at: offsets[record])
                            let example = try Self.process(
                                payload: payload, source: "record \(record) of '\(path)'", settings: s, rng: &rng,
                                into: UnsafeMutableBufferPointer(rebasing: slots.data[(j * exampleSize)..<((j + 1) * exampleSize)]))
                            for (k, v) in example.enumerated() { slots.labels[j * s.labelWidth + k] = v }
                        } catch {
                            slots.failures[j] = error
                        }
                    }
                    let threads = min(s.threads, records.count)
                    if threads <= 1 {
                        for j in records.indices { work(j) }
                    } else {
                        DispatchQueue.concurrentPerform(iterations: threads) { t in
                            for j in stride(from: t, to: records.count, by: threads) { work(j) }
                        }
                    }
                }
            }
        }
        if let failure = failures.lazy.compactMap({ $0 }).first { throw failure }
        let labelArray = NDArray(shape: provideLabel[0].shape, values: labels)
        return DataBatch(data: [data], label: [labelArray], pad: pad, index: records)
    }

    /// The output buffers of one batch, shared by the decoding threads.
    private struct Slots: @unchecked Sendable {
        let data: UnsafeMutableBufferPointer<Float>
        let labels: UnsafeMutableBufferPointer<Float>
        let failures: UnsafeMutableBufferPointer<Error?>
    }

    /// Decodes, augments and normalizes one record into `out` (CHW); returns its labels.
    static func process(payload: [UInt8], source: String, settings s: Settings, rng: inout SampleGenerator,
                        into out: UnsafeMutableBufferPointer<Float>) throws -> [Float] {
        let record = try ImageRecord(packed: payload, source: source)
        let labels = record.labels
        guard labels.count == s.labelWidth else {
            throw KilnDataError.malformedFile(
                path: source, field: "the labels",
                reason: "the record has \(labels.count) label(s) but labelWidth is \(s.labelWidth)")
        }
        var image = try ImageCodec.decode(record.image, channels: s.channels, source: source, strict: s.strictDecoding)
        if let resize = s.resize {
            // MXNet's integer arithmetic for the longer side.
            let (h, w) = (image.shape[0], image.shape[1])
            image = h > w ? try resizeBilinear(image, width: resize, height: resize * h / w)
                          : try resizeBilinear(image, width: resize * w / h, height: resize)
        }
        // MXNet scales an image smaller than the crop up to it, height first, keeping the aspect.
        var rows = image.shape[0], cols = image.shape[1]
        if rows < s.height {
            let newCols = Int(Float(s.height) / Float(rows) * Float(cols))
            image = try resizeBilinear(image, width: newCols, height: s.height)
            rows = s.height; cols = newCols
        }
        if cols < s.width {
            let newRows = Int(Float(s.width) / Float(cols) * Float(rows))
            image = try resizeBilinear(image, width: s.width, height: newRows)
            rows = newRows; cols = s.width
        }
        guard rows >= s.height, cols >= s.width else {
            throw KilnDataError.undecodableImage(
                source: source, reason: "a \(rows)x\(cols) image cannot be cropped to \(s.height)x\(s.width)")
        }
        var top = rows - s.height, left = cols - s.width
        if s.randomCrop {
            top = rng.nextInt(below: top + 1)
            left = rng.nextInt(below: left + 1)
        } else {
            top /= 2
            left /= 2
        }
        let mirror = s.randomMirror && rng.nextInt(below: 2) == 1
        let c = s.channels, plane = s.height * s.width
        image.withUnsafeBufferPointer(as: UInt8.self) { pixels in
            for y in 0..<s.height {
                let rowStart = ((top + y) * cols + left) * c
                for x in 0..<s.width {
                    let dx = mirror ? s.width - 1 - x : x
                    for k in 0..<c {
                        out[k * plane + y * s.width + dx] = (Float(pixels[rowStart + x * c + k]) - s.mean[k]) * s.multiplier[k]
                    }
                }
            }
        }
        return labels
    }
}
