// Bilinear resizing as OpenCV's cv::resize(INTER_LINEAR) does it, which MXNet's image.resize calls.
//
// Pixel centres are aligned (half-pixel offsets): output column dx reads source column
// fx = (dx + 0.5) * srcW / dstW - 0.5 and mixes columns floor(fx) and floor(fx) + 1. Outside the
// image OpenCV clamps columns (position and weight) but only the indices of rows, so a border row
// mixes a source row with itself under weights that, rounded, need not sum to 1:
//
//     source row  [ 10  20  30 ]        width 3 -> 5: fx = -0.2 0.4 1.0 1.6 2.2
//     output row  [ 10  14  20  26  30 ]              (clamped)    (clamped)
//
// uint8 images use OpenCV's fixed-point arithmetic: weights rounded to 11 bits, a horizontal pass
// into integers, then the vertical pass of its SIMD kernel,
// ((((S0 >> 4) * b0) >> 16) + (((S1 >> 4) * b1) >> 16) + 2) >> 2. This matched MXNet 1.9.1
// exactly on every golden case. OpenCV finishes a row's last few values (fewer than its SIMD step)
// with (S0 * b0 + S1 * b1 + 2^21) >> 22 instead, which can differ by 1; Kiln uses the SIMD formula
// throughout. float32 images follow OpenCV's float arithmetic and match to rounding.
import KilnCore

/// Resizes HWC image(s) with bilinear interpolation (Gluon's `Resize`, OpenCV's INTER_LINEAR).
///
/// Takes (H, W, C) or (N, H, W, C) images of uint8 or float32. With `keepRatio`, `Resize(size:)`
/// sets the shorter side to `size` and scales the other with integer division, as MXNet does.
public struct Resize: Transform {
    public let width: Int
    public let height: Int
    /// Whether `width` (= `height`) is the target of the shorter side instead of both.
    public let keepRatio: Bool

    /// A `size` x `size` output, or, with `keepRatio`, the shorter side set to `size`.
    public init(size: Int, keepRatio: Bool = false) {
        width = size
        height = size
        self.keepRatio = keepRatio
    }

    public init(width: Int, height: Int) {
        self.width = width
        self.height = height
        keepRatio = false
    }

    public func apply(_ input: NDArray, using generator: inout SampleGenerator) throws -> NDArray {
        let dims = input.shape.dims
        guard dims.count == 3 || dims.count == 4 else {
            throw KilnDataError.invalidArgument(
                "Resize takes an (H, W, C) image or an (N, H, W, C) batch, not an array of shape \(input.shape)")
        }
        let (h, w) = (dims[dims.count - 3], dims[dims.count - 2])
        var outW = width, outH = height
        if keepRatio && h > 0 && w > 0 {
            if h > w { outW = width; outH = h * width / w } else { outH = width; outW = w * width / h }
        }
        guard dims.count == 4 else { return try resizeBilinear(input, width: outW, height: outH) }
        var images: [NDArray] = []
        for i in 0..<dims[0] {
            images.append(try resizeBilinear(input.row(i), width: outW, height: outH))
        }
        return try NDArray.stacking(images, what: "resized images")
    }
}

/// Source index and weights of each output position along one axis, as OpenCV computes them.
private struct LinearTaps {
    var first: [Int]
    var second: [Int]
    var weight0: [Float]
    var weight1: [Float]

    /// With `clampsWeights` (columns), a position outside the image reads the edge with weight 1;
    /// without (rows), only the indices are clamped.
    init(source: Int, destination: Int, clampsWeights: Bool) {
        // OpenCV keeps the inverse scale and inverts it; the double rounding can matter at .5 boundaries.
        let scale = 1 / (Double(destination) / Double(source))
        first = []; second = []; weight0 = []; weight1 = []
        for d in 0..<destination {
            var f = Float((Double(d) + 0.5) * scale - 0.5)
            var s = Int(f.rounded(.down))
            f -= Float(s)
            if clampsWeights {
                if s < 0 { f = 0; s = 0 }
                if s >= source - 1 { f = 0; s = source - 1 }
            }
            first.append(Swift.min(Swift.max(s, 0), source - 1))
            second.append(Swift.min(Swift.max(s + 1, 0), source - 1))
            weight0.append(1 - f)
            weight1.append(f)
        }
    }

