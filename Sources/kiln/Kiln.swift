import ArgumentParser
import Foundation
import Kiln

@main
struct KilnCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "kiln",
        abstract: "Kiln: MXNet-compatible graphs, bound and run in Swift.",
        subcommands: [Run.self, Inspect.self, LeNet.self, Partition.self, Compare.self, Bench.self, Zoo.self, ZooTrain.self, ZooImport.self, Devices.self, GPUCheck.self])
}

/// Prints a Kiln error as its sentence and exits non-zero, so no command crashes on bad input.
func reportingErrors(_ body: () throws -> Void) throws {
    do {
        try body()
    } catch let e as ExitCode {
        throw e
    } catch {
        FileHandle.standardError.write(Data("kiln: \(error)\n".utf8))
        throw ExitCode(1)
    }
}

/// A numeric option's range check, for a command's `validate()`: a sentence naming the option, the
/// value and what it takes. (Numeric options parse `.unconditional`, so that `--batch -1` reaches
/// this check instead of reading as a missing value followed by an unknown flag.)
func requireOption(_ accepted: Bool, _ option: String, _ value: Any, _ what: String) throws {
    guard accepted else { throw ValidationError("\(option) \(value) is not accepted; \(what).") }
}

/// Parses `data=1,3,32,32` into a name and a shape.
func parseShapeOption(_ text: String) throws -> (String, Shape) {
    let parts = text.split(separator: "=", maxSplits: 1).map(String.init)
    guard parts.count == 2, !parts[0].isEmpty else {
        throw ValidationError("--shape takes NAME=D1,D2,..., for example data=1,3,32,32; got '\(text)'.")
    }
    var dims: [Int] = []
    for d in parts[1].split(separator: ",") {
        guard let v = Int(d.trimmingCharacters(in: .whitespaces)), v > 0 else {
            throw ValidationError("--shape \(text): '\(d)' is not a positive integer.")
        }
        dims.append(v)
    }
    guard !dims.isEmpty else { throw ValidationError("--shape \(text) gives no dimensions.") }
    return (parts[0], Shape(dims))
}

