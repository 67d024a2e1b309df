import KilnCore
import KilnGraph
import KilnRuntime
import TestSupport
import Testing

/// Gradients of the tensor family: finite differences on the reference backend for every op with
/// several attribute sets, hand-worked gradients where several output elements read one input
/// element, the framework's backward against the reference's, and graphs in which the executor
/// must add gradients (an entry read by two nodes, or twice by one) or leave some outputs without.
@Suite struct TensorGradientTests {
    struct Case: CustomTestStringConvertible, Sendable {
        let label: String
        let symbol: @Sendable () -> Symbol
        let inputs: [(String, Shape)]
        var testDescription: String { label }
    }

    static func randomInputs(_ c: Case, dtype: DType = .float32) -> [String: NDArray] {
        var inputs: [String: NDArray] = [:]
        for (i, (name, shape)) in c.inputs.enumerated() {
            inputs[name] = NDArray.randomNormal(shape: shape, seed: UInt64(11 + i)).converted(to: dtype)
        }
        return inputs
    }

    static let x = Symbol.variable("x")

    /// Every op, with the attribute sets that take different paths through its kernels.
    static let cases: [Case] = [
        Case(label: "Flatten 3-d", symbol: { .flatten(x) }, inputs: [("x", [2, 3, 4])]),
        Case(label: "Flatten 1-d", symbol: { .flatten(x) }, inputs: [("x", [5])]),
        Case(label: "Reshape split and keep", symbol: { .reshape(x, shape: [-4, 1, 2, -2]) }, inputs: [("x", [2, 3, 4])]),
        Case(label: "Reshape reverse", symbol: { .reshape(x, shape: [-1, 0], reverse: true) }, inputs: [("x", [2, 3, 4])]),
        Case(label: "expand_dims 1", symbol: { .expandDims(x, axis: 1) }, inputs: [("x", [3, 4])]),
        Case(label: "expand_dims -1", symbol: { .expandDims(x, axis: -1) }, inputs: [("x", [3, 4])]),
        Case(label: "transpose reversed", symbol: { .transpose(x) }, inputs: [("x", [2, 3, 4])]),
        Case(label: "transpose (1, 2, 0)", symbol: { .transpose(x, axes: [1, 2, 0]) }, inputs: [("x", [2, 3, 4])]),
        Case(label: "transpose keeps last axis", symbol: { .transpose(x, axes: [0, 2, 1, 3]) }, inputs: [("x", [2, 3, 2, 3])]),
        Case(label: "transpose nchw->nhwc", symbol: { .transpose(x, axes: [0, 2, 3, 1]) }, inputs: [("x", [2, 3, 2, 3])]),
        Case(label: "Concat dim 1", symbol: { .concat([.variable("a"), .variable("b"), .variable("c")]) },
             inputs: [("a", [2, 2, 3]), ("b", [2, 1, 3]), ("c", [2, 3, 3])]),
        Case(label: "Concat dim 0", symbol: { .concat([.variable("a"), .variable("b")], dim: 0) }, inputs: [("a", [2, 3]), ("b", [1, 3])]),
        Case(label: "Concat dim -1", symbol: { .concat([.variable("a"), .variable("b")], dim: -1) }, inputs: [("a", [2, 2, 1]), ("b", [2, 2, 3])]),
        Case(label: "Concat of one", symbol: { .concat([.variable("a")], dim: 0) }, inputs: [("a", [3, 2])]),
        Case(label: "SliceChannel axis 1", symbol: { .split(x, numOutputs: 3) }, inputs: [("x", [2, 6, 2])]),
        Case(label: "SliceChannel axis 0 squeezed", symbol: { .split(x, numOutputs: 3, axis: 0, squeezeAxis: true) }, inputs: [("x", [3, 2, 2])]),
        Case(label: "SliceChannel axis -1", symbol: { .split(x, numOutputs: 2, axis: -1) }, inputs: [("x", [3, 2, 4])]),
        Case(label: "slice_axis 0 from 1", symbol: { .sliceAxis(x, axis: 0, begin: 1, end: nil) }, inputs: [("x", [4, 3])]),
        Case(label: "slice_axis -1 negative range", symbol: { .sliceAxis(x, axis: -1, begin: -3, end: -1) }, inputs: [("x", [2, 3, 5])]),
        Case(label: "slice_axis 1 first", symbol: { .sliceAxis(x, axis: 1, begin: 0, end: 1) }, inputs: [("x", [2, 4, 3])]),
        Case(label: "Pad constant 4-d", symbol: { .pad(x, mode: .constant, padWidth: [0, 0, 0, 0, 1, 2, 2, 1], constantValue: 1.5) },
             inputs: [("x", [1, 2, 3, 4])]),
        Case(label: "Pad edge 4-d", symbol: { .pad(x, mode: .edge, padWidth: [0, 0, 0, 0, 2, 1, 3, 2]) }, inputs: [("x", [2, 1, 3, 2])]),
        Case(label: "Pad reflect 4-d", symbol: { .pad(x, mode: .reflect, padWidth: [0, 0, 0, 0, 2, 1, 3, 2]) }, inputs: [("x", [1, 2, 3, 4])]),
        Case(label: "Pad constant 5-d", symbol: { .pad(x, mode: .constant, padWidth: [0, 0, 0, 0, 1, 0, 0, 2, 1, 1]) },
             inputs: [("x", [1, 2, 2, 3, 2])]),
        Case(label: "Pad edge 5-d", symbol: { .pad(x, mode: .edge, padWidth: [0, 0, 0, 0, 1, 2, 2, 0, 0, 1]) }, inputs: [("x", [1, 1, 2, 3, 2])]),
        Case(label: "Pad reflect 5-d", symbol: { .pad(x, mode: .reflect, padWidth: [0, 0, 0, 0, 1, 1, 2, 0, 0, 2]) }, inputs: [("x", [1, 2, 2, 3, 3])]),
        Case(label: "sum all", symbol: { .sum(x) }, inputs: [("x", [2, 3, 4])]),
        Case(label: "sum axis 1 keepdims", symbol: { .sum(x, axis: [1], keepDims: true) }, inputs: [("x", [2, 3, 4])]),
        Case(label: "sum exclude (0, 2)", symbol: { .sum(x, axis: [0, 2], exclude: true) }, inputs: [("x", [2, 3, 4])]),
        Case(label: "sum axis -1", symbol: { .sum(x, axis: [-1]) }, inputs: [("x", [2, 3, 4])]),
        Case(label: "sum over a unit axis", symbol: { .sum(x, axis: [1]) }, inputs: [("x", [3, 1, 2])]),
        Case(label: "mean all keepdims", symbol: { .mean(x, keepDims: true) }, inputs: [("x", [2, 3, 4])]),
        Case(label: "mean axis (0, 2)", symbol: { .mean(x, axis: [0, 2]) }, inputs: [("x", [2, 3, 4])]),
        Case(label: "mean exclude 1 keepdims", symbol: { .mean(x, axis: [1], keepDims: true, exclude: true) }, inputs: [("x", [2, 3, 4])]),
        Case(label: "mean axis -1", symbol: { .mean(x, axis: [-1]) }, inputs: [("x", [4, 5])]),
    ]

