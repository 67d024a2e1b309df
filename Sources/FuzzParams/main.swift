// Fuzz target for the MXNet `.params` reader (see tools/fuzz.sh).
//
// Built with `-DKILN_FUZZ -parse-as-library -sanitize=fuzzer,address` (tools/fuzz.sh), this file is a
// libFuzzer target, whose `main` comes from libFuzzer;
// in a normal build it is a replayer: `FuzzParams FILE...` runs each file through the same check and
// prints what happened, for reproducing a crash that the fuzzer saved.
import Foundation
import FuzzSupport
import KilnCore

/// Parses `data`; when it is a valid file, checks that writing it as V3 (which can hold everything the
/// reader accepts: 0-d arrays and 'none' entries too) and re-reading gives the same entries.
/// Thrown errors are the expected outcome for bad input; only a crash or a failed check is a finding.
func check(_ data: Data) -> String {
    let file: ParamsFile
    do {
        file = try ParamsFile(data: data, source: "fuzz input")
    } catch {
        return "rejected: \(error)"
    }
    guard let again = try? ParamsFile(data: file.encoded(format: .v3), source: "re-encoded fuzz input") else {
        preconditionFailure("a loaded file did not survive encoded(format: .v3) and reloading")
    }
    precondition(again.entries.count == file.entries.count, "re-encoding changed the array count")
    for (a, b) in zip(file.entries, again.entries) {
        precondition(a.name == b.name, "re-encoding changed a name")
        switch (a.array, b.array) {
        case (nil, nil): continue
        case let (x?, y?):
            let same = x.shape == y.shape && x.dtype == y.dtype
                && x.withUnsafeBytes { p in y.withUnsafeBytes { q in p.elementsEqual(q) } }
            precondition(same, "re-encoding changed an array")
        default: preconditionFailure("re-encoding changed whether an entry is 'none'")
        }
    }
    for entry in file.entries { if let array = entry.array { exercise(array) } }
    // The convenience readers must not crash either.
    _ = try? file.dictionary()
    return "loaded \(file.entries.count) arrays, named: \(file.hasNames)"
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
@_cdecl("FuzzParams_main")
public func fuzzMain(_ argc: CInt, _ argv: UnsafeMutablePointer<UnsafeMutablePointer<CChar>?>?) -> CInt {
    runFuzzer(argc, argv, check: check)
}
#else
// A declaration rather than a statement, so that this file parses under -parse-as-library.
let replayed: Void = replay(CommandLine.arguments.dropFirst(), check)
#endif
