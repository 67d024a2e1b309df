// RecordIO: dmlc-core's splittable record format, as MXNet writes its `.rec` files.
//
// A record is stored as one or more parts. Each part starts on a 4-byte boundary:
//
//     magic 0xced7230a (u32 LE) | lrecord (u32 LE) = cflag << 29 | length | length bytes | zero pad to 4
//
// The writer cuts a payload wherever the magic appears at a 4-aligned offset inside it, so that a
// reader that lost its place can find the next record by scanning for the magic. The magic it cut
// out is implied between two parts. cflag says which part this is:
//
//     payload        "head" ced7230a "tail!"            (the magic at offset 4)
//     parts          [cflag 1, len 4] "head"
//                    [cflag 3, len 5] "tail!" 00 00 00
//     cflag          0 whole record, 1 first part, 2 middle part, 3 last part
//
// Only the last part can have a length that is not a multiple of 4 (the others end where an aligned
// magic began), so only the last part is padded. A magic at an unaligned offset is left in place.

/// Constants and the part codec of RecordIO (dmlc-core's `recordio.h`), shared by
/// ``RecordIOReader`` and ``RecordIOWriter``.
public enum RecordIO {
    /// The magic number at the start of every part.
    public static let magic: UInt32 = 0xCED7_230A
    /// The largest payload dmlc-core's writer accepts (a part's length field has 29 bits).
    public static let maxRecordLength = (1 << 29) - 1

    /// The magic as it appears in a file (little-endian).
    static let magicBytes: [UInt8] = [0x0A, 0x23, 0xD7, 0xCE]

    /// Which part of a record a part is.
    enum PartFlag: UInt32 {
        case whole = 0, first = 1, middle = 2, last = 3
    }

    static func lrecord(_ flag: PartFlag, length: Int) -> UInt32 {
        flag.rawValue << 29 | UInt32(length)
    }

    /// `n` rounded up to a multiple of 4.
    static func aligned(_ n: Int) -> Int { (n + 3) & ~3 }

    /// The bytes of one record as the writer lays them out, with its parts and padding.
    static func encode(_ payload: UnsafeRawBufferPointer) -> [UInt8] {
        var out: [UInt8] = []
        out.reserveCapacity(aligned(payload.count) + 8)
        func appendPart(_ flag: PartFlag, _ range: Range<Int>) {
            out.append(contentsOf: magicBytes)
            withUnsafeBytes(of: lrecord(flag, length: range.count).littleEndian) { out.append(contentsOf: $0) }
            out.append(contentsOf: payload[range])
        }
        var start = 0
        var offset = 0
        while offset + 4 <= payload.count {
            if payload[offset] == magicBytes[0], payload[offset + 1] == magicBytes[1],
               payload[offset + 2] == magicBytes[2], payload[offset + 3] == magicBytes[3] {
                appendPart(start == 0 ? .first : .middle, start..<offset)
                start = offset + 4
            }
            offset += 4
        }
        appendPart(start == 0 ? .whole : .last, start..<payload.count)
        out.append(contentsOf: repeatElement(0, count: aligned(payload.count) - payload.count))
        return out
    }
}
