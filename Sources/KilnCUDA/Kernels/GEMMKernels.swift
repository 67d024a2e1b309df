// FullyConnected on cuBLAS. Row-major Y[N, M] = X[N, K] · W[M, K]ᵀ is, read column-major,
// Yᵀ[M, N] = W[K, M]ᵀ · X[K, N], one sgemm with W transposed:
//
//   sgemm(T, N, m: M, n: N, k: K, A: W (lda K), B: X (ldb K), C: Y (ldc M))   then   Y += bias
import KilnCore
import KilnGraph
import KilnRuntime

enum GEMMKernels {
    static let entries: [String: GPUKernelEntry] = [
        "FullyConnected": GPUKernelEntry(check: FullyConnectedKernel.check, make: { try FullyConnectedKernel($0, $1) }),
    ]
}

final class FullyConnectedKernel: GPUKernel {
    let device: CUDADevice
    let rows, columns, hidden: Int
    let bias, y: TensorDescriptor?

    static func check(_ s: KernelSignature) -> String? {
        if let r = GPUKernels.float32Only(s) { return r }
        guard (try? FullyConnectedParameters(s.attributes)) != nil else { return "attributes that do not parse" }
        return nil
    }

    init(_ s: KernelSignature, _ device: CUDADevice) throws {
        if let r = Self.check(s) { throw CUDAError.unsupported(node: s.node.name, op: s.node.op, reason: r) }
        let p = try FullyConnectedParameters(s.attributes)
        self.device = device
        (rows, columns) = p.matrixShape(data: s.inputShapes[0])
        hidden = p.numHidden
        if p.noBias {
            bias = nil
            y = nil
        } else {
            bias = try TensorDescriptor(device.cudnn, dims: [1, hidden, 1, 1])
            y = try TensorDescriptor(device.cudnn, dims: [rows, hidden, 1, 1])
        }
    }

    func forward(_ inputs: [UnsafeMutableRawPointer], _ outputs: [UnsafeMutableRawPointer]) throws {
        var alpha: Float = 1, beta: Float = 0
        try device.cublas.check(device.cublas.sgemm(device.cublasHandle, CUBLASAPI.opT, CUBLASAPI.opN, Int32(hidden), Int32(rows), Int32(columns),
                                                    &alpha, inputs[1], Int32(columns), inputs[0], Int32(columns), &beta, outputs[0], Int32(hidden)),
                                "cublasSgemm")
        if let bias, let y {
            var one: Float = 1
            try device.cudnn.check(device.cudnn.addTensor(device.cudnnHandle, &one, bias.handle, inputs[2], &one, y.handle, outputs[0]), "cudnnAddTensor")
        }
    }
}
