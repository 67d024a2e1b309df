// CIFAR-10's binary version (cifar-10-binary.tar.gz): each of data_batch_1.bin ... data_batch_5.bin
// and test_batch.bin holds 10000 records of 3073 bytes:
//
//     byte 0          label, 0...9
//     bytes 1...1024  red plane, 32 rows of 32, row-major
//     bytes 1025...   green plane, then blue plane (channels first: CHW)
import Foundation
import KilnCore

/// CIFAR-10 images and labels in memory, read from files of its binary version.
public struct CIFAR10Data: Sendable {
    /// The images, uint8 of shape (count, 3, 32, 32), channels first as stored.
    public let images: NDArray
    /// The labels, uint8 of shape (count,), each in 0...9.
    public let labels: NDArray

    /// The number of examples.
    public var count: Int { images.shape[0] }

    /// Bytes per record: a label and 3 x 32 x 32 pixels.
    public static let recordSize = 1 + 3 * 32 * 32

    /// How to get CIFAR-10, for errors about missing files.
    public static let howToFetch = """
        Kiln does not download data sets, and no package reachable here ships CIFAR-10. Put the files of \
        its binary version (data_batch_1.bin ... data_batch_5.bin, test_batch.bin, from \
        cifar-10-binary.tar.gz) in that folder.
        """

    /// The records of `files`, in order.
    public init(files: [String]) throws {
        guard !files.isEmpty else { throw KilnDataError.invalidArgument("CIFAR10Data needs at least one file") }
        var bytes: [UInt8] = []
        var labels: [UInt8] = []
        for path in files {
            guard FileManager.default.fileExists(atPath: path) else {
                throw KilnDataError.missingDataSet(name: "CIFAR-10", path: path, howToFetch: Self.howToFetch)
            }
            let data = try readFileContents(atPath: path)
            let records = data.count / Self.recordSize
            guard data.count % Self.recordSize == 0 else {
                throw KilnDataError.malformedFile(
                    path: path, field: "record \(records)",
                    reason: "the file ends \(data.count % Self.recordSize) bytes into a record of \(Self.recordSize) bytes (a label and 3x32x32 pixels)")
            }
            bytes.reserveCapacity(bytes.count + records * (Self.recordSize - 1))
            try data.withUnsafeBytes { (raw: UnsafeRawBufferPointer) in
                let b = raw.bindMemory(to: UInt8.self)
                for r in 0..<records {
                    let start = r * Self.recordSize
                    guard b[start] <= 9 else {
                        throw KilnDataError.malformedFile(path: path, field: "record \(r) label",
                                                          reason: "\(b[start]) is not a class from 0 to 9")
                    }
                    labels.append(b[start])
                    bytes.append(contentsOf: b[(start + 1)..<(start + Self.recordSize)])
                }
            }
        }
        images = try NDArray(shape: [labels.count, 3, 32, 32], dtype: .uint8, bytes: bytes)
        self.labels = try NDArray(shape: [labels.count], dtype: .uint8, bytes: labels)
    }

    /// The training files (`data_batch_1.bin` ... `data_batch_5.bin`) or the test file
    /// (`test_batch.bin`) of `directory`.
    public init(directory: String, train: Bool) throws {
        let names = train ? (1...5).map { "data_batch_\($0).bin" } : ["test_batch.bin"]
        let folder = URL(fileURLWithPath: directory)
        let paths = names.map { folder.appendingPathComponent($0).path }
        let missing = zip(names, paths).filter { !FileManager.default.fileExists(atPath: $0.1) }.map(\.0)
        guard missing.isEmpty else {
            throw KilnDataError.missingDataSet(
                name: "CIFAR-10", path: directory,
                howToFetch: "Missing: \(missing.joined(separator: ", ")). " + Self.howToFetch)
        }
        try self.init(files: paths)
    }
}

/// CIFAR-10 as a Gluon data set: each image is (32, 32, 3) uint8, height x width x channels, and
/// each label a 0-d int32 array, as `gluon.data.vision.CIFAR10` gives them.
public struct CIFAR10Dataset: Dataset {
    public let data: CIFAR10Data

    public init(data: CIFAR10Data) { self.data = data }

    /// The training or test files of `directory` (see ``CIFAR10Data/init(directory:train:)``).
    public init(directory: String, train: Bool) throws { data = try CIFAR10Data(directory: directory, train: train) }

    public var count: Int { data.count }

    public func item(at index: Int, using generator: inout SampleGenerator) throws -> Sample {
        try checkIndex(index, name: "CIFAR-10")
        let chw = data.images.row(index)
        var hwc = NDArray(zeros: [32, 32, 3], dtype: .uint8)
        chw.withUnsafeBufferPointer(as: UInt8.self) { src in
            hwc.withUnsafeMutableBufferPointer(as: UInt8.self) { dst in
                for c in 0..<3 {
                    for p in 0..<1024 { dst[p * 3 + c] = src[c * 1024 + p] }
                }
            }
        }
        let label = NDArray(shape: [], dtype: .int32, values: [Double(data.labels.element(index))])
        return (hwc, label)
    }
}

/// Batches of CIFAR-10 as an iterator: data (batch, 3, 32, 32) float32, the pixels multiplied by
/// `scale` (1 keeps 0...255, as MXNet's image iterators do without `scale`), labels float32 (batch,).
///
/// Shuffling and the last batch behave as in ``NDArrayIter``.
public final class CIFAR10Iter: DataIter {
    public let batchSize: Int
    public let provideData: [DataDescription]
    public let provideLabel: [DataDescription]
    public let data: CIFAR10Data
    public let scale: Float
    public let shuffle: Bool

    private let seed: UInt64
    private var schedule: BatchSchedule
    private var epoch = 0

    public init(data: CIFAR10Data, batchSize: Int, shuffle: Bool = false, seed: UInt64 = 0,
                lastBatch: LastBatchHandling = .pad, scale: Float = 1,
                dataName: String = "data", labelName: String = "softmax_label") throws {
        guard batchSize > 0 else {
            throw KilnDataError.invalidArgument("CIFAR10Iter needs a positive batch size, not \(batchSize)")
        }
        self.data = data
        self.batchSize = batchSize
        self.scale = scale
        self.shuffle = shuffle
        self.seed = seed
        provideData = [DataDescription(name: dataName, shape: [batchSize, 3, 32, 32])]
        provideLabel = [DataDescription(name: labelName, shape: [batchSize])]
        schedule = BatchSchedule(count: data.count, batchSize: batchSize, lastBatch: lastBatch,
                                 order: shuffle ? shuffledIndices(count: data.count, seed: seed, epoch: 0) : nil)
    }

    /// Starts a new pass, reshuffling if the iterator shuffles.
    public func reset() {
        epoch += 1
        schedule.reset(order: shuffle ? shuffledIndices(count: data.count, seed: seed, epoch: epoch) : nil)
    }

    public func next() throws -> DataBatch? {
        guard let (indices, pad) = try schedule.next() else { return nil }
        let images = data.images.gatheringRows(indices)
        var batch = NDArray(zeros: images.shape, dtype: .float32)
        let scale = self.scale
        images.withUnsafeBufferPointer(as: UInt8.self) { src in
            batch.withUnsafeMutableBufferPointer(as: Float.self) { dst in
                for i in 0..<src.count { dst[i] = Float(src[i]) * scale }
            }
        }
        return DataBatch(data: [batch], label: [data.labels.gatheringRows(indices).converted(to: .float32)],
                         pad: pad, index: indices)
    }
}
