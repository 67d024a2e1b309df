// The GPU's kernel table: for each op, one entry that both answers "can the GPU run this node" and
// builds the kernel, so that what the capability check accepts can always be built.
//
//   support(query)  -> entry.check(signature) == nil ?  supported : unsupported(reason)
//   compile         -> entry.check(signature) ; entry.make(signature, device)
import KilnCore
import KilnGraph
import KilnRuntime

/// A node's computation on the GPU, created once at bind for fixed shapes. `forward` queues work on
/// the device's stream; nothing waits for it.
protocol GPUKernel: AnyObject {
    func forward(_ inputs: [UnsafeMutableRawPointer], _ outputs: [UnsafeMutableRawPointer]) throws
}

/// One op's GPU implementation: a check (nil when the node fits, else the reason) and a builder.
struct GPUKernelEntry: Sendable {
    let check: @Sendable (KernelSignature) -> String?
    let make: @Sendable (KernelSignature, CUDADevice) throws -> any GPUKernel
}

/// The GPU kernels of framework mode, by canonical MXNet op name.
enum GPUKernels {
    static let table: [String: GPUKernelEntry] = {
        var t: [String: GPUKernelEntry] = [:]
        for family in [CUDNNKernels.entries, GEMMKernels.entries, ElementwiseKernels.entries] {
            t.merge(family) { _, new in new }
        }
        return t
    }()

    static func entry(for op: String) -> GPUKernelEntry? {
        if let e = table[op] { return e }
        if let canonical = OpRegistry.shared.lookup(op)?.name { return table[canonical] }
        return nil
    }

    /// nil when every input and output is float32, else the reason.
    static func float32Only(_ s: KernelSignature) -> String? { float32Only(s, visibleOutputs: s.outputTypes.count) }

    /// The same, looking only at the first `visibleOutputs` outputs (max pooling's hidden int32
    /// workspace output is never written on the GPU and never read).
    static func float32Only(_ s: KernelSignature, visibleOutputs: Int) -> String? {
        if let t = (s.inputTypes + s.outputTypes.prefix(visibleOutputs)).first(where: { $0 != .float32 }) {
            return "dtype \(t); GPU framework kernels take float32"
        }
        return nil
    }
}

extension CUDABackend {
    /// The ops the GPU's kernel table has an entry for (canonical MXNet names), sorted; a node of
    /// another op runs on the CPU.
    public static var kernelOpNames: [String] { GPUKernels.table.keys.sorted() }
}
