import KilnCore

// The neural-network ops: Convolution, Deconvolution, FullyConnected, BatchNorm and Pooling.
//
// Attribute schemas follow MXNet 1.9's parameter declarations (`src/operator/nn/*-inl.h`), with
// its defaults as MXNet prints them. GPU-only attributes (`workspace`, `cudnn_tune`, `cudnn_off`)
// are accepted and ignored. Layouts other than channel-first are accepted here and their shapes
// inferred as MXNet does; kernels refuse them.
//
// Fusion kinds:
// - Convolution, Deconvolution, FullyConnected: `.complex`, the anchors elementwise work attaches to.
// - BatchNorm: `.broadcast`. At inference, the only mode an engine compiles, it is a per-channel
//   affine map `y = x * scale[c] + shift[c]` whose scale and shift are broadcast along the other
//   axes; it fuses like `broadcast_mul` + `broadcast_add`. Training mode reduces over the batch, but
//   that path runs op by op.
// - Pooling: `.complex`, as TVM classifies pooling: each output reads a window of inputs, so
//   elementwise work can follow it into one kernel, but another windowed op cannot be chained.
//
// Gradients flow to data, weight and bias; BatchNorm's to data, gamma and beta (its moving
// statistics are auxiliary states, updated rather than differentiated); Pooling's to data.
//
// Max pooling has a second, hidden output, `workspace` (int32, the output's shape), exactly when
// MXNet 1.9's CPU build gives it one, so that symbol JSON (its `node_row_ptr`) round-trips. It is
// reserved for the backward pass; forward kernels leave it as allocated.

extension OpRegistry {
    static var neuralNetworkOps: [OpDefinition] {
        [convolution, deconvolution, fullyConnected, batchNorm, pooling]
    }

    // MARK: Shared pieces

    static let cudnnTuneChoices = ["None", "off", "limited_workspace", "fastest"]
    static let convolutionLayouts = ["None", "NCW", "NCHW", "NCDHW", "NHWC", "NDHWC"]

    /// A shape in `layout` from its batch, channel and spatial extents.
    static func arrange(batch: Int, channels: Int, spatial: [Int], layout: TensorLayout) -> Shape {
        layout.isChannelFirst ? Shape([batch, channels] + spatial) : Shape([batch] + spatial + [channels])
    }

    /// Throws unless the node has exactly the inputs its attributes call for.
    static func checkInputCount(_ shapes: [Shape?], _ ctx: NodeContext, _ names: [String]) throws {
        guard shapes.count == names.count else {
            throw GraphError.inputCount(node: ctx.name, op: ctx.op,
                                        expected: "\(names.count) (\(names.joined(separator: ", ")))", actual: shapes.count)
        }
    }

    /// Data of a windowed op: checks its rank against the layout and splits it into batch, channels
    /// and spatial extents.
    static func splitData(_ data: Shape, layout: TensorLayout, kernel: [Int], _ ctx: NodeContext) throws -> (batch: Int, channels: Int, spatial: [Int]) {
        guard data.rank == layout.rank else {
            throw ctx.mismatch(0, expected: "rank \(layout.rank) (layout \(layout.rawValue)) for the \(kernel.count)-D kernel \(AttributeText.tuple(kernel))", actual: data)
        }
        return (data[0], data[layout.channelAxis], layout.spatialAxes.map { data[$0] })
    }

    /// `data, weight[, bias]`: the inputs of convolution-like and fully connected ops.
    static func dataWeightBias(noBias: Bool) -> [String] { noBias ? ["data", "weight"] : ["data", "weight", "bias"] }

    /// Input names from the node's `no_bias`.
    static let dataWeightBiasNames: OpDefinition.NamesRule = { a in dataWeightBias(noBias: try a.bool("no_bias")) }

    /// The weight, and the bias when there is one. Attributes may be unresolved here, so a missing
    /// `no_bias` means the op's own default.
    static func weightAndBias(noBiasByDefault: Bool) -> @Sendable (Attributes) -> [Int] {
        { a in ((try? a.bool("no_bias")) ?? noBiasByDefault) ? [1] : [1, 2] }
    }

    /// Data, weight and bias (when the node has one) receive gradients.
    static let dataWeightAndBias = GradientRule { a in (try? a.bool("no_bias")) == true ? [0, 1] : [0, 1, 2] }

