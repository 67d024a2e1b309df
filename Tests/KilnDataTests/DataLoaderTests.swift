import Foundation
import KilnCore
@testable import KilnData
import Testing

/// A data set of `count` 6x5x3 uint8 images whose pixels encode the example's index, labelled by
/// index mod 10, for checking where each row of a batch came from.
func numberedImages(count: Int) throws -> ArrayDataset {
    var pixels: [Double] = []
    for i in 0..<count { for p in 0..<(6 * 5 * 3) { pixels.append(Double((i * 7 + p) % 256)) } }
    return try ArrayDataset(data: NDArray(shape: [count, 6, 5, 3], dtype: .uint8, values: pixels),
                            label: NDArray(shape: [count], values: (0..<count).map { Float($0 % 10) }))
}

/// The augmentation of the CIFAR recipes: pad-and-crop, flip, to tensor, normalize.
let augmentation = Compose([
    RandomCrop(size: 5, padding: 2), RandomFlipLeftRight(), ToTensor(),
    Normalize(mean: [0.5, 0.4, 0.3], std: [0.2, 0.25, 0.3]),
])

/// A data set that counts reads and fails on one index.
struct FailingDataset: Dataset {
    let failing: Int
    var count: Int { 10 }
    func item(at index: Int, using generator: inout SampleGenerator) throws -> Sample {
        if index == failing { throw KilnDataError.invalidArgument("example \(index) is broken") }
        return (NDArray(shape: [1], values: [Float(index)]), NDArray(shape: [], values: [0]))
    }
}

@Suite("Dataset and DataLoader")
struct DataLoaderTests {
    @Test("the same batches with 0 and 2 workers (and 3), for a seed, over epochs, shuffled and augmented",
          arguments: DataLoader.LastBatch.allCases)
    func workersDoNotChangeBatches(lastBatch: DataLoader.LastBatch) throws {
        let dataset = try numberedImages(count: 23).transformFirst(augmentation)
        func epochs(workers: Int, seed: UInt64 = 11) throws -> [[DataBatch]] {
            let loader = try DataLoader(dataset: dataset, batchSize: 4, shuffle: true, lastBatch: lastBatch,
                                        numWorkers: workers, seed: seed)
            var all: [[DataBatch]] = []
            for _ in 0..<3 {
                all.append(try drain(loader))
                loader.reset()
            }
            return all
        }
        let serial = try epochs(workers: 0)
        let two = try epochs(workers: 2)
        let three = try epochs(workers: 3)
        #expect(serial.map(\.count) == two.map(\.count))
        for (e, (a, b)) in zip(serial, two).enumerated() {
            #expect(a.count == b.count && zip(a, b).allSatisfy(identical), "epoch \(e): 0 and 2 workers differ")
        }
        #expect(zip(serial, three).allSatisfy { a, b in a.count == b.count && zip(a, b).allSatisfy(identical) })
        // The test can fail: another seed changes the batches, and epochs differ from each other.
        let other = try epochs(workers: 2, seed: 12)
        #expect(!zip(serial[0], other[0]).allSatisfy(identical))
        #expect(!zip(serial[0], serial[1]).allSatisfy(identical))
        #expect(serial[0][0].data[0].shape == [4, 3, 5, 5])
    }

    @Test("random transforms depend on seed, epoch and index only: a batch's rows are the items read alone")
    func perSampleRandomness() throws {
        let dataset = try numberedImages(count: 9).transformFirst(augmentation)
        let loader = try DataLoader(dataset: dataset, batchSize: 3, shuffle: true, numWorkers: 2, seed: 5)
        _ = try drain(loader)
        loader.reset()
        let batch = try #require(try loader.next())
        let indices = try #require(batch.index)
        let rows = batch.data[0].floats()
        let size = rows.count / 3
        for (k, i) in indices.enumerated() {
            var generator = SampleGenerator(seed: 5, epoch: 1, index: i)
            let alone = try dataset.item(at: i, using: &generator)
            #expect(Array(rows[(k * size)..<((k + 1) * size)]) == alone.data.floats())
        }
    }

