// cuDNN 9's legacy ("v7-style") API: descriptors and one call per op. Declared by hand from
// cudnn_graph.h, cudnn_ops.h and cudnn_cnn.h; enum values are written out where they are used.
import Foundation

/// cuDNN: convolution, batch norm, pooling, activation, softmax and tensor addition.
struct CUDNNAPI: @unchecked Sendable {
    let library: DynamicLibrary
    let getVersion: @convention(c) () -> Int
    let getErrorString: @convention(c) (Int32) -> UnsafePointer<CChar>?
    let create: @convention(c) (PtrOut) -> Int32
    let setStream: @convention(c) (Ptr, Ptr) -> Int32
    let createTensorDescriptor: @convention(c) (PtrOut) -> Int32
    let setTensor4dDescriptor: @convention(c) (Ptr, Int32, Int32, Int32, Int32, Int32, Int32) -> Int32
    let setTensorNdDescriptor: @convention(c) (Ptr, Int32, Int32, UnsafePointer<Int32>, UnsafePointer<Int32>) -> Int32
    let destroyTensorDescriptor: @convention(c) (Ptr) -> Int32
    let createFilterDescriptor: @convention(c) (PtrOut) -> Int32
    let setFilter4dDescriptor: @convention(c) (Ptr, Int32, Int32, Int32, Int32, Int32, Int32) -> Int32
    let destroyFilterDescriptor: @convention(c) (Ptr) -> Int32
    let createConvolutionDescriptor: @convention(c) (PtrOut) -> Int32
    let setConvolution2dDescriptor: @convention(c) (Ptr, Int32, Int32, Int32, Int32, Int32, Int32, Int32, Int32) -> Int32
    let setConvolutionGroupCount: @convention(c) (Ptr, Int32) -> Int32
    let setConvolutionMathType: @convention(c) (Ptr, Int32) -> Int32
    let destroyConvolutionDescriptor: @convention(c) (Ptr) -> Int32
    let findConvolutionForwardAlgorithm: @convention(c) (Ptr, Ptr, Ptr, Ptr, Ptr, Int32, IntOut, UnsafeMutableRawPointer) -> Int32
    let getConvolutionForwardAlgorithm: @convention(c) (Ptr, Ptr, Ptr, Ptr, Ptr, Int32, IntOut, UnsafeMutableRawPointer) -> Int32
    let getConvolutionForwardWorkspaceSize: @convention(c) (Ptr, Ptr, Ptr, Ptr, Ptr, Int32, UnsafeMutablePointer<Int>) -> Int32
    let convolutionForward: @convention(c) (Ptr, ConstPtr, Ptr, ConstPtr, Ptr, ConstPtr, Ptr, Int32, Ptr, Int, ConstPtr, Ptr, Ptr) -> Int32
    let convolutionBiasActivationForward: @convention(c) (Ptr, ConstPtr, Ptr, ConstPtr, Ptr, ConstPtr, Ptr, Int32, Ptr, Int,
                                                          ConstPtr, Ptr, ConstPtr, Ptr, ConstPtr, Ptr, Ptr, Ptr) -> Int32
    let addTensor: @convention(c) (Ptr, ConstPtr, Ptr, ConstPtr, ConstPtr, Ptr, Ptr) -> Int32
    let batchNormalizationForwardInference: @convention(c) (Ptr, Int32, ConstPtr, ConstPtr, Ptr, ConstPtr, Ptr, Ptr, Ptr,
                                                            ConstPtr, ConstPtr, ConstPtr, ConstPtr, Double) -> Int32
    let createActivationDescriptor: @convention(c) (PtrOut) -> Int32
    let setActivationDescriptor: @convention(c) (Ptr, Int32, Int32, Double) -> Int32
    let destroyActivationDescriptor: @convention(c) (Ptr) -> Int32
    let activationForward: @convention(c) (Ptr, Ptr, ConstPtr, Ptr, ConstPtr, ConstPtr, Ptr, Ptr) -> Int32
    let createPoolingDescriptor: @convention(c) (PtrOut) -> Int32
    let setPooling2dDescriptor: @convention(c) (Ptr, Int32, Int32, Int32, Int32, Int32, Int32, Int32, Int32) -> Int32
    let destroyPoolingDescriptor: @convention(c) (Ptr) -> Int32
    let poolingForward: @convention(c) (Ptr, Ptr, ConstPtr, Ptr, ConstPtr, ConstPtr, Ptr, Ptr) -> Int32
    let softmaxForward: @convention(c) (Ptr, Int32, Int32, ConstPtr, Ptr, ConstPtr, ConstPtr, Ptr, Ptr) -> Int32

