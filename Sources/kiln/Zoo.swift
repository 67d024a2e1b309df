import ArgumentParser
import Foundation
import Kiln

/// The seed's model-zoo experiment: each CIFAR model classifies the Fashion-MNIST-32 test set in pure
/// framework mode and with the CPU engine; time (compilation excluded) and accuracy are compared.
struct Zoo: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Run CIFAR model-zoo networks over the Fashion-MNIST-32 test set with and without the engine: time, accuracy, speed-up.",
        discussion: """
            For each model, prints the seed's block (pure framework time and accuracy, engine time and accuracy, \
            speed-up with compilation not counted, absolute accuracy difference), then a summary table. Models \
            without weights are listed as skipped with the reason. Weights: NAME-symbol.json and NAME-0000.params \
            in the model directory (--model-dir, else $KILN_MODEL_DIR, else ~/.kiln/models). Data: the \
            Fashion-MNIST test set (--data-dir, else $KILN_DATA_DIR/fashion-mnist, else \
            /usr/share/datasets/fashion-mnist) through the FashionMNIST32 transform and a DataLoader. \
            Engine options come from the KILN_ENGINE_* variables; set OMP_WAIT_POLICY=passive on a shared machine.
            """)

    /// The seed's ten models, in its order.
    static let seedModels = [
        "cifar_resnet20_v1", "cifar_resnet56_v1", "cifar_resnet110_v1",
        "cifar_resnet20_v2", "cifar_resnet56_v2", "cifar_resnet110_v2",
        "cifar_wideresnet16_10", "cifar_wideresnet28_10", "cifar_wideresnet40_8",
        "cifar_resnext29_16x64d",
    ]

    @Option(parsing: .unconditional, help: "The batch size bound for both modes.") var batch: Int = 16
    @Option(help: "Models to run, comma-separated; default the seed's ten.") var models: String?
    @Option(parsing: .unconditional, help: "Classify only the first N test images.") var limit: Int?
    @Option(help: "The folder of trained weights (Gluon's NAME.params, or NAME-symbol.json + NAME-0000.params); sets KILN_MODEL_DIR.") var modelDir: String?
    @Flag(help: "Random weights instead of trained ones (every model runs; accuracy is chance).") var randomWeights = false
    @Option(help: "The folder holding Fashion-MNIST's t10k IDX files.") var dataDir: String?
    @Option(parsing: .unconditional, help: "Threads making batches before timing starts (0: on this thread).") var workers: Int = 1
    @Option(help: "Where both modes run: cpu (the CPU engine), or gpu / gpu(N) (the GPU's framework mode and the cuda engine, KILN_ENGINE_PRECISION fp32, fp16 or bf16).")
    var context: String = "cpu"
    @Flag(help: "End with one line of JSON: batch, images, results and skipped models.") var json = false

    func validate() throws {
        try requireOption(batch >= 1 && batch <= 65_536, "--batch", batch, "give a batch size from 1 to 65536")
        try requireOption(limit.map { $0 >= 1 } ?? true, "--limit", limit ?? 0, "give a count of at least 1")
        try requireOption(workers >= 0 && workers <= 256, "--workers", workers, "give a thread count from 0 to 256")
    }

    func run() throws {
        try reportingErrors {
            guard batch >= 1 else { throw ValidationError("--batch must be at least 1.") }
            if let limit, limit < 1 { throw ValidationError("--limit must be at least 1.") }
            let names = models.map { $0.split(separator: ",").map { $0.trimmingCharacters(in: .whitespaces) }.filter { !$0.isEmpty } }
                ?? Self.seedModels
            guard !names.isEmpty else { throw ValidationError("--models names no model.") }
            // zooModel reads the folder from the environment, as ModelZoo.get will.
            if let modelDir { setenv("KILN_MODEL_DIR", modelDir, 1) }
            let engineOptions = try EngineOptions(environment: ProcessInfo.processInfo.environment)
            let place = try parseContext(context)

            let test = try Vision.FashionMNIST(root: dataDir, train: false)
            let loader = try DataLoader(dataset: test.transformFirst(FashionMNIST32()), batchSize: batch,
                                        lastBatch: .keep, numWorkers: workers)
            // Read and transform the test set once, untimed; every model classifies the same arrays.
            let batches = try ZooExperiment.batches(from: loader, limit: limit)
            let images = batches.reduce(0) { $0 + $1.labels.count }
            let environment = ProcessInfo.processInfo.environment
            print("Fashion-MNIST-32 test set from \(test.root): \(images) images, batch \(batch), \(place), engine \(engineOptions.precision.rawValue), OMP_WAIT_POLICY=\(environment["OMP_WAIT_POLICY"] ?? "unset")")
            print("")

            var results: [ZooResult] = []
            var skipped: [(name: String, reason: String)] = []
            for name in names {
                do {
                    let (symbol, weights) = try zooModel(name: name, pretrained: !randomWeights)
                    let result = try ZooExperiment.run(name: name, symbol: symbol, weights: weights, batches: batches, batch: batch,
                                                       engineOptions: engineOptions, context: place, printBlock: true)
                    results.append(result)
                } catch {
                    skipped.append((name, "\(error)"))
                    print("Model: \(name)\nSkipped: \(error)")
                }
                print("")
                fflush(nil)   // all streams: the blocks show up as models finish, even through a pipe
            }
            print(zooSummary(results, skipped: skipped), terminator: "")
            if json {
                let object: [String: Any] = [
                    "batch": batch, "images": images,
                    "results": results.map(\.jsonObject),
                    "skipped": skipped.map { ["model": $0.name, "reason": $0.reason] },
                ]
                let data = try JSONSerialization.data(withJSONObject: object, options: [.sortedKeys])
                print(String(decoding: data, as: UTF8.self))
            }
        }
    }
}

