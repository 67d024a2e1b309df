// The C functions Kiln calls, declared by hand from the CUDA 13 and cuDNN 9 headers (none are needed
// to build Kiln) and bound with dlsym. Handles and device pointers are opaque pointers here;
// `CUdeviceptr` is 64 bits, as on every 64-bit CUDA platform.
//
//   cudaMalloc(&p, n)  ->  runtime.malloc(&p, n)       status 0 is success in every library
import Foundation

typealias Ptr = UnsafeMutableRawPointer?
typealias ConstPtr = UnsafeRawPointer?
typealias PtrOut = UnsafeMutablePointer<UnsafeMutableRawPointer?>
typealias IntOut = UnsafeMutablePointer<Int32>

/// The driver API (libcuda): devices, versions, modules and kernel launches.
struct DriverAPI: @unchecked Sendable {
    let library: DynamicLibrary
    let initialize: @convention(c) (UInt32) -> Int32
    let driverGetVersion: @convention(c) (IntOut) -> Int32
    let deviceGetCount: @convention(c) (IntOut) -> Int32
    let deviceGet: @convention(c) (IntOut, Int32) -> Int32
    let deviceGetName: @convention(c) (UnsafeMutablePointer<CChar>, Int32, Int32) -> Int32
    let deviceTotalMem: @convention(c) (UnsafeMutablePointer<Int>, Int32) -> Int32
    let deviceGetAttribute: @convention(c) (IntOut, Int32, Int32) -> Int32
    let getErrorString: @convention(c) (Int32, UnsafeMutablePointer<UnsafePointer<CChar>?>) -> Int32
    let moduleLoadData: @convention(c) (PtrOut, UnsafeRawPointer) -> Int32
    let moduleGetFunction: @convention(c) (PtrOut, Ptr, UnsafePointer<CChar>) -> Int32
    let launchKernel: @convention(c) (Ptr, UInt32, UInt32, UInt32, UInt32, UInt32, UInt32, UInt32, Ptr,
                                      UnsafeMutablePointer<UnsafeMutableRawPointer?>?, UnsafeMutablePointer<UnsafeMutableRawPointer?>?) -> Int32

    init(_ l: DynamicLibrary) throws {
        library = l
        initialize = try l.function("cuInit", as: type(of: initialize))
        driverGetVersion = try l.function("cuDriverGetVersion", as: type(of: driverGetVersion))
        deviceGetCount = try l.function("cuDeviceGetCount", as: type(of: deviceGetCount))
        deviceGet = try l.function("cuDeviceGet", as: type(of: deviceGet))
        deviceGetName = try l.function("cuDeviceGetName", as: type(of: deviceGetName))
        deviceTotalMem = try l.function("cuDeviceTotalMem_v2", as: type(of: deviceTotalMem))
        deviceGetAttribute = try l.function("cuDeviceGetAttribute", as: type(of: deviceGetAttribute))
        getErrorString = try l.function("cuGetErrorString", as: type(of: getErrorString))
        moduleLoadData = try l.function("cuModuleLoadData", as: type(of: moduleLoadData))
        moduleGetFunction = try l.function("cuModuleGetFunction", as: type(of: moduleGetFunction))
        launchKernel = try l.function("cuLaunchKernel", as: type(of: launchKernel))
    }

    /// Throws unless `status` is CUDA_SUCCESS.
    func check(_ status: Int32, _ function: String) throws {
        guard status != 0 else { return }
        var text: UnsafePointer<CChar>?
        _ = getErrorString(status, &text)
        throw CUDAError.call(library: "CUDA driver", function: function, status: Int(status),
                             message: text.map { String(cString: $0) } ?? "unknown error")
    }

    /// `CUdevice_attribute` values used (cuda.h).
    enum Attribute: Int32 {
        case multiprocessorCount = 16
        case computeCapabilityMajor = 75
        case computeCapabilityMinor = 76
    }
}