struct Run: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Run a model on inputs from .npy files and write its outputs as .npy files.",
        discussion: """
            Labels of loss heads (SoftmaxOutput's softmax_label) are optional: inference does not read them, so \
            a label not given with --input is bound as zeros of its inferred shape, as MXNet's Module.predict does. \
            KILN_MEMORY_LIMIT (such as 2G) caps the memory a bind may take; by default it is the memory available.
            """)

    @Option(help: "The symbol JSON file (PREFIX-symbol.json).") var symbol: String
    @Option(help: "The parameters file (PREFIX-EPOCH.params); names with arg:/aux: prefixes or plain names.") var params: String?
    @Option(name: .customLong("input"), help: "An input as FILE.npy (the model's one data input) or NAME=FILE.npy; repeat for several.")
    var inputs: [String] = []
    @Option(name: .customLong("output"), help: "Where to write output 0 as .npy, or INDEX=FILE.npy; repeat for several.")
    var outputs: [String] = []
    @Option(help: "What runs the graph: framework (oneDNN op by op), reference (naive Swift) or engine (partitioned, CPU engine); default: the KILN_USE_ENGINE switch.")
    var backend: String?
    @Option(name: .customLong("repeat"), parsing: .unconditional, help: "Run forward this many times and report the median time.") var repeatCount: Int = 1
    @Option(help: "A .npy file to compare output 0 with; fails when the max abs difference exceeds 1e-4 of max |expected|.")
    var expect: String?
    @Flag(help: "End with one line of JSON: load, bind and first-forward times, the median forward, and each output's shape.")
    var json = false

    func validate() throws {
        try requireOption(repeatCount >= 1 && repeatCount <= 1_000_000, "--repeat", repeatCount, "give a count from 1 to 1000000")
    }

    func run() throws {
        try reportingErrors {
            let loadStart = Date()
            let sym = try Symbol.load(jsonFile: symbol)
            var args: [String: NDArray] = [:], aux: [String: NDArray] = [:]
            if let params { (args, aux) = try Checkpoint.loadParams(params) }
            let loadSeconds = Date().timeIntervalSince(loadStart)
            let arguments = sym.listArguments()
            let labels = Set(sym.listLabelArguments())
            let unset = arguments.filter { args[$0] == nil }
            // Labels are optional at inference: they count as inputs only when given.
            let dataArguments = unset.filter { !labels.contains($0) }
            var feeds: [String: NDArray] = [:]
            for spec in inputs {
                let parts = spec.split(separator: "=", maxSplits: 1).map(String.init)
                let (name, file): (String, String)
                if parts.count == 2 { (name, file) = (parts[0], parts[1]) } else {
                    guard dataArguments.count == 1 else {
                        throw ValidationError("The model has \(dataArguments.count) inputs without parameters (\(dataArguments.joined(separator: ", "))); name each as --input NAME=FILE.npy.")
                    }
                    (name, file) = (dataArguments[0], spec)
                }
                guard arguments.contains(name) else {
                    throw ValidationError("--input \(spec): the model has no argument '\(name)'; its arguments are \(arguments.joined(separator: ", ")).")
                }
                feeds[name] = try NDArray.load(npyFile: file)
            }
            let missing = dataArguments.filter { feeds[$0] == nil }
            guard missing.isEmpty else {
                throw ValidationError("No value for \(missing.joined(separator: ", ")): give each as --input NAME=FILE.npy (or in --params).")
            }
            var shared = args.merging(aux) { a, _ in a }
            shared.merge(feeds) { _, f in f }
            if !labels.isEmpty && labels.allSatisfy({ feeds[$0] == nil && args[$0] == nil }) {
                print("labels \(labels.sorted().joined(separator: ", ")) not given: bound as zeros (inference does not read them)")
            }
            let shapes = feeds.mapValues(\.shape), types = feeds.mapValues(\.dtype)
            let bindStart = Date()
            let exec: Executor
            let label: String
            switch backend {
            case nil:
                let selection = try EngineSelection.fromEnvironment()
                label = selection == .framework ? "framework" : "engine"
                exec = try sym.simpleBind(shapes: shapes, types: types, sharedBuffer: shared, engine: selection)
            case "framework"?:
                (label, exec) = ("framework", try sym.bind(shapes: shapes, types: types, sharedBuffer: shared, backend: OpByOpBackend.framework))
            case "reference"?:
                (label, exec) = ("reference", try sym.bind(shapes: shapes, types: types, sharedBuffer: shared, backend: OpByOpBackend.reference))
            case "engine"?:
                let options = try EngineOptions(environment: ProcessInfo.processInfo.environment)
                (label, exec) = ("engine", try sym.simpleBind(shapes: shapes, types: types, sharedBuffer: shared, engine: .cpu(options)))
            case let other?:
                throw ValidationError("--backend \(other) is unknown; accepted values are framework, reference, engine.")
            }
            let bindSeconds = Date().timeIntervalSince(bindStart)
            var times: [Double] = []
            for _ in 0..<repeatCount {
                let start = Date()
                try exec.forward()
                times.append(Date().timeIntervalSince(start) * 1000)
            }
            let names = sym.listOutputs()
            for (i, out) in exec.outputs.enumerated() {
                let bad = out.nonFiniteCounts()
                let note = bad.nan + bad.infinite == 0 ? "" : " (\(bad.nan) NaN and \(bad.infinite) infinite of \(out.elementCount) elements)"
                print("\(names[i]): shape \(out.shape), dtype \(out.dtype), max |x| \(String(format: "%.6g", out.maxAbs()))\(note)")
            }
            let median = times.sorted()[times.count / 2]
            let batch = feeds.values.first?.shape.dims.first ?? 1
            print(String(format: "forward (%@ backend): median %.3f ms over %d runs, %.1f samples/s at batch %d",
                         label, median, repeatCount, Double(batch) / median * 1000, batch))
            if let expect {
                let expected = try NDArray.load(npyFile: expect)
                let out = exec.outputs[0]
                guard out.shape == expected.shape else {
                    throw ValidationError("Output 0 has shape \(out.shape), but \(expect) has shape \(expected.shape).")
                }
                let diff = try out.maxAbsDifference(expected)
                let scale = max(expected.maxAbs(), Double.leastNonzeroMagnitude)
                let agree = zip(out.argmaxLastAxis(), expected.argmaxLastAxis()).filter { $0 == $1 }.count
                print(String(format: "compared with %@: max |diff| %.3g = %.3g of max |expected| %.4g; argmax agrees on %d of %d rows",
                             expect, diff, diff / scale, scale, agree, out.argmaxLastAxis().count))
                guard diff <= 1e-4 * scale else {
                    FileHandle.standardError.write(Data("kiln: the output differs from \(expect) by more than 1e-4 of its max abs value.\n".utf8))
                    throw ExitCode(1)
                }
                print("OK: within 1e-4 of max |expected|")
            }
            for (k, spec) in outputs.enumerated() {
                let parts = spec.split(separator: "=", maxSplits: 1).map(String.init)
                let (index, file) = parts.count == 2 ? (Int(parts[0]) ?? -1, parts[1]) : (k, spec)
                guard index >= 0 && index < exec.outputs.count else {
                    throw ValidationError("--output \(spec): the model has \(exec.outputs.count) outputs, numbered from 0.")
                }
                try exec.outputs[index].save(npyFile: file)
                print("wrote \(names[index]) to \(file)")
            }
            if json {
                let summary: [String: Any] = [
                    "backend": label, "load_s": loadSeconds, "bind_s": bindSeconds,
                    "first_forward_ms": times[0], "median_ms": median, "runs": repeatCount,
                    "outputs": exec.outputs.map { ["shape": $0.shape.dims, "dtype": $0.dtype.description] },
                ]
                let data = try JSONSerialization.data(withJSONObject: summary, options: [.sortedKeys])
                print(String(decoding: data, as: UTF8.self))
            }
        }
    }
}

