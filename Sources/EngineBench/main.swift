// The cpu engine's benchmark: images/s of the engine against the framework on one model, the cost of
// compiling (cold, from the engine cache, without it) and of changing the batch size.
//
//   EngineBench PREFIX [--batch 16] [--sample 3,32,32] [--rounds 7] [--iterations 20] [--cache DIR] [--batches 1,16,64]
//
// PREFIX-symbol.json and PREFIX-0000.params are read (random weights when the params file is
// missing); PREFIX's folder may hold input.npy and MXNet's output.npy for that batch. Run it in a
// release build with OMP_WAIT_POLICY=passive (see the shared NOTES).
import Foundation
import KilnCore
import KilnEngine
import KilnGraph
import KilnRuntime

struct Options {
    var prefix = ""
    var batch = 16
    var rounds = 7
    var iterations = 20
    var cache: String?
    var batches: [Int] = []
    /// One sample's shape (channels, height, width).
    var sample = [3, 32, 32]
}

func parse() -> Options? {
    var o = Options()
    var args = Array(CommandLine.arguments.dropFirst())
    while !args.isEmpty {
        let a = args.removeFirst()
        func value() -> String? { args.isEmpty ? nil : args.removeFirst() }
        switch a {
        case "--batch": guard let v = value().flatMap(Int.init) else { return nil }; o.batch = v
        case "--rounds": guard let v = value().flatMap(Int.init) else { return nil }; o.rounds = v
        case "--iterations": guard let v = value().flatMap(Int.init) else { return nil }; o.iterations = v
        case "--cache": o.cache = value()
        case "--batches": o.batches = (value() ?? "").split(separator: ",").compactMap { Int($0) }
        case "--sample": o.sample = (value() ?? "").split(separator: ",").compactMap { Int($0) }
        default: if a.hasPrefix("--") { return nil }; o.prefix = a
        }
    }
    return o.prefix.isEmpty ? nil : o
}

func seconds(_ d: Duration) -> Double { Double(d.components.seconds) + Double(d.components.attoseconds) * 1e-18 }
func median(_ v: [Double]) -> Double { let s = v.sorted(); return s.isEmpty ? 0 : (s.count % 2 == 1 ? s[s.count / 2] : (s[s.count / 2 - 1] + s[s.count / 2]) / 2) }
func ms(_ s: Double) -> String { String(format: "%.1f ms", s * 1000) }

struct Model {
    let graph: Graph
    let weights: [String: NDArray]
    let sample: [Int]

    func bind(batch: Int) throws -> (InferredShapes, InferredTypes, [String: NDArray]) {
        var given = weights.mapValues(\.shape)
        given["data"] = Shape([batch] + sample)
        let shapes = try graph.inferShapes(given)
        var inputs: [String: NDArray] = [:]
        for (i, n) in graph.nodes.enumerated() where n.isVariable && weights[n.name] == nil {
            inputs[n.name] = NDArray(zeros: shapes.nodeOutputs[i][0])
        }
        return (shapes, try graph.inferTypes(), inputs)
    }
}

