import Foundation
import KilnCore
@testable import KilnData
import Testing
import TestSupport

private typealias Files = RecordIOTestFiles

private func npy(_ name: String) throws -> NDArray { try NDArray.load(npyFile: Files.golden(name)) }

private func maxDifference(_ a: NDArray, _ b: NDArray) -> Double {
    zip(a.doubles(), b.doubles()).map { abs($0 - $1) }.max() ?? 0
}

/// A `[h, w, c]` uint8 image whose values follow `f(y, x, k)`.
private func image(_ h: Int, _ w: Int, _ c: Int, _ f: (Int, Int, Int) -> Int) -> NDArray {
    var values: [Double] = []
    for y in 0..<h { for x in 0..<w { for k in 0..<c { values.append(Double(f(y, x, k) & 255)) } } }
    return NDArray(shape: [h, w, c], dtype: .uint8, values: values)
}

/// A smooth colour image, on which JPEG loses little.
private let smooth = image(24, 32, 3) { y, x, k in [x * 7, y * 9, 120 + (x - y) * 3][k] }

/// CRC-32 of PNG chunks (ISO 3309), for hand-made PNG headers.
private func crc32(_ bytes: [UInt8]) -> UInt32 {
    var crc: UInt32 = 0xFFFF_FFFF
    for b in bytes {
        crc ^= UInt32(b)
        for _ in 0..<8 { crc = crc & 1 == 1 ? (crc >> 1) ^ 0xEDB8_8320 : crc >> 1 }
    }
    return ~crc
}

// MARK: - Decoding against known pixels

@Suite("Image decoding")
struct ImageDecodingTests {
    struct Meta: Decodable { let name: String; let label: Float; let id: Int; let shape: [Int]; let exact: Bool }

    @Test("MXNet's image records decode to the expected pixels: PNG exactly, JPEG within 1 level", arguments: 0..<6)
    func goldenImages(_ i: Int) throws {
        let metas = try JSONDecoder().decode([Meta].self, from: Data(contentsOf: URL(fileURLWithPath: Files.golden("images.json"))))
        let meta = metas[i]
        let reader = try RecordIOReader(path: Files.golden("images.rec"), indexPath: Files.golden("images.idx"))
        let record = try ImageRecord(packed: try reader.record(forKey: i), source: "images.rec")
        let decoded = try ImageCodec.decode(record.image, source: meta.name)
        let expected = try npy("images_\(i)_\(meta.name).npy")
        #expect(decoded.shape == expected.shape)
        #expect(decoded.dtype == .uint8)
        let difference = maxDifference(decoded, expected)
        // PIL and the system's libjpeg-turbo both use the accurate integer IDCT and fancy upsampling,
        // and agree exactly here (Debian 12's libjpeg-turbo 2.1.5, Pillow 13's 3.x); another version
        // or SIMD path may round a pixel differently, hence one level of slack.
        #expect(difference <= (meta.exact ? 0 : 1), "\(meta.name): max difference \(difference)")
    }

    @Test("The 20 CIFAR-10 PNGs decode to MXNet's pixels exactly (its plain 32x32 crop)")
    func cifarPixels() throws {
        let reader = try RecordIOReader(path: Files.golden("cifar10.rec"), indexPath: Files.golden("cifar10.idx"))
        // iter_cifar_crop28 holds MXNet's centre 28x28 crops (offset 2, 2) of all 20 images, CHW.
        for batch in 0..<3 {
            let expected = try npy("iter_cifar_crop28_\(batch)_data.npy").doubles()
            for j in 0..<8 {
                let recordIndex = (batch * 8 + j) % 20
                let record = try ImageRecord(packed: try reader.record(forKey: recordIndex), source: "cifar10.rec")
                let pixels = try ImageCodec.decode(record.image).doubles()
                for k in 0..<3 { for y in 0..<28 { for x in 0..<28 {
                    let want = expected[((j * 3 + k) * 28 + y) * 28 + x]
                    let got = pixels[((y + 2) * 32 + x + 2) * 3 + k]
                    if want != got {
                        Issue.record("record \(recordIndex) pixel (\(y), \(x), \(k)): \(got) vs MXNet \(want)")
                        return
                    }
                } } }
            }
        }
    }

