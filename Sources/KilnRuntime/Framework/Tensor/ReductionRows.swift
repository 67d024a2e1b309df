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

/// float32 sum and mean as a walk over the input's rows in memory order, accumulating in Double.
///
/// ```
/// groups  kept 3 | reduced 20 | kept 6     each input row of 6 adds into output row (i, :)
/// groups  kept 18 | reduced 4              each input row of 4 sums into output element i
/// ```
final class ReductionRowsKernel: Kernel {
    let groups: ReductionGroups
    /// For each outer group, how far the output moves per step along it (0 for reduced groups).
    let outputSteps: [Int]
    let scale: Double
    var totals: [Double]

    init(_ sig: KernelSignature, parameters p: ReductionParameters, mean: Bool) {
        let input = sig.inputShapes[0]
        groups = ReductionGroups(input, p)
        var steps = [Int](repeating: 0, count: groups.extents.count)
        var step = 1
        for g in stride(from: groups.extents.count - 1, through: 0, by: -1) where !groups.reduced[g] {
            steps[g] = step
            step *= groups.extents[g]
        }
        outputSteps = steps
        scale = mean ? 1 / Double(p.reductionSize(input)) : 1
        totals = [Double](repeating: 0, count: sig.outputShapes[0].elementCount)
    }

    func forward(_ inputs: [NDArray], _ outputs: inout [NDArray], isTrain: Bool) throws {
        guard let width = groups.extents.last, let innerReduced = groups.reduced.last, width > 0 else { return }
        let outer = Array(groups.extents.dropLast())
        let rows = inputs[0].elementCount / width
        for i in totals.indices { totals[i] = 0 }
        inputs[0].withUnsafeBufferPointer(as: Float.self) { src in
            totals.withUnsafeMutableBufferPointer { acc in
                var index = [Int](repeating: 0, count: outer.count)
                var target = 0
                for row in 0..<rows {
                    let start = row * width
                    if innerReduced {
                        var s = 0.0
                        for j in 0..<width { s += Double(src[start + j]) }
                        acc[target] += s
                    } else {
                        for j in 0..<width { acc[target + j] += Double(src[start + j]) }
                    }
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
        }
        let scale = self.scale
        totals.withUnsafeBufferPointer { acc in
            outputs[0].withUnsafeMutableBufferPointer(as: Float.self) { out in
                for i in 0..<out.count { out[i] = Float(acc[i] * scale) }
            }
        }
    }
}
