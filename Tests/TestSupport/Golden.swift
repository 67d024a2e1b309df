import Foundation
import KilnCore
import KilnGraph

/// One per-op case written by real MXNet 1.9.1 (`tools/golden/make_golden.py`): a symbol of one op, its
/// arguments and auxiliary states, and MXNet's outputs in inference mode.
public struct GoldenCase: Sendable {
    public let name: String
    public let op: String
    public let symbol: Symbol
    public let arguments: [String: NDArray]
    public let auxiliaryStates: [String: NDArray]
    public let outputs: [NDArray]
}

/// Access to the committed golden fixtures.
public enum Golden {
    struct IndexEntry: Decodable { let `case`: String; let op: String }

    /// Names of all per-op cases, in the index's order (empty if the index is missing, which the
    /// conformance suite reports as a failure of its own).
    public static let opCaseNames: [String] = {
        guard let data = try? Data(contentsOf: Fixtures.url("golden/ops/index.json")),
              let entries = try? JSONDecoder().decode([IndexEntry].self, from: data) else { return [] }
        return entries.map(\.case)
    }()

    /// Names of the cases of some ops.
    public static func caseNames(ops: Set<String>) -> [String] {
        guard let data = try? Data(contentsOf: Fixtures.url("golden/ops/index.json")),
              let entries = try? JSONDecoder().decode([IndexEntry].self, from: data) else { return [] }
        return entries.filter { ops.contains($0.op) }.map(\.case)
    }

    /// Loads one case.
    public static func opCase(_ name: String) throws -> GoldenCase {
        let symbol = try Symbol.load(jsonFile: Fixtures.url("golden/ops/\(name).json").path)
        var args: [String: NDArray] = [:], aux: [String: NDArray] = [:], outs: [Int: NDArray] = [:]
        for (key, array) in try NDArray.loadParams(from: Fixtures.url("golden/ops/\(name).params").path) {
            if key.hasPrefix("arg:") { args[String(key.dropFirst(4))] = array }
            else if key.hasPrefix("aux:") { aux[String(key.dropFirst(4))] = array }
            else if key.hasPrefix("out:"), let i = Int(key.dropFirst(4)) { outs[i] = array }
        }
        let op = symbol.graph.nodes.last(where: { !$0.isVariable })?.op ?? "?"
        return GoldenCase(name: name, op: op, symbol: symbol, arguments: args, auxiliaryStates: aux,
                          outputs: outs.keys.sorted().compactMap { outs[$0] })
    }
}
