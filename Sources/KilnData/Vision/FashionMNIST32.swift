import KilnCore

/// A gray image made into a 32 x 32 RGB one, the shape of CIFAR-10's images: 2 pixels of 0 on each
/// side of a 28 x 28 image, then the one channel copied into three.
///
/// Takes an HWC image of any dtype with one channel, (H, W, 1), or without the channel axis, (H, W),
/// and gives (H + 2 * padding, W + 2 * padding, 3) of the same dtype, still HWC, so that ``ToTensor``
/// and the geometric transforms apply after it. Padding 2 turns MNIST's 28 x 28 into 32 x 32.
public struct PadToRGB: Transform {
    /// Pixels of 0 added on each side.
    public let padding: Int

    /// - Parameter padding: pixels of 0 on each side; 2 turns 28 x 28 into 32 x 32.
    public init(padding: Int = 2) { self.padding = padding }

    public func apply(_ input: NDArray, using generator: inout SampleGenerator) throws -> NDArray {
        let dims = input.shape.dims
        guard padding >= 0, dims.count == 2 || (dims.count == 3 && dims[2] == 1) else {
            throw KilnDataError.invalidArgument(
                "PadToRGB takes a gray (H, W, 1) or (H, W) image and padding of 0 or more, not an array of shape \(input.shape) with padding \(padding)")
        }
        let (h, w) = (dims[0], dims[1])
        let (outH, outW) = (h + 2 * padding, w + 2 * padding)
        var out = NDArray(zeros: [outH, outW, 3], dtype: input.dtype)
        func copy<T>(_ type: T.Type) {
            input.withUnsafeBufferPointer(as: T.self) { src in
                out.withUnsafeMutableBufferPointer(as: T.self) { dst in
                    for y in 0..<h {
                        for x in 0..<w {
                            let value = src[y * w + x]
                            let base = ((y + padding) * outW + (x + padding)) * 3
                            dst[base] = value
                            dst[base + 1] = value
                            dst[base + 2] = value
                        }
                    }
                }
            }
        }
        switch input.dtype {
        case .uint8: copy(UInt8.self)
        case .float32: copy(Float.self)
        default:
            // Other dtypes go through float32 and back; padding and copying change no value.
            return try apply(input.converted(to: .float32), using: &generator).converted(to: input.dtype)
        }
        return out
    }
}

/// Fashion-MNIST-32: a Fashion-MNIST (or MNIST) image as a CIFAR-10-shaped network input.
///
/// The steps: ``PadToRGB`` with padding 2 ((28, 28, 1) uint8 to (32, 32, 3)), ``ToTensor`` (to
/// (3, 32, 32) float32 in [0, 1]) and ``Normalize`` with ``mean`` and ``std`` for every channel, the
/// same order as the CIFAR-10 pipeline (`ToTensor`, then `Normalize`).
///
/// The mean and std are Fashion-MNIST's usual ones, over the 60,000 training images as they come
/// (28 x 28, divided by 255): 0.2860 and 0.3530. The padding is normalized with them too, so a padded
/// pixel reads (0 - mean) / std. (Over the padded 32 x 32 images they would be 0.2190 and 0.3318; the
/// zoo's trained weights were made with the unpadded pair, so that is the one to keep.)
public struct FashionMNIST32: Transform {
    /// Fashion-MNIST's training mean (28 x 28 images), in [0, 1] units.
    public static let mean: Float = 0.2860
    /// Fashion-MNIST's training standard deviation (28 x 28 images), in [0, 1] units.
    public static let std: Float = 0.3530

    private let steps: Compose

    /// The transform; `normalize: false` stops after ``ToTensor`` (values in [0, 1]).
    public init(normalize: Bool = true) {
        var steps: [any Transform] = [PadToRGB(padding: 2), ToTensor()]
        if normalize { steps.append(Normalize(mean: Self.mean, std: Self.std)) }
        self.steps = Compose(steps)
    }

    public func apply(_ input: NDArray, using generator: inout SampleGenerator) throws -> NDArray {
        let dims = input.shape.dims
        guard dims.count >= 2, dims[0] == 28, dims[1] == 28 else {
            throw KilnDataError.invalidArgument(
                "FashionMNIST32 takes a 28 x 28 gray image, (28, 28, 1) or (28, 28), not an array of shape \(input.shape); use PadToRGB for other sizes")
        }
        return try steps.apply(input, using: &generator)
    }
}
