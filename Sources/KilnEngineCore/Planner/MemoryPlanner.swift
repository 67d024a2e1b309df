import KilnCore

// The memory planner: every intermediate buffer (and every primitive's scratchpad) gets an offset
// in one arena, allocated once at compile. A buffer lives from the first step that touches it to the
// last; two buffers may share bytes when their lifetimes do not overlap. Placement is greedy by size
// (largest first, each at the lowest offset free for its whole lifetime), as TFLite's arena planner.
//
// ```
// step:      0    1    2    3    4
// a (4 KiB)  [====]                      offsets:  a 0      c 0      (a and c never live together)
// b (2 KiB)       [=========]                      b 4 KiB
// c (4 KiB)                 [====]       arena 6 KiB instead of 10 KiB
// ```

/// One buffer to place: its size and the steps during which it lives (both ends included).
public struct Lifetime: Equatable, Sendable {
    public let id: Int
    public let bytes: Int
    public let first: Int
    public let last: Int

    public init(id: Int, bytes: Int, first: Int, last: Int) {
        (self.id, self.bytes, self.first, self.last) = (id, bytes, first, last)
    }

    /// Whether the two are alive at a common step.
    public func overlaps(_ o: Lifetime) -> Bool { first <= o.last && o.first <= last }
}

/// Where each buffer lives in the arena.
public struct MemoryPlan: Equatable, Sendable {
    /// Offset of each placed buffer, by id (multiples of ``MemoryPlanner/alignment``).
    public var offsets: [Int: Int]
    /// Bytes the arena needs.
    public var arenaBytes: Int
    /// Bytes all placed buffers would take without reuse.
    public var totalBytes: Int
}

/// The arena planner (see the file's note).
public enum MemoryPlanner {
    /// Every offset and size is rounded up to this many bytes by default (a cache line; oneDNN's
    /// preference). The cuda engine passes 256, the alignment cuDNN and cuBLAS prefer.
    public static let alignment = 64

    /// Places buffers so that no two with overlapping lifetimes share a byte; offsets and sizes are
    /// multiples of `alignment`.
    public static func plan(_ lifetimes: [Lifetime], alignment: Int = MemoryPlanner.alignment) -> MemoryPlan {
        func align(_ n: Int) -> Int { (n + alignment - 1) / alignment * alignment }
        var placed: [(Lifetime, Int)] = []
        var offsets: [Int: Int] = [:]
        var arena = 0
        let order = lifetimes.sorted { ($0.bytes, $1.first, $1.id) > ($1.bytes, $0.first, $0.id) }
        // The placed buffers alive at each step, so that finding those overlapping a new one looks at
        // its own steps only: filtering every placed buffer made a 60,000-op chain quadratic.
        let steps = (lifetimes.map(\.last).max() ?? -1) + 1
        let firstStep = Swift.min(0, lifetimes.map(\.first).min() ?? 0)
        var aliveAt = [[Int]](repeating: [], count: Swift.max(steps - firstStep, 0))
        var stamp = [Int](repeating: -1, count: lifetimes.count)
        for (n, item) in order.enumerated() {
            let size = align(max(item.bytes, 1))
            // Busy ranges during this buffer's life, by offset; take the first gap that fits.
            var overlapping: [Int] = []
            if item.first <= item.last {
                for t in item.first...item.last {
                    for k in aliveAt[t - firstStep] where stamp[k] != n {
                        stamp[k] = n
                        overlapping.append(k)
                    }
                }
            }
            let busy = overlapping.map { (placed[$0].1, align(max(placed[$0].0.bytes, 1))) }.sorted { $0.0 < $1.0 }
            var offset = 0
            for (start, length) in busy {
                if offset + size <= start { break }
                offset = max(offset, start + length)
            }
            if item.first <= item.last { for t in item.first...item.last { aliveAt[t - firstStep].append(placed.count) } }
            placed.append((item, offset))
            offsets[item.id] = offset
            arena = max(arena, offset + size)
        }
        return MemoryPlan(offsets: offsets, arenaBytes: arena, totalBytes: lifetimes.reduce(0) { $0 + align(max($1.bytes, 1)) })
    }
}
