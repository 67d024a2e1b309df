/// Every op Kiln knows, by MXNet name and alias.
///
/// Each op family contributes one list in its own file (`OpRegistry+NN.swift`, ...); this type only
/// indexes them, so adding an op touches its family's file and nothing else.
public struct OpRegistry: Sendable {
    private var byName: [String: OpDefinition] = [:]
    /// Definitions in registration order, without aliases.
    public private(set) var definitions: [OpDefinition] = []

    /// The registry of all built-in ops.
    public static let shared = OpRegistry(OpRegistry.builtinFamilies.flatMap { $0 })

    public init(_ definitions: [OpDefinition]) {
        for d in definitions { register(d) }
    }

    /// Adds a definition; a later one with the same name replaces the earlier.
    public mutating func register(_ d: OpDefinition) {
        if byName[d.name] == nil { definitions.append(d) } else {
            definitions.removeAll { $0.name == d.name }
            definitions.append(d)
        }
        byName[d.name] = d
        for a in d.aliases { byName[a] = d }
    }

    /// The definition for an op name or alias.
    public func lookup(_ name: String) -> OpDefinition? { byName[name] }

    /// The definition for an op name or alias, or an error naming the node.
    public func definition(_ name: String, node: String, source: String? = nil) throws -> OpDefinition {
        guard let d = byName[name] else { throw GraphError.unknownOp(op: name, node: node, source: source) }
        return d
    }

    /// All names and aliases.
    public var allNames: [String] { byName.keys.sorted() }
}
