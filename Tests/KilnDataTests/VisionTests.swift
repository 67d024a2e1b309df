import Foundation
import KilnCore
@testable import KilnData
import Testing

@Suite("Vision data sets and the Fashion-MNIST-32 transform")
struct VisionTests {
    /// Writes a Fashion-MNIST-style test split of `labels.count` 28 x 28 images whose pixel (y, x) of
    /// image i is (i * 40 + y + x) mod 256.
    static func writeGraySplit(_ folder: TemporaryFolder, prefix: String, labels: [UInt8]) throws {
        var pixels: [UInt8] = []
        for i in 0..<labels.count { for y in 0..<28 { for x in 0..<28 { pixels.append(UInt8((i * 40 + y + x) % 256)) } } }
        _ = try folder.write("\(prefix)-images-idx3-ubyte", idxImages(count: labels.count, rows: 28, columns: 28, pixels: pixels))
        _ = try folder.write("\(prefix)-labels-idx1-ubyte", idxLabels(labels))
    }

    @Test("Vision.FashionMNIST and Vision.MNIST read IDX files as (28, 28, 1) uint8 with int32 labels")
    func grayDataSets() throws {
        let folder = try TemporaryFolder()
        defer { folder.cleanUp() }
        try Self.writeGraySplit(folder, prefix: "t10k", labels: [9, 2, 1])
        let fashion = try Vision.FashionMNIST(root: folder.url.path, train: false)
        let digits = try Vision.MNIST(root: folder.url.path, train: false)
        for dataset in [fashion, digits] as [any Dataset] {
            #expect(dataset.count == 3)
            let (image, label) = try dataset.item(at: 1)
            #expect(image.shape == [28, 28, 1] && image.dtype == .uint8)
            #expect(label.shape == [] && label.dtype == .int32 && label.floats() == [2])
            #expect(image.floats()[5 * 28 + 7] == Float((40 + 5 + 7) % 256))
        }
    }

    @Test("a missing Fashion-MNIST file is an error naming the path and the Debian package")
    func missingFashionMNIST() throws {
        let folder = try TemporaryFolder()
        defer { folder.cleanUp() }
        try Self.writeGraySplit(folder, prefix: "t10k", labels: [1])
        let message = errorMessage { _ = try Vision.FashionMNIST(root: folder.url.path, train: true) }
        #expect(message?.contains(folder.url.path + "/train-images-idx3-ubyte") == true, "\(message ?? "no error")")
        #expect(message?.contains("apt-get install -y dataset-fashion-mnist") == true)
        let cifar = errorMessage { _ = try Vision.CIFAR10(root: folder.url.path, train: false) }
        #expect(cifar?.contains("test_batch.bin") == true && cifar?.contains(folder.url.path) == true, "\(cifar ?? "no error")")
    }

    @Test("Vision.CIFAR10 reads binary files, also from cifar-10-batches-bin, as (32, 32, 3) uint8")
    func cifar() throws {
        let folder = try TemporaryFolder()
        defer { folder.cleanUp() }
        let nested = folder.url.appendingPathComponent("cifar-10-batches-bin")
        try FileManager.default.createDirectory(at: nested, withIntermediateDirectories: true)
        // Two records: labels 6 and 3; pixel (c, y, x) of record r is (r + c * 10 + y + x) mod 256.
        var bytes: [UInt8] = []
        for (r, label) in [UInt8(6), 3].enumerated() {
            bytes.append(label)
            for c in 0..<3 { for y in 0..<32 { for x in 0..<32 { bytes.append(UInt8((r + c * 10 + y + x) % 256)) } } }
        }
        try Data(bytes).write(to: nested.appendingPathComponent("test_batch.bin"))
        let test = try Vision.CIFAR10(root: folder.url.path, train: false)
        #expect(test.count == 2 && test.root == nested.path)
        let (image, label) = try test.item(at: 1)
        #expect(image.shape == [32, 32, 3] && image.dtype == .uint8 && label.floats() == [3])
        // HWC (y 2, x 3, channel 1) of record 1.
        #expect(image.floats()[(2 * 32 + 3) * 3 + 1] == Float(1 + 10 + 2 + 3))
    }

