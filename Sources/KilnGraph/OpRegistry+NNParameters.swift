import KilnCore

// Typed parameters of the neural-network ops, read from resolved attributes.
//
// Shape rules and kernels (reference and framework) read the same structs, so MXNet's parameter
// parsing (a tuple left empty means 1 for stride and dilate, 0 for pad) and its geometry (output
// sizes, deconvolution padding from a target shape, the pooling window of `global_pool`) live in
// one place.

/// The memory order of an activation tensor, as MXNet's `layout` attribute names it.
public enum TensorLayout: String, Sendable, CaseIterable {
    case ncw = "NCW", nchw = "NCHW", ncdhw = "NCDHW", nwc = "NWC", nhwc = "NHWC", ndhwc = "NDHWC"

    /// Whether channels come right after the batch axis (the only order Kiln's kernels run).
    public var isChannelFirst: Bool { self == .ncw || self == .nchw || self == .ncdhw }

    /// The channel-first layout for a number of spatial axes (MXNet's default when `layout` is None).
    public static func channelFirst(spatialRank: Int) -> TensorLayout? {
        switch spatialRank {
        case 1: return .ncw
        case 2: return .nchw
        case 3: return .ncdhw
        default: return nil
        }
    }

    /// Axis of the channels in a tensor of this layout.
    public var channelAxis: Int { isChannelFirst ? 1 : rawValue.count - 1 }
    /// Axes of the spatial dimensions, outermost first.
    public var spatialAxes: [Int] { isChannelFirst ? Array(2..<rawValue.count) : Array(1..<(rawValue.count - 1)) }
    /// Tensor rank of this layout.
    public var rank: Int { rawValue.count }
}

func attributeError(_ a: Attributes, _ key: String, _ expected: String) -> GraphError {
    .invalidAttribute(node: a.node, op: a.op, attribute: key, value: a.values[key] ?? "", expected: expected)
}

/// Reads an optional `layout` attribute (`None` means MXNet's channel-first default).
func readLayout(_ a: Attributes) throws -> TensorLayout? {
    guard a.has("layout") else { return nil }
    let text = try a.string("layout")
    guard let l = TensorLayout(rawValue: text) else {
        throw attributeError(a, "layout", "one of " + TensorLayout.allCases.map(\.rawValue).joined(separator: ", "))
    }
    return l
}

/// Reads a tuple attribute that must have `count` entries (an empty tuple means `fill` everywhere)
/// and whose entries are at least `minimum`.
func readWindowTuple(_ a: Attributes, _ key: String, count: Int, fill: Int, minimum: Int) throws -> [Int] {
    var v = try a.ints(key)
    if v.isEmpty { v = [Int](repeating: fill, count: count) }
    guard v.count == count else {
        throw attributeError(a, key, "a tuple of \(count) integers, one per kernel dimension")
    }
    guard v.allSatisfy({ $0 >= minimum }) else {
        throw attributeError(a, key, minimum == 0 ? "non-negative integers" : "integers of at least \(minimum)")
    }
    return v
}

/// Parameters of `Convolution`.
public struct ConvolutionParameters: Sendable, Equatable {
    /// The kernel size, one entry per spatial axis (1 to 3 of them).
    public var kernel: [Int]
    /// One per kernel dimension (defaults to 1).
    public var stride: [Int]
    /// One per kernel dimension (defaults to 1); MXNet's dilation, where 1 means none.
    public var dilate: [Int]
    /// Symmetric zero padding, one per kernel dimension (defaults to 0).
    public var pad: [Int]
    /// Output channels.
    public var numFilter: Int
    /// Channel groups: each output channel reads `channels / numGroup` input channels.
    public var numGroup: Int
    public var noBias: Bool
    /// The layout given, or the channel-first default for the kernel's rank.
    public var layout: TensorLayout

    /// Reads and checks the attributes of a Convolution node (defaults already filled in).
    public init(_ a: Attributes) throws {
        kernel = try readKernel(a)
        stride = try readWindowTuple(a, "stride", count: kernel.count, fill: 1, minimum: 1)
        dilate = try readWindowTuple(a, "dilate", count: kernel.count, fill: 1, minimum: 1)
        pad = try readWindowTuple(a, "pad", count: kernel.count, fill: 0, minimum: 0)
        numFilter = try readPositive(a, "num_filter")
        numGroup = try readPositive(a, "num_group")
        noBias = try a.bool("no_bias")
        layout = try readWindowLayout(a, spatialRank: kernel.count)
    }

