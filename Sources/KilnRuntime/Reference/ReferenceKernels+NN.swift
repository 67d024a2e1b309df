extension ReferenceKernels {
    static var neuralNetwork: [String: KernelFactory] { [:] }
}
