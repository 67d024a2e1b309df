// DataLoader: a data set's examples in batches, loaded on worker threads ahead of use.
//
// Each pass (epoch) is planned up front on the caller's thread, so the plan does not depend on the
// workers: the order (shuffled from seed and epoch), then batches of indices.
//
//     order 3 0 4 1 2, batch 2:   [3 0] [4 1] [2]   keep | discard drops [2] | rollover carries [2]
//                                                          to the next pass | pad gives [2 3] pad 1
//
// Batch k is then made by whichever worker takes it: item i is read with the generator of
// (seed, epoch, i), and the items are stacked. Batches are handed out in order k = 0, 1, 2, ...,
// and at most `prefetch` of them are made ahead of the consumer. With 0 workers, the caller's thread
// makes each batch when asked. Either way the batches are the same.
import Foundation
import KilnCore

/// Batches from a ``Dataset`` (Gluon's `DataLoader`), made on worker threads ahead of use, and
/// usable as a ``DataIter`` (so `Module.fit` can take it).
///
/// Batches are deterministic for a given `seed`: the same with 0 or any number of workers, because
/// the order of each pass comes from `seed` and the epoch, and each example's random transforms
/// from `seed`, the epoch and its index. Each batch's `data` holds the stacked data (batch, ...)
/// and `label` the stacked labels; `index` holds the examples' indices in the data set.
///
/// ```
/// let loader = try DataLoader(dataset: cifar.transformFirst(augment), batchSize: 128, shuffle: true,
///                             numWorkers: 2, seed: 1)
/// while let batch = try loader.next() { ... }
/// loader.reset()                       // the next epoch
/// ```
public final class DataLoader: DataIter {
    /// How a pass ends when its examples do not fill the last batch.
    public enum LastBatch: String, Sendable, CaseIterable {
        /// Yield the short batch (Gluon's `keep`, the default). Its arrays have fewer rows than
        /// `batchSize`.
        case keep
        /// Drop it.
        case discard
        /// Put its examples first in the next pass (Gluon's `rollover`).
        case rollover
        /// Fill it from the start of the pass and report the filler's count as `pad`, as MXNet's
        /// iterators do (not in Gluon; for `Module`, which binds a fixed batch size).
        case pad
    }

    public let dataset: any Dataset
    public let batchSize: Int
    public let shuffle: Bool
    public let lastBatch: LastBatch
    public let numWorkers: Int
    public let seed: UInt64
    /// How many batches workers may make ahead of the consumer.
    public let prefetch: Int
    public let provideData: [DataDescription]
    public let provideLabel: [DataDescription]
    /// The current pass, counted from 0; ``reset()`` moves to the next once a pass has begun.
    public private(set) var epoch = 0

    private let names: (data: String, label: String)
    /// Examples left at the end of a completed pass under `.rollover`.
    private var carried: [Int] = []
    private var pass: Pass?

    /// A loader of `dataset` in batches of `batchSize`.
    ///
    /// - Parameters:
    ///   - numWorkers: threads that make batches ahead of use; 0 makes them on the calling thread.
    ///   - seed: the source of the shuffle order and of each example's random transforms.
    ///   - prefetch: batches made ahead of the consumer; by default `2 * numWorkers`, as in Gluon.
    /// - Throws: if `batchSize` or `numWorkers` is out of range, or the data set is empty. The first
    ///   example is read once to describe the batches' shapes.
    public init(dataset: some Dataset, batchSize: Int, shuffle: Bool = false, lastBatch: LastBatch = .keep,
                numWorkers: Int = 0, seed: UInt64 = 0, prefetch: Int? = nil,
                dataName: String = "data", labelName: String = "softmax_label") throws {
        guard batchSize > 0 else {
            throw KilnDataError.invalidArgument("DataLoader needs a positive batch size, not \(batchSize)")
        }
        guard numWorkers >= 0 else {
            throw KilnDataError.invalidArgument("DataLoader needs 0 or more workers, not \(numWorkers)")
        }
        guard dataset.count > 0 else {
            throw KilnDataError.invalidArgument("DataLoader needs a data set with at least one example")
        }
        self.dataset = dataset
        self.batchSize = batchSize
        self.shuffle = shuffle
        self.lastBatch = lastBatch
        self.numWorkers = numWorkers
        self.seed = seed
        self.prefetch = Swift.max(1, prefetch ?? 2 * numWorkers)
        names = (dataName, labelName)
        var generator = SampleGenerator(seed: seed, epoch: 0, index: 0)
        let first = try dataset.item(at: 0, using: &generator)
        provideData = [DataDescription(name: dataName, shape: Shape([batchSize] + first.data.shape.dims),
                                       dtype: first.data.dtype)]
        provideLabel = [DataDescription(name: labelName, shape: Shape([batchSize] + first.label.shape.dims),
                                        dtype: first.label.dtype)]
    }