    /// The extent a dilated kernel spans along spatial axis `i`.
    public func dilatedKernel(_ i: Int) -> Int { 1 + (kernel[i] - 1) * dilate[i] }
}

/// A convolution-like op's `kernel`: 1 to 3 positive extents.
private func readKernel(_ a: Attributes) throws -> [Int] {
    let kernel = try a.ints("kernel")
    guard (1...3).contains(kernel.count) else { throw attributeError(a, "kernel", "a tuple of 1 to 3 integers: (w,), (h, w) or (d, h, w)") }
    guard kernel.allSatisfy({ $0 > 0 }) else { throw attributeError(a, "kernel", "positive integers") }
    return kernel
}

/// An integer attribute that must be at least 1 (`num_filter`, `num_group`).
private func readPositive(_ a: Attributes, _ key: String) throws -> Int {
    let v = try a.int(key)
    guard v >= 1 else { throw attributeError(a, key, "a positive integer") }
    return v
}

/// The layout given, or the channel-first default, with as many spatial axes as the kernel.
private func readWindowLayout(_ a: Attributes, spatialRank: Int) throws -> TensorLayout {
    guard let l = try readLayout(a) ?? TensorLayout.channelFirst(spatialRank: spatialRank), l.rank == spatialRank + 2 else {
        throw attributeError(a, "layout", "a layout with \(spatialRank) spatial axes, matching the kernel")
    }
    return l
}

/// Parameters of `Deconvolution` (transposed convolution).
public struct DeconvolutionParameters: Sendable, Equatable {
    /// The kernel of the convolution this op transposes, one entry per spatial axis.
    public var kernel: [Int]
    /// One per kernel dimension (defaults to 1).
    public var stride: [Int]
    /// One per kernel dimension (defaults to 1, no dilation).
    public var dilate: [Int]
    /// The convolution's padding, removed from both ends of the output (defaults to 0).
    public var pad: [Int]
    /// Rows added at the output's end, each below the stride (defaults to 0).
    public var adj: [Int]
    /// Empty, or one entry per kernel dimension; entries of 0 are not set.
    public var targetShape: [Int]
    /// Output channels.
    public var numFilter: Int
    public var numGroup: Int
    /// True unless set: MXNet's Deconvolution has no bias by default.
    public var noBias: Bool
    /// The layout given, or the channel-first default for the kernel's rank.
    public var layout: TensorLayout

    /// Reads and checks the attributes of a Deconvolution node (defaults already filled in).
    public init(_ a: Attributes) throws {
        kernel = try readKernel(a)
        stride = try readWindowTuple(a, "stride", count: kernel.count, fill: 1, minimum: 1)
        dilate = try readWindowTuple(a, "dilate", count: kernel.count, fill: 1, minimum: 1)
        pad = try readWindowTuple(a, "pad", count: kernel.count, fill: 0, minimum: 0)
        adj = try readWindowTuple(a, "adj", count: kernel.count, fill: 0, minimum: 0)
        targetShape = try a.ints("target_shape")
        guard targetShape.isEmpty || targetShape.count == kernel.count else {
            throw attributeError(a, "target_shape", "an empty tuple or a tuple of \(kernel.count) integers, one per kernel dimension")
        }
        numFilter = try readPositive(a, "num_filter")
        numGroup = try readPositive(a, "num_group")
        noBias = try a.bool("no_bias")
        layout = try readWindowLayout(a, spatialRank: kernel.count)
    }

    /// The extent a dilated kernel spans along spatial axis `i`.
    public func dilatedKernel(_ i: Int) -> Int { 1 + (kernel[i] - 1) * dilate[i] }

    /// Whether `target_shape` decides the padding (some entry is set).
    public var usesTargetShape: Bool { targetShape.contains { $0 != 0 } }

    /// The padding and output adjustment for an input of spatial size `input`: `pad` and `adj` as
    /// given, or, when `target_shape` is set, the smallest symmetric padding that yields it (the
    /// odd remainder goes to `adj`), as MXNet derives them.
    ///
    /// Returns nil when the target is larger than the full transposed convolution can produce.
    public func padding(input: [Int]) -> (pad: [Int], adj: [Int])? {
        guard usesTargetShape else { return (pad, adj) }
        var p = [Int](), q = [Int]()
        for i in kernel.indices {
            let full = stride[i] * (input[i] - 1) + dilatedKernel(i)
            let excess = full - targetShape[i]
            guard excess >= 0 else { return nil }
            q.append(excess % 2)
            p.append((excess + 1) / 2)
        }
        return (p, q)
    }

