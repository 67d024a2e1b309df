import KilnCore

/// A reference kernel for an op that only moves elements, described once by where each output
/// element comes from. Forward gathers along that map; backward runs the same map the other way,
/// adding each output gradient into the input element it was read from:
///
/// ```
/// slice_axis begin 1 of (a b c d):   forward   out = (b c)         out[i] <- in[i + 1]
///                                    backward  din = (0 g0 g1 0)   din[i + 1] += dout[i]
/// ```
///
/// Because forward and backward share one map, the backward cannot disagree with the forward it
/// differentiates; the finite-difference tests check the map's adjoint independently.
final class ElementMapKernel: Kernel {
    /// Where element `coordinates` of output `output` comes from, or nil for the fill value.
    typealias SourceMap = (_ output: Int, _ coordinates: [Int]) -> ElementGather.Source?

    let source: SourceMap
    let fill: [UInt8]

    init(fill: [UInt8] = [], source: @escaping SourceMap) {
        self.source = source
        self.fill = fill
    }

    func forward(_ inputs: [NDArray], _ outputs: inout [NDArray], isTrain: Bool) throws {
        for k in outputs.indices {
            ElementGather.run(inputs, into: &outputs[k], fill: fill) { source(k, $0) }
        }
    }

    func backward(_ inputs: [NDArray], _ outputs: [NDArray], _ outputGradients: [NDArray],
                  _ inputGradients: inout [NDArray], needed: [Bool]) throws {
        ElementGather.scatterAdd(outputGradients, into: &inputGradients, needed: needed, source: source)
    }
}
