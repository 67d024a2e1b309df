import KilnCore
import KilnGraph

// Framework kernels of the tensor family. Ops that keep C order are views; slicing, splitting and
// concatenation copy contiguous runs; transpose, Concat (float32) and sum/mean (float32, trailing
// axes) run oneDNN primitives built at bind. Configurations oneDNN cannot describe or does not
// vectorize use Swift loops, and reductions of other dtypes the reference kernel.
//
// Every op here is linear, so each backward moves the output gradient the other way: a view back,
// the inverse permutation, a split for a join and a join for a split, a crop (plus the borders'
// sums) for Pad, and a broadcast for sum and mean.
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

    /// The output is the input's buffer under the bound output shape, and the input gradient the
    /// output gradient's buffer under the input shape: no copy either way.
    static let view: KernelFactory = { sig in
        let input = sig.inputShapes[0], output = sig.outputShapes[0]
        return ClosureGradientKernel(forward: { inputs, outputs, _ in
            outputs[0] = try inputs[0].reshaped(output)
        }, backward: { _, _, outputGradients, inputGradients, needed in
            if needed[0] { inputGradients[0] = try outputGradients[0].reshaped(input) }
        })
    }

    static let transpose: KernelFactory = { sig in
        let p = try TransposeParameters(sig.node, input: sig.inputShapes[0])
        return try TransposeKernel(input: sig.inputShapes[0], axes: p.axes, type: sig.inputTypes[0], node: sig.node.name)
    }

    /// Forward joins the inputs (oneDNN's concat for float32, runs otherwise); backward splits the
    /// output gradient into the inputs' gradients.
    static let concat: KernelFactory = { sig in
        let p = try ConcatParameters(sig.node, inputs: sig.inputShapes)
        let pieces = AxisPieces(whole: sig.outputShapes[0], axis: p.axis, extents: sig.inputShapes.map { $0[p.axis] },
                                elementSize: sig.outputTypes[0].byteSize)
        var join: DNNLConcatKernel?
        if sig.outputTypes[0] == .float32, sig.inputShapes.allSatisfy({ $0.elementCount > 0 }),
           DNNL.canDescribe(.float32, rank: sig.outputShapes[0].rank) {
            join = try DNNLConcatKernel(sig, axis: p.axis)
        }
        return ClosureGradientKernel(forward: { [join] inputs, outputs, isTrain in
            if let join { return try join.forward(inputs, &outputs, isTrain: isTrain) }
            for k in inputs.indices { pieces.copyIn(k, from: inputs[k], to: &outputs[0]) }
        }, backward: { _, _, outputGradients, inputGradients, needed in
            for k in inputGradients.indices where needed[k] { pieces.copyOut(k, from: outputGradients[0], to: &inputGradients[k]) }
        })
    }

    /// Forward copies part k out of each outer block; backward joins the parts' gradients, as
    /// Concat's forward does (a part that received no gradient joins as its zeros).
    static let split: KernelFactory = { sig in
        let input = sig.inputShapes[0]
        let p = try SplitParameters(sig.node, input: input)
        let pieces = AxisPieces(whole: input, axis: p.axis, extents: [Int](repeating: p.partExtent, count: p.count),
                                elementSize: sig.inputTypes[0].byteSize)
        return ClosureGradientKernel(forward: { inputs, outputs, _ in
            for k in outputs.indices { pieces.copyOut(k, from: inputs[0], to: &outputs[k]) }
        }, backward: { _, _, outputGradients, inputGradients, needed in
            guard needed[0] else { return }
            for k in outputGradients.indices { pieces.copyIn(k, from: outputGradients[k], to: &inputGradients[0]) }
        })
    }

    /// Forward copies the range out of each outer block; backward copies the gradient back into
    /// the range of the zeroed input gradient.
    static let sliceAxis: KernelFactory = { sig in
        let input = sig.inputShapes[0]
        let p = try SliceAxisParameters(sig.node, input: input)
        let pieces = AxisPieces(whole: input, axis: p.axis, ranges: [(p.begin, p.end - p.begin)], elementSize: sig.inputTypes[0].byteSize)
        return ClosureGradientKernel(forward: { inputs, outputs, _ in
            pieces.copyOut(0, from: inputs[0], to: &outputs[0])
        }, backward: { _, _, outputGradients, inputGradients, needed in
            if needed[0] { pieces.copyIn(0, from: outputGradients[0], to: &inputGradients[0]) }
        })
    }

    /// float32: oneDNN's reduction where it is vectorized (trailing axes), Swift rows otherwise; a
    /// reduction over nothing is a view. Other dtypes and empty arrays use the reference kernel.
    /// Backward broadcasts the output gradient over the reduced axes (see ``ReductionWalk``).
    static func reduction(mean: Bool) -> KernelFactory {
        { sig in
            let input = sig.inputShapes[0]
            let p = try ReductionParameters(sig.node, input: input)
            guard sig.inputTypes[0] == .float32, input.elementCount > 0, input.rank > 0,
                  DNNL.canDescribe(.float32, rank: input.rank) else {
                return try ReferenceKernels.reduction(mean: mean)(sig)
            }
            if p.reductionSize(input) == 1 {
                // Sum and mean of one element are that element, and so is their gradient.
                return try view(sig)
            }
            if ReductionGroups(input, p).reducesTrailingAxesOnly {
                return try DNNLReductionKernel(sig, parameters: p, mean: mean)
            }
            return ReductionRowsKernel(sig, parameters: p, mean: mean)
        }
    }
}
