import KilnCore

/// A symbol JSON file and the input shapes to bind it with, built from a fuzzer's bytes.
///
/// The bytes are read as a recipe, so that most inputs give a file that parses and the fuzzer spends
/// its time in shape inference and the kernels rather than in the JSON reader (FuzzSymbol covers
/// that): data inputs first, then steps until the bytes run out, each step one of
///
/// ```
/// an op node     Convolution, FullyConnected, BatchNorm, Pooling, Concat, Reshape, ... on earlier
///                outputs (mostly the latest, so graphs are chains with branches), attributes drawn
///                from small, edge (0, -1) and extreme (Int.max, 2^62, "1e400") values
/// a deep chain   up to 40,000 unary nodes in a row
/// a wide node    Concat or add_n over up to 20,000 inputs
/// a huge text    an attribute, name or hidden key of up to about 1 MB for the next node
/// a data input   another input, its shape of rank 0 to 6 with dimensions up to Int.max
/// ```
///
/// Weights are variables of their own, as MXNet writes them; heads are the latest output and, by
/// chance, others; an input may name an output that does not exist. Nodes are capped (``Scale``) so
/// that one input costs at most a few seconds.
public struct SymbolRecipe: Sendable {
    /// The largest structures a recipe may ask for.
    public struct Scale: Sendable {
        /// Most nodes in one recipe.
        public var nodes: Int
        /// Longest deep chain.
        public var chain: Int
        /// Most inputs of a wide node.
        public var fanIn: Int
        /// Longest huge text, in characters.
        public var text: Int

        /// The fuzz target's: chains of tens of thousands, fan-in of 20,000, texts of about 1 MB.
        public static let full = Scale(nodes: 60_000, chain: 40_000, fanIn: 20_000, text: 1 << 20)
        /// A unit test's: the same steps, small enough for hundreds of recipes in a debug build.
        public static let quick = Scale(nodes: 2_000, chain: 1_000, fanIn: 300, text: 1 << 12)
    }

    /// The symbol JSON text.
    public let json: String
    /// Shapes for the data inputs, as `bind(shapes:)` takes them.
    public let shapes: [String: Shape]
    /// Whether to run forward as training (Dropout drops, BatchNorm uses batch statistics).
    public let isTrain: Bool
    /// Nodes in the file, variables included.
    public let nodeCount: Int

    public init<Bytes: Sequence>(bytes: Bytes, scale: Scale = .full) where Bytes.Element == UInt8 {
        var builder = Builder(RecipeBytes(bytes), scale: scale)
        builder.build()
        json = builder.jsonText()
        shapes = builder.shapes
        isTrain = builder.isTrain
        nodeCount = builder.nodes.count
    }
}

/// One node of the file being written.
private struct RecipeNode {
    var op: String
    var name: String
    var attributes: [(String, String)] = []
    var inputs: [(node: Int, index: Int)] = []
}

/// Builds the nodes; its methods read `bytes` in the order the file is written.
private struct Builder {
    var bytes: RecipeBytes
    let scale: SymbolRecipe.Scale
    var nodes: [RecipeNode] = []
    /// Outputs that later nodes may read: data inputs and op outputs, newest last.
    var values: [(node: Int, index: Int)] = []
    var shapes: [String: Shape] = [:]
    var isTrain = false
    /// A huge text waiting for the next op node.
    var pendingHuge: (key: String, value: String)?
    /// Raw picks of extra heads, read first and mapped onto the outputs at the end.
    var extraHeads: [Int] = []

    init(_ bytes: RecipeBytes, scale: SymbolRecipe.Scale) {
        self.bytes = bytes
        self.scale = scale
    }

    mutating func build() {
        isTrain = bytes.chance(30)
        if bytes.chance(10) { extraHeads = (0...bytes.below(3)).map { _ in Int(bytes.byte()) << 8 | Int(bytes.byte()) } }
        for _ in 0...bytes.below(3) { addData() }
        while !bytes.isExhausted && nodes.count < scale.nodes {
            let step = bytes.byte()
            switch step {
            case 0..<200: addOp(bytes.below(Self.opCount))
            case 200..<215: addChain()
            case 215..<230: addWide()
            case 230..<245: pendingHuge = hugeText()
            default: addData()
            }
        }
        if !nodes.contains(where: { $0.op != "null" }) { addOp(0) }  // at least one op, so the graph does something
        // Shapes for the data inputs the heads reach: the graph's arguments; a shape for a variable
        // it does not have is refused before inference starts.
        var reached = Set(heads.map(\.node))
        for i in nodes.indices.reversed() where reached.contains(i) { reached.formUnion(nodes[i].inputs.map(\.node)) }
        shapes = shapes.filter { name, _ in nodes.indices.contains { reached.contains($0) && nodes[$0].name == name } }
    }

