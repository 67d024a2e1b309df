// Framework-mode kernels on cuDNN: one cuDNN call per op, plain NCHW float32 between ops.
//
//   Convolution  x ─> cudnnConvolutionForward ─> y ─> cudnnAddTensor(bias)
//   BatchNorm    x ─> cudnnBatchNormalizationForwardInference(gamma, beta, mean, var) ─> y
//   Pooling, Activation (relu, sigmoid, tanh), softmax, SoftmaxOutput: one call each
import KilnCore
import KilnGraph
import KilnRuntime

/// A cuDNN tensor descriptor of up to four dimensions (missing trailing ones are 1), packed NCHW.
final class TensorDescriptor {
    let handle: Ptr
    let cudnn: CUDNNAPI

    init(_ cudnn: CUDNNAPI, dims: [Int], dataType: Int32 = CUDNNAPI.dataFloat, format: Int32 = CUDNNAPI.formatNCHW) throws {
        self.cudnn = cudnn
        var h: Ptr = nil
        try cudnn.check(cudnn.createTensorDescriptor(&h), "cudnnCreateTensorDescriptor")
        handle = h
        let d = dims + [Int](repeating: 1, count: max(0, 4 - dims.count))
        try cudnn.check(cudnn.setTensor4dDescriptor(h, format, dataType, Int32(d[0]), Int32(d[1]), Int32(d[2]), Int32(d[3])),
                        "cudnnSetTensor4dDescriptor")
    }

    deinit { _ = cudnn.destroyTensorDescriptor(handle) }
}

/// Scalars cuDNN reads through pointers (alpha and beta of every call); float32 for float32 data.
private let one: [Float] = [1]
private let zero: [Float] = [0]

enum CUDNNKernels {
    static let entries: [String: GPUKernelEntry] = [
        "Convolution": GPUKernelEntry(check: ConvolutionKernel.check, make: { try ConvolutionKernel($0, $1) }),
        "BatchNorm": GPUKernelEntry(check: BatchNormKernel.check, make: { try BatchNormKernel($0, $1) }),
        "Activation": GPUKernelEntry(check: ActivationKernel.check, make: { try ActivationKernel.make($0, $1) }),
        "Pooling": GPUKernelEntry(check: PoolingKernel.check, make: { try PoolingKernel($0, $1) }),
        "softmax": GPUKernelEntry(check: { SoftmaxKernel.check($0, output: false) }, make: { try SoftmaxKernel($0, $1, output: false) }),
        "SoftmaxOutput": GPUKernelEntry(check: { SoftmaxKernel.check($0, output: true) }, make: { try SoftmaxKernel($0, $1, output: true) }),
    ]
}

final class ConvolutionKernel: GPUKernel {
    let device: CUDADevice
    let x, y: TensorDescriptor
    let bias: TensorDescriptor?
    let filter: FilterDescriptor
    let convolution: ConvolutionDescriptor
    let algorithm: Int32
    let workspace: DeviceBuffer?

    static func check(_ s: KernelSignature) -> String? {
        if let r = GPUKernels.float32Only(s) { return r }
        guard let p = try? ConvolutionParameters(s.attributes) else { return "attributes that do not parse" }
        guard p.kernel.count == 2 else { return "a \(p.kernel.count)-d kernel; GPU framework kernels take 2-d convolutions" }
        guard p.layout == .nchw else { return "layout \(p.layout.rawValue); GPU framework kernels take NCHW" }
        return nil
    }

    init(_ s: KernelSignature, _ device: CUDADevice) throws {
        if let r = Self.check(s) { throw CUDAError.unsupported(node: s.node.name, op: s.node.op, reason: r) }
        let p = try ConvolutionParameters(s.attributes)
        let cudnn = device.cudnn
        self.device = device
        x = try TensorDescriptor(cudnn, dims: s.inputShapes[0].dims)
        y = try TensorDescriptor(cudnn, dims: s.outputShapes[0].dims)
        bias = p.noBias ? nil : try TensorDescriptor(cudnn, dims: [1, p.numFilter, 1, 1])
        filter = try FilterDescriptor(cudnn, dims: s.inputShapes[1].dims)
        // Framework mode keeps float32 arithmetic: FMA math, because cuDNN's default math allows TF32
        // tensor cores from Ampere on (about 1e-3 relative error), and results must match the CPU.
        convolution = try ConvolutionDescriptor(cudnn, p, mathType: CUDNNAPI.fmaMath)
        // cuDNN's best-ranked algorithm within 256 MiB of workspace; else the implicit precomputed GEMM.
        let chosen = try device.forwardAlgorithm(x: x, w: filter, conv: convolution, y: y)
        algorithm = chosen?.algorithm ?? CUDNNAPI.algoImplicitPrecompGEMM
        var size = chosen?.workspace ?? 0
        if chosen == nil {
            try cudnn.check(cudnn.getConvolutionForwardWorkspaceSize(device.cudnnHandle, x.handle, filter.handle, convolution.handle, y.handle,
                                                                     algorithm, &size), "cudnnGetConvolutionForwardWorkspaceSize")
        }
        workspace = size > 0 ? try device.pool.allocate(size) : nil
    }

