import KilnCore
import KilnGraph

// Reference kernels of the neural-network ops: the loops of `ReferenceNN` (forward) and of
// `ReferenceNNGradients.swift` (backward) bound to a node's geometry, which is read once at bind.

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

    static let batchNormKernel: KernelFactory = { sig in try ReferenceBatchNormKernel(sig) }

    static let poolingKernel: KernelFactory = { sig in
        let plan = try PoolingPlan.make(sig)
        return ClosureGradientKernel(forward: { inputs, outputs, _ in
            inputs[0].withUnsafeBufferPointer(as: Float.self) { data in
                outputs[0].withUnsafeMutableBufferPointer(as: Float.self) { out in
                    ReferenceNN.pooling(plan, data: data, out: out)
                }
            }
        }, backward: { inputs, _, outputGradients, inputGradients, needed in
            ReferenceNN.withWantedGradients(&inputGradients, needed) { d in
                guard let dx = d[0] else { return }
                inputs[0].withUnsafeBufferPointer(as: Float.self) { data in
                    outputGradients[0].withUnsafeBufferPointer(as: Float.self) { dy in
                        ReferenceNN.poolingBackward(plan, data: data, outGrad: dy, dataGrad: dx)
                    }
                }
            }
        })
    }
}

/// BatchNorm in inference (moving statistics) or training (batch statistics). Outputs 1 and 2 are
/// the mean and the inverse standard deviation used, as MXNet's `output_mean_var` documents.
///
/// The moving statistics are updated as MXNet 1.9 updates them, in the backward pass that follows a
/// training forward (a training forward alone leaves them as they are):
/// `moving = moving · momentum + batch · (1 - momentum)`, with the batch's biased variance (divided
/// by the element count, the one that normalized).
final class ReferenceBatchNormKernel: Kernel {
    let parameters: BatchNormParameters
    let outer: Int, channels: Int, inner: Int
    /// The statistics the last forward normalized with, and whether they were the batch's.
    private var mean: [Double] = [], variance: [Double] = [], usedBatchStatistics = false
    private var updates: [(input: Int, value: NDArray)] = []

    init(_ sig: KernelSignature) throws {
        try sig.requireFloat32()
        parameters = try BatchNormParameters(sig.attributes)
        guard let (outer, channels, inner) = parameters.split(sig.inputShapes[0]) else {
            throw sig.unsupported("axis \(parameters.axis) is out of range for data of shape \(sig.inputShapes[0])")
        }
        (self.outer, self.channels, self.inner) = (outer, channels, inner)
    }

    func gamma(_ inputs: [NDArray]) -> [Double] {
        parameters.fixGamma ? [Double](repeating: 1, count: channels) : inputs[1].doubles()
    }

    func forward(_ inputs: [NDArray], _ outputs: inout [NDArray], isTrain: Bool) throws {
        let p = parameters
        updates = []
        usedBatchStatistics = isTrain && !p.useGlobalStats
        if usedBatchStatistics {
            (mean, variance) = inputs[0].withUnsafeBufferPointer(as: Float.self) {
                ReferenceNN.batchStatistics(outer: outer, channels: channels, inner: inner, data: $0)
            }
        } else {
            (mean, variance) = (inputs[3].doubles(), inputs[4].doubles())
        }
        let gamma = gamma(inputs), beta = inputs[2].doubles()
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

    /// Gradients of data, gamma (zero with `fix_gamma`, as in MXNet) and beta from the output's
    /// gradient; the gradients of the `mean` and `var` outputs are ignored, as MXNet ignores them.
    func backward(_ inputs: [NDArray], _ outputs: [NDArray], _ outputGradients: [NDArray],
                  _ inputGradients: inout [NDArray], needed: [Bool]) throws {
        let p = parameters
        let (dGamma, dBeta) = ReferenceNN.withWantedGradients(&inputGradients, needed.enumerated().map { $0 == 0 && $1 }) { d in
            inputs[0].withUnsafeBufferPointer(as: Float.self) { data in
                outputGradients[0].withUnsafeBufferPointer(as: Float.self) { dy in
                    ReferenceNN.batchNormBackward(outer: outer, channels: channels, inner: inner, data: data, outGrad: dy,
                                                  mean: mean, variance: variance, gamma: gamma(inputs), eps: p.eps,
                                                  batchStatistics: usedBatchStatistics, dataGrad: d[0])
                }
            }
        }
        if needed[1] && !p.fixGamma { inputGradients[1] = NDArray(shape: [channels], values: dGamma.map { Float($0) }) }
        if needed[2] { inputGradients[2] = NDArray(shape: [channels], values: dBeta.map { Float($0) }) }
        if usedBatchStatistics {
            let m = p.momentum
            let movingMean = zip(inputs[3].doubles(), mean).map { Float($0 * m + $1 * (1 - m)) }
            let movingVariance = zip(inputs[4].doubles(), variance).map { Float($0 * m + $1 * (1 - m)) }
            updates = [(3, NDArray(shape: [channels], values: movingMean)), (4, NDArray(shape: [channels], values: movingVariance))]
        }
    }

    func auxiliaryUpdates() -> [(input: Int, value: NDArray)] { updates }
}

extension ReferenceNN {
    /// Calls `body` with writable float32 buffers of the input gradients, nil where `needed` is false
    /// (those arrays are left as they are). The arrays are taken out of `gradients` for the call so
    /// that writing them does not copy them.
    static func withWantedGradients<R>(_ gradients: inout [NDArray], _ needed: [Bool],
                                       _ body: ([UnsafeMutableBufferPointer<Float>?]) throws -> R) rethrows -> R {
        var taken: [NDArray?] = gradients.indices.map { $0 < needed.count && needed[$0] ? gradients[$0] : nil }
        for i in gradients.indices where taken[i] != nil { gradients[i] = NDArray(zeros: []) }
        defer { for (i, t) in taken.enumerated() { if let t { gradients[i] = t } } }
        return try withMutableFloats(&taken, from: 0, [], body)
    }

    private static func withMutableFloats<R>(_ arrays: inout [NDArray?], from i: Int, _ collected: [UnsafeMutableBufferPointer<Float>?],
                                             _ body: ([UnsafeMutableBufferPointer<Float>?]) throws -> R) rethrows -> R {
        guard i < arrays.count else { return try body(collected) }
        guard var a = arrays[i] else { return try withMutableFloats(&arrays, from: i + 1, collected + [nil], body) }
        arrays[i] = nil
        defer { arrays[i] = a }
        return try a.withUnsafeMutableBufferPointer(as: Float.self) { try withMutableFloats(&arrays, from: i + 1, collected + [$0], body) }
    }
}

/// Calls `body` with an array's float32 elements, or with nil when there is no array (an absent bias).
func withOptionalFloats<R>(_ array: NDArray?, _ body: (UnsafeBufferPointer<Float>?) throws -> R) rethrows -> R {
    guard let array else { return try body(nil) }
    return try array.withUnsafeBufferPointer(as: Float.self) { try body($0) }
}
