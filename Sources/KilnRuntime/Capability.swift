import KilnCore
import KilnGraph

// A backend's capabilities in one table: for each op, when the backend supports a node of it and how
// it lowers that node. Support and lowering come from the same entry, so nothing the partitioner
// selects lacks a lowering (MXNet's TensorRT selector once accepted ops its converter could not convert).
//
// ```
// op name         support rule                                lowering
// Convolution  -> weightsKnownAtBind && layout in [None, NCHW] -> conv primitive
// Activation   -> act_type in [relu, tanh, sigmoid]            -> eltwise primitive
// (absent)     -> "op SoftmaxOutput is not supported"
// ```
//
// Reasons are typed (`SupportReason`), so a report can say which kind of reason a backend gave
// without reading its sentence back.

/// When a backend supports a node: a function of what is known at bind.
///
/// Rules combine with ``and(_:)``; the first refusal wins.
/// ```
/// let rule = SupportRule.weightsKnownAtBind.and(.attribute("layout", in: ["None", "NCHW"]))
/// ```
public struct SupportRule: Sendable {
    /// The rule's answer for one node.
    public let evaluate: @Sendable (SupportQuery) -> Support

    /// A rule from a function of the query.
    public init(_ evaluate: @escaping @Sendable (SupportQuery) -> Support) { self.evaluate = evaluate }

    /// Supports every node of the op.
    public static let always = SupportRule { _ in .supported }

    /// Supports the node when every weight input its op declares (``OpDefinition/weightInputs``) is a
    /// variable whose value is known at bind.
    public static let weightsKnownAtBind = SupportRule { q in
        let n = q.graphNode
        guard let (def, ctx) = try? q.graph.context(of: q.node) else {
            return .unsupported("the attributes of node '\(n.name)' cannot be read")
        }
        for k in def.weightInputs(ctx.attributes) where k < n.inputs.count && !q.isConstant(input: k) {
            return .weightsNotKnownAtBind(input: k < ctx.inputNames.count ? ctx.inputNames[k] : "input \(k)")
        }
        return .supported
    }

    /// Supports the node when attribute `name` (defaults filled in) has one of `values`.
    public static func attribute(_ name: String, in values: [String]) -> SupportRule {
        SupportRule { q in
            guard let a = try? q.graph.resolvedAttributes(of: q.node) else {
                return .unsupported("the attributes of node '\(q.graphNode.name)' cannot be read")
            }
            let v = a[name]?.trimmingWhitespace ?? "None"
            return values.contains(v) ? .supported : .unsupportedAttribute(name, value: v)
        }
    }

    /// This rule, then `other` when this one supports the node.
    public func and(_ other: SupportRule) -> SupportRule {
        let first = evaluate
        return SupportRule { q in
            let s = first(q)
            return s.isSupported ? other.evaluate(q) : s
        }
    }
}

/// A backend's capabilities: for each op it handles, one entry with the support rule and the lowering.
///
/// A backend builds its table once and answers ``Backend/support(_:)`` from it:
/// ```
/// static let table: CapabilityTable<KernelFactory> = [
///     "Convolution": .init(lowering: convFactory, when: .weightsKnownAtBind),
///     "Activation": .init(lowering: eltwiseFactory),
/// ]
/// func support(_ q: SupportQuery) -> Support { Self.table.support(q) }
/// ```
/// `Lowering` is whatever the backend compiles a node with (a kernel factory, a builder closure).
public struct CapabilityTable<Lowering: Sendable>: Sendable, ExpressibleByDictionaryLiteral {
    /// One op's capability: when it is supported and how it is lowered.
    public struct Entry: Sendable {
        public let rule: SupportRule
        public let lowering: Lowering

        /// An entry lowered by `lowering`, for the nodes `rule` supports (all by default).
        public init(lowering: Lowering, when rule: SupportRule = .always) {
            self.rule = rule
            self.lowering = lowering
        }
    }

    /// Entries by canonical MXNet op name.
    public private(set) var entries: [String: Entry]

