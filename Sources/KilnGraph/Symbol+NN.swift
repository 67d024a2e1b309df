import KilnCore

// Typed constructors of the neural-network ops. Defaults are MXNet's; an attribute is written to
// the node only when it was given a non-default value (or is required), so symbols save to the same
// JSON that MXNet's Python front end writes for the same call.

extension Symbol {
    /// How ``pooling(_:kernel:poolType:globalPool:convention:stride:pad:countIncludePad:pValue:layout:name:)`` reduces a window.
    public typealias PoolType = PoolingParameters.PoolType
    /// How pooling rounds its output size.
    public typealias PoolingConvention = PoolingParameters.Convention

    /// A 1-D, 2-D or 3-D convolution (MXNet's `Convolution`).
    ///
    /// Data is (batch, channels, spatial...); the weight (num_filter, channels / num_group, kernel...)
    /// and the bias (num_filter) become variables `NAME_weight` and `NAME_bias` when not given.
    ///
    /// - Parameters:
    ///   - kernel: the kernel size, one entry per spatial axis.
    ///   - stride, dilate: one entry per spatial axis; empty means 1 everywhere.
    ///   - pad: symmetric zero padding per spatial axis; empty means none.
    ///   - numGroup: channel groups; equal to the channel count for a depthwise convolution.
    ///   - layout: nil for channel-first; Kiln's kernels run channel-first only.
    public static func convolution(_ data: Symbol, weight: Symbol? = nil, bias: Symbol? = nil,
                                   kernel: [Int], numFilter: Int, stride: [Int] = [], dilate: [Int] = [],
                                   pad: [Int] = [], numGroup: Int = 1, noBias: Bool = false,
                                   layout: TensorLayout? = nil, name: String? = nil) -> Symbol {
        var a: [String: String] = ["kernel": AttributeText.tuple(kernel), "num_filter": String(numFilter)]
        if !stride.isEmpty { a["stride"] = AttributeText.tuple(stride) }
        if !dilate.isEmpty { a["dilate"] = AttributeText.tuple(dilate) }
        if !pad.isEmpty { a["pad"] = AttributeText.tuple(pad) }
        if numGroup != 1 { a["num_group"] = String(numGroup) }
        if noBias { a["no_bias"] = AttributeText.bool(true) }
        if let layout { a["layout"] = layout.rawValue }
        return make("Convolution", [data, weight, noBias ? nil : bias], attributes: a, name: name)
    }

    /// A transposed convolution (MXNet's `Deconvolution`), the gradient of a convolution with respect
    /// to its data.
    ///
    /// The weight is (channels, num_filter / num_group, kernel...). The output's spatial size is
    /// `stride * (input - 1) + dilated kernel - 2 * pad + adj`, or `targetShape` when given (pad and
    /// adj are then derived from it). Note that `noBias` defaults to true, as in MXNet.
    public static func deconvolution(_ data: Symbol, weight: Symbol? = nil, bias: Symbol? = nil,
                                     kernel: [Int], numFilter: Int, stride: [Int] = [], dilate: [Int] = [],
                                     pad: [Int] = [], adj: [Int] = [], targetShape: [Int] = [],
                                     numGroup: Int = 1, noBias: Bool = true,
                                     layout: TensorLayout? = nil, name: String? = nil) -> Symbol {
        var a: [String: String] = ["kernel": AttributeText.tuple(kernel), "num_filter": String(numFilter)]
        if !stride.isEmpty { a["stride"] = AttributeText.tuple(stride) }
        if !dilate.isEmpty { a["dilate"] = AttributeText.tuple(dilate) }
        if !pad.isEmpty { a["pad"] = AttributeText.tuple(pad) }
        if !adj.isEmpty { a["adj"] = AttributeText.tuple(adj) }
        if !targetShape.isEmpty { a["target_shape"] = AttributeText.tuple(targetShape) }
        if numGroup != 1 { a["num_group"] = String(numGroup) }
        if !noBias { a["no_bias"] = AttributeText.bool(false) }
        if let layout { a["layout"] = layout.rawValue }
        return make("Deconvolution", [data, weight, noBias ? nil : bias], attributes: a, name: name)
    }

