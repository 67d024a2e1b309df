import KilnCore

/// Typed constructors of the tensor family. Attributes equal to MXNet's defaults are left out of the
/// node, as MXNet's Python front end leaves out arguments not passed, so saved JSON matches MXNet's.
extension Symbol {
    /// Collapses every axis after the first: `(N, C, H, W) -> (N, C*H*W)` (MXNet's `Flatten`).
    public static func flatten(_ data: Symbol, name: String? = nil) -> Symbol {
        make("Flatten", [data], name: name)
    }

    /// A view of `data` with another shape of the same element count (MXNet's `Reshape`).
    ///
    /// `shape` may hold MXNet's special codes: `0` copies an input dim, `-1` is inferred, `-2` copies
    /// the remaining dims, `-3` merges two dims, `-4` splits one into the next two entries; with
    /// `reverse` they are matched right to left. See ``ShapeCodes``.
    ///
    /// ```
    /// Symbol.reshape(x, shape: [0, -1])   // (2, 3, 4) -> (2, 12)
    /// ```
    public static func reshape(_ data: Symbol, shape: [Int], reverse: Bool = false, name: String? = nil) -> Symbol {
        var a = ["shape": AttributeText.tuple(shape)]
        if reverse { a["reverse"] = AttributeText.bool(true) }
        return make("Reshape", [data], attributes: a, name: name)
    }

    /// Permutes the axes: output axis `i` is input axis `axes[i]`; nil reverses them.
    public static func transpose(_ data: Symbol, axes: [Int]? = nil, name: String? = nil) -> Symbol {
        var a: [String: String] = [:]
        if let axes, !axes.isEmpty { a["axes"] = AttributeText.tuple(axes) }
        return make("transpose", [data], attributes: a, name: name)
    }

    /// Inserts an axis of extent 1 at `axis`, which may be negative (`-1` appends it).
    public static func expandDims(_ data: Symbol, axis: Int, name: String? = nil) -> Symbol {
        make("expand_dims", [data], attributes: ["axis": String(axis)], name: name)
    }

    /// Joins `inputs` along axis `dim` (MXNet's `Concat`); they must agree on every other axis.
    ///
    /// - Precondition: `inputs` is not empty.
    public static func concat(_ inputs: [Symbol], dim: Int = 1, name: String? = nil) -> Symbol {
        precondition(!inputs.isEmpty, "Symbol.concat needs at least one input")
        var a = ["num_args": String(inputs.count)]
        if dim != 1 { a["dim"] = String(dim) }
        return make("Concat", inputs, attributes: a, name: name)
    }

    /// Splits `data` into `numOutputs` equal parts along `axis` (MXNet's `SliceChannel`); the symbol
    /// has one output per part (`symbol[i]`). With `squeezeAxis`, the split axis, which must then have
    /// extent `numOutputs`, is dropped from the parts.
    ///
    /// - Precondition: `numOutputs >= 1`.
    public static func split(_ data: Symbol, numOutputs: Int, axis: Int = 1, squeezeAxis: Bool = false, name: String? = nil) -> Symbol {
        precondition(numOutputs >= 1, "Symbol.split needs numOutputs >= 1, got \(numOutputs)")
        var a = ["num_outputs": String(numOutputs)]
        if axis != 1 { a["axis"] = String(axis) }
        if squeezeAxis { a["squeeze_axis"] = AttributeText.bool(true) }
        return make("SliceChannel", [data], attributes: a, name: name)
    }

    /// The elements `begin..<end` along `axis`; negative values count from the end and a nil `end`
    /// means the axis's extent (MXNet's `slice_axis`).
    public static func sliceAxis(_ data: Symbol, axis: Int, begin: Int, end: Int?, name: String? = nil) -> Symbol {
        make("slice_axis", [data], attributes: ["axis": String(axis), "begin": String(begin), "end": end.map(String.init) ?? "None"],
             name: name)
    }

    /// Pads the spatial axes of a 4-D or 5-D array (MXNet's `Pad`).
    ///
    /// `padWidth` holds a (before, after) pair per axis, `(0, 0, 0, 0, top, bottom, left, right)` for
    /// NCHW; the pairs of the first two axes must be zero.
    public static func pad(_ data: Symbol, mode: PadMode, padWidth: [Int], constantValue: Double = 0, name: String? = nil) -> Symbol {
        var a = ["mode": mode.rawValue, "pad_width": AttributeText.tuple(padWidth)]
        if constantValue != 0 { a["constant_value"] = AttributeText.number(constantValue) }
        return make("Pad", [data], attributes: a, name: name)
    }

    /// The sum over `axis` (nil: every axis); see ``mean(_:axis:keepDims:exclude:name:)`` for the options.
    public static func sum(_ data: Symbol, axis: [Int]? = nil, keepDims: Bool = false, exclude: Bool = false, name: String? = nil) -> Symbol {
        make("sum", [data], attributes: reductionAttributes(axis, keepDims, exclude), name: name)
    }

    /// The mean over `axis` (nil: every axis, giving shape `(1,)`).
    ///
    /// With `keepDims` the reduced axes stay as extent 1; with `exclude` the axes *not* listed are
    /// reduced.
    public static func mean(_ data: Symbol, axis: [Int]? = nil, keepDims: Bool = false, exclude: Bool = false, name: String? = nil) -> Symbol {
        make("mean", [data], attributes: reductionAttributes(axis, keepDims, exclude), name: name)
    }

    static func reductionAttributes(_ axis: [Int]?, _ keepDims: Bool, _ exclude: Bool) -> [String: String] {
        var a: [String: String] = [:]
        if let axis { a["axis"] = axis.count == 1 ? String(axis[0]) : AttributeText.tuple(axis) }
        if keepDims { a["keepdims"] = AttributeText.bool(true) }
        if exclude { a["exclude"] = AttributeText.bool(true) }
        return a
    }
}
