import KilnCore
import KilnGraph

// The fused head: a network's global average pooling followed by the dense layer that alone reads
// it becomes one op, so an engine can run it as one kernel (the cuda engine: one block per image
// sums the channels in shared memory and multiplies by the weights) instead of pooling, a
// conversion and a GEMM. It applies when the dense layer's result leaves the group, as a ResNet's
// logits do, and its post-ops are among the activations the engine's head kernel applies.
//
//     y[n, j] = act(b[j] + sum_c w[j, c] * mean_hw x[n, c, h, w])
//
// ```
// before:  x (16,64,8,8) ──> pool (global avg) ──> fc (10) [relu?] ──> (output)
// after:   x (16,64,8,8) ──> pool+fc: average_pooling+inner_product ──> (output)
// ```
//
// It runs after reshape into FC and dead op elimination, which have dropped the Flatten between the two.

/// Fuses global average pooling and the dense layer after it (see the file's note).
public struct HeadFusion: EnginePass {
    /// The post-op activations the engine's head kernel applies.
    public let activations: Set<EltwiseSpec.Algorithm>

    public init(activations: Set<EltwiseSpec.Algorithm>) { self.activations = activations }
    public var name: String { "fused head" }

    public func apply(to ir: inout EngineIR) throws -> Int {
        var fused = 0
        var i = 0
        while i < ir.ops.count {
            guard case let .innerProduct(fc) = ir.ops[i].lowering, let p = pooling(ir, feeding: i) else { i += 1; continue }
            var head = ir.ops[i]
            let pool = ir.ops[p]
            head.lowering = .averagePoolingDense(fc)      // fc(mean_hw(x)) -> head(x)
            head.inputs[0] = pool.inputs[0]
            head.fused.insert(pool.name, at: 0)
            ir.ops[i] = head
            ir.ops.remove(at: p)
            fused += 1
        }
        return fused
    }

    /// The index of the average pooling over the whole image that the FC at `fc` alone reads, when
    /// the pair is a head: the FC flattens, its output is a group output nothing else reads, and its
    /// post-ops are activations the kernel applies.
    func pooling(_ ir: EngineIR, feeding fc: Int) -> Int? {
        let op = ir.ops[fc]
        guard case let .innerProduct(spec) = op.lowering, spec.flatten,
              ir.isOutput(op.output), ir.useCount(of: op.output) == 1,
              op.postOps.allSatisfy({ if case let .eltwise(e) = $0 { return activations.contains(e.algorithm) && e.alpha == 0 } else { return false } }),
              op.postOps.count <= 1 else { return nil }
        let pooled = op.inputs[0]
        guard let p = ir.producer(of: pooled), ir.useCount(of: pooled) == 1, !ir.isOutput(pooled),
              case let .pooling(pool) = ir.ops[p].lowering, ir.ops[p].postOps.isEmpty,
              pool.algorithm != .max else { return nil }
        let x = ir.values[ir.ops[p].inputs[0]].shape
        guard x.rank == 4, pool.globalPool || (pool.kernel == [x[2], x[3]] && pool.pad.allSatisfy { $0 == 0 }),
              ir.values[op.inputs[1]].shape.elementCount == spec.numHidden * x[1] else { return nil }
        return p
    }
}
