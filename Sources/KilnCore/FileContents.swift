import Foundation
#if canImport(Glibc)
import Glibc
#endif

/// Reads a whole file for a loader, with errors a user can act on.
///
/// Foundation's `Data(contentsOf:)` reports a directory as "NSCocoaErrorDomain error 256" and
/// `/dev/null` as a permission problem, and reads a file of any size. This reader says what the path
/// is ("is a directory", "does not exist", "permission denied"), checks a regular file's size
/// against the ``MemoryBudget`` before reading it, and reads other files (pipes, devices) in pieces
/// up to the budget, so `/dev/zero` cannot fill the memory.
///
/// - Throws: ``KilnCoreError/fileUnreadable(path:reason:)`` or
///   ``KilnCoreError/memoryBudgetExceeded(what:bytes:limit:origin:)``.
public func readFileContents(atPath path: String, budget: MemoryBudget? = nil) throws -> Data {
    let fd = open(path, O_RDONLY | O_CLOEXEC)
    guard fd >= 0 else { throw KilnCoreError.fileUnreadable(path: path, reason: fileErrorReason(errno)) }
    defer { close(fd) }
    var info = stat()
    guard fstat(fd, &info) == 0 else { throw KilnCoreError.fileUnreadable(path: path, reason: fileErrorReason(errno)) }
    let kind = info.st_mode & S_IFMT
    if kind == S_IFDIR { throw KilnCoreError.fileUnreadable(path: path, reason: "it is a directory, not a file") }
    let budget = try budget ?? MemoryBudget.process
    let limit = budget.limit
    var data = Data()
    if kind == S_IFREG {
        let size = Int(info.st_size)
        try budget.check(bytes: size, within: limit, for: "the file '\(path)' (\(size) bytes)")
        data.reserveCapacity(size)
    }
    // Read in pieces: a regular file's size may change while reading, and other files have none.
    var chunk = [UInt8](repeating: 0, count: 1 << 20)
    while true {
        let got = chunk.withUnsafeMutableBytes { read(fd, $0.baseAddress, $0.count) }
        if got < 0 {
            if errno == EINTR { continue }
            throw KilnCoreError.fileUnreadable(path: path, reason: fileErrorReason(errno))
        }
        if got == 0 { break }
        guard data.count + got <= limit else {
            try budget.check(bytes: data.count + got, within: limit, for: "the file '\(path)', which is not a regular file and has not ended")
            break
        }
        data.append(contentsOf: chunk[0..<got])
    }
    return data
}

/// A sentence fragment for a failed file call: "it does not exist", "permission denied", ...
func fileErrorReason(_ code: Int32) -> String {
    switch code {
    case ENOENT: return "it does not exist"
    case EACCES, EPERM: return "permission denied"
    case EISDIR: return "it is a directory, not a file"
    case ENOTDIR: return "a part of the path is not a directory"
    case ELOOP: return "its symbolic links loop"
    case ENAMETOOLONG: return "the path is too long"
    default: return String(cString: strerror(code)).lowercased()
    }
}

/// A sentence fragment for a Foundation file error ("it does not exist", "permission denied", "the
/// disk is full"), instead of Foundation's "The operation could not be completed" or
/// "NSCocoaErrorDomain error 256".
public func fileErrorReason(_ error: any Error) -> String {
    let ns = error as NSError
    if ns.domain == NSPOSIXErrorDomain { return fileErrorReason(Int32(ns.code)) }
    if let underlying = ns.userInfo[NSUnderlyingErrorKey] as? NSError, underlying.domain == NSPOSIXErrorDomain {
        return fileErrorReason(Int32(underlying.code))
    }
    if let cocoa = error as? CocoaError {
        switch cocoa.code {
        case .fileNoSuchFile, .fileReadNoSuchFile: return "it does not exist"
        case .fileReadNoPermission, .fileWriteNoPermission: return "permission denied"
        case .fileWriteOutOfSpace: return "the disk is full"
        case .fileWriteVolumeReadOnly: return "the file system is read-only"
        case .fileWriteFileExists: return "a file of that name is in the way"
        default: break
        }
    }
    let text = ns.localizedDescription
    return text.hasSuffix(".") ? String(text.dropLast()) : text
}