    /// Output size along each spatial axis for an input of spatial size `input`.
    public func outputSize(input: [Int], pad: [Int], adj: [Int]) -> [Int] {
        kernel.indices.map { stride[$0] * (input[$0] - 1) + dilatedKernel($0) - 2 * pad[$0] + adj[$0] }
    }
}

/// Parameters of `FullyConnected`.
public struct FullyConnectedParameters: Sendable, Equatable {
    public var numHidden: Int
    public var noBias: Bool
    /// Whether all axes but the first are collapsed into one; otherwise only the last axis is transformed.
    public var flatten: Bool

    /// Reads and checks the attributes of a FullyConnected node (defaults already filled in).
    public init(_ a: Attributes) throws {
        numHidden = try a.int("num_hidden")
        guard numHidden >= 1 else { throw attributeError(a, "num_hidden", "a positive integer") }
        noBias = try a.bool("no_bias")
        flatten = try a.bool("flatten")
    }

    /// The data viewed as a matrix (rows, inputs per row).
    public func matrixShape(data: Shape) -> (rows: Int, columns: Int) {
        if flatten {
            return (data.rank == 0 ? 1 : data[0], data.dims.dropFirst().reduce(1, *))
        }
        let k = data.dims.last ?? 1
        return (data.dims.dropLast().reduce(1, *), k)
    }
}

/// Parameters of `BatchNorm`.
public struct BatchNormParameters: Sendable, Equatable {
    public var eps: Double
    public var momentum: Double
    /// Whether gamma is read as 1 whatever its value.
    public var fixGamma: Bool
    /// Whether the moving statistics are used even in training mode.
    public var useGlobalStats: Bool
    public var outputMeanVar: Bool
    /// The channel axis as given (may be negative).
    public var axis: Int

    /// Reads and checks the attributes of a BatchNorm node (defaults already filled in).
    public init(_ a: Attributes) throws {
        eps = try a.float("eps")
        guard eps >= 0 else { throw attributeError(a, "eps", "a non-negative number") }
        momentum = try a.float("momentum")
        fixGamma = try a.bool("fix_gamma")
        useGlobalStats = try a.bool("use_global_stats")
        outputMeanVar = try a.bool("output_mean_var")
        axis = try a.int("axis")
    }

    /// The data viewed as (outer, channels, inner) around the channel axis; nil when `axis` is out of range.
    public func split(_ data: Shape) -> (outer: Int, channels: Int, inner: Int)? {
        guard let ax = data.normalizedAxis(axis) else { return nil }
        return (data.dims[..<ax].reduce(1, *), data[ax], data.dims[(ax + 1)...].reduce(1, *))
    }
}

/// Parameters of `Pooling`.
public struct PoolingParameters: Sendable, Equatable {
    /// How a window is reduced: maximum, average, sum, or the p-norm (`lp`).
    public enum PoolType: String, Sendable, CaseIterable { case max, avg, sum, lp }
    /// How the output size is rounded: `valid` floors, `full` (Caffe's) ceils, `same` keeps
    /// `ceil(input / stride)`.
    public enum Convention: String, Sendable, CaseIterable { case valid, full, same }

    /// The kernel as given; empty is allowed with `global_pool`.
    public var kernel: [Int]
    /// One per kernel dimension (defaults to 1); ignored by global pooling.
    public var stride: [Int]
    /// Symmetric padding, one per kernel dimension (defaults to 0); ignored by global pooling.
    public var pad: [Int]
    public var poolType: PoolType
    public var convention: Convention
    public var globalPool: Bool
    /// MXNet's `count_include_pad`; None means true.
    public var countIncludePad: Bool
    public var pValue: Int?
    /// The layout given, or nil for the channel-first default of the data's rank.
    public var layout: TensorLayout?

