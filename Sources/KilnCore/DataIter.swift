/// The name, shape and dtype of one array a data iterator yields (MXNet's `DataDesc`).
public struct DataDescription: Sendable, Equatable, CustomStringConvertible {
    public var name: String
    public var shape: Shape
    public var dtype: DType

    public init(name: String, shape: Shape, dtype: DType = .float32) {
        self.name = name
        self.shape = shape
        self.dtype = dtype
    }

    public var description: String { "\(name) \(shape) \(dtype)" }
}

/// One batch from a ``DataIter``: data and label arrays in the order of `provideData` and
/// `provideLabel`.
public struct DataBatch: Sendable {
    public var data: [NDArray]
    public var label: [NDArray]
    /// How many examples at the end of the batch are padding (a last batch filled up from the start).
    public var pad: Int
    /// The examples' indices in the data set, when the iterator knows them.
    public var index: [Int]?

    public init(data: [NDArray], label: [NDArray], pad: Int = 0, index: [Int]? = nil) {
        self.data = data
        self.label = label
        self.pad = pad
        self.index = index
    }
}

/// A source of batches (MXNet's `DataIter`). It lives in KilnCore so that both the data pipeline
/// (KilnData), which makes iterators, and training (KilnTrain), which consumes them, can name it
/// without depending on each other.
///
/// ```
/// iterator.reset()
/// while let batch = try iterator.next() { ... }
/// ```
public protocol DataIter: AnyObject {
    /// Examples per batch.
    var batchSize: Int { get }
    /// What each batch's `data` holds.
    var provideData: [DataDescription] { get }
    /// What each batch's `label` holds.
    var provideLabel: [DataDescription] { get }
    /// Starts a new pass over the data (reshuffling, if the iterator shuffles).
    func reset()
    /// The next batch, or nil at the end of the pass.
    func next() throws -> DataBatch?
}
