import Foundation
import Testing
import TestSupport
@testable import KilnCore

/// Replays the committed fuzz seeds (Tests/Fuzz/corpus/) and the inputs that once broke a fuzz target
/// (Tests/Fixtures/fuzz/, where new ones go; older ones are `regression_*` seeds) through the loaders,
/// with the fuzz targets' own check: a file either throws a KilnCoreError, or loads and survives
/// writing and re-reading.
enum FuzzCorpus {
    static func files(_ name: String) -> [String] {
        ["Tests/Fuzz/corpus/\(name)", "Tests/Fixtures/fuzz/\(name)"].flatMap { folder in
            let dir = Fixtures.packageRoot.appendingPathComponent(folder)
            let names = (try? FileManager.default.contentsOfDirectory(atPath: dir.path)) ?? []
            return names.sorted().map { dir.appendingPathComponent($0).path }
        }
    }
}

@Suite("Fuzz corpus replay")
struct FuzzCorpusTests {
    @Test("npy seeds load or throw, and loaded ones round-trip", arguments: FuzzCorpus.files("npy"))
    func npy(path: String) throws {
        let data = try Data(contentsOf: URL(fileURLWithPath: path))
        let array: NDArray
        do {
            array = try NDArray(npyData: data, source: path)
        } catch is KilnCoreError {
            return
        }
        #expect(identical(try NDArray(npyData: array.npyData(), source: "re-encoded"), array))
        _ = array.shape.strides  // trapped on regression_zero_dim_overflowing_strides.npy
    }

    @Test("params seeds load or throw, and loaded ones round-trip", arguments: FuzzCorpus.files("params"))
    func params(path: String) throws {
        let data = try Data(contentsOf: URL(fileURLWithPath: path))
        let file: ParamsFile
        do {
            file = try ParamsFile(data: data, source: path)
        } catch is KilnCoreError {
            return
        }
        let again = try ParamsFile(data: file.encoded(format: .v3), source: "re-encoded")
        #expect(again.entries.map(\.name) == file.entries.map(\.name))
        for (a, b) in zip(file.entries, again.entries) {
            switch (a.array, b.array) {
            case (nil, nil): continue
            case let (x?, y?):
                #expect(identical(x, y))
                _ = x.shape.strides
            default: Issue.record("re-encoding changed whether an entry is 'none'")
            }
        }
    }
}
