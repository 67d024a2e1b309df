import Foundation
import Kiln
import Testing

/// The `kiln` binary on bad flags: a sentence and exit code 1, never a hang or a trap. The binary is the one `swift build --build-tests` builds beside
/// the test bundle.
@Suite struct CommandLineTests {
    static let kiln: URL = URL(fileURLWithPath: CommandLine.arguments[0]).deletingLastPathComponent().appendingPathComponent("kiln")
    static var hasBinary: Bool { FileManager.default.isExecutableFile(atPath: kiln.path) }

    /// Runs kiln with `arguments`; gives up after `timeout` seconds (a hang is a failure, not a stall).
    static func run(_ arguments: [String], environment: [String: String] = [:], timeout: Double = 60) throws -> (status: Int32, output: String) {
        let p = Process()
        p.executableURL = kiln
        p.arguments = arguments
        if !environment.isEmpty { p.environment = ProcessInfo.processInfo.environment.merging(environment) { _, new in new } }
        let pipe = Pipe()
        p.standardOutput = pipe
        p.standardError = pipe
        try p.run()
        let deadline = Date().addingTimeInterval(timeout)
        while p.isRunning && Date() < deadline { Thread.sleep(forTimeInterval: 0.05) }
        if p.isRunning { p.terminate(); p.waitUntilExit(); return (-1, "timed out") }
        let output = String(decoding: pipe.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
        return (p.terminationStatus, output)
    }

    @Test(.enabled(if: hasBinary, "no kiln binary beside the test bundle (swift build --build-tests builds it)"),
          arguments: ["inf", "1e308", "nan", "-1", "90000"])
    func benchRefusesSecondsOutOfRange(seconds: String) throws {
        let model = "Tests/Fixtures/golden/models/cifar_resnet20_v1/cifar_resnet20_v1"
        let (status, output) = try Self.run(["bench", "--symbol", model + "-symbol.json", "--params", model + "-0000.params",
                                             "--shape", "data=1,3,32,32", "--seconds=\(seconds)"])
        #expect(status == 1, "\(output)")
        #expect(output.contains("--seconds") && output.contains("from 0 to 86400"), "\(output)")
    }

    static let lenet = "Tests/Fixtures/golden/models/lenet/"
    static let resnet = "Tests/Fixtures/golden/models/cifar_resnet20_v1/"

    /// The seed's LeNet-5 (its graph has a `softmax_label` input) runs with only its data given and
    /// matches MXNet's output, with the engine off and on.
    @Test(.enabled(if: hasBinary, "no kiln binary beside the test bundle"), arguments: ["0", "1"])
    func runNeedsNoLabel(engine: String) throws {
        let (status, output) = try Self.run(["run", "--symbol", Self.lenet + "lenet-symbol.json", "--params", Self.lenet + "lenet-0000.params",
                                             "--input", "data=" + Self.lenet + "input.npy", "--expect", Self.lenet + "output.npy"],
                                            environment: ["KILN_USE_ENGINE": engine, "KILN_ENGINE_CACHE_DIR": ""])
        #expect(status == 0, "\(output)")
        #expect(output.contains("softmax_label not given") && output.contains("OK: within 1e-4"), "\(output)")
    }

    @Test(.enabled(if: hasBinary, "no kiln binary beside the test bundle"))
    func runHelpSaysLabelsAreOptional() throws {
        let (status, output) = try Self.run(["run", "--help"])
        #expect(status == 0)
        #expect(output.contains("Labels of loss heads") && output.contains("KILN_MEMORY_LIMIT"), "\(output)")
    }

    /// An input too large for the budget is a sentence naming the array and the bytes, exit 1; the
    /// process stays small (the check comes before the allocation).
    @Test(.enabled(if: hasBinary, "no kiln binary beside the test bundle"), arguments: ["0", "1"])
    func runOverTheMemoryBudgetIsASentence(engine: String) throws {
        let input = NSTemporaryDirectory() + "kiln-cli-big-\(UUID().uuidString).npy"
        defer { try? FileManager.default.removeItem(atPath: input) }
        try NDArray(zeros: [1, 3, 1024, 1024]).save(npyFile: input)
        let (status, output) = try Self.run(["run", "--symbol", Self.resnet + "cifar_resnet20_v1-symbol.json",
                                             "--params", Self.resnet + "cifar_resnet20_v1-0000.params", "--input", input],
                                            environment: ["KILN_USE_ENGINE": engine, "KILN_MEMORY_LIMIT": "100M", "KILN_ENGINE_CACHE_DIR": ""])
        #expect(status == 1, "\(output)")
        #expect(output.contains("Not enough memory for") && output.contains("KILN_MEMORY_LIMIT=100M") && output.contains("(1, 16, 1024, 1024)"), "\(output)")
    }

    @Test(.enabled(if: hasBinary, "no kiln binary beside the test bundle"))
    func aBadMemoryLimitIsASentence() throws {
        let (status, output) = try Self.run(["run", "--symbol", Self.lenet + "lenet-symbol.json", "--params", Self.lenet + "lenet-0000.params",
                                             "--input", Self.lenet + "input.npy"], environment: ["KILN_MEMORY_LIMIT": "lots"])
        #expect(status == 1 && output.contains("KILN_MEMORY_LIMIT='lots' cannot be used"), "\(output)")
    }

    /// Paths that are no model file: a folder, nothing, an empty device.
    @Test(.enabled(if: hasBinary, "no kiln binary beside the test bundle"),
          arguments: [("/tmp", "it is a directory, not a file"), ("/no/such/file.json", "it does not exist"), ("/dev/null", "the file is empty")])
    func pathsThatAreNoModelAreSaidSo(path: String, message: String) throws {
        let (status, output) = try Self.run(["inspect", path])
        #expect(status == 1 && output.contains(message) && !output.contains("NSCocoaErrorDomain") && !output.contains("ermission"), "\(output)")
    }

    /// A cache folder that is a file is said once, and the run still gives its answer.
    @Test(.enabled(if: hasBinary, "no kiln binary beside the test bundle"))
    func anUnusableCacheFolderIsSaidOnce() throws {
        let file = NSTemporaryDirectory() + "kiln-cache-file-\(UUID().uuidString)"
        FileManager.default.createFile(atPath: file, contents: Data("x".utf8))
        defer { try? FileManager.default.removeItem(atPath: file) }
        let (status, output) = try Self.run(["run", "--symbol", Self.resnet + "cifar_resnet20_v1-symbol.json",
                                             "--params", Self.resnet + "cifar_resnet20_v1-0000.params", "--input", Self.resnet + "input.npy",
                                             "--expect", Self.resnet + "output.npy"],
                                            environment: ["KILN_USE_ENGINE": "1", "KILN_ENGINE_CACHE_DIR": file])
        #expect(status == 0, "\(output)")
        let warnings = output.components(separatedBy: "cannot be used").count - 1
        #expect(warnings == 1 && output.contains("it is a file, not a folder") && output.contains("OK: within 1e-4"), "\(output)")
    }

    /// A negative number for a numeric option is checked against its range, not read as a missing
    /// value followed by an unknown flag ("Missing value for '--repeat <repeat>'").
    @Test(.enabled(if: hasBinary, "no kiln binary beside the test bundle"),
          arguments: [(["run", "--symbol", "x.json", "--repeat", "-1"], "--repeat -1 is not accepted"),
                      (["zoo", "--batch", "-5"], "--batch -5 is not accepted"),
                      (["lenet", "--epochs", "-2"], "--epochs -2 is not accepted"),
                      (["lenet", "--learning-rate", "-0.1"], "--learning-rate -0.1 is not accepted"),
                      (["compare", "--symbol", "x.json", "--params", "x.params", "--shape", "data=1,1,28,28", "--calibration-batches", "-1"], "--calibration-batches -1 is not accepted"),
                      (["partition", "--symbol", "x.json", "--min-group", "-3"], "--min-group -3 is not accepted")])
    func negativeOptionValuesAreRangeChecked(arguments: [String], message: String) throws {
        let (status, output) = try Self.run(arguments)
        #expect(status != 0 && output.contains(message) && !output.contains("Missing value"), "\(output)")
    }

    /// A LeNet-5 partitioned to a file (`kiln partition --output`) keeps its label optional, through
    /// the engine node's label inputs; with the engine off it says the symbol needs the engine.
    @Test(.enabled(if: hasBinary, "no kiln binary beside the test bundle"))
    func aPartitionedModelNeedsNoLabelEither() throws {
        let file = NSTemporaryDirectory() + "kiln-partitioned-\(UUID().uuidString)-symbol.json"
        defer { try? FileManager.default.removeItem(atPath: file) }
        let (made, log) = try Self.run(["partition", "--symbol", Self.lenet + "lenet-symbol.json", "--params", Self.lenet + "lenet-0000.params",
                                        "--shape", "data=4,1,28,28", "--output", file])
        #expect(made == 0, "\(log)")
        let run = ["run", "--symbol", file, "--params", Self.lenet + "lenet-0000.params", "--input", Self.lenet + "input.npy",
                   "--expect", Self.lenet + "output.npy"]
        let (status, output) = try Self.run(run, environment: ["KILN_USE_ENGINE": "1", "KILN_ENGINE_CACHE_DIR": ""])
        #expect(status == 0 && output.contains("OK: within 1e-4"), "\(output)")
        let (off, message) = try Self.run(run, environment: ["KILN_USE_ENGINE": "0"])
        #expect(off == 1 && message.contains("engine nodes (made by partitioning) only the engine runs"), "\(message)")
    }
}