    /// A table from entries by op name or alias.
    public init(_ entries: [String: Entry] = [:]) {
        self.entries = [:]
        for (op, e) in entries { add(op, e) }
    }

    public init(dictionaryLiteral elements: (String, Entry)...) {
        self.init(Dictionary(elements, uniquingKeysWith: { _, b in b }))
    }

    /// Adds or replaces the entry of `op` (an alias is stored under the op's canonical name).
    public mutating func add(_ op: String, _ entry: Entry) {
        entries[Self.canonical(op)] = entry
    }

    /// The entry of an op name or alias.
    public func entry(for op: String) -> Entry? { entries[Self.canonical(op)] }

    /// The lowering of an op name or alias; non-nil exactly for the ops ``support(_:)`` can accept.
    public func lowering(for op: String) -> Lowering? { entry(for: op)?.lowering }

    /// The canonical names of the ops in the table, sorted.
    public var opNames: [String] { entries.keys.sorted() }

    /// Whether the backend supports the node: variables always, ops absent from the table never
    /// (``Support/unsupportedOp(_:)``), others as their entry's rule says.
    public func support(_ query: SupportQuery) -> Support {
        let n = query.graphNode
        if n.isVariable { return .supported }
        guard let e = entry(for: n.op) else { return .unsupportedOp(Self.canonical(n.op)) }
        return e.rule.evaluate(query)
    }

    static func canonical(_ op: String) -> String { OpRegistry.shared.lookup(op)?.name ?? op }
}

extension Support {
    /// The op has no entry in the backend's table.
    public static func unsupportedOp(_ op: String) -> Support { .unsupported(.unsupportedOp(op)) }

    /// An attribute has a value the backend does not handle (`value` may carry a note in parentheses).
    public static func unsupportedAttribute(_ name: String, value: String) -> Support {
        .unsupported(.unsupportedAttribute("\(name)=\(value)"))
    }

    /// A weight input is not a variable whose value is known at bind.
    public static func weightsNotKnownAtBind(input: String) -> Support {
        .unsupported(.weightsNotKnownAtBind(input))
    }
}

/// Why a backend does not support a node: typed, so a report (and a backend deciding what to do)
/// switches on the kind instead of reading sentences back. Each kind writes itself as the sentence
/// fragment messages use (``text``); a string literal is an ``other(_:)`` reason.
///
/// ```
/// .unsupportedOp("SoftmaxActivation")     "op SoftmaxActivation is not supported"
/// .unsupportedAttribute("pool_type=lp")   "attribute pool_type=lp is not supported"
/// .weightsNotKnownAtBind("weight")        "weight 'weight' is not known at bind"
/// ```
public enum SupportReason: Sendable, Hashable, CustomStringConvertible, ExpressibleByStringInterpolation {
    /// The op is absent from the backend's table.
    case unsupportedOp(String)
    /// An attribute value (`"layout=NHWC"`, possibly with a note: `"kernel=(3,) (only 2-D ...)"`).
    case unsupportedAttribute(String)
    /// A weight input (`"weight"`) whose value is not known at bind.
    case weightsNotKnownAtBind(String)
    /// Any other reason, as the backend wrote it.
    case other(String)

    public init(stringLiteral value: String) { self = .other(value) }

    /// The sentence fragment: "op X is not supported", "attribute a=v is not supported", ...
    public var text: String {
        switch self {
        case let .unsupportedOp(op): return "op \(op) is not supported"
        case let .unsupportedAttribute(a): return "attribute \(a) is not supported"
        case let .weightsNotKnownAtBind(w): return "weight '\(w)' is not known at bind"
        case let .other(text): return text
        }
    }

    public var description: String { text }

    /// Two reasons are the same when they say the same: a backend's typed answer equals the
    /// sentence a test or a user wrote for it.
    public static func == (a: SupportReason, b: SupportReason) -> Bool { a.text == b.text }
    public func hash(into h: inout Hasher) { h.combine(text) }
}