    // MARK: Convolution

    static var convolution: OpDefinition {
        OpDefinition(
            name: "Convolution",
            attributes: [
                AttributeSpec("kernel", .ints),
                AttributeSpec("stride", .ints, default: "()"),
                AttributeSpec("dilate", .ints, default: "()"),
                AttributeSpec("pad", .ints, default: "()"),
                AttributeSpec("num_filter", .int),
                AttributeSpec("num_group", .int, default: "1"),
                AttributeSpec("workspace", .int, default: "1024"),
                AttributeSpec("no_bias", .bool, default: "False"),
                AttributeSpec("cudnn_tune", .choice(cudnnTuneChoices), default: "None"),
                AttributeSpec("cudnn_off", .bool, default: "False"),
                AttributeSpec("layout", .choice(convolutionLayouts), default: "None"),
            ],
            fusion: .complex,
            inputs: dataWeightBiasNames,
            weightInputs: weightAndBias(noBiasByDefault: false),
            inferShape: { shapes, ctx in
                let p = try ConvolutionParameters(ctx.attributes)
                try checkInputCount(shapes, ctx, dataWeightBias(noBias: p.noBias))
                let data = try ctx.known(shapes, 0)
                let (n, c, spatial) = try splitData(data, layout: p.layout, kernel: p.kernel, ctx)
                guard c % p.numGroup == 0 else {
                    throw ctx.invalid("the data's \(c) channels are not divisible by num_group \(p.numGroup)")
                }
                guard p.numFilter % p.numGroup == 0 else {
                    throw ctx.invalid("num_filter \(p.numFilter) is not divisible by num_group \(p.numGroup)")
                }
                try ctx.assign(&shapes, 1, arrange(batch: p.numFilter, channels: c / p.numGroup, spatial: p.kernel, layout: p.layout))
                if !p.noBias { try ctx.assign(&shapes, 2, [p.numFilter]) }
                let dilated = p.kernel.indices.map(p.dilatedKernel)
                let padded = spatial.indices.map { spatial[$0] + 2 * p.pad[$0] }
                guard spatial.indices.allSatisfy({ dilated[$0] <= padded[$0] }) else {
                    let spans = dilated == p.kernel ? "" : " (spanning \(AttributeText.tuple(dilated)) with dilate \(AttributeText.tuple(p.dilate)))"
                    throw ctx.invalid("kernel \(AttributeText.tuple(p.kernel))\(spans) is larger than the padded input \(AttributeText.tuple(padded))")
                }
                let out = spatial.indices.map { (padded[$0] - dilated[$0]) / p.stride[$0] + 1 }
                return [arrange(batch: n, channels: p.numFilter, spatial: out, layout: p.layout)]
            },
            gradient: dataWeightAndBias)
    }

    // MARK: Deconvolution