    @Test("PNG of every channel count decodes to RGB as OpenCV reads it: gray repeated, alpha dropped", arguments: 1...4)
    func pngChannels(_ channels: Int) throws {
        let source = image(5, 7, channels) { y, x, k in y * 50 + x * 30 + k * 17 }
        let decoded = try ImageCodec.decode(try ImageCodec.encode(source, as: .png))
        #expect(decoded.shape == [5, 7, 3])
        let s = source.doubles(), d = decoded.doubles()
        for p in 0..<35 {
            let want: [Double] = channels < 3 ? Array(repeating: s[p * channels], count: 3) : Array(s[(p * channels)..<(p * channels + 3)])
            #expect(Array(d[(p * 3)..<(p * 3 + 3)]) == want, "pixel \(p)")
        }
    }

    @Test("A gray read of a colour PNG uses libpng's rgb_to_gray with OpenCV's 0.299, 0.587")
    func pngGrayRead() throws {
        let values: [Double] = [255, 0, 0, 0, 255, 0, 0, 0, 255, 10, 20, 30]
        let rgb = NDArray(shape: [1, 4, 3], dtype: .uint8, values: values)
        let gray = try ImageCodec.decode(try ImageCodec.encode(rgb, as: .png), channels: 1)
        #expect(gray.shape == [1, 4, 1])
        // Coefficients x32768, truncated: 9797, 19234, 3737. 255 * 9797 >> 15 = 76, 255 * 19234 >> 15 = 149,
        // 255 * 3737 >> 15 = 29, (10 * 9797 + 20 * 19234 + 30 * 3737) >> 15 = 594760 >> 15 = 18.
        #expect(gray.doubles() == [76, 149, 29, 18])
    }

    @Test("JPEG encodes and decodes a smooth image closely; lower quality costs more", arguments: [95, 75])
    func jpegRoundTrip(_ quality: Int) throws {
        let bytes = try ImageCodec.encode(smooth, as: .jpeg(quality: quality))
        #expect(ImageCodec.format(of: bytes) == .jpeg)
        let decoded = try ImageCodec.decode(bytes)
        #expect(decoded.shape == smooth.shape)
        let mean = zip(decoded.doubles(), smooth.doubles()).map { abs($0 - $1) }.reduce(0, +) / Double(smooth.elementCount)
        #expect(mean < (quality == 95 ? 1.5 : 3.0), "mean abs error \(mean) at quality \(quality)")
        let low = try ImageCodec.encode(smooth, as: .jpeg(quality: 10))
        #expect(low.count < bytes.count)
    }

    @Test("Gray JPEG: encoded from one channel, read as gray or repeated into RGB")
    func jpegGray() throws {
        let gray = image(16, 16, 1) { y, x, _ in 8 * (y + x) }
        let bytes = try ImageCodec.encode(gray, as: .jpeg(quality: 95))
        let asGray = try ImageCodec.decode(bytes, channels: 1)
        let asRGB = try ImageCodec.decode(bytes)
        #expect(asGray.shape == [16, 16, 1] && asRGB.shape == [16, 16, 3])
        #expect(maxDifference(asGray, gray) <= 4)
        let g = asGray.doubles(), c = asRGB.doubles()
        let repeated = g.flatMap { [$0, $0, $0] }
        #expect(c == repeated)
    }
}

// MARK: - Damaged images

