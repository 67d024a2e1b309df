import KilnCore
import KilnEngine
import KilnEngineCore
import Testing

@Suite struct MemoryPlannerTests {
    /// The file's example: a and c never live together and share bytes; b needs its own.
    @Test func disjointLifetimesShareBytes() {
        let plan = MemoryPlanner.plan([
            Lifetime(id: 0, bytes: 4096, first: 0, last: 1),
            Lifetime(id: 1, bytes: 2048, first: 1, last: 3),
            Lifetime(id: 2, bytes: 4096, first: 3, last: 4),
        ])
        #expect(plan.offsets[0] == plan.offsets[2])
        #expect(plan.arenaBytes == 6144 && plan.totalBytes == 10240)
    }

    /// A long chain (each value lives from its op to the next) needs two buffers, not one per value;
    /// lifetimes starting before step 0 are placed too.
    @Test func aChainReusesTwoBuffers() {
        let chain = (0..<5000).map { Lifetime(id: $0, bytes: 1000, first: $0 - 1, last: $0) }
        let plan = MemoryPlanner.plan(chain)
        #expect(plan.arenaBytes == 2 * 1024 && plan.offsets.count == 5000)
        for k in 1..<5000 { #expect(plan.offsets[k] != plan.offsets[k - 1]) }
    }

    /// Random lifetimes: buffers alive together never overlap in bytes, every offset is aligned, and
    /// the arena is never larger than the sum.
    @Test(arguments: 0..<20)
    func livingBuffersNeverOverlap(seed: Int) {
        var rng = SplitMix64(seed: UInt64(seed) &+ 1)
        let items = (0..<40).map { i -> Lifetime in
            let first = Int(rng.next() % 30)
            return Lifetime(id: i, bytes: 1 + Int(rng.next() % 10_000), first: first, last: first + Int(rng.next() % 8))
        }
        let plan = MemoryPlanner.plan(items)
        for a in items {
            let oa = plan.offsets[a.id] ?? -1
            #expect(oa >= 0 && oa % MemoryPlanner.alignment == 0)
            #expect(oa + a.bytes <= plan.arenaBytes)
            for b in items where b.id > a.id && a.overlaps(b) {
                let ob = plan.offsets[b.id] ?? -1
                #expect(oa + a.bytes <= ob || ob + b.bytes <= oa, "\(a) and \(b) overlap at \(oa), \(ob)")
            }
        }
        #expect(plan.arenaBytes <= plan.totalBytes)
    }
}