    /// Reads and checks the attributes of a Pooling node (defaults already filled in).
    public init(_ a: Attributes) throws {
        kernel = try a.ints("kernel")
        globalPool = try a.bool("global_pool")
        guard kernel.count <= 3 else { throw attributeError(a, "kernel", "a tuple of 1 to 3 integers: (w,), (h, w) or (d, h, w)") }
        guard kernel.allSatisfy({ $0 > 0 }) else { throw attributeError(a, "kernel", "positive integers") }
        if kernel.isEmpty && !globalPool {
            throw attributeError(a, "kernel", "a kernel size such as (2, 2) (only global_pool=True may leave it out)")
        }
        if globalPool {
            // Global pooling ignores stride and pad; MXNet still parses them, so read them leniently.
            stride = try a.ints("stride")
            pad = try a.ints("pad")
        } else {
            stride = try readWindowTuple(a, "stride", count: kernel.count, fill: 1, minimum: 1)
            pad = try readWindowTuple(a, "pad", count: kernel.count, fill: 0, minimum: 0)
        }
        guard let t = PoolType(rawValue: try a.string("pool_type")) else {
            throw attributeError(a, "pool_type", "one of max, avg, sum, lp")
        }
        poolType = t
        guard let c = Convention(rawValue: try a.string("pooling_convention")) else {
            throw attributeError(a, "pooling_convention", "one of valid, full, same")
        }
        convention = c
        if a.has("count_include_pad") {
            let text = try a.string("count_include_pad")
            guard let b = AttributeText.bool(text) else { throw attributeError(a, "count_include_pad", "True, False or None") }
            countIncludePad = b
        } else {
            countIncludePad = true
        }
        pValue = try a.optionalInt("p_value")
        layout = try readLayout(a)
    }

    /// The window a pooling node applies to data of a given shape.
    public struct Window: Sendable, Equatable {
        /// The window size per spatial axis (the whole input for global pooling).
        public var kernel: [Int]
        public var stride: [Int]
        /// Padding before each spatial axis (MXNet's `pad`).
        public var pad: [Int]
        /// Output size per spatial axis.
        public var output: [Int]
    }

    /// Whether the node has MXNet's hidden `workspace` output: MXNet 1.9's CPU build adds one to max
    /// pooling that its oneDNN path supports (a kernel of 1 to 3 dimensions given, channel-first).
    public var hasWorkspace: Bool {
        poolType == .max && (1...3).contains(kernel.count) && (layout?.isChannelFirst ?? true)
    }

    /// The layout used for data of rank `rank`.
    public func effectiveLayout(rank: Int) -> TensorLayout? {
        layout ?? TensorLayout.channelFirst(spatialRank: rank - 2)
    }

    /// The window for data of spatial size `input`: the kernel given, or the whole input with
    /// `global_pool`; output sizes follow the convention. Fails, with a reason, when the kernel does not fit.
    public func window(input: [Int]) -> Result<Window, PoolingGeometryError> {
        if globalPool {
            return .success(Window(kernel: input, stride: input.map { _ in 1 }, pad: input.map { _ in 0 }, output: input.map { _ in 1 }))
        }
        guard kernel.count == input.count else { return .failure(.rank(kernel: kernel.count, spatial: input.count)) }
        var out: [Int] = []
        for i in input.indices {
            let padded = input[i] + 2 * pad[i]
            guard kernel[i] <= padded else { return .failure(.kernelTooLarge(kernel: kernel, padded: input.indices.map { input[$0] + 2 * pad[$0] })) }
            switch convention {
            case .valid: out.append(1 + (padded - kernel[i]) / stride[i])
            case .full: out.append(1 + (padded - kernel[i] + stride[i] - 1) / stride[i])
            case .same: out.append((padded + stride[i] - 1) / stride[i])
            }
        }
        return .success(Window(kernel: kernel, stride: stride, pad: pad, output: out))
    }
}

/// Why a pooling window does not fit its data.
public enum PoolingGeometryError: Error, Sendable, CustomStringConvertible {
    /// The kernel has another number of dimensions than the data has spatial axes.
    case rank(kernel: Int, spatial: Int)
    /// The kernel exceeds the padded input along some axis.
    case kernelTooLarge(kernel: [Int], padded: [Int])

    public var description: String {
        switch self {
        case let .rank(k, s):
            return "the kernel has \(k) dimensions, but the data has \(s) spatial axes"
        case let .kernelTooLarge(k, p):
            return "kernel \(AttributeText.tuple(k)) is larger than the padded input \(AttributeText.tuple(p))"
        }
    }
}
