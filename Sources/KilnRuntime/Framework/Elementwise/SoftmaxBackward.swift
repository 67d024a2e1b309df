import CDNNL
import Foundation
import KilnCore
import KilnGraph

/// oneDNN's softmax or logsoftmax backward along dense lines (the (outer, n, 1) view of
/// ``SoftmaxLines`` with inner = 1), from the forward's output y and its gradient dy; a temperature
/// T ≠ 1 then divides dx in place:
/// ```
/// softmax:      dx = y (dy - Σ dy y) / T        log_softmax:  dx = (dy - e^y Σ dy) / T
/// ```
final class SoftmaxBackward {
    let primitive: DNNLPrimitive
    let destination: DNNLMemory, diffDestination: DNNLMemory, diffSource: DNNLMemory
    let arguments: [(Int32, DNNLMemory)]
    let stream: DNNLStream
    let inverseTemperature: Float
    let node: String

    init(_ lines: SoftmaxLines, node: String) throws {
        var desc = try ElementwiseDNNL.plainDesc([lines.outer, lines.n, lines.inner], node: node)
        var diff = desc
        if lines.logarithm {
            var forward = dnnl_logsoftmax_desc_t(), backward = dnnl_logsoftmax_desc_t()
            try DNNL.check(dnnl_logsoftmax_forward_desc_init(&forward, dnnl_forward_training, &desc, 1), "dnnl_logsoftmax_forward_desc_init", node: node)
            try DNNL.check(dnnl_logsoftmax_backward_desc_init(&backward, &diff, &desc, 1), "dnnl_logsoftmax_backward_desc_init", node: node)
            primitive = try withUnsafePointer(to: &backward) { b in
                try withUnsafePointer(to: &forward) { f in
                    try ElementwiseDNNL.backwardPrimitive(b, hint: f, node: node, what: "logsoftmax backward")
                }
            }
        } else {
            var forward = dnnl_softmax_desc_t(), backward = dnnl_softmax_desc_t()
            try DNNL.check(dnnl_softmax_forward_desc_init(&forward, dnnl_forward_training, &desc, 1), "dnnl_softmax_forward_desc_init", node: node)
            try DNNL.check(dnnl_softmax_backward_desc_init(&backward, &diff, &desc, 1), "dnnl_softmax_backward_desc_init", node: node)
            primitive = try withUnsafePointer(to: &backward) { b in
                try withUnsafePointer(to: &forward) { f in
                    try ElementwiseDNNL.backwardPrimitive(b, hint: f, node: node, what: "softmax backward")
                }
            }
        }
        destination = try ElementwiseDNNL.memory(desc, node: node)
        diffDestination = try ElementwiseDNNL.memory(desc, node: node)
        diffSource = try ElementwiseDNNL.memory(desc, node: node)
        arguments = [(DNNLArg.dst, destination), (ElementwiseDNNL.diffDestination, diffDestination), (ElementwiseDNNL.diffSource, diffSource)]
        stream = try DNNLStream(node: node)
        inverseTemperature = Float(1 / lines.temperature)
        self.node = node
    }

    func run(output y: NDArray, gradient dy: NDArray, into dx: inout NDArray) throws {
        try destination.setPointer(y.sourcePointer, node: node)
        try diffDestination.setPointer(dy.sourcePointer, node: node)
        try diffSource.setPointer(dx.destinationPointer, node: node)
        try primitive.execute(arguments, stream: stream)
        if inverseTemperature != 1 {
            let s = inverseTemperature
            dx.withUnsafeMutableBufferPointer(as: Float.self) { d in
                for i in 0..<d.count { d[i] *= s }
            }
        }
    }
}

extension StridedSoftmaxKernel {
    /// Backward along a strided axis, vectorized across the inner positions like the forward:
    /// per outer block, s = Σ over rows of dy·y (or of dy for log_softmax), then each row's dx.
    /// log_softmax's e^y comes from the kernel's oneDNN exp, written into dx first.
    func backward(_ inputs: [NDArray], _ outputs: [NDArray], _ outputGradients: [NDArray],
                  _ inputGradients: inout [NDArray], needed: [Bool]) throws {
        guard needed[0] else { return }
        let (n, inner, outer) = (lines.n, lines.inner, lines.outer)
        let scale = Float(1 / lines.temperature)
        let logarithm = lines.logarithm
        let y = outputs[0], dy = outputGradients[0]
        if logarithm { try exponential.run(source: y.sourcePointer, destination: inputGradients[0].destinationPointer) }
        y.withUnsafeBufferPointer(as: Float.self) { y in
            dy.withUnsafeBufferPointer(as: Float.self) { g in
                inputGradients[0].withUnsafeMutableBufferPointer(as: Float.self) { dx in
                    sums.withUnsafeMutableBufferPointer { s in
                        for o in 0..<outer {
                            let base = o * n * inner
                            for i in 0..<inner { s[i] = 0 }
                            for j in 0..<n {
                                let row = base + j * inner
                                if logarithm {
                                    for i in 0..<inner { s[i] += g[row + i] }
                                } else {
                                    for i in 0..<inner { s[i] += g[row + i] * y[row + i] }
                                }
                            }
                            for j in 0..<n {
                                let row = base + j * inner
                                if logarithm {
                                    for i in 0..<inner { dx[row + i] = (g[row + i] - dx[row + i] * s[i]) * scale }
                                } else {
                                    for i in 0..<inner { dx[row + i] = y[row + i] * (g[row + i] - s[i]) * scale }
                                }
                            }
                        }
                    }
                }
            }
        }
    }
}

