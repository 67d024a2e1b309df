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

extension GoldenFixtures {
    /// One line of `ops/index.json`.
    public struct OpCaseEntry: Decodable, Sendable {
        public let `case`: String
        public let op: String
    }

    /// The per-op cases, in the index's order.
    public func opCaseEntries() throws -> [OpCaseEntry] { try index("ops/index.json", of: OpCaseEntry.self) }

    /// Names of all per-op cases, in the index's order.
    public func opCaseNames() throws -> [String] { try opCaseEntries().map(\.case) }

    /// Names of the cases of some ops.
    public func opCaseNames(ops: Set<String>) throws -> [String] {
        try opCaseEntries().filter { ops.contains($0.op) }.map(\.case)
    }

    /// Loads one case.
    public func opCase(_ name: String) throws -> GoldenCase {
        let symbol = try Symbol.load(jsonFile: url("ops/\(name).json").path)
        var args: [String: NDArray] = [:], aux: [String: NDArray] = [:], outs: [Int: NDArray] = [:]
        for (key, array) in try NDArray.loadParams(from: url("ops/\(name).params").path) {
            if key.hasPrefix("arg:") { args[String(key.dropFirst(4))] = array }
            else if key.hasPrefix("aux:") { aux[String(key.dropFirst(4))] = array }
            else if key.hasPrefix("out:"), let i = Int(key.dropFirst(4)) { outs[i] = array }
        }
        let op = symbol.graph.nodes.last(where: { !$0.isVariable })?.op ?? "?"
        return GoldenCase(name: name, op: op, symbol: symbol, arguments: args, auxiliaryStates: aux,
                          outputs: outs.keys.sorted().compactMap { outs[$0] })
    }
}
