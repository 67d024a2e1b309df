import KilnCore
import KilnGraph

/// What a kernel is built for: one node, its attributes with defaults filled in, and the shapes and
/// dtypes of its inputs and outputs, all known at bind time.
public struct KernelSignature: Sendable {
    public let node: NodeContext
    public let inputShapes: [Shape]
    public let inputTypes: [DType]
    public let outputShapes: [Shape]
    public let outputTypes: [DType]

    public init(node: NodeContext, inputShapes: [Shape], inputTypes: [DType], outputShapes: [Shape], outputTypes: [DType]) {
        self.node = node
        self.inputShapes = inputShapes
        self.inputTypes = inputTypes
        self.outputShapes = outputShapes
        self.outputTypes = outputTypes
    }

    /// The node's attributes (defaults filled in).
    public var attributes: Attributes { node.attributes }

    /// An error for a configuration this kernel does not handle.
    public func unsupported(_ reason: String) -> RuntimeError {
        .unsupported(node: node.name, op: node.op, reason: reason)
    }

    /// Throws unless every input and output is float32 (most kernels' only dtype so far).
    public func requireFloat32() throws {
        for (i, t) in inputTypes.enumerated() where t != .float32 {
            throw unsupported("input '\(i < node.inputNames.count ? node.inputNames[i] : String(i))' has dtype \(t); this kernel takes float32")
        }
        for t in outputTypes where t != .float32 { throw unsupported("output dtype \(t); this kernel writes float32") }
    }
}

/// A node's computation, created once at bind for fixed shapes.
///
/// `forward` receives the inputs and the outputs already allocated with their bound shapes and types;
/// it writes into them, or replaces an output with a view of an input (a reshape need not copy).
public protocol Kernel: AnyObject {
    func forward(_ inputs: [NDArray], _ outputs: inout [NDArray], isTrain: Bool) throws

    /// Gradients of the inputs from the gradients of the outputs, after a `forward(isTrain: true)` on
    /// the same arrays (state that forward kept, such as a dropout mask or batch statistics, is still
    /// there). `inputGradients` arrive as zeros shaped as the inputs; write entry `i` when `needed[i]`.
    /// `outputGradients` has one array per output, hidden ones included, each in its output's shape
    /// and dtype (zeros where no gradient flows).
    func backward(_ inputs: [NDArray], _ outputs: [NDArray], _ outputGradients: [NDArray],
                  _ inputGradients: inout [NDArray], needed: [Bool]) throws

    /// Auxiliary states the last training pass changed (BatchNorm's moving statistics), by input
    /// index; the executor stores them back into `auxDict` after `forward` and after `backward`
    /// (BatchNorm, as in MXNet 1.9, updates them in its backward).
    func auxiliaryUpdates() -> [(input: Int, value: NDArray)]
}

/// A kernel that may start its inference forward without waiting for it (an engine node holding a
/// ``StartableGraph``). `nil`: it cannot, and runs `forward` instead.
public protocol StartableKernel: Kernel {
    func start(_ inputs: [NDArray]) throws -> (any PendingRun)?
}

extension Kernel {
    public func backward(_ inputs: [NDArray], _ outputs: [NDArray], _ outputGradients: [NDArray],
                         _ inputGradients: inout [NDArray], needed: [Bool]) throws {
        throw RuntimeError.invalidArgument("\(type(of: self)) has no backward; this op cannot be trained with this backend")
    }

    public func auxiliaryUpdates() -> [(input: Int, value: NDArray)] { [] }
}

/// Builds the kernel for a signature; throws ``RuntimeError/unsupported(node:op:reason:)`` when it cannot.
public typealias KernelFactory = @Sendable (KernelSignature) throws -> any Kernel

/// A kernel from a closure, for stateless kernels.
public final class ClosureKernel: Kernel {
    let body: ([NDArray], inout [NDArray], Bool) throws -> Void
    public init(_ body: @escaping ([NDArray], inout [NDArray], Bool) throws -> Void) { self.body = body }
    public func forward(_ inputs: [NDArray], _ outputs: inout [NDArray], isTrain: Bool) throws {
        try body(inputs, &outputs, isTrain)
    }
}

/// A stateless kernel with a backward, both from closures.
public final class ClosureGradientKernel: Kernel {
    public typealias Forward = ([NDArray], inout [NDArray], Bool) throws -> Void
    public typealias Backward = (_ inputs: [NDArray], _ outputs: [NDArray], _ outputGradients: [NDArray],
                                 _ inputGradients: inout [NDArray], _ needed: [Bool]) throws -> Void
    let forwardBody: Forward
    let backwardBody: Backward
    public init(forward: @escaping Forward, backward: @escaping Backward) {
        forwardBody = forward
        backwardBody = backward
    }
    public func forward(_ inputs: [NDArray], _ outputs: inout [NDArray], isTrain: Bool) throws {
        try forwardBody(inputs, &outputs, isTrain)
    }
    public func backward(_ inputs: [NDArray], _ outputs: [NDArray], _ outputGradients: [NDArray],
                         _ inputGradients: inout [NDArray], needed: [Bool]) throws {
        try backwardBody(inputs, outputs, outputGradients, &inputGradients, needed)
    }
}

/// Kernels by MXNet op name. Each op family contributes one dictionary from its own file.
public struct KernelTable: Sendable {
    public private(set) var factories: [String: KernelFactory]

    public init(_ families: [[String: KernelFactory]]) {
        var f: [String: KernelFactory] = [:]
        for family in families { f.merge(family) { _, new in new } }
        factories = f
    }

    /// The factory for an op; aliases resolve through the registry.
    public func factory(for op: String) -> KernelFactory? {
        if let f = factories[op] { return f }
        if let canonical = OpRegistry.shared.lookup(op)?.name { return factories[canonical] }
        return nil
    }

    /// The table with `other`'s entries added, replacing same-named ones.
    public func overlaid(with other: KernelTable) -> KernelTable {
        var t = self
        t.factories.merge(other.factories) { _, new in new }
        return t
    }
}
