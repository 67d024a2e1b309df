import ArgumentParser
import Foundation
import Kiln

/// Times one configuration of one model: the first result (load, bind, compile, first forward), then
/// throughput and latency over a few seconds of forwards. `tools/bench/run.py` runs one process of this
/// per configuration and round, beside the peers' `tools/bench/peers.py`, which prints the same JSON.
struct Bench: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Time one model in one configuration: first result, images/s, latency percentiles, peak memory.",
        discussion: """
            The input is seeded random normal data of --shape (or --input). With --json the last line is one \
            JSON object: model, batch, engine, precision, images_per_s, latency_ms_p50, latency_ms_p99, \
            first_result_s, peak_rss_mb, iterations, threads, and with the engine arena_bytes, weight_bytes \
            and groups. Set OMP_WAIT_POLICY as the comparison needs; it is reported, not changed.
            """)

    @Option(help: "The symbol JSON file (PREFIX-symbol.json).") var symbol: String
    @Option(help: "The parameters file (PREFIX-EPOCH.params).") var params: String
    @Option(name: .customLong("shape"), help: "The data input's shape, NAME=D1,D2,... (e.g. data=16,3,32,32).") var shapeSpec: String
    @Option(help: "on: partition for the CPU engine; off: the framework, op by op.") var engine: String = "on"
    @Option(help: "The engine's precision (cpu: fp32, bf16, int8; gpu: fp32, fp16, bf16); other engine options come from the KILN_ENGINE_* variables.") var precision: String = "fp32"
    @Option(parsing: .unconditional, help: "How long to time forwards after warm-up, in seconds.") var seconds: Double = 3
    @Option(parsing: .unconditional, help: "Forwards run (untimed) after the first result and before timing.") var warmup: Int = 3
    @Option(help: "A .npy file to use as the input instead of random data; its shape must match --shape.") var input: String?
    @Option(help: "Write output 0 of the first forward to this .npy file (to check runtimes against each other).") var output: String?
    @Option(help: "Where to run: cpu, or gpu / gpu(N) for the GPU's framework mode (with --engine off).") var context: String = "cpu"
    @Flag(help: "End with one line of JSON.") var json = false
    @Flag(help: "Print the engine's time per primitive (median of 20 runs) for each engine group.") var profile = false
    @Flag(name: .customLong("async"), help: ArgumentHelp(
        "Start forwards back to back (Executor.startForward) and wait once at the end: the device's throughput, as asynchronous PyTorch loops measure it.",
        discussion: "Only a graph the cuda engine took whole runs asynchronously; elsewhere each forward still waits. Latencies are then the mean per forward."))
    var asynchronous = false

    func run() throws {
        let clock = ContinuousClock()
        let start = clock.now
        try reportingErrors {
            let useEngine: Bool
            switch engine.lowercased() {
            case "on", "1", "true", "cpu": useEngine = true
            case "off", "0", "false", "framework": useEngine = false
            default: throw ValidationError("--engine \(engine) is unknown; accepted values are on, off.")
            }
            // inf or 1e308 seconds ran forever: a benchmark is bounded to a day.
            guard seconds.isFinite, seconds >= 0, seconds <= 86_400 else {
                throw ValidationError("--seconds \(seconds) is not accepted; give a number of seconds from 0 to 86400.")
            }
            guard warmup >= 0, warmup <= 1_000_000 else { throw ValidationError("--warmup \(warmup) is not accepted; give a count from 0 to 1000000.") }
            let (dataName, shape) = try parseShapeOption(shapeSpec)
            let place = try parseContext(context)
            // The KILN_ENGINE_* variables apply (a cache directory, say), except the precision, which
            // --precision decides. The engine refuses a precision it does not support with its own
            // sentence (exit code 1).
            var settings = ProcessInfo.processInfo.environment.filter {
                $0.key.hasPrefix("KILN_ENGINE_") && !$0.key.hasPrefix("KILN_ENGINE_CUDA_") && $0.key != EngineOptions.Key.precision.environmentName
            }
            settings[EngineOptions.Key.precision.shortName] = precision
            let options = try EngineOptions(parsing: settings)
            guard useEngine || options.precision == .fp32 else {
                throw ValidationError("--precision \(precision) needs the engine (--engine on); the framework runs fp32.")
            }
            let selection: EngineSelection = useEngine ? .cpu(options) : .framework

            // The first result: everything from here, files included, until the first forward returns.
            let sym = try Symbol.load(jsonFile: symbol)
            let (args, aux) = try Checkpoint.loadParams(params)
            let data: NDArray
            if let input {
                data = try NDArray.load(npyFile: input)
                guard data.shape == shape else {
                    throw ValidationError("--input \(input) has shape \(data.shape), but --shape gives \(shape).")
                }
            } else {
                data = NDArray.randomNormal(shape: shape, seed: 20240605)
            }
            var shared = args.merging(aux) { a, _ in a }
            shared[dataName] = data
            let exec = try sym.simpleBind(context: place, shapes: [dataName: shape], sharedBuffer: shared, engine: selection)
            try exec.forward()
            let firstResult = elapsed(clock.now - start)
            // int8 without a stored table calibrates over its first batches (in fp32): finish that
            // before timing, and before writing the output, so that --output shows int8's answer.
            // With the table in the cache directory the plan is int8 from the start.
            let calibration = useEngine && place == .cpu && options.precision == .int8 ? options.calibrationBatches : 0
            for _ in 0..<calibration { try exec.forward() }
            if let output { try exec.outputs[0].save(npyFile: output) }
            for _ in 0..<warmup { try exec.forward() }
            var latencies: [Double] = []
            let timed = clock.now
            // At least 3 forwards so that one slow batch does not make the whole measurement.
            if asynchronous {
                var count = 0
                while count < 3 || elapsed(clock.now - timed) < self.seconds {
                    try exec.startForward()
                    count += 1
                }
                try exec.waitToRead()
                latencies = Array(repeating: elapsed(clock.now - timed) / Double(count), count: count)
            } else {
                while latencies.count < 3 || elapsed(clock.now - timed) < self.seconds {
                    let t = clock.now
                    try exec.forward()
                    latencies.append(elapsed(clock.now - t))
                }
            }
            let wall = elapsed(clock.now - timed)
            let peakRSS = peakResidentMegabytes()
            let batch = shape.dims.first ?? 1
            let sorted = latencies.sorted()
            let imagesPerSecond = Double(batch * latencies.count) / wall
            let environment = ProcessInfo.processInfo.environment
            let threads = environment["OMP_NUM_THREADS"].flatMap { Int($0) } ?? ProcessInfo.processInfo.activeProcessorCount
            let model = URL(fileURLWithPath: symbol).lastPathComponent.replacingOccurrences(of: "-symbol.json", with: "")

            var result: [String: Any] = [
                "runtime": "kiln", "model": model, "batch": batch, "engine": useEngine ? "on" : "off", "context": place.description,
                "precision": options.precision.rawValue, "images_per_s": imagesPerSecond,
                "latency_ms_p50": percentile(sorted, 0.50) * 1000, "latency_ms_p99": percentile(sorted, 0.99) * 1000,
                "latency_ms_mean": wall / Double(latencies.count) * 1000,
                "first_result_s": firstResult, "peak_rss_mb": peakRSS, "iterations": latencies.count,
                "seconds": wall, "threads": threads,
                "omp_wait_policy": environment["OMP_WAIT_POLICY"] ?? "unset",
                "asynchronous": asynchronous,
            ]
            print("\(model), batch \(batch), \(place), \(useEngine ? "engine \(options.precision.rawValue)" : "framework"), \(threads) threads, OMP_WAIT_POLICY=\(environment["OMP_WAIT_POLICY"] ?? "unset")"
                  + (asynchronous ? ", forwards started back to back (--async)" : ""))
            print(String(format: "first result %.3f s (load, bind, compile, first forward)", firstResult))
            print(String(format: "%.1f images/s over %d forwards in %.2f s; latency p50 %.3f ms, p99 %.3f ms; peak RSS %.1f MB",
                         imagesPerSecond, latencies.count, wall, percentile(sorted, 0.5) * 1000, percentile(sorted, 0.99) * 1000, peakRSS))

            if useEngine, place != .cpu {
                let reports = CUDAEngine.compiledReports
                result["groups"] = reports.count
                result["arena_bytes"] = reports.reduce(0) { $0 + $1.arenaBytes }
                result["weight_bytes"] = reports.reduce(0) { $0 + $1.weightBytes }
                result["launches"] = reports.reduce(0) { $0 + $1.launches }
                result["graph_captured"] = reports.allSatisfy(\.graphCaptured)
                for r in reports { print(r) }
            } else if useEngine {
                // The executor keeps its engine plans to itself; binding the same partition again through
                // a recording engine reaches them (a hit in the process's plan cache, so nothing is
                // compiled twice and the reports are those of the plans timed above).
                let plans = try recordedPlans(sym, dataName: dataName, shape: shape, shared: shared, options: options)
                let arena = plans.reduce(0) { $0 + $1.plan.report.arenaBytes }
                let weights = plans.reduce(0) { $0 + $1.plan.report.constantBytes }
                let intermediates = plans.reduce(0) { $0 + $1.plan.report.intermediateBytes }
                result["groups"] = plans.count
                result["arena_bytes"] = arena
                result["weight_bytes"] = weights
                result["intermediate_bytes"] = intermediates
                print("engine: \(plans.count) group\(plans.count == 1 ? "" : "s"); arena \(arena) bytes (intermediates \(intermediates) bytes), weights \(weights) bytes")
                if profile {
                    for (k, p) in plans.enumerated() {
                        let rows = try p.plan.profile(p.inputs, rounds: 20)
                        let total = rows.reduce(0) { $0 + $1.seconds }
                        print("group \(k): \(rows.count) primitives, \(String(format: "%.3f", total * 1000)) ms per batch")
                        for r in rows {
                            print(String(format: "  %8.3f ms %5.1f%%  %@ [%@] %@", r.seconds * 1000, total > 0 ? 100 * r.seconds / total : 0,
                                         r.kind, r.implementation, String(r.label.prefix(60))))
                        }
                    }
                }
            } else if profile {
                print("--profile: the framework has no per-primitive profile; use --engine on.")
            }
            if json {
                let line = try JSONSerialization.data(withJSONObject: result, options: [.sortedKeys])
                print(String(decoding: line, as: UTF8.self))
            }
        }
    }

    private func elapsed(_ d: Duration) -> Double {
        Double(d.components.seconds) + Double(d.components.attoseconds) * 1e-18
    }
}