/// The summary table of `kiln zoo`: one row per model run, then the skipped ones with their reasons.
func zooSummary(_ results: [ZooResult], skipped: [(name: String, reason: String)]) -> String {
    let header = ["model", "framework img/s", "engine img/s", "speed-up", "framework acc", "engine acc", "|diff|", "top-1 agree"]
    let rows = results.map { r in
        [r.name, String(format: "%.1f", r.frameworkImagesPerSecond), String(format: "%.1f", r.engineImagesPerSecond),
         String(format: "%.2fx", r.speedUp), String(format: "%.4f", r.frameworkAccuracy),
         String(format: "%.4f", r.engineAccuracy), String(format: "%.4f", r.accuracyDifference),
         String(format: "%.4f", 1 - Double(r.disagreements) / Double(max(r.images, 1)))]
    }
    let widths = header.indices.map { c in ([header] + rows).map { $0[c].count }.max() ?? 0 }
    func line(_ cells: [String]) -> String {
        cells.enumerated().map { c, cell in
            // The model name left-aligned, numbers right-aligned.
            let pad = String(repeating: " ", count: widths[c] - cell.count)
            return c == 0 ? cell + pad : pad + cell
        }.joined(separator: "  ") + "\n"
    }
    var text = "Summary\n" + line(header) + line(widths.map { String(repeating: "-", count: $0) })
    for row in rows { text += line(row) }
    if rows.isEmpty { text += "(no model ran)\n" }
    for s in skipped { text += "skipped \(s.name): \(s.reason)\n" }
    return text
}


/// A zoo model's symbol and weights (arguments and auxiliary states by name).
///
/// A zoo network and its weights, as the seed does it: `ModelZoo.get(name, pretrained:)`, the net
/// called on `Symbol.variable("data")`, the weights from `collectParams()`. With `pretrained`, the
/// weights come from `NAME.params` (Gluon's format) in the model directory (`--model-dir`,
/// `$KILN_MODEL_DIR`, else `~/.kiln/models`); an exported checkpoint `NAME-symbol.json` +
/// `NAME-0000.params` there is used when no Gluon file is. Without `pretrained`: random weights.
func zooModel(name: String, pretrained: Bool) throws -> (symbol: Symbol, weights: [String: NDArray]) {
    let directory = ModelZoo.modelDirectory()
    let gluonFile = (directory as NSString).appendingPathComponent(name + ".params")
    let (symbolPath, paramsPath) = Checkpoint.paths(prefix: (directory as NSString).appendingPathComponent(name), epoch: 0)
    if pretrained, !FileManager.default.fileExists(atPath: gluonFile),
       FileManager.default.fileExists(atPath: symbolPath), FileManager.default.fileExists(atPath: paramsPath) {
        let (symbol, args, aux) = try Checkpoint.load(prefix: (directory as NSString).appendingPathComponent(name), epoch: 0)
        return (symbol, args.merging(aux) { a, _ in a })
    }
    let net = try ModelZoo.get(name, pretrained: pretrained)
    if !pretrained {
        try net.inferParameterShapes(inputShape: [1, 3, 32, 32])
        try net.initialize(Xavier(randomType: .gaussian, factorType: .fanIn, magnitude: 2))
    }
    return (try net(Symbol.variable("data")), net.collectParams().arrays)
}
