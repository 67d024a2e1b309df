// The cursor arithmetic of MXNet 1.9's NDArrayIter (python/mxnet/io/io.py), over example indices.
//
// The cursor starts one batch before the data and moves one batch per call. How the last, short
// batch ends a pass depends on the mode; 10 examples in batches of 3:
//
//     pad:       [0 1 2] [3 4 5] [6 7 8] [9 0 1] pad 2      (filled from the start of the order)
//     discard:   [0 1 2] [3 4 5] [6 7 8]                    ([9] is dropped)
//     rollOver:  [0 1 2] [3 4 5] [6 7 8]                    ([9] is kept for the next pass)
//       next:    [9 0 1] pad 1  [2 3 4] [5 6 7]             (MXNet reports the rolled-over count as pad)
//
// Working on indices lets every iterator gather its own arrays (float, uint8 images, ...) and
// report which examples a batch holds.

/// How an iterator ends a pass whose examples do not fill the last batch (MXNet's
/// `last_batch_handle`).
public enum LastBatchHandling: String, Sendable, CaseIterable {
    /// Fill the last batch with examples from the start of the pass and report their count as `pad`.
    case pad
    /// Drop the examples that do not fill a batch.
    case discard
    /// Keep them and put them first in the next pass (`roll_over`).
    case rollOver = "roll_over"
}

/// Which examples each batch holds, pass after pass.
struct BatchSchedule {
    let count: Int
    let batchSize: Int
    let lastBatch: LastBatchHandling
    /// The order of the current pass (examples' indices in the data set).
    private(set) var order: [Int]
    /// Position of the current batch's first example in `order`; negative for a rolled-over batch.
    private var cursor: Int
    /// The examples of a short last batch kept for the next pass (MXNet's `_cache_data`).
    private var rolledOver: [Int]?

    init(count: Int, batchSize: Int, lastBatch: LastBatchHandling, order: [Int]? = nil) {
        self.count = count
        self.batchSize = batchSize
        self.lastBatch = lastBatch
        self.order = order ?? Array(0..<count)
        cursor = -batchSize
    }

    /// Starts a new pass with `newOrder` (or the same order). A short batch rolled over from the
    /// pass that just ended comes first.
    mutating func reset(order newOrder: [Int]? = nil) {
        if let newOrder { order = newOrder }
        if lastBatch == .rollOver && count - batchSize < cursor && cursor < count {
            cursor = cursor - count - batchSize
        } else {
            cursor = -batchSize
        }
    }

    /// Starts a new pass and forgets any rolled-over examples (MXNet's `hard_reset`).
    mutating func hardReset(order newOrder: [Int]? = nil) {
        if let newOrder { order = newOrder }
        cursor = -batchSize
        rolledOver = nil
    }

    /// The examples of the next batch and how many of them are padding, or nil at the end of the pass.
    mutating func next() throws -> (indices: [Int], pad: Int)? {
        cursor += batchSize
        guard cursor < count else { return nil }
        if lastBatch == .rollOver && -batchSize < cursor && cursor < 0 {
            let kept = rolledOver ?? []
            rolledOver = nil
            let fresh = cursor + batchSize
            guard fresh <= count else {
                // MXNet fails here too (its slice runs past the data).
                throw KilnDataError.invalidArgument(
                    "Cannot roll over: the batch of \(batchSize) needs \(fresh) new examples after the \(kept.count) rolled over, but the data holds only \(count)")
            }
            return (kept + order[0..<fresh], -cursor)
        }
        if lastBatch == .pad && cursor + batchSize > count {
            let pad = cursor + batchSize - count
            let filler = (0..<pad).map { order[$0 % count] }
            return (Array(order[cursor..<count]) + filler, pad)
        }
        let end = Swift.min(cursor + batchSize, count)
        let indices = Array(order[cursor..<end])
        if indices.count != batchSize {
            rolledOver = indices
            return nil
        }
        return (indices, 0)
    }
}
