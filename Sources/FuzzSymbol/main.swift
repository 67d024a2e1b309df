// Fuzz target for the symbol JSON reader (see tools/fuzz.sh).
//
// Built with `-DKILN_FUZZ -parse-as-library -sanitize=fuzzer,address` (tools/fuzz.sh), this file is a
// libFuzzer target; in a normal build it is a replayer: `FuzzSymbol FILE...` runs each file through
// the same check and prints what happened.
import Foundation
import KilnCore
import KilnGraph

/// Reads symbol JSON; when that succeeds, writes it, reads it back and checks the meaning is kept,
/// and uses it the way binding would. Thrown errors are the expected outcome for bad input.
func check(_ data: Data) -> String {
    let symbol: Symbol
    do {
        symbol = try Symbol(json: data, source: "fuzz input")
    } catch {
        return "rejected: \(error)"
    }
    let arguments = symbol.listArguments()
    _ = symbol.listAuxiliaryStates()
    let outputs = symbol.listOutputs()
    guard let text = try? symbol.jsonString(), let again = try? Symbol(json: text, source: "re-encoded fuzz input") else {
        preconditionFailure("a loaded symbol did not survive jsonString() and reloading")
    }
    precondition(again.listArguments() == arguments && again.listOutputs() == outputs, "re-encoding changed the symbol")
    // Shape inference on arbitrary graphs must throw, never trap.
    var shapes: [String: Shape] = [:]
    for name in arguments.prefix(1) { shapes[name] = [2, 3, 8, 8] }
    _ = try? symbol.inferShape(shapes)
    _ = try? symbol.inferType()
    return "loaded \(symbol.graph.nodes.count) nodes"
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

@_cdecl("FuzzSymbol_main")
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

// A declaration rather than a statement, so that this file parses under -parse-as-library.
let replayed: Void = replay(CommandLine.arguments.dropFirst())
#endif