@Suite("Damaged images")
struct DamagedImageTests {
    @Test("A truncated JPEG throws libjpeg's message instead of exiting; strict: false decodes it gray-filled",
          arguments: [0.3, 0.6, 0.9])
    func truncatedJPEG(_ fraction: Double) throws {
        let bytes = try ImageCodec.encode(smooth, as: .jpeg(quality: 90))
        // Cut inside the entropy-coded data, which starts after the SOS marker (FF DA).
        let sos = try #require((0..<(bytes.count - 1)).first { bytes[$0] == 0xFF && bytes[$0 + 1] == 0xDA })
        let cut = Array(bytes.prefix(sos + 14 + Int(Double(bytes.count - sos - 14) * fraction)))
        let e = Files.error { try ImageCodec.decode(cut, source: "record 3 of 'x.rec'") }
        #expect(e?.description == "Cannot decode the image record 3 of 'x.rec': JPEG: Premature end of JPEG file.",
                "\(String(describing: e))")
        let lenient = try ImageCodec.decode(cut, strict: false)
        #expect(lenient.shape == smooth.shape)
    }

    @Test("A JPEG cut inside its headers, or garbage after the JPEG marker, throws", arguments: [2, 3, 10, 40])
    func brokenJPEGHeaders(_ keep: Int) throws {
        let bytes = try ImageCodec.encode(smooth, as: .jpeg(quality: 90))
        #expect(throws: KilnDataError.self) { try ImageCodec.decode(Array(bytes.prefix(keep)), strict: false) }
        var rng = SplitMix64(seed: UInt64(keep))
        let garbage: [UInt8] = [0xFF, 0xD8, 0xFF] + (0..<keep * 10).map { _ in UInt8.random(in: 0...255, using: &rng) }
        guard case let .undecodableImage(_, reason)? = Files.error({ try ImageCodec.decode(garbage, strict: false) }) else {
            Issue.record("garbage must throw undecodableImage")
            return
        }
        #expect(reason.hasPrefix("JPEG: "))
    }

    @Test("A JPEG with its entropy data overwritten throws when strict")
    func corruptJPEGData() throws {
        var bytes = try ImageCodec.encode(smooth, as: .jpeg(quality: 90))
        for i in stride(from: bytes.count / 2, to: bytes.count - 2, by: 3) { bytes[i] = 0xFF }
        #expect(throws: KilnDataError.self) { try ImageCodec.decode(bytes) }
    }

    @Test("A truncated PNG throws libpng's message", arguments: [13, 20, 40, 0])
    func truncatedPNG(_ dropFromEnd: Int) throws {
        let bytes = try ImageCodec.encode(smooth, as: .png)
        let cut = dropFromEnd == 0 ? Array(bytes.prefix(bytes.count / 2)) : Array(bytes.dropLast(dropFromEnd))
        guard case let .undecodableImage(source, reason)? = Files.error({ try ImageCodec.decode(cut, source: "a.png") }) else {
            Issue.record("a truncated PNG must throw undecodableImage")
            return
        }
        #expect(source == "a.png")
        #expect(reason.hasPrefix("PNG: ") && reason.count > 5, "\(reason)")
    }

    @Test("A PNG that lost only its IEND chunk still decodes: its pixel data is whole (OpenCV agrees)")
    func missingEnd() throws {
        let bytes = try ImageCodec.encode(smooth, as: .png)
        #expect(try ImageCodec.decode(Array(bytes.dropLast(12))).doubles() == smooth.doubles())
    }

    @Test("A PNG with a damaged chunk CRC throws")
    func badCRC() throws {
        var bytes = try ImageCodec.encode(smooth, as: .png)
        bytes[29] ^= 0xFF   // the IHDR chunk's CRC (8 signature + 8 chunk header + 13 data)
        let e = Files.error { try ImageCodec.decode(bytes) }
        #expect(e?.description.contains("CRC") == true, "\(String(describing: e))")
    }

    @Test("A PNG header announcing a huge image throws before allocating it")
    func hugePNG() {
        var ihdr: [UInt8] = Array("IHDR".utf8)
        ihdr += [0, 1, 0x86, 0xA0, 0, 1, 0x86, 0xA0, 8, 2, 0, 0, 0]   // 100000 x 100000, 8-bit RGB
        func bigEndian(_ v: UInt32) -> [UInt8] { [UInt8(v >> 24), UInt8((v >> 16) & 255), UInt8((v >> 8) & 255), UInt8(v & 255)] }
        let idat: [UInt8] = Array("IDAT".utf8)   // an empty IDAT, so that libpng reads the header to its end
        let bytes: [UInt8] = [0x89, 0x50, 0x4E, 0x47, 0x0D, 0x0A, 0x1A, 0x0A, 0, 0, 0, 13] + ihdr + bigEndian(crc32(ihdr))
            + [0, 0, 0, 0] + idat + bigEndian(crc32(idat))
        let e = Files.error { try ImageCodec.decode(bytes) }
        #expect(e?.description.contains("more pixels than the decoder allows") == true, "\(String(describing: e))")
    }

    @Test("Empty bytes and unknown formats throw clear messages")
    func unknownFormats() {
        #expect(Files.error { try ImageCodec.decode([UInt8]()) }?.description == "Cannot decode the image in memory: it is empty.")
        #expect(Files.error { try ImageCodec.decode(Array("GIF89a..".utf8), source: "g") }?.description
                == "Cannot decode the image g: it is neither JPEG nor PNG (it starts with 47 49 46 38 39 61 2e 2e).")
    }

    @Test("Encoding refuses arrays that are not images")
    func encodeArguments() {
        #expect(throws: KilnDataError.self) { try ImageCodec.encode(NDArray(zeros: [2, 2, 3]), as: .png) }
        #expect(throws: KilnDataError.self) { try ImageCodec.encode(NDArray(zeros: [2, 2, 5], dtype: .uint8), as: .png) }
        #expect(throws: KilnDataError.self) { try ImageCodec.encode(NDArray(zeros: [2, 2, 4], dtype: .uint8), as: .jpeg(quality: 90)) }
        #expect(throws: KilnDataError.self) { try ImageCodec.encode(NDArray(zeros: [2, 2, 3], dtype: .uint8), as: .jpeg(quality: 0)) }
        #expect(throws: KilnDataError.self) { try ImageCodec.decode(try ImageCodec.encode(smooth, as: .png), channels: 4) }
    }
}

