import Foundation
import Testing
@testable import KilnCore

/// The memory budget: sizes parsed from `KILN_MEMORY_LIMIT`, byte counts that overflow, and errors
/// that name what wanted the memory, its shape and its bytes.
@Suite struct MemoryBudgetTests {
    @Test(arguments: [("512", 512), ("64K", 64 << 10), ("512M", 512 << 20), ("2G", 2 << 30), ("2g", 2 << 30),
                      ("1.5GiB", 3 << 29), ("3gb", 3 << 30), (" 1T ", 1 << 40), ("0", 0)])
    func sizesParse(text: String, bytes: Int) throws {
        #expect(MemoryBudget.parseSize(text) == bytes)
        #expect(try MemoryBudget(environment: ["KILN_MEMORY_LIMIT": text]).limit == bytes)
    }

    @Test(arguments: ["abc", "-1", "1e400", "inf", "nan", "12Q", "G", "99999999999T"])
    func badSizesAreRefusedWithTheVariableNamed(text: String) {
        #expect(MemoryBudget.parseSize(text) == nil)
        #expect {
            try MemoryBudget(environment: ["KILN_MEMORY_LIMIT": text])
        } throws: { error in
            let message = "\(error)"
            return message.contains("KILN_MEMORY_LIMIT") && message.contains("512M")
        }
    }

    @Test func withoutTheVariableTheLimitIsTheAvailableMemory() throws {
        let budget = try MemoryBudget(environment: [:])
        #expect(budget.fixedLimit == nil)
        #expect(budget.limit > 0 && budget.limit <= Int(clamping: ProcessInfo.processInfo.physicalMemory))
    }

    @Test func byteCountsOverflowToNil() {
        #expect(Shape([2, 3]).byteCount(of: .float32) == 24)
        #expect(Shape([1 << 31, 1 << 31, 4]).byteCount(of: .float32) == nil)
        #expect(Shape([0, 1 << 62, 1 << 62]).byteCount(of: .float32) == nil)  // its strides would overflow
        #expect(Shape([-1, 3]).byteCount(of: .float32) == nil)
        #expect(totalBytes([1, 2, nil]) == nil)
        #expect(totalBytes([Int.max, 1]) == nil)
        #expect(totalBytes([1, 2, 3]) == 6)
    }

    @Test func theErrorNamesTheLargestArrayAndTheBytes() {
        let budget = MemoryBudget(limit: 1 << 20)
        let arrays: [(name: String, shape: Shape, dtype: DType)] = [
            ("'a'", [10], .float32), ("output 0 of node 'conv0'", [1, 64, 4096, 4096], .float32), ("'b'", [3], .float32),
        ]
        #expect(throws: Never.self) { try budget.check(arrays: [("'a'", [10], .float32)], for: "the arrays") }
        #expect {
            try budget.check(arrays: arrays, for: "the arrays of the plan")
        } throws: { error in
            guard case let .memoryBudgetExceeded(_, bytes, limit, _)? = error as? KilnCoreError else { return false }
            let message = "\(error)"
            return bytes == 4 << 30 + 52 && limit == 1 << 20 && message.contains("conv0") && message.contains("(1, 64, 4096, 4096)")
                && message.contains("4.00 GiB") && message.contains("1.00 MiB")
        }
        #expect {
            try budget.check(arrays: [("'w'", [1 << 40, 1 << 40], .float32)], for: "the weights")
        } throws: { "\($0)".contains("more bytes than a 64-bit count holds") }
    }

    @Test func formatting() {
        #expect(MemoryBudget.formatted(300) == "300 bytes")
        #expect(MemoryBudget.formatted(1536) == "1.50 KiB")
        #expect(MemoryBudget.formatted(4 << 30) == "4.00 GiB")
        #expect(MemoryBudget.formatted(100 << 20) == "100 MiB")
    }
}

/// `readFileContents`: what a path is, said in words, and the budget checked before reading.
@Suite struct FileContentsTests {
    static func temporaryFile(_ bytes: Int) throws -> String {
        let path = NSTemporaryDirectory() + "kiln-file-\(UUID().uuidString)"
        try Data(repeating: 7, count: bytes).write(to: URL(fileURLWithPath: path))
        return path
    }

    @Test func aDirectoryIsSaidToBeOne() {
        #expect { try readFileContents(atPath: NSTemporaryDirectory()) } throws: { "\($0)".contains("it is a directory, not a file") }
    }

    @Test func aMissingFileIsSaidToBeMissing() {
        #expect { try readFileContents(atPath: "/no/such/kiln/file.params") } throws: { error in
            "\(error)" == "Cannot read '/no/such/kiln/file.params': it does not exist."
        }
    }

    @Test func devNullIsEmptyNotAPermissionProblem() throws {
        #expect(try readFileContents(atPath: "/dev/null").isEmpty)
    }

    @Test func aFileOverTheBudgetIsRefusedBeforeReading() throws {
        let path = try Self.temporaryFile(4096)
        defer { try? FileManager.default.removeItem(atPath: path) }
        #expect(try readFileContents(atPath: path, budget: MemoryBudget(limit: 4096)).count == 4096)
        #expect { try readFileContents(atPath: path, budget: MemoryBudget(limit: 4095)) } throws: { error in
            guard case .memoryBudgetExceeded? = error as? KilnCoreError else { return false }
            return "\(error)".contains(path) && "\(error)".contains("4.00 KiB")
        }
    }

    @Test func anEndlessStreamStopsAtTheBudget() {
        #expect { try readFileContents(atPath: "/dev/zero", budget: MemoryBudget(limit: 3 << 20)) } throws: { error in
            guard case .memoryBudgetExceeded? = error as? KilnCoreError else { return false }
            return "\(error)".contains("not a regular file")
        }
    }

    @Test func loadersSayWhatThePathIs() {
        #expect { try NDArray.load(npyFile: NSTemporaryDirectory()) } throws: { "\($0)".contains("directory") }
        #expect { try ParamsFile(contentsOf: "/dev/null") } throws: { !"\($0)".contains("ermission") }
    }

    @Test func foundationErrorsBecomeWords() {
        #expect(fileErrorReason(CocoaError(.fileNoSuchFile)) == "it does not exist")
        #expect(fileErrorReason(NSError(domain: NSPOSIXErrorDomain, code: Int(EACCES))) == "permission denied")
        #expect(fileErrorReason(CocoaError(.fileWriteOutOfSpace)) == "the disk is full")
    }
}
