// A caching allocator: cudaMalloc is slow and synchronizes the device, so freed blocks are kept in
// lists by rounded size and handed out again.
//
//   allocate(1000)  -> rounds to 1024 -> list[1024] empty -> cudaMalloc(1024)
//   buffer freed    -> list[1024] = [p]
//   allocate(900)   -> rounds to 1024 -> p again, no cudaMalloc
import Foundation

/// Device memory with an owner: given back to its pool when the last reference goes.
final class DeviceBuffer: @unchecked Sendable {
    let pointer: UnsafeMutableRawPointer
    let byteCount: Int
    private let pool: DeviceMemoryPool

    init(pointer: UnsafeMutableRawPointer, byteCount: Int, pool: DeviceMemoryPool) {
        self.pointer = pointer
        self.byteCount = byteCount
        self.pool = pool
    }

    deinit { pool.release(pointer, byteCount: byteCount) }
}

/// The caching allocator of one device.
final class DeviceMemoryPool: @unchecked Sendable {
    private let runtime: RuntimeAPI
    private let ordinal: Int
    private var free: [Int: [UnsafeMutableRawPointer]] = [:]
    private let lock = NSLock()
    /// Bytes obtained from cudaMalloc and not returned to CUDA.
    private(set) var reservedBytes = 0
    /// Bytes handed out and not yet given back.
    private(set) var usedBytes = 0

    init(runtime: RuntimeAPI, ordinal: Int) {
        self.runtime = runtime
        self.ordinal = ordinal
    }

    /// Small blocks round to 512 bytes, large ones to 2 MiB, so that similar sizes share lists.
    static func rounded(_ bytes: Int) -> Int {
        let b = max(bytes, 1)
        return b < (1 << 20) ? (b + 511) / 512 * 512 : (b + (2 << 20) - 1) / (2 << 20) * (2 << 20)
    }

    func allocate(_ bytes: Int) throws -> DeviceBuffer {
        let size = Self.rounded(bytes)
        lock.lock()
        defer { lock.unlock() }
        if var list = free[size], let p = list.popLast() {
            free[size] = list
            usedBytes += size
            return DeviceBuffer(pointer: p, byteCount: size, pool: self)
        }
        var p: Ptr = nil
        var status = runtime.malloc(&p, size)
        if status != 0 {
            // Out of memory with blocks cached: give them all back to CUDA and try once more.
            releaseCached()
            status = runtime.malloc(&p, size)
        }
        guard status == 0, let pointer = p else {
            throw CUDAError.outOfMemory(bytes: size, device: ordinal,
                                        message: runtime.getErrorString(status).map { String(cString: $0) } ?? "cudaMalloc failed")
        }
        reservedBytes += size
        usedBytes += size
        return DeviceBuffer(pointer: pointer, byteCount: size, pool: self)
    }

    func release(_ p: UnsafeMutableRawPointer, byteCount: Int) {
        lock.lock()
        defer { lock.unlock() }
        free[byteCount, default: []].append(p)
        usedBytes -= byteCount
    }

    /// Returns every cached block to CUDA (the caller holds the lock).
    private func releaseCached() {
        for (size, list) in free {
            for p in list { _ = runtime.free(p); reservedBytes -= size }
        }
        free = [:]
    }
}
