import KilnCore
import KilnGraph
import Testing

/// Graphs that FuzzGraph found aborting; each must now be refused with a thrown error.
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

    @Test func countsUpToTheLimitAreRead() throws {
        let symbol = try Symbol(json: Self.json(op: "Concat", attributes: #""num_args": "3""#, inputs: 3))
        #expect(try symbol.inferShape(["data": [2, 2]]).outputs == [[2, 6]])
        #expect(try Attributes(["num_args": String(Attributes.countLimit)]).count("num_args") == Attributes.countLimit)
    }
}
