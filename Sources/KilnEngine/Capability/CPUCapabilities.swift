import KilnCore
import KilnGraph
import KilnRuntime

// The cpu engine's ONE capability table: for each op, a rule that reads the node (attributes,
// input shapes when known, whether its weights are known at bind) and returns either how the node
// is lowered or why it is not supported. `CPUEngine.support` answers from it and `compile` lowers
// from the same answer, so a node the engine accepts always has a lowering.
//
// ```
// Convolution(kernel (3,3), weight constant)  -> lower(.convolution(...))
// Convolution(kernel (3,),  ...)              -> refuse("Convolution with kernel=(3,): ...")
// Pooling(pooling_convention same)            -> refuse("Pooling with pooling_convention=same")
// ```

/// A rule's answer: the node's lowering, or the reason it is not supported (a sentence fragment
/// naming the attribute and its value, such as `"Pooling with pool_type=lp"`).
public enum Verdict: Equatable, Sendable {
    case lower(LoweringKind)
    case refuse(String)
}

/// What a capability rule sees of a node.
public struct NodeFacts: Sendable {
    /// The node's name.
    public let name: String
    /// The op's canonical MXNet name.
    public let op: String
    /// Attributes with defaults filled in.
    public let attributes: Attributes
    public let inputNames: [String]
    /// Shapes of the inputs, when inferred.
    public let inputShapes: [Shape]?
    let constantInputs: [Bool]
    /// Indices of inputs that are weights (from the op definition).
    public let weightInputs: [Int]

    /// Whether input `k` is known at bind (a weight given as a constant).
    public func isConstant(_ k: Int) -> Bool { k < constantInputs.count && constantInputs[k] }

    /// A refusal naming an attribute and its value (`"Pooling with pool_type=lp"`), with an optional note.
    func refuse(_ attribute: String, _ note: String? = nil) -> Verdict {
        let value = attributes[attribute] ?? "?"
        return .refuse("\(op) with \(attribute)=\(value)" + (note.map { ": " + $0 } ?? ""))
    }

    /// The refusal for the first weight input not known at bind, if any.
    func unknownWeight() -> Verdict? {
        for k in weightInputs where !isConstant(k) {
            let input = k < inputNames.count ? inputNames[k] : "input \(k)"
            return .refuse("\(op) whose \(input) is not known at bind (the engine bakes weights in at compile)")
        }
        return nil
    }
}

/// One op's entry: its rule, and the inputs its lowering never reads.
struct CapabilityEntry: Sendable {
    let rule: @Sendable (NodeFacts) throws -> Verdict
    /// Inputs the lowering ignores (SoftmaxOutput's label): their type and origin do not matter.
    var ignoredInputs: Set<Int> = []
}

/// The cpu engine's capability table and the checks every op shares.
public enum CPUCapabilities {
    /// Ops with an entry (canonical MXNet names); a node of another op is never supported.
    public static var supportedOps: Set<String> { Set(table.keys) }

    static let table: [String: CapabilityEntry] = [
        "Convolution": CapabilityEntry(rule: convolution),
        "FullyConnected": CapabilityEntry(rule: fullyConnected),
        "BatchNorm": CapabilityEntry(rule: batchNorm),
        "Activation": CapabilityEntry(rule: activation),
        "LeakyReLU": CapabilityEntry(rule: leakyReLU),
        "elemwise_add": CapabilityEntry(rule: { _ in .lower(.add) }),
        "Pooling": CapabilityEntry(rule: pooling),
        "Flatten": CapabilityEntry(rule: { _ in .lower(.reshape) }),
        "Reshape": CapabilityEntry(rule: { _ in .lower(.reshape) }),
        "Dropout": CapabilityEntry(rule: dropout),
        "_copy": CapabilityEntry(rule: { _ in .lower(.identity) }),
        "Concat": CapabilityEntry(rule: concat),
        "softmax": CapabilityEntry(rule: softmax),
        "SoftmaxOutput": CapabilityEntry(rule: softmaxOutput, ignoredInputs: [1]),
    ]