    static var deconvolution: OpDefinition {
        OpDefinition(
            name: "Deconvolution",
            attributes: [
                AttributeSpec("kernel", .ints),
                AttributeSpec("stride", .ints, default: "()"),
                AttributeSpec("dilate", .ints, default: "()"),
                AttributeSpec("pad", .ints, default: "()"),
                AttributeSpec("adj", .ints, default: "()"),
                AttributeSpec("target_shape", .ints, default: "()"),
                AttributeSpec("num_filter", .int),
                AttributeSpec("num_group", .int, default: "1"),
                AttributeSpec("workspace", .int, default: "512"),
                // Unlike Convolution, MXNet's Deconvolution has no bias unless asked.
                AttributeSpec("no_bias", .bool, default: "True"),
                AttributeSpec("cudnn_tune", .choice(cudnnTuneChoices), default: "None"),
                AttributeSpec("cudnn_off", .bool, default: "False"),
                AttributeSpec("layout", .choice(convolutionLayouts), default: "None"),
            ],
            fusion: .complex,
            inputs: dataWeightBiasNames,
            weightInputs: weightAndBias(noBiasByDefault: true),
            inferShape: { shapes, ctx in
                let p = try DeconvolutionParameters(ctx.attributes)
                try checkInputCount(shapes, ctx, dataWeightBias(noBias: p.noBias))
                let data = try ctx.known(shapes, 0)
                let (n, c, spatial) = try splitData(data, layout: p.layout, kernel: p.kernel, ctx)
                guard c % p.numGroup == 0 else {
                    throw ctx.invalid("the data's \(c) channels are not divisible by num_group \(p.numGroup)")
                }
                guard p.numFilter % p.numGroup == 0 else {
                    throw ctx.invalid("num_filter \(p.numFilter) is not divisible by num_group \(p.numGroup)")
                }
                // MXNet's deconvolution weight is (input channels, num_filter / num_group, kernel...).
                try ctx.assign(&shapes, 1, arrange(batch: c, channels: p.numFilter / p.numGroup, spatial: p.kernel, layout: p.layout))
                if !p.noBias { try ctx.assign(&shapes, 2, [p.numFilter]) }
                guard let (pad, adj) = p.padding(input: spatial) else {
                    throw ctx.invalid("target_shape \(AttributeText.tuple(p.targetShape)) is larger than the largest output this kernel and stride give for input \(AttributeText.tuple(spatial))")
                }
                for i in p.kernel.indices where adj[i] >= p.stride[i] {
                    throw ctx.invalid("adj \(AttributeText.tuple(adj)) must be smaller than stride \(AttributeText.tuple(p.stride)) in every dimension")
                }
                let out = p.outputSize(input: spatial, pad: pad, adj: adj)
                guard out.allSatisfy({ $0 > 0 }) else {
                    throw ctx.invalid("pad \(AttributeText.tuple(pad)) leaves no output for input \(AttributeText.tuple(spatial)) (output would be \(AttributeText.tuple(out)))")
                }
                return [arrange(batch: n, channels: p.numFilter, spatial: out, layout: p.layout)]
            },
            gradient: dataWeightAndBias)
    }

    // MARK: FullyConnected

    static var fullyConnected: OpDefinition {
        OpDefinition(
            name: "FullyConnected",
            attributes: [
                AttributeSpec("num_hidden", .int),
                AttributeSpec("no_bias", .bool, default: "False"),
                AttributeSpec("flatten", .bool, default: "True"),
            ],
            fusion: .complex,
            inputs: dataWeightBiasNames,
            weightInputs: weightAndBias(noBiasByDefault: false),
            inferShape: { shapes, ctx in
                let p = try FullyConnectedParameters(ctx.attributes)
                try checkInputCount(shapes, ctx, dataWeightBias(noBias: p.noBias))
                let data = try ctx.known(shapes, 0)
                guard data.rank >= 1 else { throw ctx.mismatch(0, expected: "rank 1 or more", actual: data) }
                let (rows, k) = p.matrixShape(data: data)
                try ctx.assign(&shapes, 1, [p.numHidden, k])
                if !p.noBias { try ctx.assign(&shapes, 2, [p.numHidden]) }
                if p.flatten { return [[rows, p.numHidden]] }
                return [Shape(data.dims.dropLast() + [p.numHidden])]
            },
            gradient: dataWeightAndBias)
    }

    // MARK: BatchNorm

    static var batchNorm: OpDefinition {
        OpDefinition(
            name: "BatchNorm",
            attributes: [
                AttributeSpec("eps", .float, default: "0.001"),
                AttributeSpec("momentum", .float, default: "0.9"),
                AttributeSpec("fix_gamma", .bool, default: "True"),
                AttributeSpec("use_global_stats", .bool, default: "False"),
                AttributeSpec("output_mean_var", .bool, default: "False"),
                AttributeSpec("axis", .int, default: "1"),
                AttributeSpec("cudnn_off", .bool, default: "False"),
                AttributeSpec("min_calib_range", .optionalFloat, default: "None"),
                AttributeSpec("max_calib_range", .optionalFloat, default: "None"),
            ],
            fusion: .broadcast,
            inputs: { _ in ["data", "gamma", "beta", "moving_mean", "moving_var"] },
            auxiliaryCount: { _ in 2 },
            outputs: { _ in ["output", "mean", "var"] },
            visibleOutputCount: { a in try a.bool("output_mean_var") ? 3 : 1 },
            weightInputs: { _ in [1, 2, 3, 4] },
            inferShape: { shapes, ctx in
                let p = try BatchNormParameters(ctx.attributes)
                try checkInputCount(shapes, ctx, ["data", "gamma", "beta", "moving_mean", "moving_var"])
                let data = try ctx.known(shapes, 0)
                guard let (_, c, _) = p.split(data) else {
                    throw ctx.invalid("axis \(p.axis) is out of range for data of shape \(data) (rank \(data.rank))")
                }
                for i in 1...4 { try ctx.assign(&shapes, i, [c]) }
                return [data, [c], [c]]
            },
            inferType: { types, ctx in
                // Half-precision data keeps its statistics and affine parameters in float32, as MXNet does.
                guard let t = types.first ?? nil else { throw GraphError.unknownShape(node: ctx.name, input: "data") }
                let statType: DType = (t == .float16 || t == .bfloat16) ? .float32 : t
                for i in types.indices.dropFirst() {
                    if let u = types[i], u != statType {
                        throw GraphError.typeMismatch(node: ctx.name, op: ctx.op, input: ctx.inputNames[i], expected: statType, actual: u)
                    }
                    types[i] = statType
                }
                return [t, statType, statType]
            },
            gradient: .only([0, 1, 2]))
    }

