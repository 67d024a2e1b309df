import KilnCore

/// The whole suite on some backends: one row per (case, backend), and the counts the completeness
/// checks read (`kiln gpu-check` prints them; the tests check them).
public struct ConformanceReport: Sendable {
    public struct Row: Sendable {
        public let caseName: String
        public let op: String
        public let backend: String
        public let outcome: ConformanceOutcome
    }

    /// The counts of one backend.
    public struct Counts: Sendable, Equatable, CustomStringConvertible {
        public var passed = 0, failed = 0, notClaimed = 0

        public init(passed: Int = 0, failed: Int = 0, notClaimed: Int = 0) {
            self.passed = passed
            self.failed = failed
            self.notClaimed = notClaimed
        }

        public var description: String { "\(passed) passed, \(failed) failed, \(notClaimed) not claimed" }
    }

    public private(set) var rows: [Row] = []
    /// The backends, in the order they ran, with the ops their tables claim.
    public let backends: [(name: String, tableOps: [String]?)]

    public init(backends: [ConformanceBackend]) { self.backends = backends.map { ($0.name, $0.tableOps) } }

    public mutating func append(_ row: Row) { rows.append(row) }

    /// Passed, failed and not-claimed cases of one backend.
    public func counts(backend: String) -> Counts {
        var c = Counts()
        for r in rows where r.backend == backend {
            switch r.outcome {
            case .passed: c.passed += 1
            case .failed: c.failed += 1
            case .notClaimed: c.notClaimed += 1
            }
        }
        return c
    }

    /// How many golden cases of each op passed on one backend (ops with none are absent).
    public func passedCases(backend: String) -> [String: Int] {
        var counts: [String: Int] = [:]
        for r in rows where r.backend == backend && r.outcome.isPassed { counts[r.op, default: 0] += 1 }
        return counts
    }

    /// (op, backend) pairs with at least one passed case: the suite's coverage.
    public var opBackendPairs: Int { backends.map { passedCases(backend: $0.name).count }.reduce(0, +) }

    /// The ops a backend's table claims whose golden cases never passed on it (none ran, or all were
    /// refused or failed); nil when the table is not visible.
    public func claimedOpsWithoutPassedCases(backend: String) -> [String]? {
        guard let table = backends.first(where: { $0.name == backend })?.tableOps else { return nil }
        let passed = passedCases(backend: backend)
        return table.filter { passed[$0] == nil }
    }

    /// One line per backend and one for the coverage.
    public var summary: String {
        var lines = backends.map { b -> String in
            let passed = passedCases(backend: b.name)
            return "\(b.name): \(counts(backend: b.name)); \(passed.count) ops with a passed case" +
                (b.tableOps.map { " of the \($0.count) its table claims" } ?? " (its table is not visible here)")
        }
        let ops = Set(rows.map(\.op)).count
        lines.append("\(ops) ops x \(backends.count) backends: \(opBackendPairs) (op, backend) pairs with a passed case")
        return lines.joined(separator: "\n")
    }
}

extension ConformanceSuite {
    /// Every case on every backend, loading each case once; `progress` sees each row as it is made.
    /// A case that does not load is a failure on every backend.
    public func report(on backends: [ConformanceBackend], progress: (ConformanceReport.Row) -> Void = { _ in }) -> ConformanceReport {
        var report = ConformanceReport(backends: backends)
        for entry in cases {
            let loaded = Result { try fixtures.opCase(entry.case) }
            for b in backends {
                let outcome: ConformanceOutcome
                switch loaded {
                case let .success(c): outcome = run(c, on: b)
                case let .failure(error): outcome = .failed("the case does not load: \(error)")
                }
                let row = ConformanceReport.Row(caseName: entry.case, op: entry.op, backend: b.name, outcome: outcome)
                report.append(row)
                progress(row)
            }
        }
        return report
    }
}
