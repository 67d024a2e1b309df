/// A dense, C-ordered n-dimensional array with value semantics.
///
/// Copies are cheap: two arrays share their buffer until one is mutated, at which point the mutated
/// one takes a private copy (copy-on-write). Reshaping never copies.
///
/// ```
/// var a = NDArray(shape: [2, 2], values: [1, 2, 3, 4])
/// let b = a          // shares a's buffer
/// a[flat: 0] = 10    // a copies; b still reads 1
/// ```
public struct NDArray: @unchecked Sendable, CustomStringConvertible {
    public private(set) var shape: Shape
    public private(set) var dtype: DType
    var storage: Storage

    /// A zero-filled array.
    public init(zeros shape: Shape, dtype: DType = .float32) {
        self.shape = shape
        self.dtype = dtype
        storage = Storage(byteCount: shape.elementCount * dtype.byteSize)
    }

    /// An array over a buffer its caller has sized for `shape` and `dtype` (for loaders that fill it).
    init(shape: Shape, dtype: DType, storage: Storage) {
        self.shape = shape
        self.dtype = dtype
        self.storage = storage
    }

    /// A float32 array from values in C order.
    ///
    /// - Precondition: `values.count == shape.elementCount`. This initializer is for values written in
    ///   code; data read from files goes through the throwing ``init(shape:dtype:bytes:)``.
    public init(shape: Shape, values: [Float]) {
        precondition(values.count == shape.elementCount,
                     "NDArray(shape: \(shape)) needs \(shape.elementCount) values, got \(values.count)")
        self.init(zeros: shape, dtype: .float32)
        values.withUnsafeBytes { storage.pointer.copyMemory(from: $0.baseAddress!, byteCount: $0.count) }
    }

    /// An array of any dtype from values in C order, converted to `dtype`.
    public init(shape: Shape, dtype: DType, values: [Double]) {
        precondition(values.count == shape.elementCount,
                     "NDArray(shape: \(shape)) needs \(shape.elementCount) values, got \(values.count)")
        self.init(zeros: shape, dtype: dtype)
        for (i, v) in values.enumerated() { setElement(i, v) }
    }

    /// An array whose little-endian element bytes are given; throws when their count does not fit.
    public init<Bytes: Collection>(shape: Shape, dtype: DType, bytes: Bytes) throws where Bytes.Element == UInt8 {
        let need = shape.elementCount * dtype.byteSize
        guard bytes.count == need else {
            throw KilnCoreError.sizeMismatch(what: "NDArray of shape \(shape) and dtype \(dtype)",
                                             expected: need, actual: bytes.count)
        }
        self.init(zeros: shape, dtype: dtype)
        let p = storage.pointer.assumingMemoryBound(to: UInt8.self)
        var i = 0
        for b in bytes { p[i] = b; i += 1 }
    }

    /// A 0-d float32 array.
    public static func scalar(_ value: Float) -> NDArray { NDArray(shape: [], values: [value]) }

    /// Number of elements.
    public var elementCount: Int { shape.elementCount }
    /// Number of bytes of element data.
    public var byteCount: Int { shape.elementCount * dtype.byteSize }

    // MARK: Raw access

    /// Calls `body` with the element bytes.
    public func withUnsafeBytes<R>(_ body: (UnsafeRawBufferPointer) throws -> R) rethrows -> R {
        try body(UnsafeRawBufferPointer(start: storage.pointer, count: byteCount))
    }

    /// Calls `body` with the element bytes for writing, copying the buffer first if it is shared.
    public mutating func withUnsafeMutableBytes<R>(_ body: (UnsafeMutableRawBufferPointer) throws -> R) rethrows -> R {
        makeUnique()
        return try body(UnsafeMutableRawBufferPointer(start: storage.pointer, count: byteCount))
    }

    /// Calls `body` with the elements typed as `T`.
    /// - Precondition: `MemoryLayout<T>.stride == dtype.byteSize`.
    public func withUnsafeBufferPointer<T, R>(as type: T.Type, _ body: (UnsafeBufferPointer<T>) throws -> R) rethrows -> R {
        precondition(MemoryLayout<T>.stride == dtype.byteSize, "reading \(dtype) elements as \(T.self)")
        return try body(UnsafeBufferPointer(start: storage.pointer.assumingMemoryBound(to: T.self), count: elementCount))
    }

    /// Calls `body` with the elements typed as `T` for writing, copying the buffer first if it is shared.
    /// - Precondition: `MemoryLayout<T>.stride == dtype.byteSize`.
    public mutating func withUnsafeMutableBufferPointer<T, R>(as type: T.Type, _ body: (UnsafeMutableBufferPointer<T>) throws -> R) rethrows -> R {
        precondition(MemoryLayout<T>.stride == dtype.byteSize, "writing \(dtype) elements as \(T.self)")
        makeUnique()
        return try body(UnsafeMutableBufferPointer(start: storage.pointer.assumingMemoryBound(to: T.self), count: elementCount))
    }

