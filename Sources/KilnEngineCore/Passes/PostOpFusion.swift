import KilnCore
import KilnGraph

// Post-op fusion: elementwise work after an op runs inside that op's kernel (oneDNN post-ops, the
// cuda engine's epilogues), while the result is still in registers, instead of as separate passes
// over memory. Which ops take which post-ops is the engine's FusionPolicy; the decisions are here.
//
// - an op lowered as `eltwise` (Activation, LeakyReLU) whose input an op alone reads becomes an
//   `eltwise` post-op of that op, when the policy accepts it;
// - an `add` one of whose operands an op without post-ops alone reads becomes a `sum` post-op:
//   the op's destination starts as the other operand and the op adds onto it. The fused op moves
//   to the add's place, where both operands exist.
//
// ```
// before:  x ──> conv1 ──> add ──> relu ──> y          after:  x ──> conv1 [sum(s), eltwise(relu)] ──> y
//          s ──────────────┘                                    s ───────┘
// ```
//
// The conv's bias is already fused (its bias input); BatchNorm folding runs first, so ResNet's
// conv-bn-add-relu becomes one primitive.

/// Fuses eltwise ops and residual adds into the op before them, as the engine's policy allows.
public struct PostOpFusion: EnginePass {
    /// Which ops take which post-ops.
    public let policy: FusionPolicy

    public init(policy: FusionPolicy) { self.policy = policy }
    public var name: String { "post-op fusion" }

    public func apply(to ir: inout EngineIR) throws -> Int {
        var fused = 0
        var i = 0
        while i < ir.ops.count {
            let op = ir.ops[i]
            switch op.lowering {
            case let .eltwise(spec):
                if let p = fusableProducer(ir, value: op.inputs[0], reader: i, taking: .eltwise(spec)) {
                    ir.ops[p].postOps.append(.eltwise(spec))     // f(conv(x)) -> conv(x) [eltwise f]
                    ir.ops[p].output = op.output
                    ir.ops[p].fused.append(op.name)
                    ir.ops.remove(at: i)
                    fused += 1
                    continue
                }
            case .add:
                // Prefer the operand computed last: the other one is then ready, whichever it is.
                let candidates = op.inputs.indices.compactMap { k -> (k: Int, p: Int)? in
                    guard op.inputs[0] != op.inputs[1],
                          let p = fusableProducer(ir, value: op.inputs[k], reader: i, taking: .sum(op.inputs[1 - k])) else { return nil }
                    return (k, p)
                }
                if let (k, p) = candidates.max(by: { $0.p < $1.p }) {
                    var conv = ir.ops[p]
                    conv.postOps.append(.sum(op.inputs[1 - k]))   // conv(x) + s -> conv(x) [sum s]
                    conv.output = op.output
                    conv.fused.append(op.name)
                    ir.ops[i] = conv
                    ir.ops.remove(at: p)
                    fused += 1
                    continue
                }
            default:
                break
            }
            i += 1
        }
        return fused
    }

    /// The index of the op writing `value` if `next` can be appended to its post-ops: `value` read
    /// once and not a group output, the policy accepting `next` after the op's post-ops, and (for a
    /// `sum`) no post-ops yet, since the sum must come before any eltwise.
    /// The policy is asked before the (whole-IR) use count, so that ops that take no post-ops cost
    /// nothing more.
    func fusableProducer(_ ir: EngineIR, value: Int, reader: Int, taking next: EngineIR.PostOp) -> Int? {
        guard let p = ir.producer(of: value, before: reader) else { return nil }
        let op = ir.ops[p]
        if case .sum = next, !op.postOps.isEmpty { return nil }
        guard policy.accepts(op.lowering, op.postOps, next), ir.useCount(of: value) == 1 else { return nil }
        return p
    }
}
