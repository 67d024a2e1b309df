import KilnCore

/// The int8 quantization arithmetic the lowering uses: symmetric per-channel weights and per-tensor
/// activation scales (docs/INT8.md).
///
/// A real value x is represented as `q = round(x * scale)`, so `x ≈ q / scale`:
///
/// ```
/// weights, channel c:  scale_c = 127 / max|w_c|     q in -127...127 (s8)
/// activation, s8:      scale   = 127 / threshold    q in -127...127
/// activation, u8:      scale   = 255 / threshold    q in 0...255 (values known non-negative)
/// ```
public enum Int8Weights {
    /// Quantizes `w` symmetrically with one scale per slice along `axis` (the output channel: axis 0
    /// of a convolution's OIHW or a fully connected layer's (out, in) weights).
    ///
    /// `scales[c] = 127 / max|w_c|` (1 for a channel of zeros), `values = clamp(round(w * scale_c),
    /// -127, 127)` rounded to nearest, ties to even, in `w`'s element order (C order). -128 is never
    /// used, so that negating a value cannot overflow.
    ///
    /// Non-finite weights do not trap: NaN becomes 0 and ±infinity ±127, and the scale comes from the
    /// finite weights (a checkpoint holding them is broken anyway; the framework would answer NaN).
    /// `axis` out of range is treated as 0; a scalar is one channel.
    public static func perChannel(_ w: NDArray, axis: Int = 0) -> (values: [Int8], scales: [Float]) {
        let floats = w.floats()
        let dims = w.shape.dims
        let axis = dims.indices.contains(axis) ? axis : 0
        let channels = dims.isEmpty ? 1 : dims[axis]
        let inner = dims.isEmpty ? 1 : dims[(axis + 1)...].reduce(1, *)
        guard channels > 0, inner > 0 else { return ([], [Float](repeating: 1, count: max(channels, 0))) }
        @inline(__always) func channel(of e: Int) -> Int { (e / inner) % channels }

        var maxAbs = [Float](repeating: 0, count: channels)
        for (e, v) in floats.enumerated() where v.isFinite {
            let c = channel(of: e)
            maxAbs[c] = max(maxAbs[c], abs(v))
        }
        let scales = maxAbs.map { $0 > 0 ? 127 / $0 : 1 }
        var values = [Int8](repeating: 0, count: floats.count)
        for (e, v) in floats.enumerated() {
            values[e] = quantize(v, scale: scales[channel(of: e)], lower: -127, upper: 127)
        }
        return (values, scales)
    }

    /// The scale of an activation quantized with this range: 255 / threshold for u8 (`unsigned`,
    /// values known non-negative), 127 / threshold for s8; 1 when the threshold is 0 (a value that was
    /// always zero).
    public static func activationScale(range: CalibrationTable.ValueRange, unsigned: Bool) -> Float {
        guard range.threshold > 0, range.threshold.isFinite else { return 1 }
        return (unsigned ? 255 : 127) / range.threshold
    }

    /// `round(v * scale)` to nearest, ties to even, clamped to `lower...upper`; NaN gives 0.
    @inline(__always)
    public static func quantize(_ v: Float, scale: Float, lower: Int8, upper: Int8) -> Int8 {
        let x = (v * scale).rounded(.toNearestOrEven)
        guard !x.isNaN else { return 0 }
        if x <= Float(lower) { return lower }
        if x >= Float(upper) { return upper }
        return Int8(x)
    }
}
