import CDNNL
import KilnCore
import KilnGraph

/// `elemwise_*` and `broadcast_*` on oneDNN's binary primitive.
///
/// oneDNN 2.6 broadcasts only its second source: the first must have the output's shape, and each axis
/// of the second must match it or be 1. So a broadcast whose lhs is already full size maps directly;
/// one whose rhs is full size maps with the operands swapped when the op commutes (add, mul); the rest
/// (both sides broadcast, or lhs broadcast under sub and div) run in ``Float32BroadcastKernel``.
/// Both kernels' backward is ``Float32BinaryGradient``:
/// ```
/// (2,3,4) + (1,3,1)  -> binary(src0 = lhs, src1 = rhs)
/// (1,3,4) * (2,3,4)  -> binary(src0 = rhs, src1 = lhs)
/// (2,1,4) - (1,3,1)  -> Swift loop
/// ```
final class BinaryKernel: Kernel {
    let primitive: DNNLPrimitive
    let first: DNNLMemory, second: DNNLMemory, destination: DNNLMemory
    let arguments: [(Int32, DNNLMemory)]
    let swapped: Bool
    let stream: DNNLStream
    let node: String
    let gradient: Float32BinaryGradient

    /// The oneDNN algorithm of an op.
    static func algorithm(_ op: String) -> (algorithm: dnnl_alg_kind_t, commutes: Bool)? {
        switch op {
        case "elemwise_add", "broadcast_add": return (dnnl_binary_add, true)
        case "elemwise_sub", "broadcast_sub": return (dnnl_binary_sub, false)
        case "elemwise_mul", "broadcast_mul": return (dnnl_binary_mul, true)
        case "elemwise_div", "broadcast_div": return (dnnl_binary_div, false)
        default: return nil
        }
    }

    /// The kernel for a signature: this one where oneDNN can, else the Swift loop or the reference.
    static func make(_ sig: KernelSignature) throws -> any Kernel {
        let out = sig.outputShapes[0]
        guard ElementwiseDNNL.suits(sig, inputs: [0, 1]), let (algorithm, commutes) = algorithm(sig.node.op),
              let gradient = Float32BinaryGradient(sig.node.op, lhs: sig.inputShapes[0], rhs: sig.inputShapes[1], output: out) else {
            return try ElementwiseDNNL.reference(sig)
        }
        let lhs = sig.inputShapes[0].padded(toRank: out.rank), rhs = sig.inputShapes[1].padded(toRank: out.rank)
        if lhs == out {
            return try BinaryKernel(algorithm, full: out, other: rhs, swapped: false, gradient: gradient, node: sig.node.name)
        }
        if rhs == out && commutes {
            return try BinaryKernel(algorithm, full: out, other: lhs, swapped: true, gradient: gradient, node: sig.node.name)
        }
        guard let operation = Float32BroadcastKernel.operation(sig.node.op) else { return try ElementwiseDNNL.reference(sig) }
        return Float32BroadcastKernel(operation, lhs: sig.inputShapes[0], rhs: sig.inputShapes[1], output: out, gradient: gradient)
    }

    init(_ algorithm: dnnl_alg_kind_t, full: Shape, other: Shape, swapped: Bool, gradient: Float32BinaryGradient, node: String) throws {
        var fullDesc = try ElementwiseDNNL.plainDesc(full, node: node)
        var otherDesc = try ElementwiseDNNL.plainDesc(other, node: node)
        var dstDesc = fullDesc
        var d = dnnl_binary_desc_t()
        try DNNL.check(dnnl_binary_desc_init(&d, algorithm, &fullDesc, &otherDesc, &dstDesc), "dnnl_binary_desc_init", node: node)
        primitive = try withUnsafePointer(to: &d) { try DNNLPrimitive(opDesc: $0, node: node, what: "binary") }
        first = try ElementwiseDNNL.memory(fullDesc, node: node)
        second = try ElementwiseDNNL.memory(otherDesc, node: node)
        destination = try ElementwiseDNNL.memory(dstDesc, node: node)
        arguments = [(DNNLArg.src, first), (DNNLArg.src1, second), (DNNLArg.dst, destination)]
        stream = try DNNLStream(node: node)
        self.swapped = swapped
        self.gradient = gradient
        self.node = node
    }

    func forward(_ inputs: [NDArray], _ outputs: inout [NDArray], isTrain: Bool) throws {
        try first.setPointer(inputs[swapped ? 1 : 0].sourcePointer, node: node)
        try second.setPointer(inputs[swapped ? 0 : 1].sourcePointer, node: node)
        try destination.setPointer(outputs[0].destinationPointer, node: node)
        try primitive.execute(arguments, stream: stream)
    }

    func backward(_ inputs: [NDArray], _ outputs: [NDArray], _ outputGradients: [NDArray],
                  _ inputGradients: inout [NDArray], needed: [Bool]) throws {
        gradient.run(inputs, outputGradients[0], &inputGradients, needed: needed)
    }
}

