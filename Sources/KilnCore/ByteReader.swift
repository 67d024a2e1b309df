import Foundation

/// A cursor over a file's bytes for the binary loaders (`.npy`, `.params`).
///
/// Every read names the field it is reading, and throws ``KilnCoreError/truncated(path:field:offset:needed:available:)``
/// instead of reading past the end, so a loader never needs to check lengths by hand. Integers are
/// read little-endian and unaligned.
struct ByteReader {
    let bytes: UnsafeRawBufferPointer
    /// The file name used in error messages.
    let source: String
    private(set) var offset = 0

    init(_ bytes: UnsafeRawBufferPointer, source: String) {
        self.bytes = bytes
        self.source = source
    }

    /// Bytes not yet read.
    var remaining: Int { bytes.count - offset }

    /// Throws unless `count` more bytes are there; use before allocating anything sized by the file.
    func require(_ count: Int, field: String) throws {
        guard count >= 0, count <= remaining else {
            throw KilnCoreError.truncated(path: source, field: field, offset: offset,
                                          needed: count, available: remaining)
        }
    }

    /// The next `count` bytes, without copying.
    mutating func take(_ count: Int, field: String) throws -> UnsafeRawBufferPointer {
        try require(count, field: field)
        let slice = UnsafeRawBufferPointer(rebasing: bytes[offset..<(offset + count)])
        offset += count
        return slice
    }

    /// The next little-endian integer of type `T`.
    mutating func read<T: FixedWidthInteger>(_ type: T.Type, field: String) throws -> T {
        let raw = try take(MemoryLayout<T>.size, field: field)
        return T(littleEndian: raw.loadUnaligned(as: T.self))
    }
}

/// Appends little-endian integers and raw bytes to a `Data` being written.
struct ByteWriter {
    private(set) var data: Data

    init(capacity: Int) { data = Data(capacity: capacity) }

    mutating func write<T: FixedWidthInteger>(_ value: T) {
        withUnsafeBytes(of: value.littleEndian) { data.append(contentsOf: $0) }
    }

    mutating func write(_ raw: UnsafeRawBufferPointer) {
        guard let base = raw.baseAddress, raw.count > 0 else { return }
        data.append(base.assumingMemoryBound(to: UInt8.self), count: raw.count)
    }

    mutating func write(_ bytes: some Collection<UInt8>) { data.append(contentsOf: bytes) }
}

extension Shape {
    /// The bytes that `dims` of `dtype` would need, or nil when a dimension is negative or the
    /// product of the dimensions and the item size overflows `Int`, zero-length dimensions counted as 1.
    ///
    /// Loaders call this before building a ``Shape``. Counting zeros as 1 means that any partial
    /// product of an accepted shape fits in `Int`, in any order: a shape such as (0, 2^62, 2^62) holds
    /// no elements, but its strides, computed from the right, would overflow and trap.
    static func checkedByteCount(dims: [Int], dtype: DType) -> Int? {
        var bound = dtype.byteSize
        var empty = false
        for d in dims {
            guard d >= 0 else { return nil }
            if d == 0 { empty = true }
            let (product, overflow) = bound.multipliedReportingOverflow(by: Swift.max(d, 1))
            if overflow { return nil }
            bound = product
        }
        return empty ? 0 : bound
    }
}

extension NDArray {
    /// An array holding a copy of `raw`, whose length the caller has checked against `shape` and `dtype`.
    /// With `byteSwapped`, each element's bytes are reversed (for big-endian files).
    init(shape: Shape, dtype: DType, copying raw: UnsafeRawBufferPointer, byteSwapped: Bool = false,
         source: String) throws {
        let need = shape.elementCount * dtype.byteSize
        guard raw.count == need else {
            throw KilnCoreError.sizeMismatch(what: "the array data of '\(source)' (shape \(shape), dtype \(dtype))",
                                             expected: need, actual: raw.count)
        }
        self.init(shape: shape, dtype: dtype, storage: Storage(byteCount: need, zeroed: false))
        guard let base = raw.baseAddress, need > 0 else { return }
        storage.pointer.copyMemory(from: base, byteCount: need)
        let size = dtype.byteSize
        if byteSwapped && size > 1 {
            let p = storage.pointer.assumingMemoryBound(to: UInt8.self)
            for start in stride(from: 0, to: need, by: size) {
                var i = start, j = start + size - 1
                while i < j { p.swapAt(i, j); i += 1; j -= 1 }
            }
        }
    }
}

extension UnsafeMutablePointer where Pointee == UInt8 {
    fileprivate func swapAt(_ i: Int, _ j: Int) {
        let t = self[i]; self[i] = self[j]; self[j] = t
    }
}

/// Reads a whole file, turning Foundation's errors into ``KilnCoreError/fileUnreadable(path:reason:)``.
func readFileData(_ url: URL) throws -> Data { try readFileContents(atPath: url.path) }

/// Writes a whole file atomically, turning Foundation's errors into ``KilnCoreError/fileUnwritable(path:reason:)``.
func writeFileData(_ data: Data, to url: URL) throws {
    do {
        try data.write(to: url, options: .atomic)
    } catch {
        throw KilnCoreError.fileUnwritable(path: url.path, reason: fileErrorReason(error))
    }
}
