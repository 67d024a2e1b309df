// Framework mode on the GPU: one kernel per op, every value in its own device buffer, weights
// uploaded once and again only when the caller passes a different array.
//
//   host data ─upload─> conv ─> bn ─> relu ─> ... ─> fc ─download─> host outputs
//                                     │   an op with no GPU kernel:
//                                     └─download─> CPU framework kernel ─upload─┘
import KilnCore
import KilnGraph
import KilnRuntime

/// Where a node of a graph bound on the GPU runs, and why.
public struct GPUPlacement: Sendable, Equatable {
    public let node: String
    public let op: String
    /// True when a GPU kernel runs the node; false when it runs on the CPU with copies.
    public let onGPU: Bool
    /// Why the node runs on the CPU, when it does.
    public let reason: String?
}

final class GPUPlan: CompiledGraph {
    enum Step {
        case variable
        case gpu(any GPUKernel)
        case cpu(any Kernel)
    }

    let device: CUDADevice
    let graph: Graph
    let shapes: InferredShapes
    let types: InferredTypes
    let steps: [Step]
    /// One device buffer per node output.
    var buffers: [[DeviceBuffer]]
    /// The host arrays last uploaded into variables' buffers: the same storage again skips the copy.
    var uploaded: [Int: NDArray] = [:]
    let constants: [String: NDArray]
    let placements: [GPUPlacement]

    /// `fallback` runs the ops with no GPU kernel (on the host, with copies only where a GPU kernel
    /// reads or wrote the value): the CPU framework's kernels, and engine nodes.
    init(graph: Graph, shapes: InferredShapes, types: InferredTypes, constants: [String: NDArray], device: CUDADevice,
         fallback: KernelTable) throws {
        self.device = device
        self.graph = graph
        self.shapes = shapes
        self.types = types
        self.constants = constants
        try device.makeCurrent()
        var steps: [Step] = []
        var buffers: [[DeviceBuffer]] = []
        var placements: [GPUPlacement] = []
        for (i, n) in graph.nodes.enumerated() {
            let outShapes = shapes.nodeOutputs[i], outTypes = types.nodeOutputs[i]
            if n.isVariable {
                buffers.append(try zip(outShapes, outTypes).map { try device.pool.allocate($0.elementCount * $1.byteSize) })
                steps.append(.variable)
                continue
            }
            let (_, ctx) = try graph.context(of: i)
            let sig = KernelSignature(node: ctx, inputShapes: n.inputs.map { shapes.nodeOutputs[$0.node][$0.index] },
                                      inputTypes: n.inputs.map { types.nodeOutputs[$0.node][$0.index] },
                                      outputShapes: outShapes, outputTypes: outTypes)
            let entry = GPUKernels.entry(for: n.op)
            let reason = entry == nil ? "no GPU kernel for \(n.op)" : entry?.check(sig)
            if let entry, reason == nil {
                buffers.append(try zip(outShapes, outTypes).map { try device.pool.allocate($0.elementCount * $1.byteSize) })
                steps.append(.gpu(try entry.make(sig, device)))
                placements.append(GPUPlacement(node: n.name, op: n.op, onGPU: true, reason: nil))
            } else {
                guard let factory = fallback.factory(for: n.op) else {
                    throw RuntimeError.noKernel(op: n.op, node: n.name, backend: "gpu or framework")
                }
                // Device copies of a host step's outputs are made only if a GPU kernel reads them.
                buffers.append(try zip(outShapes, outTypes).map { try device.pool.allocate($0.elementCount * $1.byteSize) })
                steps.append(.cpu(try factory(sig)))
                let engine = n.op == EngineSubgraph.opName
                placements.append(GPUPlacement(node: n.name, op: n.op, onGPU: engine, reason: engine ? nil : reason))
            }
        }
        self.steps = steps
        self.buffers = buffers
        self.placements = placements
    }

    func run(_ inputs: [String: NDArray], isTrain: Bool) throws -> [NDArray] {
        guard !isTrain else { throw CUDAError.invalidArgument("The GPU backend runs inference only; train on the CPU (forward with isTrain: false here)") }
        try device.makeCurrent()
        // Where each value is current: on the host (an array), on the device (its buffer), or both.
        var host: [Graph.Entry: NDArray] = [:]
        var onDevice = Set<Graph.Entry>()
        func entryOnDevice(_ e: Graph.Entry) throws -> UnsafeMutableRawPointer {
            let b = buffers[e.node][e.index]
            if !onDevice.contains(e), let h = host[e] {
                if case .variable = steps[e.node], let last = uploaded[e.node], last.sharesStorage(with: h) {
                    // Uploaded by an earlier forward and unchanged since.
                } else {
                    try h.withUnsafeBytes { try device.copy(toDevice: b.pointer, from: $0.baseAddress!, bytes: h.byteCount) }
                    if case .variable = steps[e.node] { uploaded[e.node] = h }
                }
                onDevice.insert(e)
            }
            return b.pointer
        }
        func entryOnHost(_ e: Graph.Entry) throws -> NDArray {
            if let h = host[e] { return h }
            let h = try device.download(buffers[e.node][e.index].pointer, shape: shapes.nodeOutputs[e.node][e.index], dtype: types.nodeOutputs[e.node][e.index])
            host[e] = h
            return h
        }
        var pendingUploads = false
        for (i, n) in graph.nodes.enumerated() {
            switch steps[i] {
            case .variable:
                host[Graph.Entry(node: i, index: 0)] = try variable(i, inputs)
            case let .gpu(kernel):
                let ins = try n.inputs.map { try entryOnDevice($0) }
                pendingUploads = true
                try kernel.forward(ins, buffers[i].map(\.pointer))
                for k in buffers[i].indices { onDevice.insert(Graph.Entry(node: i, index: k)) }
            case let .cpu(kernel):
                let ins = try n.inputs.map { try entryOnHost($0) }
                var outs = zip(shapes.nodeOutputs[i], types.nodeOutputs[i]).map { NDArray(zeros: $0, dtype: $1) }
                try kernel.forward(ins, &outs, isTrain: false)
                for (k, o) in outs.enumerated() { host[Graph.Entry(node: i, index: k)] = o }
            }
        }
        let results = try graph.heads.map { try entryOnHost($0) }
        // Host arrays read by asynchronous uploads must outlive them.
        if pendingUploads { try device.synchronize() }
        return results
    }

