import Foundation
import KilnCore
import KilnGraph
import KilnRuntime

/// One training step of real MXNet 1.9.1 (`tools/golden/make_golden_grads.py`): a symbol (one op, or a
/// whole model), its arguments and auxiliary states, the head gradients MXNet was given, and what
/// `forward(is_train=True)` and `backward` produced.
///
/// ```
/// arg:*, aux:* ──forward(isTrain: true)──> out:*   (compare)
///                 ograd:* ──backward──────> grad:*  (compare, for gradientArguments only)
///                                           aux states ──> auxafter:*   (compare)
/// ```
public struct GoldenGradientCase: Sendable {
    public let name: String
    /// The op, or "model" for a whole network.
    public let op: String
    public let symbol: Symbol
    public let arguments: [String: NDArray]
    public let auxiliaryStates: [String: NDArray]
    /// The gradient MXNet was given for each output, in output order.
    public let headGradients: [NDArray]
    /// MXNet's training-mode outputs, in output order.
    public let outputs: [NDArray]
    /// MXNet's gradient of each argument in ``gradientArguments``.
    public let gradients: [String: NDArray]
    /// The auxiliary states after the training step, forward then backward (BatchNorm's moving
    /// statistics, which MXNet 1.9 updates in its backward).
    public let auxiliaryStatesAfter: [String: NDArray]
    /// The arguments MXNet bound with `write`; every other argument (labels) had `null`.
    public let gradientArguments: [String]
    /// Gradients MXNet 1.9.1 itself gets wrong (checked against finite differences when the fixtures
    /// were made), by argument, with what is wrong. They are kept as MXNet wrote them.
    public let mxnetWrong: [String: String]

    /// The gradient requests MXNet bound with, for `bind(gradReqs:)`.
    public var gradientRequests: [String: GradReq] {
        var reqs: [String: GradReq] = [:]
        for name in symbol.listArguments() { reqs[name] = gradientArguments.contains(name) ? .write : .null }
        return reqs
    }
}

extension GoldenFixtures {
    /// One line of `grads/index.json` or `grads/models/index.json`.
    struct GradientIndexEntry: Decodable {
        let name: String
        let op: String?
        let gradientArguments: [String]
        let parametersFrom: String?
        let mxnetWrong: [String: String]?

        enum CodingKeys: String, CodingKey {
            case name = "case", op, gradientArguments = "grad_arguments", parametersFrom = "parameters_from"
            case mxnetWrong = "mxnet_wrong"
        }
    }

    /// The one-op cases in the index's order, then the models.
    func gradientIndex() throws -> [GradientIndexEntry] {
        try index("grads/index.json", of: GradientIndexEntry.self) + index("grads/models/index.json", of: GradientIndexEntry.self)
    }

    /// Names of the one-op gradient cases in the index's order, then the models (`models/lenet`, ...).
    public func gradientCaseNames() throws -> [String] { try gradientIndex().map(\.name) }

    /// Loads one gradient case (`"Convolution_2d_k3"`, `"models/lenet"`).
    public func gradientCase(_ name: String) throws -> GoldenGradientCase {
        let paramsPath = url("grads/\(name).params").path
        guard let entry = try gradientIndex().first(where: { $0.name == name }) else {
            throw KilnCoreError.malformedFile(path: url("grads/index.json").path, field: name,
                                              reason: "the case is not in the index")
        }
        let symbol = try Symbol.load(jsonFile: url("grads/\(name).json").path)
        var args: [String: NDArray] = [:], aux: [String: NDArray] = [:], grads: [String: NDArray] = [:]
        var auxAfter: [String: NDArray] = [:], outs: [Int: NDArray] = [:], ograds: [Int: NDArray] = [:]
        // A model's weights may live in a checkpoint of its own; the case's file adds data and label.
        if let base = entry.parametersFrom {
            for (key, array) in try NDArray.loadParams(from: url(base).path) {
                if key.hasPrefix("arg:") { args[String(key.dropFirst(4))] = array }
                else if key.hasPrefix("aux:") { aux[String(key.dropFirst(4))] = array }
            }
        }
        for (key, array) in try NDArray.loadParams(from: paramsPath) {
            guard let colon = key.firstIndex(of: ":") else {
                throw KilnCoreError.malformedFile(path: paramsPath, field: key, reason: "the key has no kind: prefix")
            }
            let kind = key[..<colon], rest = String(key[key.index(after: colon)...])
            switch kind {
            case "arg": args[rest] = array
            case "aux": aux[rest] = array
            case "grad": grads[rest] = array
            case "auxafter": auxAfter[rest] = array
            case "out", "ograd":
                guard let i = Int(rest) else {
                    throw KilnCoreError.malformedFile(path: paramsPath, field: key, reason: "the output index is not a number")
                }
                if kind == "out" { outs[i] = array } else { ograds[i] = array }
            default:
                throw KilnCoreError.malformedFile(path: paramsPath, field: key, reason: "unknown kind '\(kind)'")
            }
        }
        func ordered(_ d: [Int: NDArray], _ what: String) throws -> [NDArray] {
            guard d.keys.sorted() == Array(0..<d.count) else {
                throw KilnCoreError.malformedFile(path: paramsPath, field: what, reason: "indices \(d.keys.sorted()) are not 0..<\(d.count)")
            }
            return (0..<d.count).compactMap { d[$0] }
        }
        let op = entry.op ?? "model"
        return GoldenGradientCase(name: name, op: op, symbol: symbol, arguments: args, auxiliaryStates: aux,
                                  headGradients: try ordered(ograds, "ograd"), outputs: try ordered(outs, "out"),
                                  gradients: grads, auxiliaryStatesAfter: auxAfter,
                                  gradientArguments: entry.gradientArguments, mxnetWrong: entry.mxnetWrong ?? [:])
    }
}