    /// The weights in OpenCV's 11-bit fixed point (`saturate_cast<short>(w * 2048)`, rounding to nearest even).
    func fixedPoint() -> (a0: [Int32], a1: [Int32]) {
        (weight0.map { Int32(($0 * 2048).rounded(.toNearestOrEven)) },
         weight1.map { Int32(($0 * 2048).rounded(.toNearestOrEven)) })
    }
}

/// A bilinear resize of one HWC image of uint8 or float32 to `width` x `height`.
func resizeBilinear(_ input: NDArray, width: Int, height: Int) throws -> NDArray {
    let (h, w, c) = try imageDimensions(input, transform: "Resize")
    guard width > 0, height > 0, h > 0, w > 0 else {
        throw KilnDataError.invalidArgument(
            "Resize cannot take a \(w)x\(h) image to \(width)x\(height) (width x height); both must be positive")
    }
    let xs = LinearTaps(source: w, destination: width, clampsWeights: true)
    let ys = LinearTaps(source: h, destination: height, clampsWeights: false)
    var out = NDArray(zeros: [height, width, c], dtype: input.dtype)
    let rowLength = width * c
    switch input.dtype {
    case .uint8:
        let (ax0, ax1) = xs.fixedPoint()
        let (by0, by1) = ys.fixedPoint()
        // Horizontal pass of source row `sy` into 2^11-scaled integers.
        func horizontal(_ src: UnsafeBufferPointer<UInt8>, _ sy: Int) -> [Int32] {
            var row = [Int32](repeating: 0, count: rowLength)
            for dx in 0..<width {
                let p0 = (sy * w + xs.first[dx]) * c, p1 = (sy * w + xs.second[dx]) * c
                for ch in 0..<c {
                    row[dx * c + ch] = Int32(src[p0 + ch]) * ax0[dx] + Int32(src[p1 + ch]) * ax1[dx]
                }
            }
            return row
        }
        input.withUnsafeBufferPointer(as: UInt8.self) { src in
            out.withUnsafeMutableBufferPointer(as: UInt8.self) { dst in
                for dy in 0..<height {
                    let r0 = horizontal(src, ys.first[dy]), r1 = horizontal(src, ys.second[dy])
                    let b0 = by0[dy], b1 = by1[dy]
                    for i in 0..<rowLength {
                        // The SIMD kernel's 16-bit arithmetic: (S >> 4) packed to int16, times beta, high half.
                        let s0 = Int32(clamping: Int16(clamping: r0[i] >> 4))
                        let s1 = Int32(clamping: Int16(clamping: r1[i] >> 4))
                        let v = (((s0 * b0) >> 16) + ((s1 * b1) >> 16) + 2) >> 2
                        dst[dy * rowLength + i] = UInt8(clamping: v)
                    }
                }
            }
        }
    case .float32:
        input.withUnsafeBufferPointer(as: Float.self) { src in
            out.withUnsafeMutableBufferPointer(as: Float.self) { dst in
                func horizontal(_ sy: Int) -> [Float] {
                    var row = [Float](repeating: 0, count: rowLength)
                    for dx in 0..<width {
                        let p0 = (sy * w + xs.first[dx]) * c, p1 = (sy * w + xs.second[dx]) * c
                        for ch in 0..<c {
                            row[dx * c + ch] = src[p0 + ch] * xs.weight0[dx] + src[p1 + ch] * xs.weight1[dx]
                        }
                    }
                    return row
                }
                for dy in 0..<height {
                    let r0 = horizontal(ys.first[dy]), r1 = horizontal(ys.second[dy])
                    let b0 = ys.weight0[dy], b1 = ys.weight1[dy]
                    for i in 0..<rowLength { dst[dy * rowLength + i] = r0[i] * b0 + r1[i] * b1 }
                }
            }
        }
    default:
        throw KilnDataError.invalidArgument("Resize takes uint8 or float32 images, not \(input.dtype)")
    }
    return out
}
