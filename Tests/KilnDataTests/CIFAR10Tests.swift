import Foundation
import KilnCore
import KilnData
import Testing

@Suite("CIFAR-10 binary files")
struct CIFAR10Tests {
    /// A record whose label is `label` and whose pixel (channel c, row y, column x) is
    /// (label * 31 + c * 7 + y * 3 + x) mod 256, so that every byte says where it came from.
    static func record(label: UInt8) -> [UInt8] {
        var bytes = [label]
        for c in 0..<3 { for y in 0..<32 { for x in 0..<32 { bytes.append(UInt8((Int(label) * 31 + c * 7 + y * 3 + x) % 256)) } } }
        return bytes
    }

    static func pixel(label: Int, c: Int, y: Int, x: Int) -> Float { Float((label * 31 + c * 7 + y * 3 + x) % 256) }

    @Test("records read back in order across files, channels first")
    func readsRecords() throws {
        let folder = try TemporaryFolder()
        defer { folder.cleanUp() }
        let a = try folder.write("data_batch_1.bin", [3, 8, 0].flatMap { Self.record(label: $0) })
        let b = try folder.write("data_batch_2.bin", Self.record(label: 9))
        let cifar = try CIFAR10Data(files: [a, b])
        #expect(cifar.images.shape == [4, 3, 32, 32])
        #expect(cifar.labels.floats() == [3, 8, 0, 9])
        let values = cifar.images.floats()
        // Image 1 (label 8), channel 2, row 5, column 31.
        #expect(values[1 * 3072 + 2 * 1024 + 5 * 32 + 31] == Self.pixel(label: 8, c: 2, y: 5, x: 31))
        #expect(values[3 * 3072] == Self.pixel(label: 9, c: 0, y: 0, x: 0))
    }

    @Test("the data set gives HWC uint8 images and int32 labels, as Gluon's CIFAR10")
    func dataset() throws {
        let folder = try TemporaryFolder()
        defer { folder.cleanUp() }
        for i in 1...5 { _ = try folder.write("data_batch_\(i).bin", Self.record(label: UInt8(i))) }
        _ = try folder.write("test_batch.bin", [7, 1].flatMap { Self.record(label: $0) })
        let train = try CIFAR10Dataset(directory: folder.url.path, train: true)
        #expect(train.count == 5)
        let test = try CIFAR10Dataset(directory: folder.url.path, train: false)
        #expect(test.count == 2)
        let (image, label) = try test[1]
        #expect(image.shape == [32, 32, 3] && image.dtype == .uint8)
        #expect(label.shape == [] && label.dtype == .int32 && label.floats() == [1])
        let v = image.floats()
        // HWC: (row 4, column 9, channel 2).
        #expect(v[(4 * 32 + 9) * 3 + 2] == Self.pixel(label: 1, c: 2, y: 4, x: 9))
        #expect(v[(31 * 32 + 0) * 3 + 0] == Self.pixel(label: 1, c: 0, y: 31, x: 0))
    }

    @Test("the iterator yields NCHW float32 scaled pixels and float32 labels, padding the last batch")
    func iterator() throws {
        let folder = try TemporaryFolder()
        defer { folder.cleanUp() }
        let path = try folder.write("test_batch.bin", [1, 2, 3, 4, 5].flatMap { Self.record(label: $0) })
        let iter = try CIFAR10Iter(data: CIFAR10Data(files: [path]), batchSize: 2, scale: 1.0 / 255)
        #expect(iter.provideData == [DataDescription(name: "data", shape: [2, 3, 32, 32])])
        let batches = try drain(iter)
        #expect(batches.map { $0.label[0].floats() } == [[1, 2], [3, 4], [5, 1]])
        #expect(batches.map(\.pad) == [0, 0, 1])
        #expect(batches[1].data[0].floats()[3072 + 1024 + 33] == Self.pixel(label: 4, c: 1, y: 1, x: 1) * Float(1.0 / 255))
        let shuffled = try CIFAR10Iter(data: CIFAR10Data(files: [path]), batchSize: 5, shuffle: true, seed: 1)
        let order = try #require(try shuffled.next()?.index)
        #expect(order.sorted() == [0, 1, 2, 3, 4])
    }

    @Test("a file that ends inside a record names the record")
    func truncated() throws {
        let folder = try TemporaryFolder()
        defer { folder.cleanUp() }
        let path = try folder.write("data_batch_1.bin", Self.record(label: 1) + Self.record(label: 2).prefix(100))
        #expect(errorMessage { _ = try CIFAR10Data(files: [path]) }
                == "The file '\(path)' is malformed at record 1: the file ends 100 bytes into a record of 3073 bytes (a label and 3x32x32 pixels).")
        let badLabel = try folder.write("bad.bin", Self.record(label: 1) + Self.record(label: 10))
        #expect(errorMessage { _ = try CIFAR10Data(files: [badLabel]) }
                == "The file '\(badLabel)' is malformed at record 1 label: 10 is not a class from 0 to 9.")
    }

    @Test("missing files are listed with how to get the data set")
    func missing() throws {
        let folder = try TemporaryFolder()
        defer { folder.cleanUp() }
        _ = try folder.write("data_batch_1.bin", Self.record(label: 1))
        let message = try #require(errorMessage { _ = try CIFAR10Data(directory: folder.url.path, train: true) })
        #expect(message.hasPrefix("The CIFAR-10 data set is not in '\(folder.url.path)'. Missing: data_batch_2.bin, data_batch_3.bin, data_batch_4.bin, data_batch_5.bin."))
        #expect(message.contains("cifar-10-binary.tar.gz"))
    }
}