/// `SoftmaxOutput` in float32: the softmax kernel's forward, and ``SoftmaxOutputRule``'s gradient in
/// Swift loops (the head gradient is ignored, as in MXNet, unless `out_grad`). Each line's class and scale are read once
/// into buffers of `inner` entries made at bind, so the loops over a block's rows stay contiguous:
/// ```
/// multi_output, data (N, C, HW):  for each n: class[i], scale[i] for i < HW;  then for each c:
///                                 dx[n, c, i] = (y[n, c, i] - (c == class[i] ? on : off)) · scale[i]
/// ```
final class SoftmaxOutputKernel: Kernel {
    let softmax: any Kernel
    let rule: SoftmaxOutputRule
    var classes: [Int], scales: [Float]

    init(softmax: any Kernel, rule: SoftmaxOutputRule) {
        self.softmax = softmax
        self.rule = rule
        classes = [Int](repeating: 0, count: rule.lines.inner)
        scales = [Float](repeating: 0, count: rule.lines.inner)
    }

    func forward(_ inputs: [NDArray], _ outputs: inout [NDArray], isTrain: Bool) throws {
        try softmax.forward(inputs, &outputs, isTrain: isTrain)
    }

    func backward(_ inputs: [NDArray], _ outputs: [NDArray], _ outputGradients: [NDArray],
                  _ inputGradients: inout [NDArray], needed: [Bool]) throws {
        guard needed[0] else { return }
        let label = inputs[1], y = outputs[0], dy = outputGradients[0]
        let multiply = rule.multipliesByHeadGradient
        if rule.probabilityLabel {
            let scale = Float(rule.scale(validCount: 0))
            let p = label.dtype == .float32 ? label : label.converted(to: .float32)
            p.withUnsafeBufferPointer(as: Float.self) { p in
                y.withUnsafeBufferPointer(as: Float.self) { y in
                    dy.withUnsafeBufferPointer(as: Float.self) { g in
                        inputGradients[0].withUnsafeMutableBufferPointer(as: Float.self) { dx in
                            for i in 0..<dx.count { dx[i] = (y[i] - p[i]) * scale * (multiply ? g[i] : 1) }
                        }
                    }
                }
            }
            return
        }
        let (outer, n, inner) = (rule.lines.outer, rule.lines.n, rule.lines.inner)
        var valid = 0
        for l in 0..<label.elementCount where SoftmaxOutputRule.classIndex(label.element(l)) != rule.ignoreLabel { valid += 1 }
        let scale = Float(rule.scale(validCount: valid))
        let on = Float(rule.target(0, 0)), off = n > 1 ? Float(rule.target(1, 0)) : 0
        y.withUnsafeBufferPointer(as: Float.self) { y in
            dy.withUnsafeBufferPointer(as: Float.self) { g in
                inputGradients[0].withUnsafeMutableBufferPointer(as: Float.self) { dx in
                    classes.withUnsafeMutableBufferPointer { k in
                        scales.withUnsafeMutableBufferPointer { s in
                            for o in 0..<outer {
                                for i in 0..<inner {
                                    k[i] = SoftmaxOutputRule.classIndex(label.element(o * inner + i))
                                    s[i] = rule.useIgnore && k[i] == rule.ignoreLabel ? 0 : scale
                                }
                                if inner == 1 {
                                    let base = o * n, c = k[0], sc = s[0]
                                    for j in 0..<n {
                                        dx[base + j] = (y[base + j] - (j == c ? on : off)) * sc * (multiply ? g[base + j] : 1)
                                    }
                                    continue
                                }
                                for j in 0..<n {
                                    let row = (o * n + j) * inner
                                    for i in 0..<inner {
                                        dx[row + i] = (y[row + i] - (j == k[i] ? on : off)) * s[i] * (multiply ? g[row + i] : 1)
                                    }
                                }
                            }
                        }
                    }
                }
            }
        }
    }
}