/// The value at fraction `q` of sorted values (nearest rank, so p99 of few samples is the largest).
func percentile(_ sorted: [Double], _ q: Double) -> Double {
    guard !sorted.isEmpty else { return 0 }
    let rank = Int((q * Double(sorted.count)).rounded(.up)) - 1
    return sorted[min(max(rank, 0), sorted.count - 1)]
}

/// The process's peak resident set (VmHWM in /proc/self/status) in MB; 0 where that file is missing.
func peakResidentMegabytes() -> Double {
    guard let status = try? String(contentsOfFile: "/proc/self/status", encoding: .utf8) else { return 0 }
    for line in status.split(separator: "\n") where line.hasPrefix("VmHWM:") {
        let kB = line.split(separator: " ").compactMap { Double($0) }.first ?? 0
        return kB / 1024
    }
    return 0
}

/// A compiled engine group and the inputs it last ran on (for its profile).
final class RecordedPlan: CompiledGraph {
    let plan: EnginePlan
    var inputs: [String: NDArray] = [:]

    init(plan: EnginePlan) { self.plan = plan }

    func run(_ inputs: [String: NDArray], isTrain: Bool) throws -> [NDArray] {
        self.inputs = inputs
        return try plan.run(inputs, isTrain: isTrain)
    }
}

