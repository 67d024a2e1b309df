import KilnCore
import KilnGraph

// BatchNorm on the reference path: y = gamma · (x - mean) / sqrt(var + eps) + beta per channel, on
// an (outer, channels, inner) view of the data, in Double. A class rather than a closure, because it
// keeps the statistics of the last forward for the backward and the moving-statistics updates.

extension ReferenceKernels {
    static let batchNormKernel: KernelFactory = { sig in try ReferenceBatchNormKernel(sig) }
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