    /// Larger shapes and the edges (0-d, zero-size, a single part) for framework against reference.
    static let frameworkCases: [Case] = cases + [
        Case(label: "transpose 3-d reorder, large", symbol: { .transpose(x, axes: [2, 0, 1]) }, inputs: [("x", [5, 6, 7])]),
        Case(label: "transpose 0-d", symbol: { .transpose(x) }, inputs: [("x", [])]),
        Case(label: "transpose 7-d", symbol: { .transpose(x) }, inputs: [("x", [2, 1, 3, 1, 2, 2, 3])]),
        Case(label: "Concat with an empty input", symbol: { .concat([.variable("a"), .variable("b")]) }, inputs: [("a", [2, 0, 3]), ("b", [2, 2, 3])]),
        Case(label: "SliceChannel into one", symbol: { .split(x, numOutputs: 1) }, inputs: [("x", [2, 3])]),
        Case(label: "SliceChannel zero-size", symbol: { .split(x, numOutputs: 2, axis: 0) }, inputs: [("x", [4, 0])]),
        Case(label: "Pad edge 4-d, large", symbol: { .pad(x, mode: .edge, padWidth: [0, 0, 0, 0, 3, 1, 2, 4]) }, inputs: [("x", [2, 3, 5, 4])]),
        Case(label: "Pad reflect 5-d, large", symbol: { .pad(x, mode: .reflect, padWidth: [0, 0, 0, 0, 1, 2, 2, 0, 0, 3]) }, inputs: [("x", [1, 2, 3, 4, 5])]),
        Case(label: "Pad zero-size", symbol: { .pad(x, mode: .constant, padWidth: [0, 0, 0, 0, 1, 1, 1, 1]) }, inputs: [("x", [0, 2, 3, 4])]),
        Case(label: "sum 0-d", symbol: { .sum(x) }, inputs: [("x", [])]),
        Case(label: "sum of zero-size", symbol: { .sum(x, axis: [1]) }, inputs: [("x", [3, 0])]),
        Case(label: "mean middle axes, large", symbol: { .mean(x, axis: [1, 2]) }, inputs: [("x", [3, 5, 4, 6])]),
        Case(label: "sum trailing axes, large", symbol: { .sum(x, axis: [2, 3]) }, inputs: [("x", [3, 5, 4, 6])]),
    ]

