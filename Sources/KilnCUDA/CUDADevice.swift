// One opened GPU: a non-blocking stream every kernel of Kiln runs on, the cuDNN and cuBLAS handles
// bound to it, a caching memory pool, and the NVRTC kernels compiled so far.
//
//   plan A ─┐                       one stream: work is ordered, so a buffer given back to the pool
//   plan B ─┴─> stream ─> GPU        can be handed out again at once, without a synchronization
import Foundation
import KilnCore
import KilnEngineCore

/// A GPU opened for work. Kept for the life of the process (``CUDA/device(_:)``).
final class CUDADevice: @unchecked Sendable {
    let ordinal: Int
    let driver: DriverAPI
    let runtime: RuntimeAPI
    let cublas: CUBLASAPI
    let cudnn: CUDNNAPI
    let nvrtc: NVRTCAPI
    let stream: Ptr
    let cudnnHandle: Ptr
    let cublasHandle: Ptr
    let computeCapability: (major: Int, minor: Int)
    let pool: DeviceMemoryPool
    private var modules: [String: Ptr] = [:]
    private let lock = NSLock()

    init(ordinal: Int, driver: DriverAPI, runtime: RuntimeAPI, cublas: CUBLASAPI, cudnn: CUDNNAPI, nvrtc: NVRTCAPI) throws {
        self.ordinal = ordinal
        self.driver = driver
        self.runtime = runtime
        self.cublas = cublas
        self.cudnn = cudnn
        self.nvrtc = nvrtc
        try runtime.check(runtime.setDevice(Int32(ordinal)), "cudaSetDevice")
        var s: Ptr = nil
        try runtime.check(runtime.streamCreateWithFlags(&s, RuntimeAPI.streamNonBlocking), "cudaStreamCreateWithFlags")
        stream = s
        var h: Ptr = nil
        try cudnn.check(cudnn.create(&h), "cudnnCreate")
        try cudnn.check(cudnn.setStream(h, s), "cudnnSetStream")
        cudnnHandle = h
        var b: Ptr = nil
        try cublas.check(cublas.create(&b), "cublasCreate")
        try cublas.check(cublas.setStream(b, s), "cublasSetStream")
        cublasHandle = b
        var dev: Int32 = 0
        try driver.check(driver.deviceGet(&dev, Int32(ordinal)), "cuDeviceGet")
        var major: Int32 = 0, minor: Int32 = 0
        try driver.check(driver.deviceGetAttribute(&major, DriverAPI.Attribute.computeCapabilityMajor.rawValue, dev), "cuDeviceGetAttribute")
        try driver.check(driver.deviceGetAttribute(&minor, DriverAPI.Attribute.computeCapabilityMinor.rawValue, dev), "cuDeviceGetAttribute")
        computeCapability = (Int(major), Int(minor))
        pool = DeviceMemoryPool(runtime: runtime, ordinal: ordinal)
    }

    /// Makes this device current on the calling thread (the runtime API's calls act on it).
    func makeCurrent() throws {
        try runtime.check(runtime.setDevice(Int32(ordinal)), "cudaSetDevice")
    }

    /// Waits until everything queued on the stream has run.
    func synchronize() throws {
        try runtime.check(runtime.streamSynchronize(stream), "cudaStreamSynchronize")
    }

    // MARK: Copies

    func copy(toDevice dst: UnsafeMutableRawPointer, from src: UnsafeRawPointer, bytes: Int) throws {
        guard bytes > 0 else { return }
        try runtime.check(runtime.memcpyAsync(dst, src, bytes, RuntimeAPI.CopyKind.hostToDevice.rawValue, stream), "cudaMemcpyAsync")
    }

    func copy(toHost dst: UnsafeMutableRawPointer, from src: UnsafeRawPointer, bytes: Int) throws {
        guard bytes > 0 else { return }
        try runtime.check(runtime.memcpyAsync(dst, src, bytes, RuntimeAPI.CopyKind.deviceToHost.rawValue, stream), "cudaMemcpyAsync")
    }

    func copy(onDevice dst: UnsafeMutableRawPointer, from src: UnsafeRawPointer, bytes: Int) throws {
        guard bytes > 0 else { return }
        try runtime.check(runtime.memcpyAsync(dst, src, bytes, RuntimeAPI.CopyKind.deviceToDevice.rawValue, stream), "cudaMemcpyAsync")
    }