    @Test("PadToRGB pads 2 pixels of 0 and copies the channel three times, by hand")
    func padToRGB() throws {
        // A 2 x 3 gray image 1...6 with padding 1 gives 4 x 5 x 3.
        let gray = NDArray(shape: [2, 3, 1], dtype: .uint8, values: [1, 2, 3, 4, 5, 6])
        let out = try PadToRGB(padding: 1)(gray)
        #expect(out.shape == [4, 5, 3] && out.dtype == .uint8)
        let expectedPlane: [Float] = [0, 0, 0, 0, 0,
                                      0, 1, 2, 3, 0,
                                      0, 4, 5, 6, 0,
                                      0, 0, 0, 0, 0]
        let v = out.floats()
        for c in 0..<3 {
            #expect((0..<20).map { v[$0 * 3 + c] } == expectedPlane, "channel \(c)")
        }
        // Without the channel axis, too.
        let flat = try PadToRGB(padding: 1)(NDArray(shape: [2, 3], dtype: .uint8, values: [1, 2, 3, 4, 5, 6]))
        #expect(identical(flat, out))
        #expect(throws: KilnDataError.self) { _ = try PadToRGB()(NDArray(zeros: [4, 4, 3], dtype: .uint8)) }
    }

    @Test("FashionMNIST32 gives (3, 32, 32): 0 at the border, (p / 255 - mean) / std inside")
    func fashionMNIST32() throws {
        // Pixel (y, x) = y * 9 + x mod 256 of a 28 x 28 image.
        let gray = image(height: 28, width: 28, channels: 1) { y, x, _ in (y * 9 + x) % 256 }
        let out = try FashionMNIST32()(gray)
        #expect(out.shape == [3, 32, 32] && out.dtype == .float32)
        let v = out.floats()
        let (mean, std) = (FashionMNIST32.mean, FashionMNIST32.std)
        #expect(mean == 0.2860 && std == 0.3530)
        let border = (0 - mean) / std
        for c in 0..<3 {
            for (y, x) in [(0, 0), (1, 17), (31, 31), (30, 2), (2, 30), (5, 0), (5, 1)] {
                #expect(abs(v[(c * 32 + y) * 32 + x] - border) < 1e-6, "border (\(c), \(y), \(x))")
            }
            for (y, x) in [(2, 2), (10, 20), (29, 29), (17, 3)] {
                let p = Float(((y - 2) * 9 + (x - 2)) % 256)
                #expect(abs(v[(c * 32 + y) * 32 + x] - (p / 255 - mean) / std) < 1e-5, "inside (\(c), \(y), \(x))")
            }
        }
        let raw = try FashionMNIST32(normalize: false)(gray)
        #expect(raw.floats()[(1 * 32 + 29) * 32 + 29] == Float((27 * 9 + 27) % 256) / 255)
        #expect(throws: KilnDataError.self) { _ = try FashionMNIST32()(NDArray(zeros: [32, 32, 3], dtype: .uint8)) }
    }

    @Test("the Fashion-MNIST-32 test set through transformFirst and the DataLoader")
    func throughTheLoader() throws {
        let folder = try TemporaryFolder()
        defer { folder.cleanUp() }
        try Self.writeGraySplit(folder, prefix: "t10k", labels: [4, 0, 7, 7, 1])
        let dataset = try Vision.FashionMNIST(root: folder.url.path, train: false).transformFirst(FashionMNIST32())
        let loader = try DataLoader(dataset: dataset, batchSize: 2, numWorkers: 2)
        let batches = try drain(loader)
        #expect(batches.map { $0.data[0].shape } == [[2, 3, 32, 32], [2, 3, 32, 32], [1, 3, 32, 32]])
        #expect(batches.flatMap { $0.label[0].floats() } == [4, 0, 7, 7, 1])
        // Image 3, channel 2, (y 12, x 9): pixel (3 * 40 + 10 + 7) of the unpadded image.
        let p = Float((3 * 40 + 10 + 7) % 256) as Float
        let offset: Int = ((1 * 3 + 2) * 32 + 12) * 32 + 9
        let got: Float = batches[1].data[0].floats()[offset]
        let want: Float = (p / 255 - FashionMNIST32.mean) / FashionMNIST32.std
        #expect(abs(got - want) < 1e-5)
    }

    /// The real test set, when Debian's dataset-fashion-mnist is installed.
    @Test("the installed Fashion-MNIST test labels begin 9 2 1 1 6 1 4 6 5 7",
          .enabled(if: FileManager.default.fileExists(atPath: Vision.systemFashionMNISTDirectory + "/t10k-labels-idx1-ubyte.gz")))
    func installedFashionMNIST() throws {
        let test = try Vision.FashionMNIST(root: Vision.systemFashionMNISTDirectory, train: false)
        #expect(test.count == 10000)
        #expect(try (0..<10).map { try test.item(at: $0).label.floats()[0] } == [9, 2, 1, 1, 6, 1, 4, 6, 5, 7])
    }
}
