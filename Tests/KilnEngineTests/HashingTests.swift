import KilnEngine
import KilnEngineCore
import Testing

@Suite struct HashingTests {
    /// FIPS 180-4 test vectors.
    @Test func sha256KnownVectors() {
        func hex(_ s: String) -> String { var h = SHA256(); h.update(s); return h.hexDigest }
        #expect(hex("") == "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855")
        #expect(hex("abc") == "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad")
        #expect(hex("abcdbcdecdefdefgefghfghighijhijkijkljklmklmnlmnomnopnopq") == "248d6a61d20638b8e5c026930c3e6039a33ce45964ff2167f6ecedd419db06c1")
        var million = SHA256()
        let chunk = [UInt8](repeating: UInt8(ascii: "a"), count: 1000)
        for _ in 0..<1000 { million.update(chunk) }
        #expect(million.hexDigest == "cdc76e5c9914fb9281a1c7e284d73e67f1809a48a497200e046d39ccc7112cd0")
    }

    /// Updates in pieces of any size give the digest of the whole.
    @Test func sha256IsIncremental() {
        let bytes = (0..<1000).map { UInt8(truncatingIfNeeded: $0 &* 31 &+ 7) }
        var whole = SHA256()
        whole.update(bytes)
        for split in [1, 63, 64, 65, 127, 500] {
            var h = SHA256()
            h.update(Array(bytes[..<split]))
            h.update(Array(bytes[split...]))
            #expect(h.digest == whole.digest, "split at \(split)")
        }
    }

    @Test func hash128TellsBytesApart() {
        let base = (0..<4099).map { UInt8(truncatingIfNeeded: $0 &* 13) }
        let h = base.withUnsafeBytes { Hash128.hash($0) }
        #expect(h.count == 16)
        #expect(base.withUnsafeBytes { Hash128.hash($0) } == h)
        // Any one flipped bit, anywhere (full 32-byte steps and every tail length), changes the digest.
        for i in [0, 31, 32, 4095, 4096, 4098] {
            var changed = base
            changed[i] ^= 1
            #expect(changed.withUnsafeBytes { Hash128.hash($0) } != h, "byte \(i)")
        }
        #expect(Array(base.dropLast()).withUnsafeBytes { Hash128.hash($0) } != h)
    }
}