    // MARK: Finite differences (reference backend)

    /// Every op here is linear, so central differences are exact up to float32 rounding.
    @Test(arguments: cases)
    func finiteDifferences(_ c: Case) throws {
        let inputs = Self.randomInputs(c)
        let check = GradientCheck(symbol: c.symbol(), arguments: inputs)
        let results = try check.run(check: c.inputs.map(\.0), samples: 40)
        #expect(results.count == c.inputs.count)
        for r in results {
            #expect(r.checked > 0, "\(c.label): \(r)")
            #expect(r.worstRelativeError < 1e-3, "\(c.label): \(r)")
        }
    }

    // MARK: Hand-worked gradients

    // The expected values below were worked out by hand and are what MXNet 1.9.1's backward gives
    // for the same inputs and head gradients.

    static func gradients(_ s: Symbol, _ inputs: [String: NDArray], heads: [NDArray], backend: OpByOpBackend,
                          gradReq: GradReq = .write) throws -> [String: NDArray] {
        let exec = try s.bind(shapes: inputs.mapValues(\.shape), types: inputs.mapValues(\.dtype),
                                    gradReq: gradReq, sharedBuffer: inputs, backend: backend)
        try exec.forward(isTrain: true)
        try exec.backward(heads)
        return exec.gradDict
    }

    /// The same gradients from both backends, after checking that they agree.
    static func gradientsOnBoth(_ s: Symbol, _ inputs: [String: NDArray], heads: [NDArray]) throws -> [String: NDArray] {
        let reference = try gradients(s, inputs, heads: heads, backend: .reference)
        let framework = try gradients(s, inputs, heads: heads, backend: .framework)
        #expect(Set(reference.keys) == Set(framework.keys))
        for (name, r) in reference {
            guard let f = framework[name] else { continue }
            #expect(f.dtype == r.dtype, "\(name)")
            expectClose(f, r, relative: 1e-6, "gradient of \(name), framework against reference")
        }
        return reference
    }

