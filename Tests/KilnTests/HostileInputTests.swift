import Foundation
import Kiln
import TestSupport
import Testing

/// Numbers from a user's file or flag are converted with a check: a bad one is a sentence naming the
/// file and the position, never a trap.
@Suite struct HostileInputTests {
    @Test(arguments: [Float.nan, .infinity, -.infinity, 1e30, -1, 2.5, 2_147_483_648])
    func aLabelThatIsNoClassIndexIsAnError(label: Float) {
        #expect {
            try ClassLabels.indices([0, 3, label], file: "labels.npy")
        } throws: { error in
            guard let e = error as? KilnError, case let .invalidLabel(file, index, _) = e else { return false }
            return file == "labels.npy" && index == 2 && "\(e)".contains("labels.npy") && "\(e)".contains("position 2")
        }
    }

    @Test func wholeLabelsAreIndices() throws {
        #expect(try ClassLabels.indices([0, 9, 2_147_483_520], file: "l.npy") == [0, 9, 2_147_483_520])
    }

    static let lenet = Fixtures.url("golden/models/lenet/lenet").path

    static func lenetParams() throws -> [String: NDArray] {
        let (args, aux) = try Checkpoint.loadParams(lenet + "-0000.params")
        return args.merging(aux) { a, _ in a }
    }

    /// A 3-channel image for the 1-channel LeNet: the error is about the data and says its shape,
    /// instead of "expects input 'weight' of shape (20, 3, 5, 5)" (the weight is the file's, and right).
    @Test(arguments: [EngineSelection.framework, .cpu(EngineOptions(cacheDirectory: nil))])
    func theWrongChannelCountBlamesTheData(engine: EngineSelection) throws {
        let net = try Symbol.load(jsonFile: Self.lenet + "-symbol.json")
        #expect { try net.simpleBind(shapes: ["data": [2, 3, 28, 28]], sharedBuffer: try Self.lenetParams(), engine: engine) } throws: { error in
            let m = "\(error)"
            return m.contains("input 'data' of shape (2, 3, 28, 28)") && m.contains("lenet-symbol.json") && !m.contains("expects input 'weight'")
        }
    }

    @Test(arguments: [EngineSelection.framework, .cpu(EngineOptions(cacheDirectory: nil))])
    func theWrongDtypeBlamesTheData(engine: EngineSelection) throws {
        let net = try Symbol.load(jsonFile: Self.lenet + "-symbol.json")
        #expect {
            try net.simpleBind(shapes: ["data": [2, 1, 28, 28]], types: ["data": .int64], sharedBuffer: try Self.lenetParams(), engine: engine)
        } throws: { error in
            "\(error)".contains("expects input 'data' of dtype float32, but it has dtype int64")
        }
    }

    /// Errors found after loading (an attribute out of range, at bind) name the file as well as the node.
    @Test func bindErrorsNameTheFile() throws {
        let dir = NSTemporaryDirectory() + "kiln-hostile-\(UUID().uuidString)"
        try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let text = try String(contentsOfFile: Self.lenet + "-symbol.json", encoding: .utf8)
            .replacingOccurrences(of: #""kernel": "(5, 5)""#, with: #""kernel": "(0, 5)""#)
        let path = dir + "/bad-symbol.json"
        try text.write(toFile: path, atomically: true, encoding: .utf8)
        let net = try Symbol.load(jsonFile: path)
        #expect(net.source == path)
        for attempt in [{ _ = try net.inferShape(["data": [1, 1, 28, 28]]) },
                        { _ = try net.simpleBind(shapes: ["data": [1, 1, 28, 28]], engine: .framework) }] {
            #expect(throws: (any Error).self) { try attempt() }
            do { try attempt() } catch {
                #expect("\(error)".hasPrefix("In '\(path)': Node 'conv1' (Convolution) has attribute kernel=\"(0, 5)\""), "\(error)")
            }
        }
        // Symbols built in code name no file.
        let built = Symbol.convolution(.variable("data"), kernel: [0, 5], numFilter: 2, name: "c")
        #expect(built.source == nil)
    }

    /// A 1 MB attribute is quoted by its start and length, not echoed whole.
    @Test func hugeAttributesAreNotEchoedWhole() throws {
        let huge = String(repeating: "9", count: 1 << 20)
        let json = #"{"nodes": [{"op": "null", "name": "data", "inputs": []}, "# +
            #"{"op": "Activation", "name": "a", "attrs": {"act_type": "\#(huge)"}, "inputs": [[0, 0, 0]]}], "heads": [[1, 0, 0]]}"#
        #expect { try Symbol(json: json, source: "huge.json") } throws: { error in
            let m = "\(error)"
            return m.count < 400 && m.contains("1048576 characters") && m.contains("huge.json")
        }
    }
}
