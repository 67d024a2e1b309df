import KilnCore

/// HWC image(s) in [0, 255] to channels-first float32 in [0, 1] (Gluon's `ToTensor`).
///
/// Takes (H, W, C) or a batch (N, H, W, C) of any dtype and divides by 255, as MXNet's `to_tensor`
/// does for every input type.
public struct ToTensor: Transform {
    public init() {}

    public func apply(_ input: NDArray, using generator: inout SampleGenerator) throws -> NDArray {
        let dims = input.shape.dims
        guard dims.count == 3 || dims.count == 4 else {
            throw KilnDataError.invalidArgument(
                "ToTensor takes an (H, W, C) image or an (N, H, W, C) batch, not an array of shape \(input.shape)")
        }
        let (n, h, w, c) = dims.count == 3 ? (1, dims[0], dims[1], dims[2]) : (dims[0], dims[1], dims[2], dims[3])
        let outShape = dims.count == 3 ? Shape([c, h, w]) : Shape([n, c, h, w])
        var out = NDArray(zeros: outShape, dtype: .float32)
        let plane = h * w
        out.withUnsafeMutableBufferPointer(as: Float.self) { dst in
            func convert(_ value: (Int) -> Float) {
                for image in 0..<n {
                    for p in 0..<plane {
                        for ch in 0..<c {
                            dst[(image * c + ch) * plane + p] = value((image * plane + p) * c + ch) / 255
                        }
                    }
                }
            }
            switch input.dtype {
            case .uint8: input.withUnsafeBufferPointer(as: UInt8.self) { src in convert { Float(src[$0]) } }
            case .float32: input.withUnsafeBufferPointer(as: Float.self) { src in convert { src[$0] } }
            default: convert { Float(input.element($0)) }
            }
        }
        return out
    }
}

/// `(x - mean[c]) / std[c]` per channel of a (C, H, W) or (N, C, H, W) float32 array (Gluon's
/// `Normalize`). One value for mean or std applies to every channel.
public struct Normalize: Transform {
    public let mean: [Float]
    public let std: [Float]

    public init(mean: [Float], std: [Float]) {
        self.mean = mean
        self.std = std
    }

    /// The same mean and std for every channel.
    public init(mean: Float = 0, std: Float = 1) { self.init(mean: [mean], std: [std]) }

    public func apply(_ input: NDArray, using generator: inout SampleGenerator) throws -> NDArray {
        let dims = input.shape.dims
        guard dims.count == 3 || dims.count == 4, input.dtype == .float32 else {
            throw KilnDataError.invalidArgument(
                "Normalize takes a float32 (C, H, W) image or (N, C, H, W) batch, not \(input.dtype) of shape \(input.shape)")
        }
        let channels = dims[dims.count - 3]
        for (name, values) in [("mean", mean), ("std", std)] where values.count != 1 && values.count != channels {
            throw KilnDataError.invalidArgument(
                "Normalize's \(name) has \(values.count) values but the image has \(channels) channels; give 1 or \(channels)")
        }
        if let zero = std.firstIndex(of: 0) {
            throw KilnDataError.invalidArgument("Normalize's std is 0 for channel \(zero)")
        }
        let plane = dims[dims.count - 2] * dims[dims.count - 1]
        var out = input
        out.withUnsafeMutableBufferPointer(as: Float.self) { x in
            for start in stride(from: 0, to: x.count, by: plane) {
                let ch = (start / plane) % channels
                let m = mean.count == 1 ? mean[0] : mean[ch]
                let s = std.count == 1 ? std[0] : std[ch]
                for i in start..<(start + plane) { x[i] = (x[i] - m) / s }
            }
        }
        return out
    }
}

/// The array converted to another dtype (Gluon's `Cast`; float to integer truncates toward zero).
///
/// For labels, which `transformFirst` does not touch:
/// `dataset.transform { sample, _ in (sample.data, sample.label.converted(to: .float32)) }`.
public struct Cast: Transform {
    public let dtype: DType

    public init(to dtype: DType = .float32) { self.dtype = dtype }

    public func apply(_ input: NDArray, using generator: inout SampleGenerator) throws -> NDArray {
        input.converted(to: dtype)
    }
}
