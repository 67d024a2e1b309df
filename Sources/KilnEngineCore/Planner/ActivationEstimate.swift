import KilnCore

// An estimate of an engine group's activation memory, from the IR alone, before lowering.
//
// Lowering creates primitives and may time convolution algorithms, which takes seconds on large
// shapes; a shape that cannot fit should be refused before that. Each computed value lives from the
// op that writes it to the last op that reads it (the group's outputs to the end), and the memory
// planner places them as it places the lowered buffers. The group's inputs count too: lowering copies
// them into the layout the first primitive chose. Channels are counted rounded up to the block a
// blocked layout uses (16: a 3-channel image in nChw16c takes 16 channels' bytes). Scratchpads are
// not known before lowering, so the real arena may still be larger; the plan runtime checks the
// real size before allocating it.
//
// ```
// op:        0     1     2          values:  %1 = conv0(%0)   lives 0...1
// %1 conv0   [=====]                         %2 = relu0(%1)   lives 1...2
// %2 relu0         [=====]                   %3 = fc0(%2)     lives 2...end (output)
// %3 fc0                 [====]    estimate: planned arena of %1, %2, %3
// ```

extension EngineIR {
    /// Bytes the group's computed values and its inputs' copies need at `elementSize` bytes an
    /// element, axis 1 of 3-or-more-axis values rounded up to `channelBlock`, placed by the
    /// ``MemoryPlanner`` by lifetime; nil when a size overflows `Int`.
    public func estimatedActivationBytes(elementSize: Int = 4, channelBlock: Int = 16) -> Int? {
        var first: [Int: Int] = [:], last: [Int: Int] = [:]
        for (k, op) in ops.enumerated() {
            first[op.output] = min(first[op.output] ?? k, k)
            last[op.output] = max(last[op.output] ?? k, k)
            for v in op.reads where values[v].inputName != nil || first[v] != nil {
                first[v] = min(first[v] ?? k, k)
                last[v] = max(last[v] ?? k, k)
            }
        }
        for v in outputs where first[v] != nil { last[v] = ops.count }
        func bytes(_ shape: Shape) -> Int? {
            var dims = shape.dims
            if dims.count >= 3, channelBlock > 1 { dims[1] = (dims[1] + channelBlock - 1) / channelBlock * channelBlock }
            return Shape(dims).byteCount(of: .uint8).flatMap { n in
                let (size, overflow) = n.multipliedReportingOverflow(by: elementSize)
                return overflow ? nil : size
            }
        }
        var lifetimes: [Lifetime] = []
        for (v, start) in first.sorted(by: { $0.key < $1.key }) {
            guard let size = bytes(values[v].shape) else { return nil }
            lifetimes.append(Lifetime(id: v, bytes: size, first: start, last: last[v] ?? start))
        }
        let total = totalBytes(lifetimes.map { Optional($0.bytes) })
        guard total != nil else { return nil }
        return MemoryPlanner.plan(lifetimes).arenaBytes
    }
}