    @Test("last-batch handling follows Gluon's BatchSampler (and pads like MXNet's iterators)")
    func lastBatch() throws {
        let data = try ArrayDataset(data: NDArray(shape: [10, 1], values: (0..<10).map(Float.init)),
                                    label: NDArray(shape: [10], values: (0..<10).map(Float.init)))
        func passes(_ mode: DataLoader.LastBatch, _ n: Int = 3) throws -> [[[Int]]] {
            let loader = try DataLoader(dataset: data, batchSize: 4, lastBatch: mode)
            var out: [[[Int]]] = []
            for _ in 0..<n {
                out.append(try drain(loader).map { $0.data[0].floats().map { Int($0) } })
                loader.reset()
            }
            return out
        }
        #expect(try passes(.keep)[0] == [[0, 1, 2, 3], [4, 5, 6, 7], [8, 9]])
        #expect(try passes(.discard)[0] == [[0, 1, 2, 3], [4, 5, 6, 7]])
        #expect(try passes(.rollover) == [[[0, 1, 2, 3], [4, 5, 6, 7]],
                                          [[8, 9, 0, 1], [2, 3, 4, 5], [6, 7, 8, 9]],
                                          [[0, 1, 2, 3], [4, 5, 6, 7]]])
        #expect(try passes(.pad)[0] == [[0, 1, 2, 3], [4, 5, 6, 7], [8, 9, 0, 1]])
        let loader = try DataLoader(dataset: data, batchSize: 4, lastBatch: .pad)
        #expect(try drain(loader).map(\.pad) == [0, 0, 2])
        #expect(loader.batchCount == 3)
    }

    @Test("as a DataIter: descriptions, labels stacked to (batch,), reset starts a new epoch once a pass began")
    func asDataIter() throws {
        let loader = try DataLoader(dataset: numberedImages(count: 8).transformFirst(ToTensor()), batchSize: 4,
                                    shuffle: true, numWorkers: 1, seed: 3)
        let iter: any DataIter = loader
        #expect(iter.provideData == [DataDescription(name: "data", shape: [4, 3, 6, 5])])
        #expect(iter.provideLabel == [DataDescription(name: "softmax_label", shape: [4])])
        iter.reset()   // nothing consumed: still epoch 0
        #expect(loader.epoch == 0)
        let batch = try #require(try iter.next())
        #expect(batch.label[0].shape == [4])
        #expect(batch.label[0].floats() == (batch.index ?? []).map { Float($0 % 10) })
        iter.reset()
        #expect(loader.epoch == 1)
        #expect(try drain(loader).count == 2)
    }

    @Test("an example that fails to load fails its batch, with its message, from a worker too",
          arguments: [0, 2])
    func errorsPropagate(workers: Int) throws {
        let loader = try DataLoader(dataset: FailingDataset(failing: 5), batchSize: 3, numWorkers: workers)
        #expect(try loader.next()?.index == [0, 1, 2])
        #expect(errorMessage { _ = try loader.next() } == "example 5 is broken.")
        #expect(try loader.next()?.index == [6, 7, 8])
    }

    @Test("workers end with their pass, and when a loader is reset or dropped mid-pass")
    func workersEnd() throws {
        func waitForExit(_ prefetcher: Prefetcher) -> Bool {
            let running = { prefetcher.runningWorkers }
            let deadline = Date().addingTimeInterval(10)
            while running() > 0 && Date() < deadline { Thread.sleep(forTimeInterval: 0.005) }
            return running() == 0
        }
        weak var weakLoader: DataLoader?
        var prefetcher: Prefetcher?
        do {
            let loader = try DataLoader(dataset: numberedImages(count: 200), batchSize: 2, numWorkers: 2, prefetch: 2)
            weakLoader = loader
            _ = try loader.next()
            prefetcher = loader.currentPrefetcher
            #expect(prefetcher?.runningWorkers == 2)   // blocked on the full prefetch window
        }
        #expect(weakLoader == nil)
        let dropped = try #require(prefetcher)
        #expect(waitForExit(dropped))

        let loader = try DataLoader(dataset: numberedImages(count: 20), batchSize: 2, numWorkers: 3, prefetch: 1)
        _ = try loader.next()
        let first = try #require(loader.currentPrefetcher)
        loader.reset()
        #expect(waitForExit(first))
        _ = try drain(loader)
        let second = try #require(loader.currentPrefetcher)
        #expect(waitForExit(second))
    }

    @Test("ArrayDataset and transforms")
    func arrayDataset() throws {
        let ds = try ArrayDataset(data: NDArray(shape: [3, 2], values: [1, 2, 3, 4, 5, 6]),
                                  label: NDArray(shape: [3], values: [7, 8, 9]))
        let (x, y) = try ds[1]
        #expect(x.shape == [2] && x.floats() == [3, 4])
        #expect(y.shape == [] && y.floats() == [8])
        let doubled = ds.transformFirst(TransformFunction { x, _ in x.map { $0 * 2 } })
        #expect(try doubled[2].data.floats() == [10, 12])
        #expect(try doubled[2].label.floats() == [9])
        let swapped = ds.transform { sample, _ in (sample.label, sample.data) }
        #expect(try swapped[0].data.floats() == [7])
        #expect(errorMessage { _ = try ds[3] } == "Index 3 is outside an ArrayDataset of 3 examples.")
        #expect(errorMessage { _ = try ArrayDataset(data: NDArray(zeros: [3, 2]), label: NDArray(zeros: [2])) }
                == "ArrayDataset's data holds 3 examples (shape (3, 2)) but its label holds 2 (shape (2,)).")
        #expect(errorMessage { _ = try DataLoader(dataset: ds, batchSize: 0) }?.contains("positive batch size") == true)
        // Example 1 comes out with another shape: its batch cannot be stacked.
        let mixed = ds.transform { sample, _ in
            (sample.label.floats() == [8] ? NDArray(zeros: [3]) : sample.data, sample.label) }
        let loader = try DataLoader(dataset: mixed, batchSize: 3)
        #expect(errorMessage { _ = try loader.next() }
                == "Cannot batch the 'data' of examples [0, 1, 2]: item 1 is float32 (3,) but item 0 is float32 (2,).")
    }
}
