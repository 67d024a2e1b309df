// The reference backward loops of the neural-network ops: each walks the same index space as its
// forward loop in `ReferenceNN` and sends every output gradient back along the products that made
// that output, accumulating in Double. They are the oracle the framework's oneDNN backward passes
// are tested against, and are themselves checked against finite differences.
//
// A forward term `out[o] += a[i] * b[j]` gives two backward terms:
//
//     dA[i] += dOut[o] * b[j]        dB[j] += dOut[o] * a[i]
//
// e.g. a 1-D convolution out[y] = Σ_i x[y + i] * w[i] with x = [1 2 3], w = [1 -1], dOut = [1 10]:
//     dX = [1*1, 1*(-1) + 10*1, 10*(-1)] = [1 9 -10],   dW = [1*1 + 10*2, 1*2 + 10*3] = [21 32].
//
// A gradient buffer that is nil is not wanted and not computed.

extension ReferenceNN {
    /// Gradients of `convolution`: data, weight and bias from the output gradient.
    static func convolutionBackward(_ g: WindowGeometry, data: UnsafeBufferPointer<Float>, weight: UnsafeBufferPointer<Float>,
                                    outGrad: UnsafeBufferPointer<Float>, dataGrad: UnsafeMutableBufferPointer<Float>?,
                                    weightGrad: UnsafeMutableBufferPointer<Float>?, biasGrad: UnsafeMutableBufferPointer<Float>?) {
        let (ih, iw) = (g.input[0], g.input[1]), (oh, ow) = (g.output[0], g.output[1])
        let (kh, kw) = (g.kernel[0], g.kernel[1])
        let icg = g.inChannelsPerGroup, ocg = g.outChannelsPerGroup
        var dData = [Double](repeating: 0, count: dataGrad == nil ? 0 : data.count)
        var dWeight = [Double](repeating: 0, count: weightGrad == nil ? 0 : weight.count)
        var dBias = [Double](repeating: 0, count: g.outChannels)
        for n in 0..<g.batch {
            for o in 0..<g.outChannels {
                let group = o / ocg
                for y in 0..<oh {
                    for x in 0..<ow {
                        let dy = Double(outGrad[((n * g.outChannels + o) * oh + y) * ow + x])
                        dBias[o] += dy
                        for ci in 0..<icg {
                            let c = group * icg + ci
                            for i in 0..<kh {
                                let yy = y * g.stride[0] - g.pad[0] + i * g.dilate[0]
                                guard yy >= 0 && yy < ih else { continue }
                                for j in 0..<kw {
                                    let xx = x * g.stride[1] - g.pad[1] + j * g.dilate[1]
                                    guard xx >= 0 && xx < iw else { continue }
                                    let d = ((n * g.inChannels + c) * ih + yy) * iw + xx
                                    let w = ((o * icg + ci) * kh + i) * kw + j
                                    if dataGrad != nil { dData[d] += dy * Double(weight[w]) }
                                    if weightGrad != nil { dWeight[w] += dy * Double(data[d]) }
                                }
                            }
                        }
                    }
                }
            }
        }
        store(dData, dataGrad)
        store(dWeight, weightGrad)
        store(dBias, biasGrad)
    }

