import Foundation
import KilnCore
import KilnData
import TestSupport
import Testing

/// One case of `golden/data/ndarray_iter.json`: MXNet 1.9.1's NDArrayIter batches over arange data.
struct NDArrayIterGoldenCase: Decodable, CustomStringConvertible, Sendable {
    struct Batch: Decodable, Sendable {
        let data: [Int]
        let label: [Int]
        let pad: Int
    }
    struct Failure: Decodable, Sendable {
        let epoch: Int
        let batch: Int
    }
    let count: Int
    let batchSize: Int
    let lastBatch: String
    let epochs: [[Batch]]
    let failure: Failure?

    var description: String { "\(count) examples, batch \(batchSize), \(lastBatch)" }

    static let all: [NDArrayIterGoldenCase] = {
        guard let data = try? Data(contentsOf: Fixtures.url("golden/data/ndarray_iter.json")),
              let cases = try? JSONDecoder().decode([NDArrayIterGoldenCase].self, from: data) else { return [] }
        return cases
    }()
}

@Suite("NDArrayIter")
struct NDArrayIterTests {
    @Test("the golden cases are there") func goldenPresent() {
        #expect(NDArrayIterGoldenCase.all.count == 72)
    }

    @Test("batches, pads and failures match MXNet 1.9.1", arguments: NDArrayIterGoldenCase.all)
    func matchesMXNet(_ golden: NDArrayIterGoldenCase) throws {
        let n = golden.count
        let data = NDArray(shape: [n, 1], values: (0..<n).map(Float.init))
        let label = NDArray(shape: [n], values: (0..<n).map { Float($0 + 100) })
        let mode = try #require(LastBatchHandling(rawValue: golden.lastBatch))
        let iter = try NDArrayIter(data: data, label: label, batchSize: golden.batchSize, lastBatch: mode)
        for (e, expected) in golden.epochs.enumerated() {
            var got: [NDArrayIterGoldenCase.Batch] = []
            var failed = false
            do {
                while let b = try iter.next() {
                    got.append(.init(data: b.data[0].floats().map { Int($0) }, label: b.label[0].floats().map { Int($0) },
                                     pad: b.pad))
                }
            } catch {
                failed = true
                #expect("\(error)".contains("roll over"))
            }
            #expect(failed == (golden.failure?.epoch == e), "epoch \(e)")
            #expect(got.map(\.data) == expected.map(\.data), "epoch \(e) data")
            #expect(got.map(\.label) == expected.map(\.label), "epoch \(e) labels")
            #expect(got.map(\.pad) == expected.map(\.pad), "epoch \(e) pads")
            if failed { break }
            iter.reset()
        }
    }

    @Test("data and label descriptions put the batch size first, keep dtypes and name arrays as MXNet")
    func descriptions() throws {
        let a = NDArray(zeros: [6, 2, 3], dtype: .uint8)
        let b = NDArray(zeros: [6], dtype: .float32)
        let single = try NDArrayIter(data: a, label: b, batchSize: 4)
        #expect(single.provideData == [DataDescription(name: "data", shape: [4, 2, 3], dtype: .uint8)])
        #expect(single.provideLabel == [DataDescription(name: "softmax_label", shape: [4])])
        let list = try NDArrayIter(data: [a, b], label: [b], batchSize: 2)
        #expect(list.provideData.map(\.name) == ["_0_data", "_1_data"])
        #expect(list.provideLabel.map(\.name) == ["softmax_label"])
        let dict = try NDArrayIter(data: ["zeta": b, "alpha": a], label: ["y": b], batchSize: 3)
        #expect(dict.provideData.map(\.name) == ["alpha", "zeta"])
        let batch = try #require(try dict.next())
        #expect(batch.data.map(\.shape) == [[3, 2, 3], [3]])
        #expect(batch.data[0].dtype == .uint8)
        let unlabelled = try NDArrayIter(data: a, batchSize: 6)
        #expect(try unlabelled.next()?.label.isEmpty == true)
    }

    @Test("shuffling gives each pass a new permutation, reproducible from the seed")
    func shuffle() throws {
        let n = 50
        let data = NDArray(shape: [n], values: (0..<n).map(Float.init))
        func passes(seed: UInt64) throws -> [[Int]] {
            let iter = try NDArrayIter(data: data, label: data, batchSize: 10, shuffle: true, seed: seed)
            var orders: [[Int]] = []
            for _ in 0..<3 {
                let batches = try drain(iter)
                let order = batches.flatMap { $0.data[0].floats().map { Int($0) } }
                // Data and label rows move together, and `index` names them.
                #expect(batches.allSatisfy { $0.data[0].floats() == $0.label[0].floats() })
                #expect(batches.flatMap { $0.index ?? [] } == order)
                orders.append(order)
                iter.reset()
            }
            return orders
        }
        let a = try passes(seed: 3), b = try passes(seed: 3), c = try passes(seed: 4)
        #expect(a == b)
        #expect(a != c)
        for order in a { #expect(order.sorted() == Array(0..<n)) }
        #expect(a[0] != Array(0..<n))
        #expect(a[0] != a[1] && a[1] != a[2])
    }

    @Test("a rolled-over batch under shuffling holds the old pass's tail, then the new order's head")
    func rollOverWithShuffle() throws {
        let n = 7
        let data = NDArray(shape: [n], values: (0..<n).map(Float.init))
        let iter = try NDArrayIter(data: data, batchSize: 3, shuffle: true, seed: 9, lastBatch: .rollOver)
        let first = try drain(iter).flatMap { $0.index ?? [] }
        #expect(first.count == 6)
        let tail = Set(0..<n).subtracting(first)
        iter.reset()
        let second = try drain(iter)
        let head = try #require(second.first)
        #expect(head.pad == 1)
        #expect(Set([head.index?[0] ?? -1]) == tail)
        #expect(second.count == 2)   // 1 rolled over + 7 new = 8: two full batches, 2 examples roll over again
    }

    @Test("hardReset forgets rolled-over examples")
    func hardReset() throws {
        let data = NDArray(shape: [5], values: [0, 1, 2, 3, 4])
        let iter = try NDArrayIter(data: data, batchSize: 2, lastBatch: .rollOver)
        #expect(try drain(iter).count == 2)
        iter.hardReset()
        let again = try drain(iter)
        #expect(again.map { $0.data[0].floats() } == [[0, 1], [2, 3]])
        #expect(again.allSatisfy { $0.pad == 0 })
    }

    @Test("bad arguments are refused with a sentence")
    func badArguments() {
        let a = NDArray(zeros: [4, 2])
        let message = errorMessage { _ = try NDArrayIter(data: a, label: NDArray(zeros: [3]), batchSize: 2) }
        #expect(message == "NDArrayIter's array 'softmax_label' holds 3 examples (shape (3,)) but 'data' holds 4.")
        #expect(errorMessage { _ = try NDArrayIter(data: a, batchSize: 0) }?.contains("positive batch size") == true)
        #expect(errorMessage { _ = try NDArrayIter(data: [], batchSize: 1) }?.contains("at least one data array") == true)
        #expect(errorMessage { _ = try NDArrayIter(data: .scalar(1), batchSize: 1) }?.contains("scalar") == true)
    }
}
