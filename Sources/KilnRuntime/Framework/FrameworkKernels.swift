/// The framework kernels: oneDNN primitives, one op at a time, one dictionary per op family.
public enum FrameworkKernels {
    public static let table = KernelTable([neuralNetwork, elementwise, tensor])
}
