import KilnConformance
import KilnCore
import Testing

/// Expects `actual` to match `expected` within `relative` of `max(1, max |expected|)`.
public func expectClose(_ actual: NDArray, _ expected: NDArray, relative: Double = 1e-4, _ what: String = "",
                        sourceLocation: SourceLocation = #_sourceLocation) {
    let c = Closeness(actual, expected)
    #expect(actual.shape == expected.shape, "\(what): shape \(actual.shape) vs expected \(expected.shape)", sourceLocation: sourceLocation)
    #expect(c.within(relative), "\(what): \(c) exceeds \(relative)", sourceLocation: sourceLocation)
}
