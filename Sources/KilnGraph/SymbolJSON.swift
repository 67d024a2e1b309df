import Foundation
import KilnCore

/// Reading and writing MXNet's symbol JSON (`PREFIX-symbol.json`).
///
/// ```
/// {"nodes": [{"op": "null", "name": "data", "inputs": []},
///            {"op": "Activation", "name": "relu0", "attrs": {"act_type": "relu"}, "inputs": [[0, 0, 0]]}],
///  "arg_nodes": [0], "node_row_ptr": [0, 1, 2], "heads": [[1, 0, 0]],
///  "attrs": {"mxnet_version": ["int", 10901]}}
/// ```
///
/// Files of MXNet before 0.9 use `param` and `attr` instead of `attrs`, two-element input entries, and
/// may leave out weight inputs; they are upgraded on reading as MXNet does (missing inputs become
/// variables `NODE_INPUT`, hidden `attr` keys become `__key__`).
extension Symbol {
    /// Reads a symbol JSON file.
    public static func load(jsonFile path: String) throws -> Symbol {
        // The reader says what the path is (a directory, missing, unreadable) and checks the size
        // against the memory budget before reading.
        try Symbol(json: readFileContents(atPath: path), source: path)
    }

    /// Reads symbol JSON text; `source` names it in errors.
    public init(json: String, source: String = "symbol JSON") throws {
        try self.init(json: Data(json.utf8), source: source)
    }

    /// Reads symbol JSON bytes; `source` names it in errors.
    public init(json data: Data, source: String = "symbol JSON") throws {
        func bad(_ field: String, _ reason: String) -> GraphError { .malformedJSON(source: source, field: field, reason: reason) }
        guard data.contains(where: { ![0x20, 0x09, 0x0A, 0x0D].contains($0) }) else {
            throw bad("the top level", "the file is empty")
        }
        let object: JSONValue
        do {
            object = try JSONValue.parse(data)
        } catch {
            throw bad("the top level", "it is not valid JSON (\(Self.reason(error, in: data)))")
        }
        guard let top = object.object else { throw bad("the top level", "expected an object with 'nodes' and 'heads'") }
        guard let rawNodes = top["nodes"]?.array else { throw bad("nodes", "expected a list of nodes") }
        let legacy = top["attrs"]?.object?["mxnet_version"] == nil

        // Every op the registry lacks, named at once: a model missing five ops should not take five
        // rounds of "unknown op" to list them.
        var unknown: [UnknownOpUse] = []
        for raw in rawNodes {
            guard let n = raw.object, let op = n["op"]?.string, op != "null", OpRegistry.shared.lookup(op) == nil else { continue }
            let name = n["name"]?.string ?? "?"
            if let k = unknown.firstIndex(where: { $0.op == op }) {
                unknown[k] = UnknownOpUse(op: op, firstNode: unknown[k].firstNode, count: unknown[k].count + 1)
            } else {
                unknown.append(UnknownOpUse(op: op, firstNode: name, count: 1))
            }
        }
        if unknown.count > 1 { throw GraphError.unknownOps(ops: unknown, source: source) }

        var built: [SymbolNode] = []
        for (i, raw) in rawNodes.enumerated() {
            let field = "nodes[\(i)]"
            guard let n = raw.object else { throw bad(field, "expected an object") }
            guard let op = n["op"]?.string else { throw bad("\(field).op", "expected a string") }
            guard let name = n["name"]?.string else { throw bad("\(field).name", "expected a string") }
            var attrs: [String: String] = [:]
            for key in ["param", "attrs"] {
                if let v = n[key] {
                    guard let d = v.object else { throw bad("\(field).\(key)", "expected an object of strings") }
                    for (k, x) in d {
                        guard let text = x.attributeText else { throw bad("\(field).\(key).\(k)", "expected a string value") }
                        attrs[k] = text
                    }
                }
            }
            if let v = n["attr"] {
                guard let d = v.object else { throw bad("\(field).attr", "expected an object of strings") }
                for (k, x) in d {
                    let key = k.hasPrefix("__") || !legacy ? k : "__\(k)__"
                    guard let text = x.attributeText else { throw bad("\(field).attr.\(k)", "expected a string value") }
                    attrs[key] = text
                }
            }
            guard let rawInputs = (n["inputs"] ?? .array([])).array else { throw bad("\(field).inputs", "expected a list") }
            var inputs: [SymbolEntry] = []
            for (k, e) in rawInputs.enumerated() {
                let f = "\(field).inputs[\(k)]"
                guard let entry = e.array, entry.count >= 2, entry.count <= 3,
                      let src = entry[0].integer, let idx = entry[1].integer else {
                    throw bad(f, "expected [node, output] or [node, output, version] with integers")
                }
                guard src >= 0 && src < i else { throw bad(f, "node '\(name)' reads node \(src), which does not come before it") }
                guard idx >= 0 else { throw bad(f, "the output index \(idx) is negative") }
                inputs.append(SymbolEntry(node: built[src], index: idx))
            }
            if op != "null" {
                guard let def = OpRegistry.shared.lookup(op) else { throw GraphError.unknownOp(op: op, node: name, source: source) }
                let resolved: Attributes
                do {
                    resolved = try def.resolve(Attributes(attrs), node: name)
                } catch let e as GraphError {
                    throw GraphError.inFile(source, e)
                }
                // Old files leave out inputs such as weights; MXNet adds them as variables.
                let wanted = (try? def.inputNames(resolved)) ?? []
                if inputs.count < wanted.count && def.attributes.first(where: { $0.name == "num_args" }) == nil {
                    for k in inputs.count..<wanted.count {
                        let varName = "\(name)_\(wanted[k])"
                        inputs.append(SymbolEntry(node: SymbolNode(op: "null", name: varName), index: 0))
                    }
                }
                for (k, e) in inputs.enumerated() {
                    let count: Int
                    if e.node.isVariable { count = 1 } else {
                        let d = try OpRegistry.shared.definition(e.node.op, node: e.node.name, source: source)
                        count = try d.outputNames(try d.resolve(e.node.attributes, node: e.node.name)).count
                    }
                    guard e.index < count else { throw bad("\(field).inputs[\(k)]", "node '\(e.node.name)' has \(count) outputs, so output \(e.index) does not exist") }
                }
                built.append(SymbolNode(op: def.name, name: name, attributes: Attributes(attrs), inputs: inputs))
            } else {
                guard inputs.isEmpty else { throw bad("\(field).inputs", "variable '\(name)' must not have inputs") }
                built.append(SymbolNode(op: "null", name: name, attributes: Attributes(attrs)))
            }
        }
        guard let rawHeads = top["heads"]?.array, !rawHeads.isEmpty else { throw bad("heads", "expected a non-empty list of [node, output, version]") }
        var heads: [SymbolEntry] = []
        for (k, h) in rawHeads.enumerated() {
            guard let entry = h.array, entry.count >= 2, let src = entry[0].integer, let idx = entry[1].integer else {
                throw bad("heads[\(k)]", "expected [node, output, version] with integers")
            }
            guard src >= 0 && src < built.count else { throw bad("heads[\(k)]", "node \(src) does not exist (the file has \(built.count) nodes)") }
            heads.append(SymbolEntry(node: built[src], index: idx))
        }
        // A caller's label such as the default "symbol JSON" is no file name worth repeating.
        let symbol = Symbol(outputs: heads, source: source == "symbol JSON" ? nil : source)
        do {
            try symbol.graph.validate(source: source)
        } catch let e as GraphError {
            if case .malformedJSON = e { throw e }
            throw GraphError.inFile(source, e)
        }
        self = symbol
    }

