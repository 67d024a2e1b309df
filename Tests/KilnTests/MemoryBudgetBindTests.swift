import Foundation
import Kiln
import Testing

/// Shapes that need more memory than any machine has are refused at bind with a sentence naming the
/// array, on every backend, instead of `Fatal error: failed to allocate`. The sizes (terabytes) are
/// beyond the budget of any machine that runs these tests, so the process's real budget is used.
@Suite struct MemoryBudgetBindTests {
    enum Way: String, CaseIterable { case framework, reference, engine }

    func bind(_ symbol: Symbol, _ shapes: [String: Shape], weights: [String: NDArray] = [:], _ way: Way) throws -> Executor {
        switch way {
        case .framework: return try symbol.bind(shapes: shapes, sharedBuffer: weights, backend: OpByOpBackend.framework)
        case .reference: return try symbol.bind(shapes: shapes, sharedBuffer: weights, backend: OpByOpBackend.reference)
        case .engine: return try symbol.simpleBind(shapes: shapes, sharedBuffer: weights, engine: .cpu(EngineOptions(cacheDirectory: nil)))
        }
    }

    static func refused(_ error: any Error, naming: String) -> Bool {
        guard case .memoryBudgetExceeded? = error as? KilnCoreError else { return false }
        let message = "\(error)"
        return message.contains(naming) && message.hasPrefix("Not enough memory for") && message.contains("KILN_MEMORY_LIMIT")
    }

    /// `num_filter=1e9` with a 100x100 kernel: 40 TB of weights that bind would create as zeros.
    @Test(arguments: Way.allCases)
    func hugeWeightsAreRefused(way: Way) {
        let net = Symbol.convolution(.variable("data"), kernel: [100, 100], numFilter: 1_000_000_000, noBias: true, name: "conv0")
        #expect { try bind(net, ["data": [1, 1, 100, 100]], way) } throws: { Self.refused($0, naming: "conv0_weight") }
    }

    /// Small weights, but a 4096-filter output of 4096x4096: 256 GiB of activations.
    @Test(arguments: Way.allCases)
    func hugeActivationsAreRefused(way: Way) {
        let net = Symbol.convolution(.variable("data"), kernel: [1, 1], numFilter: 4096, noBias: true, name: "wide")
        let weights = ["wide_weight": NDArray(zeros: [4096, 1, 1, 1])]
        #expect { try bind(net, ["data": [1, 1, 4096, 4096]], weights: weights, way) } throws: { Self.refused($0, naming: "wide") }
    }

    /// A batch whose element count overflows Int is refused, not trapped on.
    @Test(arguments: Way.allCases)
    func anOverflowingBatchIsRefused(way: Way) {
        let net = Symbol.fullyConnected(.variable("data"), numHidden: 1 << 40, name: "fc")
        #expect { try bind(net, ["data": [1 << 40, 1 << 20]], way) } throws: { error in
            // Shape inference may refuse the shape first; either way it is an error, not a trap.
            "\(error)".contains("fc") || "\(error)".contains("data")
        }
    }

    /// Reshaping an executor to a huge batch is refused too; the executor stays usable.
    @Test func reshapingToAHugeBatchIsRefused() throws {
        let net = Symbol.fullyConnected(.variable("data"), numHidden: 4, name: "fc")
        let exec = try net.bind(shapes: ["data": [2, 3]])
        #expect { try exec.reshaped(["data": [1 << 40, 3]]) } throws: { Self.refused($0, naming: "data") }
        try exec.forward()
        #expect(exec.outputs[0].shape == [2, 4])
    }
}