    /// The symbol's outputs: the newest, and by chance others.
    var heads: [(node: Int, index: Int)] { [values.last ?? (0, 0)] + extraHeads.map { values[$0 % values.count] } }

    // MARK: Values

    /// Attribute integers: mostly small, often edges, sometimes near Int's limits.
    static let extremes = [0, -1, -2, -3, -4, Int.max, Int.min, Int.max - 1, Int.max / 2, 1 << 31, (1 << 31) - 1,
                           1 << 32, 1 << 62, 3_037_000_500, 46_341, 65_536, 1 << 20]

    mutating func int() -> Int {
        let b = bytes.byte()
        switch b {
        case 0..<150: return 1 + Int(b % 8)
        case 150..<200: return Int(b % 40)
        default: return bytes.pick(Self.extremes)
        }
    }

    /// A dimension of an input shape: small, zero, or huge (so products overflow).
    mutating func dimension() -> Int {
        let b = bytes.byte()
        switch b {
        case 0..<200: return 1 + Int(b % 6)
        case 200..<210: return 0
        default: return bytes.pick([Int.max, Int.max / 2, 1 << 31, 1 << 32, 1 << 62, 3_037_000_500, 46_341, 1 << 20, 1_000_003])
        }
    }

    /// Integer attribute text, sometimes not a valid integer at all.
    mutating func intText() -> String {
        if bytes.chance(1) { return bytes.pick(["", "abc", "1.5", "9223372036854775808", "-9223372036854775809", " 3", "None", "0x10", "1e400"]) }
        return String(int())
    }

    mutating func floatText() -> String {
        if bytes.chance(90) { return bytes.pick(["0.5", "0.1", "1", "0.9", "0.001", "0", "-1", "1e-05", "2"]) }
        return bytes.pick(["nan", "inf", "-inf", "1e308", "1e400", "-0", "4e-45", "abc", ""])
    }

    mutating func boolText() -> String {
        bytes.chance(99) ? bytes.pick(["True", "False", "1", "0", "true", "false"]) : bytes.pick(["yes", "", "2"])
    }

    /// A tuple of `count` integers as MXNet writes it (`(3, 3)`), sometimes of another length.
    mutating func tupleText(_ count: Int) -> String {
        var n = count
        if bytes.chance(4) { n = bytes.below(7) }
        if bytes.chance(1) { return bytes.pick(["(", "()", "[1,2]", "(1,,2)", "(a, b)", "1"]) }
        let values = (0..<n).map { _ in int() }
        return values.count == 1 ? "(\(values[0]),)" : "(" + values.map(String.init).joined(separator: ", ") + ")"
    }

    /// An earlier output to read: mostly the newest, for deep graphs; sometimes any, for branches.
    mutating func input() -> (node: Int, index: Int) {
        guard !values.isEmpty else { return (0, 0) }
        var chosen = bytes.chance(70) ? values[values.count - 1] : values[bytes.below(values.count)]
        if bytes.chance(2) { chosen.index = int() }  // an output that may not exist
        return chosen
    }

    // MARK: Steps

    mutating func addData() {
        let name = "data\(shapes.count)"
        var shape = (0..<bytes.below(7)).map { _ in dimension() }
        if shape.isEmpty && bytes.chance(50) { shape = [1 + bytes.below(4)] }
        shapes[name] = Shape(shape)
        var node = RecipeNode(op: "null", name: name)
        if bytes.chance(5) { node.attributes.append(("__shape__", tupleText(shape.count))) }
        if bytes.chance(5) { node.attributes.append(("__dtype__", bytes.pick(["0", "1", "2", "3", "4", "5", "6", "12", "99", "-1"]))) }
        append(node, outputs: 1)
    }

    /// A variable the next op reads as a weight, bias or auxiliary state.
    mutating func variable(_ name: String) -> (node: Int, index: Int) {
        nodes.append(RecipeNode(op: "null", name: name))
        return (nodes.count - 1, 0)
    }

    mutating func append(_ node: RecipeNode, outputs: Int) {
        var node = node
        // A huge text goes to the first op node that can take its key: any takes a name or a hidden
        // key, only one with the attribute (Convolution's kernel) takes a known attribute's value.
        if node.op != "null", let huge = pendingHuge {
            if huge.key == "name" {
                node.name += huge.value
                pendingHuge = nil
            } else if huge.key.hasPrefix("__") {
                node.attributes.append(huge)
                pendingHuge = nil
            } else if let k = node.attributes.firstIndex(where: { $0.0 == huge.key }) {
                node.attributes[k].1 = huge.value
                pendingHuge = nil
            }
        }
        nodes.append(node)
        for k in 0..<max(outputs, 0) { values.append((nodes.count - 1, k)) }
    }