/// The plans one bind compiled, in order. A bind compiles its engine nodes on one thread; the lock
/// only makes that safe to rely on.
final class PlanLog: @unchecked Sendable {
    private let lock = NSLock()
    private var recorded: [RecordedPlan] = []

    func append(_ p: RecordedPlan) { lock.lock(); recorded.append(p); lock.unlock() }
    var plans: [RecordedPlan] { lock.lock(); defer { lock.unlock() }; return recorded }
}

/// The CPU engine, keeping every plan it compiles in a log.
struct RecordingEngine: Backend {
    let engine: CPUEngine
    let log: PlanLog

    var name: String { engine.name }
    func support(_ query: SupportQuery) -> Support { engine.support(query) }
    func compile(_ graph: Graph, shapes: InferredShapes, types: InferredTypes, constants: [String: NDArray]) throws -> any CompiledGraph {
        let recorded = RecordedPlan(plan: try engine.compilePlan(graph, shapes: shapes, types: types, constants: constants))
        log.append(recorded)
        return recorded
    }
}

/// Binds `sym` as `simpleBind(engine: .cpu(options))` does, through public API, with a recording
/// engine, runs one forward (so each plan knows its inputs) and returns the plans.
func recordedPlans(_ sym: Symbol, dataName: String, shape: Shape, shared: [String: NDArray], options: EngineOptions) throws -> [RecordedPlan] {
    let constants = shared.filter { $0.key != dataName }
    let auxNames = Set(sym.listAuxiliaryStates())
    let (partitioned, _) = try sym.partitionedWithReport(
        for: .cpu(options), argParams: constants.filter { !auxNames.contains($0.key) },
        auxParams: constants.filter { auxNames.contains($0.key) }, shapes: [dataName: shape])
    let log = PlanLog()
    let backend = EngineNode.backend(engines: ["cpu": RecordingEngine(engine: CPUEngine(options: options), log: log)], constants: constants)
    let exec = try partitioned.bind(shapes: [dataName: shape], sharedBuffer: shared, backend: backend)
    try exec.forward()
    return log.plans
}