    /// Uploads a host array into a new device buffer.
    func upload(_ a: NDArray) throws -> DeviceBuffer {
        let b = try pool.allocate(a.byteCount)
        try a.withUnsafeBytes { try copy(toDevice: b.pointer, from: $0.baseAddress!, bytes: a.byteCount) }
        return b
    }

    /// Downloads `bytes` of a device buffer into a new host array of the given shape and dtype; waits.
    func download(_ p: UnsafeRawPointer, shape: Shape, dtype: DType) throws -> NDArray {
        var a = NDArray(zeros: shape, dtype: dtype)
        let n = a.byteCount
        try a.withUnsafeMutableBytes { try copy(toHost: $0.baseAddress!, from: p, bytes: n) }
        try synchronize()
        return a
    }

    // MARK: Generated kernels

    /// The kernel `name` of CUDA C++ `source`, compiled by NVRTC for this GPU once per process.
    func function(_ name: String, source: String) throws -> Ptr {
        lock.lock()
        defer { lock.unlock() }
        let module: Ptr
        if let m = modules[source] {
            module = m
        } else {
            var m: Ptr = nil
            let cached = cachePath(for: source)
            // A cached file that is empty, truncated or from another build fails to load and is compiled again.
            if let cached, let bytes = FileManager.default.contents(atPath: cached), !bytes.isEmpty,
               bytes.withUnsafeBytes({ p in p.baseAddress.map { driver.moduleLoadData(&m, $0) } ?? 1 }) == 0 {
                cubinCacheHits += 1
            } else {
                let cubin = try compile(source, name: name)
                try cubin.withUnsafeBytes { try driver.check(driver.moduleLoadData(&m, $0.baseAddress!), "cuModuleLoadData") }
                cubinCompiles += 1
                if let cached { store(cubin, at: cached) }
            }
            modules[source] = m
            module = m
        }
        var f: Ptr = nil
        try driver.check(name.withCString { driver.moduleGetFunction(&f, module, $0) }, "cuModuleGetFunction(\(name))")
        return f
    }

    /// Kernels compiled by NVRTC and kernels found in the engine cache, in this process.
    private(set) var cubinCompiles = 0
    private(set) var cubinCacheHits = 0

    /// Where a kernel's cubin is cached: `KILN_ENGINE_CACHE_DIR/cuda/KEY.cubin`, the key hashing the
    /// source, the GPU's architecture and the NVRTC and driver versions (another of any, another file).
    private func cachePath(for source: String) -> String? {
        guard let dir = ProcessInfo.processInfo.environment["KILN_ENGINE_CACHE_DIR"], !dir.isEmpty else { return nil }
        var major: Int32 = 0, minor: Int32 = 0, driverVersion: Int32 = 0
        _ = nvrtc.version(&major, &minor)
        _ = driver.driverGetVersion(&driverVersion)
        let key = "\(source)\nsm_\(computeCapability.major)\(computeCapability.minor) nvrtc \(major).\(minor) driver \(driverVersion)"
        // The engine core's SHA-256, as the cpu engine's plan files: stable across processes (unlike
        // Swift's Hasher), and no two kernels' sources share a file.
        var h = SHA256()
        h.update(key)
        return (dir as NSString).appendingPathComponent("cuda/" + SHA256.hex(h.digest) + ".cubin")
    }

    /// Writes a cubin to the cache; a cache that cannot be written only costs the next process a compile.
    private func store(_ cubin: [UInt8], at path: String) {
        let fm = FileManager.default
        try? fm.createDirectory(atPath: (path as NSString).deletingLastPathComponent, withIntermediateDirectories: true)
        let temporary = path + ".\(ProcessInfo.processInfo.processIdentifier).tmp"
        guard fm.createFile(atPath: temporary, contents: Data(cubin)) else { return }
        if rename(temporary, path) != 0 { try? fm.removeItem(atPath: temporary) }
    }

