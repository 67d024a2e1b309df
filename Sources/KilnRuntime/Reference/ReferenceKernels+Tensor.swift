import KilnCore
import KilnGraph

// Reference kernels of the tensor family. Data movement is an ElementMapKernel: a map from output
// to input elements, gathered forward (any dtype, raw bytes, one element at a time) and scattered
// back for gradients; sum and mean accumulate in Double and broadcast their gradient back.
extension ReferenceKernels {
    static var tensor: [String: KernelFactory] {
        [
            "Flatten": sameOrderCopy,
            "Reshape": sameOrderCopy,
            "expand_dims": sameOrderCopy,
            "transpose": transpose,
            "Concat": concat,
            "SliceChannel": split,
            "slice_axis": sliceAxis,
            "Pad": pad,
            "sum": reduction(mean: false),
            "mean": reduction(mean: true),
        ]
    }

    /// Flatten, Reshape and expand_dims keep C order: output element `i` is input element `i`.
    static let sameOrderCopy: KernelFactory = { sig in
        let inDims = sig.inputShapes[0].dims
        let outStrides = sig.outputShapes[0].strides
        return ElementMapKernel { _, c in
            let flat = zip(c, outStrides).reduce(0) { $0 + $1.0 * $1.1 }
            return .init(input: 0, coordinates: ElementGather.unravel(flat, inDims))
        }
    }

    /// out[c] = in[c permuted back]: output axis i is input axis axes[i].
    static let transpose: KernelFactory = { sig in
        let p = try TransposeParameters(sig.node, input: sig.inputShapes[0])
        return ElementMapKernel { _, c in
            var source = [Int](repeating: 0, count: c.count)
            for (i, axis) in p.axes.enumerated() { source[axis] = c[i] }
            return .init(input: 0, coordinates: source)
        }
    }

    /// The output coordinate along the axis picks the input whose range holds it: the last input
    /// starting at or before it (inputs of extent 0 start where the next one does). A binary search,
    /// as a scan of the inputs for every element made a Concat of thousands of inputs take tens of seconds.
    static let concat: KernelFactory = { sig in
        let p = try ConcatParameters(sig.node, inputs: sig.inputShapes)
        let starts = sig.inputShapes.reduce(into: [0]) { $0.append(($0.last ?? 0) + $1[p.axis]) }
        let count = sig.inputShapes.count
        return ElementMapKernel { _, c in
            let x = c[p.axis]
            guard x >= 0 && x < starts[count] else { return nil }
            var k = 0, end = count  // starts[k] <= x < starts[end]
            while end - k > 1 {
                let mid = (k + end) / 2
                if starts[mid] <= x { k = mid } else { end = mid }
            }
            var source = c
            source[p.axis] -= starts[k]
            return .init(input: k, coordinates: source)
        }
    }

    /// Part k holds the input's range [k*e, (k+1)*e) along the axis, which a squeezed part has dropped.
    static let split: KernelFactory = { sig in
        let p = try SplitParameters(sig.node, input: sig.inputShapes[0])
        return ElementMapKernel { k, c in
            var source = c
            if p.squeeze { source.insert(k, at: p.axis) } else { source[p.axis] += k * p.partExtent }
            return .init(input: 0, coordinates: source)
        }
    }

    static let sliceAxis: KernelFactory = { sig in
        let p = try SliceAxisParameters(sig.node, input: sig.inputShapes[0])
        return ElementMapKernel { _, c in
            var source = c
            source[p.axis] += p.begin
            return .init(input: 0, coordinates: source)
        }
    }

    /// Each axis maps its output index to an input index (``PadParameters/sourceIndex(_:axis:extent:)``);
    /// an element any axis maps to nothing is the constant. The gradient of the input is thus the
    /// crop of the output gradient plus, in edge and reflect modes, the border gradients added into
    /// the elements the border copied (MXNet's pad.cc backward does the same).
    static let pad: KernelFactory = { sig in
        let input = sig.inputShapes[0]
        let p = try PadParameters(sig.node, input: input)
        let fill = ElementGather.elementBytes(p.value, sig.outputTypes[0])
        return ElementMapKernel(fill: fill) { _, c in
            var source = c
            for axis in c.indices {
                guard let j = p.sourceIndex(c[axis], axis: axis, extent: input[axis]) else { return nil }
                source[axis] = j
            }
            return .init(input: 0, coordinates: source)
        }
    }

    /// Every input element adds into the output element at its coordinates with reduced axes set to 0;
    /// backward gives each input element its output element's gradient (divided by the count for mean).
    static func reduction(mean: Bool) -> KernelFactory {
        { sig in
            let input = sig.inputShapes[0]
            let p = try ReductionParameters(sig.node, input: input)
            let keptStrides = p.keptShape(input).strides
            let count = p.reductionSize(input)
            func target(_ flat: Int) -> Int {
                let c = ElementGather.unravel(flat, input.dims)
                var t = 0
                for axis in c.indices where !p.reduced[axis] { t += c[axis] * keptStrides[axis] }
                return t
            }
            return ClosureGradientKernel(forward: { inputs, outputs, _ in
                var totals = [Double](repeating: 0, count: outputs[0].elementCount)
                for flat in 0..<inputs[0].elementCount { totals[target(flat)] += inputs[0].element(flat) }
                for i in totals.indices {
                    // A mean over nothing is NaN, as 0/0 in numpy.
                    outputs[0].setElement(i, mean ? totals[i] / Double(count) : totals[i])
                }
            }, backward: { _, _, outputGradients, inputGradients, needed in
                guard needed[0] else { return }
                let g = outputGradients[0]
                for flat in 0..<inputGradients[0].elementCount {
                    let v = g.element(target(flat))
                    inputGradients[0].setElement(flat, mean ? v / Double(count) : v)
                }
            })
        }
    }
}
