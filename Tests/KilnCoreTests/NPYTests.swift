import Foundation
import Testing
@testable import KilnCore

/// Files written by numpy 2.4 (`np.save`, or `numpy.lib.format.write_array` for versions 2.0 and 3.0).
enum NumpyWritten {
    /// `np.arange(6, dtype='<f4').reshape(2, 3) * 0.5 - 1`
    static let f4x2x3 = "k05VTVBZAQB2AHsnZGVzY3InOiAnPGY0JywgJ2ZvcnRyYW5fb3JkZXInOiBGYWxzZSwgJ3NoYXBlJzogKDIsIDMpLCB9ICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgIAoAAIC/AAAAvwAAAAAAAAA/AACAPwAAwD8="
    /// `np.array(-7, dtype='<i8')`, a 0-d array
    static let i8Scalar = "k05VTVBZAQB2AHsnZGVzY3InOiAnPGk4JywgJ2ZvcnRyYW5fb3JkZXInOiBGYWxzZSwgJ3NoYXBlJzogKCksIH0gICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgIAr5/////////w=="
    /// `np.array([255], dtype='u1')`
    static let u1One = "k05VTVBZAQB2AHsnZGVzY3InOiAnfHUxJywgJ2ZvcnRyYW5fb3JkZXInOiBGYWxzZSwgJ3NoYXBlJzogKDEsKSwgfSAgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgIAr/"
    /// `np.array([1.5, -2.0, 3.25], dtype='>f4')`, big-endian
    static let f4BigEndian = "k05VTVBZAQB2AHsnZGVzY3InOiAnPmY0JywgJ2ZvcnRyYW5fb3JkZXInOiBGYWxzZSwgJ3NoYXBlJzogKDMsKSwgfSAgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgIAo/wAAAwAAAAEBQAAA="
    /// `np.array([1.0, 65504, -2.5, 0], dtype='<f2')`
    static let f2Four = "k05VTVBZAQB2AHsnZGVzY3InOiAnPGYyJywgJ2ZvcnRyYW5fb3JkZXInOiBGYWxzZSwgJ3NoYXBlJzogKDQsKSwgfSAgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgIAoAPP97AMEAAA=="
    /// `np.arange(3, dtype='<i4')` as version 2.0
    static let i4Version2 = "k05VTVBZAgB0AAAAeydkZXNjcic6ICc8aTQnLCAnZm9ydHJhbl9vcmRlcic6IEZhbHNlLCAnc2hhcGUnOiAoMywpLCB9ICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgIAoAAAAAAQAAAAIAAAA="
    /// `np.arange(3, dtype='<i4')` as version 3.0
    static let i4Version3 = "k05VTVBZAwB0AAAAeydkZXNjcic6ICc8aTQnLCAnZm9ydHJhbl9vcmRlcic6IEZhbHNlLCAnc2hhcGUnOiAoMywpLCB9ICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgIAoAAAAAAQAAAAIAAAA="

    static func data(_ base64: String) -> Data { Data(base64Encoded: base64) ?? Data() }
}

/// A `.npy` file with the given header text (padded and newline-terminated) and data bytes.
func npyFile(header: String, data: [UInt8] = [], major: UInt8 = 1, pad: Bool = true) -> Data {
    var h = Array(header.utf8)
    let prefix = major == 1 ? 10 : 12
    if pad {
        let padding = 64 - (prefix + h.count + 1) % 64
        h += Array(repeating: UInt8(ascii: " "), count: padding) + [UInt8(ascii: "\n")]
    }
    var b = Bytes()
    b.raw([0x93] + Array("NUMPY".utf8))
    b.u8(major)
    b.u8(0)
    if major == 1 { b.u16(UInt16(h.count)) } else { b.u32(UInt32(h.count)) }
    b.raw(h)
    b.raw(data)
    return b.data
}

@Suite("NPY files")
struct NPYTests {
    static let npyDTypes: [DType] = DType.allCases.filter { $0 != .bfloat16 }
    static let shapes: [Shape] = [[], [1], [5], [2, 3], [2, 0, 3], [1, 1, 1, 1], [3, 1, 2, 2]]

    @Test("Every dtype and shape survives a round trip through bytes", arguments: npyDTypes, shapes)
    func roundTrip(dtype: DType, shape: Shape) throws {
        let a = sampleArray(dtype: dtype, shape: shape)
        let data = try a.npyData()
        #expect(data.count % 64 == a.byteCount % 64)  // the header is padded to a multiple of 64
        let b = try NDArray(npyData: data, source: "roundtrip.npy")
        #expect(identical(a, b))
    }

