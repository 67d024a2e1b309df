import Foundation
import KilnConformance

/// Locates the files under `Tests/Fixtures/`, whatever the working directory of the test run.
///
/// The package root is found as ``GoldenFixtures/packageRoot`` finds it, so the helper works from
/// `swift test`, from an IDE and from CI's fresh clone.
public enum Fixtures {
    /// `Tests/Fixtures/` of the package this file belongs to.
    public static var root: URL {
        packageRoot.appendingPathComponent("Tests/Fixtures", isDirectory: true)
    }

    /// A file or folder under ``root``, such as `url("golden/io/npy/values.json")`.
    public static func url(_ relative: String) -> URL {
        root.appendingPathComponent(relative)
    }

    /// Whether the fixture at `relative` exists (golden files may be generated after the tests that read them).
    public static func exists(_ relative: String) -> Bool {
        FileManager.default.fileExists(atPath: url(relative).path)
    }

    /// The package root: the nearest folder above the sources that holds `Package.swift`.
    public static var packageRoot: URL { GoldenFixtures.packageRoot }
}
