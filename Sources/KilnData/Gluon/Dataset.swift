import KilnCore

/// One example of a ``Dataset``: its data and its label.
public typealias Sample = (data: NDArray, label: NDArray)

/// A random-access collection of examples (Gluon's `Dataset`).
///
/// Data sets are `Sendable` because a ``DataLoader`` reads one from several worker threads at
/// once: keep them immutable (arrays loaded up front, transforms that hold only their settings).
/// `item(at:using:)` receives the sample's own random-number generator, derived from the loader's
/// seed, the epoch and `index`, so that random transforms give the same result whichever thread
/// loads the sample.
public protocol Dataset: Sendable {
    /// The number of examples.
    var count: Int { get }
    /// Example `index` (in `0..<count`), drawing any random choice from `generator`.
    func item(at index: Int, using generator: inout SampleGenerator) throws -> Sample
}

extension Dataset {
    /// Example `index`, with the generator a loader seeded 0 would give it in epoch 0.
    public func item(at index: Int) throws -> Sample {
        var generator = SampleGenerator(seed: 0, epoch: 0, index: index)
        return try item(at: index, using: &generator)
    }

    /// Example `index`, as ``item(at:)`` gives it.
    public subscript(index: Int) -> Sample {
        get throws { try item(at: index) }
    }

    /// This data set with `transform` applied to each example's data (Gluon's `transform_first`).
    public func transformFirst(_ transform: some Transform) -> TransformedDataset {
        TransformedDataset(base: self) { sample, generator in
            (try transform.apply(sample.data, using: &generator), sample.label)
        }
    }

    /// This data set with `body` applied to each example (Gluon's `transform`).
    public func transform(
        _ body: @escaping @Sendable (Sample, inout SampleGenerator) throws -> Sample
    ) -> TransformedDataset {
        TransformedDataset(base: self, body: body)
    }

    /// Throws unless `index` is in `0..<count`; `name` names the data set in the message.
    func checkIndex(_ index: Int, name: String) throws {
        guard index >= 0 && index < count else {
            throw KilnDataError.invalidArgument("Index \(index) is outside \(name) of \(count) examples")
        }
    }
}

/// A data set whose examples pass through a function when read; made by
/// ``Dataset/transformFirst(_:)`` and ``Dataset/transform(_:)``.
public struct TransformedDataset: Dataset {
    /// The data set read.
    public let base: any Dataset
    private let body: @Sendable (Sample, inout SampleGenerator) throws -> Sample

    init(base: any Dataset, body: @escaping @Sendable (Sample, inout SampleGenerator) throws -> Sample) {
        self.base = base
        self.body = body
    }

    public var count: Int { base.count }

    public func item(at index: Int, using generator: inout SampleGenerator) throws -> Sample {
        try body(try base.item(at: index, using: &generator), &generator)
    }
}

/// Examples held in two arrays, one example per entry of axis 0 (Gluon's `ArrayDataset`).
///
/// With labels of shape (N,), each label is a 0-d array, and a ``DataLoader`` stacks them into (batch,).
public struct ArrayDataset: Dataset {
    public let data: NDArray
    public let label: NDArray

    /// Throws unless both arrays have at least one axis and the same extent along axis 0.
    public init(data: NDArray, label: NDArray) throws {
        guard data.shape.rank >= 1, label.shape.rank >= 1 else {
            throw KilnDataError.invalidArgument(
                "ArrayDataset needs arrays with examples along axis 0, got data \(data.shape) and label \(label.shape)")
        }
        guard data.shape[0] == label.shape[0] else {
            throw KilnDataError.invalidArgument(
                "ArrayDataset's data holds \(data.shape[0]) examples (shape \(data.shape)) but its label holds \(label.shape[0]) (shape \(label.shape))")
        }
        self.data = data
        self.label = label
    }

    public var count: Int { data.shape[0] }

    public func item(at index: Int, using generator: inout SampleGenerator) throws -> Sample {
        try checkIndex(index, name: "an ArrayDataset")
        return (data.row(index), label.row(index))
    }
}