    @Test("Writing matches numpy byte for byte",
          arguments: [
              (NumpyWritten.f4x2x3, NDArray(shape: [2, 3], values: [-1, -0.5, 0, 0.5, 1, 1.5])),
              (NumpyWritten.i8Scalar, NDArray(shape: [], dtype: .int64, values: [-7])),
              (NumpyWritten.u1One, NDArray(shape: [1], dtype: .uint8, values: [255])),
              (NumpyWritten.f2Four, NDArray(shape: [4], dtype: .float16, values: [1, 65504, -2.5, 0])),
          ])
    func writesLikeNumpy(numpy: String, array: NDArray) throws {
        let expected = NumpyWritten.data(numpy)
        #expect(try array.npyData() == expected)
        #expect(identical(try NDArray(npyData: expected, source: "numpy.npy"), array))
    }

    @Test func readsFloat16BitPatterns() throws {
        let a = try NDArray(npyData: NumpyWritten.data(NumpyWritten.f2Four), source: "f2.npy")
        #expect(a.withUnsafeBufferPointer(as: UInt16.self) { Array($0) } == [0x3C00, 0x7BFF, 0xC100, 0x0000])
    }

    @Test func readsBigEndianBySwapping() throws {
        let a = try NDArray(npyData: NumpyWritten.data(NumpyWritten.f4BigEndian), source: "be.npy")
        #expect(a.dtype == .float32)
        #expect(a.shape == [3])
        #expect(a.floats() == [1.5, -2.0, 3.25])
        // Written back little-endian, with numpy's '<f4'.
        let again = try NDArray(npyData: a.npyData(), source: "le.npy")
        #expect(again.floats() == [1.5, -2.0, 3.25])
    }

    @Test("Big-endian multi-byte dtypes are swapped element by element",
          arguments: [("<i4", ">i4"), ("<i8", ">i8"), ("<f8", ">f8"), ("<f2", ">f2"), ("|u1", ">u1"), ("|i1", ">i1")])
    func bigEndianDTypes(little: String, big: String) throws {
        let (dtype, _) = try NPY.parseDescr(little, source: "t")
        let a = sampleArray(dtype: dtype, shape: [2, 3], seed: 5)
        var swapped: [UInt8] = []
        a.withUnsafeBytes { raw in
            for start in stride(from: 0, to: raw.count, by: dtype.byteSize) {
                swapped += raw[start..<(start + dtype.byteSize)].reversed()
            }
        }
        let file = npyFile(header: "{'descr': '\(big)', 'fortran_order': False, 'shape': (2, 3), }", data: swapped)
        #expect(identical(try NDArray(npyData: file, source: "be.npy"), a))
    }

    @Test("Versions 2.0 and 3.0 are read", arguments: [NumpyWritten.i4Version2, NumpyWritten.i4Version3])
    func laterVersions(numpy: String) throws {
        let a = try NDArray(npyData: NumpyWritten.data(numpy), source: "v.npy")
        #expect(a.dtype == .int32)
        #expect(a.doubles() == [0, 1, 2])
    }

    @Test func largeHeaderIsWrittenAsVersion2() throws {
        // 25000 axes of extent 1 make a header longer than 65535 bytes.
        let a = NDArray(shape: Shape(Array(repeating: 1, count: 25000)), values: [4.5])
        let data = try a.npyData()
        #expect(data[6] == 2)
        #expect(data.count % 64 == 4)
        let b = try NDArray(npyData: data, source: "big-header.npy")
        #expect(identical(a, b))
    }

    @Test("Header dicts written by other tools parse",
          arguments: [
              "{'descr': '<f4', 'fortran_order': False, 'shape': (2, 3)}",
              "{\"shape\": (2, 3), \"fortran_order\": False, \"descr\": \"<f4\"}",
              "{ 'descr' : '<f4' ,\n 'fortran_order' : False , 'shape' : ( 2 , 3 , ) , }",
              "{'descr': '<f4', 'fortran_order': False, 'shape': (2L, 3L), }",
              "{'descr':'<f4','fortran_order':False,'shape':(2,3),}",
          ])
    func headerVariants(header: String) throws {
        let values: [Float] = [1, 2, 3, 4, 5, 6]
        let bytes = values.withUnsafeBytes { Array($0) }
        let a = try NDArray(npyData: npyFile(header: header, data: bytes), source: "variant.npy")
        #expect(a.shape == [2, 3])
        #expect(a.floats() == values)
    }

    @Test func unpaddedHeaderIsRead() throws {
        let file = npyFile(header: "{'descr': '|u1', 'fortran_order': False, 'shape': (2,), }", data: [7, 9], pad: false)
        #expect(try NDArray(npyData: file, source: "unpadded.npy").doubles() == [7, 9])
    }

