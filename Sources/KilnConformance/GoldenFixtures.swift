import Foundation
import KilnCore

/// The golden fixtures written by real MXNet 1.9.1 (`tools/golden/make_golden.py`): one folder that
/// holds `ops/` (one case per op configuration) and `grads/` (one training step per case).
///
/// ```
/// let fixtures = GoldenFixtures.package                          // Tests/Fixtures/golden of this package
/// let there = GoldenFixtures(root: URL(fileURLWithPath: "/tmp/kiln-gpu/kiln/golden"))  // kiln gpu-check --golden
/// let c = try fixtures.opCase("Convolution_2d_k3")
/// ```
public struct GoldenFixtures: Sendable {
    /// The folder that holds `ops/` and `grads/`.
    public let root: URL

    public init(root: URL) { self.root = root }

    /// `Tests/Fixtures/golden` of the package this file was built from.
    public static var package: GoldenFixtures {
        GoldenFixtures(root: packageRoot.appendingPathComponent("Tests/Fixtures/golden", isDirectory: true))
    }

    /// The package root: the nearest folder above this source file that holds `Package.swift`, so that
    /// the fixtures are found from `swift test`, an IDE or CI's fresh clone, whatever the working
    /// directory. A binary moved to another machine (the GPU machine) must be given its fixtures'
    /// folder instead.
    public static var packageRoot: URL {
        var dir = URL(fileURLWithPath: "\(#filePath)").deletingLastPathComponent()
        while dir.path != "/" {
            if FileManager.default.fileExists(atPath: dir.appendingPathComponent("Package.swift").path) {
                return dir
            }
            dir = dir.deletingLastPathComponent()
        }
        // Not inside a package (a relocated build): fall back to the working directory.
        return URL(fileURLWithPath: FileManager.default.currentDirectoryPath, isDirectory: true)
    }

    /// A file under ``root`` (`"ops/index.json"`).
    public func url(_ relative: String) -> URL { root.appendingPathComponent(relative) }

    /// A decoded index file, or an error naming the file.
    func index<Entry: Decodable>(_ relative: String, of: Entry.Type) throws -> [Entry] {
        let path = url(relative).path
        guard let data = FileManager.default.contents(atPath: path) else {
            throw KilnCoreError.fileUnreadable(path: path, reason: "no golden index here (tools/golden/make_golden.sh writes it; give the fixtures' folder)")
        }
        do {
            return try JSONDecoder().decode([Entry].self, from: data)
        } catch {
            throw KilnCoreError.malformedFile(path: path, field: "index", reason: "\(error)")
        }
    }
}
