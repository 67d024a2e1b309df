import KilnCore
import KilnGraph

// Framework kernels of the neural-network ops: oneDNN primitives created once at bind, reading the
// input arrays' buffers and writing the output array's buffer (plain C order, no copies).
//
// Weights are declared with format `any`, so oneDNN picks its fast blocked layout, and are reordered
// into it at the first run and whenever a new weight array arrives (forcing a plain weights layout
// would select oneDNN's reference convolution, about 1000x slower). Where oneDNN computes something
// other than MXNet (an include-pad average whose last window runs past the padded input in the
// `full` convention), the kernel runs the Swift loop instead.
//
// Backward passes (`DNNLNNBackward.swift`) are oneDNN primitives too, created at the first backward
// that needs them and kept: backward data and backward weights (with bias) of convolution,
// deconvolution and inner product, pooling backward (max reads the workspace its training forward
// recorded), and batch normalization backward.
//
// One kernel per file in `NN/`: ConvolutionKernel.swift (deconvolution too), FullyConnectedKernel.swift,
// PoolingKernel.swift and BatchNormKernel.swift; what they share is in DNNLNNSupport.swift.

extension FrameworkKernels {
    static var neuralNetwork: [String: KernelFactory] {
        [
            "Convolution": { try DNNLConvolutionKernel($0, transposed: false) },
            "Deconvolution": { try DNNLConvolutionKernel($0, transposed: true) },
            "FullyConnected": { try DNNLInnerProductKernel($0) },
            "BatchNorm": { try DNNLBatchNormKernel($0) },
            "Pooling": poolingKernel,
        ]
    }

    static let poolingKernel: KernelFactory = { sig in
        let plan = try PoolingPlan.make(sig)
        if DNNLPoolingKernel.computesLikeMXNet(plan) { return try DNNLPoolingKernel(plan, node: sig.node.name) }
        // The Swift loops, forward and backward, where oneDNN would not compute MXNet's result.
        return try ReferenceKernels.poolingKernel(sig)
    }
}
