import Foundation
import KilnCore

/// MXNet checkpoints: `PREFIX-symbol.json` and `PREFIX-EPOCH.params` (epoch as four digits), whose
/// arrays are named `arg:NAME` for arguments and `aux:NAME` for auxiliary states.
public enum Checkpoint {
    /// The two file paths of a checkpoint.
    public static func paths(prefix: String, epoch: Int) -> (symbol: String, params: String) {
        (prefix + "-symbol.json", prefix + "-" + String(format: "%04d", epoch) + ".params")
    }

    /// Loads a checkpoint: the symbol, the arguments and the auxiliary states.
    public static func load(prefix: String, epoch: Int) throws -> (symbol: Symbol, argParams: [String: NDArray], auxParams: [String: NDArray]) {
        let (symbolPath, paramsPath) = paths(prefix: prefix, epoch: epoch)
        let symbol = try Symbol.load(jsonFile: symbolPath)
        let (args, aux) = try loadParams(paramsPath)
        return (symbol, args, aux)
    }

    /// Reads a `.params` file into arguments and auxiliary states. Names with an `arg:` or `aux:` prefix
    /// go where the prefix says; plain names (Gluon's files) count as arguments.
    public static func loadParams(_ path: String) throws -> (argParams: [String: NDArray], auxParams: [String: NDArray]) {
        var args: [String: NDArray] = [:], aux: [String: NDArray] = [:]
        for (name, array) in try NDArray.loadParams(from: path) {
            if name.hasPrefix("aux:") { aux[String(name.dropFirst(4))] = array }
            else if name.hasPrefix("arg:") { args[String(name.dropFirst(4))] = array }
            else { args[name] = array }
        }
        return (args, aux)
    }

    /// Saves a checkpoint as MXNet's `save_checkpoint` does.
    public static func save(prefix: String, epoch: Int, symbol: Symbol, argParams: [String: NDArray], auxParams: [String: NDArray]) throws {
        let (symbolPath, paramsPath) = paths(prefix: prefix, epoch: epoch)
        try symbol.save(jsonFile: symbolPath)
        let arrays = argParams.keys.sorted().map { ("arg:" + $0, argParams[$0]!) } + auxParams.keys.sorted().map { ("aux:" + $0, auxParams[$0]!) }
        try NDArray.saveParams(arrays, to: paramsPath)
    }
}
