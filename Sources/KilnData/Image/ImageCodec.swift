import Foundation
import KilnCore

/// JPEG and PNG decoding to `[height, width, channels]` uint8 arrays, and encoding back, through
/// the system's libjpeg-turbo and libpng 1.6.
///
/// ```
/// let rgb = try ImageCodec.decode(bytes, source: "record 4 of 'train.rec'")   // [H, W, 3] uint8
/// let png = try ImageCodec.encode(rgb, as: .png)
/// ```
///
/// Decoding follows OpenCV's `imdecode`, which MXNet uses: a colour read of an image with alpha
/// drops the alpha channel (it does not composite), a gray image is repeated into three channels,
/// and a gray read of a colour PNG uses the weights OpenCV gives libpng (0.299, 0.587, 0.114). Bytes that are not a whole, valid image
/// throw ``KilnDataError/undecodableImage(source:reason:)``; nothing is printed and nothing exits.
public enum ImageCodec {
    /// A file format, told by its first bytes.
    public enum Format: String, Sendable, Equatable {
        case jpeg = "JPEG", png = "PNG"
    }

    /// How ``encode(_:as:)`` writes an image.
    public enum Encoding: Sendable, Equatable {
        /// Baseline JPEG at `quality` 1...100 with 4:2:0 chroma subsampling (MXNet's `pack_img`
        /// writes quality 95). Takes 1 or 3 channels.
        case jpeg(quality: Int)
        /// PNG at zlib's default compression. Takes 1 (gray), 2 (gray, alpha), 3 (RGB) or 4 (RGBA) channels.
        case png
    }

    /// The largest image decoded, in pixels: a bound on what a damaged header can make the decoder
    /// allocate.
    public static let maxPixels = 1 << 28

    /// The format `bytes` start with, or nil.
    public static func format(of bytes: UnsafeRawBufferPointer) -> Format? {
        if bytes.count >= 3, bytes[0] == 0xFF, bytes[1] == 0xD8, bytes[2] == 0xFF { return .jpeg }
        let png: [UInt8] = [0x89, 0x50, 0x4E, 0x47, 0x0D, 0x0A, 0x1A, 0x0A]
        if bytes.count >= 8, bytes.prefix(8).elementsEqual(png) { return .png }
        return nil
    }

    /// The format `bytes` start with, or nil.
    public static func format(of bytes: [UInt8]) -> Format? {
        bytes.withUnsafeBytes { format(of: $0) }
    }

    /// Decodes a JPEG or PNG image to `[height, width, channels]` uint8, with `channels` 3 (RGB) or
    /// 1 (gray).
    ///
    /// - Parameters:
    ///   - source: names the image in error messages, such as `"record 4 of 'train.rec'"`.
    ///   - strict: when true, a JPEG that libjpeg can only partly decode (a truncated file, corrupt
    ///     entropy data) throws; when false it decodes as libjpeg and OpenCV do, with the missing
    ///     part filled in gray.
    public static func decode(_ bytes: UnsafeRawBufferPointer, channels: Int = 3, source: String = "in memory",
                              strict: Bool = true) throws -> NDArray {
        guard channels == 1 || channels == 3 else {
            throw KilnDataError.invalidArgument("Images decode to 1 (gray) or 3 (RGB) channels, not \(channels)")
        }
        switch format(of: bytes) {
        case .jpeg: return try decodeJPEG(bytes, gray: channels == 1, strict: strict, source: source)
        case .png: return try decodePNG(bytes, gray: channels == 1, source: source)
        case nil:
            let head = bytes.prefix(8).map { String(format: "%02x", $0) }.joined(separator: " ")
            throw KilnDataError.undecodableImage(
                source: source,
                reason: bytes.isEmpty ? "it is empty" : "it is neither JPEG nor PNG (it starts with \(head))")
        }
    }

    /// Decodes a JPEG or PNG image; see ``decode(_:channels:source:strict:)-(UnsafeRawBufferPointer,_,_,_)``.
    public static func decode(_ bytes: [UInt8], channels: Int = 3, source: String = "in memory",
                              strict: Bool = true) throws -> NDArray {
        try bytes.withUnsafeBytes { try decode($0, channels: channels, source: source, strict: strict) }
    }

    /// Encodes a `[height, width, channels]` uint8 array (or `[height, width]` for gray).
    public static func encode(_ pixels: NDArray, as encoding: Encoding) throws -> [UInt8] {
        guard pixels.dtype == .uint8, pixels.shape.rank == 2 || pixels.shape.rank == 3 else {
            throw KilnDataError.invalidArgument(
                "Images to encode are uint8 arrays of shape [height, width] or [height, width, channels], not \(pixels.dtype) \(pixels.shape)")
        }
        let height = pixels.shape[0], width = pixels.shape[1]
        let channels = pixels.shape.rank == 3 ? pixels.shape[2] : 1
        guard height > 0, width > 0, height <= 65_500, width <= 65_500 else {
            throw KilnDataError.invalidArgument("Images to encode are 1...65500 pixels on each side, not \(height)x\(width)")
        }
        switch encoding {
        case let .jpeg(quality):
            guard channels == 1 || channels == 3 else {
                throw KilnDataError.invalidArgument("JPEG encodes 1 or 3 channels, not \(channels)")
            }
            guard (1...100).contains(quality) else {
                throw KilnDataError.invalidArgument("JPEG quality is 1...100, not \(quality)")
            }
            return try encodeJPEG(pixels, width: width, height: height, channels: channels, quality: quality)
        case .png:
            guard (1...4).contains(channels) else {
                throw KilnDataError.invalidArgument("PNG encodes 1 to 4 channels, not \(channels)")
            }
            return try encodePNG(pixels, width: width, height: height, channels: channels)
        }
    }

    /// A C string in a fixed buffer (libjpeg's and libpng's messages).
    static func message(_ buffer: UnsafeRawBufferPointer) -> String {
        let bytes = buffer.prefix(while: { $0 != 0 })
        return String(decoding: bytes, as: UTF8.self)
    }
}
