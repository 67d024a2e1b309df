import KilnCore
import KilnEngine
import KilnEngineCore
import KilnGraph
import KilnRuntime
import TestSupport
import Testing

/// Every golden per-op case of an op in the engine's capability table: when the engine supports the
/// node (its weights given as constants), the compiled plan must reproduce MXNet's output; when it
/// does not, the reason must say why. This is where "anything supported can be lowered" is checked
/// over many attribute values.
@Suite struct EngineConformanceTests {
    static let cases = Golden.caseNames(ops: CPUCapabilities.supportedOps)

    /// The case's variables split into constants (those feeding a weight input) and inputs.
    static func split(_ c: GoldenCase) throws -> (graph: Graph, constants: [String: NDArray], inputs: [String: NDArray]) {
        let graph = c.symbol.graph
        var weightVariables = Set<String>()
        for (i, n) in graph.nodes.enumerated() where !n.isVariable {
            guard let d = try graph.definition(of: i) else { continue }
            for k in d.weightInputs(try graph.resolvedAttributes(of: i)) where k < n.inputs.count {
                weightVariables.insert(graph.nodes[n.inputs[k].node].name)
            }
        }
        let all = c.arguments.merging(c.auxiliaryStates) { a, _ in a }
        return (graph, all.filter { weightVariables.contains($0.key) }, all.filter { !weightVariables.contains($0.key) })
    }

    /// The reasons the engine gives for the nodes of a case it does not support (empty when it does).
    static func refusals(_ c: GoldenCase) throws -> [SupportReason] {
        let (graph, constants, _) = try split(c)
        let shapes = try graph.inferShapes(c.arguments.merging(c.auxiliaryStates) { a, _ in a }.mapValues(\.shape))
        let types = try graph.inferTypes(c.arguments.mapValues(\.dtype))
        return graph.nodes.indices.compactMap { i in
            let s = CPUEngine().support(SupportQuery(graph: graph, node: i, shapes: shapes, types: types, constants: Set(constants.keys)))
            if case let .unsupported(reason) = s { return reason }
            return nil
        }
    }

    @Test func mostCasesAreSupported() throws {
        var supported = 0
        var reasons: [SupportReason] = []
        for name in Self.cases {
            let r = try Self.refusals(try Golden.opCase(name))
            if r.isEmpty { supported += 1 } else { reasons += r }
        }
        #expect(Self.cases.count > 60, "\(Self.cases.count) golden cases of engine ops")
        #expect(supported >= 60, "\(supported) of \(Self.cases.count) cases supported; refused: \(reasons)")
        // Every refusal here is about an attribute value (named with its value), the data's rank or
        // operands that do not broadcast one onto the other.
        for r in reasons {
            switch r {
            case let .unsupportedAttribute(a): #expect(a.contains("="), "\(r)")
            case let .other(text): #expect(text.contains("data of shape") || text.contains("operands of shapes"), "\(r)")
            default: Issue.record("unexpected kind of reason: \(r)")
            }
        }
    }

    @Test(arguments: cases)
    func supportedCaseMatchesMXNet(caseName: String) throws {
        let c = try Golden.opCase(caseName)
        let (graph, constants, inputs) = try Self.split(c)
        let shapes = try graph.inferShapes(c.arguments.merging(c.auxiliaryStates) { a, _ in a }.mapValues(\.shape))
        let types = try graph.inferTypes(c.arguments.mapValues(\.dtype))
        let engine = CPUEngine()
        let refused = try Self.refusals(c)
        guard refused.isEmpty else {
            // Not supported: the reason names the op and what is not supported, and compiling refuses too.
            #expect(refused.allSatisfy { !$0.text.isEmpty })
            #expect(throws: EngineCoreError.self) { try engine.compile(graph, shapes: shapes, types: types, constants: constants) }
            return
        }
        let plan = try engine.compilePlan(graph, shapes: shapes, types: types, constants: constants)
        let outputs = try plan.run(inputs, isTrain: false)
        // The engine computes visible first outputs only; MXNet's cases may list hidden ones after them.
        for (i, (out, expected)) in zip(outputs, c.outputs).enumerated() {
            expectClose(out, expected, relative: 1e-4, "\(caseName) [engine] output \(i)")
        }
    }
}
