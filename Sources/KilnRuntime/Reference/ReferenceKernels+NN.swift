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
}
