// Bilinear resizing of uint8 HWC images as OpenCV's `cv::resize(..., INTER_LINEAR)` computes it,
// which is what MXNet's ImageRecordIter calls, so that resized batches match MXNet's.
//
// Source coordinates use pixel centres, clamped at the borders:
//
//     sx = (dx + 0.5) * (srcWidth / dstWidth) - 0.5        src  |  0  |  1  |  2  |  3  |
//     weights (1 - frac(sx), frac(sx))                     dst  |    0    |    1    |     (4 -> 2)
//                                                                     sx = 0.5, 2.5
//
// OpenCV works in fixed point: weights are rounded to 11 bits (x 2048), each row is first
// interpolated horizontally into integers, and the two rows are blended as its SIMD code does,
// `((r0 >> 4) * b0 >> 16) + ((r1 >> 4) * b1 >> 16) + 2 >> 2`. An exact 2:1 reduction on both axes
// is done as OpenCV does it, by averaging 2x2 blocks.

import KilnCore

/// Resizing and cropping of `[height, width, channels]` uint8 images.
public enum ImageResize {
    /// `image` resized to `height` x `width` with OpenCV's bilinear interpolation.
    public static func bilinear(_ image: NDArray, height: Int, width: Int) throws -> NDArray {
        let (sh, sw, c) = try dimensions(of: image)
        guard height > 0, width > 0 else {
            throw KilnDataError.invalidArgument("An image cannot be resized to \(height)x\(width)")
        }
        if sh == height && sw == width { return image }
        var out = NDArray(zeros: [height, width, c], dtype: .uint8)
        image.withUnsafeBufferPointer(as: UInt8.self) { src in
            out.withUnsafeMutableBufferPointer(as: UInt8.self) { dst in
                if sh == 2 * height && sw == 2 * width {
                    halve(src, dst, height: height, width: width, channels: c)
                } else {
                    interpolate(src, dst, sourceHeight: sh, sourceWidth: sw, height: height, width: width, channels: c)
                }
            }
        }
        return out
    }

    /// `image` resized so that its shorter side is `size`, keeping the aspect ratio as MXNet's
    /// `resize` option does (the longer side is `size * long / short`, rounded down).
    public static func shorterSide(_ image: NDArray, to size: Int) throws -> NDArray {
        let (h, w, _) = try dimensions(of: image)
        guard size > 0 else { throw KilnDataError.invalidArgument("The shorter side cannot be resized to \(size)") }
        if h > w {
            return try bilinear(image, height: size * h / w, width: size)
        }
        return try bilinear(image, height: size, width: size * w / h)
    }

    /// The `height` x `width` window of `image` whose top-left pixel is (`top`, `left`).
    public static func cropped(_ image: NDArray, top: Int, left: Int, height: Int, width: Int) throws -> NDArray {
        let (h, w, c) = try dimensions(of: image)
        guard top >= 0, left >= 0, height > 0, width > 0, top + height <= h, left + width <= w else {
            throw KilnDataError.invalidArgument(
                "The crop of \(height)x\(width) at (\(top), \(left)) does not fit an image of \(h)x\(w)")
        }
        var out = NDArray(zeros: [height, width, c], dtype: .uint8)
        image.withUnsafeBufferPointer(as: UInt8.self) { src in
            out.withUnsafeMutableBufferPointer(as: UInt8.self) { dst in
                for y in 0..<height {
                    let from = ((top + y) * w + left) * c
                    for i in 0..<(width * c) { dst[y * width * c + i] = src[from + i] }
                }
            }
        }
        return out
    }

    static func dimensions(of image: NDArray) throws -> (height: Int, width: Int, channels: Int) {
        guard image.dtype == .uint8, image.shape.rank == 3, image.shape[0] > 0, image.shape[1] > 0, image.shape[2] > 0 else {
            throw KilnDataError.invalidArgument(
                "Image operations take non-empty uint8 arrays of shape [height, width, channels], not \(image.dtype) \(image.shape)")
        }
        return (image.shape[0], image.shape[1], image.shape[2])
    }

    // MARK: OpenCV's arithmetic

    private static let coefficientScale: Float = 2048  // INTER_RESIZE_COEF_SCALE, 11 bits

    /// Source index and fixed-point weights along one axis, for each destination index.
    private static func taps(source: Int, destination: Int) -> [(index: Int, w0: Int, w1: Int)] {
        let scale = Double(source) / Double(destination)
        return (0..<destination).map { d in
            var f = Float((Double(d) + 0.5) * scale - 0.5)
            var s = Int(f.rounded(.down))
            f -= Float(s)
            if s < 0 { s = 0; f = 0 }
            if s >= source - 1 { s = source - 1; f = 0 }
            // saturate_cast<short> rounds to nearest, ties to even (cvRound).
            let w0 = Int(((1 - f) * coefficientScale).rounded(.toNearestOrEven))
            let w1 = Int((f * coefficientScale).rounded(.toNearestOrEven))
            return (s, w0, w1)
        }
    }

    private static func interpolate(_ src: UnsafeBufferPointer<UInt8>, _ dst: UnsafeMutableBufferPointer<UInt8>,
                                    sourceHeight sh: Int, sourceWidth sw: Int, height: Int, width: Int, channels c: Int) {
        let xs = taps(source: sw, destination: width)
        let ys = taps(source: sh, destination: height)
        let rowLength = width * c
        // Horizontal pass of one source row, into integers scaled by 2048.
        func horizontal(_ row: Int, into buffer: inout [Int]) {
            let base = row * sw * c
            for (dx, tap) in xs.enumerated() {
                for k in 0..<c {
                    let a = Int(src[base + tap.index * c + k]) * tap.w0
                    let b = tap.w1 == 0 ? 0 : Int(src[base + (tap.index + 1) * c + k]) * tap.w1
                    buffer[dx * c + k] = a + b
                }
            }
        }
        var row0 = [Int](repeating: 0, count: rowLength), row1 = row0
        var loaded0 = -1, loaded1 = -1
        for (dy, tap) in ys.enumerated() {
            let y1 = min(tap.index + 1, sh - 1)
            if loaded0 != tap.index {
                if loaded1 == tap.index { swap(&row0, &row1); swap(&loaded0, &loaded1) } else { horizontal(tap.index, into: &row0); loaded0 = tap.index }
            }
            if loaded1 != y1 { horizontal(y1, into: &row1); loaded1 = y1 }
            for i in 0..<rowLength {
                let v = (((row0[i] >> 4) * tap.w0) >> 16) + (((row1[i] >> 4) * tap.w1) >> 16)
                dst[dy * rowLength + i] = UInt8(clamping: (v + 2) >> 2)
            }
        }
    }

    /// OpenCV's fast area path for an exact 2:1 reduction: the rounded mean of each 2x2 block.
    private static func halve(_ src: UnsafeBufferPointer<UInt8>, _ dst: UnsafeMutableBufferPointer<UInt8>,
                              height: Int, width: Int, channels c: Int) {
        let sourceRow = 2 * width * c
        for y in 0..<height {
            for x in 0..<width {
                for k in 0..<c {
                    let p = 2 * y * sourceRow + 2 * x * c + k
                    let sum = Int(src[p]) + Int(src[p + c]) + Int(src[p + sourceRow]) + Int(src[p + sourceRow + c])
                    dst[(y * width + x) * c + k] = UInt8((sum + 2) >> 2)
                }
            }
        }
    }
}
