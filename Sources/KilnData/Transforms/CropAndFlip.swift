// Crops and flips of HWC images. They only move elements, so they work on every dtype.
//
//     RandomCrop(size: 3, padding: 1) on a 4x4 image: pad to 6x6 with zeros, then cut a 3x3 window
//     at an offset drawn from the sample's generator (x first, then y):
//
//         0 0 0 0 0 0
//         0 a b c d 0        offset (x 2, y 1)  ->   b c d
//         0 e f g h 0                                f g h
//         0 i j k l 0                                j k l
//         0 m n o p 0
//         0 0 0 0 0 0
import KilnCore

/// Copies the window of `input` (HWC) at (`x0`, `y0`) of `width` x `height`, reading zeros outside
/// the image (so a window hanging over the edge is zero-padded).
func cropHWC(_ input: NDArray, x0: Int, y0: Int, width: Int, height: Int) -> NDArray {
    let (h, w, c) = (input.shape[0], input.shape[1], input.shape[2])
    let pixelBytes = c * input.dtype.byteSize
    var out = NDArray(zeros: [height, width, c], dtype: input.dtype)
    guard pixelBytes > 0 else { return out }
    // The columns of the window that fall inside the image.
    let firstX = Swift.max(0, -x0), endX = Swift.min(width, w - x0)
    guard firstX < endX else { return out }
    input.withUnsafeBytes { src in
        out.withUnsafeMutableBytes { dst in
            guard let s = src.baseAddress, let d = dst.baseAddress else { return }
            for oy in 0..<height {
                let sy = y0 + oy
                guard sy >= 0 && sy < h else { continue }
                (d + (oy * width + firstX) * pixelBytes).copyMemory(
                    from: s + (sy * w + x0 + firstX) * pixelBytes, byteCount: (endX - firstX) * pixelBytes)
            }
        }
    }
    return out
}

/// Pads an HWC image with zeros on every side, then crops a random window (gluoncv's
/// `RandomCrop(size, pad)`, the usual CIFAR augmentation).
///
/// Unlike MXNet's `random_crop`, which upsamples an image smaller than the window, this throws.
public struct RandomCrop: Transform {
    public let width: Int
    public let height: Int
    public let padding: Int

    /// A square window of `size` after `padding` zeros on each side.
    public init(size: Int, padding: Int = 0) { self.init(width: size, height: size, padding: padding) }

    public init(width: Int, height: Int, padding: Int = 0) {
        self.width = width
        self.height = height
        self.padding = padding
    }

    public func apply(_ input: NDArray, using generator: inout SampleGenerator) throws -> NDArray {
        let (h, w, _) = try imageDimensions(input, transform: "RandomCrop")
        guard width > 0, height > 0, padding >= 0 else {
            throw KilnDataError.invalidArgument(
                "RandomCrop needs a positive size and padding of at least 0, not \(width)x\(height) with padding \(padding)")
        }
        let paddedW = w + 2 * padding, paddedH = h + 2 * padding
        guard paddedW >= width, paddedH >= height else {
            throw KilnDataError.invalidArgument(
                "RandomCrop cannot cut \(width)x\(height) (width x height) from a \(w)x\(h) image padded by \(padding)")
        }
        let x0 = generator.nextInt(below: paddedW - width + 1)
        let y0 = generator.nextInt(below: paddedH - height + 1)
        return cropHWC(input, x0: x0 - padding, y0: y0 - padding, width: width, height: height)
    }
}

/// Mirrors an HWC image left to right with probability 1/2 (Gluon's `RandomFlipLeftRight`).
public struct RandomFlipLeftRight: Transform {
    public init() {}

    public func apply(_ input: NDArray, using generator: inout SampleGenerator) throws -> NDArray {
        let (h, w, c) = try imageDimensions(input, transform: "RandomFlipLeftRight")
        guard generator.nextUnitFloat() < 0.5 else { return input }
        return flipped(input, height: h, width: w, pixelBytes: c * input.dtype.byteSize, horizontally: true)
    }
}

/// Mirrors an HWC image top to bottom with probability 1/2 (Gluon's `RandomFlipTopBottom`).
public struct RandomFlipTopBottom: Transform {
    public init() {}

    public func apply(_ input: NDArray, using generator: inout SampleGenerator) throws -> NDArray {
        let (h, w, c) = try imageDimensions(input, transform: "RandomFlipTopBottom")
        guard generator.nextUnitFloat() < 0.5 else { return input }
        return flipped(input, height: h, width: w, pixelBytes: c * input.dtype.byteSize, horizontally: false)
    }
}

private func flipped(_ input: NDArray, height h: Int, width w: Int, pixelBytes: Int, horizontally: Bool) -> NDArray {
    var out = NDArray(zeros: input.shape, dtype: input.dtype)
    guard pixelBytes > 0 else { return out }
    input.withUnsafeBytes { src in
        out.withUnsafeMutableBytes { dst in
            guard let s = src.baseAddress, let d = dst.baseAddress else { return }
            for y in 0..<h {
                if horizontally {
                    for x in 0..<w {
                        (d + (y * w + x) * pixelBytes).copyMemory(from: s + (y * w + w - 1 - x) * pixelBytes,
                                                                  byteCount: pixelBytes)
                    }
                } else {
                    (d + y * w * pixelBytes).copyMemory(from: s + (h - 1 - y) * w * pixelBytes,
                                                        byteCount: w * pixelBytes)
                }
            }
        }
    }
    return out
}

/// Cuts the central window of an HWC image (Gluon's `CenterCrop`).
///
/// As in MXNet, an image smaller than the window gives the largest central window of the requested
/// aspect ratio that fits, resized (bilinear) to the requested size.
public struct CenterCrop: Transform {
    public let width: Int
    public let height: Int

    public init(size: Int) { self.init(width: size, height: size) }
    public init(width: Int, height: Int) {
        self.width = width
        self.height = height
    }

    public func apply(_ input: NDArray, using generator: inout SampleGenerator) throws -> NDArray {
        let (h, w, _) = try imageDimensions(input, transform: "CenterCrop")
        guard width > 0, height > 0 else {
            throw KilnDataError.invalidArgument("CenterCrop needs a positive size, not \(width)x\(height)")
        }
        // MXNet's scale_down: shrink the window, keeping its aspect ratio, until it fits.
        var cw = Double(width), ch = Double(height)
        if Double(h) < ch { cw = cw * Double(h) / ch; ch = Double(h) }
        if Double(w) < cw { ch = ch * Double(w) / cw; cw = Double(w) }
        let cropW = Int(cw), cropH = Int(ch)
        guard cropW > 0, cropH > 0 else {
            throw KilnDataError.invalidArgument(
                "CenterCrop cannot cut a \(width)x\(height) window's shape from a \(w)x\(h) image")
        }
        let crop = cropHWC(input, x0: (w - cropW) / 2, y0: (h - cropH) / 2, width: cropW, height: cropH)
        if cropW == width && cropH == height { return crop }
        return try resizeBilinear(crop, width: width, height: height)
    }
}
