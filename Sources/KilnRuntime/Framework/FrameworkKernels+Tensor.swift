extension FrameworkKernels {
    static var tensor: [String: KernelFactory] { [:] }
}
