// A fast 128-bit hash of bulk bytes (weights, a cache file's contents), 32 bytes per step in four
// 64-bit lanes with xxHash64's round and merge. Not cryptographic: it detects corruption and tells
// weights apart; the cache key itself is SHA-256 over these digests and the graph's description.
//
// ```
// lanes a b c d  <- 32 bytes per step: lane = rotl(lane + word * P2, 31) * P1
// tail            <- 8, 4 and 1 byte steps
// digest          = (merge(a, b, c, d) with one seed, merge with another), each avalanched
// ```

/// A fast non-cryptographic 128-bit hash of bytes (see the file's note).
public enum Hash128 {
    private static let p1: UInt64 = 0x9E37_79B1_85EB_CA87
    private static let p2: UInt64 = 0xC2B2_AE3D_27D4_EB4F
    private static let p3: UInt64 = 0x1656_67B1_9E37_79F9
    private static let p4: UInt64 = 0x85EB_CA77_C2B2_AE63
    private static let p5: UInt64 = 0x27D4_EB2F_1656_67C5

    @inline(__always) private static func rotl(_ x: UInt64, _ r: UInt64) -> UInt64 { (x << r) | (x >> (64 - r)) }
    @inline(__always) private static func round(_ acc: UInt64, _ input: UInt64) -> UInt64 { rotl(acc &+ input &* p2, 31) &* p1 }
    @inline(__always) private static func merge(_ acc: UInt64, _ lane: UInt64) -> UInt64 { (acc ^ round(0, lane)) &* p1 &+ p4 }

    private static func avalanche(_ h0: UInt64) -> UInt64 {
        var h = h0
        h ^= h >> 33; h = h &* p2
        h ^= h >> 29; h = h &* p3
        h ^= h >> 32
        return h
    }

    /// The 16-byte digest of `bytes`.
    public static func hash(_ bytes: UnsafeRawBufferPointer, seed: UInt64 = 0) -> [UInt8] {
        let n = bytes.count
        var a = seed &+ p1 &+ p2, b = seed &+ p2, c = seed, d = seed &- p1
        var i = 0
        if let base = bytes.baseAddress {
            while i + 32 <= n {
                a = round(a, UInt64(littleEndian: base.loadUnaligned(fromByteOffset: i, as: UInt64.self)))
                b = round(b, UInt64(littleEndian: base.loadUnaligned(fromByteOffset: i + 8, as: UInt64.self)))
                c = round(c, UInt64(littleEndian: base.loadUnaligned(fromByteOffset: i + 16, as: UInt64.self)))
                d = round(d, UInt64(littleEndian: base.loadUnaligned(fromByteOffset: i + 24, as: UInt64.self)))
                i += 32
            }
        }
        func finish(_ start: UInt64) -> UInt64 {
            var h = rotl(a, 1) &+ rotl(b, 7) &+ rotl(c, 12) &+ rotl(d, 18)
            h = merge(merge(merge(merge(h ^ start, a), b), c), d) &+ UInt64(n)
            var j = i
            if let base = bytes.baseAddress {
                while j + 8 <= n {
                    h ^= round(0, UInt64(littleEndian: base.loadUnaligned(fromByteOffset: j, as: UInt64.self)))
                    h = rotl(h, 27) &* p1 &+ p4
                    j += 8
                }
                if j + 4 <= n {
                    h ^= UInt64(UInt32(littleEndian: base.loadUnaligned(fromByteOffset: j, as: UInt32.self))) &* p1
                    h = rotl(h, 23) &* p2 &+ p3
                    j += 4
                }
                while j < n {
                    h ^= UInt64(base.load(fromByteOffset: j, as: UInt8.self)) &* p5
                    h = rotl(h, 11) &* p1
                    j += 1
                }
            }
            return avalanche(h)
        }
        let lo = finish(p5), hi = finish(p3 ^ 0x5bd1_e995)
        var out: [UInt8] = []
        out.reserveCapacity(16)
        for w in [lo, hi] { for k in 0..<8 { out.append(UInt8(truncatingIfNeeded: w >> (UInt64(k) * 8))) } }
        return out
    }
}
