import KilnCore
import KilnGraph
import KilnRuntime
import TestSupport
import Testing

/// Every per-op golden case of real MXNet 1.9.1, run by the reference kernels and by the framework
/// kernels: one conformance suite for all ops and backends.
@Suite struct GoldenConformanceTests {
    static let backends: [OpByOpBackend] = [.reference, .framework]

    @Test func indexIsPresent() {
        #expect(Golden.opCaseNames.count > 150, "the golden index lists \(Golden.opCaseNames.count) cases")
    }

    @Test(arguments: Golden.opCaseNames, [0, 1])
    func opMatchesMXNet(caseName: String, backendIndex: Int) throws {
        let backend = Self.backends[backendIndex]
        let c = try Golden.opCase(caseName)
        let shared = c.arguments.merging(c.auxiliaryStates) { a, _ in a }
        let exec = try c.symbol.bind(shapes: c.arguments.mapValues(\.shape), types: c.arguments.mapValues(\.dtype),
                                           sharedBuffer: shared, backend: backend)
        try exec.forward()
        #expect(exec.outputs.count == c.outputs.count)
        for (i, (out, expected)) in zip(exec.outputs, c.outputs).enumerated() {
            #expect(out.dtype == expected.dtype, "\(caseName) output \(i) dtype")
            expectClose(out, expected, relative: 1e-4, "\(caseName) [\(backend.name)] output \(i)")
        }
    }
}
