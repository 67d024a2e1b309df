/// The reference kernels: naive Swift, the oracle of the tests, one dictionary per op family.
public enum ReferenceKernels {
    public static let table = KernelTable([neuralNetwork, elementwise, tensor])
}
