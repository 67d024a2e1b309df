import KilnCore

/// The fixed header in front of every image record (MXNet's `IRHeader`, packed as `IfQQ`: 24 bytes,
/// little-endian, no padding).
///
/// ```
/// flag u32 | label f32 | id u64 | id2 u64 | flag × f32 extra labels (when flag > 0) | image bytes
/// ```
public struct ImageRecordHeader: Sendable, Equatable {
    /// Bytes of the packed header.
    public static let byteCount = 24
    /// The number of extra float labels after the header; 0 when `label` is the only label.
    public var flag: UInt32
    /// The label of a single-label record (0 in multi-label records).
    public var label: Float
    /// Usually the record's index in the data set.
    public var id: UInt64
    /// The high bits of the id; usually 0.
    public var id2: UInt64

    public init(flag: UInt32, label: Float, id: UInt64, id2: UInt64 = 0) {
        self.flag = flag
        self.label = label
        self.id = id
        self.id2 = id2
    }
}

/// One record of an image RecordIO file: header, labels and the encoded image (MXNet's
/// `recordio.pack` / `unpack`).
public struct ImageRecord: Sendable, Equatable {
    public var header: ImageRecordHeader
    /// The extra labels (`header.flag` of them); empty for a single-label record.
    public var extraLabels: [Float]
    /// The encoded image (JPEG or PNG), or any payload.
    public var image: [UInt8]

    /// A single-label record (flag 0), as `pack` writes a number label.
    public init(label: Float, id: UInt64, id2: UInt64 = 0, image: [UInt8]) {
        header = ImageRecordHeader(flag: 0, label: label, id: id, id2: id2)
        extraLabels = []
        self.image = image
    }

    /// A multi-label record (flag = `labels.count`, header label 0), as `pack` writes an array label,
    /// even one of a single element.
    public init(labels: [Float], id: UInt64, id2: UInt64 = 0, image: [UInt8]) {
        header = ImageRecordHeader(flag: UInt32(labels.count), label: 0, id: id, id2: id2)
        extraLabels = labels
        self.image = image
    }

    /// A record that encodes `pixels` (HWC uint8) in `format` (MXNet's `pack_img`).
    public init(label: Float, id: UInt64, id2: UInt64 = 0, pixels: NDArray, format: ImageCodec.Encoding) throws {
        self.init(label: label, id: id, id2: id2, image: try ImageCodec.encode(pixels, as: format))
    }

    /// A multi-label record that encodes `pixels` (HWC uint8) in `format`.
    public init(labels: [Float], id: UInt64, id2: UInt64 = 0, pixels: NDArray, format: ImageCodec.Encoding) throws {
        self.init(labels: labels, id: id, id2: id2, image: try ImageCodec.encode(pixels, as: format))
    }

    /// Unpacks a record's payload; `source` names it in error messages (`"record 3 of 'train.rec'"`).
    public init(packed bytes: [UInt8], source: String) throws {
        guard bytes.count >= ImageRecordHeader.byteCount else {
            throw KilnDataError.malformedFile(
                path: source, field: "the image record header",
                reason: "the record has \(bytes.count) bytes, fewer than the header's \(ImageRecordHeader.byteCount)")
        }
        func u32(_ at: Int) -> UInt32 {
            UInt32(bytes[at]) | UInt32(bytes[at + 1]) << 8 | UInt32(bytes[at + 2]) << 16 | UInt32(bytes[at + 3]) << 24
        }
        func u64(_ at: Int) -> UInt64 { UInt64(u32(at)) | UInt64(u32(at + 4)) << 32 }
        header = ImageRecordHeader(flag: u32(0), label: Float(bitPattern: u32(4)), id: u64(8), id2: u64(16))
        let labelBytes = Int(header.flag) * 4
        guard bytes.count - ImageRecordHeader.byteCount >= labelBytes else {
            throw KilnDataError.malformedFile(
                path: source, field: "the image record header",
                reason: "flag \(header.flag) announces \(header.flag) labels (\(labelBytes) bytes) but only \(bytes.count - ImageRecordHeader.byteCount) bytes follow the header")
        }
        let imageStart = ImageRecordHeader.byteCount + labelBytes
        extraLabels = stride(from: ImageRecordHeader.byteCount, to: imageStart, by: 4).map { Float(bitPattern: u32($0)) }
        image = Array(bytes[imageStart...])
    }

    /// The labels of the record: the extra labels when there are any, else the header's one label.
    public var labels: [Float] { header.flag > 0 ? extraLabels : [header.label] }

    /// The payload to write with ``RecordIOWriter/write(_:)``. The flag written is the number of
    /// extra labels, whatever `header.flag` holds, as `pack` derives it from the label.
    public func packed() -> [UInt8] {
        var out: [UInt8] = []
        out.reserveCapacity(ImageRecordHeader.byteCount + extraLabels.count * 4 + image.count)
        func append<T: FixedWidthInteger>(_ v: T) { withUnsafeBytes(of: v.littleEndian) { out.append(contentsOf: $0) } }
        append(UInt32(extraLabels.count))
        append(header.label.bitPattern)
        append(header.id)
        append(header.id2)
        for label in extraLabels { append(label.bitPattern) }
        out.append(contentsOf: image)
        return out
    }
}
