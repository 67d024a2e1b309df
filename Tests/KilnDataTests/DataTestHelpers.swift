import Foundation
import KilnCore
@testable import KilnData

/// A fresh folder under the system's temporary directory, removed by `cleanUp()`.
struct TemporaryFolder {
    let url: URL

    init(_ name: String = #function) throws {
        let safe = name.filter { $0.isLetter || $0.isNumber }
        url = FileManager.default.temporaryDirectory
            .appendingPathComponent("kiln-data-\(safe)-\(UUID().uuidString)", isDirectory: true)
        try FileManager.default.createDirectory(at: url, withIntermediateDirectories: true)
    }

    func path(_ name: String) -> String { url.appendingPathComponent(name).path }

    func write(_ name: String, _ bytes: [UInt8]) throws -> String {
        let p = path(name)
        try Data(bytes).write(to: URL(fileURLWithPath: p))
        return p
    }

    func write(_ name: String, text: String) throws -> String { try write(name, Array(text.utf8)) }

    func cleanUp() { try? FileManager.default.removeItem(at: url) }
}

/// Big-endian bytes of a 32-bit integer, as IDX headers store them.
func bigEndian(_ v: UInt32) -> [UInt8] { [UInt8(v >> 24), UInt8((v >> 16) & 0xFF), UInt8((v >> 8) & 0xFF), UInt8(v & 0xFF)] }

/// An IDX image file of `count` images of `rows` x `columns` pixels.
func idxImages(count: Int, rows: Int, columns: Int, pixels: [UInt8]) -> [UInt8] {
    [0, 0, 8, 3] + bigEndian(UInt32(count)) + bigEndian(UInt32(rows)) + bigEndian(UInt32(columns)) + pixels
}

/// An IDX label file.
func idxLabels(_ labels: [UInt8]) -> [UInt8] { [0, 0, 8, 1] + bigEndian(UInt32(labels.count)) + labels }

/// The message of the error `body` throws, or nil when it does not throw.
func errorMessage(_ body: () throws -> Void) -> String? {
    do { try body(); return nil } catch { return "\(error)" }
}

/// All batches of one pass.
func drain(_ iterator: some DataIter) throws -> [DataBatch] {
    var batches: [DataBatch] = []
    while let batch = try iterator.next() { batches.append(batch) }
    return batches
}

/// Whether two arrays have the same shape, dtype and bytes.
func identical(_ a: NDArray, _ b: NDArray) -> Bool {
    a.shape == b.shape && a.dtype == b.dtype && a.withUnsafeBytes { x in b.withUnsafeBytes { y in x.elementsEqual(y) } }
}

/// Whether two batches hold identical arrays, pad and indices.
func identical(_ a: DataBatch, _ b: DataBatch) -> Bool {
    a.pad == b.pad && a.index == b.index && a.data.count == b.data.count && a.label.count == b.label.count
        && zip(a.data, b.data).allSatisfy(identical) && zip(a.label, b.label).allSatisfy(identical)
}

/// An HWC uint8 image whose pixel (y, x, c) is `f(y, x, c)`.
func image(height: Int, width: Int, channels: Int, _ f: (Int, Int, Int) -> Int) -> NDArray {
    var values: [Double] = []
    for y in 0..<height { for x in 0..<width { for c in 0..<channels { values.append(Double(f(y, x, c))) } } }
    return NDArray(shape: [height, width, channels], dtype: .uint8, values: values)
}
