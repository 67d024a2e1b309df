// cuDNN descriptors as objects that destroy their handle with them, and the choice of a forward
// convolution algorithm: shared by framework mode's kernels and the cuda engine's lowering.
import KilnGraph

/// A cuDNN filter descriptor (K, C, R, S) in a data type and format.
final class FilterDescriptor {
    let handle: Ptr
    let cudnn: CUDNNAPI

    init(_ cudnn: CUDNNAPI, dims: [Int], dataType: Int32 = CUDNNAPI.dataFloat, format: Int32 = CUDNNAPI.formatNCHW) throws {
        self.cudnn = cudnn
        var h: Ptr = nil
        try cudnn.check(cudnn.createFilterDescriptor(&h), "cudnnCreateFilterDescriptor")
        handle = h
        try cudnn.check(cudnn.setFilter4dDescriptor(h, dataType, format, Int32(dims[0]), Int32(dims[1]), Int32(dims[2]), Int32(dims[3])),
                        "cudnnSetFilter4dDescriptor")
    }

    deinit { _ = cudnn.destroyFilterDescriptor(handle) }
}

/// A 2-d cross-correlation with float32 accumulation, as a Convolution node's parameters give it.
final class ConvolutionDescriptor {
    let handle: Ptr
    let cudnn: CUDNNAPI

    /// A descriptor for 2-d padding, strides and dilations (MXNet's: 1 means none) and a group count.
    init(_ cudnn: CUDNNAPI, pad: [Int], stride: [Int], dilate: [Int], groups: Int, mathType: Int32) throws {
        self.cudnn = cudnn
        var h: Ptr = nil
        try cudnn.check(cudnn.createConvolutionDescriptor(&h), "cudnnCreateConvolutionDescriptor")
        handle = h
        try cudnn.check(cudnn.setConvolution2dDescriptor(h, Int32(pad[0]), Int32(pad[1]), Int32(stride[0]), Int32(stride[1]),
                                                         Int32(dilate[0]), Int32(dilate[1]), CUDNNAPI.crossCorrelation, CUDNNAPI.dataFloat),
                        "cudnnSetConvolution2dDescriptor")
        try cudnn.check(cudnn.setConvolutionGroupCount(h, Int32(groups)), "cudnnSetConvolutionGroupCount")
        try cudnn.check(cudnn.setConvolutionMathType(h, mathType), "cudnnSetConvolutionMathType")
    }

    convenience init(_ cudnn: CUDNNAPI, _ p: ConvolutionParameters, mathType: Int32) throws {
        try self.init(cudnn, pad: p.pad, stride: p.stride, dilate: p.dilate, groups: p.numGroup, mathType: mathType)
    }

    deinit { _ = cudnn.destroyConvolutionDescriptor(handle) }
}

/// Max or average pooling over a 2-d window.
final class PoolingDescriptor {
    let handle: Ptr
    let cudnn: CUDNNAPI

    /// A 2-d window with symmetric padding; `mode` is cuDNN's (max, average with or without the padding).
    init(_ cudnn: CUDNNAPI, mode: Int32, kernel: [Int], pad: [Int], stride: [Int]) throws {
        self.cudnn = cudnn
        var h: Ptr = nil
        try cudnn.check(cudnn.createPoolingDescriptor(&h), "cudnnCreatePoolingDescriptor")
        handle = h
        try cudnn.check(cudnn.setPooling2dDescriptor(h, mode, CUDNNAPI.notPropagateNaN, Int32(kernel[0]), Int32(kernel[1]),
                                                     Int32(pad[0]), Int32(pad[1]), Int32(stride[0]), Int32(stride[1])),
                        "cudnnSetPooling2dDescriptor")
    }

    convenience init(_ cudnn: CUDNNAPI, _ p: PoolingParameters, window w: PoolingParameters.Window) throws {
        let mode = p.poolType == .max ? CUDNNAPI.poolingMax
            : (p.countIncludePad ? CUDNNAPI.poolingAverageIncludePad : CUDNNAPI.poolingAverageExcludePad)
        try self.init(cudnn, mode: mode, kernel: w.kernel, pad: w.pad, stride: w.stride)
    }

    deinit { _ = cudnn.destroyPoolingDescriptor(handle) }
}

/// An activation (relu, sigmoid, tanh, identity) without NaN propagation.
final class ActivationDescriptor {
    let handle: Ptr
    let cudnn: CUDNNAPI

    init(_ cudnn: CUDNNAPI, mode: Int32) throws {
        self.cudnn = cudnn
        var h: Ptr = nil
        try cudnn.check(cudnn.createActivationDescriptor(&h), "cudnnCreateActivationDescriptor")
        handle = h
        try cudnn.check(cudnn.setActivationDescriptor(h, mode, CUDNNAPI.notPropagateNaN, 0), "cudnnSetActivationDescriptor")
    }

    deinit { _ = cudnn.destroyActivationDescriptor(handle) }
}

extension CUDADevice {
    /// Forward algorithms for one convolution that cuDNN can run, best first: cuDNN's heuristic
    /// ranking, or with `measure` the ranking it measures by running each (cudnnFind).
    func forwardAlgorithms(x: TensorDescriptor, w: FilterDescriptor, conv: ConvolutionDescriptor, y: TensorDescriptor,
                           measure: Bool = false) throws -> [Int32] {
        let capacity = 8
        let perf = UnsafeMutableRawPointer.allocate(byteCount: CUDNNAPI.algoPerfSize * capacity, alignment: 8)
        defer { perf.deallocate() }
        var returned: Int32 = 0
        if measure {
            try cudnn.check(cudnn.findConvolutionForwardAlgorithm(cudnnHandle, x.handle, w.handle, conv.handle, y.handle, Int32(capacity), &returned, perf),
                            "cudnnFindConvolutionForwardAlgorithm")
        } else {
            try cudnn.check(cudnn.getConvolutionForwardAlgorithm(cudnnHandle, x.handle, w.handle, conv.handle, y.handle, Int32(capacity), &returned, perf),
                            "cudnnGetConvolutionForwardAlgorithm_v7")
        }
        // Each entry: algo (int32), status (int32), time, memory, ...; only those with status 0 run.
        return (0..<Int(returned)).compactMap { i in
            let base = CUDNNAPI.algoPerfSize * i
            return perf.load(fromByteOffset: base + 4, as: Int32.self) == 0 ? perf.load(fromByteOffset: base, as: Int32.self) : nil
        }
    }

    /// The workspace bytes `algorithm` needs, or nil when cuDNN cannot say (it cannot run it).
    func forwardWorkspace(x: TensorDescriptor, w: FilterDescriptor, conv: ConvolutionDescriptor, y: TensorDescriptor, algorithm: Int32) -> Int? {
        var size = 0
        return cudnn.getConvolutionForwardWorkspaceSize(cudnnHandle, x.handle, w.handle, conv.handle, y.handle, algorithm, &size) == 0 ? size : nil
    }

    /// The best-ranked algorithm that needs at most 256 MiB of workspace, with that workspace's size.
    func forwardAlgorithm(x: TensorDescriptor, w: FilterDescriptor, conv: ConvolutionDescriptor, y: TensorDescriptor) throws -> (algorithm: Int32, workspace: Int)? {
        for algo in try forwardAlgorithms(x: x, w: w, conv: conv, y: y) {
            if let size = forwardWorkspace(x: x, w: w, conv: conv, y: y, algorithm: algo), size <= 256 << 20 { return (algo, size) }
        }
        return nil
    }
}
