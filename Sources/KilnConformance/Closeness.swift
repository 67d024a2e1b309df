import KilnCore

/// How close two arrays are, measured the one way all Kiln tests use: the largest absolute difference
/// against a scale of `max(1, max |expected|)`.
public struct Closeness: CustomStringConvertible, Sendable {
    public let maxAbsDifference: Double
    public let scale: Double
    public let shapesMatch: Bool

    public init(_ actual: NDArray, _ expected: NDArray) {
        shapesMatch = actual.shape == expected.shape
        scale = max(1, expected.maxAbs())
        maxAbsDifference = shapesMatch ? ((try? actual.maxAbsDifference(expected)) ?? .infinity) : .infinity
    }

    /// Whether the difference is within `relative` of the scale (NaN never is).
    public func within(_ relative: Double) -> Bool {
        shapesMatch && !maxAbsDifference.isNaN && maxAbsDifference <= relative * scale
    }

    public var description: String {
        shapesMatch ? "max |diff| \(maxAbsDifference) against scale \(scale)" : "shapes differ"
    }
}
