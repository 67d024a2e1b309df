extension FrameworkKernels {
    static var elementwise: [String: KernelFactory] { [:] }
}