// MARK: - ImageRecordIter against MXNet

@Suite("ImageRecordIter against MXNet 1.9.1")
struct ImageRecordIterGoldenTests {
    struct Case: Decodable {
        struct Batch: Decodable { let pad: Int }
        let `case`: String
        let batches: [Batch]
        let provide_data: [[Int]]
        let provide_label: [[Int]]
    }

    static let cases: [Case] = {
        guard let data = try? Data(contentsOf: URL(fileURLWithPath: RecordIOTestFiles.golden("iterators.json"))) else { return [] }
        return (try? JSONDecoder().decode([Case].self, from: data)) ?? []
    }()

    /// The iterator each golden case was made with (tools/golden/make_golden_recordio.py).
    static func iterator(_ name: String, threads: Int = 1) throws -> ImageRecordIter {
        let cifar = Files.golden("cifar10.rec")
        let norm: ([Float], [Float]) = ([125.3, 123.0, 113.9], [63.0, 62.1, 66.7])
        switch name {
        case "cifar_crop28": return try ImageRecordIter(pathImgrec: cifar, dataShape: [3, 28, 28], batchSize: 8, preprocessThreads: threads)
        case "cifar_resize40": return try ImageRecordIter(pathImgrec: cifar, dataShape: [3, 32, 32], batchSize: 10, resize: 40, preprocessThreads: threads)
        case "cifar_resize36": return try ImageRecordIter(pathImgrec: cifar, dataShape: [3, 36, 36], batchSize: 10, resize: 36, preprocessThreads: threads)
        case "cifar_resize16": return try ImageRecordIter(pathImgrec: cifar, dataShape: [3, 16, 16], batchSize: 10, resize: 16, preprocessThreads: threads)
        case "cifar_resize24": return try ImageRecordIter(pathImgrec: cifar, dataShape: [3, 20, 20], batchSize: 10, resize: 24, preprocessThreads: threads)
        case "cifar_gray": return try ImageRecordIter(pathImgrec: cifar, dataShape: [1, 28, 28], batchSize: 10, preprocessThreads: threads)
        case "images_gray6": return try ImageRecordIter(pathImgrec: Files.golden("images.rec"), dataShape: [1, 6, 6], batchSize: 3, preprocessThreads: threads)
        case "images_crop6":
            return try ImageRecordIter(pathImgrec: Files.golden("images.rec"), dataShape: [3, 6, 6], batchSize: 4,
                                       meanRGB: norm.0, stdRGB: norm.1, scale: 1.0 / 255, preprocessThreads: threads)
        case "multilabel":
            return try ImageRecordIter(pathImgrec: Files.golden("multilabel.rec"), dataShape: [3, 5, 5], batchSize: 2,
                                       meanRGB: [10, 20, 30], stdRGB: [2, 4, 8], labelWidth: 3, preprocessThreads: threads)
        default: throw KilnDataError.invalidArgument("no golden iterator case \(name)")
        }
    }

