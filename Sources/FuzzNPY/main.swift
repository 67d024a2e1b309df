// Fuzz target for the `.npy` reader (see tools/fuzz.sh).
//
// Built with `-DKILN_FUZZ -parse-as-library -sanitize=fuzzer,address` (tools/fuzz.sh), this file is a
// libFuzzer target, whose `main` comes from libFuzzer;
// in a normal build it is a replayer: `FuzzNPY FILE...` runs each file through the same check and
// prints what happened, for reproducing a crash that the fuzzer saved.
import Foundation
import FuzzSupport
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
@_cdecl("FuzzNPY_main")
public func fuzzMain(_ argc: CInt, _ argv: UnsafeMutablePointer<UnsafeMutablePointer<CChar>?>?) -> CInt {
    runFuzzer(argc, argv, check: check)
}
#else
// A declaration rather than a statement, so that this file parses under -parse-as-library.
let replayed: Void = replay(CommandLine.arguments.dropFirst(), check)
#endif
