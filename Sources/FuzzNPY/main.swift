// Fuzz target for the `.npy` reader (see tools/fuzz.sh).
//
// Built with `-DKILN_FUZZ -parse-as-library -sanitize=fuzzer,address` (tools/fuzz.sh), this file is a
// libFuzzer target, whose `main` comes from libFuzzer;
// in a normal build it is a replayer: `FuzzNPY FILE...` runs each file through the same check and
// prints what happened, for reproducing a crash that the fuzzer saved.
import Foundation
import KilnCore

/// Parses `data`; when it is a valid file, checks that writing and re-reading gives the same array.
/// Thrown errors are the expected outcome for bad input; only a crash or a failed check is a finding.
func check(_ data: Data) -> String {
    let array: NDArray
    do {
        array = try NDArray(npyData: data, source: "fuzz input")
    } catch {
        return "rejected: \(error)"
    }
    // Every dtype an .npy file can hold can be written back.
    guard let again = try? NDArray(npyData: array.npyData(), source: "re-encoded fuzz input") else {
        preconditionFailure("a loaded array did not survive npyData() and reloading")
    }
    let same = again.shape == array.shape && again.dtype == array.dtype
        && again.withUnsafeBytes { a in array.withUnsafeBytes { b in a.elementsEqual(b) } }
    precondition(same, "re-encoding changed the array")
    exercise(array)
    return "loaded \(array)"
}

/// Uses a loaded array the way later code will, so that a shape which loads but breaks arithmetic on
/// shapes (strides, element counts, conversions) is found here rather than in a kernel.
func exercise(_ array: NDArray) {
    _ = array.shape.strides
    _ = array.description
    _ = array.converted(to: .float32).floats()
    _ = try? array.reshaped([array.elementCount])
}

#if KILN_FUZZ
@_cdecl("LLVMFuzzerTestOneInput")
public func fuzz(_ data: UnsafePointer<UInt8>, _ size: Int) -> CInt {
    _ = check(Data(bytes: data, count: size))
    return 0
}

// SwiftPM links every executable with `--defsym main=<Module>_main`, which hides libFuzzer's own
// `main`; so this target supplies that symbol and hands over to libFuzzer's driver.
@_extern(c, "LLVMFuzzerRunDriver")
func LLVMFuzzerRunDriver(
    _ argc: UnsafeMutablePointer<CInt>,
    _ argv: UnsafeMutablePointer<UnsafeMutablePointer<UnsafeMutablePointer<CChar>?>?>,
    _ callback: @convention(c) (UnsafePointer<UInt8>?, Int) -> CInt
) -> CInt

@_cdecl("FuzzNPY_main")
public func fuzzMain(_ argc: CInt, _ argv: UnsafeMutablePointer<UnsafeMutablePointer<CChar>?>?) -> CInt {
    var argc = argc
    var argv = argv
    return LLVMFuzzerRunDriver(&argc, &argv) { data, size in
        guard let data else { return 0 }
        return fuzz(data, size)
    }
}
#else
/// Runs each file named on the command line through `check` and prints the outcome.
func replay(_ paths: ArraySlice<String>) {
    for path in paths {
        guard let data = FileManager.default.contents(atPath: path) else {
            print("\(path): cannot read")
            continue
        }
        print("\(path): \(check(data))")
    }
}

// A declaration rather than a statement, so that this file still parses under -parse-as-library
// (which the fuzz build needs, and which rejects top-level statements even in an inactive #if branch).
let replayed: Void = replay(CommandLine.arguments.dropFirst())
#endif