/// Float32 broadcast arithmetic where oneDNN's binary cannot broadcast the first source. Rows of the
/// output's last axis run as one inner loop with each operand's stride along it (0 when broadcast).
final class Float32BroadcastKernel: Kernel {
    let operation: @Sendable (Float, Float) -> Float
    let lhsMap: BroadcastMap, rhsMap: BroadcastMap
    let rowLength: Int, rowCount: Int
    let gradient: Float32BinaryGradient

    static func operation(_ op: String) -> (@Sendable (Float, Float) -> Float)? {
        switch op {
        case "elemwise_add", "broadcast_add": return { $0 + $1 }
        case "elemwise_sub", "broadcast_sub": return { $0 - $1 }
        case "elemwise_mul", "broadcast_mul": return { $0 * $1 }
        case "elemwise_div", "broadcast_div": return { $0 / $1 }
        default: return nil
        }
    }

    init(_ operation: @escaping @Sendable (Float, Float) -> Float, lhs: Shape, rhs: Shape, output: Shape, gradient: Float32BinaryGradient) {
        self.operation = operation
        self.gradient = gradient
        lhsMap = BroadcastMap(operand: lhs, output: output)
        rhsMap = BroadcastMap(operand: rhs, output: output)
        rowLength = output.dims.last ?? 1
        rowCount = rowLength == 0 ? 0 : output.elementCount / rowLength
    }

    func forward(_ inputs: [NDArray], _ outputs: inout [NDArray], isTrain: Bool) throws {
        let n = rowLength
        let ls = lhsMap.strides.last ?? 0, rs = rhsMap.strides.last ?? 0
        inputs[0].withUnsafeBufferPointer(as: Float.self) { a in
            inputs[1].withUnsafeBufferPointer(as: Float.self) { b in
                outputs[0].withUnsafeMutableBufferPointer(as: Float.self) { y in
                    for row in 0..<rowCount {
                        let start = row * n
                        let la = lhsMap.offset(ofOutput: start), rb = rhsMap.offset(ofOutput: start)
                        for j in 0..<n { y[start + j] = operation(a[la + j * ls], b[rb + j * rs]) }
                    }
                }
            }
        }
    }

    func backward(_ inputs: [NDArray], _ outputs: [NDArray], _ outputGradients: [NDArray],
                  _ inputGradients: inout [NDArray], needed: [Bool]) throws {
        gradient.run(inputs, outputGradients[0], &inputGradients, needed: needed)
    }
}

/// `add_n` on oneDNN's sum primitive (all scales 1); one input is the identity. Every input's
/// gradient is the output's, shared without a copy.
final class SumKernel: Kernel {
    let primitive: DNNLPrimitive
    let sources: [DNNLMemory]
    let destination: DNNLMemory
    let arguments: [(Int32, DNNLMemory)]
    let stream: DNNLStream
    let node: String

    init(count: Int, shape: Shape, node: String) throws {
        let desc = try ElementwiseDNNL.plainDesc(shape, node: node)
        var dstDesc = desc
        let sourceDescs = [dnnl_memory_desc_t](repeating: desc, count: count)
        let scales = [Float](repeating: 1, count: count)
        var pd: dnnl_primitive_desc_t?
        try DNNL.check(dnnl_sum_primitive_desc_create(&pd, &dstDesc, Int32(count), scales, sourceDescs, nil, try DNNL.requireEngine(node: node)),
                       "dnnl_sum_primitive_desc_create", node: node)
        guard let pd else { throw RuntimeError.dnnl(call: "dnnl_sum_primitive_desc_create", status: 5, node: node) }
        primitive = try DNNLPrimitive(primitiveDesc: pd, node: node, what: "sum")
        sources = try (0..<count).map { _ in try ElementwiseDNNL.memory(desc, node: node) }
        destination = try ElementwiseDNNL.memory(desc, node: node)
        arguments = sources.enumerated().map { (DNNLArg.multipleSource($0.offset), $0.element) } + [(DNNLArg.dst, destination)]
        stream = try DNNLStream(node: node)
        self.node = node
    }

    func forward(_ inputs: [NDArray], _ outputs: inout [NDArray], isTrain: Bool) throws {
        for (memory, x) in zip(sources, inputs) { try memory.setPointer(x.sourcePointer, node: node) }
        try destination.setPointer(outputs[0].destinationPointer, node: node)
        try primitive.execute(arguments, stream: stream)
    }

    func backward(_ inputs: [NDArray], _ outputs: [NDArray], _ outputGradients: [NDArray],
                  _ inputGradients: inout [NDArray], needed: [Bool]) throws {
        for k in inputGradients.indices where needed[k] { inputGradients[k] = outputGradients[0] }
    }
}
