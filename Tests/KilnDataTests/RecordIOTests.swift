import Foundation
import KilnCore
@testable import KilnData
import Testing
import TestSupport

/// Scratch files and fixtures shared by the RecordIO and image tests.
enum RecordIOTestFiles {
    /// A fresh path in a per-process scratch folder.
    static func scratch(_ name: String) -> String {
        let dir = FileManager.default.temporaryDirectory
            .appendingPathComponent("kiln-recordio-tests")
        try? FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
        return dir.appendingPathComponent("\(UUID().uuidString)-\(name)").path
    }

    static func golden(_ name: String) -> String { Fixtures.url("golden/recordio/\(name)").path }

    static func bytes(_ path: String) throws -> [UInt8] { [UInt8](try Data(contentsOf: URL(fileURLWithPath: path))) }

    static func write(_ bytes: [UInt8], to path: String) throws { try Data(bytes).write(to: URL(fileURLWithPath: path)) }

    /// The error `body` threw, as a KilnDataError (nil if it returned or threw something else).
    static func error<T>(_ body: () throws -> T) -> KilnDataError? {
        do { _ = try body(); return nil } catch let e as KilnDataError { return e } catch { return nil }
    }

    static func remove(_ paths: String...) {
        for p in paths { try? FileManager.default.removeItem(atPath: p) }
    }
}

private typealias Files = RecordIOTestFiles

private func hexBytes(_ hex: String) -> [UInt8] {
    var out: [UInt8] = []
    var i = hex.startIndex
    while i < hex.endIndex {
        let j = hex.index(i, offsetBy: 2)
        out.append(UInt8(hex[i..<j], radix: 16) ?? 0)
        i = j
    }
    return out
}

private let magic: [UInt8] = [0x0A, 0x23, 0xD7, 0xCE]

/// Writes `payloads` with keys 0..., returns the .rec and .idx paths.
private func writeRecords(_ payloads: [[UInt8]], name: String = "t") throws -> (rec: String, idx: String) {
    let rec = Files.scratch("\(name).rec"), idx = Files.scratch("\(name).idx")
    let writer = try RecordIOWriter(path: rec, indexPath: idx)
    for (i, p) in payloads.enumerated() { try writer.write(p, key: i) }
    try writer.close()
    return (rec, idx)
}

// MARK: - The format, by hand

@Suite("RecordIO format")
struct RecordIOFormatTests {
    @Test("A short payload: magic, lrecord with cflag 0, data, zero padding to 4")
    func wholeRecord() {
        let encoded = [UInt8]("abcde".utf8).withUnsafeBytes { RecordIO.encode($0) }
        #expect(encoded == magic + [5, 0, 0, 0] + Array("abcde".utf8) + [0, 0, 0])
    }

    @Test("The magic at an aligned offset splits the payload: cflag 1 then 3, the magic left out")
    func alignedMagicSplits() {
        let payload = Array("head".utf8) + magic + Array("tail!".utf8)
        let encoded = payload.withUnsafeBytes { RecordIO.encode($0) }
        let expected = magic + [4, 0, 0, 0x20] + Array("head".utf8)      // cflag 1 << 29 = 0x20000000
            + magic + [5, 0, 0, 0x60] + Array("tail!".utf8) + [0, 0, 0]  // cflag 3 << 29 = 0x60000000
        #expect(encoded == expected)
    }

    @Test("The magic three times: first, middle and last parts, the last empty")
    func middleParts() {
        let payload = magic + Array("abcd".utf8) + magic + magic
        let encoded = payload.withUnsafeBytes { RecordIO.encode($0) }
        let expected = magic + [0, 0, 0, 0x20]                         // first, empty
            + magic + [4, 0, 0, 0x40] + Array("abcd".utf8)              // middle, cflag 2
            + magic + [0, 0, 0, 0x40]                                   // middle, empty
            + magic + [0, 0, 0, 0x60]                                   // last, empty
        #expect(encoded == expected)
    }

    @Test("The magic at an unaligned offset stays in the data")
    func unalignedMagicStays() {
        let payload = Array("ab".utf8) + magic + Array("cd".utf8)
        let encoded = payload.withUnsafeBytes { RecordIO.encode($0) }
        #expect(encoded == magic + [8, 0, 0, 0] + payload)
    }

