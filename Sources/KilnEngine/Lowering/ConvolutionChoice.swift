import CDNNL
import Foundation
import KilnCore
import KilnRuntime

// Choosing a convolution's algorithm by timing it. oneDNN's fastest direct kernel depends on the
// channel count and the CPU (brgconv in channels-last for few channels, Winograd F(4x4, 3x3) in a
// 16-channel-blocked layout for 64 channels on these cores), and switching layout costs a reorder.
// So at the first compile each 3x3 stride-1 fp32 convolution tries its candidates on zeroed
// buffers, each charged with the reorder its input would need from the layout its producer wrote,
// and keeps the fastest (Winograd must win by 5%: its rounding differs a little from direct).
// The choice is stored in the IR (ConvolutionSpec.algorithm), so cached plans reuse it untimed.
// Whole-plan timing (PlanTuning.swift) then revisits these choices one convolution shape at a time.
//
// ```
// producer wrote nhwc ─┬─ direct (nhwc)                      0.29 ms
//                      ├─ direct in the producer's layout     (same layout: not tried)
//                      └─ reorder nhwc→16c 0.02 + winograd   0.18 ms   <- kept
// ```

/// Times primitives on scratch memory the timing owns, for choosing between candidates at compile.
struct PrimitiveTimer {
    let stream: DNNLStream
    /// Timed runs after one warm-up; the minimum counts.
    var runs = 3

    /// Seconds one execution of `p` takes (the minimum of `runs`), over zeroed buffers for each
    /// argument in `arguments` (the query and index giving each one's descriptor) and the scratchpad.
    func seconds(_ p: DNNLPrimitive, arguments: [(Int32, dnnl_query_t, Int32)]) throws -> Double {
        var descriptors: [(Int32, dnnl_memory_desc_t)] = []
        for (arg, query, index) in arguments {
            guard let md = p.queryMemoryDesc(query, index: index), DNNL.size(md) > 0 else { continue }
            descriptors.append((arg, md))
        }
        if let scratch = p.queryMemoryDesc(dnnl_query_scratchpad_md), DNNL.size(scratch) > 0 {
            descriptors.append((DNNLArg.scratchpad, scratch))
        }
        // The timing buffers are one convolution's source, destination and scratchpad, sized by the
        // input's shape: checked against the memory budget before oneDNN allocates them (a refused
        // candidate is skipped by the caller).
        try MemoryBudget.process.check(bytes: totalBytes(descriptors.map { Optional(DNNL.size($0.1)) }),
                                       for: "timing a convolution's algorithms (its input, output and scratchpad)")
        var memories: [(Int32, DNNLMemory)] = []
        for (arg, md) in descriptors { memories.append((arg, try DNNLMemory(md, pointer: nil, node: "timing"))) }
        return try fastest { try p.execute(memories, stream: stream) }
    }

    /// Seconds a reorder between two layouts takes (0 when they are the same).
    func reorderSeconds(from source: dnnl_memory_desc_t, to target: dnnl_memory_desc_t) throws -> Double {
        if DNNL.equal(source, target) { return 0 }
        let p = try EngineDNNL.reorder(from: source, to: target, node: "timing")
        let from = try DNNLMemory(source, pointer: nil, node: "timing"), to = try DNNLMemory(target, pointer: nil, node: "timing")
        var args: [(Int32, DNNLMemory)] = [(DNNLArg.from, from), (DNNLArg.to, to)]
        if let scratch = p.queryMemoryDesc(dnnl_query_scratchpad_md), DNNL.size(scratch) > 0 {
            args.append((DNNLArg.scratchpad, try DNNLMemory(scratch, pointer: nil, node: "timing")))
        }
        return try fastest { try p.execute(args, stream: stream) }
    }

    /// The minimum seconds of `runs` executions of `body`, after one untimed warm-up.
    private func fastest(_ body: () throws -> Void) throws -> Double {
        let clock = ContinuousClock()
        var best = Double.infinity
        for k in 0...runs {
            let start = clock.now
            try body()
            let d = clock.now - start
            if k > 0 { best = min(best, Double(d.components.seconds) + Double(d.components.attoseconds) * 1e-18) }
        }
        return best
    }
}
