import Testing
@testable import KilnCore

@Suite("float16 and bfloat16 conversions")
struct HalfPrecisionTests {
    /// Hand-worked float32 -> float16 cases. Half has 10 mantissa bits, exponent bias 15; the smallest
    /// subnormal is 2^-24 and the largest finite value 65504 = 0x7BFF.
    static let toHalf: [(Float, UInt16)] = [
        (1.0, 0x3C00),
        (-2.5, 0xC100),                      // -1.25 * 2^1: sign, exponent 16, mantissa 0x100
        (65504, 0x7BFF),                     // largest finite
        (65519, 0x7BFF),                     // just under the halfway point to 65536: rounds down
        (65520, 0x7C00),                     // halfway to 65536, tie to even (0x7BFF is odd): infinity
        (1e6, 0x7C00),                       // overflow
        (-.infinity, 0xFC00),
        (0.1, 0x2E66),
        (-0.0, 0x8000),
        (1e-8, 0x0000),                      // under half the smallest subnormal: zero
        (0x1p-24, 0x0001),                   // smallest subnormal
        (0x1p-25, 0x0000),                   // exactly half of it: tie to even gives zero
        (0x1.8p-24, 0x0002),                 // 1.5 subnormal units: tie to even gives 2
        (0x1.8p-25, 0x0001),                 // 0.75 units: rounds up
        (0x1p-14, 0x0400),                   // smallest normal
        (0x1.ff8p-15, 0x03FF),               // largest subnormal, 1023 * 2^-24
        (0x1.ffcp-15, 0x0400),               // halfway to the smallest normal: tie to even, up
        (0x1.ffap-15, 0x03FF),               // under halfway: down
        (1 + 0x1p-11, 0x3C00),               // halfway between 1 and 1 + 2^-10: tie to even, down
        (1 + 0x1.8p-10, 0x3C02),             // halfway between 0x3C01 and 0x3C02: tie to even, up
        (1 + 0x1.1p-11, 0x3C01),             // just over halfway: up
        (2049, 0x6800),                      // 2048 and 2050 are neighbours: tie to even 2048
        (2051, 0x6802),                      // tie to even 2052
    ]

    @Test("float32 to float16", arguments: toHalf)
    func floatToHalf(value: Float, bits: UInt16) {
        #expect(floatToHalfBits(value) == bits, "\(value)")
    }

    @Test("float16 to float32 inverts exact cases", arguments: toHalf.filter { Float(bitPattern: halfToFloatBits($0.1)) == $0.0 })
    func halfToFloat(value: Float, bits: UInt16) {
        #expect(Float(bitPattern: halfToFloatBits(bits)).bitPattern == value.bitPattern)
    }

    @Test func halfNaNStaysNaN() {
        for nan in [Float.nan, -Float.nan, Float(bitPattern: 0x7F80_0001), Float.signalingNaN] {
            let h = floatToHalfBits(nan)
            #expect(h & 0x7C00 == 0x7C00 && h & 0x03FF != 0, "\(nan.bitPattern)")
            #expect(Float(bitPattern: halfToFloatBits(h)).isNaN)
        }
        #expect(Float(bitPattern: halfToFloatBits(0x7E00)).isNaN)
        #expect(Float(bitPattern: halfToFloatBits(0xFC00)) == -.infinity)
        #expect(Float(bitPattern: halfToFloatBits(0x0001)) == 0x1p-24)
        #expect(Float(bitPattern: halfToFloatBits(0x7BFF)) == 65504)
    }

    #if !((os(macOS) || targetEnvironment(macCatalyst)) && arch(x86_64))
    @Test func agreesWithFloat16EverywhereForHalfToFloat() {
        var mismatches = 0
        for bits in 0...UInt16.max {
            let reference = Float(Float16(bitPattern: bits))
            let got = Float(bitPattern: halfToFloatBits(bits))
            if reference.isNaN ? !got.isNaN : reference.bitPattern != got.bitPattern { mismatches += 1 }
        }
        #expect(mismatches == 0)
    }

    @Test func agreesWithFloat16OnSampledFloats() {
        var mismatches = 0
        var rng = SplitMix64(seed: 7)
        for _ in 0..<200_000 {
            let f = Float(bitPattern: UInt32(truncatingIfNeeded: rng.next()))
            if f.isNaN { continue }
            if Float16(f).bitPattern != floatToHalfBits(f) { mismatches += 1 }
        }
        #expect(mismatches == 0)
    }
    #endif

    /// Hand-worked float32 -> bfloat16 cases: bfloat16 is the top 16 bits of a float32, rounded to nearest even.
    static let toBFloat: [(Float, UInt16)] = [
        (1.0, 0x3F80),
        (-2.5, 0xC020),
        (1 + 0x1p-8, 0x3F80),                // halfway: tie to even, down
        (1 + 0x1.8p-7, 0x3F82),              // halfway between 0x3F81 and 0x3F82: tie to even, up
        (1 + 0x1.2p-8, 0x3F81),              // just over halfway: up
        (.greatestFiniteMagnitude, 0x7F80),  // rounds past the largest bfloat16: infinity
        (-.infinity, 0xFF80),
        (0x1p-133, 0x0001),                  // subnormals keep their top bits
    ]

    @Test("float32 to bfloat16", arguments: toBFloat)
    func floatToBFloat(value: Float, bits: UInt16) {
        #expect(floatToBFloat16Bits(value) == bits, "\(value)")
    }

    @Test func bfloat16NaNStaysNaN() {
        let b = floatToBFloat16Bits(Float(bitPattern: 0x7F80_0001))  // payload only in the dropped bits
        #expect(b & 0x7F80 == 0x7F80 && b & 0x7F != 0)
    }

    @Test("NDArray elements go through these conversions", arguments: [DType.float16, .bfloat16])
    func ndarrayElements(dtype: DType) {
        var a = NDArray(zeros: [3], dtype: dtype)
        a[flat: 0] = -2.5
        a[flat: 1] = 1
        a[flat: 2] = .infinity
        let bits = a.withUnsafeBufferPointer(as: UInt16.self) { Array($0) }
        #expect(bits == (dtype == .float16 ? [0xC100, 0x3C00, 0x7C00] : [0xC020, 0x3F80, 0x7F80]))
        #expect(a.floats() == [-2.5, 1, .infinity])
        #expect(NDArray(shape: [2], values: [65504, 0.1]).converted(to: .float16)
                    .withUnsafeBufferPointer(as: UInt16.self) { Array($0) } == [0x7BFF, 0x2E66])
    }
}
