import KilnCore
import KilnGraph

// Reshape into FC: an FC with `flatten` already reads its data as (batch, everything else), so a
// Flatten (or a Reshape to (batch, rest)) in front of it, read by it alone, is dropped and the FC
// reads the 4-D tensor itself. Lowering then creates the inner product on the tensor in the layout
// its producer left it in, instead of reordering it to plain rows first.
//
// ```
// before:  pool2 (16,50,4,4) ──> flatten (16,800) ──> fc1        after:  pool2 (16,50,4,4) ──> fc1
// ```

/// Drops a flattening reshape in front of an FC with `flatten`.
public struct ReshapeIntoFC: EnginePass {
    public init() {}
    public var name: String { "reshape into FC" }

    public func apply(to ir: inout EngineIR) throws -> Int {
        var folded = 0
        for i in ir.ops.indices {
            guard case let .innerProduct(spec) = ir.ops[i].lowering, spec.flatten else { continue }
            let flat = ir.ops[i].inputs[0]
            guard let p = ir.producer(of: flat), ir.ops[p].lowering == .reshape, ir.ops[p].fusion == .injective,
                  ir.useCount(of: flat) == 1 else { continue }
            let source = ir.ops[p].inputs[0]
            let dims = ir.values[source].shape.dims
            // Only a flatten: (n, a, b, ...) -> (n, a*b*...), which the FC does by itself.
            guard dims.count > 2, ir.values[flat].shape.dims == [dims[0], dims.dropFirst().reduce(1, *)] else { continue }
            ir.ops[i].inputs[0] = source         // fc(flatten(x)) -> fc(x)
            ir.ops[i].fused.insert(ir.ops[p].name, at: 0)
            folded += 1
        }
        return folded
    }
}
