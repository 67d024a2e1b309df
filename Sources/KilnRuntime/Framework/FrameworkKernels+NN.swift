extension FrameworkKernels {
    static var neuralNetwork: [String: KernelFactory] { [:] }
}
