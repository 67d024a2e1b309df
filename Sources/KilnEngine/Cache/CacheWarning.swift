import Foundation
import Synchronization

/// Says once per process and cache folder that the folder cannot be used, on standard error.
///
/// A cache that cannot be written never fails a compile (the result is the same, only the next
/// process compiles again), but a user who set `KILN_ENGINE_CACHE_DIR` to a file, or to a folder
/// that cannot be created, should hear why every run is slow, once rather than per group.
enum CacheWarning {
    private static let said = Mutex<Set<String>>([])

    /// Writes `kiln engine: ...` for `directory` unless it was written before.
    static func unusable(_ directory: String, _ error: any Error) {
        let first = said.withLock { $0.insert(directory).inserted }
        guard first else { return }
        FileHandle.standardError.write(Data("""
            kiln engine: the cache folder '\(directory)' cannot be used, so compiled plans and calibration tables are not kept \
            for the next run: \(error) Set KILN_ENGINE_CACHE_DIR to a folder that can be written, or to an empty value for no cache.

            """.utf8))
    }

}
