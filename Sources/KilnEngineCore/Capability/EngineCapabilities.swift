import KilnCore
import KilnGraph
import KilnRuntime

// An engine's ONE capability table (KilnRuntime's `CapabilityTable`): for each op, a rule that reads
// the node's typed parameters (and input shapes when known, and whether its weights are known at
// bind) and returns either the node's lowering kind or why the engine does not take it. The entry's
// support rule and its lowering are the same function, so an engine's `support` and `compile` cannot
// disagree: a node the engine accepts always has a lowering.
//
// ```
// Convolution(kernel (3,3), weight constant)  -> lower(.convolution(...))
// Convolution(kernel (3,),  ...)              -> "attribute kernel=(3,) (only 2-D convolutions are lowered) is not supported"
// Convolution(weight from another op)         -> "weight 'weight' is not known at bind"
// SoftmaxActivation                           -> "op SoftmaxActivation is not supported"
// ```
//
// The rules most ops share live in EngineRules.swift; each engine builds its table from them and
// adds what its own lowering cannot do (`rule.refusing { ... }`). Reasons use KilnRuntime's
// `Support` constructors, so a partition report can tell an unsupported op, an attribute value and
// unknown weights apart.

/// A rule's answer: the node's lowering, or the typed reason it is not supported (such as
/// `.unsupportedAttribute("pool_type=lp (only max and avg are lowered)")`).
public enum Verdict: Equatable, Sendable {
    case lower(LoweringKind)
    case refuse(SupportReason)

    /// The answer a backend gives for this verdict.
    public var support: Support {
        switch self {
        case .lower: return .supported
        case let .refuse(reason): return .unsupported(reason)
        }
    }
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

    public init(name: String, op: String, attributes: Attributes, inputNames: [String], inputShapes: [Shape]?,
                constantInputs: [Bool], weightInputs: [Int]) {
        (self.name, self.op, self.attributes, self.inputNames, self.inputShapes) = (name, op, attributes, inputNames, inputShapes)
        (self.constantInputs, self.weightInputs) = (constantInputs, weightInputs)
    }

    /// Whether input `k` is known at bind (a weight given as a constant).
    public func isConstant(_ k: Int) -> Bool { k < constantInputs.count && constantInputs[k] }

    /// A refusal naming an attribute and its value, with a note on what is lowered
    /// (`"attribute pool_type=lp (only max and avg are lowered) is not supported"`).
    public func refuse(_ attribute: String, _ note: String? = nil) -> Verdict {
        let value = attributes[attribute] ?? "?"
        return .refuse(.unsupportedAttribute("\(attribute)=\(value)" + (note.map { " (\($0))" } ?? "")))
    }

    /// The refusal for the first weight input not known at bind, if any.
    public func unknownWeight() -> Verdict? {
        for k in weightInputs where !isConstant(k) {
            return .refuse(.weightsNotKnownAtBind(k < inputNames.count ? inputNames[k] : "input \(k)"))
        }
        return nil
    }
}

/// How an engine lowers one op's nodes: the op's rule, run again when the IR is built, and the inputs
/// the lowering never reads (SoftmaxOutput's label), whose type and origin do not matter.
public struct EngineLowering: Sendable {
    public let rule: @Sendable (NodeFacts) throws -> Verdict
    public var ignoredInputs: Set<Int> = []

    public init(ignoredInputs: Set<Int> = [], rule: @escaping @Sendable (NodeFacts) throws -> Verdict) {
        self.rule = rule
        self.ignoredInputs = ignoredInputs
    }

    /// This lowering with a further condition of one engine: `check` returns a refusal for nodes the
    /// engine's own code cannot take, after the shared rule has accepted them.
    public func refusing(_ check: @escaping @Sendable (NodeFacts, LoweringKind) throws -> Verdict?) -> EngineLowering {
        let first = rule
        return EngineLowering(ignoredInputs: ignoredInputs) { f in
            let v = try first(f)
            guard case let .lower(kind) = v else { return v }
            return try check(f, kind) ?? v
        }
    }
}


/// One engine's capability table and the checks every op shares (see the file's note).
public struct EngineCapabilities: Sendable {
    /// The engine's name, for errors (`cpu`, `cuda`).
    public let engine: String
    /// The dtype the engine computes in at its borders (every input and output of a node).
    public let dtype: DType
    /// The table. Each entry's support rule is its lowering's rule with the shared checks
    /// (``verdict(_:)``), so what `support` accepts is what the IR builder lowers.
    public let table: CapabilityTable<EngineLowering>

    /// A table from lowerings by op name (or alias).
    public init(engine: String, dtype: DType = .float32, lowerings: [String: EngineLowering]) {
        self.engine = engine
        self.dtype = dtype
        var table = CapabilityTable<EngineLowering>()
        for (op, lowering) in lowerings {
            table.add(op, .init(lowering: lowering, when: SupportRule { q in Self.verdict(q, lowering, dtype: dtype).support }))
        }
        self.table = table
    }

    /// Ops with an entry (canonical MXNet names); a node of another op is never supported.
    public var supportedOps: Set<String> { Set(table.opNames) }

    /// Whether the engine supports the node (variables always).
    public func support(_ query: SupportQuery) -> Support { table.support(query) }

    /// The verdict for the node a query asks about: ops absent from the table are refused
    /// (`op X is not supported`); the others go through the shared checks and their rule.
    public func verdict(_ query: SupportQuery) -> Verdict {
        let node = query.graphNode
        let op = OpRegistry.shared.lookup(node.op)?.name ?? node.op
        guard let entry = table.entry(for: op) else { return .refuse(.unsupportedOp(op)) }
        return Self.verdict(query, entry.lowering, dtype: dtype)
    }

    /// Checks shared by every op (the engine's dtype), the op's rule, then that only the first output is read.
    static func verdict(_ query: SupportQuery, _ entry: EngineLowering, dtype: DType) -> Verdict {
        let node = query.graphNode
        guard let definition = OpRegistry.shared.lookup(node.op) else { return .refuse(.unsupportedOp(node.op)) }
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
                if t != dtype {
                    let input = k < inputNames.count ? inputNames[k] : "input \(k)"
                    return .refuse("input '\(input)' has dtype \(t) (the engine runs \(dtype))")
                }
            }
            if let t = types.nodeOutputs[query.node].first, t != dtype {
                return .refuse("the output has dtype \(t) (the engine runs \(dtype))")
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
        guard let k = query.readOutputIndices.filter({ $0 > 0 }).min() else { return nil }
        let names = (try? definition.outputNames(attributes)) ?? []
        return k < names.count ? names[k] : "output\(k)"
    }
}
