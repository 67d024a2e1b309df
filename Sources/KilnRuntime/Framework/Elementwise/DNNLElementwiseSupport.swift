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

    /// Argument slots of backward primitives. Their macros are plain integer literals, which Swift
    /// imports directly (the aliases without `_0` do not import).
    static let diffSource = Int32(DNNL_ARG_DIFF_SRC_0)
    static let diffDestination = Int32(DNNL_ARG_DIFF_DST_0)

    /// A backward primitive from its op descriptor and the op descriptor of the matching
    /// forward-training primitive, which oneDNN wants as a hint.
    static func backwardPrimitive(_ backward: UnsafeRawPointer, hint forward: UnsafeRawPointer, node: String, what: String) throws -> DNNLPrimitive {
        let engine = try DNNL.requireEngine(node: node)
        var hint: dnnl_primitive_desc_t?
        try DNNL.check(dnnl_primitive_desc_create(&hint, forward, nil, engine, nil), "dnnl_primitive_desc_create(\(what) forward hint)", node: node)
        defer { if let hint { dnnl_primitive_desc_destroy(hint) } }
        var pd: dnnl_primitive_desc_t?
        try DNNL.check(dnnl_primitive_desc_create(&pd, backward, nil, engine, hint), "dnnl_primitive_desc_create(\(what))", node: node)
        guard let pd else { throw RuntimeError.dnnl(call: "dnnl_primitive_desc_create(\(what))", status: 5, node: node) }
        return try DNNLPrimitive(primitiveDesc: pd, node: node, what: what)
    }

    /// An eltwise backward primitive over `desc` that reads the forward's source (x).
    static func eltwiseBackward(_ step: EltwiseStep, desc: dnnl_memory_desc_t, node: String) throws -> DNNLPrimitive {
        var md = desc, diff = desc
        var forward = dnnl_eltwise_desc_t(), backward = dnnl_eltwise_desc_t()
        try DNNL.check(dnnl_eltwise_forward_desc_init(&forward, dnnl_forward_training, step.algorithm, &md, step.alpha, step.beta),
                       "dnnl_eltwise_forward_desc_init", node: node)
        try DNNL.check(dnnl_eltwise_backward_desc_init(&backward, step.algorithm, &diff, &md, step.alpha, step.beta),
                       "dnnl_eltwise_backward_desc_init", node: node)
        return try withUnsafePointer(to: &backward) { b in
            try withUnsafePointer(to: &forward) { f in try backwardPrimitive(b, hint: f, node: node, what: "eltwise backward") }
        }
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
/// only in training, which oneDNN cannot). Backward goes to the kernel that ran the last forward.
final class TrainingSwitchKernel: Kernel {
    let inference: any Kernel, training: any Kernel
    var lastWasTraining = false
    init(inference: any Kernel, training: any Kernel) {
        self.inference = inference
        self.training = training
    }
    func forward(_ inputs: [NDArray], _ outputs: inout [NDArray], isTrain: Bool) throws {
        lastWasTraining = isTrain
        try (isTrain ? training : inference).forward(inputs, &outputs, isTrain: isTrain)
    }
    func backward(_ inputs: [NDArray], _ outputs: [NDArray], _ outputGradients: [NDArray],
                  _ inputGradients: inout [NDArray], needed: [Bool]) throws {
        try (lastWasTraining ? training : inference).backward(inputs, outputs, outputGradients, &inputGradients, needed: needed)
    }
}
