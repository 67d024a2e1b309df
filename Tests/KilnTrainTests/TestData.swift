import KilnCore

/// A minimal in-memory iterator for the Module tests (KilnData's NDArrayIter is not a dependency of
/// KilnTrain). Rows are served in order; the last batch is filled up from the start and marked
/// with `pad`, or served short.
final class ArrayIter: DataIter {
    enum LastBatch { case pad, short }

    let data: NDArray
    let label: NDArray?
    let batchSize: Int
    let lastBatch: LastBatch
    let dataName: String
    let labelName: String
    private var cursor = 0

    init(data: NDArray, label: NDArray?, batchSize: Int, lastBatch: LastBatch = .pad,
         dataName: String = "data", labelName: String = "softmax_label") {
        self.data = data
        self.label = label
        self.batchSize = batchSize
        self.lastBatch = lastBatch
        self.dataName = dataName
        self.labelName = labelName
    }

    var rowCount: Int { data.shape[0] }

    var provideData: [DataDescription] {
        [DataDescription(name: dataName, shape: Shape([batchSize] + data.shape.dims.dropFirst()))]
    }

    var provideLabel: [DataDescription] {
        guard let label else { return [] }
        return [DataDescription(name: labelName, shape: Shape([batchSize] + label.shape.dims.dropFirst()))]
    }

    func reset() { cursor = 0 }

    func next() throws -> DataBatch? {
        guard cursor < rowCount else { return nil }
        let available = min(batchSize, rowCount - cursor)
        var rows = Array(cursor..<(cursor + available))
        var pad = 0
        if available < batchSize && lastBatch == .pad {
            pad = batchSize - available
            rows += (0..<pad).map { $0 % rowCount }
        }
        cursor += available
        var labels: [NDArray] = []
        if let label { labels = [take(label, rows)] }
        return DataBatch(data: [take(data, rows)], label: labels, pad: pad, index: rows)
    }

    func take(_ a: NDArray, _ rows: [Int]) -> NDArray {
        let perRow = a.elementCount / a.shape[0]
        let v = a.floats()
        var out: [Float] = []
        out.reserveCapacity(rows.count * perRow)
        for r in rows { out.append(contentsOf: v[(r * perRow)..<((r + 1) * perRow)]) }
        return NDArray(shape: Shape([rows.count] + a.shape.dims.dropFirst()), values: out)
    }
}

/// Two Gaussian blobs in `features` dimensions, centred at -1.2 and +1.2 on every axis with standard
/// deviation 0.8: classes 0 and 1 alternate. The Bayes error is about 0.1% (centres 3 deviations from
/// the separating plane).
func gaussianBlobs(count: Int, features: Int = 4, seed: UInt64) -> (data: NDArray, label: NDArray) {
    var rng = SplitMix64(seed: seed)
    var x: [Float] = [], y: [Float] = []
    for i in 0..<count {
        let c = i % 2
        for _ in 0..<features { x.append((c == 0 ? -1.2 : 1.2) + 0.8 * rng.nextGaussian()) }
        y.append(Float(c))
    }
    return (NDArray(shape: [count, features], values: x), NDArray(shape: [count], values: y))
}
