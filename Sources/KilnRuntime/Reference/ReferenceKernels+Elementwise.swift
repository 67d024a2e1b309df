extension ReferenceKernels {
    static var elementwise: [String: KernelFactory] { [:] }
}
