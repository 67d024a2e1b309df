import KilnCore
import KilnGraph

// The geometry of a windowed op (convolution, deconvolution, pooling) as kernels see it: always
// two spatial axes, a 1-D op being a 2-D one of height 1 with a 1-high kernel, stride 1, no padding.
// Reference and framework kernels both build it from the node's signature, so attribute reading
// and the checks of what a kernel can run happen once.

/// Sizes of a windowed op on NCHW data, a 1-D op taken as 2-D of height 1.
struct WindowGeometry: Equatable {
    var batch: Int
    var inChannels: Int
    var outChannels: Int
    var groups: Int
    /// (height, width) of the input and output.
    var input: [Int]
    var output: [Int]
    var kernel: [Int]
    var stride: [Int]
    /// Padding before each axis (top, left).
    var pad: [Int]
    /// MXNet's dilation: 1 means none.
    var dilate: [Int]
    /// 1 or 2: how many spatial axes the op really has.
    var spatialRank: Int

    var inChannelsPerGroup: Int { inChannels / groups }
    var outChannelsPerGroup: Int { outChannels / groups }
    var inPlane: Int { input[0] * input[1] }
    var outPlane: Int { output[0] * output[1] }
    var kernelArea: Int { kernel[0] * kernel[1] }

    /// Lifts per-axis values of a 1-D op to two axes: `[fill] + v`.
    static func lift(_ v: [Int], fill: Int) -> [Int] { v.count == 1 ? [fill] + v : v }

    /// The geometry of a Convolution node. Refuses what the kernels do not run.
    static func convolution(_ sig: KernelSignature) throws -> WindowGeometry {
        let p = try ConvolutionParameters(sig.attributes)
        try checkRunnable(sig, layout: p.layout, kernelRank: p.kernel.count)
        let data = sig.inputShapes[0], out = sig.outputShapes[0]
        return WindowGeometry(
            batch: data[0], inChannels: data[1], outChannels: p.numFilter, groups: p.numGroup,
            input: lift(Array(data.dims[2...]), fill: 1), output: lift(Array(out.dims[2...]), fill: 1),
            kernel: lift(p.kernel, fill: 1), stride: lift(p.stride, fill: 1), pad: lift(p.pad, fill: 0),
            dilate: lift(p.dilate, fill: 1), spatialRank: p.kernel.count)
    }

    /// The geometry of a Deconvolution node; `pad` is the effective padding (derived from
    /// `target_shape` when that is set), and the output size includes `adj`.
    static func deconvolution(_ sig: KernelSignature) throws -> WindowGeometry {
        let p = try DeconvolutionParameters(sig.attributes)
        try checkRunnable(sig, layout: p.layout, kernelRank: p.kernel.count)
        let data = sig.inputShapes[0], out = sig.outputShapes[0]
        guard let (pad, _) = p.padding(input: Array(data.dims[2...])) else {
            throw sig.unsupported("target_shape \(AttributeText.tuple(p.targetShape)) cannot be reached")
        }
        return WindowGeometry(
            batch: data[0], inChannels: data[1], outChannels: p.numFilter, groups: p.numGroup,
            input: lift(Array(data.dims[2...]), fill: 1), output: lift(Array(out.dims[2...]), fill: 1),
            kernel: lift(p.kernel, fill: 1), stride: lift(p.stride, fill: 1), pad: lift(pad, fill: 0),
            dilate: lift(p.dilate, fill: 1), spatialRank: p.kernel.count)
    }

    static func checkRunnable(_ sig: KernelSignature, layout: TensorLayout, kernelRank: Int) throws {
        try sig.requireFloat32()
        guard layout.isChannelFirst else {
            throw sig.unsupported("layout \(layout.rawValue); Kiln's kernels run channel-first layouts (NCW, NCHW) only")
        }
        guard kernelRank <= 2 else {
            throw sig.unsupported("a \(kernelRank)-D kernel; Kiln's kernels run 1-D and 2-D windows only")
        }
    }
}

/// What a Pooling node computes, as kernels see it.
struct PoolingPlan: Equatable {
    var geometry: WindowGeometry
    var poolType: PoolingParameters.PoolType
    var countIncludePad: Bool
    var convention: PoolingParameters.Convention

    /// Padding after each axis that makes the last window fit: MXNet's `full` convention lets the
    /// last window run past the padded input. Never below `pad`, so it is symmetric padding for
    /// `valid` (the floor of the output size drops what does not fit).
    var padAfter: [Int] {
        let g = geometry
        return (0..<2).map { i in max(g.pad[i], (g.output[i] - 1) * g.stride[i] + g.kernel[i] - g.input[i] - g.pad[i]) }
    }

    static func make(_ sig: KernelSignature) throws -> PoolingPlan {
        let p = try PoolingParameters(sig.attributes)
        // Output 1, when present, is MXNet's int32 workspace, which the forward pass does not write.
        guard sig.inputTypes[0] == .float32, sig.outputTypes[0] == .float32 else {
            throw sig.unsupported("data of dtype \(sig.inputTypes[0]); this kernel takes float32")
        }
        let data = sig.inputShapes[0]
        guard let layout = p.effectiveLayout(rank: data.rank), layout.isChannelFirst else {
            throw sig.unsupported("layout \(p.layout?.rawValue ?? "?"); Kiln's kernels run channel-first layouts (NCW, NCHW) only")
        }
        guard data.rank <= 4 else {
            throw sig.unsupported("\(data.rank - 2)-D pooling; Kiln's kernels run 1-D and 2-D pooling only")
        }
        guard p.poolType != .lp else { throw sig.unsupported("pool_type lp (Lp pooling) is not implemented") }
        guard p.convention != .same else { throw sig.unsupported("pooling_convention same is not implemented") }
        let spatial = Array(data.dims[2...])
        let w: PoolingParameters.Window
        switch p.window(input: spatial) {
        case let .success(window): w = window
        case let .failure(reason): throw sig.unsupported(reason.description)
        }
        let lift = WindowGeometry.lift
        let g = WindowGeometry(
            batch: data[0], inChannels: data[1], outChannels: data[1], groups: data[1],
            input: lift(spatial, 1), output: lift(w.output, 1), kernel: lift(w.kernel, 1),
            stride: lift(w.stride, 1), pad: lift(w.pad, 0), dilate: [1, 1], spatialRank: spatial.count)
        return PoolingPlan(geometry: g, poolType: p.poolType, countIncludePad: p.countIncludePad, convention: p.convention)
    }
}