func main() throws {
    guard let o = parse() else {
        print("usage: EngineBench PREFIX [--batch 16] [--sample 3,32,32] [--rounds 7] [--iterations 20] [--cache DIR] [--batches 1,16,64]")
        exit(2)
    }
    let clock = ContinuousClock()
    let symbol = try Symbol.load(jsonFile: o.prefix + "-symbol.json")
    let graph = symbol.graph
    var weights: [String: NDArray] = [:]
    if FileManager.default.fileExists(atPath: o.prefix + "-0000.params") {
        for (key, array) in try NDArray.loadParams(from: o.prefix + "-0000.params") {
            weights[String(key.split(separator: ":", maxSplits: 1).last ?? "")] = array
        }
    } else {
        let shapes = try graph.inferShapes(["data": Shape([o.batch] + o.sample)])
        for (i, n) in graph.nodes.enumerated() where n.isVariable && n.name != "data" && !n.name.hasSuffix("label") {
            let s = shapes.nodeOutputs[i][0]
            weights[n.name] = n.name.hasSuffix("var") || n.name.hasSuffix("gamma")
                ? NDArray.randomUniform(shape: s, low: 0.5, high: 1.5, seed: UInt64(i))
                : NDArray.randomNormal(shape: s, mean: 0, std: 0.1, seed: UInt64(i))
        }
    }
    let model = Model(graph: graph, weights: weights, sample: o.sample)
    let dir = URL(fileURLWithPath: o.prefix).deletingLastPathComponent().path
    let (shapes, types, baseInputs) = try model.bind(batch: o.batch)
    var inputs = baseInputs
    var expected: NDArray?
    if let x = try? NDArray.load(npyFile: dir + "/input.npy"), x.shape == Shape([o.batch] + o.sample) {
        inputs["data"] = x
        expected = try? NDArray.load(npyFile: dir + "/output.npy")
    } else {
        inputs["data"] = NDArray.randomNormal(shape: Shape([o.batch] + o.sample), seed: 9)
    }
    print("model \(o.prefix), batch \(o.batch), \(graph.nodes.filter { !$0.isVariable }.count) ops, OMP_WAIT_POLICY=\(ProcessInfo.processInfo.environment["OMP_WAIT_POLICY"] ?? "unset")")

    let benchOptions = try EngineOptions(environment: ProcessInfo.processInfo.environment)
    // With a cache directory: first thing in this process (oneDNN cold), a compile through the disk
    // cache alone (a miss the first time the directory is used, a hit in the next process), then again.
    var t = clock.now
    if let cache = o.cache {
        for attempt in 1...2 {
            t = clock.now
            let p = try CPUEngine(options: { var x = benchOptions; x.cacheDirectory = cache; return x }(), usesProcessCache: false)
                .compilePlan(graph, shapes: shapes, types: types, constants: weights)
            print("engine compile through the disk cache (\(attempt)\(attempt == 1 ? ", first in process" : "")): \(ms(seconds(clock.now - t))) [\(p.report.cache)]  [key+load or passes \(ms(p.report.optimizeSeconds)), lower \(ms(p.report.lowerSeconds))]")
        }
    }
    t = clock.now
    let framework = try OpByOpBackend.framework.compile(graph, shapes: shapes, types: types, constants: weights)
    print("framework compile: \(ms(seconds(clock.now - t)))")
    t = clock.now
    var calibration: CalibrationTable?
    if benchOptions.precision == .int8 {
        // Calibrated on batches like the one timed (the input file's, or random ones).
        let calibrator = try Calibrator(graph: graph, shapes: shapes, types: types, constants: weights,
                                        method: benchOptions.calibrationMethod == .minmax ? .minMax : .entropy)
        for k in 0..<benchOptions.calibrationBatches {
            var batch = inputs
            if k > 0 { batch["data"] = NDArray.randomNormal(shape: Shape([o.batch] + o.sample), seed: UInt64(100 + k)) }
            _ = try calibrator.observe(batch)
        }
        calibration = calibrator.table()
    }
    let engine = try CPUEngine(options: benchOptions, calibration: calibration).compilePlan(graph, shapes: shapes, types: types, constants: weights)
    for note in engine.report.notes { print("note: \(note)") }
    print("engine compile, no disk cache (\(engine.report.cache)): \(ms(seconds(clock.now - t)))  [passes \(ms(engine.report.optimizeSeconds)), lower \(ms(engine.report.lowerSeconds))]")
    var later: [Double] = []
    for _ in 0..<5 {
        t = clock.now
        let again = try CPUEngine(options: benchOptions, calibration: calibration).compilePlan(graph, shapes: shapes, types: types, constants: weights)
        later.append(seconds(clock.now - t))
        precondition(again.report.cache == .memoryHit)
    }
    print("engine compile again in process (memoryHit): median \(ms(median(later))), min \(ms(later.min() ?? 0))")
    t = clock.now
    let unshared = try CPUEngine(options: benchOptions, usesProcessCache: false, calibration: calibration).compilePlan(graph, shapes: shapes, types: types, constants: weights)
    print("engine compile again without any cache (oneDNN's primitive cache warm): \(ms(seconds(clock.now - t)))  [passes \(ms(unshared.report.optimizeSeconds)), lower \(ms(unshared.report.lowerSeconds))]")
    for p in engine.report.passes { print("  pass \(p)") }
    print("engine: \(engine.report.graphOps) ops -> \(engine.report.optimizedOps) ops, \(engine.report.primitives.count) primitives (\(engine.report.borderReorders) border reorders, \(engine.report.innerReorders) inner); arena \(engine.report.arenaBytes) bytes vs \(engine.report.intermediateBytes) bytes of intermediates; constants \(engine.report.constantBytes) bytes")

    // Correctness.
    let fOut = try framework.run(inputs, isTrain: false)[0]
    let eOut = try engine.run(inputs, isTrain: false)[0]
    let scale = max(1, fOut.maxAbs())
    print("engine vs framework: max |diff| \(try eOut.maxAbsDifference(fOut)) (scale \(scale))")
    if let expected, expected.shape == eOut.shape {
        print("engine vs MXNet: max |diff| \(try eOut.maxAbsDifference(expected)); framework vs MXNet: \(try fOut.maxAbsDifference(expected))")
    }

    // Throughput: rounds interleaved so that drift hits both alike.
    func round(_ plan: any CompiledGraph) throws -> Double {
        let start = clock.now
        for _ in 0..<o.iterations { _ = try plan.run(inputs, isTrain: false) }
        return Double(o.iterations * o.batch) / seconds(clock.now - start)
    }
    for _ in 0..<3 { _ = try framework.run(inputs, isTrain: false); _ = try engine.run(inputs, isTrain: false) }
    var fRates: [Double] = [], eRates: [Double] = []
    for _ in 0..<o.rounds {
        fRates.append(try round(framework))
        eRates.append(try round(engine))
    }
    let f = median(fRates), e = median(eRates)
    print(String(format: "framework: %.0f images/s (median of %d rounds of %d batches; min %.0f, max %.0f)", f, o.rounds, o.iterations, fRates.min() ?? 0, fRates.max() ?? 0))
    print(String(format: "engine:    %.0f images/s (median of %d rounds of %d batches; min %.0f, max %.0f)", e, o.rounds, o.iterations, eRates.min() ?? 0, eRates.max() ?? 0))
    print(String(format: "engine / framework: %.2fx", e / f))

    if ProcessInfo.processInfo.environment["KILN_BENCH_PROFILE"] == "1" {
        let rows = try engine.profile(inputs, rounds: 20)
        let total = rows.reduce(0) { $0 + $1.seconds }
        for r in rows { print(String(format: "  %7.3f ms %5.1f%%  %@ [%@] %@", r.seconds * 1000, 100 * r.seconds / total, r.kind, r.implementation, String(r.label.prefix(60)))) }
        print(String(format: "  total %.3f ms per batch", total * 1000))
    }

    // Another batch size: a new compile (new shapes, new key), then the same again (process cache).
    for b in o.batches {
        let (s, ty, _) = try model.bind(batch: b)
        t = clock.now
        _ = try CPUEngine(options: benchOptions, calibration: calibration).compilePlan(graph, shapes: s, types: ty, constants: weights)
        let first = seconds(clock.now - t)
        t = clock.now
        _ = try CPUEngine(options: benchOptions, calibration: calibration).compilePlan(graph, shapes: s, types: ty, constants: weights)
        print("batch \(b): compile \(ms(first)) for the new shape, \(ms(seconds(clock.now - t))) when bound again")
    }
}

do { try main() } catch {
    FileHandle.standardError.write(Data("EngineBench: \(error)\n".utf8))
    exit(1)
}
