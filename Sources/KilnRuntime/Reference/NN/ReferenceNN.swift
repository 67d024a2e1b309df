// The reference loops of the neural-network ops: direct definitions, one output element at a time,
// accumulated in Double. They are the oracle the framework kernels are tested against, so they
// favour being obviously right over being fast. Buffers are C-ordered NCHW (a 1-D op as height 1).

enum ReferenceNN {
    /// Cross-correlation as MXNet's Convolution: for each output (n, o, y, x),
    /// `bias[o] + Σ_{c in o's group, i, j} data[n, c, y*s - p + i*d, x*s - p + j*d] * weight[o, c mod group, i, j]`,
    /// reading zeros outside the input.
    static func convolution(_ g: WindowGeometry, data: UnsafeBufferPointer<Float>, weight: UnsafeBufferPointer<Float>,
                            bias: UnsafeBufferPointer<Float>?, out: UnsafeMutableBufferPointer<Float>) {
        let (ih, iw) = (g.input[0], g.input[1]), (oh, ow) = (g.output[0], g.output[1])
        let (kh, kw) = (g.kernel[0], g.kernel[1])
        let icg = g.inChannelsPerGroup, ocg = g.outChannelsPerGroup
        for n in 0..<g.batch {
            for o in 0..<g.outChannels {
                let group = o / ocg
                for y in 0..<oh {
                    for x in 0..<ow {
                        var acc = Double(bias?[o] ?? 0)
                        for ci in 0..<icg {
                            let c = group * icg + ci
                            for i in 0..<kh {
                                let yy = y * g.stride[0] - g.pad[0] + i * g.dilate[0]
                                guard yy >= 0 && yy < ih else { continue }
                                for j in 0..<kw {
                                    let xx = x * g.stride[1] - g.pad[1] + j * g.dilate[1]
                                    guard xx >= 0 && xx < iw else { continue }
                                    let d = data[((n * g.inChannels + c) * ih + yy) * iw + xx]
                                    let w = weight[((o * icg + ci) * kh + i) * kw + j]
                                    acc += Double(d) * Double(w)
                                }
                            }
                        }
                        out[((n * g.outChannels + o) * oh + y) * ow + x] = Float(acc)
                    }
                }
            }
        }
    }

    /// Transposed convolution as MXNet's Deconvolution: every input element (n, c, y, x) adds
    /// `data * weight[c, o mod group, i, j]` to output (n, o, y*s - p + i*d, x*s - p + j*d) for each
    /// o in c's group; outputs no input reaches (the `adj` border) keep only the bias.
    static func deconvolution(_ g: WindowGeometry, data: UnsafeBufferPointer<Float>, weight: UnsafeBufferPointer<Float>,
                              bias: UnsafeBufferPointer<Float>?, out: UnsafeMutableBufferPointer<Float>) {
        let (ih, iw) = (g.input[0], g.input[1]), (oh, ow) = (g.output[0], g.output[1])
        let (kh, kw) = (g.kernel[0], g.kernel[1])
        let icg = g.inChannelsPerGroup, ocg = g.outChannelsPerGroup
        var acc = [Double](repeating: 0, count: out.count)
        for n in 0..<g.batch {
            for c in 0..<g.inChannels {
                let group = c / icg
                for y in 0..<ih {
                    for x in 0..<iw {
                        let d = Double(data[((n * g.inChannels + c) * ih + y) * iw + x])
                        for oi in 0..<ocg {
                            let o = group * ocg + oi
                            for i in 0..<kh {
                                let yy = y * g.stride[0] - g.pad[0] + i * g.dilate[0]
                                guard yy >= 0 && yy < oh else { continue }
                                for j in 0..<kw {
                                    let xx = x * g.stride[1] - g.pad[1] + j * g.dilate[1]
                                    guard xx >= 0 && xx < ow else { continue }
                                    let w = Double(weight[((c * ocg + oi) * kh + i) * kw + j])
                                    acc[((n * g.outChannels + o) * oh + yy) * ow + xx] += d * w
                                }
                            }
                        }
                    }
                }
            }
        }
        for k in 0..<out.count {
            let o = (k / g.outPlane) % g.outChannels
            out[k] = Float(acc[k] + Double(bias?[o] ?? 0))
        }
    }