    /// Gradients of `deconvolution`: every forward scatter `out[n, o, yy, xx] += data[n, c, y, x] * w`
    /// becomes a gather from the output gradient.
    static func deconvolutionBackward(_ g: WindowGeometry, data: UnsafeBufferPointer<Float>, weight: UnsafeBufferPointer<Float>,
                                      outGrad: UnsafeBufferPointer<Float>, dataGrad: UnsafeMutableBufferPointer<Float>?,
                                      weightGrad: UnsafeMutableBufferPointer<Float>?, biasGrad: UnsafeMutableBufferPointer<Float>?) {
        let (ih, iw) = (g.input[0], g.input[1]), (oh, ow) = (g.output[0], g.output[1])
        let (kh, kw) = (g.kernel[0], g.kernel[1])
        let icg = g.inChannelsPerGroup, ocg = g.outChannelsPerGroup
        var dData = [Double](repeating: 0, count: dataGrad == nil ? 0 : data.count)
        var dWeight = [Double](repeating: 0, count: weightGrad == nil ? 0 : weight.count)
        for n in 0..<g.batch {
            for c in 0..<g.inChannels {
                let group = c / icg
                for y in 0..<ih {
                    for x in 0..<iw {
                        let d = ((n * g.inChannels + c) * ih + y) * iw + x
                        let value = Double(data[d])
                        for oi in 0..<ocg {
                            let o = group * ocg + oi
                            for i in 0..<kh {
                                let yy = y * g.stride[0] - g.pad[0] + i * g.dilate[0]
                                guard yy >= 0 && yy < oh else { continue }
                                for j in 0..<kw {
                                    let xx = x * g.stride[1] - g.pad[1] + j * g.dilate[1]
                                    guard xx >= 0 && xx < ow else { continue }
                                    let dy = Double(outGrad[((n * g.outChannels + o) * oh + yy) * ow + xx])
                                    let w = ((c * ocg + oi) * kh + i) * kw + j
                                    if dataGrad != nil { dData[d] += dy * Double(weight[w]) }
                                    if weightGrad != nil { dWeight[w] += dy * value }
                                }
                            }
                        }
                    }
                }
            }
        }
        store(dData, dataGrad)
        store(dWeight, weightGrad)
        if let biasGrad { store(channelSums(outGrad, batch: g.batch, channels: g.outChannels, plane: g.outPlane), biasGrad) }
    }

    /// Gradients of `fullyConnected`: `dData = dOut · weight`, `dWeight = dOutᵀ · data`, `dBias = Σ_rows dOut`.
    static func fullyConnectedBackward(rows: Int, inputs: Int, hidden: Int, data: UnsafeBufferPointer<Float>,
                                       weight: UnsafeBufferPointer<Float>, outGrad: UnsafeBufferPointer<Float>,
                                       dataGrad: UnsafeMutableBufferPointer<Float>?, weightGrad: UnsafeMutableBufferPointer<Float>?,
                                       biasGrad: UnsafeMutableBufferPointer<Float>?) {
        if let dataGrad {
            for r in 0..<rows {
                for k in 0..<inputs {
                    var acc = 0.0
                    for h in 0..<hidden { acc += Double(outGrad[r * hidden + h]) * Double(weight[h * inputs + k]) }
                    dataGrad[r * inputs + k] = Float(acc)
                }
            }
        }
        if let weightGrad {
            for h in 0..<hidden {
                for k in 0..<inputs {
                    var acc = 0.0
                    for r in 0..<rows { acc += Double(outGrad[r * hidden + h]) * Double(data[r * inputs + k]) }
                    weightGrad[h * inputs + k] = Float(acc)
                }
            }
        }
        if let biasGrad { store(channelSums(outGrad, batch: rows, channels: hidden, plane: 1), biasGrad) }
    }

    /// Gradients of `normalize` over (outer, channels, inner). With `batchStatistics` the mean and
    /// variance are functions of the data (training); otherwise they are constants (moving statistics).
    ///
    /// With `x̂ = (x - mean) / σ`, `σ = sqrt(variance + eps)` and m elements per channel:
    /// `dBeta = Σ dy`, `dGamma = Σ dy · x̂`, and
    /// `dx = γ/σ · (dy - dBeta/m - x̂ · dGamma/m)` for batch statistics, `dx = γ/σ · dy` otherwise.
    static func batchNormBackward(outer: Int, channels: Int, inner: Int, data: UnsafeBufferPointer<Float>,
                                  outGrad: UnsafeBufferPointer<Float>, mean: [Double], variance: [Double], gamma: [Double],
                                  eps: Double, batchStatistics: Bool, dataGrad: UnsafeMutableBufferPointer<Float>?)
        -> (gamma: [Double], beta: [Double]) {
        let m = Double(outer * inner)
        var dGamma = [Double](repeating: 0, count: channels), dBeta = dGamma
        for c in 0..<channels {
            let invStd = 1 / (variance[c] + eps).squareRoot()
            var sumDy = 0.0, sumDyXhat = 0.0
            for a in 0..<outer {
                for b in 0..<inner {
                    let k = (a * channels + c) * inner + b
                    let dy = Double(outGrad[k])
                    sumDy += dy
                    sumDyXhat += dy * (Double(data[k]) - mean[c]) * invStd
                }
            }
            dBeta[c] = sumDy
            dGamma[c] = sumDyXhat
            guard let dataGrad else { continue }
            for a in 0..<outer {
                for b in 0..<inner {
                    let k = (a * channels + c) * inner + b
                    let dy = Double(outGrad[k])
                    if batchStatistics && m > 0 {
                        let xhat = (Double(data[k]) - mean[c]) * invStd
                        dataGrad[k] = Float(gamma[c] * invStd * (dy - sumDy / m - xhat * sumDyXhat / m))
                    } else {
                        dataGrad[k] = Float(gamma[c] * invStd * dy)
                    }
                }
            }
        }
        return (dGamma, dBeta)
    }

