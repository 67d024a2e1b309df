import KilnCore
import KilnGraph

/// `Dropout`. Outside training (and unless `mode=always`) the output is the input itself, shared
/// without a copy. When dropping, each element of a mask is kept with probability 1 - p and then
/// scaled by 1 / (1 - p), so the expected output equals the input:
/// ```
/// x = [4, 4, 4, 4], p = 0.5, draws keep [yes, no, no, yes]  ->  y = [8, 0, 0, 8]
/// ```
/// With `axes`, the mask has extent 1 along those axes and one decision covers the whole line.
/// The random stream is seeded from the node's name, so runs are reproducible; every forward pass
/// draws new numbers. The hidden second output receives the scaled mask.
///
/// Backward multiplies the gradient by the mask the last forward drew, kept in the kernel:
/// ```
/// dy = [1, 1, 1, 1], mask = [2, 0, 0, 2]  ->  dx = [2, 0, 0, 2]
/// ```
/// After a forward that did not drop (inference, or p = 0) the gradient passes through unchanged.
final class DropoutKernel: Kernel {
    let parameters: DropoutParameters
    let p: Float
    let maskShape: Shape
    let maskMap: BroadcastMap
    var rng: SplitMix64
    /// The scaled mask of the last forward (one entry per element of `maskShape`), allocated once.
    var draws: [Float]
    /// Whether the last forward dropped (and so `draws` holds its mask).
    var dropped = false

    init(_ sig: KernelSignature) throws {
        let shape = sig.inputShapes[0]
        parameters = try DropoutParameters(sig.attributes)
        p = Float(parameters.p)
        var dims = shape.dims
        for axis in parameters.axes {
            guard let k = shape.normalizedAxis(axis) else { throw sig.unsupported("axes holds \(axis), not an axis of shape \(shape)") }
            dims[k] = 1
        }
        maskShape = Shape(dims)
        maskMap = BroadcastMap(operand: maskShape, output: shape)
        rng = SplitMix64(seed: randomSeed(forNode: sig.node.name))
        draws = [Float](repeating: 0, count: maskShape.elementCount)
    }

    func forward(_ inputs: [NDArray], _ outputs: inout [NDArray], isTrain: Bool) throws {
        dropped = (isTrain || !parameters.isIdentityAtInference) && p > 0
        guard dropped else {
            outputs[0] = inputs[0]
            return
        }
        // p = 1 drops everything; the scale would be infinite.
        let scale: Float = p >= 1 ? 0 : 1 / (1 - p)
        for i in draws.indices { draws[i] = rng.nextFloat() >= p ? scale : 0 }
        let x = inputs[0]
        let n = x.elementCount
        let hasMask = outputs.count > 1
        if x.dtype == .float32 && outputs[0].dtype == .float32 {
            let sameShape = maskShape == x.shape
            x.withUnsafeBufferPointer(as: Float.self) { src in
                outputs[0].withUnsafeMutableBufferPointer(as: Float.self) { dst in
                    for i in 0..<n { dst[i] = src[i] * draws[sameShape ? i : maskMap.offset(ofOutput: i)] }
                }
            }
            if hasMask && outputs[1].dtype == .float32 {
                outputs[1].withUnsafeMutableBufferPointer(as: Float.self) { m in
                    for i in 0..<n { m[i] = draws[sameShape ? i : maskMap.offset(ofOutput: i)] }
                }
            }
            return
        }
        for i in 0..<n {
            let keep = Double(draws[maskMap.offset(ofOutput: i)])
            outputs[0].setElement(i, x.element(i) * keep)
            if hasMask { outputs[1].setElement(i, keep) }
        }
    }

    func backward(_ inputs: [NDArray], _ outputs: [NDArray], _ outputGradients: [NDArray],
                  _ inputGradients: inout [NDArray], needed: [Bool]) throws {
        guard needed[0] else { return }
        let dy = outputGradients[0]
        guard dropped else {
            inputGradients[0] = dy.converted(to: inputs[0].dtype)
            return
        }
        let n = dy.elementCount
        if dy.dtype == .float32 && inputGradients[0].dtype == .float32 {
            let sameShape = maskShape == dy.shape
            let map = maskMap
            draws.withUnsafeBufferPointer { mask in
                dy.withUnsafeBufferPointer(as: Float.self) { g in
                    inputGradients[0].withUnsafeMutableBufferPointer(as: Float.self) { dx in
                        if sameShape {
                            for i in 0..<n { dx[i] = g[i] * mask[i] }
                        } else {
                            for i in 0..<n { dx[i] = g[i] * mask[map.offset(ofOutput: i)] }
                        }
                    }
                }
            }
            return
        }
        for i in 0..<n { inputGradients[0].setElement(i, dy.element(i) * Double(draws[maskMap.offset(ofOutput: i)])) }
    }
}
