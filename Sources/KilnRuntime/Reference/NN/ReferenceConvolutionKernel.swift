import KilnCore
import KilnGraph

// Convolution and Deconvolution on the reference path: the direct loops of `ReferenceNN`
// (y[n, o, y, x] = b[o] + Σ x · W over the window, and its transpose) bound to the node's
// ``WindowGeometry``, read once at bind. Both ops share one kernel shape, ``windowedKernel``, so the
// buffer plumbing around their loops is written once.

extension ReferenceKernels {
    static let convolutionKernel: KernelFactory = { sig in
        try windowedKernel(try WindowGeometry.convolution(sig), hasBias: sig.inputShapes.count > 2,
                           forward: ReferenceNN.convolution, backward: ReferenceNN.convolutionBackward)
    }

    static let deconvolutionKernel: KernelFactory = { sig in
        try windowedKernel(try WindowGeometry.deconvolution(sig), hasBias: sig.inputShapes.count > 2,
                           forward: ReferenceNN.deconvolution, backward: ReferenceNN.deconvolutionBackward)
    }

    typealias WindowedForward = (WindowGeometry, _ data: UnsafeBufferPointer<Float>, _ weight: UnsafeBufferPointer<Float>,
                                 _ bias: UnsafeBufferPointer<Float>?, _ out: UnsafeMutableBufferPointer<Float>) -> Void
    typealias WindowedBackward = (WindowGeometry, _ data: UnsafeBufferPointer<Float>, _ weight: UnsafeBufferPointer<Float>,
                                  _ outGrad: UnsafeBufferPointer<Float>, _ dataGrad: UnsafeMutableBufferPointer<Float>?,
                                  _ weightGrad: UnsafeMutableBufferPointer<Float>?, _ biasGrad: UnsafeMutableBufferPointer<Float>?) -> Void

    /// The kernel of a convolution-like op (data, weight, optional bias): the same buffer plumbing
    /// around its forward and backward loops.
    static func windowedKernel(_ g: WindowGeometry, hasBias: Bool, forward: @escaping WindowedForward,
                               backward: @escaping WindowedBackward) throws -> any Kernel {
        ClosureGradientKernel(forward: { inputs, outputs, _ in
            inputs[0].withUnsafeBufferPointer(as: Float.self) { data in
                inputs[1].withUnsafeBufferPointer(as: Float.self) { weight in
                    withOptionalFloats(hasBias ? inputs[2] : nil) { bias in
                        outputs[0].withUnsafeMutableBufferPointer(as: Float.self) { out in
                            forward(g, data, weight, bias, out)
                        }
                    }
                }
            }
        }, backward: { inputs, _, outputGradients, inputGradients, needed in
            ReferenceNN.withWantedGradients(&inputGradients, needed) { d in
                inputs[0].withUnsafeBufferPointer(as: Float.self) { data in
                    inputs[1].withUnsafeBufferPointer(as: Float.self) { weight in
                        outputGradients[0].withUnsafeBufferPointer(as: Float.self) { dy in
                            backward(g, data, weight, dy, d[0], d[1], hasBias ? d[2] : nil)
                        }
                    }
                }
            }
        })
    }
}