    private func compile(_ source: String, name: String) throws -> [UInt8] {
        var prog: Ptr = nil
        try nvrtc.check(source.withCString { s in name.withCString { n in nvrtc.createProgram(&prog, s, n, 0, nil, nil) } }, "nvrtcCreateProgram")
        defer { _ = nvrtc.destroyProgram(&prog) }
        let options = ["--gpu-architecture=sm_\(computeCapability.major)\(computeCapability.minor)", "--std=c++17", "-default-device"]
        let cOptions = options.map { strdup($0) }
        defer { cOptions.forEach { free($0) } }
        let status = cOptions.map { UnsafePointer($0) }.withUnsafeBufferPointer { nvrtc.compileProgram(prog, Int32(options.count), $0.baseAddress) }
        if status != 0 {
            var size = 0
            _ = nvrtc.getProgramLogSize(prog, &size)
            var log = [CChar](repeating: 0, count: max(size, 1))
            _ = nvrtc.getProgramLog(prog, &log)
            throw CUDAError.compile(kernel: name, log: log.withUnsafeBufferPointer { String(cString: $0.baseAddress!) })
        }
        var size = 0
        try nvrtc.check(nvrtc.getCUBINSize(prog, &size), "nvrtcGetCUBINSize")
        var cubin = [CChar](repeating: 0, count: size)
        try nvrtc.check(nvrtc.getCUBIN(prog, &cubin), "nvrtcGetCUBIN")
        return cubin.map { UInt8(bitPattern: $0) }
    }

    /// Launches `function` on the stream with one thread per element of `count`, 256 to a block.
    /// Device milliseconds per call of each body: the stream is held by a spinning kernel while every
    /// body is queued `repeats` times between two events, so that what is timed is the device's work,
    /// not the host's launch rate. The spin lasts about 100 µs per queued call at 2 GHz (cuDNN's legacy
    /// calls cost the host tens of µs each): should the host still fall behind, the last bodies' times grow.
    func deviceMilliseconds(_ bodies: [() throws -> Void], repeats: Int) throws -> [Double] {
        let spinCycles = max(Int64(6_000_000), Int64(200_000 * bodies.count * max(1, repeats)))
        let spin = GeneratedKernels.spin()
        let f = try function(spin.name, source: spin.source)
        var events: [Ptr] = []
        defer { for e in events { _ = runtime.eventDestroy(e) } }
        for _ in 0...bodies.count {
            var e: Ptr = nil
            try runtime.check(runtime.eventCreate(&e), "cudaEventCreate")
            events.append(e)
        }
        try launch(f, grid: (1, 1, 1), block: (1, 1, 1), arguments: [.int64(spinCycles)])
        try runtime.check(runtime.eventRecord(events[0], stream), "cudaEventRecord")
        for (k, body) in bodies.enumerated() {
            for _ in 0..<max(1, repeats) { try body() }
            try runtime.check(runtime.eventRecord(events[k + 1], stream), "cudaEventRecord")
        }
        try synchronize()
        return try bodies.indices.map { k in
            var ms: Float = 0
            try runtime.check(runtime.eventElapsedTime(&ms, events[k], events[k + 1]), "cudaEventElapsedTime")
            return Double(ms) / Double(max(1, repeats))
        }
    }

    func launch(_ function: Ptr, count: Int, arguments: [KernelArgument]) throws {
        let blocks = UInt32((count + 255) / 256)
        try launch(function, grid: (max(blocks, 1), 1, 1), block: (256, 1, 1), arguments: arguments)
    }

    func launch(_ function: Ptr, grid: (UInt32, UInt32, UInt32), block: (UInt32, UInt32, UInt32), sharedBytes: UInt32 = 0,
                arguments: [KernelArgument]) throws {
        // Every argument gets an 8-byte slot; cuLaunchKernel reads each through its pointer by the
        // kernel's own parameter type, so a 4-byte int in the low bytes of a slot is read correctly.
        let slots = UnsafeMutablePointer<UInt64>.allocate(capacity: max(arguments.count, 1))
        defer { slots.deallocate() }
        var pointers = [UnsafeMutableRawPointer?](repeating: nil, count: arguments.count)
        for (i, a) in arguments.enumerated() {
            switch a {
            case let .pointer(p): slots[i] = UInt64(UInt(bitPattern: p))
            case let .int32(v): slots[i] = UInt64(UInt32(bitPattern: v))
            case let .int64(v): slots[i] = UInt64(bitPattern: v)
            case let .float(v): slots[i] = UInt64(v.bitPattern)
            }
            pointers[i] = UnsafeMutableRawPointer(slots + i)
        }
        let status = pointers.withUnsafeMutableBufferPointer {
            driver.launchKernel(function, grid.0, grid.1, grid.2, block.0, block.1, block.2, sharedBytes, stream, $0.baseAddress, nil)
        }
        try driver.check(status, "cuLaunchKernel")
    }
}

/// A kernel argument for ``CUDADevice/launch(_:count:arguments:)``.
enum KernelArgument {
    case pointer(UnsafeMutableRawPointer?)
    case int32(Int32)
    case int64(Int64)
    case float(Float)
}
