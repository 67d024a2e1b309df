/// IEEE half and bfloat16 conversions done on bit patterns, so they behave the same on every platform.

/// float32 -> float16 bits, round to nearest even; overflow gives infinity, NaN stays NaN.
public func floatToHalfBits(_ f: Float) -> UInt16 {
    let x = f.bitPattern
    let sign = UInt16((x >> 16) & 0x8000)
    let exp = Int((x >> 23) & 0xFF)
    var mant = x & 0x7F_FFFF
    if exp == 0xFF { return sign | 0x7C00 | (mant != 0 ? 0x200 : 0) }
    let e = exp - 127 + 15
    if e >= 0x1F { return sign | 0x7C00 }
    if e <= 0 {
        if e < -10 { return sign }
        mant |= 0x80_0000
        let shift = UInt32(14 - e)
        var h = mant >> shift
        let rem = mant & ((1 << shift) - 1)
        let half = UInt32(1) << (shift - 1)
        if rem > half || (rem == half && (h & 1) == 1) { h += 1 }
        return sign | UInt16(h)
    }
    let h = UInt32(e << 10) + 0 | (mant >> 13)
    let rem = mant & 0x1FFF
    let up: UInt32 = rem > 0x1000 || (rem == 0x1000 && (h & 1) == 1) ? 1 : 0
    return sign | UInt16(truncatingIfNeeded: h + up)
}

/// float16 bits -> float32 bits.
public func halfToFloatBits(_ h: UInt16) -> UInt32 {
    let sign = UInt32(h & 0x8000) << 16
    let exp = Int((h >> 10) & 0x1F)
    var mant = UInt32(h & 0x3FF)
    if exp == 0x1F { return sign | 0x7F80_0000 | (mant << 13) }
    if exp == 0 {
        if mant == 0 { return sign }
        var e = -14
        while mant & 0x400 == 0 { mant <<= 1; e -= 1 }
        mant &= 0x3FF
        return sign | UInt32(e + 127) << 23 | (mant << 13)
    }
    return sign | UInt32(exp - 15 + 127) << 23 | (mant << 13)
}

/// float32 -> bfloat16 bits, round to nearest even; NaN stays NaN.
public func floatToBFloat16Bits(_ f: Float) -> UInt16 {
    let x = f.bitPattern
    if f.isNaN { return UInt16(x >> 16) | 0x40 }
    let rounding = UInt32(0x7FFF) + ((x >> 16) & 1)
    return UInt16((x &+ rounding) >> 16)
}
