import KilnCore

/// Maps each element of a broadcast result to the element of one operand that feeds it.
///
/// The operand's shape is aligned with the output's at the last axis (NumPy rules); along axes where
/// the operand has extent 1 (or no axis at all) its stride is 0, so every output position along that
/// axis reads the same element:
/// ```
/// out (2, 3, 4)   operand (3, 1)  ->  operand strides aligned to out: (0, 1, 0)
/// ```
struct BroadcastMap: Sendable {
    let outputDims: [Int]
    /// The operand's stride along each output axis, 0 where it is broadcast.
    let strides: [Int]

    init(operand: Shape, output: Shape) {
        let lead = output.rank - operand.rank
        let own = operand.strides
        outputDims = output.dims
        strides = (0..<output.rank).map { k in
            k < lead || operand[k - lead] == 1 ? 0 : own[k - lead]
        }
    }

    /// The operand's flat index feeding output element `flat`.
    func offset(ofOutput flat: Int) -> Int {
        var rest = flat, offset = 0
        for k in stride(from: outputDims.count - 1, through: 0, by: -1) {
            let d = outputDims[k]
            offset += (rest % d) * strides[k]
            rest /= d
        }
        return offset
    }
}

extension Shape {
    /// The shape padded with leading 1s to `rank` axes.
    func padded(toRank rank: Int) -> Shape {
        Shape([Int](repeating: 1, count: Swift.max(0, rank - self.rank)) + dims)
    }
}

/// A reproducible seed for a node's random stream: FNV-1a of its name, so two binds of one graph draw
/// the same numbers and two nodes draw different ones.
func randomSeed(forNode name: String) -> UInt64 {
    var h: UInt64 = 0xCBF2_9CE4_8422_2325
    for b in name.utf8 {
        h ^= UInt64(b)
        h = h &* 0x0000_0100_0000_01B3
    }
    return h
}
