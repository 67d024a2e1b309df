import Foundation
import Testing
@testable import KilnCore

/// Builders for hand-made `.params` files, field by field as MXNet 1.9 lays them out.
enum ParamsBytes {
    static func header(count: UInt64, into b: inout Bytes) {
        b.u64(0x112)
        b.u64(0)
        b.u64(count)
    }

    /// One V2 (or V3) dense array on cpu(0).
    static func array(magic: UInt32 = 0xF993_FAC9, storage: Int32 = 0, dims: [Int64], flag: Int32,
                      data: [UInt8], devType: Int32 = 1, into b: inout Bytes) {
        b.u32(magic)
        b.i32(storage)
        b.i32(Int32(dims.count))
        for d in dims { b.i64(d) }
        b.i32(devType)
        b.i32(0)
        b.i32(flag)
        b.raw(data)
    }

    static func names(_ names: [String], into b: inout Bytes) {
        b.u64(UInt64(names.count))
        for n in names {
            b.u64(UInt64(n.utf8.count))
            b.text(n)
        }
    }

    static func floats(_ v: [Float]) -> [UInt8] { v.withUnsafeBytes { Array($0) } }

    /// A small valid file: a 2x2 float32 `arg:w` and a 3-element int32 `aux:b`.
    static var small: Data {
        var b = Bytes()
        header(count: 2, into: &b)
        array(dims: [2, 2], flag: 0, data: floats([1, 2, 3, 4]), into: &b)
        array(dims: [3], flag: 4, data: [Int32(-1), 0, 7].withUnsafeBytes { Array($0) }, into: &b)
        names(["arg:w", "aux:b"], into: &b)
        return b.data
    }
}

@Suite("MXNet .params files")
struct ParamsFileTests {
    static let shapes: [Shape] = [[1], [5], [2, 3], [2, 0, 3], [1, 1, 1, 1], [3, 1, 2, 2]]

    @Test func writesMXNetLayoutExactly() throws {
        let data = try NDArray.paramsData([("arg:w", NDArray(shape: [2, 2], values: [1, 2, 3, 4])),
                                           ("aux:b", NDArray(shape: [3], dtype: .int32, values: [-1, 0, 7]))])
        #expect(data == ParamsBytes.small)
    }

    @Test func writesListSavesWithoutNames() throws {
        let a = NDArray(shape: [1], dtype: .uint8, values: [200])
        var b = Bytes()
        ParamsBytes.header(count: 1, into: &b)
        ParamsBytes.array(dims: [1], flag: 3, data: [200], into: &b)
        b.u64(0)
        #expect(try ParamsFile(list: [a]).encoded() == b.data)

        let file = try ParamsFile(data: b.data, source: "list.params")
        #expect(!file.hasNames)
        #expect(file.entries.count == 1)
        #expect(file.entries[0].name == nil)
        let error = kilnError { try NDArray.loadParams(data: b.data, source: "list.params") }
        #expect(error?.kind == "unsupportedFeature")
        #expect(error?.description.contains("loadParamsList") == true)
        #expect(try NDArray.loadParamsList(data: b.data, source: "list.params").map { $0.doubles() } == [[200]])
    }

    @Test func writesV3WithScalars() throws {
        let scalar = NDArray(shape: [], dtype: .float64, values: [2.5])
        var b = Bytes()
        ParamsBytes.header(count: 1, into: &b)
        ParamsBytes.array(magic: 0xF993_FACA, dims: [], flag: 1, data: withUnsafeBytes(of: 2.5) { Array($0) }, into: &b)
        ParamsBytes.names(["s"], into: &b)
        #expect(try ParamsFile(named: [("s", scalar)]).encoded(format: .v3) == b.data)
        let back = try NDArray.loadParams(data: b.data, source: "v3.params")
        #expect(back.count == 1)
        #expect(identical(back[0].array, scalar))

        let error = kilnError { try NDArray.paramsData([("s", scalar)]) }
        #expect(error?.kind == "unsupportedFeature")
        #expect(error?.field == "array 0 ('s'), shape")
    }