    @Test("Every length 0...12 round-trips, each record starts 4-aligned", arguments: 0...12)
    func lengths(_ n: Int) throws {
        let payloads = (0..<3).map { r in (0..<n).map { UInt8(truncatingIfNeeded: $0 * 7 + r) } }
        let (rec, idx) = try writeRecords(payloads)
        defer { Files.remove(rec, idx) }
        let size = try Files.bytes(rec).count
        #expect(size == 3 * (8 + (n + 3) / 4 * 4))
        let reader = try RecordIOReader(path: rec, indexPath: idx)
        #expect(reader.index?.entries.map(\.offset) == [0, 1, 2].map { $0 * (8 + (n + 3) / 4 * 4) })
        #expect(try reader.scanOffsets().allSatisfy { $0 % 4 == 0 })
        for p in payloads { #expect(try reader.next() == p) }
        #expect(try reader.next() == nil)
    }

    @Test("Random payloads with the magic planted at random offsets round-trip", arguments: [1, 2, 3, 4, 5])
    func randomPayloadsWithMagic(_ seed: UInt64) throws {
        var rng = SplitMix64(seed: seed)
        var payloads: [[UInt8]] = []
        for _ in 0..<20 {
            var p = (0..<Int.random(in: 0...300, using: &rng)).map { _ in UInt8.random(in: 0...255, using: &rng) }
            for _ in 0..<Int.random(in: 0...4, using: &rng) where p.count >= 4 {
                let at = Int.random(in: 0...(p.count - 4), using: &rng)
                p.replaceSubrange(at..<(at + 4), with: magic)
            }
            payloads.append(p)
        }
        let (rec, idx) = try writeRecords(payloads)
        defer { Files.remove(rec, idx) }
        let reader = try RecordIOReader(path: rec, indexPath: idx)
        for (i, p) in payloads.enumerated() { #expect(try reader.record(forKey: i) == p, "record \(i)") }
        reader.reset()
        for p in payloads { #expect(try reader.next() == p) }
        #expect(try reader.scanOffsets() == reader.index?.entries.map(\.offset))
    }
}

// MARK: - Files written by MXNet 1.9.1

@Suite("RecordIO against MXNet's files")
struct RecordIOGoldenTests {
    let payloads: [[UInt8]]

    init() throws {
        let data = try Data(contentsOf: URL(fileURLWithPath: Files.golden("raw.json")))
        payloads = (try JSONDecoder().decode([String].self, from: data)).map(hexBytes)
    }

    @Test("Reading MXNet's raw.rec sequentially gives its payloads, magic-bearing ones included")
    func sequential() throws {
        #expect(payloads.count == 12)
        let reader = try RecordIOReader(path: Files.golden("raw.rec"))
        for (i, p) in payloads.enumerated() { #expect(try reader.next() == p, "record \(i)") }
        #expect(try reader.next() == nil)
    }

    @Test("Reading by key through MXNet's .idx, in reverse order")
    func byKey() throws {
        let reader = try RecordIOReader(path: Files.golden("raw.rec"), indexPath: Files.golden("raw.idx"))
        #expect(reader.index?.keys == Array(0..<12))
        for i in (0..<12).reversed() { #expect(try reader.record(forKey: i) == payloads[i]) }
        #expect(try reader.scanOffsets() == reader.index?.entries.map(\.offset))
    }

    @Test("Our writer gives MXNet's .rec and .idx byte for byte")
    func writerMatchesMXNet() throws {
        let (rec, idx) = try writeRecords(payloads)
        defer { Files.remove(rec, idx) }
        #expect(try Files.bytes(rec) == Files.bytes(Files.golden("raw.rec")))
        #expect(try Files.bytes(idx) == Files.bytes(Files.golden("raw.idx")))
    }

    @Test("MXNet's image records: IRHeader labels and ids, then the image bytes")
    func imageHeaders() throws {
        let reader = try RecordIOReader(path: Files.golden("images.rec"), indexPath: Files.golden("images.idx"))
        for i in 0..<6 {
            let record = try ImageRecord(packed: try reader.record(forKey: i), source: "images.rec")
            #expect(record.header == ImageRecordHeader(flag: 0, label: Float(i) * 1.5, id: UInt64(100 + i)))
            #expect(record.labels == [Float(i) * 1.5])
            #expect(ImageCodec.format(of: record.image) == (i < 3 ? .png : .jpeg))
            // Packing what we read gives MXNet's payload back.
            #expect(record.packed() == (try reader.record(forKey: i)))
        }
    }

    @Test("MXNet's multi-label records: flag 3, label 0, three floats before the image")
    func multiLabel() throws {
        let reader = try RecordIOReader(path: Files.golden("multilabel.rec"))
        for i in 0..<2 {
            let payload = try #require(try reader.next())
            let record = try ImageRecord(packed: payload, source: "multilabel.rec")
            #expect(record.header.flag == 3)
            #expect(record.header.label == 0)
            #expect(record.header.id == UInt64(7 + i))
            #expect(record.labels == [Float(i), 0.5 + Float(i), -2 * Float(i)])
            #expect(record.packed() == payload)
        }
    }
}

// MARK: - Image records

@Suite("Image records")
struct ImageRecordTests {
    @Test("The packed header is IfQQ little-endian: flag, label bits, id, id2")
    func headerLayout() {
        let packed = ImageRecord(label: 2.5, id: 0x0102_0304_0506_0708, id2: 9, image: [0xAA, 0xBB]).packed()
        let expected: [UInt8] = [0, 0, 0, 0] + [0, 0, 0x20, 0x40]                 // flag 0, 2.5f
            + [8, 7, 6, 5, 4, 3, 2, 1] + [9, 0, 0, 0, 0, 0, 0, 0] + [0xAA, 0xBB]
        #expect(packed == expected)
    }

    @Test("Array labels set flag to their count and the header label to 0, even for one label")
    func arrayLabels() throws {
        let one = ImageRecord(labels: [7], id: 1, image: [1])
        #expect(one.packed().prefix(8).elementsEqual([1, 0, 0, 0, 0, 0, 0, 0]))
        let back = try ImageRecord(packed: one.packed(), source: "test")
        #expect(back.header.flag == 1 && back.labels == [7] && back.image == [1])
    }

    @Test("A record shorter than its header, or than its labels, throws naming the header")
    func shortRecords() {
        let short = Files.error { try ImageRecord(packed: [1, 2, 3], source: "record 5 of 'x.rec'") }
        #expect(short?.description == "The file 'record 5 of 'x.rec'' is malformed at the image record header: the record has 3 bytes, fewer than the header's 24.")
        var packed = ImageRecord(labels: [1, 2], id: 0, image: []).packed()
        packed.removeLast(2)
        let cut = Files.error { try ImageRecord(packed: packed, source: "r") }
        #expect(cut?.description.contains("flag 2 announces 2 labels (8 bytes) but only 6 bytes follow") == true)
    }

    @Test("pack_img-like records hold decodable images")
    func encodedRecords() throws {
        let pixels = NDArray(shape: [2, 3, 3], dtype: .uint8, values: (0..<18).map { Double($0 * 10) })
        let record = try ImageRecord(label: 4, id: 3, pixels: pixels, format: .png)
        let back = try ImageRecord(packed: record.packed(), source: "test")
        #expect(try ImageCodec.decode(back.image).doubles() == pixels.doubles())
    }
}

// MARK: - Damaged files

@Suite("RecordIO damaged files")
struct RecordIOErrorTests {
    /// A file of three records (lengths 5, 8, 3) to cut or corrupt.
    func sample() throws -> (bytes: [UInt8], path: String) {
        let (rec, idx) = try writeRecords([Array("abcde".utf8), Array("12345678".utf8), Array("xyz".utf8)])
        Files.remove(idx)
        let bytes = try Files.bytes(rec)
        Files.remove(rec)
        return (bytes, rec)
    }

    @Test("A file cut inside a part header or inside the data throws, saying where", arguments: [1, 4, 7, 13, 20, 33, 43])
    func truncated(_ cut: Int) throws {
        let (bytes, path) = try sample()   // records at 0 (16 bytes), 16 (16 bytes), 32 (12 bytes)
        try Files.write(Array(bytes.prefix(bytes.count - cut)), to: path)
        defer { Files.remove(path) }
        let reader = try RecordIOReader(path: path)
        var thrown: KilnDataError?
        do { while try reader.next() != nil {} } catch let e as KilnDataError { thrown = e }
        guard case let .malformedFile(p, field, reason)? = thrown else {
            Issue.record("expected malformedFile, got \(String(describing: thrown))")
            return
        }
        #expect(p == path)
        #expect(field.hasPrefix("the record at byte "))
        #expect(reason.contains("the file ends"), "\(reason)")
        #expect(throws: KilnDataError.self) { try reader.scanOffsets() }
    }

    @Test("A wrong magic throws with the bytes found")
    func badMagic() throws {
        var (bytes, path) = try sample()
        bytes[16] = 0x0B
        try Files.write(bytes, to: path)
        defer { Files.remove(path) }
        let reader = try RecordIOReader(path: path)
        #expect(try reader.next() == Array("abcde".utf8))
        let e = Files.error { try reader.next() }
        #expect(e?.description == "The file '\(path)' is malformed at the record at byte 16: part 1 at byte 16 starts with 0xced7230b, not RecordIO's magic 0xced7230a.")
    }

    @Test("An unknown cflag and a continuation part in first place throw", arguments: [(UInt8(0x80), "unknown cflag 4"), (UInt8(0x40), "marked as a continuation (cflag 2)")])
    func badFlags(_ flagByte: UInt8, _ expected: String) throws {
        var (bytes, path) = try sample()
        bytes[7] = flagByte
        try Files.write(bytes, to: path)
        defer { Files.remove(path) }
        let e = Files.error { try RecordIOReader(path: path).record(at: 0) }
        #expect(e?.description.contains(expected) == true, "\(String(describing: e))")
    }

    @Test("A first part followed by a whole record throws")
    func unfinishedRecord() throws {
        var (bytes, path) = try sample()
        bytes[7] = 0x20   // record 0 becomes a first part; record 1 (cflag 0) cannot continue it
        try Files.write(bytes, to: path)
        defer { Files.remove(path) }
        let e = Files.error { try RecordIOReader(path: path).record(at: 0) }
        #expect(e?.description.contains("part 2 starts a new record (cflag 0) before the last part") == true, "\(String(describing: e))")
    }

    @Test("Offsets outside the file, missing keys and missing files throw")
    func badRequests() throws {
        let (rec, idx) = try writeRecords([[1, 2, 3]])
        defer { Files.remove(rec, idx) }
        let reader = try RecordIOReader(path: rec, indexPath: idx)
        #expect(Files.error { try reader.record(at: 400) }?.description.contains("outside the file of 12 bytes") == true)
        #expect(Files.error { try reader.record(forKey: 3) }?.description == "The index of '\(rec)' has no key 3.")
        let unindexed = try RecordIOReader(path: rec)
        #expect(Files.error { try unindexed.record(forKey: 0) }?.description.contains("needs its .idx file") == true)
        guard case .fileUnreadable? = Files.error({ try RecordIOReader(path: rec + ".missing") }) else {
            Issue.record("a missing file must throw fileUnreadable")
            return
        }
    }

    @Test("A malformed .idx line throws naming the line")
    func badIndex() {
        let e = Files.error { try RecordIOIndex(text: "0\t0\n\n1\tten\n", source: "x.idx") }
        #expect(e?.description == "The file 'x.idx' is malformed at line 3: '1\tten' is not 'key<TAB>offset' with integer key and offset.")
        let negative = Files.error { try RecordIOIndex(text: "0\t-4\n", source: "x.idx") }
        #expect(negative?.description.contains("negative") == true)
        #expect((try? RecordIOIndex(text: "5\t0\n6\t16\n").keys) == [5, 6])
    }

    @Test("A closed writer refuses records; a writer without an index refuses keys")
    func writerMisuse() throws {
        let path = Files.scratch("w.rec")
        defer { Files.remove(path) }
        let writer = try RecordIOWriter(path: path)
        #expect(Files.error { try writer.write([1], key: 0) }?.description.contains("needs an indexPath") == true)
        #expect(try writer.write([1, 2]) == 0)
        #expect(writer.offset == 12)
        try writer.close()
        #expect(Files.error { try writer.write([1]) }?.description.contains("is closed") == true)
        #expect(Files.error { try RecordIOWriter(path: "/nonexistent-dir/x.rec") } == .fileUnwritable(path: "/nonexistent-dir/x.rec", reason: "No such file or directory"))
    }
}