    /// A run of unary ops on the newest output: mostly tens deep, sometimes tens of thousands.
    mutating func addChain() {
        let length = 1 + (bytes.chance(25) ? bytes.below(scale.chain) : bytes.below(64))
        let kind = bytes.below(4)
        let start = input()
        var last = start
        for _ in 0..<min(length, scale.nodes - nodes.count) {
            var node = RecipeNode(op: "", name: "chain\(nodes.count)", inputs: [last])
            switch kind {
            case 0: node.op = "Activation"; node.attributes = [("act_type", "relu")]
            case 1: node.op = "_copy"
            case 2: node.op = "elemwise_add"; node.inputs = [last, last]
            default: node.op = "_plus_scalar"; node.attributes = [("scalar", "1")]
            }
            nodes.append(node)
            last = (nodes.count - 1, 0)
        }
        values.append(last)
    }

    /// Concat or add_n over many inputs: wide fan-in.
    mutating func addWide() {
        let count = 1 + (bytes.chance(25) ? bytes.below(scale.fanIn) : bytes.below(256))
        let spread = bytes.chance(50)
        let op = bytes.chance(50) ? "Concat" : "add_n"
        var node = RecipeNode(op: op, name: "wide\(nodes.count)")
        let newest = values.last ?? (0, 0)
        for _ in 0..<count { node.inputs.append(spread ? values[bytes.below(values.count)] : newest) }
        node.attributes = [("num_args", bytes.chance(95) ? String(count) : intText())]
        if op == "Concat" { node.attributes.append(("dim", intText())) }
        append(node, outputs: 1)
    }

    /// Up to `scale.text` characters (about 1 MB) for a known attribute, the node's name or a hidden key.
    mutating func hugeText() -> (key: String, value: String) {
        let length = 1 + bytes.below(1 << 16) * scale.text / (1 << 16)
        switch bytes.below(5) {
        case 0: return ("name", String(repeating: "n", count: length))
        case 1: return ("__lr_mult__", String(repeating: "9", count: length))
        // A tuple of up to about 350,000 elements (1 MB): one past AttributeText.tupleLimit must be
        // refused before it is parsed (a 350,000-element kernel once took 176 s, parsed at every use;
        // Tests/Fixtures/fuzz/symbol/regression_convolution_kernel_350k-symbol.json).
        case 2: return ("kernel", "(" + Array(repeating: "1", count: max(1, length / 3)).joined(separator: ", ") + ")")
        case 3: return ("num_args", String(repeating: "9", count: length))
        default: return ("__doc__", String(repeating: "\\\"", count: length / 2))
        }
    }

    static let opCount = 27