    @Test func fortranOrderIsRefusedFromTwoAxes() throws {
        let file = npyFile(header: "{'descr': '<f8', 'fortran_order': True, 'shape': (2, 3), }", data: Array(repeating: 0, count: 48))
        let error = kilnError { try NDArray(npyData: file, source: "fortran.npy") }
        #expect(error?.kind == "unsupportedFeature")
        #expect(error?.field == "'fortran_order'")
        #expect(error?.description.contains("fortran.npy") == true)
        // With one axis, both orders are the same layout.
        let oneAxis = npyFile(header: "{'descr': '|u1', 'fortran_order': True, 'shape': (3,), }", data: [1, 2, 3])
        #expect(try NDArray(npyData: oneAxis, source: "f1.npy").doubles() == [1, 2, 3])
    }

    @Test func bfloat16IsRefusedOnSave() throws {
        let a = NDArray(shape: [2], dtype: .bfloat16, values: [1, 2])
        let error = kilnError { try a.npyData() }
        #expect(error?.kind == "unsupportedFeature")
        #expect(error?.field == "'descr'")
        #expect(error?.description.contains("converted(to: .float32)") == true)
        #expect(try a.converted(to: .float32).npyData().count > 0)
    }

    @Test("Malformed or unsupported headers throw, naming the field",
          arguments: [
              ("{'descr': '<f4', 'fortran_order': False}", "'shape'", "malformedFile"),
              ("{'fortran_order': False, 'shape': (1,)}", "'descr'", "malformedFile"),
              ("{'descr': '<f4', 'shape': (1,)}", "'fortran_order'", "malformedFile"),
              ("{'descr': '<f4', 'fortran_order': False, 'shape': (1,), 'extra': 1}", "the header", "malformedFile"),
              ("{'descr': '<f4', 'fortran_order': False, 'shape': (-1,)}", "'shape'", "malformedFile"),
              ("{'descr': '<f4', 'fortran_order': False, 'shape': [1]}", "'shape'", "malformedFile"),
              ("{'descr': '<f4', 'fortran_order': False, 'shape': ('a',)}", "'shape'", "malformedFile"),
              ("{'descr': '<f4', 'fortran_order': 0, 'shape': (1,)}", "'fortran_order'", "malformedFile"),
              ("{'descr': 4, 'fortran_order': False, 'shape': (1,)}", "'descr'", "malformedFile"),
              ("{'descr': '<c8', 'fortran_order': False, 'shape': (1,)}", "'descr'", "unsupportedDType"),
              ("{'descr': '|b1', 'fortran_order': False, 'shape': (1,)}", "'descr'", "unsupportedDType"),
              ("{'descr': '<U3', 'fortran_order': False, 'shape': (1,)}", "'descr'", "unsupportedDType"),
              ("{'descr': '<i2', 'fortran_order': False, 'shape': (1,)}", "'descr'", "unsupportedDType"),
              ("{'descr': '|f4', 'fortran_order': False, 'shape': (1,)}", "'descr'", "malformedFile"),
              ("{'descr': [('a', '<f4')], 'fortran_order': False, 'shape': (1,)}", "'descr'", "unsupportedFeature"),
              ("{'descr': '<f4', 'fortran_order': False, 'shape': (1,)", "the header", "malformedFile"),
              ("{'descr': '<f4, 'fortran_order': False, 'shape': (1,)}", "the header", "malformedFile"),
              ("{'descr': '<f4', 'descr': '<f4', 'fortran_order': False, 'shape': (1,)}", "the header", "malformedFile"),
              ("{'descr': '<f4', 'fortran_order': False, 'shape': (99999999999999999999,)}", "the header", "malformedFile"),
              ("{'descr': '<f4', 'fortran_order': False, 'shape': (1,)} x", "the header", "malformedFile"),
              ("['descr', '<f4']", "the header", "malformedFile"),
              ("", "the header", "malformedFile"),
              ("{'descr': '<f4', 'fortran_order': False, 'shape': " + String(repeating: "(", count: 100), "the header", "malformedFile"),
          ])
    func badHeaders(header: String, field: String, kind: String) {
        let file = npyFile(header: header, data: [0, 0, 0, 0])
        let error = kilnError { try NDArray(npyData: file, source: "bad.npy") }
        #expect(error?.kind == kind, "\(String(describing: error))")
        #expect(error?.field == field, "\(String(describing: error))")
        #expect(error?.description.contains("bad.npy") == true)
    }

