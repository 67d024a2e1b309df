import Foundation

/// The heap buffer behind an ``NDArray``: 64-byte aligned so that oneDNN and SIMD loads can use it
/// without a copy. Arrays share one `Storage` until one of them is written (copy-on-write).
final class Storage: @unchecked Sendable {
    let byteCount: Int
    let pointer: UnsafeMutableRawPointer

    init(byteCount: Int, zeroed: Bool = true) {
        self.byteCount = byteCount
        pointer = UnsafeMutableRawPointer.allocate(byteCount: max(byteCount, 1), alignment: 64)
        if zeroed { pointer.initializeMemory(as: UInt8.self, repeating: 0, count: max(byteCount, 1)) }
    }

    func copy() -> Storage {
        let s = Storage(byteCount: byteCount, zeroed: false)
        s.pointer.copyMemory(from: pointer, byteCount: byteCount)
        return s
    }

    deinit { pointer.deallocate() }
}
