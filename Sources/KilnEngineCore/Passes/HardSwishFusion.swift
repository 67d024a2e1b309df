import KilnCore

// Hard-swish fusion: MobileNet v3 writes hard-swish as `x * hard_sigmoid(x)`, with hard-sigmoid a
// chain of scalar ops around a clip (GluonCV: `clip(x + 3, 0, 6) / 6`). Left alone, that is four
// passes over memory and, because `x` is read twice, nothing fuses into the convolution before it.
// This pass finds a product of a value and an eltwise chain of that same value, composes the chain's
// `linear` steps around its one `clip`, and where the composition is hard-sigmoid (0 up to x = -3,
// then slope 1/6, 1 from x = 3) replaces the product by one `hard_swish` eltwise, which post-op
// fusion then puts into the op that computed `x`. It reads lowering kinds only, never op names, so
// `clip(x / 6 + 0.5, 0, 1)` matches too.
//
// ```
// before:  conv ──> x ──> linear(1, 3) ──> clip(0, 6) ──> linear(1/6, 0) ──> h ──> multiply ──> y
//                   └──────────────────────────────────────────────────────────────┘
// after:   conv ──> x ──> eltwise(hard_swish) ──> y     (then: conv [eltwise(hard_swish)] ──> y)
// ```

/// Replaces `x * hard_sigmoid(x)` by one hard-swish eltwise (see the file's note).
public struct HardSwishFusion: EnginePass {
    public init() {}
    public var name: String { "hard-swish fusion" }

    /// The longest eltwise chain looked at: hard-sigmoid needs three steps; a few more allow
    /// exporters that split the line into a multiply and an add.
    static let longestChain = 6

    public func apply(to ir: inout EngineIR) throws -> Int {
        var rewrites = 0
        var i = 0
        while i < ir.ops.count {
            let op = ir.ops[i]
            if case let .binary(spec) = op.lowering, spec.operation == .multiply, op.postOps.isEmpty, op.inputs.count == 2,
               let (x, chain) = Self.match(ir, product: i) {
                var fused = op
                fused.lowering = .eltwise(EltwiseSpec(algorithm: .hardSwish))
                fused.inputs = [x]
                fused.fused = chain.sorted().map { ir.ops[$0].name } + op.fused
                ir.ops[i] = fused
                for c in chain.sorted(by: >) { ir.ops.remove(at: c) }
                i -= chain.count
                rewrites += 1
            }
            i += 1
        }
        return rewrites
    }

    /// For the product at `product`: the value `x` and the indices of the chain computing
    /// hard-sigmoid of `x` from the other operand back, when one operand is such a chain of the
    /// other, each step read only by the next and none a group output.
    static func match(_ ir: EngineIR, product: Int) -> (x: Int, chain: [Int])? {
        let op = ir.ops[product]
        for k in 0..<2 {
            let x = op.inputs[1 - k]
            guard ir.values[x].shape == ir.values[op.output].shape else { continue }
            var v = op.inputs[k], chain: [Int] = [], steps: [EltwiseSpec] = []
            while v != x, chain.count < longestChain {
                guard let p = ir.producer(of: v, before: product), case let .eltwise(e) = ir.ops[p].lowering,
                      ir.ops[p].postOps.isEmpty, !ir.isOutput(v), ir.useCount(of: v) == 1 else { break }
                steps.insert(e, at: 0)
                chain.append(p)
                v = ir.ops[p].inputs[0]
            }
            if v == x, !chain.isEmpty, isHardSigmoid(steps) { return (x, chain) }
        }
        return nil
    }

    /// Whether `steps` compute min(max(x + 3, 0), 6) / 6: `linear` steps around exactly one `clip`,
    /// composed as `c·clip(a·x + b, lo, hi) + d`, with its corners at x = ∓3 and its levels 0 and 1.
    public static func isHardSigmoid(_ steps: [EltwiseSpec]) -> Bool {
        var a = 1.0, b = 0.0, c = 1.0, d = 0.0
        var bounds: (lo: Double, hi: Double)?
        for s in steps {
            switch s.algorithm {
            case .linear:
                let (alpha, beta) = (Double(s.alpha), Double(s.beta))
                if bounds == nil { (a, b) = (alpha * a, alpha * b + beta) } else { (c, d) = (alpha * c, alpha * d + beta) }
            case .clip:
                guard bounds == nil else { return false }
                bounds = (Double(s.alpha), Double(s.beta))
            default:
                return false
            }
        }
        guard let (lo, hi) = bounds, a > 0, hi > lo else { return false }
        let close = { (u: Double, v: Double) in abs(u - v) <= 1e-5 * max(1, abs(v)) }
        return close((lo - b) / a, -3) && close((hi - b) / a, 3) && close(c * lo + d, 0) && close(c * hi + d, 1)
    }
}
