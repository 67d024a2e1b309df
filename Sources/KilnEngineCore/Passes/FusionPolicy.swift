import KilnCore

// What an engine's kernels can fuse: which ops take which post-ops. Post-op fusion reads it to
// decide, and the IR checker reads it to verify, so an engine never receives a fused op its
// lowering cannot run. The decision itself (which op absorbs which) is the passes' alone.
//
// ```
// cpu  (oneDNN post-ops):     conv, FC   <- [sum] then any eltwise, in any number
// cuda (generated epilogues): conv, FC   <- [sum] then one activation
//                             BatchNorm, add <- one activation
// ```

/// Which post-ops an engine's ops take (see the file's note).
public struct FusionPolicy: Sendable {
    /// Whether an op of `kind` that already carries `postOps` may take `next` after them.
    public let accepts: @Sendable (_ kind: LoweringKind, _ postOps: [EngineIR.PostOp], _ next: EngineIR.PostOp) -> Bool

    public init(accepts: @escaping @Sendable (_ kind: LoweringKind, _ postOps: [EngineIR.PostOp], _ next: EngineIR.PostOp) -> Bool) {
        self.accepts = accepts
    }

    /// Whether an op of `kind` may carry `postOps`, each accepted after those before it.
    public func allows(_ kind: LoweringKind, _ postOps: [EngineIR.PostOp]) -> Bool {
        postOps.indices.allSatisfy { accepts(kind, Array(postOps[..<$0]), postOps[$0]) }
    }

    /// Takes no post-ops at all (an engine that fuses nothing).
    public static let none = FusionPolicy { _, _, _ in false }
}
