import KilnCore
import KilnEngineCore
import KilnGraph
import KilnRuntime

// The cpu engine's ONE capability table: the engine core's shared rules (EngineRules) for the ops
// this engine lowers to oneDNN 2.6 primitives, with what oneDNN cannot do refused here. The entry's
// support rule and its lowering are the same function, so `CPUEngine.support` and `compile` cannot
// disagree: a node the engine accepts always has a lowering.
//
// ```
// Convolution(kernel (3,3), weight constant)  -> lower(.convolution(...))
// Activation(act_type=softsign)               -> "attribute act_type=softsign (oneDNN has no such eltwise function) is not supported"
// SoftmaxActivation                           -> "op SoftmaxActivation is not supported"
// ```

/// The cpu engine's capability table.
public enum CPUCapabilities {
    /// The table with the shared checks (float32, only the first output read).
    public static let capabilities = EngineCapabilities(engine: "cpu", lowerings: [
        "Convolution": EngineRules.convolution,
        "Deconvolution": EngineRules.deconvolution,
        "FullyConnected": EngineRules.fullyConnected,
        "BatchNorm": EngineRules.batchNorm,
        "Activation": EngineRules.activation.refusing { f, kind in
            guard case let .eltwise(e) = kind, e.algorithm.dnnl == nil else { return nil }
            return f.refuse("act_type", "oneDNN has no such eltwise function")
        },
        "LeakyReLU": EngineRules.leakyReLU,
        "elemwise_add": EngineRules.add,
        "Pooling": EngineRules.pooling,
        "Flatten": EngineRules.reshape,
        "Reshape": EngineRules.reshape,
        "Dropout": EngineRules.dropout,
        "_copy": EngineRules.identity,
        "Concat": EngineRules.concat,
        "softmax": EngineRules.softmax,
        "clip": EngineRules.clip,
        "relu": EngineRules.activationOp(.relu),
        "sigmoid": EngineRules.activationOp(.sigmoid),
        "tanh": EngineRules.activationOp(.tanh),
        "exp": EngineRules.exp,
        "_plus_scalar": EngineRules.scalarLinear { s in (1, s) },
        "_minus_scalar": EngineRules.scalarLinear { s in (1, -s) },
        "_rminus_scalar": EngineRules.scalarLinear { s in (-1, s) },
        "_mul_scalar": EngineRules.scalarLinear { s in (s, 0) },
        "_div_scalar": EngineRules.scalarLinear { s in (1 / s, 0) },
        "elemwise_mul": EngineRules.binary(.multiply),
        "broadcast_mul": EngineRules.binary(.multiply),
        "broadcast_add": EngineRules.binary(.add),
        "expand_dims": EngineRules.reshape,
        "SoftmaxOutput": EngineRules.softmaxOutput,
    ])

    /// What oneDNN primitives fuse: conv, deconv and FC take a `sum` first, then any eltwise oneDNN has.
    public static let fusion = FusionPolicy { kind, postOps, next in
        guard kind.takesPostOps else { return false }
        switch next {
        case .sum: return postOps.isEmpty
        case let .eltwise(e): return e.algorithm.dnnl != nil
        }
    }

    /// The cpu engine's passes: the engine core's standard pipeline with oneDNN's fusion.
    public static let pipeline = EnginePipeline.standard(policy: fusion)

    /// Ops with an entry (canonical MXNet names); a node of another op is never supported.
    public static var supportedOps: Set<String> { capabilities.supportedOps }

    /// The table (``EngineCapabilities/table``).
    public static var table: CapabilityTable<EngineLowering> { capabilities.table }

    /// The verdict for the node a query asks about (``EngineCapabilities/verdict(_:)``).
    public static func verdict(_ query: SupportQuery) -> Verdict { capabilities.verdict(query) }
}
