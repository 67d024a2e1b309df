import CDNNL
import KilnCore
import KilnGraph

/// Small oneDNN helpers of the elementwise family's framework kernels.
///
/// Primitives and their memory objects are made once at bind. Memory objects are created over a
/// placeholder buffer and pointed at the real arrays with `setPointer` just before each execution, so a
/// forward pass allocates nothing.
enum ElementwiseDNNL {
    /// A 64-byte buffer that memory objects point at between runs; oneDNN never reads it.
    nonisolated(unsafe) static let placeholder: UnsafeMutableRawPointer = {
        let p = UnsafeMutableRawPointer.allocate(byteCount: 64, alignment: 64)
        p.initializeMemory(as: UInt8.self, repeating: 0, count: 64)
        return p
    }()

    /// oneDNN's limit on the number of axes.
    static let maxRank = Int(kiln_dnnl_max_ndims())

    /// A plain (C-order) float32 descriptor for any rank oneDNN takes; a 0-d shape becomes (1,).
    static func plainDesc(_ shape: Shape, node: String) throws -> dnnl_memory_desc_t {
        let s = shape.rank == 0 ? Shape([1]) : shape
        return try DNNL.memoryDesc(s.dims, strides: s.strides, .float32, node: node)
    }

    /// A memory object for `desc`, pointing at the placeholder until it is given an array's buffer.
    static func memory(_ desc: dnnl_memory_desc_t, node: String) throws -> DNNLMemory {
        try DNNLMemory(desc, pointer: placeholder, node: node)
    }

    /// Whether the data input and every output are float32 and the shapes suit oneDNN; otherwise the
    /// framework uses the reference kernel.
    static func suits(_ sig: KernelSignature, inputs: [Int] = [0]) -> Bool {
        for i in inputs where i < sig.inputTypes.count && sig.inputTypes[i] != .float32 { return false }
        guard sig.outputTypes.allSatisfy({ $0 == .float32 }) else { return false }
        let shapes = inputs.compactMap { $0 < sig.inputShapes.count ? sig.inputShapes[$0] : nil } + sig.outputShapes
        return shapes.allSatisfy { $0.rank <= maxRank && $0.elementCount > 0 }
    }

    /// The reference kernel for a signature: the framework's fallback for dtypes and cases oneDNN lacks.
    static func reference(_ sig: KernelSignature) throws -> any Kernel {
        guard let factory = ReferenceKernels.table.factory(for: sig.node.op) else {
            throw RuntimeError.noKernel(op: sig.node.op, node: sig.node.name, backend: "reference")
        }
        return try factory(sig)
    }

    /// An eltwise forward-inference primitive over `desc`.
    static func eltwise(_ step: EltwiseStep, desc: dnnl_memory_desc_t, node: String) throws -> DNNLPrimitive {
        var md = desc
        var d = dnnl_eltwise_desc_t()
        try DNNL.check(dnnl_eltwise_forward_desc_init(&d, dnnl_forward_inference, step.algorithm, &md, step.alpha, step.beta),
                       "dnnl_eltwise_forward_desc_init", node: node)
        return try withUnsafePointer(to: &d) { try DNNLPrimitive(opDesc: $0, node: node, what: "eltwise") }
    }
}

extension NDArray {
    /// The element buffer as oneDNN's source pointer; oneDNN only reads it.
    var sourcePointer: UnsafeMutableRawPointer {
        withUnsafeBytes { UnsafeMutableRawPointer(mutating: $0.baseAddress ?? UnsafeRawPointer(ElementwiseDNNL.placeholder)) }
    }

    /// The element buffer for writing, made unique first (copy-on-write).
    var destinationPointer: UnsafeMutableRawPointer {
        mutating get {
            withUnsafeMutableBytes { $0.baseAddress ?? ElementwiseDNNL.placeholder }
        }
    }
}

/// A kernel that runs one kernel at inference and another in training (`rrelu` draws random slopes
/// only in training, which oneDNN cannot).
final class TrainingSwitchKernel: Kernel {
    let inference: any Kernel, training: any Kernel
    init(inference: any Kernel, training: any Kernel) {
        self.inference = inference
        self.training = training
    }
    func forward(_ inputs: [NDArray], _ outputs: inout [NDArray], isTrain: Bool) throws {
        try (isTrain ? training : inference).forward(inputs, &outputs, isTrain: isTrain)
    }
}
