import KilnCore
import Synchronization

// The engine node, `_kiln_engine`: one node standing for a group of ops that an engine runs as a
// whole. The group travels inside the node as symbol JSON text, so a partitioned symbol saves and
// loads as any other:
//
// ```
// data ─┐                                  ┌ subgraph: {"nodes": [data, conv0_weight, conv0, relu0], ...}
// w ────┼─ _kiln_engine(kiln_engine0) ─ out│ backend: "cpu", options: "precision=fp32"
//       │                                  └ num_inputs: 2, num_outputs: 1
// ```
//
// The inner graph's variables are the node's inputs, named after the outer entries they stand for
// (`data`, `conv0_weight`, `pool1_output`); its heads are the node's outputs. Inputs come in the
// inner symbol's `list_arguments` order followed by its `list_auxiliary_states`, so a BatchNorm's
// moving statistics stay auxiliary states of the partitioned symbol and a checkpoint's `aux:` arrays
// still bind. Shape and type rules infer through the inner graph; the engine node is opaque to fusion.
//
// MXNet 1.x's subgraph nodes (`_TensorRT`, `_CachedOp`) wrote their body under a node-level
// `subgraphs` field of the JSON; Kiln keeps it in an attribute, so its JSON reader needs no new field.
extension OpRegistry {
    static var engineOps: [OpDefinition] { [engine] }

    static var engine: OpDefinition {
        OpDefinition(
            name: EngineSubgraph.opName,
            attributes: [
                AttributeSpec("subgraph", .string),
                AttributeSpec("backend", .string),
                AttributeSpec("options", .string, default: ""),
                AttributeSpec("num_inputs", .int),
                AttributeSpec("num_outputs", .int),
            ],
            fusion: .opaque,
            inputs: { a in try EngineSubgraph(a).inputNames },
            auxiliaryCount: { a in (try? EngineSubgraph(a).auxiliaryCount) ?? 0 },
            outputs: { a in try EngineSubgraph(a).outputNames },
            // An input that is a label inside the group (SoftmaxOutput's, taken whole) stays a label
            // outside, so a partitioned model needs no label at inference either.
            labelInputs: { a in (try? EngineSubgraph(a).labelInputs) ?? [] },
            inferShape: { shapes, ctx in
                let sub = try EngineSubgraph(ctx.attributes)
                try checkEngineInputCount(shapes.count, sub, ctx)
                var given: [String: Shape] = [:]
                for (k, s) in shapes.enumerated() { if let s { given[sub.inputNames[k]] = s } }
                let inner = try sub.graph.inferShapes(given)
                for k in shapes.indices {
                    guard let s = inner.byName[sub.inputNames[k]] else { throw GraphError.unknownShape(node: ctx.name, input: sub.inputNames[k]) }
                    try ctx.assign(&shapes, k, s)
                }
                return inner.outputs
            },
            inferType: { types, ctx in
                let sub = try EngineSubgraph(ctx.attributes)
                try checkEngineInputCount(types.count, sub, ctx)
                var given: [String: DType] = [:]
                for (k, t) in types.enumerated() { if let t { given[sub.inputNames[k]] = t } }
                let inner = try sub.graph.inferTypes(given)
                for k in types.indices where types[k] == nil { types[k] = inner.byName[sub.inputNames[k]] }
                return inner.outputs
            })
    }

    static func checkEngineInputCount(_ count: Int, _ sub: EngineSubgraph, _ ctx: NodeContext) throws {
        guard count == sub.inputNames.count else {
            throw GraphError.inputCount(node: ctx.name, op: ctx.op, expected: "\(sub.inputNames.count) (\(sub.inputNames.joined(separator: ", ")))", actual: count)
        }
    }
}

/// The group inside an engine node (`_kiln_engine`): its graph, read from the node's `subgraph`
/// attribute, and the names of its inputs and outputs.
///
/// Parsing is cached by the attribute's text, so the op's rules may ask for it as often as they like.
public struct EngineSubgraph: Sendable {
    /// The op name of engine nodes.
    public static let opName = "_kiln_engine"