    /// Whether two arrays share one buffer (for tests of copy-on-write and of in-place kernels).
    public func sharesStorage(with other: NDArray) -> Bool { storage === other.storage }

    mutating func makeUnique() {
        if !isKnownUniquelyReferenced(&storage) { storage = storage.copy() }
    }

    // MARK: Elements

    /// Element `i` (C order) converted to Double.
    public func element(_ i: Int) -> Double {
        let p = storage.pointer
        switch dtype {
        case .float32: return Double(p.load(fromByteOffset: i * 4, as: Float.self))
        case .float64: return p.load(fromByteOffset: i * 8, as: Double.self)
        case .float16: return Double(Float(bitPattern: halfToFloatBits(p.load(fromByteOffset: i * 2, as: UInt16.self))))
        case .bfloat16: return Double(Float(bitPattern: UInt32(p.load(fromByteOffset: i * 2, as: UInt16.self)) << 16))
        case .uint8: return Double(p.load(fromByteOffset: i, as: UInt8.self))
        case .int8: return Double(p.load(fromByteOffset: i, as: Int8.self))
        case .int32: return Double(p.load(fromByteOffset: i * 4, as: Int32.self))
        case .int64: return Double(p.load(fromByteOffset: i * 8, as: Int64.self))
        }
    }

    /// Sets element `i` (C order), converting from Double as a C cast would (integers truncate toward zero).
    public mutating func setElement(_ i: Int, _ value: Double) {
        makeUnique()
        let p = storage.pointer
        switch dtype {
        case .float32: p.storeBytes(of: Float(value), toByteOffset: i * 4, as: Float.self)
        case .float64: p.storeBytes(of: value, toByteOffset: i * 8, as: Double.self)
        case .float16: p.storeBytes(of: floatToHalfBits(Float(value)), toByteOffset: i * 2, as: UInt16.self)
        case .bfloat16: p.storeBytes(of: floatToBFloat16Bits(Float(value)), toByteOffset: i * 2, as: UInt16.self)
        case .uint8: p.storeBytes(of: UInt8(truncatingIfNeeded: Int(clampedInteger: value)), toByteOffset: i, as: UInt8.self)
        case .int8: p.storeBytes(of: Int8(truncatingIfNeeded: Int(clampedInteger: value)), toByteOffset: i, as: Int8.self)
        case .int32: p.storeBytes(of: Int32(truncatingIfNeeded: Int(clampedInteger: value)), toByteOffset: i * 4, as: Int32.self)
        case .int64: p.storeBytes(of: Int64(clampedInteger: value), toByteOffset: i * 8, as: Int64.self)
        }
    }

    /// Element `i` in C order as Float. Reading works for any dtype; writing converts.
    public subscript(flat i: Int) -> Float {
        get {
            if dtype == .float32 { return storage.pointer.load(fromByteOffset: i * 4, as: Float.self) }
            return Float(element(i))
        }
        set { setElement(i, Double(newValue)) }
    }

    /// All elements converted to Float, in C order.
    public func floats() -> [Float] {
        if dtype == .float32 { return withUnsafeBufferPointer(as: Float.self) { Array($0) } }
        return (0..<elementCount).map { Float(element($0)) }
    }

    /// All elements converted to Double, in C order.
    public func doubles() -> [Double] { (0..<elementCount).map(element) }

    /// The same elements converted to another dtype (float to integer truncates toward zero, as MXNet's Cast).
    public func converted(to newType: DType) -> NDArray {
        if newType == dtype { return self }
        var out = NDArray(zeros: shape, dtype: newType)
        if dtype == .float32 && newType == .float16 {
            withUnsafeBufferPointer(as: Float.self) { src in
                out.withUnsafeMutableBufferPointer(as: UInt16.self) { dst in
                    for i in 0..<src.count { dst[i] = floatToHalfBits(src[i]) }
                }
            }
            return out
        }
        for i in 0..<elementCount { out.setElement(i, element(i)) }
        return out
    }

    /// The same elements viewed with another shape of equal element count (no copy).
    public func reshaped(_ newShape: Shape) throws -> NDArray {
        guard newShape.elementCount == shape.elementCount else {
            throw KilnCoreError.invalidReshape(from: shape, to: newShape)
        }
        var r = self
        r.shape = newShape
        return r
    }

    public var description: String {
        let n = Swift.min(elementCount, 8)
        let head = (0..<n).map { String(element($0)) }.joined(separator: ", ")
        return "NDArray<\(dtype)>\(shape) [\(head)\(elementCount > n ? ", ..." : "")]"
    }
}

extension Int {
    /// Truncates toward zero like a C cast, saturating instead of trapping on NaN or out-of-range values.
    init(clampedInteger value: Double) {
        if value.isNaN { self = 0 } else if value >= 9.2e18 { self = Int.max } else if value <= -9.2e18 { self = Int.min } else { self = Int(value) }
    }
}

extension Int64 {
    init(clampedInteger value: Double) { self = Int64(Int(clampedInteger: value)) }
}
