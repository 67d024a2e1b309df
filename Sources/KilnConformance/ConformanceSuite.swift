// The conformance suite: every golden MXNet case on every backend that claims its op, one rule for
// all of them (the analogue of ggml's test-backend-ops).
//
//   golden case ──split──> constants (weight inputs) + inputs
//        │
//        ├─ backend.runs(on: context)?                     no  -> not claimed
//        ├─ backend.support(node) for every op node?       no  -> not claimed (with the reasons)
//        ├─ backend.compile(whole graph) ; run(inputs)     throws -> failed
//        └─ outputs against MXNet's, 1e-4 of the scale     off -> failed, else passed
//
// A claimed case is compiled whole, so an engine that claims it runs the case's graph as one
// compiled group with nothing left to the framework. A node an op-by-op GPU backend would run on the
// CPU is one its `support` refuses (CUDABackend's placements read the same answer), so a fallback to
// another device reads as "not claimed", never as a pass.
import KilnCore
import KilnGraph
import KilnRuntime

/// What one golden case gave on one backend.
public enum ConformanceOutcome: Sendable, Equatable, CustomStringConvertible {
    /// Every output within the tolerance; the largest difference relative to its output's scale
    /// (`max(1, max |expected|)`).
    case passed(maxDifference: Double)
    /// The backend claimed the case and got it wrong or threw; why, in a sentence.
    case failed(String)
    /// The backend does not claim the case (it refuses a node, or does not run on the context).
    case notClaimed(String)

    public var isPassed: Bool { if case .passed = self { return true } else { return false } }
    public var isFailed: Bool { if case .failed = self { return true } else { return false } }
    public var isNotClaimed: Bool { if case .notClaimed = self { return true } else { return false } }

    public var description: String {
        switch self {
        case let .passed(d): return "ok (max |diff| \(d) of the scale)"
        case let .failed(reason): return "FAIL: \(reason)"
        case let .notClaimed(reason): return "not claimed: \(reason)"
        }
    }
}

/// A backend as the suite runs it: a name for reports, the context it is bound with, the ops its
/// table claims and whether it trains.
public struct ConformanceBackend: Sendable, CustomStringConvertible {
    /// `"reference"`, `"framework"`, `"cpu engine"`, `"gpu framework"`, `"cuda engine fp32"`.
    public let name: String
    public let backend: any Backend
    public let context: Context
    /// The canonical names of the ops the backend's table has an entry for; nil when the table is not
    /// visible from here.
    public let tableOps: [String]?
    /// Whether the backend runs training steps (the gradient cases run on it).
    public let trains: Bool

    public init(name: String, backend: any Backend, context: Context = .cpu, tableOps: [String]?, trains: Bool = false) {
        self.name = name
        self.backend = backend
        self.context = context
        self.tableOps = tableOps
        self.trains = trains
    }

    public var description: String { name }
}

/// The golden cases and the rule that runs one on a backend.
///
/// ```
/// let suite = try ConformanceSuite(fixtures: .package)
/// let outcome = suite.run(try suite.fixtures.opCase("Pooling_max_2x2_s2"), on: OpByOpBackend.framework)
/// ```
public struct ConformanceSuite: Sendable {
    /// Outputs: within 1e-4 of `max(1, max |expected|)` (float32 against MXNet's float32 on the CPU).
    public static let outputTolerance = 1e-4
    /// Gradients: within 1e-3 of the scale (a backward sums many products in another order).
    public static let gradientTolerance = 1e-3

    public let fixtures: GoldenFixtures
    /// The per-op cases, in the index's order.
    public let cases: [GoldenFixtures.OpCaseEntry]

    /// Reads the fixtures' index; throws, naming the file, when it is missing.
    public init(fixtures: GoldenFixtures = .package) throws {
        self.fixtures = fixtures
        cases = try fixtures.opCaseEntries()
    }

