import KilnCore
import KilnGraph
import TestSupport
import Testing

/// Graphs that FuzzGraph found trapping or aborting; each must now be refused with a thrown error.
/// Their recipes are in Tests/Fixtures/fuzz/graph/ (replayed by GraphFuzzingTests).
@Suite struct FuzzFindingTests {
    /// One `op` node on a variable `data`, as a file would hold it.
    static func json(op: String, attributes: String, inputs: Int = 1) -> String {
        let reads = Array(repeating: "[0, 0, 0]", count: inputs).joined(separator: ", ")
        return #"{"nodes": [{"op": "null", "name": "data", "inputs": []}, "#
            + #"{"op": "\#(op)", "name": "n", "attrs": {\#(attributes)}, "inputs": [\#(reads)]}], "#
            + #""arg_nodes": [0], "heads": [[1, 0, 0]], "attrs": {"mxnet_version": ["int", 10901]}}"#
    }

    /// `num_args="4294967296"` made Concat list four billion input names while the file was read,
    /// and the allocation aborted (regression_concat_num_args_2_32.bin). The reader or inference
    /// must refuse it; the reader leaves input-name errors to inference.
    @Test(arguments: [("Concat", "num_args"), ("add_n", "num_args"), ("SliceChannel", "num_outputs")])
    func aHugeCountIsRefused(op: String, key: String) {
        #expect {
            _ = try Symbol(json: Self.json(op: op, attributes: #""\#(key)": "4294967296""#)).inferShape(["data": [2, 2]])
        } throws: { "\($0)".contains("a count from 1 to \(Attributes.countLimit)") }
    }

    /// A Convolution with a 254,587-element `kernel` (Tests/Fixtures/fuzz/symbol/
    /// regression_convolution_kernel_350k-symbol.json): too long to cache, it was parsed again at
    /// every use of the node's attributes and FuzzGraph's check took 176 s. Tuples are refused past
    /// AttributeText.tupleLimit before they are parsed.
    @Test func anEndlessTupleIsRefusedBeforeItIsParsed() throws {
        let path = Fixtures.url("fuzz/symbol/regression_convolution_kernel_350k-symbol.json").path
        #expect { try Symbol.load(jsonFile: path) } throws: { error in
            let m = "\(error)"
            return m.contains("a tuple of at most 1024 elements (this one has 254587)") && m.contains("763761 characters") && m.count < 500
        }
        let limit = AttributeText.tupleLimit
        let ok = "(" + Array(repeating: "1", count: limit).joined(separator: ", ") + ")"
        #expect(try Attributes(["kernel": ok]).ints("kernel").count == limit)
        #expect(throws: GraphError.self) { try Attributes(["kernel": ok + ", 1"]).ints("kernel") }
        #expect(throws: GraphError.self) { try Attributes(["v": "(" + Array(repeating: "0.5", count: limit + 1).joined(separator: ",") + ")"]).floats("v") }
    }

    @Test func countsUpToTheLimitAreRead() throws {
        let symbol = try Symbol(json: Self.json(op: "Concat", attributes: #""num_args": "3""#, inputs: 3))
        #expect(try symbol.inferShape(["data": [2, 2]]).outputs == [[2, 6]])
        #expect(try Attributes(["num_args": String(Attributes.countLimit)]).count("num_args") == Attributes.countLimit)
    }

    /// FullyConnected flattened (0, 2^32, 2^32) to 2^64 columns and trapped on the overflow: the
    /// shape has no elements, but its nonzero dimensions cannot be counted
    /// (regression_fully_connected_flatten_overflow.bin).
    @Test(arguments: [Shape([0, 1 << 32, 1 << 32]), [1 << 40, 1 << 40], [2, -3]])
    func anUncountableShapeIsRefused(shape: Shape) throws {
        let symbol = try Symbol(json: Self.json(op: "FullyConnected", attributes: #""num_hidden": "4""#))
        #expect {
            try symbol.inferShape(["data": shape])
        } throws: { "\($0)".contains("more elements than a 64-bit count can address") || "\($0)".contains("has a negative dimension") }
    }

    /// A rule's output is checked too: a FullyConnected weight of (2^40, 2^40) is refused where it
    /// is derived, before a later rule could multiply it out.
    @Test func anUncountableDerivedShapeIsRefused() throws {
        let symbol = try Symbol(json: Self.json(op: "FullyConnected", attributes: #""num_hidden": "1099511627776""#))
        #expect {
            try symbol.inferShape(["data": [1, 1 << 40]])
        } throws: { "\($0)".contains("'weight' would have shape (1099511627776, 1099511627776), more elements than a 64-bit count can address") }
    }

    /// Reshape multiplied the sizes of its `shape` attribute unchecked, and (2^62 - 1, 3, 4) trapped
    /// (regression_reshape_overflowing_sizes.bin); so did a -1 beside such sizes, and a -4 split.
    @Test(arguments: ["(4611686018427387903, 3, 4)", "(4294967296, 4294967296, -1)", "(-4, 4294967296, 4294967296, -2)"])
    func reshapeSizesThatOverflowAreRefused(shape: String) throws {
        let symbol = try Symbol(json: Self.json(op: "Reshape", attributes: #""shape": "\#(shape)""#))
        #expect(throws: GraphError.self) { try symbol.inferShape(["data": [4, 2]]) }
    }

    @Test func checkedElementCount() {
        #expect(Shape([2, 3]).checkedElementCount == 6)
        #expect(Shape([]).checkedElementCount == 1)
        #expect(Shape([0, 5]).checkedElementCount == 0)
        #expect(Shape([0, Int.max, 2]).checkedElementCount == nil)
        #expect(Shape([Int.max]).checkedElementCount == Int.max)
        #expect(Shape([-1]).checkedElementCount == nil)
    }
}
