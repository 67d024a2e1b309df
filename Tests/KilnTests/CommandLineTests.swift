import Foundation
import Testing

/// The `kiln` binary on bad flags: a sentence and exit code 1, never a hang or a trap. The binary is the one `swift build --build-tests` builds beside
/// the test bundle.
@Suite struct CommandLineTests {
    static let kiln: URL = URL(fileURLWithPath: CommandLine.arguments[0]).deletingLastPathComponent().appendingPathComponent("kiln")
    static var hasBinary: Bool { FileManager.default.isExecutableFile(atPath: kiln.path) }

    /// Runs kiln with `arguments`; gives up after `timeout` seconds (a hang is a failure, not a stall).
    static func run(_ arguments: [String], timeout: Double = 60) throws -> (status: Int32, output: String) {
        let p = Process()
        p.executableURL = kiln
        p.arguments = arguments
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
}
