// Fuzz target for the symbol JSON reader. Built with `-sanitize=fuzzer,address -DKILN_FUZZ` by
// tools/fuzz.sh; in a normal build it replays the files named on the command line instead.
import Foundation
import KilnGraph

/// Reads symbol JSON and, when that succeeds, writes it and reads it back; errors are expected, crashes are not.
func exercise(_ data: Data) {
    guard let symbol = try? Symbol(json: data, source: "fuzz input") else { return }
    _ = symbol.listArguments()
    _ = symbol.listAuxiliaryStates()
    _ = symbol.listOutputs()
    if let text = try? symbol.jsonString() { _ = try? Symbol(json: text, source: "fuzz round trip") }
    _ = try? symbol.inferShape(["data": [1, 3, 8, 8]])
}

#if KILN_FUZZ
@_cdecl("LLVMFuzzerTestOneInput")
public func fuzz(_ bytes: UnsafePointer<UInt8>, _ size: Int) -> CInt {
    exercise(Data(bytes: bytes, count: size))
    return 0
}
#else
for path in CommandLine.arguments.dropFirst() {
    guard let data = FileManager.default.contents(atPath: path) else {
        print("cannot read \(path)")
        continue
    }
    exercise(data)
    print("ok: \(path)")
}
#endif
