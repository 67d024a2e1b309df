import Foundation
import KilnCore
import KilnEngine
import KilnEngineCore
import KilnGraph
import KilnRuntime
import TestSupport
import Testing

/// ResNet-20 with one weight nudged by `tag`, so that each test has cache keys of its own (tests run
/// in parallel and share the process's plan cache).
func taggedResNet(_ tag: Int, batch: Int = 2) throws -> Bound {
    let model = try GoldenModel.load("cifar_resnet20_v1")
    var weights = model.weights
    if let name = weights.keys.sorted().first(where: { $0.hasSuffix("dense0_bias") }), var b = weights[name] {
        b[flat: 0] += Float(tag) * 1e-7
        weights[name] = b
    }
    let data = batch == model.input.shape[0] ? model.input : NDArray.randomNormal(shape: [batch, 3, 32, 32], seed: UInt64(batch))
    return try Bound(model.symbol, weights: weights, data: data)
}

@Suite struct EngineCacheTests {
    /// A later compile of the same group in a process shares the first one's primitives and packed
    /// weights: at least 10x faster than the first. Time is this thread's CPU time (compiling runs on
    /// the calling thread), so that tests running alongside on the same two cores do not decide the
    /// outcome, and the later compile is the fastest of five. The batch size (7) is one no other test
    /// compiles, so that the first compile is cold, as in a new process.
    @Test func laterCompileInTheProcessIsTenTimesFaster() throws {
        let bound = try taggedResNet(101, batch: 7)
        let (first, firstSeconds) = try threadCPUTime { try bound.engine() }
        #expect(first.report.cache == .compiled)
        var later: [(EnginePlan, Double)] = []
        for _ in 0..<5 { later.append(try threadCPUTime { try bound.engine() }) }
        #expect(later.allSatisfy { $0.0.report.cache == .memoryHit })
        let fastest = later.map(\.1).min() ?? .infinity
        let ratio = firstSeconds / fastest
        #expect(ratio >= 10, "first \(firstSeconds * 1000) ms, later \(fastest * 1000) ms of CPU time: \(ratio)x")
        let a = try first.run(bound.inputs, isTrain: false), b = try later[0].0.run(bound.inputs, isTrain: false)
        expectClose(b[0], a[0], relative: 0, "plans sharing one core")
    }

    /// Without the process cache: the first compile stores the optimized IR, the second loads it and
    /// skips the passes; both give the framework's output.
    @Test func diskCacheMissThenHit() throws {
        let dir = try temporaryDirectory("hit")
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let bound = try taggedResNet(102)
        let options = EngineOptions(cacheDirectory: dir)
        let engine = CPUEngine(options: options, usesProcessCache: false)
        let first = try engine.compilePlan(bound.graph, shapes: bound.shapes, types: bound.types, constants: bound.constants)
        #expect(first.report.cache == .miss)
        let files = try FileManager.default.contentsOfDirectory(atPath: dir)
        #expect(files == [first.report.cacheKey + ".kilnplan"])
        let second = try engine.compilePlan(bound.graph, shapes: bound.shapes, types: bound.types, constants: bound.constants)
        #expect(second.report.cache == .diskHit)
        #expect(second.report.passes.isEmpty && second.ir.ops.count == first.ir.ops.count)
        let framework = try bound.runFramework()
        expectClose(try second.run(bound.inputs, isTrain: false)[0], framework[0], relative: 1e-4, "from the disk cache")
    }

    enum Damage: String, CaseIterable {
        case flippedByte, truncated, extended, wrongMagic, wrongVersion, otherKey, empty, badJSON, doesNotLower
    }

