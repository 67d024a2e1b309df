import KilnCore
import Synchronization

/// One node of a symbolic graph: an op applied to inputs, or a variable (`op == "null"`).
/// Nodes are immutable and shared between the symbols that reach them.
public final class SymbolNode: Sendable {
    /// The op's MXNet name; `"null"` for a variable.
    public let op: String
    public let name: String
    /// Attributes as given or read from a file, without defaults filled in (so files round-trip).
    public let attributes: Attributes
    /// The node's inputs. Set once at init; only the release below empties it, when no other
    /// reference to the node exists, so no one can read it concurrently.
    public nonisolated(unsafe) private(set) var inputs: [SymbolEntry]

    public init(op: String, name: String, attributes: Attributes = [:], inputs: [SymbolEntry] = []) {
        self.op = op
        self.name = name
        self.attributes = attributes
        self.inputs = inputs
    }

    /// Whether this node is a variable (an argument or auxiliary state).
    public var isVariable: Bool { op == "null" }

    // Releasing the last reference to a node releases its inputs, and theirs: done by the default
    // deinit, that recursion is one stack frame per node, and a chain of about 35,000 nodes (a valid
    // symbol file) overflowed the stack. Here the inputs move to a list instead, and each input this
    // list alone holds hands its own inputs to the list before it is dropped, so every deinit finds
    // its inputs empty: no recursion, whatever the depth.
    deinit {
        var pending = inputs.map(\.node)
        inputs = []
        while var node = pending.popLast() {
            guard isKnownUniquelyReferenced(&node) else { continue }
            pending.append(contentsOf: node.inputs.map(\.node))
            node.inputs = []
        }
    }
}

/// One output of a node.
public struct SymbolEntry: Sendable, Hashable {
    public let node: SymbolNode
    public let index: Int

    public init(node: SymbolNode, index: Int) {
        self.node = node
        self.index = index
    }

    public static func == (a: SymbolEntry, b: SymbolEntry) -> Bool { a.node === b.node && a.index == b.index }
    public func hash(into h: inout Hasher) {
        h.combine(ObjectIdentifier(node))
        h.combine(index)
    }
}

/// A symbolic expression with one or more outputs, as MXNet's `Symbol`.
///
/// ```
/// let data = Symbol.variable("data")
/// let fc = Symbol.fullyConnected(data, numHidden: 10, name: "fc")
/// fc.listArguments()   // ["data", "fc_weight", "fc_bias"]
/// ```
public struct Symbol: Sendable {
    /// The outputs this symbol stands for.
    public let outputs: [SymbolEntry]
    /// The file (or other source) the symbol was read from, so that errors found later (at shape
    /// inference or bind) can name it; nil for symbols built in code.
    public var source: String?

    public init(outputs: [SymbolEntry], source: String? = nil) {
        self.outputs = outputs
        self.source = source
    }

    /// Runs `body`, adding this symbol's ``source`` to a graph error it throws that does not name a
    /// file yet: errors found after loading then say which file they are about.
    public func namingSource<T>(_ body: () throws -> T) throws -> T {
        do {
            return try body()
        } catch let e as GraphError {
            guard let source else { throw e }
            switch e {
            case .inFile, .malformedJSON: throw e
            case let .unknownOp(op, node, nil): throw GraphError.unknownOp(op: op, node: node, source: source)
            case let .unknownOps(ops, nil): throw GraphError.unknownOps(ops: ops, source: source)
            case .unknownOp, .unknownOps: throw e
            default: throw GraphError.inFile(source, e)
            }
        }
    }

    /// A variable: an input, weight or auxiliary state supplied at bind time.
    public static func variable(_ name: String, shape: Shape? = nil, dtype: DType? = nil, attributes: [String: String] = [:]) -> Symbol {
        var a = Attributes(attributes)
        if let shape { a["__shape__"] = AttributeText.tuple(shape.dims) }
        if let dtype { a["__dtype__"] = String(dtype.rawValue) }
        return Symbol(outputs: [SymbolEntry(node: SymbolNode(op: "null", name: name, attributes: a), index: 0)])
    }

