import Foundation
import KilnCore
import KilnGraph

// The optimizing passes in the order the engines run them, with the IR checker between them.
//
// ```
// graph ──build──> IR ─check─> identity removal ─check─> constant folding ─check─> BatchNorm folding
//       ─check─> hard-swish fusion ─check─> post-op fusion ─check─> reshape into FC ─check─> dead op elimination ─check─>
//       [fused head: cuda] ─check─> optimized IR (cached, lowered by the engine)
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
    /// The pass's name.
    public let name: String
    /// Ops before and after the pass.
    public let opsBefore: Int
    public let opsAfter: Int
    /// How many rewrites it made.
    public let rewrites: Int
    /// Time the pass and the IR check after it took.
    public let seconds: Double

    public var description: String {
        "\(name): \(rewrites) rewrites, \(opsBefore) -> \(opsAfter) ops, " + String(format: "%.2f ms", seconds * 1000)
    }

    public static func == (a: PassRecord, b: PassRecord) -> Bool {
        (a.name, a.opsBefore, a.opsAfter, a.rewrites) == (b.name, b.opsBefore, b.opsAfter, b.rewrites)
    }
}

/// An engine's pass pipeline: the passes in order and the engine's fusion policy, which post-op
/// fusion decides with and the IR checker verifies after every pass.
public struct EnginePipeline: Sendable {
    public let passes: [any EnginePass]
    public let policy: FusionPolicy

    public init(passes: [any EnginePass], policy: FusionPolicy) {
        self.passes = passes
        self.policy = policy
    }

    /// The passes every engine runs, in order. Identities go first so that a Dropout between a conv
    /// and its BatchNorm does not block folding; dead ops follow reshape into FC (the flatten it
    /// bypassed). `head` passes (the cuda engine's fused head) run last, on that clean graph.
    public static func standard(policy: FusionPolicy, head: [any EnginePass] = []) -> EnginePipeline {
        EnginePipeline(passes: [IdentityRemoval(), ConstantFolding(), BatchNormFolding(), HardSwishFusion(), PostOpFusion(policy: policy), ReshapeIntoFC(),
                                DeadOpElimination()] + head,
                       policy: policy)
    }

    /// The optimized IR of a graph for the engine whose table is `capabilities`: built, run through
    /// these passes (checked after each) and compacted; with what each pass did.
    public func optimize(_ graph: Graph, shapes: InferredShapes, types: InferredTypes, constants: [String: NDArray],
                         capabilities: EngineCapabilities) throws -> (ir: EngineIR, passes: [PassRecord]) {
        var ir = try EngineIR(graph: graph, shapes: shapes, types: types, constants: constants, capabilities: capabilities)
        let passes = try run(&ir)
        return (ir.compacted(), passes)
    }

    /// Runs the passes on `ir`, checking the IR before and after each; returns what each did.
    public func run(_ ir: inout EngineIR) throws -> [PassRecord] {
        try ir.check(after: "build", policy: policy)
        var records: [PassRecord] = []
        let clock = ContinuousClock()
        for pass in passes {
            let before = ir.ops.count
            let start = clock.now
            let rewrites = try pass.apply(to: &ir)
            try ir.check(after: pass.name, policy: policy)
            let d = (clock.now - start).components
            records.append(PassRecord(name: pass.name, opsBefore: before, opsAfter: ir.ops.count, rewrites: rewrites,
                                      seconds: Double(d.seconds) + Double(d.attoseconds) * 1e-18))
        }
        return records
    }
}
