import Foundation
import GraphFuzzing
import KilnCore
import Testing
import TestSupport

/// The graph fuzz target's generator and check without libFuzzer: seeded byte streams stand in for
/// the fuzzer's inputs, so every `swift test` reads, infers and runs a few hundred generated graphs;
/// and the inputs that once broke the target (Tests/Fixtures/fuzz/graph/) are replayed.
@Suite("Graph fuzzing")
struct GraphFuzzingTests {
    /// Recipes of up to 400 bytes at the quick scale: dozens of ops, a chain, a wide node or a long
    /// text now and then, and fast in a debug build; the structure test below takes the full scale.
    static func recipe(seed: UInt64) -> SymbolRecipe {
        var generator = SeededBytes(seed: seed)
        let length = Int(generator.next() % 400)
        return SymbolRecipe(bytes: generator.bytes(length), scale: .quick)
    }

    static let blocks: [UInt64] = Array(0..<16)

    @Test("seeded recipes are refused with an error or read, re-written, inferred and run", arguments: blocks)
    func seeded(block: UInt64) {
        for seed in block * 16..<(block + 1) * 16 {
            do {
                _ = try GraphCheck.run(Self.recipe(seed: seed))
            } catch {
                Issue.record("seed \(seed): \(error)")
            }
        }
    }

    /// Guards the generator itself: were it to stop making graphs that parse or run, the seeded test
    /// above would still pass while checking nothing.
    @Test("the seeded recipes reach every outcome")
    func outcomes() throws {
        var seen: [GraphCheck.Outcome: Int] = [:]
        for seed in UInt64(0)..<256 { seen[try GraphCheck.run(Self.recipe(seed: seed)).outcome, default: 0] += 1 }
        for outcome in [GraphCheck.Outcome.rejected, .notInferred, .tooLarge, .ran] {
            #expect(seen[outcome, default: 0] > 0, "no seed got to \(outcome): \(seen)")
        }
        #expect(seen[.ran, default: 0] >= 256 / 16, "few seeds ran: \(seen)")
    }

    @Test("a recipe's bytes decide its graph, and the empty recipe is a graph")
    func deterministic() throws {
        var generator = SeededBytes(seed: 7)
        let bytes = generator.bytes(300)
        #expect(SymbolRecipe(bytes: bytes).json == SymbolRecipe(bytes: bytes).json)
        #expect(try GraphCheck.run(SymbolRecipe(bytes: [])).outcome == .ran)
    }

    /// The bytes before every structure step below: no training, no extra heads, one data input of
    /// shape (2, 2, 2, 2) without annotations.
    static let prefix: [UInt8] = [0, 0, 0, 4, 1, 1, 1, 1, 0, 0]

    @Test("structure steps make deep chains, wide nodes and huge attributes")
    func structure() throws {
        // 200 is the chain step; 255 then 255 255 asks for a long chain of 65535 % 40000 + 1 relus.
        let chain = SymbolRecipe(bytes: Self.prefix + [200, 255, 255, 255, 0, 255, 0])
        #expect(chain.nodeCount == 1 + 25_536)
        #expect(try GraphCheck.run(chain).outcome == .tooLarge)  // read and inferred; too many nodes to bind
        // 215 is the wide step: a Concat (255) along dim 1 of 65535 % 20000 + 1 copies of the data.
        let wide = SymbolRecipe(bytes: Self.prefix + [215, 255, 255, 255, 0, 255, 255, 0, 0])
        #expect(wide.json.components(separatedBy: "[0, 0, 0]").count - 1 >= 5_536)
        #expect(try GraphCheck.run(wide).outcome == .ran)
        // 230 is the huge text step: a name of 16 * 65535 + 1 characters for the next op, a relu.
        let huge = SymbolRecipe(bytes: Self.prefix + [230, 255, 255, 0, 0, 0, 0, 255, 0, 0, 0])
        #expect(huge.json.utf8.count > 1_000_000)
        #expect(try GraphCheck.run(huge).outcome == .ran)
    }

    static var regressions: [String] {
        let dir = Fixtures.url("fuzz/graph")
        let names = (try? FileManager.default.contentsOfDirectory(atPath: dir.path)) ?? []
        return names.sorted().map { dir.appendingPathComponent($0).path }
    }

    @Test("inputs that once broke FuzzGraph are refused with an error or run", arguments: regressions)
    func regression(path: String) throws {
        let data = try Data(contentsOf: URL(fileURLWithPath: path))
        let (outcome, detail) = try GraphCheck.run(SymbolRecipe(bytes: data))
        #expect(outcome != .ran || !path.contains("refused"), "\(path) ran: \(detail)")
    }
}
