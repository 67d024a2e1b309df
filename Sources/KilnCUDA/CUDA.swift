import Foundation

/// One of the libraries the CUDA backend loads, as found (or not) on this machine.
public struct CUDALibraryStatus: Sendable, CustomStringConvertible {
    /// Short name: `driver`, `runtime`, `cublasLt`, `cublas`, `cudnn`, `nvrtc`.
    public let name: String
    /// The file opened, when one was.
    public let path: String?
    /// The library's version as it reports it (`13.0`, `9.19.0`), when loaded.
    public let version: String?
    /// Why it is unusable, when it is.
    public let error: String?

    public var isLoaded: Bool { error == nil && path != nil }

    public var description: String {
        if let error { return "\(name): missing. \(error)" }
        return "\(name) \(version ?? "?"): \(path ?? "?")"
    }
}

/// A GPU as CUDA describes it.
public struct CUDADeviceInfo: Sendable, CustomStringConvertible {
    public let ordinal: Int
    public let name: String
    public let totalMemory: Int
    public let computeCapability: (major: Int, minor: Int)
    public let multiprocessors: Int

    public var description: String {
        "gpu(\(ordinal)): \(name), \(totalMemory / (1 << 20)) MiB, compute capability \(computeCapability.major).\(computeCapability.minor), \(multiprocessors) multiprocessors"
    }
}

/// NVIDIA's libraries, opened once per process on first use (never at start-up, so a machine with no
/// GPU pays nothing). Every entry point throws a ``CUDAError`` that names what is missing.
///
/// ```
/// let cuda = CUDA.shared
/// print(cuda.libraries)          // what was found where, with versions
/// let gpus = try cuda.devices()  // throws when the driver is missing
/// ```
public final class CUDA: @unchecked Sendable {
    /// The process's libraries, loaded on first access from `KILN_CUDA_PATH` and the usual places.
    public static let shared = CUDA(environment: ProcessInfo.processInfo.environment)

    let driver: Result<DriverAPI, CUDAError>
    let runtime: Result<RuntimeAPI, CUDAError>
    let cublas: Result<CUBLASAPI, CUDAError>
    let cudnn: Result<CUDNNAPI, CUDAError>
    let nvrtc: Result<NVRTCAPI, CUDAError>
    /// The result of `cuInit` and the device count, when the driver loaded.
    let deviceCount: Result<Int, CUDAError>
    /// Each library's state, for reports and `kiln devices`.
    public let libraries: [CUDALibraryStatus]

    private let lock = NSLock()
    private var openDevices: [Int: CUDADevice] = [:]

    init(environment: [String: String]) {
        func load<T>(_ name: String, _ names: [String], companions: [String] = [], _ make: (DynamicLibrary) throws -> T) -> Result<T, CUDAError> {
            do {
                let l = try DynamicLibrary.open(name, names: names, companions: companions, environment: environment)
                return .success(try make(l))
            } catch let e as CUDAError {
                return .failure(e)
            } catch {
                return .failure(.libraryMissing(library: name, searched: [], reason: "\(error)"))
            }
        }
        driver = load("libcuda", ["libcuda.so.1", "libcuda.so"]) { try DriverAPI($0) }
        runtime = load("libcudart", ["libcudart.so.13", "libcudart.so.12", "libcudart.so"]) { try RuntimeAPI($0) }
        cublas = load("libcublas", ["libcublas.so.13", "libcublas.so.12", "libcublas.so"], companions: ["libcublasLt.so"]) { try CUBLASAPI($0) }
        cudnn = load("libcudnn", ["libcudnn.so.9", "libcudnn.so"], companions: ["libcudnn_graph.so", "libcudnn_ops.so", "libcudnn_cnn.so"]) { try CUDNNAPI($0) }
        nvrtc = load("libnvrtc", ["libnvrtc.so.13", "libnvrtc.so.12", "libnvrtc.so"], companions: ["libnvrtc-builtins.so"]) { try NVRTCAPI($0) }

        switch driver {
        case let .success(d):
            let s = d.initialize(0)
            if s != 0 {
                var text: UnsafePointer<CChar>?
                _ = d.getErrorString(s, &text)
                deviceCount = .failure(.call(library: "CUDA driver", function: "cuInit", status: Int(s),
                                             message: text.map { String(cString: $0) } ?? "unknown error"))
            } else {
                var n: Int32 = 0
                let c = d.deviceGetCount(&n)
                deviceCount = c == 0 ? .success(Int(n)) : .failure(.call(library: "CUDA driver", function: "cuDeviceGetCount", status: Int(c), message: "no device count"))
            }
        case let .failure(e):
            deviceCount = .failure(e)
        }

        var statuses: [CUDALibraryStatus] = []
        func status<T>(_ name: String, _ r: Result<T, CUDAError>, path: (T) -> String, version: (T) -> String?) {
            switch r {
            case let .success(api): statuses.append(CUDALibraryStatus(name: name, path: path(api), version: version(api), error: nil))
            case let .failure(e): statuses.append(CUDALibraryStatus(name: name, path: nil, version: nil, error: e.description))
            }
        }
        status("driver", driver, path: { $0.library.path }) { d in
            var v: Int32 = 0
            return d.driverGetVersion(&v) == 0 ? "\(v / 1000).\(v % 1000 / 10)" : nil
        }
        status("runtime", runtime, path: { $0.library.path }) { r in
            var v: Int32 = 0
            return r.runtimeGetVersion(&v) == 0 ? "\(v / 1000).\(v % 1000 / 10)" : nil
        }
        status("cublas", cublas, path: { $0.library.path }) { b in
            var major: Int32 = 0, minor: Int32 = 0, patch: Int32 = 0
            guard b.getProperty(0, &major) == 0, b.getProperty(1, &minor) == 0, b.getProperty(2, &patch) == 0 else { return nil }
            return "\(major).\(minor).\(patch)"
        }
        status("cudnn", cudnn, path: { $0.library.path }) { c in
            let v = c.getVersion()
            return "\(v / 10000).\(v % 10000 / 100).\(v % 100)"
        }
        status("nvrtc", nvrtc, path: { $0.library.path }) { n in
            var major: Int32 = 0, minor: Int32 = 0
            return n.version(&major, &minor) == 0 ? "\(major).\(minor)" : nil
        }
        libraries = statuses
    }

