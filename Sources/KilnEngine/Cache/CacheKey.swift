import CDNNL
import Foundation
import KilnCore
import KilnEngineCore
import KilnGraph

// The cpu engine's cache key: the engine core's graph key (KilnEngineCore's EngineCacheKey) with the
// lines that decide which oneDNN code a plan holds.
//
// ```
// key = EngineCacheKey( graph, shapes, dtypes, weights | options | CPU features | oneDNN version
//                       | threads (when convolutions are timed) | int8 ranges )
// ```

enum CacheKey {
    /// The key of a group compiled with these shapes, types, constants and options, as 32 bytes: the
    /// engine core's graph key with the cpu engine's lines (options, CPU, oneDNN, threads, numerics).
    static func compute(graph: Graph, shapes: InferredShapes, types: InferredTypes, constants: [String: NDArray],
                        options: EngineOptions, numerics: String = "") -> [UInt8] {
        var lines = ["options \(options.compiledForm)", "cpu \(cpuFeatures)", "onednn \(oneDNNVersion)"]
        // Algorithms chosen by timing depend on how many threads share the work.
        if options.tune && options.precision == .fp32 { lines.append("threads \(threadCount)") }
        if !numerics.isEmpty { lines.append("numerics \(numerics)") }
        return EngineCacheKey.compute(graph: graph, shapes: shapes, types: types, constants: constants,
                                      formatVersion: Int(PlanFile.formatVersion), engineLines: lines)
    }

    /// The threads oneDNN's OpenMP runtime uses: OMP_NUM_THREADS when set, else every core.
    static var threadCount: Int {
        ProcessInfo.processInfo.environment["OMP_NUM_THREADS"].flatMap { Int($0.split(separator: ",").first ?? "") }
            ?? ProcessInfo.processInfo.activeProcessorCount
    }

    /// What decides which kernels oneDNN generates on this machine: the ISA it dispatches to, and the
    /// processor's model and cpuid flags as Linux reports them.
    static let cpuFeatures: String = {
        var parts = ["isa=\(dnnl_get_effective_cpu_isa().rawValue)"]
        if let text = try? String(contentsOfFile: "/proc/cpuinfo", encoding: .utf8) {
            for key in ["vendor_id", "model name", "flags"] {
                if let line = text.split(separator: "\n").first(where: { $0.hasPrefix(key) }),
                   let colon = line.firstIndex(of: ":") {
                    parts.append("\(key)=" + line[line.index(after: colon)...].trimmingCharacters(in: .whitespaces))
                }
            }
        }
        return parts.joined(separator: ";")
    }()

    /// oneDNN's version and build hash (`2.6.3 (hash ...)`).
    static let oneDNNVersion: String = {
        guard let v = dnnl_version() else { return "unknown" }
        let hash = v.pointee.hash.map { String(cString: $0) } ?? "?"
        return "\(v.pointee.major).\(v.pointee.minor).\(v.pointee.patch) (\(hash))"
    }()
}
