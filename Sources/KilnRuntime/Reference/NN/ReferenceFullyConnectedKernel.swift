import KilnCore
import KilnGraph

// FullyConnected on the reference path: y = x · Wᵀ + b on the data viewed as a (rows, inputs)
// matrix, by the loops of `ReferenceNN` in Double; the oracle for the oneDNN inner product.

extension ReferenceKernels {
    static let fullyConnectedKernel: KernelFactory = { sig in
        try sig.requireFloat32()
        let p = try FullyConnectedParameters(sig.attributes)
        let (rows, k) = p.matrixShape(data: sig.inputShapes[0])
        let hidden = p.numHidden
        return ClosureGradientKernel(forward: { inputs, outputs, _ in
            inputs[0].withUnsafeBufferPointer(as: Float.self) { data in
                inputs[1].withUnsafeBufferPointer(as: Float.self) { weight in
                    withOptionalFloats(p.noBias ? nil : inputs[2]) { bias in
                        outputs[0].withUnsafeMutableBufferPointer(as: Float.self) { out in
                            ReferenceNN.fullyConnected(rows: rows, inputs: k, hidden: hidden, data: data, weight: weight, bias: bias, out: out)
                        }
                    }
                }
            }
        }, backward: { inputs, _, outputGradients, inputGradients, needed in
            ReferenceNN.withWantedGradients(&inputGradients, needed) { d in
                inputs[0].withUnsafeBufferPointer(as: Float.self) { data in
                    inputs[1].withUnsafeBufferPointer(as: Float.self) { weight in
                        outputGradients[0].withUnsafeBufferPointer(as: Float.self) { dy in
                            ReferenceNN.fullyConnectedBackward(rows: rows, inputs: k, hidden: hidden, data: data, weight: weight, outGrad: dy,
                                                               dataGrad: d[0], weightGrad: d[1], biasGrad: p.noBias ? nil : d[2])
                        }
                    }
                }
            }
        })
    }
}