    @Test("Every golden case is here")
    func allCases() {
        #expect(Self.cases.map(\.case) == ["cifar_crop28", "cifar_resize40", "cifar_resize36", "cifar_resize16", "cifar_resize24", "cifar_gray", "images_gray6", "images_crop6", "multilabel"])
    }

    @Test("Batches, labels, pads and shapes match MXNet's ImageRecordIter",
          arguments: ["cifar_crop28", "cifar_resize40", "cifar_resize36", "cifar_resize16", "cifar_resize24", "cifar_gray", "images_gray6", "images_crop6", "multilabel"])
    func matchesMXNet(_ name: String) throws {
        let golden = try #require(Self.cases.first { $0.case == name })
        let iter = try Self.iterator(name)
        #expect(iter.provideData.map(\.shape.dims) == golden.provide_data)
        #expect(iter.provideLabel.map(\.shape.dims) == golden.provide_label)
        for (b, expectedBatch) in golden.batches.enumerated() {
            let batch = try #require(try iter.next(), "batch \(b)")
            #expect(batch.pad == expectedBatch.pad, "batch \(b) pad")
            #expect(batch.label[0].doubles() == (try npy("iter_\(name)_\(b)_label.npy")).doubles(), "batch \(b) labels")
            let expected = try npy("iter_\(name)_\(b)_data.npy").converted(to: .float32)
            let data = batch.data[0]
            #expect(data.shape == expected.shape)
            // The images_ cases hold JPEG records: one level of slack, as in goldenImages (here the
            // match is exact). Everything else is PNG and must match to float rounding.
            let levels = name == "images_crop6" ? 1.0 / 255 / 62.1 : name == "images_gray6" ? 1 : 0
            let difference = maxDifference(data, expected)
            #expect(difference <= levels + 1e-5, "\(name) batch \(b): max difference \(difference)")
        }
        #expect(try iter.next() == nil)
    }

    @Test("Two decoding threads give the same batches as one")
    func threadsAgree() throws {
        let one = try Self.iterator("cifar_resize24"), two = try Self.iterator("cifar_resize24", threads: 2)
        while let a = try one.next() {
            let b = try #require(try two.next())
            #expect(a.data[0].doubles() == b.data[0].doubles())
            #expect(a.label[0].doubles() == b.label[0].doubles())
        }
        #expect(try two.next() == nil)
    }
}

// MARK: - ImageRecordIter behaviour

@Suite("ImageRecordIter")
struct ImageRecordIterTests {
    /// `count` PNG records of 6x8 RGB images; record i has label i and pixel (y, x, k) = 40y + 4x + k + i.
    static func makeFile(count: Int, labels: (Int) -> [Float] = { [Float($0)] }, corrupt: Int? = nil) throws -> (rec: String, idx: String) {
        let rec = Files.scratch("iter.rec"), idx = Files.scratch("iter.idx")
        let writer = try RecordIOWriter(path: rec, indexPath: idx)
        for i in 0..<count {
            let pixels = image(6, 8, 3) { y, x, k in 40 * y + 4 * x + k + i }
            let l = labels(i)
            var record = l.count == 1 ? try ImageRecord(label: l[0], id: UInt64(i), pixels: pixels, format: .png)
                                      : try ImageRecord(labels: l, id: UInt64(i), pixels: pixels, format: .png)
            if i == corrupt { record.image.removeLast(record.image.count / 2) }
            try writer.write(record.packed(), key: i)
        }
        try writer.close()
        return (rec, idx)
    }

    func labels(of iter: ImageRecordIter) throws -> [[Int]] {
        var out: [[Int]] = []
        while let batch = try iter.next() { out.append(batch.label[0].doubles().map { Int($0) }) }
        return out
    }

