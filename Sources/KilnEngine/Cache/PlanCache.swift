import Foundation
import KilnCore
import KilnEngineCore

// The engine cache on disk: one file per compiled group, named by its key, in the cache directory.
//
// ```
// compile(group) ─key─> <dir>/<key hex>.kilnplan ── valid? ──yes──> optimized IR (skip the passes)
//                                                  └─ missing, or corrupt/stale ─> compile, write (atomically)
// ```

enum PlanCache {
    enum Lookup {
        case hit(EngineIR)
        case missing
        /// The entry exists but cannot be used, with the reason.
        case unusable(String)
    }

    static func path(directory: String, key: [UInt8]) -> String {
        URL(fileURLWithPath: directory).appendingPathComponent(SHA256.hex(key) + ".kilnplan").path
    }

    /// The entry for `key`, checked (see ``PlanFile``).
    static func load(directory: String, key: [UInt8]) -> Lookup {
        let file = path(directory: directory, key: key)
        guard FileManager.default.fileExists(atPath: file) else { return .missing }
        guard let data = FileManager.default.contents(atPath: file) else { return .unusable("it cannot be read") }
        do {
            return .hit(try PlanFile.decode(data, key: key))
        } catch let r as PlanFile.Refusal {
            return .unusable(r.reason)
        } catch {
            return .unusable("\(error)")
        }
    }

    /// Writes the entry for `key`: to a temporary file first, then renamed over the entry, so a reader
    /// never sees half a file.
    static func store(_ ir: EngineIR, directory: String, key: [UInt8]) throws {
        let file = path(directory: directory, key: key)
        var isFolder: ObjCBool = false
        if FileManager.default.fileExists(atPath: directory, isDirectory: &isFolder), !isFolder.boolValue {
            throw EngineError.cacheWrite(path: directory, reason: "it is a file, not a folder")
        }
        do {
            try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
        } catch {
            throw EngineError.cacheWrite(path: directory, reason: "the folder cannot be created (\(fileErrorReason(error)))")
        }
        do {
            let bytes = try PlanFile.encode(ir, key: key)
            let temporary = file + ".tmp-\(getpid())-\(UInt64.random(in: 0...UInt64.max))"
            // Written from the bytes themselves (a `Data` of them would be one more copy of the weights).
            let written = bytes.withUnsafeBytes { raw -> Bool in
                guard let base = raw.baseAddress else { return false }
                let fd = open(temporary, O_WRONLY | O_CREAT | O_EXCL, 0o644)
                guard fd >= 0 else { return false }
                defer { close(fd) }
                var offset = 0
                while offset < raw.count {
                    let n = write(fd, base + offset, raw.count - offset)
                    if n < 0 && errno == EINTR { continue }
                    guard n > 0 else { return false }
                    offset += n
                }
                return true
            }
            guard written else {
                try? FileManager.default.removeItem(atPath: temporary)
                throw EngineError.cacheWrite(path: file, reason: "the temporary file \(temporary) cannot be written (\(String(cString: strerror(errno))))")
            }
            if rename(temporary, file) != 0 {
                try? FileManager.default.removeItem(atPath: temporary)
                throw EngineError.cacheWrite(path: file, reason: "renaming the temporary file failed (\(String(cString: strerror(errno))))")
            }
        } catch let e as EngineError {
            throw e
        } catch {
            throw EngineError.cacheWrite(path: file, reason: fileErrorReason(error))
        }
    }
}