    /// `out[r, h] = bias[h] + Σ_k data[r, k] * weight[h, k]` for a (rows, k) data matrix.
    static func fullyConnected(rows: Int, inputs: Int, hidden: Int, data: UnsafeBufferPointer<Float>,
                               weight: UnsafeBufferPointer<Float>, bias: UnsafeBufferPointer<Float>?,
                               out: UnsafeMutableBufferPointer<Float>) {
        for r in 0..<rows {
            for h in 0..<hidden {
                var acc = Double(bias?[h] ?? 0)
                for k in 0..<inputs { acc += Double(data[r * inputs + k]) * Double(weight[h * inputs + k]) }
                out[r * hidden + h] = Float(acc)
            }
        }
    }

    /// Per-channel statistics of data viewed as (outer, channels, inner): the mean and the biased
    /// variance (divided by the count, as MXNet's forward pass does).
    static func batchStatistics(outer: Int, channels: Int, inner: Int, data: UnsafeBufferPointer<Float>) -> (mean: [Double], variance: [Double]) {
        let count = Double(outer * inner)
        var mean = [Double](repeating: 0, count: channels), variance = mean
        for c in 0..<channels {
            var s = 0.0
            for a in 0..<outer { for b in 0..<inner { s += Double(data[(a * channels + c) * inner + b]) } }
            let m = count > 0 ? s / count : 0
            var q = 0.0
            for a in 0..<outer { for b in 0..<inner { let d = Double(data[(a * channels + c) * inner + b]) - m; q += d * d } }
            mean[c] = m
            variance[c] = count > 0 ? q / count : 0
        }
        return (mean, variance)
    }

    /// `out = (data - mean[c]) / sqrt(variance[c] + eps) * gamma[c] + beta[c]` over (outer, channels, inner).
    static func normalize(outer: Int, channels: Int, inner: Int, data: UnsafeBufferPointer<Float>,
                          mean: [Double], variance: [Double], gamma: [Double], beta: [Double], eps: Double,
                          out: UnsafeMutableBufferPointer<Float>) {
        for c in 0..<channels {
            let invStd = 1 / (variance[c] + eps).squareRoot()
            for a in 0..<outer {
                for b in 0..<inner {
                    let k = (a * channels + c) * inner + b
                    out[k] = Float((Double(data[k]) - mean[c]) * invStd * gamma[c] + beta[c])
                }
            }
        }
    }

    /// Pooling as MXNet's CPU kernel defines it. The window of output (y, x) starts at
    /// `y*s - p` and is cut at the padded input's end (`input + p`), which matters for the `full`
    /// convention; max and the exclude-pad average read only real input elements; the include-pad
    /// average divides by the cut window's area, padding included.
    static func pooling(_ plan: PoolingPlan, data: UnsafeBufferPointer<Float>, out: UnsafeMutableBufferPointer<Float>) {
        let g = plan.geometry
        let (ih, iw) = (g.input[0], g.input[1]), (oh, ow) = (g.output[0], g.output[1])
        for nc in 0..<(g.batch * g.inChannels) {
            for y in 0..<oh {
                for x in 0..<ow {
                    let y0 = y * g.stride[0] - g.pad[0], x0 = x * g.stride[1] - g.pad[1]
                    let y1 = min(y0 + g.kernel[0], ih + g.pad[0]), x1 = min(x0 + g.kernel[1], iw + g.pad[1])
                    let paddedArea = (y1 - y0) * (x1 - x0)
                    let ys = max(y0, 0), xs = max(x0, 0), ye = min(y1, ih), xe = min(x1, iw)
                    let base = nc * ih * iw
                    let value: Double
                    switch plan.poolType {
                    case .max:
                        var m = -Double(Float.greatestFiniteMagnitude)
                        for yy in ys..<max(ys, ye) { for xx in xs..<max(xs, xe) { m = max(m, Double(data[base + yy * iw + xx])) } }
                        value = m
                    case .avg, .sum, .lp:
                        var s = 0.0
                        for yy in ys..<max(ys, ye) { for xx in xs..<max(xs, xe) { s += Double(data[base + yy * iw + xx]) } }
                        if plan.poolType == .sum {
                            value = s
                        } else {
                            let area = plan.countIncludePad ? paddedArea : max(0, ye - ys) * max(0, xe - xs)
                            value = area > 0 ? s / Double(area) : 0
                        }
                    }
                    out[(nc * oh + y) * ow + x] = Float(value)
                }
            }
        }
    }
}
