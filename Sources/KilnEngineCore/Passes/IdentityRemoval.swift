import KilnCore

// Identity removal: ops whose lowering is `identity` (Dropout in inference, `_copy`) are dropped and
// their readers read the op's input directly.
//
// ```
// before:  conv0 ──> dropout0 ──> bn0          after:  conv0 ──> bn0
//                         └─────> (output)                 └───> (output)
// ```

/// Removes ops lowered as identities (read from the capability table's lowering kind).
public struct IdentityRemoval: EnginePass {
    public init() {}
    public var name: String { "identity removal" }

    public func apply(to ir: inout EngineIR) throws -> Int {
        var removed = 0
        var i = 0
        while i < ir.ops.count {
            let op = ir.ops[i]
            guard op.lowering == .identity, op.postOps.isEmpty, let source = op.inputs.first else { i += 1; continue }
            ir.ops.remove(at: i)
            ir.replaceUses(of: op.output, with: source)   // y = x: readers of y read x
            removed += 1
        }
        return removed
    }
}