    @Test func wrongMagicAndVersion() {
        var valid = NumpyWritten.data(NumpyWritten.u1One)
        valid[1] = UInt8(ascii: "X")
        #expect(kilnError { try NDArray(npyData: valid, source: "m.npy") }?.field == "the magic string")
        var v4 = NumpyWritten.data(NumpyWritten.u1One)
        v4[6] = 4
        let error = kilnError { try NDArray(npyData: v4, source: "v4.npy") }
        #expect(error?.kind == "unsupportedFeature")
        #expect(error?.description.contains("found 4.0") == true)
    }

    @Test func hugeClaimsThrowBeforeAllocating() {
        // A shape of 2^62 x 2^62 float32 overflows; 2^40 elements is far more than the 4 bytes present.
        let overflow = npyFile(header: "{'descr': '<f4', 'fortran_order': False, 'shape': (4611686018427387904, 4611686018427387904), }", data: [0, 0, 0, 0])
        #expect(kilnError { try NDArray(npyData: overflow, source: "o.npy") }?.field == "'shape'")
        let big = npyFile(header: "{'descr': '<f4', 'fortran_order': False, 'shape': (1099511627776,), }", data: [0, 0, 0, 0])
        let error = kilnError { try NDArray(npyData: big, source: "big.npy") }
        #expect(error?.kind == "truncated")
        // A header length of 4 GiB in a tiny version-2 file.
        var b = Bytes()
        b.raw([0x93] + Array("NUMPY".utf8) + [2, 0])
        b.u32(0xFFFF_FFFF)
        b.text("{}")
        #expect(kilnError { try NDArray(npyData: b.data, source: "h.npy") }?.kind == "truncated")
    }

    /// Regression (found by the strengthened FuzzNPY check): a shape such as (0, 2^62, 2^62) holds no
    /// elements, so its byte count is 0, but `Shape.strides` overflowed and trapped on it.
    @Test func zeroLengthAxisBesideHugeOnesIsRefused() throws {
        let file = npyFile(header: "{'descr': '<f4', 'fortran_order': False, 'shape': (0, 4611686018427387904, 4611686018427387904), }")
        let error = kilnError { try NDArray(npyData: file, source: "zero-huge.npy") }
        #expect(error?.kind == "malformedFile")
        #expect(error?.field == "'shape'")
        // Zero-length axes beside ordinary ones still load, and their strides are computable.
        let ok = npyFile(header: "{'descr': '<f4', 'fortran_order': False, 'shape': (0, 1000000, 1000000), }")
        let a = try NDArray(npyData: ok, source: "zero.npy")
        #expect(a.elementCount == 0)
        #expect(a.shape.strides == [1_000_000_000_000, 1_000_000, 1])
    }

    @Test func trailingBytesAreRefused() {
        var data = NumpyWritten.data(NumpyWritten.u1One)
        data.append(0)
        let error = kilnError { try NDArray(npyData: data, source: "t.npy") }
        #expect(error?.field == "the end of the file")
    }

    @Test("Every truncation of a valid file throws", arguments: [NumpyWritten.f4x2x3, NumpyWritten.i8Scalar, NumpyWritten.i4Version3])
    func everyPrefixThrows(numpy: String) {
        let full = NumpyWritten.data(numpy)
        for length in 0..<full.count {
            let error = kilnError { try NDArray(npyData: full.prefix(length), source: "prefix.npy") }
            #expect(error != nil, "prefix of \(length) bytes")
        }
        #expect(kilnError { try NDArray(npyData: full, source: "full.npy") } == nil)
    }

    @Test func slicedDataIsRead() throws {
        // Data slices keep their parent's indices; the reader must not assume they start at 0.
        var padded = Data([1, 2, 3])
        padded.append(NumpyWritten.data(NumpyWritten.f4x2x3))
        let a = try NDArray(npyData: padded.dropFirst(3), source: "slice.npy")
        #expect(a.floats() == [-1, -0.5, 0, 0.5, 1, 1.5])
    }

    @Test func savesAndLoadsFiles() throws {
        let dir = try temporaryDirectory()
        defer { try? FileManager.default.removeItem(at: dir) }
        let a = sampleArray(dtype: .float64, shape: [3, 4])
        let path = dir.appendingPathComponent("a.npy").path
        try a.save(npyFile: path)
        #expect(identical(try NDArray.load(npyFile: path), a))
        #expect(identical(try NDArray.load(npyFile: URL(fileURLWithPath: path)), a))

        let missing = kilnError { try NDArray.load(npyFile: dir.appendingPathComponent("missing.npy").path) }
        #expect(missing?.kind == "fileUnreadable")
        let unwritable = kilnError { try a.save(npyFile: dir.appendingPathComponent("no/such/dir/a.npy").path) }
        #expect(unwritable?.kind == "fileUnwritable")
    }
}
