import KilnCore

// The optimizing passes in the order the engine runs them, with the IR checker between them.
//
// ```
// graph ──build──> IR ─check─> identity removal ─check─> constant folding ─check─> BatchNorm folding
//       ─check─> post-op fusion ─check─> dead op elimination ─check─> optimized IR (cached, lowered)
// ```

/// A rewrite of the engine's IR. Each lives in its own file, which opens with a before/after picture.
public protocol EnginePass: Sendable {
    /// A short name for reports and errors.
    var name: String { get }
    /// Rewrites `ir`; returns how many rewrites it made (0 when nothing matched).
    func apply(to ir: inout EngineIR) throws -> Int
}

/// What one pass did, for reports and tests.
public struct PassRecord: Sendable, Equatable, CustomStringConvertible {
    public let name: String
    public let opsBefore: Int
    public let opsAfter: Int
    public let rewrites: Int

    public var description: String { "\(name): \(rewrites) rewrites, \(opsBefore) -> \(opsAfter) ops" }
}

/// The engine's pass pipeline.
public enum EnginePipeline {
    /// The passes, in order. Identities go first so that a Dropout between a conv and its BatchNorm
    /// does not block folding; dead ops go last.
    public static let passes: [any EnginePass] = [
        IdentityRemoval(), ConstantFolding(), BatchNormFolding(), PostOpFusion(), DeadOpElimination(),
    ]

    /// Runs `passes` on `ir`, checking the IR before and after each; returns what each did.
    public static func run(_ ir: inout EngineIR, passes: [any EnginePass] = EnginePipeline.passes) throws -> [PassRecord] {
        try ir.check(after: "build")
        var records: [PassRecord] = []
        for pass in passes {
            let before = ir.ops.count
            let rewrites = try pass.apply(to: &ir)
            try ir.check(after: pass.name)
            records.append(PassRecord(name: pass.name, opsBefore: before, opsAfter: ir.ops.count, rewrites: rewrites))
        }
        return records
    }
}
