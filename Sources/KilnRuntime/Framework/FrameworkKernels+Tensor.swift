import KilnCore
import KilnGraph

// Framework kernels of the tensor family. Ops that keep C order are views; slicing, splitting and
// concatenation copy contiguous runs; transpose, Concat (float32) and sum/mean (float32, trailing
// axes) run oneDNN primitives built at bind. Configurations oneDNN cannot describe or does not
// vectorize use Swift loops, and reductions of other dtypes the reference kernel.
extension FrameworkKernels {
    static var tensor: [String: KernelFactory] {
        [
            "Flatten": view,
            "Reshape": view,
            "expand_dims": view,
            "transpose": transpose,
            "Concat": concat,
            "SliceChannel": split,
            "slice_axis": sliceAxis,
            "Pad": { try PadKernel($0) },
            "sum": reduction(mean: false),
            "mean": reduction(mean: true),
        ]
    }

    /// The output is the input's buffer under the bound output shape: no copy.
    static let view: KernelFactory = { sig in
        let shape = sig.outputShapes[0]
        return ClosureKernel { inputs, outputs, _ in outputs[0] = try inputs[0].reshaped(shape) }
    }

    static let transpose: KernelFactory = { sig in
        let input = sig.inputShapes[0], type = sig.inputTypes[0]
        let p = try TransposeParameters(sig.node, input: input)
        let out = p.outputShape(input)
        let inStrides = input.strides
        let gatherStrides = p.axes.map { inStrides[$0] }
        // Permutations that keep an innermost run contiguous are plain copies of runs; others go to
        // oneDNN's reorder, which has vectorized kernels for them.
        let innerRun = RunCopy.coalesce(dims: out.dims, strides: gatherStrides).1.last == 1
        if !innerRun, out.rank > 0, out.elementCount > 0, DNNL.canDescribe(type, rank: out.rank) {
            return try DNNLTransposeKernel(sig, axes: p.axes)
        }
        return ClosureKernel { inputs, outputs, _ in
            inputs[0].withUnsafeBytes { src in
                outputs[0].withUnsafeMutableBytes { dst in
                    guard let s = src.baseAddress, let d = dst.baseAddress else { return }
                    RunCopy.gather(dims: out.dims, strides: gatherStrides, elementSize: type.byteSize, from: s, to: d)
                }
            }
        }
    }

    static let concat: KernelFactory = { sig in
        let p = try ConcatParameters(sig.node, inputs: sig.inputShapes)
        if sig.outputTypes[0] == .float32, sig.inputShapes.allSatisfy({ $0.elementCount > 0 }),
           DNNL.canDescribe(.float32, rank: sig.outputShapes[0].rank) {
            return try DNNLConcatKernel(sig, axis: p.axis)
        }
        // Input k fills, in each outer block of the output, the run that starts at its offset.
        let size = sig.outputTypes[0].byteSize
        let outRun = AxisSplit(sig.outputShapes[0], axis: p.axis)
        let parts = sig.inputShapes.map { AxisSplit($0, axis: p.axis) }
        let offsets = parts.reduce(into: [0]) { $0.append(($0.last ?? 0) + $1.extent * $1.inner) }
        return ClosureKernel { inputs, outputs, _ in
            withRawPointers(inputs) { sources in
                outputs[0].withUnsafeMutableBytes { dst in
                    guard let d = dst.baseAddress else { return }
                    let outStride = outRun.extent * outRun.inner * size
                    for (k, part) in parts.enumerated() {
                        let run = part.extent * part.inner * size
                        RunCopy.runs(count: part.outer, runBytes: run, from: sources[k], srcStride: run,
                                     to: d + offsets[k] * size, dstStride: outStride)
                    }
                }
            }
        }
    }

    /// Part k is, in each outer block, the run at k parts into the axis.
    static let split: KernelFactory = { sig in
        let input = sig.inputShapes[0]
        let p = try SplitParameters(sig.node, input: input)
        let size = sig.inputTypes[0].byteSize
        let whole = AxisSplit(input, axis: p.axis)
        let run = p.partExtent * whole.inner * size
        return ClosureKernel { inputs, outputs, _ in
            inputs[0].withUnsafeBytes { src in
                guard let s = src.baseAddress else { return }
                for k in 0..<p.count {
                    outputs[k].withUnsafeMutableBytes { dst in
                        guard let d = dst.baseAddress else { return }
                        RunCopy.runs(count: whole.outer, runBytes: run, from: s + k * run, srcStride: whole.extent * whole.inner * size,
                                     to: d, dstStride: run)
                    }
                }
            }
        }
    }

    static let sliceAxis: KernelFactory = { sig in
        let input = sig.inputShapes[0]
        let p = try SliceAxisParameters(sig.node, input: input)
        let size = sig.inputTypes[0].byteSize
        let whole = AxisSplit(input, axis: p.axis)
        let run = (p.end - p.begin) * whole.inner * size
        return ClosureKernel { inputs, outputs, _ in
            inputs[0].withUnsafeBytes { src in
                outputs[0].withUnsafeMutableBytes { dst in
                    guard let s = src.baseAddress, let d = dst.baseAddress else { return }
                    RunCopy.runs(count: whole.outer, runBytes: run, from: s + p.begin * whole.inner * size,
                                 srcStride: whole.extent * whole.inner * size, to: d, dstStride: run)
                }
            }
        }
    }

    /// float32: oneDNN's reduction where it is vectorized (trailing axes), Swift rows otherwise; a
    /// reduction over nothing is a view. Other dtypes and empty arrays use the reference kernel.
    static func reduction(mean: Bool) -> KernelFactory {
        { sig in
            let input = sig.inputShapes[0]
            let p = try ReductionParameters(sig.node, input: input)
            guard sig.inputTypes[0] == .float32, input.elementCount > 0, input.rank > 0,
                  DNNL.canDescribe(.float32, rank: input.rank) else {
                return try ReferenceKernels.reduction(mean: mean)(sig)
            }
            if p.reductionSize(input) == 1 {
                let shape = sig.outputShapes[0]
                return ClosureKernel { inputs, outputs, _ in outputs[0] = try inputs[0].reshaped(shape) }
            }
            if ReductionGroups(input, p).reducesTrailingAxesOnly {
                return try DNNLReductionKernel(sig, parameters: p, mean: mean)
            }
            return ReductionRowsKernel(sig, parameters: p, mean: mean)
        }
    }
}