    @Test("Shapes, centre crop, CHW order and labels of a plain pass")
    func plainPass() throws {
        let (rec, idx) = try Self.makeFile(count: 5)
        defer { Files.remove(rec, idx) }
        let iter = try ImageRecordIter(pathImgrec: rec, pathImgidx: idx, dataShape: [3, 4, 4], batchSize: 5)
        #expect(iter.provideData == [DataDescription(name: "data", shape: [5, 3, 4, 4])])
        #expect(iter.provideLabel == [DataDescription(name: "softmax_label", shape: [5])])
        let batch = try #require(try iter.next())
        #expect(batch.label[0].doubles() == [0, 1, 2, 3, 4])
        #expect(batch.index == [0, 1, 2, 3, 4])
        let d = batch.data[0]
        // Centre crop of 6x8 to 4x4 starts at (1, 2): element (n, k, y, x) = 40(y+1) + 4(x+2) + k + n.
        for n in [0, 4] { for k in 0..<3 { for y in 0..<4 { for x in 0..<4 {
            #expect(d[flat: ((n * 3 + k) * 4 + y) * 4 + x] == Float(40 * (y + 1) + 4 * (x + 2) + k + n))
        } } } }
        #expect(try iter.next() == nil)
    }

    @Test("Mean, std and scale: (pixel - mean) * (scale / std)")
    func normalization() throws {
        let (rec, idx) = try Self.makeFile(count: 1)
        defer { Files.remove(rec, idx) }
        let iter = try ImageRecordIter(pathImgrec: rec, pathImgidx: idx, dataShape: [3, 6, 8], batchSize: 1,
                                       meanRGB: [1, 2, 3], stdRGB: [2, 4, 0.5], scale: 0.5)
        let d = try #require(try iter.next()).data[0]
        // Pixel (y 1, x 1): 44 + k.
        #expect(d[flat: 0 * 48 + 9] == (44 - 1) * (0.5 / 2))
        #expect(d[flat: 1 * 48 + 9] == (45 - 2) * (0.5 / 4))
        #expect(d[flat: 2 * 48 + 9] == (46 - 3) * (0.5 / 0.5))
    }

    @Test("Last batch: roundBatch continues the next pass after the borrowed examples, as MXNet does")
    func roundBatch() throws {
        let (rec, idx) = try Self.makeFile(count: 10)
        defer { Files.remove(rec, idx) }
        let iter = try ImageRecordIter(pathImgrec: rec, pathImgidx: idx, dataShape: [3, 2, 2], batchSize: 4)
        iter.reset()   // before anything is read: no effect
        #expect(try labels(of: iter) == [[0, 1, 2, 3], [4, 5, 6, 7], [8, 9, 0, 1]])
        iter.reset()
        #expect(try labels(of: iter) == [[2, 3, 4, 5], [6, 7, 8, 9]])
        iter.reset()
        let first = try #require(try iter.next())
        #expect(first.label[0].doubles() == [0, 1, 2, 3] && first.pad == 0)
    }

    @Test("Round batches over a file smaller than a batch: every pass starts where the last batch ended")
    func roundBatchTinyFile() throws {
        let (rec, idx) = try Self.makeFile(count: 3)
        defer { Files.remove(rec, idx) }
        let iter = try ImageRecordIter(pathImgrec: rec, pathImgidx: idx, dataShape: [3, 2, 2], batchSize: 8)
        var seen: [[Int]] = []
        var pads: [Int] = []
        for _ in 0..<3 {
            let batch = try #require(try iter.next())
            seen.append(batch.label[0].doubles().map { Int($0) })
            pads.append(batch.pad)
            #expect(try iter.next() == nil)
            iter.reset()
        }
        #expect(seen == [[0, 1, 2, 0, 1, 2, 0, 1], [2, 0, 1, 2, 0, 1, 2, 0], [1, 2, 0, 1, 2, 0, 1, 2]])
        #expect(pads == [5, 7, 6])
    }

    @Test("Last batch: pad fills from the start and restarts; discard drops it")
    func padAndDiscard() throws {
        let (rec, idx) = try Self.makeFile(count: 10)
        defer { Files.remove(rec, idx) }
        let pad = try ImageRecordIter(pathImgrec: rec, pathImgidx: idx, dataShape: [3, 2, 2], batchSize: 4, lastBatch: .pad)
        var pads: [Int] = []
        while let b = try pad.next() { pads.append(b.pad) }
        #expect(pads == [0, 0, 2])
        pad.reset()
        #expect(try labels(of: pad) == [[0, 1, 2, 3], [4, 5, 6, 7], [8, 9, 0, 1]])
        let discard = try ImageRecordIter(pathImgrec: rec, pathImgidx: idx, dataShape: [3, 2, 2], batchSize: 4, lastBatch: .discard)
        #expect(try labels(of: discard) == [[0, 1, 2, 3], [4, 5, 6, 7]])
        discard.reset()
        #expect(try labels(of: discard) == [[0, 1, 2, 3], [4, 5, 6, 7]])
    }

