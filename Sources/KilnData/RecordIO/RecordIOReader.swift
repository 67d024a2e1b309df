import Foundation
#if canImport(Glibc)
import Glibc
#endif

/// Reads the records of a RecordIO (`.rec`) file, sequentially or by offset and key.
///
/// ```
/// let reader = try RecordIOReader(path: "train.rec", indexPath: "train.idx")
/// while let record = try reader.next() { ... }           // in file order
/// let third = try reader.record(forKey: 2)               // through the index
/// ```
///
/// Reads by offset and key (``record(at:)``, ``record(forKey:)``) use positioned reads and may run on
/// several threads at once; the sequential cursor (``next()``, ``reset()``, ``seek(to:)``) may not.
/// Every record is checked as dmlc-core's reader checks it, plus the order of part flags, and a file
/// that breaks off inside a record throws ``KilnDataError/malformedFile(path:field:reason:)``.
public final class RecordIOReader: @unchecked Sendable {
    /// The `.rec` file.
    public let path: String
    /// The `.idx` file's entries, when one was given.
    public let index: RecordIOIndex?
    /// The file's size in bytes.
    public let fileSize: Int
    /// Where the next sequential read starts.
    public private(set) var position = 0
    private let descriptor: Int32

    /// Opens `path`, and reads the index at `indexPath` if one is given.
    public init(path: String, indexPath: String? = nil) throws {
        self.path = path
        let fd = open(path, O_RDONLY)
        guard fd >= 0 else {
            throw KilnDataError.fileUnreadable(path: path, reason: String(cString: strerror(errno)))
        }
        var info = stat()
        guard fstat(fd, &info) == 0 else {
            let reason = String(cString: strerror(errno))
            close(fd)
            throw KilnDataError.fileUnreadable(path: path, reason: reason)
        }
        descriptor = fd
        fileSize = Int(info.st_size)
        do {
            index = try indexPath.map { try RecordIOIndex(path: $0) }
        } catch {
            close(fd)
            throw error
        }
    }

    deinit { close(descriptor) }

    // MARK: Sequential reading

    /// The next record's payload, or nil at the end of the file.
    public func next() throws -> [UInt8]? {
        guard position < fileSize else { return nil }
        let (payload, end) = try readRecord(at: position, loadPayload: true)
        position = end
        return payload
    }

    /// Moves the sequential cursor back to the first record.
    public func reset() { position = 0 }

    /// Moves the sequential cursor to a record's byte offset (from the index or ``scanOffsets()``).
    public func seek(to offset: Int) { position = offset }

    // MARK: Random access

    /// The payload of the record that starts at byte `offset`.
    public func record(at offset: Int) throws -> [UInt8] {
        try readRecord(at: offset, loadPayload: true).payload
    }

    /// The payload of the record the index gives for `key`.
    public func record(forKey key: Int) throws -> [UInt8] {
        guard let index else {
            throw KilnDataError.invalidArgument("Reading '\(path)' by key needs its .idx file; none was given")
        }
        guard let offset = index.offset(forKey: key) else {
            throw KilnDataError.invalidArgument("The index of '\(path)' has no key \(key)")
        }
        return try record(at: offset)
    }

    /// The byte offset of every record, found by walking the part headers without reading payloads
    /// (for files that came without an index).
    public func scanOffsets() throws -> [Int] {
        var offsets: [Int] = []
        var offset = 0
        while offset < fileSize {
            offsets.append(offset)
            offset = try readRecord(at: offset, loadPayload: false).end
        }
        return offsets
    }

    // MARK: Parsing

    /// Reads the parts of the record at `offset`; returns its payload (empty unless `loadPayload`) and
    /// the offset just past its last part.
    private func readRecord(at offset: Int, loadPayload: Bool) throws -> (payload: [UInt8], end: Int) {
        let field = "the record at byte \(offset)"
        guard offset >= 0, offset < fileSize else {
            throw KilnDataError.malformedFile(path: path, field: field,
                                              reason: "the offset is outside the file of \(fileSize) bytes")
        }
        var payload: [UInt8] = []
        var position = offset
        var partCount = 0
        while true {
            guard position + 8 <= fileSize else {
                throw KilnDataError.malformedFile(
                    path: path, field: field,
                    reason: "the file ends \(fileSize - position) bytes into the 8-byte header of part \(partCount + 1)")
            }
            let header = try readBytes(count: 8, at: position, field: field)
            let magic = UInt32(header[0]) | UInt32(header[1]) << 8 | UInt32(header[2]) << 16 | UInt32(header[3]) << 24
            let lrecord = UInt32(header[4]) | UInt32(header[5]) << 8 | UInt32(header[6]) << 16 | UInt32(header[7]) << 24
            guard magic == RecordIO.magic else {
                throw KilnDataError.malformedFile(
                    path: path, field: field,
                    reason: "part \(partCount + 1) at byte \(position) starts with 0x\(String(magic, radix: 16)), not RecordIO's magic 0xced7230a")
            }
            let length = Int(lrecord & UInt32(RecordIO.maxRecordLength))
            guard let flag = RecordIO.PartFlag(rawValue: lrecord >> 29) else {
                throw KilnDataError.malformedFile(path: path, field: field,
                                                  reason: "part \(partCount + 1) has the unknown cflag \(lrecord >> 29)")
            }
            let continuing = flag == .middle || flag == .last
            guard continuing == (partCount > 0) else {
                throw KilnDataError.malformedFile(
                    path: path, field: field,
                    reason: partCount == 0 ? "its first part is marked as a continuation (cflag \(flag.rawValue))"
                                           : "part \(partCount + 1) starts a new record (cflag \(flag.rawValue)) before the last part")
            }
            let stored = RecordIO.aligned(length)
            guard position + 8 + stored <= fileSize else {
                throw KilnDataError.malformedFile(
                    path: path, field: field,
                    reason: "part \(partCount + 1) needs \(stored) bytes but the file ends after \(fileSize - position - 8)")
            }
            if loadPayload {
                if partCount > 0 { payload.append(contentsOf: RecordIO.magicBytes) }
                payload.append(contentsOf: try readBytes(count: length, at: position + 8, field: field))
                guard payload.count <= RecordIO.maxRecordLength else {
                    throw KilnDataError.malformedFile(path: path, field: field,
                                                      reason: "its parts add up to more than RecordIO's 2^29 - 1 bytes")
                }
            }
            position += 8 + stored
            partCount += 1
            if flag == .whole || flag == .last { return (payload, position) }
        }
    }

    private func readBytes(count: Int, at offset: Int, field: String) throws -> [UInt8] {
        var bytes = [UInt8](repeating: 0, count: count)
        var done = 0
        try bytes.withUnsafeMutableBytes { buffer in
            guard let base = buffer.baseAddress else { return }
            while done < count {
                let n = pread(descriptor, base + done, count - done, off_t(offset + done))
                if n > 0 {
                    done += n
                } else if n < 0 && errno == EINTR {
                    continue
                } else {
                    let reason = n == 0 ? "the file ended early (was it truncated while open?)" : String(cString: strerror(errno))
                    throw KilnDataError.fileUnreadable(path: path, reason: "\(field): \(reason)")
                }
            }
        }
        return bytes
    }
}