    /// Gradient of `pooling` with respect to its data. Max pooling sends each output's gradient to
    /// the first largest element of its window (row by row, as MXNet's CPU kernel and oneDNN pick
    /// it); average pooling spreads it evenly over the window's real elements with the forward
    /// divisor; sum pooling copies it to each.
    static func poolingBackward(_ plan: PoolingPlan, data: UnsafeBufferPointer<Float>, outGrad: UnsafeBufferPointer<Float>,
                                dataGrad: UnsafeMutableBufferPointer<Float>) {
        let g = plan.geometry
        let (ih, iw) = (g.input[0], g.input[1]), (oh, ow) = (g.output[0], g.output[1])
        var acc = [Double](repeating: 0, count: dataGrad.count)
        for nc in 0..<(g.batch * g.inChannels) {
            let base = nc * ih * iw
            for y in 0..<oh {
                for x in 0..<ow {
                    let y0 = y * g.stride[0] - g.pad[0], x0 = x * g.stride[1] - g.pad[1]
                    let y1 = min(y0 + g.kernel[0], ih + g.pad[0]), x1 = min(x0 + g.kernel[1], iw + g.pad[1])
                    let paddedArea = (y1 - y0) * (x1 - x0)
                    let ys = max(y0, 0), xs = max(x0, 0), ye = max(ys, min(y1, ih)), xe = max(xs, min(x1, iw))
                    let dy = Double(outGrad[(nc * oh + y) * ow + x])
                    switch plan.poolType {
                    case .max:
                        var best = -Float.greatestFiniteMagnitude, at = -1
                        for yy in ys..<ye { for xx in xs..<xe where at < 0 || data[base + yy * iw + xx] > best {
                            best = data[base + yy * iw + xx]
                            at = base + yy * iw + xx
                        } }
                        if at >= 0 { acc[at] += dy }
                    case .avg, .sum, .lp:
                        let area = plan.countIncludePad ? paddedArea : (ye - ys) * (xe - xs)
                        let share = plan.poolType == .sum ? dy : (area > 0 ? dy / Double(area) : 0)
                        for yy in ys..<ye { for xx in xs..<xe { acc[base + yy * iw + xx] += share } }
                    }
                }
            }
        }
        store(acc, dataGrad)
    }

    /// Σ over batch and plane of a (batch, channels, plane) array, per channel.
    static func channelSums(_ a: UnsafeBufferPointer<Float>, batch: Int, channels: Int, plane: Int) -> [Double] {
        var s = [Double](repeating: 0, count: channels)
        for n in 0..<batch { for c in 0..<channels { for k in 0..<plane { s[c] += Double(a[(n * channels + c) * plane + k]) } } }
        return s
    }

    /// Writes accumulated values into a wanted gradient buffer.
    static func store(_ values: [Double], _ buffer: UnsafeMutableBufferPointer<Float>?) {
        guard let buffer else { return }
        for i in 0..<min(values.count, buffer.count) { buffer[i] = Float(values[i]) }
    }
}