    deinit { pass?.prefetcher?.cancel() }

    /// The workers of the current pass, if any (for tests of their lifetime).
    var currentPrefetcher: Prefetcher? { pass?.prefetcher }

    /// The number of batches of the current pass (or of the next, if none has begun).
    public var batchCount: Int {
        if let pass { return pass.plan.count }
        return makePlan().batches.count
    }

    /// Moves to the next epoch, unless the current pass has not yet handed out a batch.
    public func reset() {
        guard let current = pass, current.position > 0 || current.plan.isEmpty else { return }
        current.prefetcher?.cancel()
        pass = nil
        epoch += 1
        if numWorkers > 0 { beginPass() }   // start making the next pass's batches now
    }

    /// The next batch, or nil at the end of the pass.
    public func next() throws -> DataBatch? {
        if pass == nil { beginPass() }
        guard let current = pass else { return nil }
        guard current.position < current.plan.count else {
            commitLeftover(of: current)
            return nil
        }
        let k = current.position
        current.position += 1
        if current.position == current.plan.count { commitLeftover(of: current) }
        if let prefetcher = current.prefetcher { return try prefetcher.take(k) }
        return try current.maker.make(current.plan[k])
    }

    /// Under `.rollover`, keeps the examples left by a pass whose batches have all been handed out.
    private func commitLeftover(of current: Pass) {
        if let leftover = current.leftover {
            carried = leftover
            current.leftover = nil
        }
    }

    // MARK: Planning

    private func makePlan() -> (batches: [BatchPlan], leftover: [Int]?) {
        let order = shuffle ? shuffledIndices(count: dataset.count, seed: seed, epoch: epoch)
                            : Array(0..<dataset.count)
        let all = carried + order
        var batches: [BatchPlan] = []
        var start = 0
        while start + batchSize <= all.count {
            batches.append(BatchPlan(indices: Array(all[start..<(start + batchSize)]), pad: 0))
            start += batchSize
        }
        let tail = Array(all[start...])
        guard !tail.isEmpty else { return (batches, nil) }
        switch lastBatch {
        case .keep: batches.append(BatchPlan(indices: tail, pad: 0))
        case .discard: break
        case .rollover: return (batches, tail)
        case .pad:
            let fill = batchSize - tail.count
            batches.append(BatchPlan(indices: tail + (0..<fill).map { all[$0 % all.count] }, pad: fill))
        }
        return (batches, nil)
    }

    private func beginPass() {
        let (batches, leftover) = makePlan()
        // Examples carried into this pass are used now; if the pass is abandoned they are not
        // carried again (as in Gluon).
        carried = []
        let maker = BatchMaker(dataset: dataset, seed: seed, epoch: epoch, names: names)
        let prefetcher = numWorkers > 0
            ? Prefetcher(plan: batches, maker: maker, workers: numWorkers, window: prefetch) : nil
        pass = Pass(plan: batches, leftover: leftover, maker: maker, prefetcher: prefetcher)
    }
}

/// The examples of one batch and how many of them are filler.
struct BatchPlan: Sendable {
    var indices: [Int]
    var pad: Int
}

/// The state of one pass over the data.
private final class Pass {
    let plan: [BatchPlan]
    var leftover: [Int]?
    let maker: BatchMaker
    let prefetcher: Prefetcher?
    /// The next batch to hand out.
    var position = 0

    init(plan: [BatchPlan], leftover: [Int]?, maker: BatchMaker, prefetcher: Prefetcher?) {
        self.plan = plan
        self.leftover = leftover
        self.maker = maker
        self.prefetcher = prefetcher
    }
}

/// Reads and stacks the examples of a batch; safe to call from any thread.
struct BatchMaker: Sendable {
    let dataset: any Dataset
    let seed: UInt64
    let epoch: Int
    let names: (data: String, label: String)

    func make(_ plan: BatchPlan) throws -> DataBatch {
        var data: [NDArray] = []
        var labels: [NDArray] = []
        data.reserveCapacity(plan.indices.count)
        labels.reserveCapacity(plan.indices.count)
        for i in plan.indices {
            var generator = SampleGenerator(seed: seed, epoch: epoch, index: i)
            let sample = try dataset.item(at: i, using: &generator)
            data.append(sample.data)
            labels.append(sample.label)
        }
        return DataBatch(data: [try NDArray.stacking(data, what: "the '\(names.data)' of examples \(plan.indices)")],
                         label: [try NDArray.stacking(labels, what: "the '\(names.label)' of examples \(plan.indices)")],
                         pad: plan.pad, index: plan.indices)
    }
}
