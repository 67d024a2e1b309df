import Foundation
#if canImport(Glibc)
import Glibc
#endif

/// Writes a RecordIO (`.rec`) file byte for byte as MXNet's `MXRecordIO` does, and optionally its
/// `.idx` file as `MXIndexedRecordIO.write_idx` does.
///
/// ```
/// let writer = try RecordIOWriter(path: "data.rec", indexPath: "data.idx")
/// try writer.write(ImageRecord(label: 3, id: 0, image: jpegBytes).packed(), key: 0)
/// try writer.close()
/// ```
///
/// Both files are created (or truncated) at once. Records are buffered; ``close()`` writes out what
/// is left and reports any error, and `deinit` closes a writer that was not closed, silently.
public final class RecordIOWriter {
    /// The `.rec` file.
    public let path: String
    /// The `.idx` file, if one is written.
    public let indexPath: String?
    /// The byte offset where the next record will start (MXNet's `tell()`).
    public private(set) var offset = 0
    private var descriptor: Int32
    private var indexDescriptor: Int32
    private var buffer: [UInt8] = []
    private var indexBuffer = ""
    private static let flushSize = 1 << 20

    /// Creates or truncates `path`, and `indexPath` when given.
    public init(path: String, indexPath: String? = nil) throws {
        self.path = path
        self.indexPath = indexPath
        descriptor = try Self.create(path)
        indexDescriptor = -1
        if let indexPath {
            do {
                indexDescriptor = try Self.create(indexPath)
            } catch {
                Glibc.close(descriptor)
                throw error
            }
        }
    }

    deinit { try? close() }

    /// Appends one record; returns the byte offset it starts at.
    @discardableResult
    public func write(_ payload: [UInt8]) throws -> Int {
        guard descriptor >= 0 else {
            throw KilnDataError.invalidArgument("The RecordIO writer of '\(path)' is closed")
        }
        guard payload.count <= RecordIO.maxRecordLength else {
            throw KilnDataError.invalidArgument(
                "A record of \(payload.count) bytes does not fit RecordIO's limit of 2^29 - 1 bytes ('\(path)')")
        }
        let start = offset
        let bytes = payload.withUnsafeBytes { RecordIO.encode($0) }
        buffer.append(contentsOf: bytes)
        offset += bytes.count
        if buffer.count >= Self.flushSize { try flush() }
        return start
    }

    /// Appends one record and its `key<TAB>offset` line to the index.
    @discardableResult
    public func write(_ payload: [UInt8], key: Int) throws -> Int {
        guard indexPath != nil else {
            throw KilnDataError.invalidArgument("Writing '\(path)' with keys needs an indexPath for its .idx file")
        }
        let start = try write(payload)
        indexBuffer += "\(key)\t\(start)\n"
        return start
    }

    /// Writes out buffered records and index lines.
    public func flush() throws {
        if descriptor >= 0, !buffer.isEmpty {
            try Self.writeAll(buffer, to: descriptor, path: path)
            buffer.removeAll(keepingCapacity: true)
        }
        if indexDescriptor >= 0, let indexPath, !indexBuffer.isEmpty {
            try Self.writeAll(Array(indexBuffer.utf8), to: indexDescriptor, path: indexPath)
            indexBuffer = ""
        }
    }

    /// Flushes and closes both files. Closing twice does nothing.
    public func close() throws {
        defer {
            if descriptor >= 0 { Glibc.close(descriptor) }
            if indexDescriptor >= 0 { Glibc.close(indexDescriptor) }
            descriptor = -1
            indexDescriptor = -1
        }
        try flush()
    }

    private static func create(_ path: String) throws -> Int32 {
        let fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0o644)
        guard fd >= 0 else {
            throw KilnDataError.fileUnwritable(path: path, reason: String(cString: strerror(errno)))
        }
        return fd
    }

    private static func writeAll(_ bytes: [UInt8], to fd: Int32, path: String) throws {
        try bytes.withUnsafeBytes { raw in
            guard let base = raw.baseAddress else { return }
            var done = 0
            while done < raw.count {
                let n = Glibc.write(fd, base + done, raw.count - done)
                if n > 0 {
                    done += n
                } else if n < 0 && errno == EINTR {
                    continue
                } else {
                    throw KilnDataError.fileUnwritable(path: path, reason: String(cString: strerror(errno)))
                }
            }
        }
    }
}
