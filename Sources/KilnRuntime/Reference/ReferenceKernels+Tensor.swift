extension ReferenceKernels {
    static var tensor: [String: KernelFactory] { [:] }
}