    /// One op node on earlier outputs, its weights declared first as MXNet writes them.
    mutating func addOp(_ which: Int) {
        let name = "op\(nodes.count)"
        var node = RecipeNode(op: "", name: name)
        var outputs = 1
        /// Data and, unless `noBias`, the weight and bias variables of `name`.
        func withWeights(_ builder: inout Builder, noBias: String?) -> [(node: Int, index: Int)] {
            let data = builder.input()
            var inputs = [data, builder.variable("\(name)_weight")]
            if noBias != "True" && noBias != "1" && noBias != "true" { inputs.append(builder.variable("\(name)_bias")) }
            return inputs
        }
        switch which {
        case 0:
            node.op = "Activation"
            node.attributes = [("act_type", bytes.pick(["relu", "sigmoid", "tanh", "softrelu", "softsign", "gelu"]))]
            node.inputs = [input()]
        case 1:
            node.op = "FullyConnected"
            let noBias = bytes.chance(30) ? boolText() : nil
            node.attributes = [("num_hidden", intText())]
            if let noBias { node.attributes.append(("no_bias", noBias)) }
            if bytes.chance(30) { node.attributes.append(("flatten", boolText())) }
            node.inputs = withWeights(&self, noBias: noBias)
        case 2, 3:
            node.op = which == 2 ? "Convolution" : "Deconvolution"
            let rank = bytes.chance(85) ? 2 : bytes.below(4)
            let noBias = bytes.chance(30) ? boolText() : (which == 3 ? "True" : nil)
            node.attributes = [("kernel", tupleText(rank)), ("num_filter", intText())]
            for key in ["stride", "pad", "dilate"] where bytes.chance(40) { node.attributes.append((key, tupleText(rank))) }
            if which == 3 && bytes.chance(30) { node.attributes.append(("adj", tupleText(rank))) }
            if which == 3 && bytes.chance(20) { node.attributes.append(("target_shape", tupleText(rank))) }
            if bytes.chance(20) { node.attributes.append(("num_group", intText())) }
            if bytes.chance(10) { node.attributes.append(("layout", bytes.pick(["NCHW", "NHWC", "NCW", "NCDHW", "None", "HWCN"]))) }
            if let noBias { node.attributes.append(("no_bias", noBias)) }
            node.inputs = withWeights(&self, noBias: noBias)
        case 4:
            node.op = "BatchNorm"
            for (key, value) in [("eps", floatText()), ("momentum", floatText())] where bytes.chance(30) { node.attributes.append((key, value)) }
            for key in ["fix_gamma", "use_global_stats", "output_mean_var"] where bytes.chance(30) { node.attributes.append((key, boolText())) }
            if bytes.chance(40) { node.attributes.append(("axis", intText())) }
            node.inputs = [input()] + ["gamma", "beta", "moving_mean", "moving_var"].map { variable("\(name)_\($0)") }
            outputs = node.attributes.contains { $0.0 == "output_mean_var" && ["True", "1", "true"].contains($0.1) } ? 3 : 1
        case 5:
            node.op = "Pooling"
            let rank = bytes.chance(85) ? 2 : 1 + bytes.below(3)
            node.attributes = [("kernel", tupleText(rank)), ("pool_type", bytes.pick(["max", "avg", "sum", "lp", "min"]))]
            for key in ["stride", "pad"] where bytes.chance(40) { node.attributes.append((key, tupleText(rank))) }
            if bytes.chance(20) { node.attributes.append(("global_pool", boolText())) }
            if bytes.chance(20) { node.attributes.append(("pooling_convention", bytes.pick(["valid", "full", "same"]))) }
            if bytes.chance(20) { node.attributes.append(("p_value", intText())) }
            if bytes.chance(10) { node.attributes.append(("count_include_pad", boolText())) }
            node.inputs = [input()]
        case 6...9:
            node.op = ["elemwise_add", "elemwise_mul", "broadcast_add", "broadcast_div"][which - 6]
            node.inputs = [input(), input()]
        case 10, 11:
            node.op = which == 10 ? "Concat" : "add_n"
            let count = 1 + bytes.below(6)
            node.inputs = (0..<count).map { _ in input() }
            node.attributes = [("num_args", bytes.chance(95) ? String(count) : intText())]
            if which == 10 && bytes.chance(60) { node.attributes.append(("dim", intText())) }
        case 12:
            node.op = "Flatten"
            node.inputs = [input()]
        case 13:
            node.op = "Reshape"
            let count = bytes.below(6)
            let codes = (0..<count).map { _ in bytes.chance(40) ? bytes.pick(["0", "-1", "-2", "-3", "-4"]) : intText() }
            node.attributes = [("shape", "(" + codes.joined(separator: ", ") + (count == 1 ? ",)" : ")"))]
            if bytes.chance(20) { node.attributes.append(("reverse", boolText())) }
            node.inputs = [input()]
        case 14:
            node.op = "SoftmaxOutput"
            for key in ["multi_output", "preserve_shape", "use_ignore"] where bytes.chance(25) { node.attributes.append((key, boolText())) }
            if bytes.chance(20) { node.attributes.append(("normalization", bytes.pick(["batch", "null", "valid", "none"]))) }
            node.inputs = [input(), variable("\(name)_label")]
        case 15:
            node.op = "Dropout"
            node.attributes = [("p", floatText())]
            if bytes.chance(40) { node.attributes.append(("mode", bytes.pick(["always", "training", "never"]))) }
            if bytes.chance(20) { node.attributes.append(("axes", tupleText(1 + bytes.below(3)))) }
            node.inputs = [input()]
        case 16:
            node.op = "SliceChannel"
            let parts = bytes.chance(90) ? 1 + bytes.below(4) : int()
            node.attributes = [("num_outputs", String(parts)), ("axis", intText())]
            if bytes.chance(30) { node.attributes.append(("squeeze_axis", boolText())) }
            node.inputs = [input()]
            outputs = min(parts, 64)
        case 17:
            node.op = "transpose"
            if bytes.chance(70) { node.attributes = [("axes", tupleText(bytes.below(6)))] }
            node.inputs = [input()]
        case 18:
            node.op = "expand_dims"
            node.attributes = [("axis", intText())]
            node.inputs = [input()]
        case 19:
            node.op = "slice_axis"
            node.attributes = [("axis", intText()), ("begin", intText()), ("end", bytes.chance(20) ? "None" : intText())]
            node.inputs = [input()]
        case 20:
            node.op = "Pad"
            node.attributes = [("mode", bytes.pick(["constant", "edge", "reflect", "wrap"])), ("pad_width", tupleText(8))]
            if bytes.chance(30) { node.attributes.append(("constant_value", floatText())) }
            node.inputs = [input()]
        case 21:
            node.op = bytes.chance(50) ? "sum" : "mean"
            if bytes.chance(70) { node.attributes.append(("axis", bytes.chance(80) ? intText() : tupleText(2))) }
            if bytes.chance(30) { node.attributes.append(("keepdims", boolText())) }
            if bytes.chance(15) { node.attributes.append(("exclude", boolText())) }
            node.inputs = [input()]
        case 22:
            node.op = "LeakyReLU"
            let kind = bytes.pick(["leaky", "elu", "selu", "gelu", "rrelu", "prelu"])
            node.attributes = [("act_type", kind)]
            if bytes.chance(30) { node.attributes.append(("slope", floatText())) }
            node.inputs = kind == "prelu" ? [input(), variable("\(name)_gamma")] : [input()]
            outputs = kind == "rrelu" ? 2 : 1
        case 23:
            node.op = "clip"
            node.attributes = [("a_min", floatText()), ("a_max", floatText())]
            node.inputs = [input()]
        case 24:
            node.op = "Cast"
            node.attributes = [("dtype", bytes.pick(["float32", "float16", "bfloat16", "float64", "int32", "int64", "int8", "uint8", "bool"]))]
            node.inputs = [input()]
        case 25:
            node.op = bytes.pick(["softmax", "log_softmax"])
            if bytes.chance(50) { node.attributes = [("axis", intText())] }
            if bytes.chance(20) { node.attributes.append(("temperature", floatText())) }
            node.inputs = [input()]
        default:
            node.op = bytes.pick(["_plus_scalar", "_mul_scalar", "_div_scalar", "_rdiv_scalar", "_power_scalar", "sqrt", "log", "exp"])
            if node.op.hasPrefix("_") { node.attributes = [("scalar", floatText())] }
            node.inputs = [input()]
        }
        // Now and then an input too many or too few: the reader and the rules must refuse it.
        if bytes.chance(2) { node.inputs.append(input()) }
        if bytes.chance(2), !node.inputs.isEmpty { node.inputs.removeLast() }
        append(node, outputs: outputs)
    }

