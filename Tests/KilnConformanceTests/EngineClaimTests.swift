import Kiln
import TestSupport
import Testing

/// What the cpu engine refuses, and that its refusals are honest: most golden cases of its ops are
/// claimed, every refusal names an attribute value or the data's shape, and what it refuses it also
/// refuses to compile. (That what it claims it runs right is ``ConformanceTests``.)
@Suite struct EngineClaimTests {
    static let cases = Suite.suite?.cases.filter { CPUCapabilities.supportedOps.contains($0.op) }.map(\.case) ?? []

    static func refusals(_ name: String) throws -> (PreparedCase, [PreparedCase.Refusal]) {
        let prepared = try PreparedCase(try Suite.load(name))
        return (prepared, prepared.refusals(by: CPUEngine()))
    }

    @Test func mostCasesAreClaimed() throws {
        var claimed = 0
        var refused: [PreparedCase.Refusal] = []
        for name in Self.cases {
            let r = try Self.refusals(name).1
            if r.isEmpty { claimed += 1 } else { refused += r }
        }
        #expect(Self.cases.count > 60, "\(Self.cases.count) golden cases of engine ops")
        #expect(claimed >= 60, "\(claimed) of \(Self.cases.count) cases claimed; refused: \(refused)")
        // Every refusal here is about an attribute value (named with its value), the data's rank or
        // operands that do not broadcast one onto the other.
        for r in refused {
            switch r.support.reason {
            case let .unsupportedAttribute(a)?: #expect(a.contains("="), "\(r)")
            case let .other(text)?: #expect(text.contains("data of shape") || text.contains("operands of shapes"), "\(r)")
            default: Issue.record("unexpected kind of reason: \(r)")
            }
        }
    }

    @Test(arguments: cases)
    func whatItRefusesItDoesNotCompile(caseName: String) throws {
        let (p, refused) = try Self.refusals(caseName)
        guard !refused.isEmpty else { return }
        #expect(refused.allSatisfy { !$0.reason.isEmpty })
        #expect(throws: EngineCoreError.self) { try CPUEngine().compile(p.graph, shapes: p.shapes, types: p.types, constants: p.constants) }
    }
}
