import KilnCore
import KilnGraph

// Reference kernels of the neural-network ops: the loops of `ReferenceNN` bound to a node's
// geometry, which is read once at bind.

extension ReferenceKernels {
    static var neuralNetwork: [String: KernelFactory] {
        [
            "Convolution": convolutionKernel,
            "Deconvolution": deconvolutionKernel,
            "FullyConnected": fullyConnectedKernel,
            "BatchNorm": batchNormKernel,
            "Pooling": poolingKernel,
        ]
    }

    static let convolutionKernel: KernelFactory = { sig in
        let g = try WindowGeometry.convolution(sig)
        let hasBias = sig.inputShapes.count > 2
        return ClosureKernel { inputs, outputs, _ in
            inputs[0].withUnsafeBufferPointer(as: Float.self) { data in
                inputs[1].withUnsafeBufferPointer(as: Float.self) { weight in
                    withOptionalFloats(hasBias ? inputs[2] : nil) { bias in
                        outputs[0].withUnsafeMutableBufferPointer(as: Float.self) { out in
                            ReferenceNN.convolution(g, data: data, weight: weight, bias: bias, out: out)
                        }
                    }
                }
            }
        }
    }

    static let deconvolutionKernel: KernelFactory = { sig in
        let g = try WindowGeometry.deconvolution(sig)
        let hasBias = sig.inputShapes.count > 2
        return ClosureKernel { inputs, outputs, _ in
            inputs[0].withUnsafeBufferPointer(as: Float.self) { data in
                inputs[1].withUnsafeBufferPointer(as: Float.self) { weight in
                    withOptionalFloats(hasBias ? inputs[2] : nil) { bias in
                        outputs[0].withUnsafeMutableBufferPointer(as: Float.self) { out in
                            ReferenceNN.deconvolution(g, data: data, weight: weight, bias: bias, out: out)
                        }
                    }
                }
            }
        }
    }

    static let fullyConnectedKernel: KernelFactory = { sig in
        try sig.requireFloat32()
        let p = try FullyConnectedParameters(sig.attributes)
        let (rows, k) = p.matrixShape(data: sig.inputShapes[0])
        let hidden = p.numHidden
        return ClosureKernel { inputs, outputs, _ in
            inputs[0].withUnsafeBufferPointer(as: Float.self) { data in
                inputs[1].withUnsafeBufferPointer(as: Float.self) { weight in
                    withOptionalFloats(p.noBias ? nil : inputs[2]) { bias in
                        outputs[0].withUnsafeMutableBufferPointer(as: Float.self) { out in
                            ReferenceNN.fullyConnected(rows: rows, inputs: k, hidden: hidden, data: data, weight: weight, bias: bias, out: out)
                        }
                    }
                }
            }
        }
    }

    /// BatchNorm in inference (moving statistics) or training (batch statistics, moving statistics
    /// left as they are). Outputs 1 and 2 are the mean and the inverse standard deviation used,
    /// as MXNet's `output_mean_var` documents.
    static let batchNormKernel: KernelFactory = { sig in
        try sig.requireFloat32()
        let p = try BatchNormParameters(sig.attributes)
        guard let (outer, channels, inner) = p.split(sig.inputShapes[0]) else {
            throw sig.unsupported("axis \(p.axis) is out of range for data of shape \(sig.inputShapes[0])")
        }
        return ClosureKernel { inputs, outputs, isTrain in
            let gamma = p.fixGamma ? [Double](repeating: 1, count: channels) : inputs[1].doubles()
            let beta = inputs[2].doubles()
            var mean = inputs[3].doubles(), variance = inputs[4].doubles()
            if isTrain && !p.useGlobalStats {
                (mean, variance) = inputs[0].withUnsafeBufferPointer(as: Float.self) {
                    ReferenceNN.batchStatistics(outer: outer, channels: channels, inner: inner, data: $0)
                }
            }
            inputs[0].withUnsafeBufferPointer(as: Float.self) { data in
                outputs[0].withUnsafeMutableBufferPointer(as: Float.self) { out in
                    ReferenceNN.normalize(outer: outer, channels: channels, inner: inner, data: data, mean: mean,
                                          variance: variance, gamma: gamma, beta: beta, eps: p.eps, out: out)
                }
            }
            if outputs.count == 3 {
                outputs[1] = NDArray(shape: [channels], values: mean.map { Float($0) })
                outputs[2] = NDArray(shape: [channels], values: variance.map { Float(1 / ($0 + p.eps).squareRoot()) })
            }
        }
    }

    static let poolingKernel: KernelFactory = { sig in
        let plan = try PoolingPlan.make(sig)
        return ClosureKernel { inputs, outputs, _ in
            inputs[0].withUnsafeBufferPointer(as: Float.self) { data in
                outputs[0].withUnsafeMutableBufferPointer(as: Float.self) { out in
                    ReferenceNN.pooling(plan, data: data, out: out)
                }
            }
        }
    }
}

/// Calls `body` with an array's float32 elements, or with nil when there is no array (an absent bias).
func withOptionalFloats<R>(_ array: NDArray?, _ body: (UnsafeBufferPointer<Float>?) throws -> R) rethrows -> R {
    guard let array else { return try body(nil) }
    return try array.withUnsafeBufferPointer(as: Float.self) { try body($0) }
}