    /// Runs one case on a backend bound with `context` (inference).
    public func run(_ c: GoldenCase, on backend: any Backend, context: Context = .cpu) -> ConformanceOutcome {
        guard backend.runs(on: context) else { return .notClaimed("\(backend.name) does not run on \(context)") }
        let prepared: PreparedCase
        do { prepared = try PreparedCase(c) } catch { return .failed("the case does not bind: \(error)") }
        let refusals = prepared.refusals(by: backend)
        guard refusals.isEmpty else { return .notClaimed(refusals.map(\.description).joined(separator: "; ")) }
        let outputs: [NDArray]
        do {
            let compiled = try backend.compile(prepared.graph, shapes: prepared.shapes, types: prepared.types, constants: prepared.constants)
            outputs = try compiled.run(prepared.inputs, isTrain: false)
        } catch {
            return .failed("claimed, but \(error)")
        }
        return Self.compare(outputs, c.outputs, tolerance: Self.outputTolerance)
    }

    /// Runs one case on one of the suite's backends.
    public func run(_ c: GoldenCase, on b: ConformanceBackend) -> ConformanceOutcome { run(c, on: b.backend, context: b.context) }

    /// Outputs against MXNet's: the same count, dtypes and shapes, each within `tolerance` of its scale.
    static func compare(_ outputs: [NDArray], _ expected: [NDArray], tolerance: Double) -> ConformanceOutcome {
        guard outputs.count == expected.count else {
            return .failed("\(outputs.count) outputs, MXNet has \(expected.count)")
        }
        var worst = 0.0
        for (i, (out, want)) in zip(outputs, expected).enumerated() {
            guard out.dtype == want.dtype else { return .failed("output \(i) has dtype \(out.dtype), MXNet's \(want.dtype)") }
            let c = Closeness(out, want)
            guard c.shapesMatch else { return .failed("output \(i) has shape \(out.shape), MXNet's \(want.shape)") }
            guard c.within(tolerance) else { return .failed("output \(i): \(c) exceeds \(tolerance)") }
            worst = max(worst, c.maxAbsDifference / c.scale)
        }
        return .passed(maxDifference: worst)
    }
}

/// A case ready to compile: its graph, inferred shapes and types, the values of its weight inputs as
/// constants (as a model's weights are at bind) and the other variables as inputs.
public struct PreparedCase: Sendable {
    public let graph: Graph
    public let shapes: InferredShapes
    public let types: InferredTypes
    public let constants: [String: NDArray]
    public let inputs: [String: NDArray]

    /// One op node a backend refuses, with its reason.
    public struct Refusal: Sendable, CustomStringConvertible {
        public let node: String
        public let op: String
        public let support: Support

        public var reason: String { support.text }
        public var description: String { "\(op) '\(node)': \(reason)" }
    }

    public init(_ c: GoldenCase) throws {
        graph = c.symbol.graph
        let all = c.arguments.merging(c.auxiliaryStates) { a, _ in a }
        var weightVariables = Set<String>()
        for (i, n) in graph.nodes.enumerated() where !n.isVariable {
            guard let d = try graph.definition(of: i) else { continue }
            for k in d.weightInputs(try graph.resolvedAttributes(of: i)) where k < n.inputs.count {
                weightVariables.insert(graph.nodes[n.inputs[k].node].name)
            }
        }
        shapes = try graph.inferShapes(all.mapValues(\.shape))
        types = try graph.inferTypes(all.mapValues(\.dtype))
        constants = all.filter { weightVariables.contains($0.key) }
        inputs = all.filter { !weightVariables.contains($0.key) }
    }

    /// The op nodes the backend refuses, in graph order (empty when it supports them all).
    public func refusals(by backend: any Backend) -> [Refusal] {
        let known = Set(constants.keys), read = graph.readOutputs
        return graph.nodes.indices.compactMap { i -> Refusal? in
            let n = graph.nodes[i]
            guard !n.isVariable else { return nil }
            let s = backend.support(SupportQuery(graph: graph, node: i, shapes: shapes, types: types, constants: known, outputsRead: read[i]))
            return s.isSupported ? nil : Refusal(node: n.name, op: n.op, support: s)
        }
    }
}