    func forward(_ inputs: [UnsafeMutableRawPointer], _ outputs: [UnsafeMutableRawPointer]) throws {
        let cudnn = device.cudnn
        try cudnn.check(cudnn.convolutionForward(device.cudnnHandle, one, x.handle, inputs[0], filter.handle, inputs[1], convolution.handle, algorithm,
                                                 workspace?.pointer, workspace?.byteCount ?? 0, zero, y.handle, outputs[0]),
                        "cudnnConvolutionForward")
        if let bias {
            try cudnn.check(cudnn.addTensor(device.cudnnHandle, one, bias.handle, inputs[2], one, y.handle, outputs[0]), "cudnnAddTensor")
        }
    }
}

final class BatchNormKernel: GPUKernel {
    let device: CUDADevice
    let x, stats: TensorDescriptor
    let eps: Double
    /// Ones in place of gamma with `fix_gamma`.
    let ones: DeviceBuffer?

    static func check(_ s: KernelSignature) -> String? {
        if let r = GPUKernels.float32Only(s) { return r }
        guard let p = try? BatchNormParameters(s.attributes) else { return "attributes that do not parse" }
        guard p.split(s.inputShapes[0]) != nil else { return "axis \(p.axis) outside the data" }
        // cuDNN's CUDNN_BN_MIN_EPSILON.
        guard p.eps >= 1e-5 else { return "eps \(p.eps) below cuDNN's minimum 1e-5" }
        guard !p.outputMeanVar else { return "output_mean_var=True" }
        return nil
    }

    init(_ s: KernelSignature, _ device: CUDADevice) throws {
        if let r = Self.check(s) { throw CUDAError.unsupported(node: s.node.name, op: s.node.op, reason: r) }
        let p = try BatchNormParameters(s.attributes)
        guard let (outer, channels, inner) = p.split(s.inputShapes[0]) else {
            throw CUDAError.unsupported(node: s.node.name, op: s.node.op, reason: "axis \(p.axis) outside the data")
        }
        self.device = device
        x = try TensorDescriptor(device.cudnn, dims: [outer, channels, inner, 1])
        stats = try TensorDescriptor(device.cudnn, dims: [1, channels, 1, 1])
        eps = p.eps
        ones = p.fixGamma ? try device.upload(NDArray(shape: [channels], values: [Float](repeating: 1, count: channels))) : nil
    }

    func forward(_ inputs: [UnsafeMutableRawPointer], _ outputs: [UnsafeMutableRawPointer]) throws {
        let cudnn = device.cudnn
        try cudnn.check(cudnn.batchNormalizationForwardInference(
            device.cudnnHandle, CUDNNAPI.batchNormSpatial, one, zero, x.handle, inputs[0], x.handle, outputs[0], stats.handle,
            ones?.pointer ?? inputs[1], inputs[2], inputs[3], inputs[4], eps), "cudnnBatchNormalizationForwardInference")
    }
}

/// `Activation`: cuDNN's activation where it has the function, else a generated kernel.
enum ActivationKernel {
    /// cuDNN's mode for the function, nil for those it lacks (softrelu, softsign).
    static func cudnnMode(_ kind: ActivationKind) -> Int32? {
        switch kind {
        case .relu: return CUDNNAPI.activationReLU
        case .sigmoid: return CUDNNAPI.activationSigmoid
        case .tanh: return CUDNNAPI.activationTanh
        case .softReLU, .softSign: return nil
        }
    }

    static func check(_ s: KernelSignature) -> String? {
        if let r = GPUKernels.float32Only(s) { return r }
        return (try? ActivationParameters(s.attributes)) == nil ? "attributes that do not parse" : nil
    }

    static func make(_ s: KernelSignature, _ device: CUDADevice) throws -> any GPUKernel {
        if let r = check(s) { throw CUDAError.unsupported(node: s.node.name, op: s.node.op, reason: r) }
        let kind = try ActivationParameters(s.attributes).kind
        if let mode = cudnnMode(kind) { return try CUDNNActivation(s, device, mode: mode) }
        return try ElementwiseKernels.activation(kind, s, device)
    }
}

final class CUDNNActivation: GPUKernel {
    let device: CUDADevice
    let x: TensorDescriptor
    let activation: ActivationDescriptor

    init(_ s: KernelSignature, _ device: CUDADevice, mode: Int32) throws {
        self.device = device
        x = try TensorDescriptor(device.cudnn, dims: [s.inputShapes[0].elementCount])
        activation = try ActivationDescriptor(device.cudnn, mode: mode)
    }