struct Inspect: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Describe a symbol file: ops with counts, arguments, auxiliary states and, given input shapes, every shape and the parameter count.")

    @Argument(help: "The symbol JSON file.") var symbol: String
    @Option(name: .customLong("shape"), help: "An input shape, NAME=D1,D2,... (e.g. data=1,3,32,32); repeat for several.")
    var shapes: [String] = []

    func run() throws {
        try reportingErrors {
            let sym = try Symbol.load(jsonFile: symbol)
            let g = sym.graph
            var counts: [String: Int] = [:]
            for n in g.nodes where !n.isVariable { counts[n.op, default: 0] += 1 }
            print("\(symbol): \(g.nodes.count) nodes, \(counts.values.reduce(0, +)) ops")
            print("ops:")
            for op in counts.keys.sorted() { print("  \(op): \(counts[op]!)") }
            let args = sym.listArguments()
            print("arguments (\(args.count)): \(args.prefix(8).joined(separator: ", "))\(args.count > 8 ? ", ..." : "")")
            let aux = sym.listAuxiliaryStates()
            print("auxiliary states (\(aux.count)): \(aux.isEmpty ? "none" : aux.prefix(4).joined(separator: ", ") + (aux.count > 4 ? ", ..." : ""))")
            print("outputs: \(sym.listOutputs().joined(separator: ", "))")
            guard !shapes.isEmpty else {
                print("(give --shape data=N,C,H,W to infer shapes and count parameters)")
                return
            }
            var given: [String: Shape] = [:]
            for s in shapes { let (n, sh) = try parseShapeOption(s); given[n] = sh }
            let inferred = try sym.inferShape(given)
            let params = zip(sym.listArguments(), inferred.arguments).filter { given[$0.0] == nil }
            let paramCount = params.reduce(0) { $0 + $1.1.elementCount }
            let auxCount = inferred.auxiliaryStates.reduce(0) { $0 + $1.elementCount }
            print("parameters: \(paramCount) in \(params.count) arrays (plus \(auxCount) in auxiliary states)")
            print("output shapes: \(inferred.outputs.map(\.description).joined(separator: ", "))")
            print("shapes (inputs -> outputs):")
            for (i, n) in g.nodes.enumerated() where !n.isVariable {
                let ins = n.inputs.map { inferred.nodeOutputs[$0.node][$0.index].description }.joined(separator: ", ")
                let outs = inferred.nodeOutputs[i].map(\.description).joined(separator: ", ")
                print("  \(n.name) (\(n.op)): \(ins) -> \(outs)")
            }
        }
    }
}
