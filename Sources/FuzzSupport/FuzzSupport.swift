// What the loaders' fuzz targets share: the hand-over to libFuzzer's driver in a fuzz build
// (tools/fuzz.sh passes -DKILN_FUZZ) and the replayer of a normal build. Each target keeps only its
// own `check` and the `<Module>_main` symbol SwiftPM's link expects.
import Foundation

/// Runs `check` on each file named in `paths` and prints what happened, for reproducing a crash the
/// fuzzer saved.
public func replay(_ paths: ArraySlice<String>, _ check: (Data) -> String) {
    for path in paths {
        guard let data = FileManager.default.contents(atPath: path) else {
            print("\(path): cannot read")
            continue
        }
        print("\(path): \(check(data))")
    }
}

#if KILN_FUZZ
// SwiftPM links every executable with `--defsym main=<Module>_main`, which hides libFuzzer's own
// `main`; so each target supplies that symbol and hands over to libFuzzer's driver here.
@_extern(c, "LLVMFuzzerRunDriver")
func LLVMFuzzerRunDriver(
    _ argc: UnsafeMutablePointer<CInt>,
    _ argv: UnsafeMutablePointer<UnsafeMutablePointer<UnsafeMutablePointer<CChar>?>?>,
    _ callback: @convention(c) (UnsafePointer<UInt8>?, Int) -> CInt
) -> CInt

/// The target's check; a C callback cannot capture it, and one process fuzzes one target.
nonisolated(unsafe) private var installedCheck: ((Data) -> String)?

/// libFuzzer's entry point, which its archive references even though the driver is handed the
/// callback; it runs the installed check.
@_cdecl("LLVMFuzzerTestOneInput")
public func fuzzOneInput(_ data: UnsafePointer<UInt8>, _ size: Int) -> CInt {
    _ = installedCheck?(Data(bytes: data, count: size))
    return 0
}

/// Fuzzes `check` with libFuzzer, passing on the command line's options.
public func runFuzzer(_ argc: CInt, _ argv: UnsafeMutablePointer<UnsafeMutablePointer<CChar>?>?,
                      check: @escaping (Data) -> String) -> CInt {
    installedCheck = check
    var argc = argc
    var argv = argv
    return LLVMFuzzerRunDriver(&argc, &argv) { data, size in
        guard let data else { return 0 }
        return fuzzOneInput(data, size)
    }
}
#endif
