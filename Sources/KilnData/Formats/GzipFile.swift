import CZlib
import Foundation

/// A file read through zlib's gz API, which inflates gzip files and passes other files through
/// unchanged, so one reader serves `train-images-idx3-ubyte` and `train-images-idx3-ubyte.gz`.
///
/// Reads grow their buffer as bytes arrive, so a header that claims more data than the file holds
/// costs the file's size in memory, not the claim's.
final class GzipFile {
    let path: String
    private var handle: gzFile?
    /// Bytes read so far (after inflation).
    private(set) var offset = 0

    init(path: String) throws {
        self.path = path
        guard let h = gzopen(path, "rb") else {
            throw KilnDataError.fileUnreadable(path: path, reason: String(cString: strerror(errno)))
        }
        handle = h
        gzbuffer(h, 1 << 20)
    }

    deinit { if let handle { gzclose(handle) } }

    /// Up to `count` bytes; fewer only at the end of the file.
    func read(upTo count: Int, field: String) throws -> [UInt8] {
        guard let handle else { return [] }
        var out: [UInt8] = []
        out.reserveCapacity(Swift.min(count, 1 << 20))
        var chunk = [UInt8](repeating: 0, count: Swift.min(count, 1 << 20))
        while out.count < count {
            let want = Swift.min(chunk.count, count - out.count)
            let got = chunk.withUnsafeMutableBytes { gzread(handle, $0.baseAddress, UInt32(want)) }
            if got < 0 {
                var code: Int32 = 0
                let message = gzerror(handle, &code).map { String(cString: $0) } ?? "zlib error \(code)"
                throw KilnDataError.malformedFile(path: path, field: field,
                                                  reason: "the compressed data is damaged (\(message))")
            }
            if got == 0 { break }
            out.append(contentsOf: chunk[0..<Int(got)])
            offset += Int(got)
        }
        return out
    }

    /// Exactly `count` bytes, or an error saying that the file ends inside `field`.
    func read(exactly count: Int, field: String) throws -> [UInt8] {
        let start = offset
        let bytes = try read(upTo: count, field: field)
        guard bytes.count == count else {
            throw KilnDataError.malformedFile(
                path: path, field: field,
                reason: "the file ends after \(bytes.count) of its \(count) bytes (at byte \(start + bytes.count) after decompression)")
        }
        return bytes
    }

    /// Whether the file has no more bytes.
    func atEnd() throws -> Bool { try read(upTo: 1, field: "the end of the file").isEmpty }
}

/// Writes `bytes` to `path` gzip-compressed (for tests and tools that make gzipped fixtures).
func writeGzipFile(path: String, bytes: [UInt8]) throws {
    guard let handle = gzopen(path, "wb") else {
        throw KilnDataError.invalidArgument("Cannot create '\(path)': \(String(cString: strerror(errno)))")
    }
    let written = bytes.withUnsafeBytes { gzwrite(handle, $0.baseAddress, UInt32($0.count)) }
    let closed = gzclose(handle)
    guard Int(written) == bytes.count || bytes.isEmpty, closed == Z_OK else {
        throw KilnDataError.invalidArgument("Writing the compressed data of '\(path)' failed")
    }
}
