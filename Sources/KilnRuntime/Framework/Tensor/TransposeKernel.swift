import KilnCore

/// One permutation of axes, `out = in` with output axis i being input axis `axes[i]`, run the
/// fastest way it can: permutations that keep an innermost run contiguous are plain copies of runs;
/// others go to oneDNN's reorder, which has vectorized kernels for them.
final class TransposeMove {
    enum Path {
        case reorder(DNNLTranspose)
        /// Gather with these output dims and the input strides permuted to them.
        case runs(dims: [Int], strides: [Int])
    }

    let path: Path
    let elementSize: Int

    init(input: Shape, axes: [Int], type: DType, node: String) throws {
        let inStrides = input.strides
        let out = axes.map { input[$0] }
        let gatherStrides = axes.map { inStrides[$0] }
        elementSize = type.byteSize
        let innerRun = RunCopy.coalesce(dims: out, strides: gatherStrides).1.last == 1
        if !innerRun, !out.isEmpty, out.reduce(1, *) > 0, DNNL.canDescribe(type, rank: out.count) {
            path = .reorder(try DNNLTranspose(input: input, axes: axes, type: type, node: node))
        } else {
            path = .runs(dims: out, strides: gatherStrides)
        }
    }

    func run(_ input: NDArray, into output: inout NDArray) throws {
        switch path {
        case let .reorder(r): try r.run(input, into: &output)
        case let .runs(dims, strides):
            let size = elementSize
            input.withUnsafeBytes { src in
                output.withUnsafeMutableBytes { dst in
                    guard let s = src.baseAddress, let d = dst.baseAddress else { return }
                    RunCopy.gather(dims: dims, strides: strides, elementSize: size, from: s, to: d)
                }
            }
        }
    }
}

/// transpose: forward permutes by `axes`, backward permutes the output gradient by the inverse
/// permutation, built on the first backward so inference binds never pay for it.
///
/// ```
/// axes (1, 2, 0):  x (A, B, C) -> y (B, C, A);   dy (B, C, A) -> dx (A, B, C) by axes (2, 0, 1)
/// ```
final class TransposeKernel: Kernel {
    let input: Shape
    let axes: [Int]
    let type: DType
    let node: String
    let forwardMove: TransposeMove
    private var backwardMove: TransposeMove?

    init(input: Shape, axes: [Int], type: DType, node: String) throws {
        self.input = input
        self.axes = axes
        self.type = type
        self.node = node
        forwardMove = try TransposeMove(input: input, axes: axes, type: type, node: node)
    }

    func forward(_ inputs: [NDArray], _ outputs: inout [NDArray], isTrain: Bool) throws {
        try forwardMove.run(inputs[0], into: &outputs[0])
    }

    func backward(_ inputs: [NDArray], _ outputs: [NDArray], _ outputGradients: [NDArray],
                  _ inputGradients: inout [NDArray], needed: [Bool]) throws {
        guard needed[0] else { return }
        let move: TransposeMove
        if let m = backwardMove { move = m } else {
            var inverse = [Int](repeating: 0, count: axes.count)
            for (i, a) in axes.enumerated() { inverse[a] = i }
            move = try TransposeMove(input: Shape(axes.map { input[$0] }), axes: inverse, type: type, node: node)
            backwardMove = move
        }
        try move.run(outputGradients[0], into: &inputGradients[0])
    }
}