    // MARK: Writing

    /// The file as MXNet 1.9 writes it, heads last: the newest output, and by chance others.
    func jsonText() -> String {
        var out = "{\"nodes\": [\n"
        for (i, n) in nodes.enumerated() {
            out += "{\"op\": \(Self.quote(n.op)), \"name\": \(Self.quote(n.name)), "
            if !n.attributes.isEmpty {
                out += "\"attrs\": {" + n.attributes.map { "\(Self.quote($0.0)): \(Self.quote($0.1))" }.joined(separator: ", ") + "}, "
            }
            out += "\"inputs\": [" + n.inputs.map { "[\($0.node), \($0.index), 0]" }.joined(separator: ", ") + "]}"
            out += i + 1 < nodes.count ? ",\n" : "\n"
        }
        let arguments = nodes.indices.filter { nodes[$0].op == "null" }.map(String.init).joined(separator: ", ")
        out += "], \"arg_nodes\": [\(arguments)], "
        out += "\"heads\": [" + heads.map { "[\($0.node), \($0.index), 0]" }.joined(separator: ", ") + "], "
        out += "\"attrs\": {\"mxnet_version\": [\"int\", 10901]}}"
        return out
    }

    /// A JSON string literal; the generated text is ASCII, so only quotes and backslashes need escaping.
    /// Byte by byte, since Foundation's replacingOccurrences took seconds on a megabyte.
    static func quote(_ s: String) -> String {
        let quote = UInt8(ascii: "\""), backslash = UInt8(ascii: "\\")
        guard s.utf8.contains(where: { $0 == quote || $0 == backslash }) else { return "\"" + s + "\"" }
        var out: [UInt8] = [quote]
        out.reserveCapacity(s.utf8.count * 2 + 2)
        for c in s.utf8 {
            if c == quote || c == backslash { out.append(backslash) }
            out.append(c)
        }
        out.append(quote)
        return String(decoding: out, as: UTF8.self)
    }
}