    /// The verdict for the node a query asks about: checks shared by every op (a known op, float32,
    /// only the first output read), then the op's rule.
    public static func verdict(_ query: SupportQuery) -> Verdict {
        let node = query.graphNode
        guard let definition = OpRegistry.shared.lookup(node.op) else { return .refuse("\(node.op) is not an op Kiln knows") }
        guard let entry = table[definition.name] else { return .refuse("the cpu engine has no lowering for \(definition.name)") }
        let attributes: Attributes
        let inputNames: [String]
        do {
            attributes = try definition.resolve(node.attributes, node: node.name)
            inputNames = try definition.inputNames(attributes)
        } catch {
            return .refuse("\(definition.name) whose attributes do not parse (\(error))")
        }
        if let types = query.types {
            for (k, e) in node.inputs.enumerated() where !entry.ignoredInputs.contains(k) {
                let t = types.nodeOutputs[e.node][e.index]
                if t != .float32 {
                    let input = k < inputNames.count ? inputNames[k] : "input \(k)"
                    return .refuse("\(definition.name) whose \(input) has dtype \(t) (the engine runs float32)")
                }
            }
            if let t = types.nodeOutputs[query.node].first, t != .float32 {
                return .refuse("\(definition.name) whose output has dtype \(t) (the engine runs float32)")
            }
        }
        if let hidden = hiddenOutputRead(query, definition: definition, attributes: attributes) {
            return .refuse("\(definition.name) whose output '\(hidden)' is read (the engine computes only the first output)")
        }
        let facts = NodeFacts(name: node.name, op: definition.name, attributes: attributes, inputNames: inputNames,
                              inputShapes: query.inputShapes, constantInputs: node.inputs.indices.map { query.isConstant(input: $0) },
                              weightInputs: definition.weightInputs(attributes))
        do {
            return try entry.rule(facts)
        } catch {
            return .refuse("\(definition.name) whose attributes do not parse (\(error))")
        }
    }

    /// The name of an output other than the first that some node or head reads, if any.
    static func hiddenOutputRead(_ query: SupportQuery, definition: OpDefinition, attributes: Attributes) -> String? {
        let g = query.graph
        var read = Set<Int>()
        for n in g.nodes { for e in n.inputs where e.node == query.node && e.index > 0 { read.insert(e.index) } }
        for h in g.heads where h.node == query.node && h.index > 0 { read.insert(h.index) }
        guard let k = read.min() else { return nil }
        let names = (try? definition.outputNames(attributes)) ?? []
        return k < names.count ? names[k] : "output\(k)"
    }

    // MARK: Rules

    static func convolution(_ f: NodeFacts) throws -> Verdict {
        let p = try ConvolutionParameters(f.attributes)
        guard p.kernel.count == 2 else { return f.refuse("kernel", "only 2-D convolutions are lowered") }
        guard p.layout == .nchw else { return f.refuse("layout", "only NCHW is lowered") }
        if let refusal = f.unknownWeight() { return refusal }
        return .lower(.convolution(ConvolutionSpec(kernel: p.kernel, stride: p.stride, pad: p.pad, dilate: p.dilate,
                                                   groups: p.numGroup, numFilter: p.numFilter, hasBias: !p.noBias)))
    }

    static func fullyConnected(_ f: NodeFacts) throws -> Verdict {
        let p = try FullyConnectedParameters(f.attributes)
        if let refusal = f.unknownWeight() { return refusal }
        return .lower(.innerProduct(InnerProductSpec(numHidden: p.numHidden, hasBias: !p.noBias, flatten: p.flatten)))
    }

    static func batchNorm(_ f: NodeFacts) throws -> Verdict {
        let p = try BatchNormParameters(f.attributes)
        if p.outputMeanVar { return f.refuse("output_mean_var", "the engine computes only the normalized output") }
        let channelAxis: Int? = f.inputShapes.map { $0.first?.normalizedAxis(p.axis) } ?? (p.axis == 1 ? 1 : nil)
        guard channelAxis == 1 else { return f.refuse("axis", "only the channel axis 1 is lowered") }
        if let refusal = f.unknownWeight() { return refusal }
        return .lower(.batchNorm(BatchNormSpec(eps: p.eps, fixGamma: p.fixGamma)))
    }

    static func activation(_ f: NodeFacts) throws -> Verdict {
        switch try f.attributes.string("act_type") {
        case "relu": return .lower(.eltwise(EltwiseSpec(algorithm: .relu)))
        case "sigmoid": return .lower(.eltwise(EltwiseSpec(algorithm: .logistic)))
        case "tanh": return .lower(.eltwise(EltwiseSpec(algorithm: .tanh)))
        case "softrelu": return .lower(.eltwise(EltwiseSpec(algorithm: .softRelu)))
        default: return f.refuse("act_type", "oneDNN has no such eltwise function")
        }
    }

