import CJPEG
import Foundation
import KilnCore

// JPEG through libjpeg-turbo. The decode and encode run whole inside Sources/CJPEG/shim.h, which
// turns libjpeg's fatal errors (whose default handler calls exit()) into a return code and message.

extension ImageCodec {
    static func decodeJPEG(_ bytes: UnsafeRawBufferPointer, gray: Bool, strict: Bool, source: String) throws -> NDArray {
        guard let base = bytes.baseAddress?.assumingMemoryBound(to: UInt8.self) else {
            throw KilnDataError.undecodableImage(source: source, reason: "it is empty")
        }
        var pixels: UnsafeMutablePointer<UInt8>?
        var width: Int32 = 0, height: Int32 = 0
        var message = [CChar](repeating: 0, count: 256)
        let status = kiln_jpeg_decode(base, UInt(bytes.count), gray ? 1 : 0, strict ? 1 : 0, UInt(maxPixels),
                                      &pixels, &width, &height, &message, message.count)
        guard status == 0, let pixels else {
            let text = message.withUnsafeBytes { Self.message($0) }
            throw KilnDataError.undecodableImage(source: source, reason: "JPEG: " + (text.isEmpty ? "libjpeg failed" : text))
        }
        defer { free(pixels) }
        let channels = gray ? 1 : 3
        var out = NDArray(zeros: [Int(height), Int(width), channels], dtype: .uint8)
        out.withUnsafeMutableBytes { dst in
            guard let dstBase = dst.baseAddress else { return }
            dstBase.copyMemory(from: pixels, byteCount: dst.count)
        }
        return out
    }

    static func encodeJPEG(_ pixels: NDArray, width: Int, height: Int, channels: Int, quality: Int) throws -> [UInt8] {
        var output: UnsafeMutablePointer<UInt8>?
        var size: UInt = 0
        var message = [CChar](repeating: 0, count: 256)
        let status = pixels.withUnsafeBytes { raw -> Int32 in
            guard let base = raw.baseAddress?.assumingMemoryBound(to: UInt8.self) else { return -1 }
            return kiln_jpeg_encode(base, Int32(width), Int32(height), Int32(channels), Int32(quality),
                                    &output, &size, &message, message.count)
        }
        guard status == 0, let output else {
            let text = message.withUnsafeBytes { Self.message($0) }
            throw KilnDataError.invalidArgument("JPEG encoding failed: " + (text.isEmpty ? "libjpeg failed" : text))
        }
        defer { free(output) }
        return Array(UnsafeBufferPointer(start: output, count: Int(size)))
    }
}