    // MARK: Pooling

    static var pooling: OpDefinition {
        OpDefinition(
            name: "Pooling",
            attributes: [
                AttributeSpec("kernel", .ints, default: "()"),
                AttributeSpec("pool_type", .choice(["max", "avg", "sum", "lp"]), default: "max"),
                AttributeSpec("global_pool", .bool, default: "False"),
                AttributeSpec("cudnn_off", .bool, default: "False"),
                AttributeSpec("pooling_convention", .choice(["full", "valid", "same"]), default: "valid"),
                AttributeSpec("stride", .ints, default: "()"),
                AttributeSpec("pad", .ints, default: "()"),
                AttributeSpec("p_value", .optionalInt, default: "None"),
                AttributeSpec("count_include_pad", .choice(["None", "True", "False", "true", "false", "1", "0"]), default: "None"),
                AttributeSpec("layout", .choice(["None", "NCW", "NCHW", "NCDHW", "NWC", "NHWC", "NDHWC"]), default: "None"),
            ],
            fusion: .complex,
            outputs: { a in try PoolingParameters(a).hasWorkspace ? ["output", "workspace"] : ["output"] },
            visibleOutputCount: { _ in 1 },
            inferShape: { shapes, ctx in
                let p = try PoolingParameters(ctx.attributes)
                try checkInputCount(shapes, ctx, ["data"])
                let data = try ctx.known(shapes, 0)
                guard (3...5).contains(data.rank) else {
                    throw ctx.mismatch(0, expected: "rank 3, 4 or 5: (batch, channel, spatial...)", actual: data)
                }
                guard let layout = p.effectiveLayout(rank: data.rank), layout.rank == data.rank else {
                    throw ctx.mismatch(0, expected: "rank \(p.layout?.rank ?? 0) for layout \(p.layout?.rawValue ?? "")", actual: data)
                }
                if p.poolType == .lp && p.pValue == nil {
                    throw ctx.invalid("pool_type lp needs p_value")
                }
                if p.convention == .same {
                    guard data.rank == 3 else { throw ctx.invalid("pooling_convention same supports only 1-D pooling, but the data has shape \(data)") }
                    guard p.pad.allSatisfy({ $0 == 0 }) else { throw ctx.invalid("pooling_convention same does not take pad, but pad is \(AttributeText.tuple(p.pad))") }
                }
                if !p.globalPool && p.kernel.count != data.rank - 2 {
                    throw ctx.mismatch(0, expected: "rank \(p.kernel.count + 2) for the \(p.kernel.count)-D kernel \(AttributeText.tuple(p.kernel))", actual: data)
                }
                let spatial = layout.spatialAxes.map { data[$0] }
                switch p.window(input: spatial) {
                case let .success(window):
                    let out = arrange(batch: data[0], channels: data[layout.channelAxis], spatial: window.output, layout: layout)
                    return p.hasWorkspace ? [out, out] : [out]
                case let .failure(reason):
                    throw ctx.invalid(reason.description)
                }
            },
            inferType: { types, ctx in
                guard let t = types.first ?? nil else { throw GraphError.unknownShape(node: ctx.name, input: "data") }
                return ctx.outputCount == 2 ? [t, .int32] : [t]
            },
            gradient: .only([0]))
    }
}
