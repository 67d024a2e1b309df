import KilnCore
import KilnGraph
import KilnRuntime
import TestSupport
import Testing

/// Kernels of the tensor family: reference kernels against hand-worked examples, both backends
/// against MXNet 1.9.1's golden outputs, the framework against the reference on larger shapes, and
/// data movement in every dtype.
@Suite struct TensorOpsTests {
    // MARK: Helpers

    static func run(_ s: Symbol, _ inputs: [String: NDArray], _ backend: OpByOpBackend) throws -> [NDArray] {
        let exec = try s.bind(shapes: inputs.mapValues(\.shape), types: inputs.mapValues(\.dtype),
                                    sharedBuffer: inputs, backend: backend)
        try exec.forward()
        return exec.outputs
    }

    /// The result of both backends, after checking that they agree bit for bit.
    static func runBoth(_ s: Symbol, _ inputs: [String: NDArray]) throws -> [NDArray] {
        let reference = try run(s, inputs, .reference)
        let framework = try run(s, inputs, .framework)
        #expect(reference.count == framework.count)
        for (r, f) in zip(reference, framework) { #expect(identical(r, f), "reference \(r) vs framework \(f)") }
        return reference
    }

    static func identical(_ a: NDArray, _ b: NDArray) -> Bool {
        a.shape == b.shape && a.dtype == b.dtype && a.withUnsafeBytes { x in b.withUnsafeBytes { y in x.elementsEqual(y) } }
    }

    static func iota(_ shape: Shape, dtype: DType = .float32) -> NDArray {
        NDArray(shape: shape, dtype: dtype, values: (0..<shape.elementCount).map(Double.init))
    }

    let x = Symbol.variable("x")

    // MARK: Hand-worked examples (reference kernels)

    @Test func flattenReshapeExpandDimsKeepOrder() throws {
        let input = Self.iota([2, 3, 4])
        for s in [Symbol.flatten(x), .reshape(x, shape: [-4, 1, 2, -2]), .expandDims(x, axis: 1), .reshape(x, shape: [-1, 0], reverse: true)] {
            let out = try Self.run(s, ["x": input], .reference)[0]
            #expect(out.floats() == (0..<24).map(Float.init))
        }
    }

    @Test func transposeHandWorked() throws {
        let m = NDArray(shape: [2, 3], values: [0, 1, 2, 3, 4, 5])
        #expect(try Self.run(.transpose(x), ["x": m], .reference)[0].floats() == [0, 3, 1, 4, 2, 5])
        // (2, 3, 4) with axes (1, 2, 0): out[j, k, i] = in[i, j, k] = 12i + 4j + k.
        let out = try Self.run(.transpose(x, axes: [1, 2, 0]), ["x": Self.iota([2, 3, 4])], .reference)[0]
        #expect(out.shape == [3, 4, 2])
        var expected: [Float] = []
        for j in 0..<3 { for k in 0..<4 { for i in 0..<2 { expected.append(Float(12 * i + 4 * j + k)) } } }
        #expect(out.floats() == expected)
    }

    @Test func concatHandWorked() throws {
        let a = NDArray(shape: [2, 2], values: [1, 2, 3, 4]), b = NDArray(shape: [2, 1], values: [5, 6])
        let s = Symbol.concat([.variable("a"), .variable("b")])
        #expect(try Self.run(s, ["a": a, "b": b], .reference)[0].floats() == [1, 2, 5, 3, 4, 6])
        let rows = Symbol.concat([.variable("a"), .variable("b")], dim: 0)
        #expect(try Self.run(rows, ["a": a, "b": NDArray(shape: [1, 2], values: [7, 8])], .reference)[0].floats() == [1, 2, 3, 4, 7, 8])
    }

    @Test func splitHandWorked() throws {
        let outs = try Self.run(.split(x, numOutputs: 2), ["x": Self.iota([2, 4])], .reference)
        #expect(outs.map { $0.floats() } == [[0, 1, 4, 5], [2, 3, 6, 7]])
        let squeezed = try Self.run(.split(x, numOutputs: 3, axis: 0, squeezeAxis: true), ["x": Self.iota([3, 2])], .reference)
        #expect(squeezed.map(\.shape) == [[2], [2], [2]])
        #expect(squeezed.map { $0.floats() } == [[0, 1], [2, 3], [4, 5]])
    }

    @Test func sliceAxisHandWorked() throws {
        let rows = try Self.run(.sliceAxis(x, axis: 0, begin: 2, end: nil), ["x": Self.iota([5, 3])], .reference)[0]
        #expect(rows.floats() == (6..<15).map(Float.init))
        let cols = try Self.run(.sliceAxis(x, axis: -1, begin: -3, end: -1), ["x": Self.iota([2, 4])], .reference)[0]
        #expect(cols.floats() == [1, 2, 5, 6])
    }

    /// Expected rows printed by MXNet 1.9.1 for the same inputs.
    @Test func padHandWorked() throws {
        let small = Self.iota([1, 1, 2, 2])
        let edge = try Self.run(.pad(x, mode: .edge, padWidth: [0, 0, 0, 0, 1, 2, 0, 1]), ["x": small], .reference)[0]
        #expect(edge.floats() == [0, 1, 1, 0, 1, 1, 2, 3, 3, 2, 3, 3, 2, 3, 3])
        let reflect = try Self.run(.pad(x, mode: .reflect, padWidth: [0, 0, 0, 0, 2, 2, 0, 0]), ["x": Self.iota([1, 1, 3, 3])], .reference)[0]
        #expect(reflect.floats() == [6, 7, 8, 3, 4, 5, 0, 1, 2, 3, 4, 5, 6, 7, 8, 3, 4, 5, 0, 1, 2])
        let constant = try Self.run(.pad(x, mode: .constant, padWidth: [0, 0, 0, 0, 1, 0, 1, 1], constantValue: 1.5), ["x": small], .reference)[0]
        #expect(constant.floats() == [1.5, 1.5, 1.5, 1.5, 1.5, 0, 1, 1.5, 1.5, 2, 3, 1.5])
    }

    @Test func sumAndMeanHandWorked() throws {
        let m = NDArray(shape: [2, 3], values: [1, 2, 3, 4, 5, 6])
        #expect(try Self.run(.sum(x, axis: [0]), ["x": m], .reference)[0].floats() == [5, 7, 9])
        #expect(try Self.run(.mean(x, axis: [1]), ["x": m], .reference)[0].floats() == [2, 5])
        #expect(try Self.run(.sum(x), ["x": m], .reference)[0].floats() == [21])
        #expect(try Self.run(.mean(x, axis: [1], keepDims: true, exclude: true), ["x": m], .reference)[0].floats() == [2.5, 3.5, 4.5])
        // MXNet's integer mean truncates: [[1, 2], [3, 4]] along axis 1 gives [1, 3].
        let ints = NDArray(shape: [2, 2], dtype: .int32, values: [1, 2, 3, 4])
        let mean = try Self.runBoth(.mean(x, axis: [1]), ["x": ints])[0]
        #expect(mean.dtype == .int32 && mean.doubles() == [1, 3])
    }

    // MARK: Golden cases from MXNet 1.9.1, both backends

    static let goldenOps: Set<String> = ["Flatten", "Reshape", "transpose", "expand_dims", "Concat", "SliceChannel",
                                         "slice_axis", "Pad", "sum", "mean"]

    static let goldenCases: [String] = Golden.caseNames(ops: goldenOps)

    @Test func everyGoldenOpHasCases() throws {
        #expect(Self.goldenCases.count == 53)
        #expect(Set(try Self.goldenCases.map { try Golden.opCase($0).op }) == Self.goldenOps)
    }

    /// Data movement must be exact; sum and mean within 1e-5 of the largest expected value.
    @Test(arguments: goldenCases)
    func goldenCase(_ name: String) throws {
        let c = try Golden.opCase(name)
        #expect(!c.outputs.isEmpty)
        let isReduction = c.op == "sum" || c.op == "mean"
        for backend in [OpByOpBackend.reference, .framework] {
            let outs = try Self.run(c.symbol, c.arguments, backend)
            try #require(outs.count == c.outputs.count, "\(name) on \(backend.name)")
            for (out, want) in zip(outs, c.outputs) {
                if isReduction {
                    expectClose(out, want, relative: 1e-5, "\(name) on \(backend.name)")
                } else {
                    #expect(Self.identical(out, want), "\(name) on \(backend.name): \(out) vs \(want)")
                }
            }
        }
    }

    // MARK: Framework against reference

    struct Case: CustomTestStringConvertible, Sendable {
        let label: String
        let symbol: @Sendable () -> Symbol
        let inputs: [String: Shape]
        var testDescription: String { label }
    }

    static let cases: [Case] = [
        Case(label: "transpose 3d reorder", symbol: { .transpose(.variable("x"), axes: [2, 0, 1]) }, inputs: ["x": [5, 6, 7]]),
        Case(label: "transpose 4d keeps last axis", symbol: { .transpose(.variable("x"), axes: [0, 2, 1, 3]) }, inputs: ["x": [2, 5, 3, 7]]),
        Case(label: "transpose nchw->nhwc", symbol: { .transpose(.variable("x"), axes: [0, 2, 3, 1]) }, inputs: ["x": [2, 16, 9, 9]]),
        Case(label: "transpose with unit axes", symbol: { .transpose(.variable("x"), axes: [3, 1, 2, 0]) }, inputs: ["x": [1, 4, 1, 6]]),
        Case(label: "concat axis 1 of 4d", symbol: { .concat([.variable("a"), .variable("b"), .variable("c")]) },
             inputs: ["a": [2, 3, 4, 5], "b": [2, 1, 4, 5], "c": [2, 7, 4, 5]]),
        Case(label: "concat last axis", symbol: { .concat([.variable("a"), .variable("b")], dim: -1) }, inputs: ["a": [3, 4, 5], "b": [3, 4, 2]]),
        Case(label: "concat of one", symbol: { .concat([.variable("a")], dim: 0) }, inputs: ["a": [3, 4]]),
        Case(label: "split axis 1", symbol: { .split(.variable("x"), numOutputs: 4) }, inputs: ["x": [3, 8, 5]]),
        Case(label: "split last axis squeezed", symbol: { .split(.variable("x"), numOutputs: 3, axis: -1, squeezeAxis: true) }, inputs: ["x": [4, 5, 3]]),
        Case(label: "slice middle axis", symbol: { .sliceAxis(.variable("x"), axis: 1, begin: 2, end: -3) }, inputs: ["x": [3, 11, 4]]),
        Case(label: "pad constant 5d", symbol: { .pad(.variable("x"), mode: .constant, padWidth: [0, 0, 0, 0, 2, 1, 0, 3, 1, 1], constantValue: -2) },
             inputs: ["x": [2, 3, 4, 5, 6]]),
        Case(label: "pad edge 4d", symbol: { .pad(.variable("x"), mode: .edge, padWidth: [0, 0, 0, 0, 3, 1, 2, 4]) }, inputs: ["x": [2, 3, 5, 4]]),
        Case(label: "pad reflect 4d", symbol: { .pad(.variable("x"), mode: .reflect, padWidth: [0, 0, 0, 0, 2, 3, 3, 1]) }, inputs: ["x": [2, 2, 5, 4]]),
        Case(label: "pad reflect 5d", symbol: { .pad(.variable("x"), mode: .reflect, padWidth: [0, 0, 0, 0, 1, 2, 2, 0, 0, 3]) }, inputs: ["x": [1, 2, 3, 4, 5]]),
        Case(label: "reshape view", symbol: { .reshape(.variable("x"), shape: [0, -3, -2]) }, inputs: ["x": [2, 3, 4, 5]]),
    ]

    @Test(arguments: cases)
    func frameworkMatchesReference(_ c: Case) throws {
        var inputs: [String: NDArray] = [:]
        for (i, (name, shape)) in c.inputs.sorted(by: { $0.key < $1.key }).enumerated() {
            inputs[name] = .randomNormal(shape: shape, seed: UInt64(i + 1))
        }
        _ = try Self.runBoth(c.symbol(), inputs)
    }

    /// Shapes at the edges: 0-d and 1-d arrays, zero-size inputs, a single part, the whole axis.
    static let edgeCases: [Case] = [
        Case(label: "transpose 0-d", symbol: { .transpose(.variable("x")) }, inputs: ["x": []]),
        Case(label: "transpose 1-d", symbol: { .transpose(.variable("x")) }, inputs: ["x": [5]]),
        Case(label: "transpose 7-d", symbol: { .transpose(.variable("x")) }, inputs: ["x": [2, 1, 3, 1, 2, 2, 3]]),
        Case(label: "reshape 0-d", symbol: { .reshape(.variable("x"), shape: [1, 1]) }, inputs: ["x": []]),
        Case(label: "flatten 1-d", symbol: { .flatten(.variable("x")) }, inputs: ["x": [4]]),
        Case(label: "concat with an empty input", symbol: { .concat([.variable("a"), .variable("b")]) }, inputs: ["a": [2, 0, 3], "b": [2, 2, 3]]),
        Case(label: "split into one", symbol: { .split(.variable("x"), numOutputs: 1) }, inputs: ["x": [2, 3]]),
        Case(label: "split zero-size", symbol: { .split(.variable("x"), numOutputs: 2, axis: 0) }, inputs: ["x": [4, 0]]),
        Case(label: "slice the whole axis", symbol: { .sliceAxis(.variable("x"), axis: 0, begin: 0, end: nil) }, inputs: ["x": [3, 2]]),
        Case(label: "pad nothing", symbol: { .pad(.variable("x"), mode: .reflect, padWidth: [0, 0, 0, 0, 0, 0, 0, 0]) }, inputs: ["x": [1, 2, 3, 4]]),
        Case(label: "pad zero-size", symbol: { .pad(.variable("x"), mode: .constant, padWidth: [0, 0, 0, 0, 1, 1, 1, 1]) }, inputs: ["x": [0, 2, 3, 4]]),
        Case(label: "sum 0-d", symbol: { .sum(.variable("x")) }, inputs: ["x": []]),
        Case(label: "mean over unit axes", symbol: { .mean(.variable("x"), axis: [0, 2]) }, inputs: ["x": [1, 3, 1]]),
        Case(label: "sum of zero-size", symbol: { .sum(.variable("x"), axis: [1]) }, inputs: ["x": [3, 0]]),
    ]

    @Test(arguments: edgeCases)
    func edgeShapes(_ c: Case) throws {
        var inputs: [String: NDArray] = [:]
        for (i, (name, shape)) in c.inputs.sorted(by: { $0.key < $1.key }).enumerated() {
            inputs[name] = .randomNormal(shape: shape, seed: UInt64(i + 1))
        }
        _ = try Self.runBoth(c.symbol(), inputs)
    }

    /// Reductions are compared within float tolerance: oneDNN sums in another order.
    @Test(arguments: [[], [0], [1], [3], [0, 2], [1, 2, 3], [-1, 0]] as [[Int]], [false, true])
    func reductionsMatchReference(axis: [Int], exclude: Bool) throws {
        let input = NDArray.randomNormal(shape: [3, 5, 4, 6], seed: 7)
        for keepDims in [false, true] {
            for s in [Symbol.sum(x, axis: axis, keepDims: keepDims, exclude: exclude), .mean(x, axis: axis, keepDims: keepDims, exclude: exclude)] {
                let r = try Self.run(s, ["x": input], .reference)[0]
                let f = try Self.run(s, ["x": input], .framework)[0]
                #expect(r.shape == f.shape)
                #expect(try r.maxAbsDifference(f) <= 1e-5 * max(r.maxAbs(), 1e-30))
            }
        }
    }

    @Test func frameworkReshapeIsAView() throws {
        let input = Self.iota([2, 3, 4])
        for s in [Symbol.flatten(x), .reshape(x, shape: [4, -1]), .expandDims(x, axis: 0)] {
            let exec = try s.bind(shapes: ["x": input.shape], sharedBuffer: ["x": input], backend: OpByOpBackend.framework)
            try exec.forward()
            #expect(exec.outputs[0].sharesStorage(with: input))
        }
    }

    @Test func repeatedForwardsSeeNewInputs() throws {
        let s = Symbol.concat([.variable("a"), .transpose(.variable("b"))])
        let exec = try s.bind(shapes: ["a": [3, 2], "b": [4, 3]], backend: OpByOpBackend.framework)
        for seed in 1...3 as ClosedRange<UInt64> {
            let a = NDArray.randomNormal(shape: [3, 2], seed: seed), b = NDArray.randomNormal(shape: [4, 3], seed: seed + 10)
            try exec.forward(["a": a, "b": b])
            #expect(Self.identical(exec.outputs[0], try Self.run(s, ["a": a, "b": b], .reference)[0]))
        }
    }

    // MARK: Every dtype for data movement

    static let movementCases: [Case] = [
        Case(label: "Flatten", symbol: { .flatten(.variable("x")) }, inputs: ["x": [2, 3, 4]]),
        Case(label: "Reshape", symbol: { .reshape(.variable("x"), shape: [-1, 2]) }, inputs: ["x": [2, 3, 4]]),
        Case(label: "expand_dims", symbol: { .expandDims(.variable("x"), axis: -1) }, inputs: ["x": [2, 3, 4]]),
        Case(label: "transpose", symbol: { .transpose(.variable("x")) }, inputs: ["x": [2, 3, 4]]),
        Case(label: "transpose runs", symbol: { .transpose(.variable("x"), axes: [1, 0, 2]) }, inputs: ["x": [2, 3, 4]]),
        Case(label: "Concat", symbol: { .concat([.variable("x"), .variable("y")], dim: 2) }, inputs: ["x": [2, 3, 4], "y": [2, 3, 1]]),
        Case(label: "SliceChannel", symbol: { .split(.variable("x"), numOutputs: 3) }, inputs: ["x": [2, 3, 4]]),
        Case(label: "slice_axis", symbol: { .sliceAxis(.variable("x"), axis: 2, begin: 1, end: 3) }, inputs: ["x": [2, 3, 4]]),
        Case(label: "Pad", symbol: { .pad(.variable("x"), mode: .reflect, padWidth: [0, 0, 0, 0, 1, 1, 2, 1]) }, inputs: ["x": [1, 2, 3, 4]]),
    ]

    /// Small integers survive every dtype, so each result must be the float32 result converted.
    @Test(arguments: movementCases, [DType.float64, .float16, .bfloat16, .int32, .int8, .uint8, .int64])
    func dataMovementInEveryDType(_ c: Case, dtype: DType) throws {
        var floats: [String: NDArray] = [:], typed: [String: NDArray] = [:]
        for (k, (name, shape)) in c.inputs.sorted(by: { $0.key < $1.key }).enumerated() {
            let values = (0..<shape.elementCount).map { Double(($0 * 7 + k * 3) % 100) }
            floats[name] = NDArray(shape: shape, dtype: .float32, values: values)
            typed[name] = NDArray(shape: shape, dtype: dtype, values: values)
        }
        let want = try Self.run(c.symbol(), floats, .reference)
        let got = try Self.runBoth(c.symbol(), typed)
        for (g, w) in zip(got, want) {
            #expect(g.dtype == dtype)
            #expect(Self.identical(g, w.converted(to: dtype)))
        }
    }
}
