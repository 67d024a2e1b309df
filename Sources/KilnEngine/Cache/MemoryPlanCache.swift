import Synchronization

// The process's plan cache: compiled cores by key, so that binding the same group again in this
// process (another executor, a batch size seen before) shares the primitives and packed weights
// instead of compiling. It sits in front of the disk cache, with the same key.
//
// ```
// compile(group) ─key─> memory? ──yes──> new plan over the shared core (own arena and memory objects)
//                          └─no──> disk? ──yes──> lower the stored IR ─┐
//                                    └─no──> build IR, passes, lower ──┴─> remember the core
// ```

final class MemoryPlanCache: Sendable {
    static let shared = MemoryPlanCache(capacity: 64)

    private struct State {
        var cores: [[UInt8]: CompiledCore] = [:]
        /// Keys from least to most recently used.
        var order: [[UInt8]] = []
    }

    private let state = Mutex(State())
    let capacity: Int

    init(capacity: Int) { self.capacity = capacity }

    func core(for key: [UInt8]) -> CompiledCore? {
        state.withLock { s in
            guard let core = s.cores[key] else { return nil }
            s.order.removeAll { $0 == key }
            s.order.append(key)
            return core
        }
    }

    func remember(_ core: CompiledCore, for key: [UInt8]) {
        state.withLock { s in
            if s.cores[key] == nil { s.order.append(key) }
            s.cores[key] = core
            while s.order.count > capacity { s.cores[s.order.removeFirst()] = nil }
        }
    }

    func removeAll() { state.withLock { $0 = State() } }

    var count: Int { state.withLock { $0.cores.count } }
}
