import Foundation
import TestSupport

/// The fixtures of `tools/golden/make_golden_train.py` (real MXNet 1.9.1), under `golden/train/`.
enum TrainGolden {
    /// The decoded JSON of `golden/train/NAME.json`.
    static func load(_ name: String) throws -> [String: Any] {
        let data = try Data(contentsOf: Fixtures.url("golden/train/\(name).json"))
        guard let object = try JSONSerialization.jsonObject(with: data) as? [String: Any] else {
            throw GoldenError("golden/train/\(name).json is not a JSON object")
        }
        return object
    }

    /// The `cases` array of a fixture.
    static func cases(_ name: String) throws -> [[String: Any]] {
        guard let cases = try load(name)["cases"] as? [[String: Any]] else { throw GoldenError("golden/train/\(name).json has no cases") }
        return cases
    }

    struct GoldenError: Error, CustomStringConvertible {
        let description: String
        init(_ d: String) { description = d }
    }
}

/// JSON numbers as Double.
func doubles(_ any: Any?) -> [Double] { (any as? [Any])?.compactMap { ($0 as? NSNumber)?.doubleValue } ?? [] }
func floats(_ any: Any?) -> [Float] { doubles(any).map(Float.init) }
func ints(_ any: Any?) -> [Int] { (any as? [Any])?.compactMap { ($0 as? NSNumber)?.intValue } ?? [] }
func number(_ any: Any?) -> Double? { (any as? NSNumber)?.doubleValue }
