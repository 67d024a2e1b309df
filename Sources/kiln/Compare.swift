import ArgumentParser
import Foundation
import Kiln

/// Runs the framework (engine off) and the engine at each precision on the same batches and reports
/// how far the engine's answers are from the framework's: top-1 agreement, accuracy of each when
/// labels are known, max and mean abs difference of output 0.
///
/// For int8 the first `--calibration-batches` batches calibrate the activation ranges (a
/// ``Calibrator`` on the framework); the table is cached under the engine cache directory
/// (`KILN_ENGINE_CACHE_DIR`) as `calib-<key>.json` when one is set.
struct Compare: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Compare the engine at each precision with the framework on the same data: top-1 agreement, accuracy, output differences.")

    @Option(help: "The symbol JSON file.") var symbol: String
    @Option(help: "The parameters file (PREFIX-EPOCH.params).") var params: String
    @Option(help: "The data input's shape, NAME=N,C,H,W (e.g. data=100,1,28,28); N is the batch size.") var shape: String
    @Option(help: "Where batches come from: mnist (the MNIST test set), fashion-mnist-32 (the zoo's test set), or a .npy file of shape (count, C, H, W); default: seeded random data.")
    var data: String?
    @Option(help: "The folder holding MNIST; default $KILN_DATA_DIR/mnist, else ~/.kiln/data/mnist.") var dataDir: String?
    @Option(help: "Labels for --data FILE.npy: a .npy file of shape (count,).") var labels: String?
    @Option(help: "Precisions of the engine to compare, comma-separated.") var precisions: String = "fp32,bf16,int8"
    @Option(parsing: .unconditional, help: "Batches used to calibrate int8 (the first ones of the data).") var calibrationBatches: Int = 10
    @Option(help: "How int8 activation thresholds are chosen: minmax or entropy.") var calibration: String = "minmax"
    @Option(parsing: .unconditional, help: "Batches to compare; default: all the data holds (random data: 4).") var batches: Int?
    @Option(help: "Write the int8 calibration table (JSON) here; the engine reads it through its calibration_file option. Default: a temporary file.")
    var saveCalibration: String?
    @Flag(help: "Also print the results as one JSON object on the last line.") var json = false

    /// One batch: inputs by name and, when known, the label of each row.
    struct Batch {
        var inputs: [String: NDArray]
        var labels: [Int]?
    }

    /// What one run over the batches gave.
    struct Result {
        var precision: String
        var refusal: String?
        var agreement: Double?
        var accuracy: Double?
        var maxAbsDiff: Double?
        var meanAbsDiff: Double?
    }

    func validate() throws {
        try requireOption(calibrationBatches >= 1, "--calibration-batches", calibrationBatches, "give a count of at least 1")
        try requireOption(batches.map { $0 >= 1 } ?? true, "--batches", batches ?? 0, "give a count of at least 1")
    }

    func run() throws {
        try reportingErrors {
            let env = ProcessInfo.processInfo.environment
            let sym = try Symbol.load(jsonFile: symbol)
            let (args, aux) = try Checkpoint.loadParams(params)
            let weights = args.merging(aux) { a, _ in a }
            let (dataName, dataShape) = try parseShapeOption(shape)
            guard let method = CalibrationTable.Method(rawValue: calibration.lowercased()) else {
                throw ValidationError("--calibration \(calibration) is unknown; accepted values are minmax, entropy.")
            }
            guard calibrationBatches >= 1 else { throw ValidationError("--calibration-batches must be at least 1.") }
            let wanted = precisions.split(separator: ",").map { $0.trimmingCharacters(in: .whitespaces).lowercased() }.filter { !$0.isEmpty }
            guard !wanted.isEmpty else { throw ValidationError("--precisions names no precision; give e.g. fp32,bf16,int8.") }

            // Every input that is not a weight: the data, and labels (fed the batch's labels or zeros).
            let graph = sym.graph
            var given = weights.mapValues(\.shape)
            given[dataName] = dataShape
            guard graph.argumentNames.contains(dataName) else {
                throw ValidationError("--shape \(shape): the model has no argument '\(dataName)'; its arguments are \(graph.argumentNames.joined(separator: ", ")).")
            }
            let shapes = try sym.inferShape(given)
            let inputNames = graph.nodes.filter { $0.isVariable && weights[$0.name] == nil }.map(\.name)
            var inputShapes: [String: Shape] = [:]
            for name in inputNames { inputShapes[name] = shapes.byName[name] }

            let all = try loadBatches(dataName: dataName, dataShape: dataShape, inputShapes: inputShapes, env: env)
            guard !all.isEmpty else { throw ValidationError("The data holds no full batch of \(dataShape[0]).") }
            let count = min(batches ?? all.count, all.count)
            guard count >= 1 else { throw ValidationError("--batches must be at least 1.") }
            let evaluated = Array(all.prefix(count))
            let hasLabels = evaluated.allSatisfy { $0.labels != nil }

            // The framework's answers: the truth every precision is measured against.
            let framework = try sym.bind(shapes: inputShapes, sharedBuffer: weights, backend: OpByOpBackend.framework)
            var reference: [NDArray] = []
            for b in evaluated {
                try framework.forward(b.inputs)
                reference.append(snapshot(framework.outputs[0]))
            }
            let frameworkAccuracy = hasLabels ? accuracy(reference, evaluated) : nil

            var summary: [String: Any] = [:]
            // int8: the table is made here, over the first batches, written to a file and handed to the
            // engine through its calibration_file option, so every engine group quantizes with it.
            var tableFile: String?
            var temporary: String?
            defer { if let temporary { try? FileManager.default.removeItem(atPath: temporary) } }
            if wanted.contains("int8") {
                let (table, info) = try calibrate(graph: graph, shapes: shapes, weights: weights, method: method, batches: all, env: env)
                summary = info
                let path = saveCalibration ?? (NSTemporaryDirectory() + "kiln-compare-calib-\(ProcessInfo.processInfo.processIdentifier).json")
                if saveCalibration == nil { temporary = path }
                try table.save(to: path)
                tableFile = path
                if saveCalibration != nil { print("wrote the calibration table to \(path)") }
            }

            var results: [Result] = []
            for p in wanted {
                var r = Result(precision: p)
                let options: EngineOptions
                do {
                    var settings = env.filter { $0.key.hasPrefix("KILN_ENGINE_") }
                    settings.removeValue(forKey: EngineOptions.Key.precision.environmentName)
                    settings[EngineOptions.Key.precision.shortName] = p
                    if p == "int8", let tableFile {
                        for k in [EngineOptions.Key.calibrationFile, .calibrationMethod, .calibrationBatches] { settings.removeValue(forKey: k.environmentName) }
                        settings[EngineOptions.Key.calibrationFile.shortName] = tableFile
                        settings[EngineOptions.Key.calibrationMethod.shortName] = method.rawValue
                        settings[EngineOptions.Key.calibrationBatches.shortName] = String(calibrationBatches)
                    }
                    options = try EngineOptions(parsing: settings)
                } catch {
                    // The engine's own sentence for a precision it does not accept (yet).
                    r.refusal = "\(error)"
                    results.append(r)
                    continue
                }
                let exec = try sym.simpleBind(shapes: inputShapes, sharedBuffer: weights, engine: .cpu(options))
                var outputs: [NDArray] = []
                for b in evaluated {
                    try exec.forward(b.inputs)
                    outputs.append(snapshot(exec.outputs[0]))
                }
                var agree = 0, rows = 0, maxDiff = 0.0, sumDiff = 0.0, elements = 0
                for (o, f) in zip(outputs, reference) {
                    for (a, b) in zip(o.argmaxLastAxis(), f.argmaxLastAxis()) {
                        rows += 1
                        if a == b { agree += 1 }
                    }
                    let x = o.floats(), y = f.floats()
                    for (u, v) in zip(x, y) {
                        let d = Double(abs(u - v))
                        maxDiff = max(maxDiff, d.isNaN ? .infinity : d)
                        sumDiff += d
                    }
                    elements += x.count
                }
                r.agreement = rows == 0 ? nil : Double(agree) / Double(rows)
                r.accuracy = hasLabels ? accuracy(outputs, evaluated) : nil
                r.maxAbsDiff = maxDiff
                r.meanAbsDiff = elements == 0 ? 0 : sumDiff / Double(elements)
                results.append(r)
            }

            printTable(results, frameworkAccuracy: frameworkAccuracy, batches: count, batchSize: dataShape[0], source: data ?? "random")
            if json {
                var object: [String: Any] = [
                    "symbol": symbol, "params": params, "data": data ?? "random",
                    "batches": count, "batch_size": dataShape[0],
                    "framework": ["accuracy": frameworkAccuracy as Any? ?? NSNull()],
                    "precisions": results.map(jsonObject),
                ]
                if !summary.isEmpty { object["calibration"] = summary }
                let bytes = try JSONSerialization.data(withJSONObject: object, options: [.sortedKeys])
                print(String(decoding: bytes, as: UTF8.self))
            }
        }
    }

    /// A copy of an output that no later forward can write into (kernels may write bound buffers in place).
    func snapshot(_ a: NDArray) -> NDArray { NDArray(shape: a.shape, values: a.floats()) }

    /// Top-1 accuracy of output 0 over the batches' labels.
    func accuracy(_ outputs: [NDArray], _ batches: [Batch]) -> Double? {
        var correct = 0, total = 0
        for (o, b) in zip(outputs, batches) {
            guard let labels = b.labels else { return nil }
            for (p, l) in zip(o.argmaxLastAxis(), labels) {
                total += 1
                if p == l { correct += 1 }
            }
        }
        return total == 0 ? nil : Double(correct) / Double(total)
    }

    /// The batches: MNIST's test set, a .npy file (with optional labels), or seeded random data.
    /// Other inputs (labels of a SoftmaxOutput) are zeros of their inferred shape, or the labels.
    func loadBatches(dataName: String, dataShape: Shape, inputShapes: [String: Shape], env: [String: String]) throws -> [Batch] {
        let n = dataShape[0]
        let rowShape = Array(dataShape.dims.dropFirst())
        var images: [NDArray] = []
        var labelRows: [[Int]]?
        switch data {
        case "mnist"?:
            let dir = dataDir ?? ((env["KILN_DATA_DIR"] ?? (NSHomeDirectory() + "/.kiln/data")) + "/mnist")
            let test = try MNISTData(directory: dir, split: .test)
            let flat: Bool
            switch rowShape {
            case [1, test.images.shape[1], test.images.shape[2]]: flat = false
            case [test.images.shape[1] * test.images.shape[2]]: flat = true
            default:
                throw ValidationError("--data mnist gives images of shape (N, 1, \(test.images.shape[1]), \(test.images.shape[2])) or (N, \(test.images.shape[1] * test.images.shape[2])); --shape \(shape) is neither.")
            }
            let iter = try MNISTIter(data: test, batchSize: n, shuffle: false, flat: flat, dataName: dataName)
            var rows: [[Int]] = []
            while let batch = try iter.next() {
                images.append(batch.data[0])
                rows.append(batch.label[0].floats().map { Int($0) })
            }
            labelRows = rows
        case "fashion-mnist-32"?:
            // The zoo's test pipeline: Vision.FashionMNIST through FashionMNIST32, (N, 3, 32, 32).
            guard rowShape == [3, 32, 32] else {
                throw ValidationError("--data fashion-mnist-32 gives images of shape (N, 3, 32, 32); --shape \(shape) is not that.")
            }
            let test = try Vision.FashionMNIST(root: dataDir, train: false).transformFirst(FashionMNIST32())
            var rows: [[Int]] = []
            for start in stride(from: 0, to: test.count - n + 1, by: n) {
                var values: [Float] = [], row: [Int] = []
                values.reserveCapacity(dataShape.elementCount)
                for i in start..<(start + n) {
                    let sample = try test.item(at: i)
                    values += sample.data.floats()
                    row.append(Int(sample.label.floats().first ?? 0))
                }
                images.append(NDArray(shape: dataShape, values: values))
                rows.append(row)
            }
            labelRows = rows
        case let file?:
            let array = try NDArray.load(npyFile: file).converted(to: .float32)
            guard Array(array.shape.dims.dropFirst()) == rowShape, array.shape.rank >= 1 else {
                throw ValidationError("--data \(file) has shape \(array.shape), but --shape \(shape) needs (count, \(rowShape.map(String.init).joined(separator: ", "))).")
            }
            let values = array.floats()
            let per = rowShape.reduce(1, *)
            let total = array.shape[0]
            for start in stride(from: 0, to: total - n + 1, by: n) {
                images.append(NDArray(shape: dataShape, values: Array(values[(start * per)..<((start + n) * per)])))
            }
            if let labels {
                let l = try NDArray.load(npyFile: labels)
                guard l.elementCount >= images.count * n else {
                    throw ValidationError("--labels \(labels) holds \(l.elementCount) labels, fewer than the \(images.count * n) examples compared.")
                }
                let all = try ClassLabels.indices(l.floats(), file: labels)
                labelRows = (0..<images.count).map { Array(all[($0 * n)..<(($0 + 1) * n)]) }
            }
        case nil:
            var rng = SplitMix64(seed: 42)
            for _ in 0..<(batches ?? 4) {
                images.append(NDArray(shape: dataShape, values: (0..<dataShape.elementCount).map { _ in rng.nextFloat() }))
            }
        }
        return images.enumerated().map { k, image in
            var inputs: [String: NDArray] = [:]
            for (name, s) in inputShapes where name != dataName {
                // A label input gets the batch's labels when their count fits, zeros otherwise.
                if let rows = labelRows, s.elementCount == rows[k].count {
                    inputs[name] = NDArray(shape: s, values: rows[k].map(Float.init))
                } else {
                    inputs[name] = NDArray(zeros: s)
                }
            }
            inputs[dataName] = image
            return Batch(inputs: inputs, labels: labelRows?[k])
        }
    }

    /// The calibration table over the first batches: from the cache when the engine cache directory
    /// holds it, else computed with a Calibrator (and stored there). Prints a summary.
    func calibrate(graph: Graph, shapes: InferredShapes, weights: [String: NDArray], method: CalibrationTable.Method,
                   batches: [Batch], env: [String: String]) throws -> (CalibrationTable, [String: Any]) {
        let used = Array(batches.prefix(calibrationBatches))
        let constants = weights.filter { name, _ in graph.nodes.contains { $0.isVariable && $0.name == name } }
        let key = try CalibrationTable.key(graph: graph, shapes: shapes, constants: constants, method: method, batches: used.count)
        let cacheDir = try EngineOptions(environment: env).cacheDirectory
        var table: CalibrationTable?
        var source = "computed"
        if let cacheDir {
            do {
                table = try CalibrationTable.cached(in: cacheDir, key: key)
                if table != nil { source = "cache \(CalibrationTable.cachePath(in: cacheDir, key: key))" }
            } catch {
                FileHandle.standardError.write(Data("kiln: \(error) It is computed again.\n".utf8))
            }
        }
        let start = Date()
        if table == nil {
            let calibrator = try Calibrator(graph: graph, shapes: shapes, types: try graph.inferTypes(constants.mapValues(\.dtype)),
                                            constants: constants, method: method)
            for b in used { _ = try calibrator.observe(b.inputs) }
            table = calibrator.table()
            if let cacheDir, let t = table { source = "computed, stored in " + (try t.store(in: cacheDir, key: key)) }
        }
        guard let table else { throw ValidationError("No calibration table was made.") }
        let seconds = Date().timeIntervalSince(start)
        print("int8 calibration: \(table.method.rawValue) over \(table.batches) batches, \(table.ranges.count) values (\(source), \(String(format: "%.2f", seconds)) s)")
        print("  value".padding(toLength: 44, withPad: " ", startingAt: 0) + "min".leftPadded(11) + "max".leftPadded(11) + "threshold".leftPadded(11))
        // Graph order, so the summary reads as the model does.
        var order: [String] = []
        for n in graph.nodes {
            if table.ranges[n.name] != nil { order.append(n.name) }
            for k in 1..<8 where table.ranges["\(n.name):\(k)"] != nil { order.append("\(n.name):\(k)") }
        }
        for name in order {
            guard let r = table.ranges[name] else { continue }
            print(("  " + name).padding(toLength: 44, withPad: " ", startingAt: 0)
                  + String(format: "%11.4g%11.4g%11.4g", r.min, r.max, r.threshold))
        }
        let info: [String: Any] = ["method": table.method.rawValue, "batches": table.batches, "values": table.ranges.count,
                                   "key": key, "source": source]
        return (table, info)
    }

    func printTable(_ results: [Result], frameworkAccuracy: Double?, batches: Int, batchSize: Int, source: String) {
        print("compared on \(batches) batches of \(batchSize) (\(source)); the framework (engine off) is the reference")
        let header = "precision".padding(toLength: 11, withPad: " ", startingAt: 0) + "top-1 agree".leftPadded(13)
            + "accuracy".leftPadded(10) + "max |diff|".leftPadded(12) + "mean |diff|".leftPadded(12)
        print(header)
        func pct(_ v: Double?) -> String { v.map { String(format: "%.2f%%", $0 * 100) } ?? "-" }
        print("framework".padding(toLength: 11, withPad: " ", startingAt: 0) + "-".leftPadded(13) + pct(frameworkAccuracy).leftPadded(10)
              + "-".leftPadded(12) + "-".leftPadded(12))
        for r in results {
            let name = r.precision.padding(toLength: 11, withPad: " ", startingAt: 0)
            if let refusal = r.refusal {
                print(name + "  not run: " + refusal)
                continue
            }
            print(name + pct(r.agreement).leftPadded(13) + pct(r.accuracy).leftPadded(10)
                  + String(format: "%12.3g%12.3g", r.maxAbsDiff ?? 0, r.meanAbsDiff ?? 0))
        }
    }

    func jsonObject(_ r: Result) -> [String: Any] {
        if let refusal = r.refusal { return ["precision": r.precision, "status": "refused", "reason": refusal] }
        return ["precision": r.precision, "status": "ok",
                "top1_agreement": r.agreement as Any? ?? NSNull(), "accuracy": r.accuracy as Any? ?? NSNull(),
                "max_abs_diff": r.maxAbsDiff ?? 0, "mean_abs_diff": r.meanAbsDiff ?? 0]
    }
}

extension String {
    /// The string right-aligned in `width` columns.
    func leftPadded(_ width: Int) -> String { count >= width ? " " + self : String(repeating: " ", count: width - count) + self }
}