    /// A dense layer, `data · weightᵀ + bias` (MXNet's `FullyConnected`).
    ///
    /// With `flatten` (the default) data of shape (n, ...) is read as (n, product of the rest);
    /// without, only the last axis is transformed and the leading axes are kept.
    public static func fullyConnected(_ data: Symbol, weight: Symbol? = nil, bias: Symbol? = nil,
                                      numHidden: Int, noBias: Bool = false, flatten: Bool = true,
                                      name: String? = nil) -> Symbol {
        var a: [String: String] = ["num_hidden": String(numHidden)]
        if noBias { a["no_bias"] = AttributeText.bool(true) }
        if !flatten { a["flatten"] = AttributeText.bool(false) }
        return make("FullyConnected", [data, weight, noBias ? nil : bias], attributes: a, name: name)
    }

    /// Batch normalization along `axis` (MXNet's `BatchNorm`).
    ///
    /// `gamma`, `beta` and the auxiliary states `movingMean` and `movingVar` (all of the channel
    /// count) become variables `NAME_gamma`, ... when not given. In inference, or with
    /// `useGlobalStats`, the moving statistics normalize; in training, the batch's. With `fixGamma`
    /// (the default) gamma is read as 1 whatever its value.
    ///
    /// The symbol has one output, or three (output, mean, inverse standard deviation) with `outputMeanVar`.
    public static func batchNorm(_ data: Symbol, gamma: Symbol? = nil, beta: Symbol? = nil,
                                 movingMean: Symbol? = nil, movingVar: Symbol? = nil,
                                 eps: Double = 1e-3, momentum: Double = 0.9, fixGamma: Bool = true,
                                 useGlobalStats: Bool = false, outputMeanVar: Bool = false, axis: Int = 1,
                                 name: String? = nil) -> Symbol {
        var a: [String: String] = [:]
        if eps != 1e-3 { a["eps"] = AttributeText.number(eps) }
        if momentum != 0.9 { a["momentum"] = AttributeText.number(momentum) }
        if !fixGamma { a["fix_gamma"] = AttributeText.bool(false) }
        if useGlobalStats { a["use_global_stats"] = AttributeText.bool(true) }
        if outputMeanVar { a["output_mean_var"] = AttributeText.bool(true) }
        if axis != 1 { a["axis"] = String(axis) }
        return make("BatchNorm", [data, gamma, beta, movingMean, movingVar], attributes: a, name: name)
    }

    /// Max, average or sum pooling over 1-D, 2-D or 3-D windows (MXNet's `Pooling`).
    ///
    /// - Parameters:
    ///   - kernel: the window; may be left empty with `globalPool`, which pools each channel's whole input.
    ///   - stride: empty means 1 everywhere. `pad`: empty means none.
    ///   - convention: `.valid` floors the output size, `.full` ceils it (Caffe's convention).
    ///   - countIncludePad: for average pooling, whether padding counts in the divisor; nil means
    ///     MXNet's default, true.
    ///   - pValue: the p of `.lp` pooling.
    public static func pooling(_ data: Symbol, kernel: [Int] = [], poolType: PoolType = .max,
                               globalPool: Bool = false, convention: PoolingConvention = .valid,
                               stride: [Int] = [], pad: [Int] = [], countIncludePad: Bool? = nil,
                               pValue: Int? = nil, layout: TensorLayout? = nil, name: String? = nil) -> Symbol {
        var a: [String: String] = [:]
        if poolType != .max { a["pool_type"] = poolType.rawValue }
        if !kernel.isEmpty { a["kernel"] = AttributeText.tuple(kernel) }
        if globalPool { a["global_pool"] = AttributeText.bool(true) }
        if convention != .valid { a["pooling_convention"] = convention.rawValue }
        if !stride.isEmpty { a["stride"] = AttributeText.tuple(stride) }
        if !pad.isEmpty { a["pad"] = AttributeText.tuple(pad) }
        if let countIncludePad { a["count_include_pad"] = AttributeText.bool(countIncludePad) }
        if let pValue { a["p_value"] = String(pValue) }
        if let layout { a["layout"] = layout.rawValue }
        return make("Pooling", [data], attributes: a, name: name)
    }
}
