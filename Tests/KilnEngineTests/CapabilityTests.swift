import KilnCore
import KilnEngine
import KilnEngineCore
import KilnGraph
import KilnRuntime
import Testing

/// The capability table's answers and their reasons, read back by kind as a partition report does.
@Suite struct CapabilityTests {
    /// The support answer for the node named `name` of `symbol`, with data of shape `data` and every
    /// other variable a constant unless listed in `inputs`.
    func support(_ symbol: Symbol, _ name: String, data: Shape, inputs: Set<String> = ["data"], types: [String: DType] = [:]) throws -> Support {
        let graph = symbol.graph
        let shapes = try graph.inferShapes(["data": data])
        let constants = Set(graph.nodes.filter { $0.isVariable && !inputs.contains($0.name) }.map(\.name))
        let node = try #require(graph.nodes.firstIndex { $0.name == name })
        return CPUEngine().support(SupportQuery(graph: graph, node: node, shapes: shapes, types: try graph.inferTypes(types), constants: constants))
    }

    @Test func tableListsTheOps() {
        #expect(CPUCapabilities.supportedOps == ["Activation", "BatchNorm", "Concat", "Convolution", "Deconvolution", "Dropout", "Flatten", "FullyConnected",
                                                 "LeakyReLU", "Pooling", "Reshape", "SoftmaxOutput", "_copy", "elemwise_add", "softmax",
                                                 "clip", "relu", "sigmoid", "tanh", "exp", "_plus_scalar", "_minus_scalar", "_rminus_scalar",
                                                 "_mul_scalar", "_div_scalar", "elemwise_mul", "broadcast_mul", "broadcast_add", "expand_dims"])
        // Aliases find their op's entry.
        #expect(CPUCapabilities.table.entry(for: "_Plus") != nil && CPUCapabilities.table.entry(for: "flatten") != nil)
    }

    @Test func unsupportedOpIsNamed() throws {
        let s = try support(.log(.variable("data"), name: "log0"), "log0", data: [2, 3])
        #expect(s.reason == .unsupportedOp("log"))
    }

    /// Attribute values are named with their value and a note on what is lowered.
    @Test func unsupportedAttributesAreNamed() throws {
        let x = Symbol.variable("data")
        let cases: [(Symbol, String, Shape, String)] = [
            (.pooling(x, kernel: [2, 2], poolType: .sum, name: "p"), "p", [1, 2, 4, 4], "pool_type=sum"),
            (.pooling(x, kernel: [3], name: "p"), "p", [1, 2, 8], "kernel=(3,)"),
            (.pooling(x, kernel: [2], convention: .same, name: "p"), "p", [1, 2, 8], "pooling_convention=same"),
            (.convolution(x, kernel: [3], numFilter: 2, name: "c"), "c", [1, 2, 8], "kernel=(3,)"),
            (.activation(x, kind: .softSign, name: "a"), "a", [2, 3], "act_type=softsign"),
            (.leakyReLU(x, kind: .prelu, name: "a"), "a", [2, 3], "act_type=prelu"),
            (.dropout(x, mode: .always, name: "d"), "d", [2, 3], "mode=always"),
            (.softmax(x, temperature: 2, name: "s"), "s", [2, 3], "temperature=2.0"),
            (.batchNorm(x, axis: 3, name: "b"), "b", [1, 2, 3, 4], "axis=3"),
            (.batchNorm(x, outputMeanVar: true, name: "b"), "b", [1, 2, 3, 4], "output_mean_var=True"),
        ]
        for (symbol, name, shape, expected) in cases {
            let s = try support(symbol, name, data: shape)
            guard case let .unsupportedAttribute(a)? = s.reason else {
                Issue.record("\(expected): \(s)")
                continue
            }
            #expect(a.hasPrefix(expected), "\(a)")
        }
    }

    /// Full-convention average pooling counting the padding: refused exactly when its last window
    /// runs past the padded input (MXNet then divides by less than the kernel's area).
    @Test func poolingWindowsAreCheckedAgainstTheShape() throws {
        let p = Symbol.pooling(.variable("data"), kernel: [3, 3], poolType: .avg, convention: .full, stride: [2, 2], name: "p")
        #expect(try support(p, "p", data: [1, 1, 7, 7]) == .supported)
        guard case let .unsupportedAttribute(a)? = try support(p, "p", data: [1, 1, 8, 8]).reason else {
            Issue.record("expected a refusal")
            return
        }
        #expect(a.hasPrefix("pooling_convention=full"))
    }

    @Test func weightsMustBeConstants() throws {
        let c = Symbol.convolution(.variable("data"), kernel: [3, 3], numFilter: 2, name: "c")
        #expect(try support(c, "c", data: [1, 1, 5, 5]) == .supported)
        #expect(try support(c, "c", data: [1, 1, 5, 5], inputs: ["data", "c_bias"]).reason == .weightsNotKnownAtBind("bias"))
    }

    @Test func otherDTypesAndHiddenOutputsAreRefused() throws {
        let r = Symbol.activation(.variable("data"), kind: .relu, name: "r")
        let half = try support(r, "r", data: [2, 3], types: ["data": .float16])
        #expect(half.reason == .other("input 'data' has dtype float16 (the engine runs float32)"))
        // BatchNorm's mean output read by another node.
        let bn = Symbol.batchNorm(.variable("data"), outputMeanVar: false, name: "b")
        let mean = Symbol(outputs: [SymbolEntry(node: bn.outputs[0].node, index: 1)])
        let both = Symbol.group([bn, .activation(mean, kind: .relu, name: "r")])
        #expect(try support(both, "b", data: [1, 2, 3, 4]).reason == .other("output 'mean' is read (the engine computes only the first output)"))
    }
}