    init(_ l: DynamicLibrary) throws {
        library = l
        getVersion = try l.function("cudnnGetVersion", as: type(of: getVersion))
        getErrorString = try l.function("cudnnGetErrorString", as: type(of: getErrorString))
        create = try l.function("cudnnCreate", as: type(of: create))
        setStream = try l.function("cudnnSetStream", as: type(of: setStream))
        createTensorDescriptor = try l.function("cudnnCreateTensorDescriptor", as: type(of: createTensorDescriptor))
        setTensor4dDescriptor = try l.function("cudnnSetTensor4dDescriptor", as: type(of: setTensor4dDescriptor))
        setTensorNdDescriptor = try l.function("cudnnSetTensorNdDescriptor", as: type(of: setTensorNdDescriptor))
        destroyTensorDescriptor = try l.function("cudnnDestroyTensorDescriptor", as: type(of: destroyTensorDescriptor))
        createFilterDescriptor = try l.function("cudnnCreateFilterDescriptor", as: type(of: createFilterDescriptor))
        setFilter4dDescriptor = try l.function("cudnnSetFilter4dDescriptor", as: type(of: setFilter4dDescriptor))
        destroyFilterDescriptor = try l.function("cudnnDestroyFilterDescriptor", as: type(of: destroyFilterDescriptor))
        createConvolutionDescriptor = try l.function("cudnnCreateConvolutionDescriptor", as: type(of: createConvolutionDescriptor))
        setConvolution2dDescriptor = try l.function("cudnnSetConvolution2dDescriptor", as: type(of: setConvolution2dDescriptor))
        setConvolutionGroupCount = try l.function("cudnnSetConvolutionGroupCount", as: type(of: setConvolutionGroupCount))
        setConvolutionMathType = try l.function("cudnnSetConvolutionMathType", as: type(of: setConvolutionMathType))
        destroyConvolutionDescriptor = try l.function("cudnnDestroyConvolutionDescriptor", as: type(of: destroyConvolutionDescriptor))
        findConvolutionForwardAlgorithm = try l.function("cudnnFindConvolutionForwardAlgorithm", as: type(of: findConvolutionForwardAlgorithm))
        getConvolutionForwardAlgorithm = try l.function("cudnnGetConvolutionForwardAlgorithm_v7", as: type(of: getConvolutionForwardAlgorithm))
        getConvolutionForwardWorkspaceSize = try l.function("cudnnGetConvolutionForwardWorkspaceSize", as: type(of: getConvolutionForwardWorkspaceSize))
        convolutionForward = try l.function("cudnnConvolutionForward", as: type(of: convolutionForward))
        convolutionBiasActivationForward = try l.function("cudnnConvolutionBiasActivationForward", as: type(of: convolutionBiasActivationForward))
        addTensor = try l.function("cudnnAddTensor", as: type(of: addTensor))
        batchNormalizationForwardInference = try l.function("cudnnBatchNormalizationForwardInference", as: type(of: batchNormalizationForwardInference))
        createActivationDescriptor = try l.function("cudnnCreateActivationDescriptor", as: type(of: createActivationDescriptor))
        setActivationDescriptor = try l.function("cudnnSetActivationDescriptor", as: type(of: setActivationDescriptor))
        destroyActivationDescriptor = try l.function("cudnnDestroyActivationDescriptor", as: type(of: destroyActivationDescriptor))
        activationForward = try l.function("cudnnActivationForward", as: type(of: activationForward))
        createPoolingDescriptor = try l.function("cudnnCreatePoolingDescriptor", as: type(of: createPoolingDescriptor))
        setPooling2dDescriptor = try l.function("cudnnSetPooling2dDescriptor", as: type(of: setPooling2dDescriptor))
        destroyPoolingDescriptor = try l.function("cudnnDestroyPoolingDescriptor", as: type(of: destroyPoolingDescriptor))
        poolingForward = try l.function("cudnnPoolingForward", as: type(of: poolingForward))
        softmaxForward = try l.function("cudnnSoftmaxForward", as: type(of: softmaxForward))
    }

    func check(_ status: Int32, _ function: String) throws {
        guard status != 0 else { return }
        throw CUDAError.call(library: "cuDNN", function: function, status: Int(status),
                             message: getErrorString(status).map { String(cString: $0) } ?? "unknown error")
    }

    // Enum values (cudnn_graph.h, cudnn_ops.h, cudnn_cnn.h).
    static let formatNCHW: Int32 = 0, formatNHWC: Int32 = 1
    static let dataFloat: Int32 = 0, dataHalf: Int32 = 2, dataBFloat16: Int32 = 9
    static let crossCorrelation: Int32 = 1
    static let defaultMath: Int32 = 0, tensorOpMath: Int32 = 1, fmaMath: Int32 = 3
    static let notPropagateNaN: Int32 = 0
    static let activationSigmoid: Int32 = 0, activationReLU: Int32 = 1, activationTanh: Int32 = 2, activationIdentity: Int32 = 5
    static let poolingMax: Int32 = 0, poolingAverageIncludePad: Int32 = 1, poolingAverageExcludePad: Int32 = 2
    static let softmaxAccurate: Int32 = 1, softmaxModeInstance: Int32 = 0, softmaxModeChannel: Int32 = 1
    static let batchNormSpatial: Int32 = 1
    static let algoImplicitPrecompGEMM: Int32 = 1
    /// `sizeof(cudnnConvolutionFwdAlgoPerf_t)`: algo, status, time, (pad), memory, determinism, mathType, reserved[3].
    static let algoPerfSize = 48
}
