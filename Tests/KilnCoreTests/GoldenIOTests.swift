import Foundation
import Testing
import TestSupport
@testable import KilnCore

/// The expectations written beside the golden `.npy` and `.params` files by the MXNet 1.9.1 / numpy
/// 1.23.5 generator (see `Tests/Fixtures/golden/README.md`).
enum GoldenIO {
    struct ArrayCase: Decodable {
        var dtype: String
        var shape: [Int]
        var values: [Double]
        var descr: String?
        var expect_error: Bool?
    }

    struct ParamsCase: Decodable {
        var format: String
        var order: [String]?
        var arrays: Arrays

        enum Arrays: Decodable {
            case dict([String: ArrayCase])
            case list([ArrayCase])
            init(from decoder: Decoder) throws {
                let c = try decoder.singleValueContainer()
                if let d = try? c.decode([String: ArrayCase].self) { self = .dict(d) } else { self = .list(try c.decode([ArrayCase].self)) }
            }
        }

        /// (name, expectation) in file order; names are nil for a list.
        var ordered: [(String?, ArrayCase)] {
            switch arrays {
            case .list(let l): return l.map { (nil, $0) }
            case .dict(let d): return (order ?? d.keys.sorted()).compactMap { k in d[k].map { (k, $0) } }
            }
        }
    }

    static func npyCases() -> [String: ArrayCase] {
        guard let data = try? Data(contentsOf: Fixtures.url("golden/io/npy/values.json")),
              let cases = try? JSONDecoder().decode([String: ArrayCase].self, from: data) else { return [:] }
        return cases
    }

    static var npyNames: [String] { npyCases().keys.sorted() }

    static var paramsNames: [String] {
        let dir = Fixtures.url("golden/io/params")
        let files = (try? FileManager.default.contentsOfDirectory(atPath: dir.path)) ?? []
        return files.filter { $0.hasSuffix(".params") }.map { String($0.dropLast(7)) }.sorted()
    }

    /// Every `.params` file anywhere under `Tests/Fixtures/golden/`, relative to `Tests/Fixtures/`.
    static var allGoldenParams: [String] {
        let root = Fixtures.url("golden")
        guard let walker = FileManager.default.enumerator(atPath: root.path) else { return [] }
        return walker.compactMap { $0 as? String }.filter { $0.hasSuffix(".params") }.map { "golden/" + $0 }.sorted()
    }

    /// Every `.npy` file under `Tests/Fixtures/golden/` outside `io/npy` (model inputs and outputs).
    static var otherGoldenNpy: [String] {
        let root = Fixtures.url("golden")
        guard let walker = FileManager.default.enumerator(atPath: root.path) else { return [] }
        return walker.compactMap { $0 as? String }
            .filter { $0.hasSuffix(".npy") && !$0.hasPrefix("io/npy/") }.map { "golden/" + $0 }.sorted()
    }

    static func check(_ array: NDArray, against expected: ArrayCase, _ label: String) {
        #expect(array.dtype.name == expected.dtype, "\(label)")
        #expect(array.shape.dims == expected.shape, "\(label)")
        #expect(array.doubles() == expected.values, "\(label)")
    }
}

@Suite("Golden files written by numpy and MXNet 1.9.1",
       .enabled(if: Fixtures.exists("golden/io/npy/values.json"), "golden io fixtures not generated yet"))
struct GoldenIOTests {
    @Test("numpy's .npy files read as expected and write back byte for byte", arguments: GoldenIO.npyNames)
    func npy(name: String) throws {
        let expected = try #require(GoldenIO.npyCases()[name])
        let url = Fixtures.url("golden/io/npy/\(name)")
        if expected.expect_error == true {
            let error = kilnError { try NDArray.load(npyFile: url) }
            #expect(error?.kind == "unsupportedFeature", "\(String(describing: error))")
            #expect(error?.field == "'fortran_order'")
            return
        }
        let array = try NDArray.load(npyFile: url)
        GoldenIO.check(array, against: expected, name)
        if expected.descr?.hasPrefix(">") != true {
            #expect(try array.npyData() == Data(contentsOf: url), "\(name) re-encoded")
        }
    }

    @Test("MXNet's .params files read as expected", arguments: GoldenIO.paramsNames)
    func params(name: String) throws {
        let json = try Data(contentsOf: Fixtures.url("golden/io/params/\(name).json"))
        let expected = try JSONDecoder().decode(GoldenIO.ParamsCase.self, from: json)
        let path = Fixtures.url("golden/io/params/\(name).params").path
        let file = try ParamsFile(contentsOf: path)
        let ordered = expected.ordered
        #expect(file.entries.count == ordered.count)
        #expect(file.hasNames == (expected.format == "dict"))
        for (entry, (expectedName, expectedArray)) in zip(file.entries, ordered) {
            #expect(entry.name == expectedName)
            let array = try #require(entry.array, "\(name): \(String(describing: expectedName)) is none")
            GoldenIO.check(array, against: expectedArray, "\(name): \(String(describing: expectedName))")
        }
        if expected.format == "dict" {
            #expect(try NDArray.loadParams(from: path).map(\.name) == ordered.compactMap(\.0))
        } else {
            #expect(try NDArray.loadParamsList(from: path).count == ordered.count)
        }
    }

    @Test("Every golden .params file re-encodes to MXNet's exact bytes", arguments: GoldenIO.allGoldenParams)
    func reencode(relative: String) throws {
        let original = try Data(contentsOf: Fixtures.url(relative))
        let file = try ParamsFile(data: original, source: relative)
        // MXNet writes V3 arrays (magic 0xF993FACA at byte 24) under numpy shape semantics.
        let v3 = original.count >= 28 && original[original.startIndex + 24] == 0xCA
        #expect(try file.encoded(format: v3 ? .v3 : .v2) == original)
    }

    @Test("Every other golden .npy file reads and re-encodes to numpy's exact bytes", arguments: GoldenIO.otherGoldenNpy)
    func otherNpy(relative: String) throws {
        let original = try Data(contentsOf: Fixtures.url(relative))
        #expect(try NDArray(npyData: original, source: relative).npyData() == original)
    }

    @Test func checkpointSplit() throws {
        let dict = try NDArray.loadParamsDictionary(from: Fixtures.url("golden/io/params/mixed.params").path)
        let parts = ParamsFile.split(dict)
        #expect(Array(parts.args.keys) == ["prefixed_name"])
        #expect(parts.aux.isEmpty)
        #expect(parts.plain.count == dict.count - 1)
    }
}
