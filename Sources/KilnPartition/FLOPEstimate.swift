import KilnCore
import KilnGraph

/// A rough FLOP count per op node, from inferred shapes: the one place the partition report's FLOP
/// numbers come from. It ranks work, it does not time it.
///
/// ```
/// Convolution  out (1,16,32,32), weight (16,3,3,3)   2 * 16384 * (3*3*3)  = 884,736
/// Activation   out (1,16,32,32)                      16384 (one per element)
/// Flatten      (moves data)                           0
/// ```
///
/// - Ops with a matrix product (Convolution, FullyConnected, Deconvolution): 2 FLOPs per
///   multiply-add. Convolution and FullyConnected do `weight elements / weight.dims[0]` multiply-adds
///   per output element; Deconvolution as many per input element.
/// - Otherwise by fusion kind: elementwise, broadcast, reduction, opaque and the other complex ops
///   (pooling) count one FLOP per element of their largest input or output; injective ops count none.
public enum FLOPEstimate {
    /// Estimated FLOPs of node `i` of `graph`; 0 for variables and for nodes whose op or shapes are unknown.
    public static func flops(of i: Int, in graph: Graph, shapes: InferredShapes) -> Double {
        let n = graph.nodes[i]
        guard !n.isVariable, let def = OpRegistry.shared.lookup(n.op), i < shapes.nodeOutputs.count else { return 0 }
        let ins = n.inputs.map { shapes.nodeOutputs[$0.node][$0.index] }
        let outs = shapes.nodeOutputs[i]
        if let perElement = matrixProductSide[def.name], ins.count >= 2, let w = ins[1].dims.first, w > 0 {
            let macsPerElement = Double(ins[1].elementCount / w)
            let elements = perElement == .output ? (outs.first?.elementCount ?? 0) : ins[0].elementCount
            return 2 * Double(elements) * macsPerElement
        }
        let largest = Double((ins + outs.prefix(1)).map(\.elementCount).max() ?? 0)
        switch def.fusion {
        case .injective: return 0
        case .elementwise, .broadcast, .reduction, .complex, .opaque: return largest
        }
    }

    /// Total estimated FLOPs of some nodes.
    public static func flops(of nodes: some Sequence<Int>, in graph: Graph, shapes: InferredShapes) -> Double {
        nodes.reduce(0) { $0 + flops(of: $1, in: graph, shapes: shapes) }
    }

    enum Side { case input, output }

    /// The ops that multiply by a weight matrix (input 1), and which side their multiply-adds count on.
    static let matrixProductSide: [String: Side] = [
        "Convolution": .output, "FullyConnected": .output, "Deconvolution": .input,
    ]
}
