// Fuzz target for the MXNet `.params` reader (see tools/fuzz.sh).
//
// Built with `-DKILN_FUZZ -parse-as-library -sanitize=fuzzer,address` (tools/fuzz.sh), this file is a
// libFuzzer target, whose `main` comes from libFuzzer;
// in a normal build it is a replayer: `FuzzParams FILE...` runs each file through the same check and
// prints what happened, for reproducing a crash that the fuzzer saved.
import Foundation
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

@_cdecl("FuzzParams_main")
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