    @Test("Shuffle: each pass a permutation, a new one each pass, the same for the same seed")
    func shuffle() throws {
        let (rec, idx) = try Self.makeFile(count: 10)
        defer { Files.remove(rec, idx) }
        func passes(seed: UInt64) throws -> [[Int]] {
            let iter = try ImageRecordIter(pathImgrec: rec, pathImgidx: idx, dataShape: [3, 2, 2], batchSize: 5,
                                           shuffle: true, seed: seed)
            var out: [[Int]] = []
            for _ in 0..<3 {
                out.append(try labels(of: iter).flatMap { $0 })
                iter.reset()
            }
            return out
        }
        let a = try passes(seed: 7)
        #expect(a.allSatisfy { $0.sorted() == Array(0..<10) })
        #expect(a[0] != a[1] && a[1] != a[2])
        #expect(a[0] != Array(0..<10))
        #expect(try passes(seed: 7) == a)
        #expect(try passes(seed: 8) != a)
    }

    @Test("Random crop and mirror: reproducible for a seed, each example a window of its image, both mirror states seen")
    func randomAugmentation() throws {
        let (rec, idx) = try Self.makeFile(count: 12)
        defer { Files.remove(rec, idx) }
        func make(seed: UInt64, threads: Int = 1) throws -> ImageRecordIter {
            try ImageRecordIter(pathImgrec: rec, pathImgidx: idx, dataShape: [3, 3, 4], batchSize: 12, seed: seed,
                                randCrop: true, randMirror: true, preprocessThreads: threads)
        }
        let batch = try #require(try make(seed: 3).next()).data[0].floats()
        #expect(try #require(try make(seed: 3, threads: 2).next()).data[0].floats() == batch)
        #expect(try #require(try make(seed: 4).next()).data[0].floats() != batch)
        var mirrors = Set<Bool>(), places = Set<[Int]>()
        for n in 0..<12 {
            var found = false
            search: for top in 0...3 { for left in 0...4 { for mirror in [false, true] {
                var matches = true
                for k in 0..<3 { for y in 0..<3 { for x in 0..<4 {
                    let sx = mirror ? 3 - x : x
                    let want = Float(40 * (top + y) + 4 * (left + sx) + k + n)
                    if batch[((n * 3 + k) * 3 + y) * 4 + x] != want { matches = false }
                } } }
                if matches { found = true; mirrors.insert(mirror); places.insert([top, left]); break search }
            } } }
            #expect(found, "example \(n) is no mirrored or plain window of its image")
        }
        #expect(mirrors.count == 2)
        #expect(places.count > 1)
    }

    @Test("Without an .idx the offsets come from a scan and the batches are the same")
    func withoutIndex() throws {
        let (rec, idx) = try Self.makeFile(count: 6)
        defer { Files.remove(rec, idx) }
        let a = try ImageRecordIter(pathImgrec: rec, pathImgidx: idx, dataShape: [3, 5, 5], batchSize: 3, resize: 5)
        let b = try ImageRecordIter(pathImgrec: rec, dataShape: [3, 5, 5], batchSize: 3, resize: 5)
        #expect(b.recordCount == 6)
        while let x = try a.next() {
            let y = try #require(try b.next())
            #expect(x.data[0].floats() == y.data[0].floats())
        }
    }

    @Test("Images smaller than dataShape are scaled up to it first, as MXNet does; gray output works")
    func smallImages() throws {
        let (rec, idx) = try Self.makeFile(count: 2)
        defer { Files.remove(rec, idx) }
        let iter = try ImageRecordIter(pathImgrec: rec, pathImgidx: idx, dataShape: [1, 9, 8], batchSize: 2)
        let batch = try #require(try iter.next())
        #expect(batch.data[0].shape == [2, 1, 9, 8])
        // 6x8 -> 9x12 (height first), then the centre 9x8 window.
        let gray = try ImageCodec.decode(try ImageCodec.encode(image(6, 8, 3) { y, x, k in 40 * y + 4 * x + k }, as: .png), channels: 1)
        let scaled = try resizeBilinear(gray, width: 12, height: 9).floats()
        let expected = (0..<9).flatMap { y in scaled[(y * 12 + 2)..<(y * 12 + 10)] }
        #expect(Array(batch.data[0].floats().prefix(72)) == expected)
    }

