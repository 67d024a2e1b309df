import KilnCore
import KilnGraph

// Pooling on the reference path: max, average and sum over each window by the loops of
// `ReferenceNN`, with MXNet's `valid` and `full` conventions and its padding rules resolved once
// into a `PoolingPlan` (`full` lets the last window run past the padded input). The framework runs
// this kernel too where oneDNN would not compute MXNet's result.

extension ReferenceKernels {
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
