import KilnGraph

/// The engine's options, passed per call (never kept in shared state).
///
/// Each option has a short name, used in an engine node's attributes, and an environment variable
/// name, which the umbrella module reads at bind:
///
/// | option | short name | environment variable | values |
/// |---|---|---|---|
/// | ``precision`` | `precision` | `KILN_ENGINE_PRECISION` | `fp32` (default), `bf16`, `int8` (cpu); `fp32`, `fp16`, `bf16` (cuda) |
/// | ``minGroupSize`` | `min_group` | `KILN_ENGINE_MIN_GROUP` | an integer of at least 1 (default 2) |
/// | ``excludedOps`` | `exclude` | `KILN_ENGINE_EXCLUDE` | op names, comma-separated |
/// | ``cacheDirectory`` | `cache_dir` | `KILN_ENGINE_CACHE_DIR` | a directory; empty for no cache |
/// | ``verbose`` | `verbose` | `KILN_ENGINE_VERBOSE` | `0`, `1`, `true`, `false` |
/// | ``floatNodes`` | `fp32_nodes` | `KILN_ENGINE_FP32_NODES` | node names kept in fp32 under int8, comma-separated |
/// | ``calibrationBatches`` | `calibration_batches` | `KILN_ENGINE_CALIBRATION_BATCHES` | batches observed before int8 compiles (default 10) |
/// | ``calibrationMethod`` | `calibration` | `KILN_ENGINE_CALIBRATION` | `minmax` (default), `entropy` |
/// | ``tune`` | `tune` | `KILN_ENGINE_TUNE` | `1` (default: time conv algorithms at the first compile), `0` |
/// | ``calibrationFile`` | `calibration_file` | `KILN_ENGINE_CALIBRATION_FILE` | a calibration table (JSON) to use instead of calibrating |
///
/// ```
/// let options = try EngineOptions(parsing: ["KILN_ENGINE_PRECISION": "fp32", "min_group": "3"])
/// ```
public struct EngineOptions: Sendable, Equatable, Hashable {
    /// Numeric precision of the engine's kernels.
    public enum Precision: String, Sendable, CaseIterable, Hashable {
        /// 32-bit floats throughout.
        case fp32
        /// bfloat16 weights and activations inside groups (fp32 accumulation, fp32 at the borders), on
        /// CPUs with AVX512_BF16; elsewhere the engine runs fp32 and says so in its report.
        case bf16
        /// float16 inside groups (fp32 accumulation): the cuda engine only.
        case fp16
        /// Calibrated int8: per-channel s8 weights, activations u8/s8 with scales from a calibration
        /// table (see ``CPUEngine/calibration``); ops without a calibrated range stay in fp32.
        case int8
    }

    /// One option's names.
    public enum Key: String, Sendable, CaseIterable {
        case precision, minGroup = "min_group", exclude, cacheDirectory = "cache_dir", verbose
        case floatNodes = "fp32_nodes", calibrationBatches = "calibration_batches", calibrationMethod = "calibration"
        case calibrationFile = "calibration_file", tune

        /// The short name, as in an engine node's attributes.
        public var shortName: String { rawValue }
        /// The environment variable read at bind.
        public var environmentName: String { "KILN_ENGINE_" + rawValue.uppercased() }

        init?(anyName: String) {
            if let k = Key(rawValue: anyName) { self = k; return }
            guard let k = Key.allCases.first(where: { $0.environmentName == anyName }) else { return nil }
            self = k
        }
    }

    public var precision: Precision = .fp32
    /// The smallest group of ops worth an engine node (the partitioner's option).
    public var minGroupSize: Int = 2
    /// Ops the user keeps out of engine groups, by canonical MXNet name (the partitioner's option).
    public var excludedOps: Set<String> = []
    /// Where compiled plans are cached on disk; nil for no cache.
    public var cacheDirectory: String?
    /// Whether compiling prints a summary of each group to standard error.
    public var verbose: Bool = false
    /// With int8: node names kept in fp32 (layers whose int8 error is too large).
    public var floatNodes: Set<String> = []
    /// With int8 and no calibration table at hand: how many batches run in fp32 while activation
    /// ranges are collected, before the int8 plan is compiled (MXNet's `calib_batches`).
    public var calibrationBatches: Int = 10
    /// How activation ranges become thresholds: `minmax` (the default: on the ResNets trained here it
    /// kept int8 within 0.15 points of fp32, where entropy's clipping lost 4.2 on ResNet-56) or
    /// `entropy` (KL divergence, TensorRT's and MXNet's default).
    public var calibrationMethod: CalibrationMethod = .minmax

    /// Whether fp32 3x3 convolutions time their candidate algorithms (direct, Winograd) at the first
    /// compile, per op and then as whole plans (one algorithm per convolution shape), and keep the
    /// fastest; off, every convolution is direct.
    public var tune: Bool = true

    /// With int8: a calibration table file to quantize with (as written by `kiln compare
    /// --save-calibration` or found in the cache directory), instead of calibrating at run time.
    public var calibrationFile: String?

    /// How calibration turns observed activations into int8 thresholds.
    public enum CalibrationMethod: String, Sendable, CaseIterable, Hashable {
        case entropy, minmax
    }

    public init(precision: Precision = .fp32, minGroupSize: Int = 2, excludedOps: Set<String> = [],
                cacheDirectory: String? = nil, verbose: Bool = false) {
        self.precision = precision
        self.minGroupSize = minGroupSize
        self.excludedOps = excludedOps
        self.cacheDirectory = cacheDirectory
        self.verbose = verbose
    }