    @Test("Every dtype and shape survives a round trip", arguments: DType.allCases, shapes)
    func roundTrip(dtype: DType, shape: Shape) throws {
        let arrays = [("first", sampleArray(dtype: dtype, shape: shape, seed: 1)),
                      ("arg:second", sampleArray(dtype: dtype, shape: shape, seed: 2))]
        for format in [ParamsFile.Format.v2, .v3] {
            let data = try ParamsFile(named: arrays).encoded(format: format)
            let back = try NDArray.loadParams(data: data, source: "rt.params")
            #expect(back.map(\.name) == ["first", "arg:second"])
            for (x, y) in zip(arrays, back) { #expect(identical(x.1, y.array)) }
        }
    }

    @Test("0-d arrays round-trip in V3", arguments: DType.allCases)
    func scalarRoundTrip(dtype: DType) throws {
        let a = sampleArray(dtype: dtype, shape: [], seed: 4)
        let data = try ParamsFile(named: [("x", a)]).encoded(format: .v3)
        #expect(identical(try NDArray.loadParams(data: data, source: "s.params")[0].array, a))
    }

    @Test func keepsFileOrderAndOddNames() throws {
        let names = ["z", "a", "arg:already prefixed", "with space/and.dots", "ünïcödé", ""]
        let arrays = names.enumerated().map { ($1, NDArray(shape: [1], values: [Float($0)])) }
        let back = try NDArray.loadParams(data: NDArray.paramsData(arrays), source: "order.params")
        #expect(back.map(\.name) == names)
        #expect(back.map { $0.array[flat: 0] } == [0, 1, 2, 3, 4, 5])
    }

    @Test func emptyFile() throws {
        let data = try NDArray.paramsData([])
        #expect(data.count == 32)
        #expect(try NDArray.loadParams(data: data, source: "empty.params").isEmpty)
        #expect(try NDArray.loadParamsDictionary(data: data, source: "empty.params").isEmpty)
    }

    @Test func readsV1AndLegacyArrays() throws {
        var b = Bytes()
        ParamsBytes.header(count: 3, into: &b)
        // V1: magic, int32 ndim, int64 dims, context, flag, data (no storage type).
        b.u32(0xF993_FAC8)
        b.i32(2); b.i64(1); b.i64(2)
        b.i32(1); b.i32(0); b.i32(0)
        b.f32(1.5); b.f32(-1.5)
        // Legacy: uint32 ndim in place of a magic, uint32 dims, context, flag, data.
        b.u32(1); b.u32(3)
        b.i32(2); b.i32(1); b.i32(3)
        b.raw([9, 8, 7])
        // A GPU-context V2 array lands on the CPU.
        ParamsBytes.array(dims: [1], flag: 6, data: withUnsafeBytes(of: Int64(-5)) { Array($0) }, devType: 2, into: &b)
        ParamsBytes.names(["v1", "legacy", "gpu"], into: &b)
        let back = try NDArray.loadParamsDictionary(data: b.data, source: "old.params")
        #expect(back["v1"]?.shape == [1, 2])
        #expect(back["v1"]?.floats() == [1.5, -1.5])
        #expect(back["legacy"]?.dtype == .uint8)
        #expect(back["legacy"]?.doubles() == [9, 8, 7])
        #expect(back["gpu"]?.doubles() == [-5])
    }

    @Test func noneArraysAreKeptButRefusedByLoadParams() throws {
        var b = Bytes()
        ParamsBytes.header(count: 4, into: &b)
        b.u32(0xF993_FAC9); b.i32(0); b.i32(0)          // V2, ndim 0: none
        b.u32(0xF993_FACA); b.i32(0); b.i32(-1)         // V3, ndim -1: none
        b.u32(0xF993_FACA); b.i32(0); b.i32(2); b.i64(3); b.i64(-1)  // V3, unknown dim: none
        b.u32(0xF993_FAC9); b.i32(-1); b.i32(-1)        // what MXNet writes for NDArray()
        ParamsBytes.names(["a", "b", "c", "d"], into: &b)
        let file = try ParamsFile(data: b.data, source: "none.params")
        #expect(file.entries.map(\.name) == ["a", "b", "c", "d"])
        #expect(file.entries.allSatisfy { $0.array == nil })
        let error = kilnError { try NDArray.loadParams(data: b.data, source: "none.params") }
        #expect(error?.field == "array 0 ('a')")
        #expect(kilnError { try NDArray.loadParamsList(data: b.data, source: "none.params") }?.field == "array 0")
        // Written back, each is still none, in either format.
        for format in [ParamsFile.Format.v2, .v3] {
            let again = try ParamsFile(data: file.encoded(format: format), source: "none2.params")
            #expect(again.entries.map(\.name) == ["a", "b", "c", "d"])
            #expect(again.entries.allSatisfy { $0.array == nil })
        }
    }

    @Test func splitsCheckpointPrefixes() throws {
        let one = NDArray(shape: [1], values: [1])
        let parts = ParamsFile.split(["arg:conv_weight": one, "aux:bn_moving_mean": one,
                                      "features.0.weight": one, "arg:": one, "argx": one])
        #expect(Set(parts.args.keys) == ["conv_weight", ""])
        #expect(Set(parts.aux.keys) == ["bn_moving_mean"])
        #expect(Set(parts.plain.keys) == ["features.0.weight", "argx"])
    }

    /// A name given twice would silently keep the later array: every reader refuses the file, naming
    /// the field and both positions.
    @Test func duplicateNamesAreRefused() throws {
        let one = NDArray(shape: [1], values: [1])
        let data = try NDArray.paramsData([("w", one), ("w", one)])
        for read in [{ _ = try NDArray.loadParams(data: data, source: "dup.params") },
                     { _ = try NDArray.loadParamsDictionary(data: data, source: "dup.params") }] as [() throws -> Void] {
            let error = kilnError(read)
            #expect(error?.field == "name 1")
            #expect(error.map { "\($0)" }?.contains("'w' names array 0 already") == true)
        }
        #expect(try NDArray.loadParams(data: try NDArray.paramsData([("w", one), ("b", one)])).map(\.name) == ["w", "b"])
    }

    @Test func mixedNamingIsRefusedOnWrite() {
        let one = NDArray(shape: [1], values: [1])
        let file = ParamsFile(entries: [.init(name: "a", array: one), .init(name: nil, array: one)])
        #expect(kilnError { try file.encoded() }?.field == "the name list")
    }

    @Test func savesAndLoadsFiles() throws {
        let dir = try temporaryDirectory()
        defer { try? FileManager.default.removeItem(at: dir) }
        let path = dir.appendingPathComponent("m-0000.params").path
        let arrays = [("arg:fc_weight", sampleArray(dtype: .float32, shape: [4, 3])),
                      ("aux:bn_var", sampleArray(dtype: .float16, shape: [4]))]
        try NDArray.saveParams(arrays, to: path)
        let back = try NDArray.loadParams(from: path)
        #expect(back.map(\.name) == ["arg:fc_weight", "aux:bn_var"])
        #expect(identical(back[1].array, arrays[1].1))
        #expect(try NDArray.loadParamsDictionary(from: path).count == 2)

        let listPath = dir.appendingPathComponent("list.params").path
        try NDArray.saveParams(list: arrays.map(\.1), to: listPath)
        #expect(try NDArray.loadParamsList(from: listPath).count == 2)

        #expect(kilnError { try NDArray.loadParams(from: dir.appendingPathComponent("nope").path) }?.kind == "fileUnreadable")
        #expect(kilnError { try NDArray.saveParams(arrays, to: dir.appendingPathComponent("x/y.params").path) }?.kind == "fileUnwritable")
    }

    // MARK: Bad input

    @Test func everyTruncationThrows() {
        let full = ParamsBytes.small
        for length in 0..<full.count {
            #expect(kilnError { try ParamsFile(data: full.prefix(length), source: "cut.params") } != nil,
                    "prefix of \(length) bytes")
        }
        #expect(kilnError { try ParamsFile(data: full, source: "full.params") } == nil)
    }

