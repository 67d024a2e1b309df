// Structure-aware fuzz target for symbol graphs (see tools/fuzz.sh): the input bytes are a recipe
// (GraphFuzzing's SymbolRecipe) for a symbol JSON file and its input shapes, and GraphCheck reads,
// re-writes, infers and, when small, binds and runs it on the reference backend.
//
// Built with `-DKILN_FUZZ -parse-as-library -sanitize=fuzzer,address` (tools/fuzz.sh), this file is a
// libFuzzer target; in a normal build it is a replayer: `FuzzGraph FILE...` runs each file through
// the same check and prints what happened. `FuzzGraph --json FILE` prints the file a recipe makes.
import Foundation
import FuzzSupport
import GraphFuzzing

/// Builds the recipe's graph and checks it; a ``GraphCheck/Finding`` is a bug, so it traps here,
/// where libFuzzer saves the input.
func check(_ data: Data) -> String {
    let recipe = SymbolRecipe(bytes: data)
    do {
        let (outcome, detail) = try GraphCheck.run(recipe)
        return "\(recipe.nodeCount) nodes, \(outcome): \(detail.prefix(300))"
    } catch {
        preconditionFailure(error.description)
    }
}

#if KILN_FUZZ
@_cdecl("FuzzGraph_main")
public func fuzzMain(_ argc: CInt, _ argv: UnsafeMutablePointer<UnsafeMutablePointer<CChar>?>?) -> CInt {
    runFuzzer(argc, argv, check: check)
}
#else
/// Replays files, or with `--json FILE` prints the symbol JSON the recipe in FILE makes.
func main(_ arguments: ArraySlice<String>) {
    guard arguments.first == "--json" else { return replay(arguments, check) }
    for path in arguments.dropFirst() {
        guard let data = FileManager.default.contents(atPath: path) else { print("\(path): cannot read"); continue }
        print(SymbolRecipe(bytes: data).json)
    }
}
// A declaration rather than a statement, so that this file parses under -parse-as-library.
let replayed: Void = main(CommandLine.arguments.dropFirst())
#endif