    /// A damaged or stale entry is detected, never trusted: the group is compiled again, the entry
    /// rewritten, and the next compile loads it.
    @Test(arguments: Damage.allCases)
    func damagedEntryIsRebuilt(_ damage: Damage) throws {
        let dir = try temporaryDirectory("damage-\(damage.rawValue)")
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let bound = try taggedResNet(103)
        let engine = CPUEngine(options: EngineOptions(cacheDirectory: dir), usesProcessCache: false)
        let compile = { try engine.compilePlan(bound.graph, shapes: bound.shapes, types: bound.types, constants: bound.constants) }
        let first = try compile()
        let path = dir + "/" + first.report.cacheKey + ".kilnplan"
        var bytes = try #require(FileManager.default.contents(atPath: path)).map { $0 }
        let expectedReason: String
        switch damage {
        case .flippedByte:
            bytes[bytes.count - 7] ^= 0x40
            expectedReason = "checksum"
        case .truncated:
            bytes.removeLast(1000)
            expectedReason = "do not match its size"
        case .extended:
            bytes += [1, 2, 3]
            expectedReason = "do not match its size"
        case .wrongMagic:
            bytes[0] = UInt8(ascii: "X")
            expectedReason = "KILNPLAN"
        case .wrongVersion:
            bytes[8] = 99
            expectedReason = "format version"
        case .otherKey:
            // Another group's entry under this group's name (a stale copy).
            let other = try taggedResNet(104)
            let otherPlan = try CPUEngine(options: EngineOptions(cacheDirectory: dir), usesProcessCache: false)
                .compilePlan(other.graph, shapes: other.shapes, types: other.types, constants: other.constants)
            bytes = try #require(FileManager.default.contents(atPath: dir + "/" + otherPlan.report.cacheKey + ".kilnplan")).map { $0 }
            expectedReason = "another key"
        case .empty:
            bytes = []
            expectedReason = "truncated"
        case .badJSON:
            // Valid header and checksum around a payload that is not the IR.
            let key = Array(bytes[12..<44])
            let payload = Array("{\"values\": 1}".utf8)
            bytes = Array("KILNPLAN".utf8) + [1, 0, 0, 0] + key
            withUnsafeBytes(of: UInt64(payload.count).littleEndian) { bytes += $0 }
            withUnsafeBytes(of: UInt64(0).littleEndian) { bytes += $0 }
            bytes += testHash128(payload) + payload
            expectedReason = "does not decode"
        case .doesNotLower:
            // A well-formed entry (header, checksum, IR that checks) whose first convolution's
            // stride no longer fits its output shape: caught when lowering, then rebuilt.
            let jsonLength = Int(bytes[44..<52].enumerated().reduce(UInt64(0)) { $0 | UInt64($1.element) << (8 * UInt64($1.offset)) })
            var json = String(decoding: bytes[76..<(76 + jsonLength)], as: UTF8.self)
            let blob = Array(bytes[(76 + jsonLength)...])
            let stride = try #require(json.range(of: "\"stride\":[1,1]"))
            json.replaceSubrange(stride, with: "\"stride\":[3,3]")
            let payload = Array(json.utf8) + blob
            var header = Array(bytes[0..<44])
            withUnsafeBytes(of: UInt64(json.utf8.count).littleEndian) { header += $0 }
            withUnsafeBytes(of: UInt64(blob.count).littleEndian) { header += $0 }
            bytes = header + testHash128(payload) + payload
            expectedReason = "does not lower"
        }
        try Data(bytes).write(to: URL(fileURLWithPath: path))
        let rebuilt = try compile()
        guard case let .rebuilt(reason) = rebuilt.report.cache else {
            Issue.record("expected a rebuild, got \(rebuilt.report.cache)")
            return
        }
        #expect(reason.contains(expectedReason), "\(reason)")
        expectClose(try rebuilt.run(bound.inputs, isTrain: false)[0], try bound.runFramework()[0], relative: 1e-4, "rebuilt after \(damage)")
        #expect(try compile().report.cache == .diskHit)
    }

    /// The key covers weights, shapes and the graph: change any and the key changes.
    @Test func keyFollowsWeightsShapesAndGraph() throws {
        let a = try taggedResNet(105).engine(), a2 = try taggedResNet(105).engine()
        let b = try taggedResNet(106).engine()
        let c = try taggedResNet(105, batch: 3).engine()
        #expect(a.report.cacheKey == a2.report.cacheKey)
        #expect(a.report.cacheKey != b.report.cacheKey)
        #expect(a.report.cacheKey != c.report.cacheKey)
        #expect(a.report.cacheKey.count == 64)
    }

    /// A cache directory that cannot be written costs the cache, not the compile.
    @Test func unwritableCacheDirectoryStillCompiles() throws {
        let bound = try taggedResNet(107)
        let plan = try CPUEngine(options: EngineOptions(cacheDirectory: "/proc/kiln-engine-cannot-write"), usesProcessCache: false)
            .compilePlan(bound.graph, shapes: bound.shapes, types: bound.types, constants: bound.constants)
        #expect(plan.report.cache == .miss)
        expectClose(try plan.run(bound.inputs, isTrain: false)[0], try bound.runFramework()[0], relative: 1e-4, "without a writable cache")
    }
}

/// The checksum the plan file uses, recomputed here for the hand-made entry (Hash128 over the payload).
func testHash128(_ bytes: [UInt8]) -> [UInt8] { bytes.withUnsafeBytes { Hash128.hash($0) } }

/// `body`'s result and the CPU time this thread spent in it, in seconds.
func threadCPUTime<T>(_ body: () throws -> T) rethrows -> (T, Double) {
    func now() -> Double {
        var t = timespec()
        clock_gettime(CLOCK_THREAD_CPUTIME_ID, &t)
        return Double(t.tv_sec) + Double(t.tv_nsec) * 1e-9
    }
    let start = now()
    let result = try body()
    return (result, now() - start)
}