/// The runtime API (libcudart): memory, copies, streams, events and CUDA graphs.
struct RuntimeAPI: @unchecked Sendable {
    let library: DynamicLibrary
    let runtimeGetVersion: @convention(c) (IntOut) -> Int32
    let setDevice: @convention(c) (Int32) -> Int32
    let malloc: @convention(c) (PtrOut, Int) -> Int32
    let free: @convention(c) (Ptr) -> Int32
    let mallocHost: @convention(c) (PtrOut, Int) -> Int32
    let freeHost: @convention(c) (Ptr) -> Int32
    let memcpy: @convention(c) (Ptr, ConstPtr, Int, Int32) -> Int32
    let memcpyAsync: @convention(c) (Ptr, ConstPtr, Int, Int32, Ptr) -> Int32
    let memsetAsync: @convention(c) (Ptr, Int32, Int, Ptr) -> Int32
    let memGetInfo: @convention(c) (UnsafeMutablePointer<Int>, UnsafeMutablePointer<Int>) -> Int32
    let streamCreateWithFlags: @convention(c) (PtrOut, UInt32) -> Int32
    let streamSynchronize: @convention(c) (Ptr) -> Int32
    let streamDestroy: @convention(c) (Ptr) -> Int32
    let deviceSynchronize: @convention(c) () -> Int32
    let getErrorString: @convention(c) (Int32) -> UnsafePointer<CChar>?
    let eventCreate: @convention(c) (PtrOut) -> Int32
    let eventRecord: @convention(c) (Ptr, Ptr) -> Int32
    let eventSynchronize: @convention(c) (Ptr) -> Int32
    let eventElapsedTime: @convention(c) (UnsafeMutablePointer<Float>, Ptr, Ptr) -> Int32
    let eventDestroy: @convention(c) (Ptr) -> Int32
    let streamBeginCapture: @convention(c) (Ptr, Int32) -> Int32
    let streamEndCapture: @convention(c) (Ptr, PtrOut) -> Int32
    let graphInstantiate: @convention(c) (PtrOut, Ptr, UInt64) -> Int32
    let graphLaunch: @convention(c) (Ptr, Ptr) -> Int32
    let graphDestroy: @convention(c) (Ptr) -> Int32
    let graphExecDestroy: @convention(c) (Ptr) -> Int32

    init(_ l: DynamicLibrary) throws {
        library = l
        runtimeGetVersion = try l.function("cudaRuntimeGetVersion", as: type(of: runtimeGetVersion))
        setDevice = try l.function("cudaSetDevice", as: type(of: setDevice))
        malloc = try l.function("cudaMalloc", as: type(of: malloc))
        free = try l.function("cudaFree", as: type(of: free))
        mallocHost = try l.function("cudaMallocHost", as: type(of: mallocHost))
        freeHost = try l.function("cudaFreeHost", as: type(of: freeHost))
        memcpy = try l.function("cudaMemcpy", as: type(of: memcpy))
        memcpyAsync = try l.function("cudaMemcpyAsync", as: type(of: memcpyAsync))
        memsetAsync = try l.function("cudaMemsetAsync", as: type(of: memsetAsync))
        memGetInfo = try l.function("cudaMemGetInfo", as: type(of: memGetInfo))
        streamCreateWithFlags = try l.function("cudaStreamCreateWithFlags", as: type(of: streamCreateWithFlags))
        streamSynchronize = try l.function("cudaStreamSynchronize", as: type(of: streamSynchronize))
        streamDestroy = try l.function("cudaStreamDestroy", as: type(of: streamDestroy))
        deviceSynchronize = try l.function("cudaDeviceSynchronize", as: type(of: deviceSynchronize))
        getErrorString = try l.function("cudaGetErrorString", as: type(of: getErrorString))
        eventCreate = try l.function("cudaEventCreate", as: type(of: eventCreate))
        eventRecord = try l.function("cudaEventRecord", as: type(of: eventRecord))
        eventSynchronize = try l.function("cudaEventSynchronize", as: type(of: eventSynchronize))
        eventElapsedTime = try l.function("cudaEventElapsedTime", as: type(of: eventElapsedTime))
        eventDestroy = try l.function("cudaEventDestroy", as: type(of: eventDestroy))
        streamBeginCapture = try l.function("cudaStreamBeginCapture", as: type(of: streamBeginCapture))
        streamEndCapture = try l.function("cudaStreamEndCapture", as: type(of: streamEndCapture))
        graphInstantiate = try l.function("cudaGraphInstantiate", as: type(of: graphInstantiate))
        graphLaunch = try l.function("cudaGraphLaunch", as: type(of: graphLaunch))
        graphDestroy = try l.function("cudaGraphDestroy", as: type(of: graphDestroy))
        graphExecDestroy = try l.function("cudaGraphExecDestroy", as: type(of: graphExecDestroy))
    }

    func check(_ status: Int32, _ function: String) throws {
        guard status != 0 else { return }
        throw CUDAError.call(library: "CUDA runtime", function: function, status: Int(status),
                             message: getErrorString(status).map { String(cString: $0) } ?? "unknown error")
    }

    /// `cudaMemcpyKind` (driver_types.h).
    enum CopyKind: Int32 { case hostToDevice = 1, deviceToHost = 2, deviceToDevice = 3 }
    static let streamNonBlocking: UInt32 = 1
    static let captureModeGlobal: Int32 = 0
    static let captureModeThreadLocal: Int32 = 1
}