    /// Edge padding repeats the row's ends, so their gradients collect the borders':
    /// `a b c -> a a b c c c` gives `ga = g0 + g1`, `gc = g3 + g4 + g5`.
    @Test func edgePadAddsBorderGradients() throws {
        let input = NDArray(shape: [1, 1, 1, 3], values: [1, 2, 3])
        let g = NDArray(shape: [1, 1, 1, 6], values: [1, 10, 100, 1000, 10000, 100000])
        let grads = try Self.gradientsOnBoth(.pad(Self.x, mode: .edge, padWidth: [0, 0, 0, 0, 0, 0, 1, 2]), ["x": input], heads: [g])
        #expect(grads["x"]?.floats() == [11, 100, 111000])
    }

    /// Reflection mirrors without repeating the edge: `a b c d -> c b | a b c d | c` gives
    /// `ga = g2`, `gb = g1 + g3`, `gc = g0 + g4 + g6`, `gd = g5`; a padded row axis adds whole rows.
    @Test func reflectPadAddsMirroredGradients() throws {
        let row = NDArray(shape: [1, 1, 1, 4], values: [1, 2, 3, 4])
        let g = NDArray(shape: [1, 1, 1, 7], values: [1, 10, 100, 1000, 10000, 100000, 1000000])
        let grads = try Self.gradientsOnBoth(.pad(Self.x, mode: .reflect, padWidth: [0, 0, 0, 0, 0, 0, 2, 1]), ["x": row], heads: [g])
        #expect(grads["x"]?.floats() == [100, 1010, 1010001, 100000])
        // Rows r0 r1 r2 padded (1, 1) on the row axis: r1 | r0 r1 r2 | r1, so r1 collects three rows.
        let column = NDArray(shape: [1, 1, 3, 1], values: [1, 2, 3])
        let h = NDArray(shape: [1, 1, 5, 1], values: [1, 10, 100, 1000, 10000])
        let rows = try Self.gradientsOnBoth(.pad(Self.x, mode: .reflect, padWidth: [0, 0, 0, 0, 1, 1, 0, 0]), ["x": column], heads: [h])
        #expect(rows["x"]?.floats() == [10, 10101, 1000])
    }

    /// Constant padding's gradient is the crop of the output gradient; the padding's is dropped.
    @Test func constantPadGradientIsTheCrop() throws {
        let input = NDArray(shape: [1, 1, 2, 2], values: [1, 2, 3, 4])
        let g = NDArray(shape: [1, 1, 3, 4], values: (0..<12).map(Float.init))
        let grads = try Self.gradientsOnBoth(.pad(Self.x, mode: .constant, padWidth: [0, 0, 0, 0, 1, 0, 1, 1], constantValue: 7),
                                             ["x": input], heads: [g])
        #expect(grads["x"]?.floats() == [5, 6, 9, 10])
    }

    /// sum broadcasts its gradient over the reduced axes, mean divides it by the count as well.
    @Test func reductionsBroadcastTheirGradient() throws {
        let m = NDArray(shape: [2, 3], values: [1, 2, 3, 4, 5, 6])
        let sum = try Self.gradientsOnBoth(.sum(Self.x, axis: [0]), ["x": m], heads: [NDArray(shape: [3], values: [1, 2, 3])])
        #expect(sum["x"]?.floats() == [1, 2, 3, 1, 2, 3])
        let mean = try Self.gradientsOnBoth(.mean(Self.x, axis: [0], exclude: true), ["x": m], heads: [NDArray(shape: [2], values: [3, 6])])
        #expect(mean["x"]?.floats() == [1, 1, 1, 2, 2, 2])
        let all = try Self.gradientsOnBoth(.mean(Self.x, keepDims: true), ["x": m], heads: [NDArray(shape: [1, 1], values: [12])])
        #expect(all["x"]?.floats() == [2, 2, 2, 2, 2, 2])
    }

