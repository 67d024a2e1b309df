import Testing
import KilnCore

/// Summaries tell NaN and infinity apart from small values: NaN weights gave NaN outputs that
/// `kiln run` reported as `max |x| 0`.
@Suite struct NDArraySummaryTests {
    @Test func maxAbsIsNaNWhenAnElementIs() {
        #expect(NDArray(shape: [3], values: [1, .nan, -2]).maxAbs().isNaN)
        #expect(NDArray(shape: [3], values: [.nan, .nan, .nan]).maxAbs().isNaN)
        #expect(NDArray(shape: [3], values: [1, -5, 2]).maxAbs() == 5)
        #expect(NDArray(shape: [2], values: [1, -.infinity]).maxAbs() == .infinity)
    }

    @Test func nonFiniteElementsAreCounted() {
        let c = NDArray(shape: [5], values: [.nan, .infinity, -.infinity, 0, .nan]).nonFiniteCounts()
        #expect(c.nan == 2 && c.infinite == 2)
        #expect(NDArray(shape: [2], values: [1, 2]).nonFiniteCounts() == (0, 0))
    }
}