    /// Variable `i`'s array from `inputs` (or the constants), checked against the bound shape and dtype.
    private func variable(_ i: Int, _ inputs: [String: NDArray]) throws -> NDArray {
        let n = graph.nodes[i]
        guard let v = inputs[n.name] ?? constants[n.name] else {
            throw CUDAError.missingInput(name: n.name, known: graph.nodes.filter(\.isVariable).map(\.name))
        }
        let expected = shapes.nodeOutputs[i][0], t = types.nodeOutputs[i][0]
        guard v.shape == expected else { throw CUDAError.inputShape(name: n.name, expected: expected, actual: v.shape) }
        guard v.dtype == t else { throw CUDAError.inputType(name: n.name, expected: t, actual: v.dtype) }
        return v
    }
}

extension GPUPlan: StartableGraph {
    /// A graph the cuda engine took whole starts its engine node's run (queued on the device);
    /// any other graph returns nil and runs with ``run(_:isTrain:)``.
    func start(_ inputs: [String: NDArray]) throws -> (any PendingRun)? {
        guard let i = graph.soleOpNode, case let .cpu(kernel) = steps[i], let startable = kernel as? any StartableKernel else { return nil }
        return try startable.start(try graph.nodes[i].inputs.map { try variable($0.node, inputs) })
    }
}

/// Runs graphs on one GPU, op by op: cuDNN, cuBLAS and NVRTC-generated kernels, and the CPU
/// framework's kernel, with copies, for an op that has no GPU kernel (the GPU's framework mode).
///
/// ```
/// let exec = try net.simpleBind(context: .gpu(0), shapes: ["data": [16, 3, 32, 32]], sharedBuffer: params)
/// ```
public struct CUDABackend: Backend {
    public let name = "gpu"
    /// The GPU's ordinal.
    public let ordinal: Int
    /// What runs the ops with no GPU kernel: the CPU framework's kernels, plus engine nodes when the
    /// graph was partitioned for the CUDA engine.
    public let fallback: KernelTable

    public init(device ordinal: Int = 0, fallback: KernelTable = OpByOpBackend.framework.kernels) {
        self.ordinal = ordinal
        self.fallback = fallback
    }

    public func runs(on context: Context) -> Bool { context == .gpu(ordinal) }

    /// Whether a GPU kernel runs the node; unsupported nodes still run, on the CPU with copies.
    public func support(_ query: SupportQuery) -> Support {
        let n = query.graphNode
        if n.isVariable { return .supported }
        guard let entry = GPUKernels.entry(for: n.op) else { return .unsupported("no GPU kernel for \(n.op)") }
        guard let shapes = query.shapes, let types = query.types, let (_, ctx) = try? query.graph.context(of: query.node) else {
            return .supported
        }
        let sig = KernelSignature(node: ctx, inputShapes: n.inputs.map { shapes.nodeOutputs[$0.node][$0.index] },
                                  inputTypes: n.inputs.map { types.nodeOutputs[$0.node][$0.index] },
                                  outputShapes: shapes.nodeOutputs[query.node], outputTypes: types.nodeOutputs[query.node])
        return entry.check(sig).map { .unsupported(.other($0)) } ?? .supported
    }

    public func compile(_ graph: Graph, shapes: InferredShapes, types: InferredTypes, constants: [String: NDArray]) throws -> any CompiledGraph {
        try GPUPlan(graph: graph, shapes: shapes, types: types, constants: constants, device: CUDA.shared.device(ordinal), fallback: fallback)
    }

    /// Where each op node of `graph` runs when bound for these shapes (`kiln partition --context gpu`).
    public func placements(_ graph: Graph, shapes: InferredShapes, types: InferredTypes) -> [GPUPlacement] {
        let read = graph.readOutputs
        return graph.nodes.indices.compactMap { i in
            let n = graph.nodes[i]
            guard !n.isVariable else { return nil }
            switch support(SupportQuery(graph: graph, node: i, shapes: shapes, types: types, outputsRead: read[i])) {
            case .supported: return GPUPlacement(node: n.name, op: n.op, onGPU: true, reason: nil)
            case let .unsupported(r): return GPUPlacement(node: n.name, op: n.op, onGPU: false, reason: r.text)
            }
        }
    }
}