    /// A file from the small one with `edit` applied to its bytes.
    static func edited(_ edit: (inout Data) -> Void) -> Data {
        var d = ParamsBytes.small
        edit(&d)
        return d
    }

    static func put<T: FixedWidthInteger>(_ value: T, at offset: Int, in data: inout Data) {
        withUnsafeBytes(of: value.littleEndian) { data.replaceSubrange(offset..<(offset + MemoryLayout<T>.size), with: $0) }
    }

    // Offsets in `ParamsBytes.small`: list header 0-23; array 0 at 24 (magic 24, storage 28, ndim 32,
    // dims 36-51, dev_type 52, dev_id 56, flag 60, data 64-79); array 1 at 80 (magic 80, storage 84,
    // ndim 88, dim 92, dev_type 100, flag 108, data 112-123); names at 124 (count 124, length 132).
    static let badFiles: [(String, Data, String, String)] = [
        ("list magic", edited { put(UInt64(0x113), at: 0, in: &$0) }, "malformedFile", "the list magic"),
        ("array magic", edited { put(UInt32(0xDEAD_BEEF), at: 24, in: &$0) }, "malformedFile", "array 0 of 2, magic"),
        ("row_sparse", edited { put(Int32(1), at: 28, in: &$0) }, "unsupportedFeature", "array 0 of 2, storage type"),
        ("csr", edited { put(Int32(2), at: 84, in: &$0) }, "unsupportedFeature", "array 1 of 2, storage type"),
        ("storage 7", edited { put(Int32(7), at: 28, in: &$0) }, "malformedFile", "array 0 of 2, storage type"),
        ("undefined storage with a shape", edited { put(Int32(-1), at: 28, in: &$0) }, "malformedFile", "array 0 of 2, storage type"),
        ("ndim -2", edited { put(Int32(-2), at: 32, in: &$0) }, "malformedFile", "array 0 of 2, ndim"),
        ("huge ndim", edited { put(Int32.max, at: 32, in: &$0) }, "truncated", "array 0 of 2, 2147483647 dims"),
        ("negative dim", edited { put(Int64(-3), at: 36, in: &$0) }, "malformedFile", "array 0 of 2, shape"),
        ("huge dim", edited { put(Int64(1) << 40, at: 36, in: &$0) }, "truncated", "array 0 of 2, data (shape (1099511627776, 2), dtype float32)"),
        ("overflowing dims", edited { put(Int64.max, at: 36, in: &$0); put(Int64.max, at: 44, in: &$0) }, "malformedFile", "array 0 of 2, shape"),
        // Regression: no elements, but strides computed from the right overflowed (see NPYTests).
        ("zero beside huge dims", edited { put(Int64(0), at: 36, in: &$0); put(Int64.max / 2, at: 44, in: &$0) }, "malformedFile", "array 0 of 2, shape"),
        ("dev_type 9", edited { put(Int32(9), at: 52, in: &$0) }, "malformedFile", "array 0 of 2, context dev_type"),
        ("bool flag", edited { put(Int32(7), at: 60, in: &$0) }, "unsupportedDType", "array 0 of 2, type flag"),
        ("flag 99", edited { put(Int32(99), at: 108, in: &$0) }, "unsupportedDType", "array 1 of 2, type flag"),
        ("huge count", edited { put(UInt64.max, at: 16, in: &$0) }, "truncated", "the arrays (18446744073709551615 claimed, at least 4 bytes each)"),
        ("count 3", edited { put(UInt64(3), at: 16, in: &$0) }, "malformedFile", "array 2 of 3, context dev_type"),
        ("name count 1", edited { put(UInt64(1), at: 124, in: &$0) }, "malformedFile", "the name count"),
        ("huge name length", edited { put(UInt64.max, at: 132, in: &$0) }, "truncated", "the length of name 0"),
        ("name length 6", edited { put(UInt64(6), at: 132, in: &$0) }, "truncated", "the length of name 1"),
        ("bad UTF-8", edited { $0[140] = 0xFF }, "malformedFile", "name 0"),
        ("trailing bytes", edited { $0.append(0) }, "malformedFile", "the end of the file"),
    ]

    @Test("Damaged files throw, naming the field", arguments: badFiles)
    func damagedFiles(label: String, data: Data, kind: String, field: String) {
        let error = kilnError { try ParamsFile(data: data, source: "bad.params") }
        #expect(error?.kind == kind, "\(label): \(String(describing: error))")
        #expect(error?.field == field, "\(label): \(String(describing: error))")
        #expect(error?.description.contains("bad.params") == true)
    }

    @Test func unsupportedFlagsAreNamed() {
        let data = Self.edited { Self.put(Int32(9), at: 60, in: &$0) }
        let error = kilnError { try ParamsFile(data: data, source: "u16.params") }
        #expect(error?.description.contains("9 (uint16)") == true)
    }
}