    /// Several symbols as one with all their outputs, in order (MXNet's `Group`).
    public static func group(_ symbols: [Symbol]) -> Symbol {
        Symbol(outputs: symbols.flatMap(\.outputs))
    }

    /// The symbol of output `index` alone.
    public subscript(index: Int) -> Symbol { Symbol(outputs: [outputs[index]]) }

    /// The name of the node behind a single-output symbol.
    public var name: String? { outputs.count == 1 ? outputs[0].node.name : nil }

    /// The indexed graph of this symbol, nodes in topological order.
    public var graph: Graph { Graph(self) }

    /// Names of the arguments (inputs and weights), in MXNet's order (depth-first from the outputs).
    public func listArguments() -> [String] { graph.argumentNames }
    /// Names of the auxiliary states (BatchNorm's moving statistics).
    public func listAuxiliaryStates() -> [String] { graph.auxiliaryNames }
    /// The arguments read only as labels of loss heads (SoftmaxOutput's `softmax_label`). Inference
    /// does not need them: bind fills one that is not given with zeros of its inferred shape.
    public func listLabelArguments() -> [String] { graph.labelArgumentNames }
    /// Names of the outputs (`fc_output`, `split_output0`, ...).
    public func listOutputs() -> [String] { graph.outputNames }

    /// Applies an op by its MXNet name. Inputs not given (`nil` or missing at the end) become variables
    /// named `NAME_INPUT` (`conv0_weight`), as MXNet does. The node is named `name`, or automatically
    /// (`convolution0`). Attributes are checked when the symbol is bound or its shapes inferred.
    public static func apply(_ op: String, _ inputs: [Symbol?], attributes: [String: String] = [:], name: String? = nil) throws -> Symbol {
        let def = try OpRegistry.shared.definition(op, node: name ?? op)
        let nodeName = name ?? NameManager.shared.next(def.name)
        let names: [String]
        do {
            names = try def.inputNames(try def.resolve(Attributes(attributes), node: nodeName))
        }
        var entries: [SymbolEntry] = []
        let count = max(names.count, inputs.count)
        for i in 0..<count {
            if i < inputs.count, let s = inputs[i] {
                guard s.outputs.count == 1 else {
                    throw GraphError.invalidArgument("Input \(i) of '\(nodeName)' (\(op)) is a group of \(s.outputs.count) outputs; pass a single output")
                }
                entries.append(s.outputs[0])
            } else if i < names.count {
                entries.append(variable("\(nodeName)_\(names[i])").outputs[0])
            }
        }
        let node = SymbolNode(op: def.name, name: nodeName, attributes: Attributes(attributes), inputs: entries)
        let outCount = try def.visibleOutputCount(try def.resolve(Attributes(attributes), node: nodeName))
        return Symbol(outputs: (0..<outCount).map { SymbolEntry(node: node, index: $0) })
    }

    /// `apply` for Kiln's own constructors, whose op names and attributes are built in code and known
    /// valid; an error here is a bug in Kiln, reported by precondition. Package access only: what a
    /// user or a file names goes through the throwing ``apply(_:_:attributes:name:)``.
    package static func make(_ op: String, _ inputs: [Symbol?], attributes: [String: String] = [:], name: String? = nil) -> Symbol {
        do {
            return try apply(op, inputs, attributes: attributes, name: name)
        } catch {
            preconditionFailure("\(error)")
        }
    }
}

/// Hands out automatic node names (`convolution0`, `convolution1`, ...), as MXNet's NameManager.
public final class NameManager: Sendable {
    public static let shared = NameManager()
    private let counters = Mutex<[String: Int]>([:])

    /// The next name for an op: its lowercased MXNet name and a counter.
    public func next(_ op: String) -> String {
        let base = op.lowercased()
        return counters.withLock { c in
            let n = c[base, default: 0]
            c[base] = n + 1
            return "\(base)\(n)"
        }
    }

    /// Resets the counters (tests that compare names use it).
    public func reset() { counters.withLock { $0 = [:] } }
}