    @Test("Multi-label records fill [batch, labelWidth]; a width mismatch names the record")
    func labelWidth() throws {
        let (rec, idx) = try Self.makeFile(count: 3, labels: { [Float($0), -1] })
        defer { Files.remove(rec, idx) }
        let two = try ImageRecordIter(pathImgrec: rec, pathImgidx: idx, dataShape: [3, 2, 2], batchSize: 3, labelWidth: 2)
        #expect(two.provideLabel[0].shape == [3, 2])
        #expect(try #require(try two.next()).label[0].doubles() == [0, -1, 1, -1, 2, -1])
        let one = try ImageRecordIter(pathImgrec: rec, pathImgidx: idx, dataShape: [3, 2, 2], batchSize: 3)
        #expect(Files.error { try one.next() }?.description
                == "The file 'record 0 of '\(rec)'' is malformed at the labels: the record has 2 label(s) but labelWidth is 1.")
    }

    @Test("A damaged image record throws, naming the record, on every thread count", arguments: [1, 2])
    func damagedRecord(_ threads: Int) throws {
        let (rec, idx) = try Self.makeFile(count: 4, corrupt: 2)
        defer { Files.remove(rec, idx) }
        let iter = try ImageRecordIter(pathImgrec: rec, pathImgidx: idx, dataShape: [3, 2, 2], batchSize: 4, preprocessThreads: threads)
        guard case let .undecodableImage(source, reason)? = Files.error({ try iter.next() }) else {
            Issue.record("expected undecodableImage")
            return
        }
        #expect(source == "record 2 of '\(rec)'")
        #expect(reason.hasPrefix("PNG: "))
    }

    @Test("A truncated JPEG record throws by default and is used gray-filled with strictDecoding off")
    func truncatedJPEGRecord() throws {
        let jpeg = try ImageCodec.encode(smooth, as: .jpeg(quality: 90))
        let rec = Files.scratch("jpeg.rec")
        defer { Files.remove(rec) }
        let writer = try RecordIOWriter(path: rec)
        try writer.write(ImageRecord(label: 1, id: 0, image: Array(jpeg.dropLast(20))).packed())
        try writer.close()
        let strict = try ImageRecordIter(pathImgrec: rec, dataShape: [3, 8, 8], batchSize: 1)
        #expect(Files.error { try strict.next() }?.description == "Cannot decode the image record 0 of '\(rec)': JPEG: Premature end of JPEG file.")
        let lenient = try ImageRecordIter(pathImgrec: rec, dataShape: [3, 8, 8], batchSize: 1, strictDecoding: false)
        #expect(try #require(try lenient.next()).data[0].shape == [1, 3, 8, 8])
    }

    @Test("Bad settings and empty files are refused when the iterator is made")
    func badSettings() throws {
        let (rec, idx) = try Self.makeFile(count: 2)
        defer { Files.remove(rec, idx) }
        #expect(Files.error { try ImageRecordIter(pathImgrec: rec, dataShape: [4, 2, 2], batchSize: 1) }?.description
                == "ImageRecordIter's dataShape is [channels, height, width] with 1 or 3 channels, not (4, 2, 2).")
        #expect(throws: KilnDataError.self) { try ImageRecordIter(pathImgrec: rec, dataShape: [3, 2, 2], batchSize: 0) }
        #expect(throws: KilnDataError.self) { try ImageRecordIter(pathImgrec: rec, dataShape: [3, 2, 2], batchSize: 1, stdRGB: [1, 0, 1]) }
        #expect(throws: KilnDataError.self) { try ImageRecordIter(pathImgrec: rec, dataShape: [3, 2, 2], batchSize: 1, resize: 0) }
        let empty = Files.scratch("empty.rec")
        try Files.write([], to: empty)
        defer { Files.remove(empty) }
        #expect(Files.error { try ImageRecordIter(pathImgrec: empty, dataShape: [3, 2, 2], batchSize: 1) }?.description
                == "The file '\(empty)' is malformed at its records: it holds no records.")
    }
}