/// cuBLAS: the matrix products of FullyConnected.
struct CUBLASAPI: @unchecked Sendable {
    let library: DynamicLibrary
    let create: @convention(c) (PtrOut) -> Int32
    let getVersion: @convention(c) (Ptr, IntOut) -> Int32
    /// cublasGetProperty(libraryPropertyType: 0 major, 1 minor, 2 patch, int*): needs no handle.
    let getProperty: @convention(c) (Int32, IntOut) -> Int32
    let setStream: @convention(c) (Ptr, Ptr) -> Int32
    let setMathMode: @convention(c) (Ptr, Int32) -> Int32
    let sgemm: @convention(c) (Ptr, Int32, Int32, Int32, Int32, Int32, UnsafePointer<Float>, ConstPtr, Int32,
                               ConstPtr, Int32, UnsafePointer<Float>, Ptr, Int32) -> Int32
    let gemmEx: @convention(c) (Ptr, Int32, Int32, Int32, Int32, Int32, ConstPtr, ConstPtr, Int32, Int32,
                                ConstPtr, Int32, Int32, ConstPtr, Ptr, Int32, Int32, Int32, Int32) -> Int32

    init(_ l: DynamicLibrary) throws {
        library = l
        create = try l.function("cublasCreate_v2", as: type(of: create))
        getVersion = try l.function("cublasGetVersion_v2", as: type(of: getVersion))
        getProperty = try l.function("cublasGetProperty", as: type(of: getProperty))
        setStream = try l.function("cublasSetStream_v2", as: type(of: setStream))
        setMathMode = try l.function("cublasSetMathMode", as: type(of: setMathMode))
        sgemm = try l.function("cublasSgemm_v2", as: type(of: sgemm))
        gemmEx = try l.function("cublasGemmEx", as: type(of: gemmEx))
    }

    func check(_ status: Int32, _ function: String) throws {
        guard status != 0 else { return }
        throw CUDAError.call(library: "cuBLAS", function: function, status: Int(status), message: "cublasStatus_t \(status)")
    }

    static let opN: Int32 = 0, opT: Int32 = 1
    static let defaultMath: Int32 = 0
    static let computeF32: Int32 = 68
    static let gemmDefault: Int32 = -1
}

/// `cudaDataType` (library_types.h).
enum CUDADataType: Int32 { case f32 = 0, f16 = 2, bf16 = 14 }

/// NVRTC: compiles generated CUDA C++ to a cubin at run time.
struct NVRTCAPI: @unchecked Sendable {
    let library: DynamicLibrary
    let version: @convention(c) (IntOut, IntOut) -> Int32
    let getErrorString: @convention(c) (Int32) -> UnsafePointer<CChar>?
    let createProgram: @convention(c) (PtrOut, UnsafePointer<CChar>, UnsafePointer<CChar>, Int32,
                                       UnsafePointer<UnsafePointer<CChar>?>?, UnsafePointer<UnsafePointer<CChar>?>?) -> Int32
    let compileProgram: @convention(c) (Ptr, Int32, UnsafePointer<UnsafePointer<CChar>?>?) -> Int32
    let getProgramLogSize: @convention(c) (Ptr, UnsafeMutablePointer<Int>) -> Int32
    let getProgramLog: @convention(c) (Ptr, UnsafeMutablePointer<CChar>) -> Int32
    let getCUBINSize: @convention(c) (Ptr, UnsafeMutablePointer<Int>) -> Int32
    let getCUBIN: @convention(c) (Ptr, UnsafeMutablePointer<CChar>) -> Int32
    let destroyProgram: @convention(c) (PtrOut) -> Int32

    init(_ l: DynamicLibrary) throws {
        library = l
        version = try l.function("nvrtcVersion", as: type(of: version))
        getErrorString = try l.function("nvrtcGetErrorString", as: type(of: getErrorString))
        createProgram = try l.function("nvrtcCreateProgram", as: type(of: createProgram))
        compileProgram = try l.function("nvrtcCompileProgram", as: type(of: compileProgram))
        getProgramLogSize = try l.function("nvrtcGetProgramLogSize", as: type(of: getProgramLogSize))
        getProgramLog = try l.function("nvrtcGetProgramLog", as: type(of: getProgramLog))
        getCUBINSize = try l.function("nvrtcGetCUBINSize", as: type(of: getCUBINSize))
        getCUBIN = try l.function("nvrtcGetCUBIN", as: type(of: getCUBIN))
        destroyProgram = try l.function("nvrtcDestroyProgram", as: type(of: destroyProgram))
    }

    func check(_ status: Int32, _ function: String) throws {
        guard status != 0 else { return }
        throw CUDAError.call(library: "NVRTC", function: function, status: Int(status),
                             message: getErrorString(status).map { String(cString: $0) } ?? "unknown error")
    }
}
