import Kiln
import TestSupport
import Testing

/// The analogue of ggml's op-count static_assert: nothing is registered without a reference kernel
/// and a golden case, no backend's table names an op the registry does not know, and every op a
/// backend's table claims passed golden cases on it.
@Suite struct CompletenessTests {
    /// Registered ops with no golden case (and no reference kernel), each with why. Keep it short.
    static let exceptions: [String: String] = [
        EngineSubgraph.opName: "Kiln's own engine node (a group an engine compiled); MXNet has no such op, its kernel is "
            + "made per bind by KilnPartition, and the partitioner's tests run it",
    ]

    static var registered: [String] { OpRegistry.shared.definitions.map(\.name) }

    @Test func everyRegisteredOpHasAReferenceKernel() {
        let missing = Self.registered.filter { Self.exceptions[$0] == nil && ReferenceKernels.table.factory(for: $0) == nil }
        #expect(missing.isEmpty, "no reference kernel for \(missing): add one (docs/ADDING_AN_OP.md, step 2)")
    }

    @Test func everyRegisteredOpHasAGoldenCase() throws {
        let golden = Set(try #require(Suite.suite).cases.map(\.op))
        let missing = Self.registered.filter { Self.exceptions[$0] == nil && !golden.contains($0) }
        #expect(missing.isEmpty, "no golden case for \(missing): add one to tools/golden/make_golden.py (docs/ADDING_AN_OP.md, step 3)")
    }

    @Test func everyExceptionIsStillOne() throws {
        let golden = Set(try #require(Suite.suite).cases.map(\.op))
        for op in Self.exceptions.keys {
            #expect(OpRegistry.shared.lookup(op) != nil, "\(op) is no longer registered: drop its exception")
            #expect(!golden.contains(op), "\(op) has a golden case now: drop its exception")
        }
    }

    /// Each backend's table by name: its keys as the table stores them.
    static let tables: [(String, [String])] = [
        ("reference", ReferenceKernels.table.factories.keys.sorted()),
        ("framework", FrameworkKernels.table.factories.keys.sorted()),
        ("cpu engine", CPUCapabilities.table.opNames),
        ("gpu framework", CUDABackend.kernelOpNames),
        ("cuda engine", CUDAEngine.table.opNames),
    ]

    /// A table key must be an op's canonical name: a kernel table finds an alias key only under that
    /// alias, and an unregistered key is an op no graph can reach.
    @Test(arguments: tables.map(\.0))
    func everyTableKeyIsARegisteredOpName(table: String) throws {
        let keys = try #require(Self.tables.first { $0.0 == table }).1
        #expect(!keys.isEmpty)
        for key in keys {
            let canonical = OpRegistry.shared.lookup(key)?.name
            #expect(canonical == key, "\(table)'s table has \(key), which is \(canonical.map { "an alias of \($0)" } ?? "not a registered op")")
        }
    }

    static func expectEveryClaimedOpPassed(_ backends: [ConformanceBackend]) throws {
        let report = try #require(Suite.suite).report(on: backends)
        for b in backends {
            let counts = report.counts(backend: b.name)
            let passed = report.passedCases(backend: b.name)
            print("conformance: \(b.name): \(counts); passed cases per op: "
                  + passed.sorted { $0.key < $1.key }.map { "\($0.key) \($0.value)" }.joined(separator: ", "))
            #expect(counts.failed == 0, "\(b.name): \(counts)")
            let unproven = try #require(report.claimedOpsWithoutPassedCases(backend: b.name), "\(b.name)'s table is not visible")
            #expect(unproven.isEmpty, "\(b.name) claims \(unproven) but no golden case of them passed on it: add a case it runs")
        }
        print("conformance: " + report.summary.replacingOccurrences(of: "\n", with: "\nconformance: "))
    }

    @Test func everyOpACPUBackendClaimsPassedItsGoldenCases() throws {
        try Self.expectEveryClaimedOpPassed(ConformanceBackend.cpu)
    }

    @Test(.enabled(if: Suite.hasGPU, "no GPU here: run `kiln gpu-check` on the device"))
    func everyOpAGPUBackendClaimsPassedItsGoldenCases() throws {
        try Self.expectEveryClaimedOpPassed(Suite.gpu)
    }
}
