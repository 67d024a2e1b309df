/// The dimensions of an ``NDArray``, outermost first (C order).
public struct Shape: Hashable, Sendable, ExpressibleByArrayLiteral, CustomStringConvertible, RandomAccessCollection {
    /// The extent of each axis.
    public var dims: [Int]

    public init(_ dims: [Int]) { self.dims = dims }
    public init(arrayLiteral elements: Int...) { self.dims = elements }

    /// Number of axes.
    public var rank: Int { dims.count }
    /// Number of elements (1 for a scalar shape `[]`).
    public var elementCount: Int { dims.reduce(1, *) }

    /// The number of elements, or nil when a dimension is negative or the product of the nonzero
    /// dimensions overflows Int. A non-nil count means that every product of some of the dimensions
    /// fits in Int too, which a zero dimension alone would not promise: `(0, 2^32, 2^32)` has no
    /// elements, but flattening its last two axes overflows.
    public var checkedElementCount: Int? { Shape.checkedByteCount(dims: dims, dtype: .uint8) }

    /// C-order strides in elements.
    public var strides: [Int] {
        var s = [Int](repeating: 1, count: dims.count)
        var acc = 1
        for i in stride(from: dims.count - 1, through: 0, by: -1) {
            s[i] = acc
            acc *= dims[i]
        }
        return s
    }

    /// Normalizes a possibly negative axis; returns nil when it is out of range.
    public func normalizedAxis(_ axis: Int) -> Int? {
        let a = axis < 0 ? axis + rank : axis
        return (0..<rank).contains(a) ? a : nil
    }

    /// Written as MXNet writes shapes: `(2, 3, 4)`.
    public var description: String {
        dims.count == 1 ? "(\(dims[0]),)" : "(" + dims.map(String.init).joined(separator: ", ") + ")"
    }

    public var startIndex: Int { 0 }
    public var endIndex: Int { dims.count }
    public subscript(position: Int) -> Int {
        get { dims[position] }
        set { dims[position] = newValue }
    }
}