    /// transpose's gradient is the output gradient transposed back.
    @Test func transposeGradientIsTheInversePermutation() throws {
        let input = NDArray(shape: [2, 3, 4], values: (0..<24).map(Float.init))
        let g = NDArray(shape: [3, 4, 2], values: (0..<24).map(Float.init))
        let grads = try Self.gradientsOnBoth(.transpose(Self.x, axes: [1, 2, 0]), ["x": input], heads: [g])
        // dx[i, j, k] = g[j, k, i] = 8j + 2k + i.
        var expected: [Float] = []
        for i in 0..<2 { for j in 0..<3 { for k in 0..<4 { expected.append(Float(8 * j + 2 * k + i)) } } }
        #expect(grads["x"]?.floats() == expected)
    }

    // MARK: Framework against reference

    /// The framework's backward against the reference's, for random output gradients, in float32
    /// and float64 (data movement moves any dtype; sum and mean of float64 run the reference kernel).
    @Test(arguments: frameworkCases, [DType.float32, .float64])
    func frameworkBackwardMatchesReference(_ c: Case, dtype: DType) throws {
        let inputs = Self.randomInputs(c, dtype: dtype)
        let s = c.symbol()
        let exec = try s.bind(shapes: inputs.mapValues(\.shape), types: inputs.mapValues(\.dtype), sharedBuffer: inputs, backend: OpByOpBackend.reference)
        try exec.forward()
        let heads = exec.outputs.enumerated().map { k, o in
            NDArray.randomUniform(shape: o.shape, low: -1, high: 1, seed: 100 + UInt64(k)).converted(to: dtype)
        }
        let grads = try Self.gradientsOnBoth(s, inputs, heads: heads)
        for (name, value) in inputs {
            #expect(grads[name]?.shape == value.shape, "\(c.label): \(name)")
            #expect(grads[name]?.dtype == dtype, "\(c.label): \(name)")
        }
    }

    // MARK: Graphs

    // As above, MXNet 1.9.1's backward gives the expected values of these graphs too.

    /// `x` read by two nodes: `y = Concat(x, transpose(x))`, so `dx = dy[0:2] + dy[2:4]ᵀ`.
    @Test func entryReadByTwoNodesAddsTheirGradients() throws {
        let s = Symbol.concat([Self.x, .transpose(Self.x)], dim: 0)
        let input = NDArray(shape: [2, 2], values: [1, 2, 3, 4])
        let g = NDArray(shape: [4, 2], values: [1, 2, 3, 4, 10, 20, 30, 40])
        let grads = try Self.gradientsOnBoth(s, ["x": input], heads: [g])
        #expect(grads["x"]?.floats() == [11, 32, 23, 44])
        for r in try GradientCheck(symbol: s, arguments: ["x": .randomNormal(shape: [3, 3], seed: 5)]).run(check: ["x"]) {
            #expect(r.worstRelativeError < 1e-3, "\(r)")
        }
    }

    /// `x` read twice by one node: `Concat(x, x)` along the last axis gives `dx = dy[:, :2] + dy[:, 2:]`.
    @Test(arguments: [DType.float32, .float64, .float16])
    func entryReadTwiceByOneNodeAddsBothGradients(_ dtype: DType) throws {
        let s = Symbol.concat([Self.x, Self.x], dim: 1)
        let input = NDArray(shape: [2, 2], dtype: dtype, values: [1, 2, 3, 4])
        let g = NDArray(shape: [2, 4], dtype: dtype, values: [1, 2, 10, 20, 3, 4, 30, 40])
        let grads = try Self.gradientsOnBoth(s, ["x": input], heads: [g])
        #expect(grads["x"]?.dtype == dtype)
        #expect(grads["x"]?.doubles() == [11, 22, 33, 44])
    }

    /// An added gradient flows on into the next node's backward in the entry's own dtype:
    /// `t = transpose(x)`, `y = Concat(t, t)`, so `dx = (dy[:, :2] + dy[:, 2:])ᵀ`.
    @Test(arguments: [DType.float32, .float64])
    func addedGradientKeepsItsDtypeDownstream(_ dtype: DType) throws {
        let t = Symbol.transpose(Self.x)
        let s = Symbol.concat([t, t], dim: 1)
        let input = NDArray(shape: [2, 2], dtype: dtype, values: [1, 2, 3, 4])
        let g = NDArray(shape: [2, 4], dtype: dtype, values: [1, 2, 10, 20, 3, 4, 30, 40])
        let grads = try Self.gradientsOnBoth(s, ["x": input], heads: [g])
        #expect(grads["x"]?.dtype == dtype)
        #expect(grads["x"]?.doubles() == [11, 33, 22, 44])
    }

