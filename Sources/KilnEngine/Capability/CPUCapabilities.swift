import KilnCore
import KilnGraph
import KilnRuntime

// The cpu engine's ONE capability table (KilnRuntime's `CapabilityTable`): for each op, a rule that
// reads the node (attributes, input shapes when known, whether its weights are known at bind) and
// returns either how the node is lowered or why it is not supported. The entry's support rule and
// its lowering are the same function, so `CPUEngine.support` and `compile` cannot disagree: a node
// the engine accepts always has a lowering.
//
// ```
// Convolution(kernel (3,3), weight constant)  -> lower(.convolution(...))
// Convolution(kernel (3,),  ...)              -> "attribute kernel=(3,) (only 2-D convolutions are lowered) is not supported"
// Convolution(weight from another op)         -> "weight 'weight' is not known at bind"
// SoftmaxActivation                           -> "op SoftmaxActivation is not supported"
// ```
//
// Reasons use KilnRuntime's `Support` constructors, so a partition report can tell an unsupported
// op, an attribute value and unknown weights apart (`SupportReason`).

/// A rule's answer: the node's lowering, or the reason it is not supported (the text of an
/// `.unsupported` answer, such as `"attribute pool_type=lp (only max and avg are lowered) is not supported"`).
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
    /// The op's input names (`data`, `weight`, `bias`).
    public let inputNames: [String]
    /// Shapes of the inputs, when inferred.
    public let inputShapes: [Shape]?
    let constantInputs: [Bool]
    /// Indices of inputs that are weights (from the op definition).
    public let weightInputs: [Int]

    /// Whether input `k` is known at bind (a weight given as a constant).
    public func isConstant(_ k: Int) -> Bool { k < constantInputs.count && constantInputs[k] }

    /// A refusal naming an attribute and its value, with a note on what is lowered
    /// (`"attribute pool_type=lp (only max and avg are lowered) is not supported"`).
    func refuse(_ attribute: String, _ note: String? = nil) -> Verdict {
        let value = attributes[attribute] ?? "?"
        return .refuse(Support.unsupportedAttribute(attribute, value: value + (note.map { " (\($0))" } ?? "")).text)
    }

    /// The refusal for the first weight input not known at bind, if any.
    func unknownWeight() -> Verdict? {
        for k in weightInputs where !isConstant(k) {
            return .refuse(Support.weightsNotKnownAtBind(input: k < inputNames.count ? inputNames[k] : "input \(k)").text)
        }
        return nil
    }
}

/// How the engine lowers one op's nodes: the op's rule, run again when the IR is built, and the
/// inputs the lowering never reads (SoftmaxOutput's label), whose type and origin do not matter.
public struct EngineLowering: Sendable {
    let rule: @Sendable (NodeFacts) throws -> Verdict
    var ignoredInputs: Set<Int> = []
}

extension Support {
    /// The reason text of an `.unsupported` answer (empty when supported).
    var text: String { if case let .unsupported(t) = self { return t } else { return "" } }
}

/// The cpu engine's capability table and the checks every op shares.
public enum CPUCapabilities {
    /// Ops with an entry (canonical MXNet names); a node of another op is never supported.
    public static var supportedOps: Set<String> { Set(table.opNames) }

    /// The table. Each entry's support rule is its lowering's rule with the shared checks
    /// (``verdict(_:)``), so what `support` accepts is what the IR builder lowers.
    public static let table: CapabilityTable<EngineLowering> = {
        let lowerings: [String: EngineLowering] = [
            "Convolution": EngineLowering(rule: convolution),
            "FullyConnected": EngineLowering(rule: fullyConnected),
            "BatchNorm": EngineLowering(rule: batchNorm),
            "Activation": EngineLowering(rule: activation),
            "LeakyReLU": EngineLowering(rule: leakyReLU),
            "elemwise_add": EngineLowering(rule: { _ in .lower(.add) }),
            "Pooling": EngineLowering(rule: pooling),
            "Flatten": EngineLowering(rule: { _ in .lower(.reshape) }),
            "Reshape": EngineLowering(rule: { _ in .lower(.reshape) }),
            "Dropout": EngineLowering(rule: dropout),
            "_copy": EngineLowering(rule: { _ in .lower(.identity) }),
            "Concat": EngineLowering(rule: concat),
            "softmax": EngineLowering(rule: softmax),
            "SoftmaxOutput": EngineLowering(rule: softmaxOutput, ignoredInputs: [1]),
        ]
        var table = CapabilityTable<EngineLowering>()
        for (op, lowering) in lowerings {
            table.add(op, .init(lowering: lowering, when: SupportRule { q in
                switch verdict(q, lowering) {
                case .lower: return .supported
                case let .refuse(reason): return .unsupported(reason)
                }
            }))
        }
        return table
    }()

    /// The verdict for the node a query asks about, from the table: ops absent from it are refused
    /// (`op X is not supported`); the others go through ``verdict(_:_:)``.
    public static func verdict(_ query: SupportQuery) -> Verdict {
        let node = query.graphNode
        let op = OpRegistry.shared.lookup(node.op)?.name ?? node.op
        guard let entry = table.entry(for: op) else { return .refuse(Support.unsupportedOp(op).text) }
        return verdict(query, entry.lowering)
    }

    /// Checks shared by every op (float32), the op's rule, then that only the first output is read.
    static func verdict(_ query: SupportQuery, _ entry: EngineLowering) -> Verdict {
        let node = query.graphNode
        guard let definition = OpRegistry.shared.lookup(node.op) else { return .refuse(Support.unsupportedOp(node.op).text) }
        let attributes: Attributes
        let inputNames: [String]
        do {
            attributes = try definition.resolve(node.attributes, node: node.name)
            inputNames = try definition.inputNames(attributes)
        } catch {
            return .refuse("the attributes of node '\(node.name)' cannot be read (\(error))")
        }
        if let types = query.types {
            for (k, e) in node.inputs.enumerated() where !entry.ignoredInputs.contains(k) {
                let t = types.nodeOutputs[e.node][e.index]
                if t != .float32 {
                    let input = k < inputNames.count ? inputNames[k] : "input \(k)"
                    return .refuse("input '\(input)' has dtype \(t) (the engine runs float32)")
                }
            }
            if let t = types.nodeOutputs[query.node].first, t != .float32 {
                return .refuse("the output has dtype \(t) (the engine runs float32)")
            }
        }
        let facts = NodeFacts(name: node.name, op: definition.name, attributes: attributes, inputNames: inputNames,
                              inputShapes: query.inputShapes, constantInputs: node.inputs.indices.map { query.isConstant(input: $0) },
                              weightInputs: definition.weightInputs(attributes))
        let verdict: Verdict
        do {
            verdict = try entry.rule(facts)
        } catch {
            return .refuse("the attributes of node '\(node.name)' cannot be read (\(error))")
        }
        // The op's own reason comes first; an accepted node may still have a hidden output read.
        if case .lower = verdict, let hidden = hiddenOutputRead(query, definition: definition, attributes: attributes) {
            return .refuse("output '\(hidden)' is read (the engine computes only the first output)")
        }
        return verdict
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
            guard data.rank == 4 else { return .refuse("data of shape \(data) is not 4-D (only 2-D pooling is lowered)") }
            if case let .failure(refusal) = spec.geometry(input: Array(data.dims[2...])) {
                return f.refuse(refusal.attribute, refusal.reason)
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
        guard rank >= 2 else { return .refuse("data of rank \(rank) (SoftmaxOutput needs rank 2 or more)") }
        return .lower(.softmax(axis: multi ? 1 : rank - 1))
    }
}
