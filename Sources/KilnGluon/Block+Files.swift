import Foundation
import KilnCore
import KilnGraph

extension Block {
    /// Writes the parameters as Gluon's `save_parameters` does: an MXNet `.params` file whose names are
    /// structural (`features.0.weight`, `stage1.0.body.1.gamma`), independent of the name prefix.
    public func saveParameters(to path: String) throws {
        var arrays: [(String, NDArray)] = []
        for (name, p) in structuralParameters() { arrays.append((name, try p.data())) }
        try NDArray.saveParams(arrays, to: path)
    }

    /// Reads a Gluon `save_parameters` file into the parameters by structural name.
    ///
    /// Files written with full names (Gluon's older `save_params`, `cifarresnetv10_conv0_weight`) are
    /// read by full name. Unknown shapes are taken from the file.
    ///
    /// - Throws: ``GluonError/missingParameter(file:parameter:)`` for a parameter the file lacks (unless
    ///   `allowMissing`), ``GluonError/extraParameter(file:parameter:)`` for one the block lacks (unless
    ///   `ignoreExtra`), and shape mismatches naming the parameter and the file.
    public func loadParameters(from path: String, allowMissing: Bool = false, ignoreExtra: Bool = false) throws {
        let loaded = try NDArray.loadParams(from: path)
        var byName: [String: NDArray] = [:]
        for (n, a) in loaded { byName[n] = a }
        let structural = structuralParameters()
        let structuralNames = Set(structural.map(\.name))
        // A file of full names (no structural name matches, some full name does) is read by full name.
        if !byName.keys.contains(where: structuralNames.contains) {
            let params = collectParams()
            if byName.keys.contains(where: { params[$0] != nil }) {
                try params.setData(byName, source: path, allowMissing: allowMissing, ignoreExtra: ignoreExtra)
                return
            }
        }
        if !ignoreExtra, let extra = loaded.map(\.name).first(where: { !structuralNames.contains($0) }) {
            throw GluonError.extraParameter(file: path, parameter: extra)
        }
        for (name, p) in structural {
            guard let a = byName[name] else {
                if allowMissing { continue }
                throw GluonError.missingParameter(file: path, parameter: name)
            }
            try p.setData(a, source: "the file '\(path)'")
        }
    }
}

extension HybridBlock {
    /// Writes `PREFIX-symbol.json` (the graph traced on a variable `data`) and `PREFIX-EPOCH.params`
    /// (`arg:NAME` / `aux:NAME` by full Gluon name), as Gluon's `export`; Kiln's ``Checkpoint`` and
    /// MXNet's `load_checkpoint` read them.
    public func export(prefix: String, epoch: Int = 0) throws {
        let sym = try symbol()
        var args: [String: NDArray] = [:], aux: [String: NDArray] = [:]
        for p in collectParams() {
            if p.isAuxiliary { aux[p.name] = try p.data() } else { args[p.name] = try p.data() }
        }
        try Checkpoint.save(prefix: prefix, epoch: epoch, symbol: sym, argParams: args, auxParams: aux)
    }
}
