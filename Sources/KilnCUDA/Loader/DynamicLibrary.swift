// Finding and opening NVIDIA's libraries at run time, so that Kiln builds and runs without them.
//
//   KILN_CUDA_PATH=/a:/b      ->  /a/libcudnn.so.9, /a/lib64/..., /a/lib/..., /a/*/lib/...
//   soname (LD_LIBRARY_PATH, ld.so.cache)
//   /usr/local/nvidia/lib64, /usr/lib/x86_64-linux-gnu, /usr/local/cuda*/lib64
//   $VIRTUAL_ENV, /opt/torch/.venv, ~/.local  ->  lib/python3*/site-packages/nvidia/*/lib
//
// The first file that opens wins. A library's own dependencies (cuBLAS needs cuBLASLt, cuDNN opens its
// sub-libraries) are opened first from the same folder, so that the dynamic linker finds them by soname.
import Foundation

/// An opened shared library.
final class DynamicLibrary: @unchecked Sendable {
    let name: String
    let path: String
    let handle: UnsafeMutableRawPointer

    init(name: String, path: String, handle: UnsafeMutableRawPointer) {
        self.name = name
        self.path = path
        self.handle = handle
    }

    /// The function `symbol` as the C function type `T`.
    func function<T>(_ symbol: String, as type: T.Type) throws -> T {
        guard let p = dlsym(handle, symbol) else { throw CUDAError.symbolMissing(library: path, symbol: symbol) }
        return unsafeBitCast(p, to: type)
    }

    /// The function if present (optional features).
    func optionalFunction<T>(_ symbol: String, as type: T.Type) -> T? {
        guard let p = dlsym(handle, symbol) else { return nil }
        return unsafeBitCast(p, to: type)
    }

    /// The folders searched, in order, after `KILN_CUDA_PATH`'s and the loader's own (soname) lookup.
    static func searchFolders(environment: [String: String]) -> [String] {
        var folders: [String] = []
        let fm = FileManager.default
        func add(_ p: String) { if !folders.contains(p) { folders.append(p) } }
        func addTree(_ root: String) {
            add(root)
            add(root + "/lib64")
            add(root + "/lib")
            if let subs = try? fm.contentsOfDirectory(atPath: root) {
                for s in subs.sorted() where fm.fileExists(atPath: root + "/" + s + "/lib") { add(root + "/" + s + "/lib") }
            }
        }
        for p in (environment["KILN_CUDA_PATH"] ?? "").split(separator: ":") where !p.isEmpty { addTree(String(p)) }
        return folders
    }

    static func wellKnownFolders(environment: [String: String]) -> [String] {
        var folders = ["/usr/local/nvidia/lib64", "/usr/lib/x86_64-linux-gnu", "/usr/lib64", "/usr/lib", "/usr/local/cuda/lib64"]
        let fm = FileManager.default
        if let entries = try? fm.contentsOfDirectory(atPath: "/usr/local") {
            for e in entries.sorted(by: >) where e.hasPrefix("cuda-") { folders.append("/usr/local/\(e)/lib64") }
        }
        var venvs: [String] = []
        if let v = environment["VIRTUAL_ENV"] { venvs.append(v) }
        venvs.append("/opt/torch/.venv")
        if let home = environment["HOME"] { venvs.append(home + "/.local") }
        for v in venvs {
            guard let pys = try? fm.contentsOfDirectory(atPath: v + "/lib") else { continue }
            for py in pys.sorted(by: >) where py.hasPrefix("python3") {
                let nvidia = "\(v)/lib/\(py)/site-packages/nvidia"
                guard let subs = try? fm.contentsOfDirectory(atPath: nvidia) else { continue }
                for s in subs.sorted() where fm.fileExists(atPath: "\(nvidia)/\(s)/lib") { folders.append("\(nvidia)/\(s)/lib") }
            }
        }
        return folders
    }

    /// Opens the first of `names` found: in `KILN_CUDA_PATH`, then by soname, then in the well-known
    /// folders. `companions` are file-name prefixes of libraries to open first from the same folder.
    static func open(_ display: String, names: [String], companions: [String] = [],
                     environment: [String: String]) throws -> DynamicLibrary {
        let first = searchFolders(environment: environment)
        let later = wellKnownFolders(environment: environment)
        var reasons: [String] = []
        func tryPath(_ path: String) -> DynamicLibrary? {
            guard path.hasPrefix("/") ? FileManager.default.fileExists(atPath: path) : true else { return nil }
            if path.hasPrefix("/") { openCompanions(folder: (path as NSString).deletingLastPathComponent, prefixes: companions) }
            if let h = dlopen(path, RTLD_NOW | RTLD_GLOBAL) {
                return DynamicLibrary(name: display, path: path.hasPrefix("/") ? path : (resolvedPath(soname: path) ?? path), handle: h)
            }
            if let e = dlerror() { reasons.append(String(cString: e)) }
            return nil
        }
        for folder in first { for n in names { if let l = tryPath(folder + "/" + n) { return l } } }
        for n in names { if let l = tryPath(n) { return l } }
        for folder in later { for n in names { if let l = tryPath(folder + "/" + n) { return l } } }
        let reason = reasons.last ?? "no file named \(names.joined(separator: " or ")) was found"
        throw CUDAError.libraryMissing(library: display, searched: first + ["the loader's path"] + later.prefix(6), reason: reason)
    }

    private static func openCompanions(folder: String, prefixes: [String]) {
        guard !prefixes.isEmpty, let files = try? FileManager.default.contentsOfDirectory(atPath: folder) else { return }
        for p in prefixes {
            for f in files.sorted() where f.hasPrefix(p) && f.contains(".so") {
                _ = dlopen(folder + "/" + f, RTLD_NOW | RTLD_GLOBAL)
            }
        }
    }

    /// The file the loader opened for a soname: the mapped file of that name in /proc/self/maps.
    private static func resolvedPath(soname: String) -> String? {
        guard let maps = try? String(contentsOfFile: "/proc/self/maps", encoding: .utf8) else { return nil }
        for line in maps.split(separator: "\n") {
            guard let slash = line.firstIndex(of: "/") else { continue }
            let path = String(line[slash...])
            if path.hasSuffix("/" + soname) { return path }
        }
        return nil
    }
}