    /// SliceChannel with its middle output unused: that part's gradient is zero.
    @Test func splitWithAnUnusedOutput() throws {
        let parts = Symbol.split(Self.x, numOutputs: 3, axis: 1)
        let s = Symbol.group([parts[2], parts[0]])
        let input = NDArray(shape: [2, 3], values: [1, 2, 3, 4, 5, 6])
        let grads = try Self.gradientsOnBoth(s, ["x": input],
                                             heads: [NDArray(shape: [2, 1], values: [10, 20]), NDArray(shape: [2, 1], values: [1, 2])])
        #expect(grads["x"]?.floats() == [1, 0, 10, 2, 0, 20])
        for r in try GradientCheck(symbol: s, arguments: ["x": .randomNormal(shape: [2, 6], seed: 3)]).run(check: ["x"]) {
            #expect(r.worstRelativeError < 1e-3, "\(r)")
        }
    }

    /// SliceChannel whose one output two nodes read, and another output one node reads twice.
    @Test func splitOutputsReadSeveralTimes() throws {
        let parts = Symbol.split(Self.x, numOutputs: 2, axis: 0, squeezeAxis: true)
        let s = Symbol.group([.concat([parts[0], parts[1], parts[1]], dim: 0), .sum(parts[0])])
        let input = NDArray(shape: [2, 3], values: [1, 2, 3, 4, 5, 6])
        let grads = try Self.gradientsOnBoth(s, ["x": input],
                                             heads: [NDArray(shape: [9], values: [1, 2, 3, 10, 20, 30, 100, 200, 300]), NDArray(shape: [1], values: [7])])
        #expect(grads["x"]?.floats() == [8, 9, 10, 110, 220, 330])
    }

    /// `gradReq: .add` adds each backward's gradient to what `gradDict` held, in the argument's dtype.
    @Test(arguments: [DType.float32, .float64])
    func addRequestAccumulatesAcrossBackwards(_ dtype: DType) throws {
        let s = Symbol.sum(Self.x, axis: [1])
        let input = NDArray(shape: [2, 2], dtype: dtype, values: [1, 2, 3, 4])
        let exec = try s.bind(shapes: ["x": [2, 2]], types: ["x": dtype], gradReq: .add, sharedBuffer: ["x": input], backend: OpByOpBackend.framework)
        for _ in 0..<3 {
            try exec.forward(isTrain: true)
            try exec.backward([NDArray(shape: [2], dtype: dtype, values: [1, 2])])
        }
        #expect(exec.gradDict["x"]?.dtype == dtype)
        #expect(exec.gradDict["x"]?.doubles() == [3, 3, 6, 6])
    }

    /// A head gradient of another dtype is converted to its output's, which kernels read it as.
    @Test func headGradientOfAnotherDtypeIsConverted() throws {
        let s = Symbol.concat([.transpose(Self.x), .transpose(Self.x)], dim: 0)
        for backend in [OpByOpBackend.reference, .framework] {
            let exec = try s.bind(shapes: ["x": [2, 3]], types: ["x": .float64], gradReq: .write, backend: backend)
            try exec.forward(isTrain: true)
            try exec.backward([NDArray(shape: [6, 2], values: (0..<12).map(Float.init))])
            #expect(exec.gradDict["x"]?.dtype == .float64)
            // dx = (dy[0:3] + dy[3:6])ᵀ with dy[r, c] = 2r + c.
            #expect(exec.gradDict["x"]?.doubles() == [6, 10, 14, 8, 12, 16], "\(backend.name)")
        }
    }
}