    /// Options from text, by short name or environment variable name; keys not given keep their
    /// defaults. Throws ``EngineError`` naming the key and listing the accepted values when one is not
    /// valid, and for unknown keys.
    public init(parsing values: [String: String]) throws {
        self.init()
        for (name, value) in values.sorted(by: { $0.key < $1.key }) {
            guard let key = Key(anyName: name) else {
                throw EngineError.unknownOption(key: name, accepted: Key.allCases.map(\.shortName) + Key.allCases.map(\.environmentName))
            }
            try set(key, value.trimmingWhitespace, as: name)
        }
    }

    /// Options from a process environment: only the `KILN_ENGINE_*` variables are read (an unknown one
    /// is an error); everything else is ignored, and so are the cuda engine's own `KILN_ENGINE_CUDA_*`
    /// switches, which it reads itself.
    public init(environment: [String: String]) throws {
        try self.init(parsing: environment.filter { $0.key.hasPrefix("KILN_ENGINE_") && !$0.key.hasPrefix("KILN_ENGINE_CUDA_") })
    }

    private mutating func set(_ key: Key, _ value: String, as name: String) throws {
        switch key {
        case .precision:
            guard let p = Precision(rawValue: value.lowercased()) else {
                throw EngineError.invalidOption(key: name, value: value, accepted: Precision.allCases.map(\.rawValue).joined(separator: ", "))
            }
            precision = p
        case .minGroup:
            guard let n = Int(value), n >= 1 else {
                throw EngineError.invalidOption(key: name, value: value, accepted: "an integer of at least 1")
            }
            minGroupSize = n
        case .exclude:
            var ops = Set<String>()
            for part in value.split(separator: ",").map({ String($0).trimmingWhitespace }) where !part.isEmpty {
                guard let d = OpRegistry.shared.lookup(part) else {
                    throw EngineError.invalidOption(key: name, value: part,
                                                    accepted: "op names such as " + CPUCapabilities.supportedOps.sorted().joined(separator: ", "))
                }
                ops.insert(d.name)
            }
            excludedOps = ops
        case .cacheDirectory:
            cacheDirectory = value.isEmpty ? nil : value
        case .floatNodes:
            floatNodes = Set(value.split(separator: ",").map { String($0).trimmingWhitespace }.filter { !$0.isEmpty })
        case .calibrationBatches:
            guard let n = Int(value), n >= 1 else {
                throw EngineError.invalidOption(key: name, value: value, accepted: "an integer of at least 1")
            }
            calibrationBatches = n
        case .calibrationFile:
            calibrationFile = value.isEmpty ? nil : value
        case .tune:
            switch value.lowercased() {
            case "1", "true", "yes", "on": tune = true
            case "0", "false", "no", "off": tune = false
            default: throw EngineError.invalidOption(key: name, value: value, accepted: "0, 1, true, false")
            }
        case .calibrationMethod:
            guard let m = CalibrationMethod(rawValue: value.lowercased()) else {
                throw EngineError.invalidOption(key: name, value: value, accepted: CalibrationMethod.allCases.map(\.rawValue).joined(separator: ", "))
            }
            calibrationMethod = m
        case .verbose:
            switch value.lowercased() {
            case "1", "true", "yes", "on": verbose = true
            case "0", "false", "no", "off", "": verbose = false
            default: throw EngineError.invalidOption(key: name, value: value, accepted: "0, 1, true, false")
            }
        }
    }

    /// The options as text by short name, the form ``init(parsing:)`` reads back (for engine nodes).
    public var values: [String: String] {
        var v: [String: String] = [
            Key.precision.shortName: precision.rawValue,
            Key.minGroup.shortName: String(minGroupSize),
            Key.verbose.shortName: verbose ? "1" : "0",
            Key.calibrationBatches.shortName: String(calibrationBatches),
            Key.calibrationMethod.shortName: calibrationMethod.rawValue,
        ]
        if !floatNodes.isEmpty { v[Key.floatNodes.shortName] = floatNodes.sorted().joined(separator: ",") }
        if let calibrationFile { v[Key.calibrationFile.shortName] = calibrationFile }
        v[Key.tune.shortName] = tune ? "1" : "0"
        if !excludedOps.isEmpty { v[Key.exclude.shortName] = excludedOps.sorted().joined(separator: ",") }
        if let cacheDirectory { v[Key.cacheDirectory.shortName] = cacheDirectory }
        return v
    }

    /// The options on one line, for an engine node's `options` attribute (the partitioner's
    /// `engineOptions`): `precision=fp32`, then each other option that differs from its default,
    /// separated by `;` (`precision=fp32;exclude=Pooling,softmax;cache_dir=/tmp/c`).
    public var compact: String {
        let defaults = EngineOptions().values
        let v = values
        let rest = Key.allCases.dropFirst().compactMap { k -> String? in
            guard let value = v[k.shortName], value != defaults[k.shortName] else { return nil }
            return "\(k.shortName)=\(value)"
        }
        return (["precision=\(precision.rawValue)"] + rest).joined(separator: ";")
    }

    /// Options from the compact form (``compact``); empty text gives the defaults.
    public init(compact: String) throws {
        var values: [String: String] = [:]
        for part in compact.split(separator: ";").map({ String($0).trimmingWhitespace }) where !part.isEmpty {
            guard let eq = part.firstIndex(of: "=") else {
                throw EngineError.invalidOption(key: part, value: "", accepted: "key=value pairs separated by ; such as precision=fp32;min_group=3")
            }
            values[String(part[..<eq]).trimmingWhitespace] = String(part[part.index(after: eq)...])
        }
        try self.init(parsing: values)
    }

    /// The part of the options that changes what is compiled (and so keys the cache).
    var compiledForm: String { "precision=\(precision.rawValue);tune=\(tune ? 1 : 0)" }
}