    /// The symbol as MXNet 1.9 writes it (`tojson`), attributes in sorted order.
    public func jsonString() throws -> String {
        let g = graph
        var out = "{\n  \"nodes\": [\n"
        var rowPtr = [0]
        for (i, n) in g.nodes.enumerated() {
            out += "    {\n      \"op\": \(Self.quote(n.op)), \n      \"name\": \(Self.quote(n.name)), \n"
            if !n.attributes.values.isEmpty {
                let items = n.attributes.values.keys.sorted().map { "\(Self.quote($0)): \(Self.quote(n.attributes.values[$0]!))" }
                out += "      \"attrs\": {\n        " + items.joined(separator: ", \n        ") + "\n      }, \n"
            }
            let ins = n.inputs.map { "[\($0.node), \($0.index), 0]" }.joined(separator: ", ")
            out += "      \"inputs\": [\(ins)]\n    }" + (i + 1 < g.nodes.count ? ", \n" : "\n")
            rowPtr.append(rowPtr.last! + (try g.outputCount(of: i)))
        }
        out += "  ], \n"
        let argNodes = g.nodes.indices.filter { g.nodes[$0].isVariable }
        out += "  \"arg_nodes\": [\(argNodes.map(String.init).joined(separator: ", "))], \n"
        out += "  \"node_row_ptr\": [\(rowPtr.map(String.init).joined(separator: ", "))], \n"
        out += "  \"heads\": [\(g.heads.map { "[\($0.node), \($0.index), 0]" }.joined(separator: ", "))], \n"
        out += "  \"attrs\": {\"mxnet_version\": [\"int\", 10901]}\n}"
        return out
    }

    /// Writes the symbol JSON to a file.
    public func save(jsonFile path: String) throws {
        let text = try jsonString()
        do {
            try Data(text.utf8).write(to: URL(fileURLWithPath: path))
        } catch {
            throw GraphError.inFile(path, .invalidArgument("the file cannot be written (\(fileErrorReason(error)))"))
        }
    }

    static func quote(_ s: String) -> String {
        var o = "\""
        for c in s.unicodeScalars {
            switch c {
            case "\"": o += "\\\""
            case "\\": o += "\\\\"
            case "\n": o += "\\n"
            case "\r": o += "\\r"
            case "\t": o += "\\t"
            default:
                if c.value < 0x20 { o += String(format: "\\u%04x", c.value) } else { o.unicodeScalars.append(c) }
            }
        }
        return o + "\""
    }

    /// Why `data` is not JSON. JSONDecoder says only "not valid JSON"; for a file of up to 1 MB,
    /// JSONSerialization parses it again for its sentence with the position ("Unexpected end of file",
    /// "Too many nested arrays or dictionaries around character 513"). A larger file is not parsed
    /// twice: that would cost hundreds of MB on the error path.
    static func reason(_ error: Error, in data: Data) -> String {
        var detail = "\(error)"
        if case let DecodingError.dataCorrupted(context) = error { detail = context.debugDescription }
        if data.count <= 1 << 20 {
            do {
                _ = try JSONSerialization.jsonObject(with: data, options: [.fragmentsAllowed])
            } catch {
                let ns = error as NSError
                detail = ns.userInfo[NSDebugDescriptionErrorKey] as? String ?? ns.localizedDescription
            }
        }
        return detail.hasSuffix(".") ? String(detail.dropLast()) : detail
    }
}
