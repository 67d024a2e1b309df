import Foundation
import KilnCore

/// Worker threads that make a pass's batches ahead of the consumer, at most `window` ahead.
///
/// Workers take batch numbers in order under one lock, make the batch without the lock, and file
/// the result (a batch or the error that made it fail) under its number; the consumer waits for
/// the number it wants. Workers end when every batch is taken or on ``cancel()``.
final class Prefetcher: @unchecked Sendable {
    // All mutable state below is guarded by `condition`.
    private let condition = NSCondition()
    private let plan: [BatchPlan]
    private let maker: BatchMaker
    private let window: Int
    private var nextToMake = 0
    private var nextToTake = 0
    private var results: [Int: Result<DataBatch, any Error>] = [:]
    private var cancelled = false
    private var running = 0

    init(plan: [BatchPlan], maker: BatchMaker, workers: Int, window: Int) {
        self.plan = plan
        self.maker = maker
        self.window = Swift.max(1, window)
        running = Swift.min(workers, plan.count)
        for w in 0..<running {
            let thread = Thread { [self] in self.work() }
            thread.name = "kiln.data.worker.\(w)"
            thread.stackSize = 8 << 20
            thread.start()
        }
    }

    /// Stops the workers after the batches they are making.
    func cancel() {
        condition.lock()
        cancelled = true
        condition.broadcast()
        condition.unlock()
    }

    /// The worker threads that have not yet ended.
    var runningWorkers: Int {
        condition.lock()
        defer { condition.unlock() }
        return running
    }

    /// Batch `k`, waiting until a worker has made it. Batches must be taken in order.
    func take(_ k: Int) throws -> DataBatch {
        condition.lock()
        defer { condition.unlock() }
        precondition(k == nextToTake, "Prefetcher: batch \(k) asked for out of order (expected \(nextToTake))")
        while true {
            if let result = results.removeValue(forKey: k) {
                nextToTake += 1
                condition.broadcast()   // the window moved: a worker may start the next batch
                return try result.get()
            }
            condition.wait()
        }
    }

    private func work() {
        while true {
            condition.lock()
            while !cancelled && nextToMake < plan.count && nextToMake >= nextToTake + window {
                condition.wait()
            }
            if cancelled || nextToMake >= plan.count {
                running -= 1
                condition.unlock()
                return
            }
            let k = nextToMake
            nextToMake += 1
            condition.unlock()

            let result = Result { try maker.make(plan[k]) }

            condition.lock()
            results[k] = result
            condition.broadcast()
            condition.unlock()
        }
    }
}
