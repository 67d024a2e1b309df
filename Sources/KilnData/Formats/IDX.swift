// The IDX format of MNIST's files (yann.lecun.com/exdb/mnist), big-endian throughout:
//
//     magic  00 00 TT DD     TT = element type (08 = unsigned byte), DD = number of dimensions
//     dims   DD x int32      e.g. 60000, 28, 28
//     data   product(dims) elements, C order
//
// Images are 00 00 08 03 (2051), labels 00 00 08 01 (2049).
import KilnCore

/// The contents of an IDX file of unsigned bytes, read in two steps: the header (magic number and
/// dimensions), then the data. A caller can compare the headers of an image and a label file before
/// either body is inflated, so a small gzip file that claims a gigabyte costs nothing when the two
/// disagree; the data's size is checked against the memory budget before it is read.
struct IDXFile {
    let path: String
    let dims: [Int]
    /// Bytes the data holds (the product of the dimensions).
    let count: Int
    private let file: GzipFile

    /// Opens `path` (gzipped or not) and reads its header, requiring unsigned-byte elements and
    /// `rank` dimensions; `role` ("image", "label") names the file in errors.
    init(header path: String, rank: Int, role: String) throws {
        let file = try GzipFile(path: path)
        let magic = try file.read(exactly: 4, field: "the magic number")
        let expected: [UInt8] = [0, 0, 0x08, UInt8(rank)]
        guard magic == expected else {
            func hex(_ b: [UInt8]) -> String { "0x" + b.map { String($0, radix: 16).leftPadded(2) }.joined() }
            throw KilnDataError.malformedFile(
                path: path, field: "the magic number",
                reason: "\(hex(magic)) is not \(hex(expected)), the magic number of an IDX \(role) file (unsigned bytes, \(rank) dimension\(rank == 1 ? "" : "s"))")
        }
        var dims: [Int] = []
        for axis in 0..<rank {
            let field = "dimension \(axis)"
            let b = try file.read(exactly: 4, field: field)
            let value = Int(b[0]) << 24 | Int(b[1]) << 16 | Int(b[2]) << 8 | Int(b[3])
            guard value < 1 << 31 else {
                throw KilnDataError.malformedFile(path: path, field: field, reason: "\(value) is negative as a signed 32-bit count")
            }
            dims.append(value)
        }
        // Each dimension is below 2^31 and there are at most 3, but the product could still overflow.
        var total = 1
        for d in dims {
            let (p, overflow) = total.multipliedReportingOverflow(by: d)
            guard !overflow else {
                throw KilnDataError.malformedFile(path: path, field: "the dimensions",
                                                  reason: "\(dims) hold more elements than can be addressed")
            }
            total = p
        }
        self.path = path
        self.dims = dims
        self.count = total
        self.file = file
    }

    /// Reads the data the header announced, which must end the file.
    func body() throws -> [UInt8] {
        try MemoryBudget.process.check(bytes: count, for: "the data of '\(path)' (\(dims.map(String.init).joined(separator: "x")) bytes, as its header says)")
        let bytes = try file.read(exactly: count, field: "the data of \(dims.map(String.init).joined(separator: "x")) bytes")
        guard try file.atEnd() else {
            throw KilnDataError.malformedFile(
                path: path, field: "the end of the data",
                reason: "the file holds more than the \(count) bytes its dimensions \(dims) call for")
        }
        return bytes
    }
}

extension String {
    func leftPadded(_ width: Int) -> String { count >= width ? self : String(repeating: "0", count: width - count) + self }
}
