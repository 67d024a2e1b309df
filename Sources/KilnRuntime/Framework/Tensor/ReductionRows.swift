import KilnCore
import KilnGraph

/// The layout of a reduction after merging neighbouring axes that are both kept or both reduced
/// (axes of extent 1 drop out): `(3,5,4,6)` reducing axes 1 and 2 becomes kept 3, reduced 20, kept 6.
///
/// oneDNN 2.6 has a vectorized reduction only when the reduced axes are the innermost ones
/// (`[kept, reduced]` or `[reduced]`); it runs every other pattern on a reference loop about a
/// thousand times slower, so those go to ``ReductionRowsKernel``.
struct ReductionGroups: Equatable {
    var extents: [Int] = []
    var reduced: [Bool] = []

    init(_ input: Shape, _ p: ReductionParameters) {
        for axis in input.dims.indices where input[axis] != 1 {
            if let last = reduced.last, last == p.reduced[axis] {
                extents[extents.count - 1] *= input[axis]
            } else {
                extents.append(input[axis])
                reduced.append(p.reduced[axis])
            }
        }
    }

    /// Whether only trailing axes are reduced, the pattern oneDNN vectorizes.
    var reducesTrailingAxesOnly: Bool { reduced == [true] || reduced == [false, true] }
}

/// The walk over an input's rows, in memory order, that float32 sum and mean and their gradient
/// share: each row (the last group's extent) goes with the offset of the output element it reduces
/// into (last group reduced) or of the output row it adds into (last group kept).
///
/// ```
/// groups  kept 3 | reduced 20 | kept 6     input row r (of 6) <-> output row (r / 20, :)
/// groups  kept 18 | reduced 4              input row r (of 4) <-> output element r
/// ```
///
/// Forward adds each row into its target; backward writes each row from its target, which
/// broadcasts the output gradient over the reduced axes.
struct ReductionWalk {
    let groups: ReductionGroups
    /// For each outer group, how far the output moves per step along it (0 for reduced groups).
    let outputSteps: [Int]
    /// Elements per row (1 when every axis has extent 1).
    let width: Int
    /// Whether a row reduces to one element (else it adds into an output row of `width`).
    let innerReduced: Bool

    init(_ input: Shape, _ p: ReductionParameters) {
        groups = ReductionGroups(input, p)
        var steps = [Int](repeating: 0, count: groups.extents.count)
        var step = 1
        for g in stride(from: groups.extents.count - 1, through: 0, by: -1) where !groups.reduced[g] {
            steps[g] = step
            step *= groups.extents[g]
        }
        outputSteps = steps
        width = groups.extents.last ?? 1
        innerReduced = groups.reduced.last ?? true
    }

    /// Calls `body(inputRowStart, outputOffset)` for every input row, in memory order.
    func forEachRow(elementCount: Int, _ body: (Int, Int) -> Void) {
        guard width > 0 else { return }
        let outer = Array(groups.extents.dropLast())
        var index = [Int](repeating: 0, count: outer.count)
        var target = 0
        for row in 0..<(elementCount / width) {
            body(row * width, target)
            var g = outer.count - 1
            while g >= 0 {
                index[g] += 1
                target += outputSteps[g]
                if index[g] < outer[g] { break }
                target -= outputSteps[g] * outer[g]
                index[g] = 0
                g -= 1
            }
        }
    }

    /// The gradient of the input: the output gradient element (or row) of each row's target divided
    /// by `divisor` (mean's count, 1 for sum), that is the output gradient broadcast over the
    /// reduced axes. Dividing (not multiplying by a reciprocal) rounds as the reference kernel does.
    func broadcast(_ outputGradient: NDArray, divisor: Float, into inputGradient: inout NDArray) {
        let count = inputGradient.elementCount, width = self.width, innerReduced = self.innerReduced
        outputGradient.withUnsafeBufferPointer(as: Float.self) { g in
            inputGradient.withUnsafeMutableBufferPointer(as: Float.self) { dx in
                forEachRow(elementCount: count) { start, target in
                    if innerReduced {
                        let v = g[target] / divisor
                        for j in 0..<width { dx[start + j] = v }
                    } else {
                        for j in 0..<width { dx[start + j] = g[target + j] / divisor }
                    }
                }
            }
        }
    }
}

/// float32 sum and mean as a ``ReductionWalk``, accumulating in Double.
final class ReductionRowsKernel: Kernel {
    let walk: ReductionWalk
    let scale: Double
    let divisor: Float
    var totals: [Double]

    init(_ sig: KernelSignature, parameters p: ReductionParameters, mean: Bool) {
        let input = sig.inputShapes[0]
        walk = ReductionWalk(input, p)
        scale = mean ? 1 / Double(p.reductionSize(input)) : 1
        divisor = mean ? Float(p.reductionSize(input)) : 1
        totals = [Double](repeating: 0, count: sig.outputShapes[0].elementCount)
    }

    func forward(_ inputs: [NDArray], _ outputs: inout [NDArray], isTrain: Bool) throws {
        for i in totals.indices { totals[i] = 0 }
        let width = walk.width, innerReduced = walk.innerReduced
        inputs[0].withUnsafeBufferPointer(as: Float.self) { src in
            totals.withUnsafeMutableBufferPointer { acc in
                walk.forEachRow(elementCount: src.count) { start, target in
                    if innerReduced {
                        var s = 0.0
                        for j in 0..<width { s += Double(src[start + j]) }
                        acc[target] += s
                    } else {
                        for j in 0..<width { acc[target + j] += Double(src[start + j]) }
                    }
                }
            }
        }
        let scale = self.scale
        totals.withUnsafeBufferPointer { acc in
            outputs[0].withUnsafeMutableBufferPointer(as: Float.self) { out in
                for i in 0..<out.count { out[i] = Float(acc[i] * scale) }
            }
        }
    }

    func backward(_ inputs: [NDArray], _ outputs: [NDArray], _ outputGradients: [NDArray],
                  _ inputGradients: inout [NDArray], needed: [Bool]) throws {
        guard needed[0] else { return }
        walk.broadcast(outputGradients[0], divisor: divisor, into: &inputGradients[0])
    }
}
