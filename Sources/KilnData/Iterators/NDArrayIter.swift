import KilnCore

/// Batches over arrays held in memory (MXNet's `mx.io.NDArrayIter`).
///
/// Examples lie along axis 0 of every data and label array. Batches follow MXNet 1.9 exactly,
/// including its last-batch modes (see ``LastBatchHandling``): with `.pad` the last batch is filled
/// from the start of the pass and `pad` says how many examples are filler; with `.rollOver` the
/// first batch of the next pass reports the number of rolled-over examples as its `pad`, as MXNet
/// does. With `shuffle`, each pass (the first included) takes a new order drawn from `seed`; the
/// orders differ from MXNet's, which come from numpy's global generator.
///
/// ```
/// let iter = try NDArrayIter(data: images, label: labels, batchSize: 32, shuffle: true, seed: 1)
/// while let batch = try iter.next() { ... }
/// iter.reset()
/// ```
public final class NDArrayIter: DataIter {
    public let batchSize: Int
    public let provideData: [DataDescription]
    public let provideLabel: [DataDescription]
    /// Whether each pass takes a new random order.
    public let shuffle: Bool
    public let lastBatch: LastBatchHandling
    /// The number of examples.
    public var count: Int { schedule.count }

    private let data: [NDArray]
    private let label: [NDArray]
    private let seed: UInt64
    private var schedule: BatchSchedule
    private var epoch = 0

    /// One data array and an optional label array, named `dataName` and `labelName`.
    public convenience init(data: NDArray, label: NDArray? = nil, batchSize: Int = 1, shuffle: Bool = false,
                            seed: UInt64 = 0, lastBatch: LastBatchHandling = .pad,
                            dataName: String = "data", labelName: String = "softmax_label") throws {
        try self.init(named: [(dataName, data)], labels: label.map { [(labelName, $0)] } ?? [],
                      batchSize: batchSize, shuffle: shuffle, seed: seed, lastBatch: lastBatch)
    }

    /// Several data and label arrays. As in MXNet, a single array takes the plain name and several
    /// are named `_0_data`, `_1_data`, ... (`_0_softmax_label`, ... for labels).
    public convenience init(data: [NDArray], label: [NDArray] = [], batchSize: Int = 1, shuffle: Bool = false,
                            seed: UInt64 = 0, lastBatch: LastBatchHandling = .pad,
                            dataName: String = "data", labelName: String = "softmax_label") throws {
        func named(_ arrays: [NDArray], _ name: String) -> [(String, NDArray)] {
            arrays.count == 1 ? [(name, arrays[0])] : arrays.enumerated().map { ("_\($0.offset)_\(name)", $0.element) }
        }
        try self.init(named: named(data, dataName), labels: named(label, labelName),
                      batchSize: batchSize, shuffle: shuffle, seed: seed, lastBatch: lastBatch)
    }

    /// Data and label arrays by name; as in MXNet, each group is ordered by name.
    public convenience init(data: [String: NDArray], label: [String: NDArray] = [:], batchSize: Int = 1,
                            shuffle: Bool = false, seed: UInt64 = 0,
                            lastBatch: LastBatchHandling = .pad) throws {
        try self.init(named: data.sorted { $0.key < $1.key }.map { ($0.key, $0.value) },
                      labels: label.sorted { $0.key < $1.key }.map { ($0.key, $0.value) },
                      batchSize: batchSize, shuffle: shuffle, seed: seed, lastBatch: lastBatch)
    }

    private init(named data: [(String, NDArray)], labels: [(String, NDArray)], batchSize: Int, shuffle: Bool,
                 seed: UInt64, lastBatch: LastBatchHandling) throws {
        guard batchSize > 0 else {
            throw KilnDataError.invalidArgument("NDArrayIter needs a positive batch size, not \(batchSize)")
        }
        guard let first = data.first else {
            throw KilnDataError.invalidArgument("NDArrayIter needs at least one data array")
        }
        for (name, array) in data + labels {
            guard array.shape.rank >= 1 else {
                throw KilnDataError.invalidArgument(
                    "NDArrayIter's array '\(name)' is a scalar; examples must lie along axis 0")
            }
            guard array.shape[0] == first.1.shape[0] else {
                throw KilnDataError.invalidArgument(
                    "NDArrayIter's array '\(name)' holds \(array.shape[0]) examples (shape \(array.shape)) but '\(first.0)' holds \(first.1.shape[0])")
            }
        }
        func describe(_ named: [(String, NDArray)]) -> [DataDescription] {
            named.map { DataDescription(name: $0.0, shape: Shape([batchSize] + $0.1.rowShape.dims), dtype: $0.1.dtype) }
        }
        self.batchSize = batchSize
        self.shuffle = shuffle
        self.seed = seed
        self.lastBatch = lastBatch
        self.data = data.map(\.1)
        self.label = labels.map(\.1)
        provideData = describe(data)
        provideLabel = describe(labels)
        let count = first.1.shape[0]
        schedule = BatchSchedule(count: count, batchSize: batchSize, lastBatch: lastBatch,
                                 order: shuffle ? shuffledIndices(count: count, seed: seed, epoch: 0) : nil)
    }

    /// Starts a new pass, reshuffling if the iterator shuffles; with `.rollOver`, the examples left
    /// from the pass that ended come first.
    public func reset() {
        epoch += 1
        schedule.reset(order: nextOrder())
    }

    /// Starts a new pass and forgets any rolled-over examples (MXNet's `hard_reset`).
    public func hardReset() {
        epoch += 1
        schedule.hardReset(order: nextOrder())
    }

    public func next() throws -> DataBatch? {
        guard let (indices, pad) = try schedule.next() else { return nil }
        return DataBatch(data: data.map { $0.gatheringRows(indices) },
                         label: label.map { $0.gatheringRows(indices) }, pad: pad, index: indices)
    }

    private func nextOrder() -> [Int]? {
        shuffle ? shuffledIndices(count: schedule.count, seed: seed, epoch: epoch) : nil
    }
}