    /// Whether every library loaded and at least one GPU is present.
    public var isAvailable: Bool { unavailabilityReason == nil }

    /// Why the CUDA backend cannot run here, or nil when it can.
    public var unavailabilityReason: String? {
        if let missing = libraries.first(where: { !$0.isLoaded }) { return missing.error ?? "\(missing.name) is missing" }
        switch deviceCount {
        case let .failure(e): return e.description
        case let .success(n): return n == 0 ? "CUDA found no GPU on this machine." : nil
        }
    }

    /// The GPUs CUDA sees.
    public func devices() throws -> [CUDADeviceInfo] {
        let d = try driver.get()
        let n = try deviceCount.get()
        return try (0..<n).map { i in
            var dev: Int32 = 0
            try d.check(d.deviceGet(&dev, Int32(i)), "cuDeviceGet")
            var name = [CChar](repeating: 0, count: 256)
            try d.check(d.deviceGetName(&name, 256, dev), "cuDeviceGetName")
            var mem = 0
            try d.check(d.deviceTotalMem(&mem, dev), "cuDeviceTotalMem")
            func attribute(_ a: DriverAPI.Attribute) throws -> Int {
                var v: Int32 = 0
                try d.check(d.deviceGetAttribute(&v, a.rawValue, dev), "cuDeviceGetAttribute")
                return Int(v)
            }
            let nameText = name.withUnsafeBufferPointer { String(cString: $0.baseAddress!) }
            return CUDADeviceInfo(ordinal: i, name: nameText, totalMemory: mem,
                                  computeCapability: (try attribute(.computeCapabilityMajor), try attribute(.computeCapabilityMinor)),
                                  multiprocessors: try attribute(.multiprocessorCount))
        }
    }

    /// The device `ordinal`, opened once (its stream, cuDNN and cuBLAS handles and memory pool).
    func device(_ ordinal: Int) throws -> CUDADevice {
        lock.lock()
        defer { lock.unlock() }
        if let d = openDevices[ordinal] { return d }
        if let reason = unavailabilityReason { throw CUDAError.invalidArgument(reason) }
        let count = try deviceCount.get()
        guard ordinal >= 0 && ordinal < count else { throw CUDAError.noDevice(ordinal: ordinal, count: count) }
        let d = try CUDADevice(ordinal: ordinal, driver: driver.get(), runtime: runtime.get(), cublas: cublas.get(),
                               cudnn: cudnn.get(), nvrtc: nvrtc.get())
        openDevices[ordinal] = d
        return d
    }

    /// A one-line summary of the library versions (part of engine cache keys and reports).
    public var versionSummary: String {
        libraries.map { "\($0.name) \($0.version ?? ($0.isLoaded ? "?" : "missing"))" }.joined(separator: ", ")
    }
}
