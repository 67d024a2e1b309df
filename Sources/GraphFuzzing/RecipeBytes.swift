import KilnCore

/// The fuzzer's bytes read as a stream of small decisions. Past the end every read is 0, so that any
/// input, the empty one included, is a complete recipe: the fuzzer's mutations change decisions
/// instead of making most inputs unreadable.
public struct RecipeBytes {
    private let bytes: [UInt8]
    private var position = 0

    public init<Bytes: Sequence>(_ bytes: Bytes) where Bytes.Element == UInt8 {
        self.bytes = Array(bytes)
    }

    /// Whether every byte has been read; loops that build nodes stop here.
    public var isExhausted: Bool { position >= bytes.count }

    /// The next byte, 0 past the end.
    public mutating func byte() -> UInt8 {
        guard position < bytes.count else { return 0 }
        defer { position += 1 }
        return bytes[position]
    }

    /// A number in 0..<count from one byte, or two when count is above 256 (0 when count is 0).
    public mutating func below(_ count: Int) -> Int {
        guard count > 1 else { return 0 }
        let raw = count > 256 ? Int(byte()) << 8 | Int(byte()) : Int(byte())
        return raw % count
    }

    /// True for about `percent` in 100 byte values; false past the end, so that an exhausted recipe
    /// takes every default instead of every option.
    public mutating func chance(_ percent: Int) -> Bool { Int(byte()) * 100 >= (100 - percent) * 256 }

    /// One of `choices`, by the next byte.
    public mutating func pick<T>(_ choices: [T]) -> T { choices[below(choices.count)] }
}

/// A seeded stand-in for the fuzzer's bytes in unit tests (KilnCore's SplitMix64), so that a seed
/// names one recipe on every machine.
public struct SeededBytes: RandomNumberGenerator {
    private var generator: SplitMix64

    public init(seed: UInt64) { generator = SplitMix64(seed: seed) }

    public mutating func next() -> UInt64 { generator.next() }

    /// `count` bytes of the stream.
    public mutating func bytes(_ count: Int) -> [UInt8] {
        (0..<count).map { _ in UInt8(truncatingIfNeeded: next()) }
    }
}
