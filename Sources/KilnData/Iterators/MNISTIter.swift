import KilnCore

/// Batches of MNIST-format images (MXNet's `mx.io.MNISTIter`), from IDX files, a CSV file or
/// ``MNISTData`` already loaded.
///
/// It behaves as MXNet 1.9.1's MNISTIter was measured to (see `tools/golden/make_data_golden.py`):
/// - pixels are multiplied by `scale`, 1/256 by default as MXNet does (255 becomes 0.99609375),
///   so values lie in [0, 1); pass `scale: 1.0 / 255` for [0, 1];
/// - data is (batch, 1, rows, columns), or (batch, rows x columns) with `flat`; labels are float32
///   of shape (batch,);
/// - a short last batch is dropped;
/// - with `shuffle` (the default, as in MXNet) the order is drawn once, from `seed`, when the
///   iterator is made, and every pass repeats it. The order differs from MXNet's, which comes from
///   C++'s generator;
/// - with `numParts` > 1 the iterator reads part `partIndex` of `numParts` consecutive parts,
///   examples `count * partIndex / numParts ..< count * (partIndex + 1) / numParts`.
public final class MNISTIter: DataIter {
    public let batchSize: Int
    public let provideData: [DataDescription]
    public let provideLabel: [DataDescription]
    /// The examples this iterator reads (its part of the data).
    public let data: MNISTData
    /// The factor applied to pixel values.
    public let scale: Float

    private var schedule: BatchSchedule

    /// An iterator over `data`.
    public init(data: MNISTData, batchSize: Int = 128, shuffle: Bool = true, flat: Bool = false, seed: UInt64 = 0,
                numParts: Int = 1, partIndex: Int = 0, scale: Float = 1.0 / 256,
                dataName: String = "data", labelName: String = "softmax_label") throws {
        guard batchSize > 0 else {
            throw KilnDataError.invalidArgument("MNISTIter needs a positive batch size, not \(batchSize)")
        }
        guard numParts >= 1, numParts <= 1 << 31, (0..<numParts).contains(partIndex) else {
            throw KilnDataError.invalidArgument(
                "MNISTIter's partIndex must be in 0..<numParts, not \(partIndex) of \(numParts)")
        }
        // Counts are below 2^31 (IDX dimensions), so these products cannot overflow.
        let start = data.count * partIndex / numParts
        let end = data.count * (partIndex + 1) / numParts
        self.data = numParts == 1 ? data : data.slice(start..<end)
        self.batchSize = batchSize
        self.scale = scale
        let rows = data.images.shape[1], columns = data.images.shape[2]
        provideData = [DataDescription(name: dataName,
                                       shape: flat ? [batchSize, rows * columns] : [batchSize, 1, rows, columns])]
        provideLabel = [DataDescription(name: labelName, shape: [batchSize])]
        let count = self.data.count
        schedule = BatchSchedule(count: count, batchSize: batchSize, lastBatch: .discard,
                                 order: shuffle ? shuffledIndices(count: count, seed: seed, epoch: 0) : nil)
    }

    /// An iterator over an IDX pair such as `train-images-idx3-ubyte.gz` and `train-labels-idx1-ubyte.gz`.
    public convenience init(images: String, labels: String, batchSize: Int = 128, shuffle: Bool = true,
                            flat: Bool = false, seed: UInt64 = 0, numParts: Int = 1, partIndex: Int = 0,
                            scale: Float = 1.0 / 256) throws {
        try self.init(data: MNISTData(imagesFile: images, labelsFile: labels), batchSize: batchSize,
                      shuffle: shuffle, flat: flat, seed: seed, numParts: numParts, partIndex: partIndex, scale: scale)
    }

    /// An iterator over a CSV file such as `mnist_train.csv` (see ``MNISTData/init(csvFile:rows:columns:)``).
    public convenience init(csv: String, batchSize: Int = 128, shuffle: Bool = true, flat: Bool = false,
                            seed: UInt64 = 0, numParts: Int = 1, partIndex: Int = 0,
                            scale: Float = 1.0 / 256) throws {
        try self.init(data: MNISTData(csvFile: csv), batchSize: batchSize, shuffle: shuffle, flat: flat,
                      seed: seed, numParts: numParts, partIndex: partIndex, scale: scale)
    }

    /// Starts a new pass, in the same order as the last.
    public func reset() { schedule.reset() }

    public func next() throws -> DataBatch? {
        guard let (indices, pad) = try schedule.next() else { return nil }
        let images = data.images.gatheringRows(indices)
        var batch = NDArray(zeros: provideData[0].shape, dtype: .float32)
        let scale = self.scale
        images.withUnsafeBufferPointer(as: UInt8.self) { src in
            batch.withUnsafeMutableBufferPointer(as: Float.self) { dst in
                for i in 0..<src.count { dst[i] = Float(src[i]) * scale }
            }
        }
        let labels = data.labels.gatheringRows(indices).converted(to: .float32)
        return DataBatch(data: [batch], label: [labels], pad: pad, index: indices)
    }
}