    func forward(_ inputs: [UnsafeMutableRawPointer], _ outputs: [UnsafeMutableRawPointer]) throws {
        try device.cudnn.check(device.cudnn.activationForward(device.cudnnHandle, activation.handle, one, x.handle, inputs[0], zero, x.handle, outputs[0]),
                               "cudnnActivationForward")
    }
}

final class PoolingKernel: GPUKernel {
    let device: CUDADevice
    let x, y: TensorDescriptor
    let pooling: PoolingDescriptor

    static func check(_ s: KernelSignature) -> String? {
        if let r = GPUKernels.float32Only(s, visibleOutputs: 1) { return r }
        guard let p = try? PoolingParameters(s.attributes) else { return "attributes that do not parse" }
        let data = s.inputShapes[0]
        guard data.rank == 4, p.effectiveLayout(rank: 4) == .nchw else { return "data of rank \(data.rank) or a layout other than NCHW" }
        guard p.poolType == .max || p.poolType == .avg else { return "pool_type \(p.poolType.rawValue)" }
        guard case let .success(w) = p.window(input: [data[2], data[3]]) else { return "a window that does not fit" }
        // cuDNN floors the output size; other conventions only when they give the same size.
        for i in 0..<2 where 1 + (data[2 + i] + 2 * w.pad[i] - w.kernel[i]) / w.stride[i] != w.output[i] {
            return "pooling_convention=\(p.convention.rawValue) giving an output size cuDNN's floor rounding does not"
        }
        return nil
    }

    init(_ s: KernelSignature, _ device: CUDADevice) throws {
        if let r = Self.check(s) { throw CUDAError.unsupported(node: s.node.name, op: s.node.op, reason: r) }
        let p = try PoolingParameters(s.attributes)
        let data = s.inputShapes[0]
        guard case let .success(w) = p.window(input: [data[2], data[3]]) else {
            throw CUDAError.unsupported(node: s.node.name, op: s.node.op, reason: "a window that does not fit")
        }
        self.device = device
        x = try TensorDescriptor(device.cudnn, dims: data.dims)
        y = try TensorDescriptor(device.cudnn, dims: s.outputShapes[0].dims)
        pooling = try PoolingDescriptor(device.cudnn, p, window: w)
    }

    func forward(_ inputs: [UnsafeMutableRawPointer], _ outputs: [UnsafeMutableRawPointer]) throws {
        try device.cudnn.check(device.cudnn.poolingForward(device.cudnnHandle, pooling.handle, one, x.handle, inputs[0], zero, y.handle, outputs[0]),
                               "cudnnPoolingForward")
    }
}

/// `softmax` (temperature 1) and `SoftmaxOutput`'s forward, as cuDNN's channel softmax over a
/// (outer, axis, inner) view.
final class SoftmaxKernel: GPUKernel {
    let device: CUDADevice
    let x: TensorDescriptor

    /// The (outer, axis, inner) view, or the reason there is none.
    /// `output`: the node is a SoftmaxOutput (its table entry says so), whose axis `multi_output` decides.
    static func view(_ s: KernelSignature, output: Bool) -> Result<[Int], CUDAError> {
        let d = s.inputShapes[0].dims
        let fail = { (r: String) in Result<[Int], CUDAError>.failure(.unsupported(node: s.node.name, op: s.node.op, reason: r)) }
        guard !d.isEmpty else { return fail("a scalar input") }
        var axis: Int
        if output {
            let multi = (try? SoftmaxOutputParameters(s.attributes))?.multiOutput ?? false
            axis = multi ? 1 : d.count - 1
        } else {
            guard let p = try? SoftmaxParameters(s.attributes) else { return fail("attributes that do not parse") }
            if let t = p.temperature, t != 1 { return fail("temperature \(t)") }
            if p.useLength { return fail("use_length=True") }
            axis = p.axis < 0 ? p.axis + d.count : p.axis
        }
        guard axis >= 0 && axis < d.count else { return fail("axis outside the data") }
        return .success([d[..<axis].reduce(1, *), d[axis], d[(axis + 1)...].reduce(1, *), 1])
    }

    static func check(_ s: KernelSignature, output: Bool) -> String? {
        if let r = GPUKernels.float32Only(s) { return r }
        if case let .failure(.unsupported(_, _, reason)) = view(s, output: output) { return reason }
        return nil
    }

    init(_ s: KernelSignature, _ device: CUDADevice, output: Bool) throws {
        self.device = device
        x = try TensorDescriptor(device.cudnn, dims: try Self.view(s, output: output).get())
    }

    func forward(_ inputs: [UnsafeMutableRawPointer], _ outputs: [UnsafeMutableRawPointer]) throws {
        try device.cudnn.check(device.cudnn.softmaxForward(device.cudnnHandle, CUDNNAPI.softmaxAccurate, CUDNNAPI.softmaxModeChannel,
                                                           one, x.handle, inputs[0], zero, x.handle, outputs[0]), "cudnnSoftmaxForward")
    }
}
