// Fuzz target for the symbol JSON reader (see tools/fuzz.sh).
//
// Built with `-DKILN_FUZZ -parse-as-library -sanitize=fuzzer,address` (tools/fuzz.sh), this file is a
// libFuzzer target; in a normal build it is a replayer: `FuzzSymbol FILE...` runs each file through
// the same check and prints what happened.
import Foundation
import FuzzSupport
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
@_cdecl("FuzzSymbol_main")
public func fuzzMain(_ argc: CInt, _ argv: UnsafeMutablePointer<UnsafeMutablePointer<CChar>?>?) -> CInt {
    runFuzzer(argc, argv, check: check)
}
#else
// A declaration rather than a statement, so that this file parses under -parse-as-library.
let replayed: Void = replay(CommandLine.arguments.dropFirst(), check)
#endif
