import Foundation
import Testing
@testable import KilnCore

@Suite("NDArray copy-on-write")
struct NDArrayCopyOnWriteTests {
    @Test func copiesShareUntilWritten() {
        var a = NDArray(shape: [2, 2], values: [1, 2, 3, 4])
        let b = a
        #expect(a.sharesStorage(with: b))
        a[flat: 0] = 10
        #expect(!a.sharesStorage(with: b))
        #expect(a.floats() == [10, 2, 3, 4])
        #expect(b.floats() == [1, 2, 3, 4])
    }

    @Test func uniqueArraysAreWrittenInPlace() {
        var a = NDArray(shape: [3], values: [1, 2, 3])
        let before = a.withUnsafeBytes { $0.baseAddress }
        a[flat: 1] = 5
        a.setElement(2, 6)
        #expect(a.withUnsafeBytes { $0.baseAddress } == before)
        #expect(a.floats() == [1, 5, 6])
    }

    @Test("Every mutating accessor copies a shared buffer first", arguments: [0, 1, 2, 3])
    func mutatorsCopy(which: Int) {
        var a = NDArray(shape: [4], values: [1, 2, 3, 4])
        let b = a
        switch which {
        case 0: a[flat: 3] = 0
        case 1: a.setElement(3, 0)
        case 2: a.withUnsafeMutableBytes { $0.storeBytes(of: Float(0), toByteOffset: 12, as: Float.self) }
        default: a.withUnsafeMutableBufferPointer(as: Float.self) { $0[3] = 0 }
        }
        #expect(a.floats() == [1, 2, 3, 0])
        #expect(b.floats() == [1, 2, 3, 4])
        #expect(!a.sharesStorage(with: b))
    }

    @Test func reshapeSharesAndWritesDoNotLeak() throws {
        let a = NDArray(shape: [2, 3], values: [1, 2, 3, 4, 5, 6])
        var r = try a.reshaped([3, 2])
        #expect(r.sharesStorage(with: a))
        r[flat: 0] = -1
        #expect(a[flat: 0] == 1)
        #expect(r[flat: 0] == -1)
    }

    @Test func loadedArraysOwnTheirBytes() throws {
        // Arrays read from a file copy out of the file's buffer: writing one changes neither the
        // buffer nor another array read from it.
        let data = try NDArray(shape: [2], values: [1, 2]).npyData()
        var a = try NDArray(npyData: data, source: "a.npy")
        let b = try NDArray(npyData: data, source: "b.npy")
        a[flat: 0] = 9
        #expect(b.floats() == [1, 2])
        #expect(try NDArray(npyData: data, source: "c.npy").floats() == [1, 2])

        var params = try NDArray.loadParams(data: NDArray.paramsData([("x", b)]), source: "p.params")
        params[0].array[flat: 1] = 7
        #expect(b.floats() == [1, 2])
    }
}