    static func leakyReLU(_ f: NodeFacts) throws -> Verdict {
        let slope = Float(try f.attributes.float("slope"))
        switch try f.attributes.string("act_type") {
        case "leaky": return .lower(.eltwise(EltwiseSpec(algorithm: .relu, alpha: slope)))
        case "elu": return .lower(.eltwise(EltwiseSpec(algorithm: .elu, alpha: slope)))
        case "gelu": return .lower(.eltwise(EltwiseSpec(algorithm: .geluErf)))
        default: return f.refuse("act_type", "only leaky, elu and gelu are lowered")
        }
    }

    static func pooling(_ f: NodeFacts) throws -> Verdict {
        let p = try PoolingParameters(f.attributes)
        let algorithm: PoolingSpec.Algorithm
        switch p.poolType {
        case .max: algorithm = .max
        case .avg: algorithm = p.countIncludePad ? .avgIncludePad : .avgExcludePad
        case .sum, .lp: return f.refuse("pool_type", "only max and avg are lowered")
        }
        if p.convention == .same { return f.refuse("pooling_convention", "only valid and full are lowered") }
        if let layout = p.layout, layout != .nchw { return f.refuse("layout", "only NCHW is lowered") }
        if !p.globalPool && p.kernel.count != 2 { return f.refuse("kernel", "only 2-D pooling is lowered") }
        let spec = PoolingSpec(algorithm: algorithm, globalPool: p.globalPool, kernel: p.kernel, stride: p.stride, pad: p.pad,
                               ceilMode: p.convention == .full)
        if let data = f.inputShapes?.first {
            guard data.rank == 4 else { return .refuse("Pooling on data of shape \(data): only 2-D pooling (rank 4) is lowered") }
            if case let .failure(refusal) = spec.geometry(input: Array(data.dims[2...])) {
                return .refuse("Pooling whose \(refusal.reason)")
            }
        }
        return .lower(.pooling(spec))
    }

    static func dropout(_ f: NodeFacts) throws -> Verdict {
        if try f.attributes.string("mode") == "always" { return f.refuse("mode", "it drops at inference too") }
        return .lower(.identity)
    }

    static func concat(_ f: NodeFacts) throws -> Verdict {
        let dim = try f.attributes.int("dim")
        guard let rank = f.inputShapes?.first?.rank else { return .lower(.concat(axis: dim)) }
        guard let axis = Shape([Int](repeating: 1, count: rank)).normalizedAxis(dim) else { return f.refuse("dim", "out of range") }
        return .lower(.concat(axis: axis))
    }

    static func softmax(_ f: NodeFacts) throws -> Verdict {
        let a = f.attributes
        if OpRegistry.useLength(a) { return f.refuse("use_length", "per-row lengths are not lowered") }
        if let t = try a.optionalFloat("temperature"), t != 1 { return f.refuse("temperature", "only 1 is lowered") }
        let dtype = try a.string("dtype")
        if dtype != "None" && dtype != "float32" { return f.refuse("dtype", "the engine runs float32") }
        let axis = try a.int("axis")
        guard let rank = f.inputShapes?.first?.rank else { return .lower(.softmax(axis: axis)) }
        guard let k = Shape([Int](repeating: 1, count: rank)).normalizedAxis(axis) else { return f.refuse("axis", "out of range") }
        return .lower(.softmax(axis: k))
    }

    /// In inference SoftmaxOutput is a softmax: over axis 1 with `multi_output`, else over the last axis
    /// (as MXNet 1.9.1's default CPU path and Kiln's kernels compute it). The label is not read.
    static func softmaxOutput(_ f: NodeFacts) throws -> Verdict {
        let multi = try f.attributes.bool("multi_output")
        guard let rank = f.inputShapes?.first?.rank else { return .lower(.softmax(axis: multi ? 1 : -1)) }
        guard rank >= 2 else { return .refuse("SoftmaxOutput on data of rank \(rank)") }
        return .lower(.softmax(axis: multi ? 1 : rank - 1))
    }
}
