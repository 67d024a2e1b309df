// The conformance suite's backends, wired here where every backend is visible: the tests run the CPU
// list, `kiln gpu-check` the GPU list, both through KilnConformance's one rule.

extension ConformanceBackend {
    /// The reference kernels (the oracle), the framework's kernels and the cpu engine, on the CPU.
    public static var cpu: [ConformanceBackend] {
        let reference = ReferenceKernels.table.factories.keys.sorted()
        return [
            ConformanceBackend(name: "reference", backend: OpByOpBackend.reference, tableOps: reference, trains: true),
            ConformanceBackend(name: "framework", backend: OpByOpBackend.framework,
                               tableOps: Set(reference).union(FrameworkKernels.table.factories.keys).sorted(), trains: true),
            ConformanceBackend(name: "cpu engine", backend: CPUEngine(), tableOps: CPUCapabilities.table.opNames),
        ]
    }

    /// The GPU's framework mode and the cuda engine in fp32 (the precision compared with MXNet's
    /// float32 outputs), on one GPU.
    public static func gpu(device: Int) -> [ConformanceBackend] {
        [
            ConformanceBackend(name: "gpu framework", backend: CUDABackend(device: device), context: .gpu(device),
                               tableOps: CUDABackend.kernelOpNames),
            ConformanceBackend(name: "cuda engine fp32", backend: CUDAEngine(precision: .fp32, device: device), context: .gpu(device),
                               tableOps: CUDAEngine.table.opNames),
        ]
    }
}
