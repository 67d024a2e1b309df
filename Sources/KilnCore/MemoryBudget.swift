import Foundation

/// How many bytes Kiln may allocate for one thing whose size comes from input: a file read whole, the
/// arrays a bind creates, an engine's arena, decompressed data.
///
/// Swift traps when an allocation fails, so a shape from a file or a flag that needs more memory than
/// the machine has would kill the process. Every allocation sized by input is checked here first, and
/// a request over the budget becomes an error that names what wanted the memory, its shape and bytes.
///
/// The budget is `KILN_MEMORY_LIMIT` when set (bytes, or with a suffix: `512M`, `2G`, `1.5GiB`), and
/// otherwise the memory available now: `MemAvailable` of `/proc/meminfo`, lowered to what the
/// process's cgroup (a container's memory limit) still allows.
///
/// ```
/// try MemoryBudget.process.check(bytes: shape.byteCount(of: .float32), for: "the output of node 'conv0'")
/// // Not enough memory for the output of node 'conv0': 4.00 GiB are needed, more than the memory
/// // budget of 1.00 GiB (KILN_MEMORY_LIMIT=1G).
/// ```
public struct MemoryBudget: Sendable, Equatable {
    /// A fixed limit in bytes, or nil for "the memory available at the time of the check".
    public let fixedLimit: Int?
    /// Where the limit came from, for the error message.
    let origin: Origin

    /// Where a budget's limit came from.
    public enum Origin: Sendable, Equatable {
        /// Given in code.
        case explicit
        /// `KILN_MEMORY_LIMIT`, with its text.
        case environment(String)
        /// The memory available at the time of the check.
        case availableMemory
    }

    /// The environment variable that sets the process's budget.
    public static let environmentName = "KILN_MEMORY_LIMIT"

    /// A fixed budget of `limit` bytes.
    public init(limit: Int) {
        fixedLimit = Swift.max(limit, 0)
        origin = .explicit
    }

    /// The budget `environment` sets: `KILN_MEMORY_LIMIT` when present, else the available memory.
    ///
    /// - Throws: ``KilnCoreError/invalidSetting(name:value:reason:)`` when the value is not a size.
    public init(environment: [String: String]) throws(KilnCoreError) {
        guard let text = environment[MemoryBudget.environmentName], !text.trimmingCharacters(in: .whitespaces).isEmpty else {
            fixedLimit = nil
            origin = .availableMemory
            return
        }
        guard let bytes = MemoryBudget.parseSize(text) else {
            throw KilnCoreError.invalidSetting(
                name: MemoryBudget.environmentName, value: text,
                reason: "it is not a size; write bytes or a number with K, M, G or T (powers of 1024), such as 512M or 2G")
        }
        fixedLimit = bytes
        origin = .environment(text)
    }

    /// The process's budget, from its environment at first use. A malformed `KILN_MEMORY_LIMIT` is
    /// reported by every check rather than ignored.
    public static var process: MemoryBudget {
        get throws { try processBudget.get() }
    }
    private static let processBudget: Result<MemoryBudget, KilnCoreError> = Result { () throws(KilnCoreError) in
        try MemoryBudget(environment: ProcessInfo.processInfo.environment)
    }

    /// The limit in bytes now.
    public var limit: Int { fixedLimit ?? MemoryBudget.availableBytes() }

    /// Throws unless `bytes` (nil: a count that overflowed) fit the budget. `what` names the thing, as
    /// in "the output (1, 64, 4096, 4096) float32 of node 'conv0'"; the error reads "Not enough
    /// memory for `what`: ...". Each check is of one request: the budget is not a running total.
    public func check(bytes: Int?, for what: @autoclosure () -> String) throws {
        try check(bytes: bytes, within: limit, for: what())
    }

    /// The check against a `limit` the caller read once (reading the available memory is I/O).
    func check(bytes: Int?, within limit: Int, for what: @autoclosure () -> String) throws {
        guard let bytes, bytes <= limit else {
            throw KilnCoreError.memoryBudgetExceeded(what: what(), bytes: bytes, limit: limit, origin: origin)
        }
    }

    /// Throws unless the budget of the process allows `bytes`.
    public static func check(bytes: Int?, for what: @autoclosure () -> String) throws {
        try process.check(bytes: bytes, for: what())
    }

