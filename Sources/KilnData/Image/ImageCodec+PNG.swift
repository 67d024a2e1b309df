import CPNG
import Foundation
import KilnCore

// PNG through libpng's simplified API (png_image), which reports errors through its return value
// and `message` (it catches libpng's longjmp internally), so no C shim is needed here.
//
// Every PNG is read as 8-bit RGBA and reduced here, so that each input kind (gray, gray+alpha,
// palette, RGB, RGBA, 16-bit) reaches RGB the way OpenCV's colour read does: gray repeated, alpha
// dropped; a gray read of a colour image uses libpng's conversion as OpenCV sets it up. 16-bit samples are read as sRGB-encoded (PNG_IMAGE_FLAG_16BIT_sRGB) and scaled to 8 bits,
// close to OpenCV's `>> 8`; an image with a gAMA chunk other than sRGB's is converted to sRGB by
// libpng, where OpenCV ignores the chunk.

extension ImageCodec {
    static func decodePNG(_ bytes: UnsafeRawBufferPointer, gray: Bool, source: String) throws -> NDArray {
        guard let base = bytes.baseAddress else {
            throw KilnDataError.undecodableImage(source: source, reason: "it is empty")
        }
        var image = png_image()
        image.version = UInt32(PNG_IMAGE_VERSION)
        guard png_image_begin_read_from_memory(&image, base, bytes.count) != 0 else {
            throw KilnDataError.undecodableImage(source: source, reason: "PNG: " + pngMessage(&image))
        }
        let width = Int(image.width), height = Int(image.height)
        guard width * height <= maxPixels else {
            png_image_free(&image)
            throw KilnDataError.undecodableImage(
                source: source, reason: "PNG: \(width)x\(height) is more pixels than the decoder allows (\(maxPixels))")
        }
        do {
            // The RGBA buffer and the result, sized by the file's header.
            try MemoryBudget.process.check(bytes: width * height * (4 + (gray ? 1 : 3)),
                                           for: "decoding the \(width)x\(height) PNG image \(source)")
        } catch {
            png_image_free(&image)
            throw error
        }
        image.format = UInt32(PNG_FORMAT_FLAG_COLOR | PNG_FORMAT_FLAG_ALPHA)  // PNG_FORMAT_RGBA
        image.flags |= UInt32(PNG_IMAGE_FLAG_16BIT_sRGB)
        var rgba = [UInt8](repeating: 0, count: width * height * 4)
        let finished = rgba.withUnsafeMutableBytes { png_image_finish_read(&image, nil, $0.baseAddress, 0, nil) }
        guard finished != 0 else {
            // finish_read frees the image's memory itself when it fails.
            throw KilnDataError.undecodableImage(source: source, reason: "PNG: " + pngMessage(&image))
        }
        var out = NDArray(zeros: [height, width, gray ? 1 : 3], dtype: .uint8)
        out.withUnsafeMutableBufferPointer(as: UInt8.self) { dst in
            for p in 0..<(width * height) {
                let r = rgba[4 * p], g = rgba[4 * p + 1], b = rgba[4 * p + 2]
                if gray {
                    dst[p] = grayLevel(red: r, green: g, blue: b)
                } else {
                    dst[3 * p] = r
                    dst[3 * p + 1] = g
                    dst[3 * p + 2] = b
                }
            }
        }
        return out
    }

    /// RGB to gray as OpenCV's PNG reader gets it from libpng, `png_set_rgb_to_gray(0.299, 0.587)`:
    /// coefficients truncated to 15 bits (9797, 19234, and 3737 for blue), the sum truncated, and
    /// gray pixels passed through unchanged. This matches MXNet 1.9.1's gray reads exactly.
    static func grayLevel(red: UInt8, green: UInt8, blue: UInt8) -> UInt8 {
        if red == green && red == blue { return red }
        let sum: Int = Int(red) * 9797 + Int(green) * 19234 + Int(blue) * 3737
        return UInt8(sum >> 15)
    }

    static func encodePNG(_ pixels: NDArray, width: Int, height: Int, channels: Int) throws -> [UInt8] {
        var image = png_image()
        image.version = UInt32(PNG_IMAGE_VERSION)
        image.width = UInt32(width)
        image.height = UInt32(height)
        // PNG_FORMAT_GRAY, _GA, _RGB, _RGBA (the composed macros do not import into Swift).
        let alpha = channels == 2 || channels == 4 ? UInt32(PNG_FORMAT_FLAG_ALPHA) : 0
        let color = channels >= 3 ? UInt32(PNG_FORMAT_FLAG_COLOR) : 0
        image.format = alpha | color
        return try pixels.withUnsafeBytes { raw -> [UInt8] in
            // First call measures, second writes.
            var size = 0
            guard png_image_write_to_memory(&image, nil, &size, 0, raw.baseAddress, 0, nil) != 0 else {
                throw KilnDataError.invalidArgument("PNG encoding failed: " + pngMessage(&image))
            }
            var out = [UInt8](repeating: 0, count: size)
            let status = out.withUnsafeMutableBytes { png_image_write_to_memory(&image, $0.baseAddress, &size, 0, raw.baseAddress, 0, nil) }
            guard status != 0 else {
                throw KilnDataError.invalidArgument("PNG encoding failed: " + pngMessage(&image))
            }
            return Array(out.prefix(size))
        }
    }

    private static func pngMessage(_ image: inout png_image) -> String {
        let text = withUnsafeBytes(of: &image.message) { message($0) }
        return text.isEmpty ? "libpng failed" : text
    }
}
