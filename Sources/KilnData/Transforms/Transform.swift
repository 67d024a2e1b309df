import KilnCore

/// A function from one array to another, applied to each example's data (Gluon's
/// `gluon.data.vision.transforms`).
///
/// Image transforms follow Gluon's layouts: geometric ones (crop, flip, resize) take height x width x
/// channels (HWC) images of any dtype, `ToTensor` turns HWC into channels-first float32, and
/// `Normalize` takes channels-first (CHW) float32. Random transforms draw from the sample's
/// generator only, so results depend on the loader's seed, the epoch and the sample's index alone.
public protocol Transform: Sendable {
    /// The transformed array.
    func apply(_ input: NDArray, using generator: inout SampleGenerator) throws -> NDArray
}

extension Transform {
    /// The transformed array, with the generator of sample 0 in epoch 0 of seed 0.
    public func callAsFunction(_ input: NDArray) throws -> NDArray {
        var generator = SampleGenerator(seed: 0, epoch: 0, index: 0)
        return try apply(input, using: &generator)
    }

    /// The transformed array.
    public func callAsFunction(_ input: NDArray, using generator: inout SampleGenerator) throws -> NDArray {
        try apply(input, using: &generator)
    }
}

/// Transforms applied one after the other (Gluon's `Compose`).
public struct Compose: Transform {
    public let transforms: [any Transform]

    public init(_ transforms: [any Transform]) { self.transforms = transforms }

    public func apply(_ input: NDArray, using generator: inout SampleGenerator) throws -> NDArray {
        var x = input
        for t in transforms { x = try t.apply(x, using: &generator) }
        return x
    }
}

/// A transform made from a function, for one-off steps (a cast, a reshape).
public struct TransformFunction: Transform {
    private let body: @Sendable (NDArray, inout SampleGenerator) throws -> NDArray

    public init(_ body: @escaping @Sendable (NDArray, inout SampleGenerator) throws -> NDArray) { self.body = body }

    public func apply(_ input: NDArray, using generator: inout SampleGenerator) throws -> NDArray {
        try body(input, &generator)
    }
}

/// The height, width and channels of an HWC image, or an error naming `transform`.
func imageDimensions(_ x: NDArray, transform: String) throws -> (height: Int, width: Int, channels: Int) {
    guard x.shape.rank == 3 else {
        throw KilnDataError.invalidArgument(
            "\(transform) takes a height x width x channels image, not an array of shape \(x.shape)")
    }
    return (x.shape[0], x.shape[1], x.shape[2])
}
