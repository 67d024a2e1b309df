@_exported import KilnConformance

// The golden cases' loaders live in KilnConformance (the conformance suite and `kiln gpu-check` read
// them too); these are the tests' short names for the package's own fixtures. A missing index reads
// as no cases, which the conformance suite's index tests report as a failure of their own.

/// The per-op cases of `Tests/Fixtures/golden/ops`.
public enum Golden {
    /// Names of all per-op cases, in the index's order.
    public static let opCaseNames: [String] = (try? GoldenFixtures.package.opCaseNames()) ?? []

    /// Names of the cases of some ops.
    public static func caseNames(ops: Set<String>) -> [String] { (try? GoldenFixtures.package.opCaseNames(ops: ops)) ?? [] }

    /// Loads one case.
    public static func opCase(_ name: String) throws -> GoldenCase { try GoldenFixtures.package.opCase(name) }
}

/// The training-step cases of `Tests/Fixtures/golden/grads`.
public enum GoldenGradients {
    /// Names of the one-op cases in the index's order, then the models (`models/lenet`, ...).
    public static let caseNames: [String] = (try? GoldenFixtures.package.gradientCaseNames()) ?? []

    /// Loads one case (`"Convolution_2d_k3"`, `"models/lenet"`).
    public static func load(_ name: String) throws -> GoldenGradientCase { try GoldenFixtures.package.gradientCase(name) }
}