    /// Throws unless `arrays` together fit the budget. The error names `what` (such as "the arrays
    /// of the framework's plan"), how many arrays it holds, and the largest by name, shape and dtype.
    public func check(arrays: [(name: String, shape: Shape, dtype: DType)], for what: String) throws {
        let sizes = arrays.map { $0.shape.byteCount(of: $0.dtype) }
        let total = totalBytes(sizes), limit = self.limit
        guard !arrays.isEmpty, total.map({ $0 > limit }) ?? true else { return }
        // The largest (an overflowing one first): what a user would change.
        var largest = 0
        for i in sizes.indices where (sizes[i] ?? .max) > (sizes[largest] ?? .max) { largest = i }
        let big = arrays[largest]
        let size = sizes[largest].map(MemoryBudget.formatted) ?? "more than a 64-bit count"
        let detail = arrays.count == 1
            ? "\(what) (\(big.name): shape \(big.shape), \(big.dtype))"
            : "\(what) (\(arrays.count) arrays; the largest, \(big.name), has shape \(big.shape) of \(big.dtype) and \(size))"
        try check(bytes: total, within: limit, for: detail)
    }

    /// `512`, `64K`, `512M`, `2G`, `1.5GiB`, `3gb`: K, M, G and T are powers of 1024.
    static func parseSize(_ text: String) -> Int? {
        var t = text.trimmingCharacters(in: .whitespaces).lowercased()
        for suffix in ["ib", "b"] where t.hasSuffix(suffix) && t.count > suffix.count {
            t.removeLast(suffix.count)
            break
        }
        var scale = 1.0
        if let last = t.last, let power = ["k": 1, "m": 2, "g": 3, "t": 4][String(last)] {
            scale = pow(1024, Double(power))
            t.removeLast()
        }
        guard let value = Double(t.trimmingCharacters(in: .whitespaces)), value.isFinite, value >= 0 else { return nil }
        let bytes = value * scale
        guard bytes < Double(Int.max) else { return nil }
        return Int(bytes)
    }

    /// Bytes written for people: `4.00 GiB`, `12.5 MiB`, `300 bytes`.
    public static func formatted(_ bytes: Int) -> String {
        let units = ["KiB", "MiB", "GiB", "TiB", "PiB", "EiB"]
        guard bytes >= 1024 else { return "\(bytes) bytes" }
        var value = Double(bytes) / 1024, unit = 0
        while value >= 1024 && unit < units.count - 1 { value /= 1024; unit += 1 }
        return String(format: value < 10 ? "%.2f %@" : value < 100 ? "%.1f %@" : "%.0f %@", value, units[unit])
    }

    /// The memory the machine (and the process's cgroup) can still give, read now. Where neither
    /// `/proc/meminfo` nor the cgroup can be read, the physical memory.
    static func availableBytes() -> Int {
        var available = Int(clamping: ProcessInfo.processInfo.physicalMemory)
        if let info = try? String(contentsOfFile: "/proc/meminfo", encoding: .utf8),
           let line = info.split(separator: "\n").first(where: { $0.hasPrefix("MemAvailable:") }),
           let kib = Int(line.split(separator: " ").dropFirst().first ?? "") {
            available = kib.multipliedReportingOverflow(by: 1024).overflow ? available : kib * 1024
        }
        // cgroup v2: a container's limit and what it has used of it.
        func number(_ path: String) -> Int? {
            (try? String(contentsOfFile: path, encoding: .utf8)).flatMap { Int($0.trimmingCharacters(in: .whitespacesAndNewlines)) }
        }
        if let max = number("/sys/fs/cgroup/memory.max"), let current = number("/sys/fs/cgroup/memory.current") {
            available = Swift.min(available, Swift.max(max - current, 0))
        }
        return available
    }
}

extension Shape {
    /// The bytes an array of this shape and `dtype` needs, or nil when a dimension is negative or the
    /// count overflows `Int` (zero-length dimensions counted as 1, so that the strides of an accepted
    /// shape cannot overflow either).
    public func byteCount(of dtype: DType) -> Int? { Shape.checkedByteCount(dims: dims, dtype: dtype) }
}

/// Sums byte counts, nil when any is nil or the sum overflows.
public func totalBytes(_ counts: some Sequence<Int?>) -> Int? {
    var total = 0
    for c in counts {
        guard let c else { return nil }
        let (sum, overflow) = total.addingReportingOverflow(c)
        if overflow { return nil }
        total = sum
    }
    return total
}
