import Foundation
import KilnCore

/// Gluon's `gluon.data.vision` data sets, read from files already on disk (nothing is downloaded).
///
/// Each is a ``Dataset`` whose examples are an image, height x width x channels uint8 (as ``ToTensor``
/// and the other image transforms expect), and a 0-d int32 label, so that
/// `Vision.FashionMNIST(train: false).transformFirst(FashionMNIST32())` feeds a ``DataLoader``.
///
/// Without `root`, a data set is looked for in `$KILN_DATA_DIR/NAME` (default `~/.kiln/data/NAME`), where
/// NAME is `mnist`, `fashion-mnist` or `cifar10`; Fashion-MNIST then also in
/// `/usr/share/datasets/fashion-mnist` (Debian's `dataset-fashion-mnist`).
public enum Vision {
    /// Where Debian's `dataset-fashion-mnist` installs its files.
    public static let systemFashionMNISTDirectory = "/usr/share/datasets/fashion-mnist"

    /// Kiln's data folder: `$KILN_DATA_DIR`, else `~/.kiln/data`.
    public static func dataDirectory(environment: [String: String] = ProcessInfo.processInfo.environment) -> String {
        if let dir = environment["KILN_DATA_DIR"], !dir.isEmpty { return dir }
        return NSHomeDirectory() + "/.kiln/data"
    }

    /// MNIST's handwritten digits (Gluon's `vision.MNIST`): 60,000 training and 10,000 test images,
    /// (28, 28, 1) uint8, labels 0...9.
    public struct MNIST: Dataset {
        /// The images and labels, as read.
        public let data: MNISTData
        /// The folder read.
        public let root: String

        /// The training or test split of `root` (default `$KILN_DATA_DIR/mnist`): the IDX files
        /// (`train-images-idx3-ubyte[.gz]`, ..., `t10k-...`), else `mnist_train.csv` / `mnist_test.csv`.
        /// - Throws: ``KilnDataError/missingDataSet(name:path:howToFetch:)`` naming the folder and how
        ///   to get MNIST, when neither is there.
        public init(root: String? = nil, train: Bool = true) throws {
            let folder = root ?? (Vision.dataDirectory() + "/mnist")
            self.root = folder
            data = try MNISTData(directory: folder, split: train ? .train : .test)
        }

        public var count: Int { data.count }

        public func item(at index: Int, using generator: inout SampleGenerator) throws -> Sample {
            try checkIndex(index, name: "MNIST")
            return Vision.grayExample(data, index)
        }
    }

    /// Zalando's Fashion-MNIST (Gluon's `vision.FashionMNIST`): 60,000 training and 10,000 test images
    /// of clothing, (28, 28, 1) uint8, labels 0...9 (T-shirt/top, trouser, pullover, dress, coat,
    /// sandal, shirt, sneaker, bag, ankle boot).
    public struct FashionMNIST: Dataset {
        /// The images and labels, as read.
        public let data: MNISTData
        /// The folder read.
        public let root: String

        /// How to get Fashion-MNIST without internet access.
        public static let howToFetch = """
            Kiln does not download data sets. Install Debian's package with \
            `apt-get install -y dataset-fashion-mnist` (files in \(Vision.systemFashionMNISTDirectory)), or put \
            train-images-idx3-ubyte.gz, train-labels-idx1-ubyte.gz, t10k-images-idx3-ubyte.gz and \
            t10k-labels-idx1-ubyte.gz (gzipped or not) in $KILN_DATA_DIR/fashion-mnist or the folder given as root.
            """

        /// The training or test split: the IDX files of `root`, or without `root` of
        /// `$KILN_DATA_DIR/fashion-mnist`, then of `/usr/share/datasets/fashion-mnist`.
        /// - Throws: ``KilnDataError/missingDataSet(name:path:howToFetch:)`` naming the missing file (or
        ///   the folders searched) and how to get the data set.
        public init(root: String? = nil, train: Bool = true) throws {
            let prefix = train ? "train" : "t10k"
            let names = ["\(prefix)-images-idx3-ubyte", "\(prefix)-labels-idx1-ubyte"]
            func find(_ name: String, in folder: String) -> String? {
                [name, name + ".gz"].map { folder + "/" + $0 }.first { FileManager.default.fileExists(atPath: $0) }
            }
            let candidates = root.map { [$0] }
                ?? [Vision.dataDirectory() + "/fashion-mnist", Vision.systemFashionMNISTDirectory]
            for folder in candidates {
                if let images = find(names[0], in: folder), let labels = find(names[1], in: folder) {
                    self.root = folder
                    data = try MNISTData(imagesFile: images, labelsFile: labels)
                    return
                }
            }
            // Name the first missing file of the first (or only) folder looked in.
            let first = candidates[0]
            let missing = names.first { find($0, in: first) == nil } ?? names[0]
            let searched = candidates.count > 1 ? " (also looked in \(candidates.dropFirst().joined(separator: ", ")))" : ""
            throw KilnDataError.missingDataSet(
                name: "Fashion-MNIST", path: first + "/" + missing + "[.gz]",
                howToFetch: "Looked for \(names.joined(separator: " and ")) there\(searched). " + Self.howToFetch)
        }

        public var count: Int { data.count }

        public func item(at index: Int, using generator: inout SampleGenerator) throws -> Sample {
            try checkIndex(index, name: "Fashion-MNIST")
            return Vision.grayExample(data, index)
        }
    }

    /// CIFAR-10 (Gluon's `vision.CIFAR10`), from the files of its binary version: (32, 32, 3) uint8
    /// images, labels 0...9.
    public struct CIFAR10: Dataset {
        /// The images and labels, as read.
        public let data: CIFAR10Data
        /// The folder read.
        public let root: String

        /// The training files (`data_batch_1.bin` ... `data_batch_5.bin`) or the test file
        /// (`test_batch.bin`) of `root` (default `$KILN_DATA_DIR/cifar10`), or of its subfolder
        /// `cifar-10-batches-bin` (as `cifar-10-binary.tar.gz` unpacks).
        /// - Throws: ``KilnDataError/missingDataSet(name:path:howToFetch:)`` naming the folder and the
        ///   missing files.
        public init(root: String? = nil, train: Bool = true) throws {
            var folder = root ?? (Vision.dataDirectory() + "/cifar10")
            let probe = train ? "data_batch_1.bin" : "test_batch.bin"
            let nested = folder + "/cifar-10-batches-bin"
            if !FileManager.default.fileExists(atPath: folder + "/" + probe),
               FileManager.default.fileExists(atPath: nested + "/" + probe) {
                folder = nested
            }
            self.root = folder
            data = try CIFAR10Data(directory: folder, train: train)
        }

        public var count: Int { data.count }

        public func item(at index: Int, using generator: inout SampleGenerator) throws -> Sample {
            // CIFAR10Dataset already turns the stored CHW record into HWC.
            try CIFAR10Dataset(data: data).item(at: index, using: &generator)
        }
    }

    /// Example `index` of MNIST-format data as Gluon gives it: (rows, columns, 1) uint8 and a 0-d int32.
    static func grayExample(_ data: MNISTData, _ index: Int) -> Sample {
        let image = data.images.row(index)
        let hwc = (try? image.reshaped(Shape(image.shape.dims + [1]))) ?? image
        return (hwc, NDArray(shape: [], dtype: .int32, values: [Double(data.labels.element(index))]))
    }
}