    /// The group's graph; its variables are the engine node's inputs.
    public let graph: Graph
    /// Names of the inner variables in the engine node's input order: the inner arguments, then the
    /// inner auxiliary states.
    public let inputNames: [String]
    /// How many trailing inputs are auxiliary states.
    public let auxiliaryCount: Int
    /// Indices of the inputs that are only labels of loss heads inside the group.
    public let labelInputs: [Int]
    /// The outputs' names (MXNet's `list_outputs` of the inner symbol: `relu0_output`).
    public let outputNames: [String]
    /// The `backend` attribute: the name of the engine that runs the group.
    public let backend: String
    /// The `options` attribute: the engine's options as a compact string.
    public let options: String

    /// The subgraph of an engine node's attributes, checked against `num_inputs` and `num_outputs`.
    public init(_ attributes: Attributes) throws {
        func invalid(_ key: String, _ expected: String) -> GraphError {
            // The error's description quotes a long value by its start and length (GraphError.excerpt).
            return .invalidAttribute(node: attributes.node, op: Self.opName, attribute: key,
                                     value: attributes[key] ?? "", expected: expected)
        }
        guard let text = attributes["subgraph"] else {
            throw GraphError.missingAttribute(node: attributes.node, op: Self.opName, attribute: "subgraph")
        }
        let parsed: Parsed
        if let cached = Self.cache.withLock({ $0[text] }) {
            parsed = cached
        } else {
            let symbol: Symbol
            do {
                symbol = try Symbol(json: text, source: "the subgraph of engine node '\(attributes.node)'")
            } catch let e as GraphError {
                throw GraphError.invalidAttribute(node: attributes.node, op: Self.opName, attribute: "subgraph",
                                                  value: text,
                                                  expected: "symbol JSON of the group (\(e.description))")
            }
            let g = symbol.graph
            let names = g.argumentNames + g.auxiliaryNames, labels = Set(g.labelArgumentNames)
            parsed = Parsed(graph: g, inputNames: names, auxiliaryCount: g.auxiliaryNames.count, outputNames: g.outputNames,
                            labelInputs: names.indices.filter { labels.contains(names[$0]) })
            Self.cache.withLock { c in
                if c.count >= 256 { c.removeAll() }
                c[text] = parsed
            }
        }
        let numInputs = try attributes.int("num_inputs"), numOutputs = try attributes.int("num_outputs")
        guard numInputs == parsed.inputNames.count else {
            throw invalid("num_inputs", "\(parsed.inputNames.count), the number of variables of the subgraph")
        }
        guard numOutputs == parsed.outputNames.count else {
            throw invalid("num_outputs", "\(parsed.outputNames.count), the number of heads of the subgraph")
        }
        graph = parsed.graph
        inputNames = parsed.inputNames
        auxiliaryCount = parsed.auxiliaryCount
        labelInputs = parsed.labelInputs
        outputNames = parsed.outputNames
        backend = attributes["backend"] ?? ""
        options = attributes["options"] ?? ""
    }

    /// The attributes of an engine node that runs `subgraph` on the engine named `backend`.
    ///
    /// The subgraph's variables become the node's inputs, in the order of ``inputNames`` of the result.
    public static func attributes(subgraph: Symbol, backend: String, options: String = "") throws -> Attributes {
        let text = try compactJSON(subgraph)
        let g = try Symbol(json: text, source: "engine subgraph").graph
        return Attributes([
            "subgraph": text,
            "backend": backend,
            "options": options,
            "num_inputs": String(g.argumentNames.count + g.auxiliaryNames.count),
            "num_outputs": String(g.heads.count),
        ])
    }

    /// The symbol's JSON on one line: the writer's layout with its newlines and indentation removed
    /// (quoted strings never hold a raw newline, so only layout is dropped).
    static func compactJSON(_ symbol: Symbol) throws -> String {
        try symbol.jsonString().split(separator: "\n").map { line in
            line.drop { $0 == " " }
        }.joined()
    }

    struct Parsed: Sendable {
        let graph: Graph
        let inputNames: [String]
        let auxiliaryCount: Int
        let outputNames: [String]
        let labelInputs: [Int]
    }

    private static let cache = Mutex<[String: Parsed]>([:])
}
