import Foundation
import KilnCore
import KilnEngine
import KilnEngineCore
import KilnGraph
import KilnRuntime
import Testing

/// int8 calibration: weight quantization against hand-worked numbers, the histogram's growth, the
/// entropy threshold on made-up distributions, the calibrator's ranges against a naive computation,
/// and the table's file and cache.
@Suite struct CalibrationTests {
    // MARK: Weights and scales

    /// One channel with max |w| 127 has scale 1, so each quantized value is round-half-even of the weight.
    @Test func perChannelRoundsHalfToEvenAndClamps() {
        let w = NDArray(shape: [2, 5], values: [2.5, 3.5, -2.5, 127, -0.5,
                                                 0, 0, 0, 0, 0])
        let (values, scales) = Int8Weights.perChannel(w, axis: 0)
        #expect(scales == [1, 1])  // 127 / 127, and a channel of zeros gets 1
        #expect(values == [2, 4, -2, 127, 0, 0, 0, 0, 0, 0])
    }

    /// Scales are 127 / max|w_c| per output channel: (0.5, -1, 0.25) has scale 127, so 63.5 -> 64 (even), -127, 31.75 -> 32.
    @Test func perChannelScalesEachOutputChannel() {
        let w = NDArray(shape: [2, 1, 1, 3], values: [0.5, -1, 0.25,
                                                       4, 2, -1])
        let (values, scales) = Int8Weights.perChannel(w)
        #expect(scales == [127, 31.75])
        #expect(values == [64, -127, 32, 127, 64, -32])  // 2 * 31.75 = 63.5 -> 64, -31.75 -> -32
    }

    /// Along axis 1 the channels are the columns: column 0 max 2 (scale 63.5), column 1 max 4 (scale 31.75).
    @Test func perChannelAlongAnotherAxis() {
        let w = NDArray(shape: [2, 2], values: [1, 4, -2, 0])
        let (values, scales) = Int8Weights.perChannel(w, axis: 1)
        #expect(scales == [63.5, 31.75])
        #expect(values == [64, 127, -127, 0])
    }

    /// NaN and infinities do not trap: NaN is 0, infinities clamp, the scale comes from the finite weights.
    @Test func perChannelSurvivesNonFiniteWeights() {
        let w = NDArray(shape: [1, 4], values: [.nan, 1, .infinity, -.infinity])
        let (values, scales) = Int8Weights.perChannel(w)
        #expect(scales == [127])
        #expect(values == [0, 127, 127, -127])
    }

    @Test func activationScales() {
        let r = CalibrationTable.ValueRange(min: -1, max: 2, threshold: 2)
        #expect(Int8Weights.activationScale(range: r, unsigned: true) == 127.5)
        #expect(Int8Weights.activationScale(range: r, unsigned: false) == 63.5)
        #expect(Int8Weights.activationScale(range: .init(min: 0, max: 0, threshold: 0), unsigned: true) == 1)
    }

    // MARK: Histogram and entropy

    /// Values of 1 and 3 over range 4 land in bins 512 and 1536; growing to cover 6 doubles the range
    /// and merges pairs, so they move to bins 256 and 768, and 6 lands in bin 1536.
    @Test func histogramGrowsByMergingPairs() {
        var h = AbsHistogram()
        h.grow(toCover: 4)
        #expect(h.range == 4)
        [Float(1), -3, 3, 0, .nan].withUnsafeBufferPointer { h.add($0) }
        #expect(h.counts[512] == 1 && h.counts[1536] == 2 && h.counts[0] == 1 && h.total == 4)
        h.grow(toCover: 6)
        #expect(h.range == 8)
        #expect(h.counts[256] == 1 && h.counts[768] == 2 && h.counts[0] == 1 && h.total == 4)
        [Float(6)].withUnsafeBufferPointer { h.add($0) }
        #expect(h.counts[1536] == 1 && h.total == 5)
        // The largest value lands in the last bin, not past it.
        [Float(8)].withUnsafeBufferPointer { h.add($0) }
        #expect(h.counts[2047] == 1)
    }

    /// Zeros seen before any other value stay in bin 0 when the range is first set.
    @Test func histogramOfZerosFirst() {
        var h = AbsHistogram()
        [Float(0), 0].withUnsafeBufferPointer { h.add($0) }
        h.grow(toCover: 2)
        [Float(2)].withUnsafeBufferPointer { h.add($0) }
        #expect(h.counts[0] == 2 && h.counts[2047] == 1 && h.range == 2)
        #expect(EntropyCalibration.optimalThreshold(AbsHistogram(), unsigned: false) == 0)
    }

    /// A flat histogram over every bin: with all bins kept, Q equals P (each group of 16 bins is
    /// flat), the divergence is 0, and any clipping makes it positive, so the threshold is the range.
    @Test func flatHistogramKeepsTheWholeRange() {
        let h = AbsHistogram(counts: [Int](repeating: 100, count: AbsHistogram.binCount), range: 3)
        #expect(EntropyCalibration.optimalThreshold(h, unsigned: false) == 3)
        #expect(EntropyCalibration.optimalThreshold(h, unsigned: true) == 3)
        #expect(EntropyCalibration.levels(unsigned: false) == 128 && EntropyCalibration.levels(unsigned: true) == 256)
    }

    /// A graph that copies its input, so the calibrator's range of `data` is that of the batches fed.
    func copyCalibrator(_ method: CalibrationTable.Method, count: Int) throws -> Calibrator {
        let symbol = Symbol.copy(.variable("data"), name: "copy0")
        let graph = symbol.graph
        let shapes = try graph.inferShapes(["data": [count]])
        return try Calibrator(graph: graph, shapes: shapes, types: try graph.inferTypes(), constants: [:], method: method)
    }

    static func gaussian(_ n: Int, seed: UInt64) -> [Float] {
        var rng = SplitMix64(seed: seed)
        return (0..<n).map { _ in rng.nextGaussian() }
    }

    /// A Gaussian with a few huge outliers: min/max keeps the outliers (threshold = 100), entropy clips
    /// them. The histogram grows from the first batch's max (about 4.3) by doubling to about 138, so
    /// its smallest candidate is 128 bins of 138/2048, about 8.6; about 20 was measured, a fifth of max.
    @Test func entropyClipsOutliersThatMinMaxKeeps() throws {
        let n = 50_000
        let first = Self.gaussian(n, seed: 1)
        var second = Self.gaussian(n, seed: 2)
        second[10] = 100
        second[20] = -90
        second[30] = 95
        for method in CalibrationTable.Method.allCases {
            let c = try copyCalibrator(method, count: n)
            // The second batch holds the outliers, so the entropy histogram grows between batches.
            for batch in [first, second] {
                let out = try c.observe(["data": NDArray(shape: [n], values: batch)])
                #expect(out.count == 1 && out[0].floats() == batch)  // the graph's own output, served meanwhile
            }
            #expect(c.batchesSeen == 2)
            let table = c.table()
            #expect(table.method == method && table.batches == 2)
            let r = try #require(table.ranges["data"])
            #expect(r.max == 100 && r.min == -90)
            #expect(table.ranges["copy0"] == r)
            if method == .minMax {
                #expect(r.threshold == 100)
            } else {
                #expect(r.threshold < 25, "entropy threshold \(r.threshold)")
                #expect(r.threshold >= 4, "a Gaussian of sigma 1 is not clipped inside 4 sigma: \(r.threshold)")
            }
        }
    }

    /// Uniform data has nothing to clip: the entropy threshold stays near the largest |x|.
    @Test func entropyOfUniformDataIsNearMax() throws {
        let n = 40_000
        var rng = SplitMix64(seed: 7)
        let values = (0..<n).map { _ in rng.nextFloat() * 2 - 1 }
        let c = try copyCalibrator(.entropy, count: n)
        _ = try c.observe(["data": NDArray(shape: [n], values: values)])
        let r = try #require(c.table().ranges["data"])
        let maxAbs = values.map(abs).max() ?? 0
        #expect(r.threshold > 0.9 * maxAbs && r.threshold <= maxAbs, "threshold \(r.threshold), max \(maxAbs)")
    }

    // MARK: The calibrator on a real graph

    /// FC (2 -> 3) then ReLU then split: every op output's min/max equals a naive computation over
    /// both batches, split's second output is keyed `split0:1`, weights are not observed, and the
    /// outputs returned are the graph's own.
    @Test func calibratorObservesEveryOutput() throws {
        let x = Symbol.variable("data")
        let fc = Symbol.fullyConnected(x, numHidden: 4, name: "fc")
        let relu = Symbol.relu(fc, name: "relu0")
        let symbol = Symbol.split(relu, numOutputs: 2, axis: 1, name: "split0")
        let w: [Float] = [1, -1, 0.5, 2, -3, 0, 1, 1]   // (4, 2)
        let b: [Float] = [0, 1, -1, 0.5]
        let weights = ["fc_weight": NDArray(shape: [4, 2], values: w), "fc_bias": NDArray(shape: [4], values: b)]
        let graph = symbol.graph
        let shapes = try graph.inferShapes(["data": [3, 2], "fc_weight": [4, 2], "fc_bias": [4]])
        let c = try Calibrator(graph: graph, shapes: shapes, types: try graph.inferTypes(), constants: weights, method: .minMax)
        let batches: [[Float]] = [[1, 2, -1, 0.5, 0, -2], [3, -1, 0.25, 0.25, -4, 1]]
        var fcAll: [Float] = []
        for batch in batches {
            let outputs = try c.observe(["data": NDArray(shape: [3, 2], values: batch)])
            // Naive FC: row r, unit u = sum_k x[r,k] w[u,k] + b[u].
            var fcOut: [Float] = []
            for r in 0..<3 {
                for u in 0..<4 { fcOut.append(batch[r * 2] * w[u * 2] + batch[r * 2 + 1] * w[u * 2 + 1] + b[u]) }
            }
            fcAll += fcOut
            let reluOut = fcOut.map { max($0, 0) }
            #expect(outputs.count == 2)
            let firstHalf = Self.columns(reluOut, rows: 3, 0..<2), secondHalf = Self.columns(reluOut, rows: 3, 2..<4)
            #expect(outputs[0].floats() == firstHalf)
            #expect(outputs[1].floats() == secondHalf)
        }
        let table = c.table()
        #expect(Set(table.ranges.keys) == ["data", "fc", "relu0", "split0", "split0:1"])
        let all = batches.flatMap { $0 }
        #expect(table.ranges["data"] == .init(min: -4, max: 3, threshold: 4))
        let fcMin = fcAll.min() ?? 0, fcMax = fcAll.max() ?? 0
        #expect(table.ranges["fc"] == .init(min: fcMin, max: fcMax, threshold: max(abs(fcMin), fcMax)))
        #expect(table.ranges["relu0"] == .init(min: 0, max: fcMax, threshold: fcMax))
        let reluAll: [Float] = fcAll.map { max($0, 0) }
        let left = Self.columns(reluAll, rows: 6, 0..<2), right = Self.columns(reluAll, rows: 6, 2..<4)
        #expect(table.ranges["split0"]?.max == left.max() && table.ranges["split0"]?.min == left.min())
        #expect(table.ranges["split0:1"]?.max == right.max() && table.ranges["split0:1"]?.min == right.min())
        #expect(all.count == 12)
    }

    /// Columns `range` of a row-major matrix of 4 columns.
    static func columns(_ v: [Float], rows: Int, _ range: Range<Int>) -> [Float] {
        var out: [Float] = []
        for r in 0..<rows { for k in range { out.append(v[r * 4 + k]) } }
        return out
    }

    /// A missing input is the framework's error, and nothing is counted.
    @Test func missingInputIsAnErrorAndNotCounted() throws {
        let c = try copyCalibrator(.minMax, count: 3)
        #expect(throws: (any Error).self) { _ = try c.observe([:]) }
        #expect(c.batchesSeen == 0 && c.table().ranges.isEmpty)
    }

    // MARK: The file and the cache

    static func temporaryDirectory() throws -> String {
        let dir = NSTemporaryDirectory() + "kiln-calib-\(UUID().uuidString)"
        try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
        return dir
    }

    static let sample = CalibrationTable(method: .entropy, batches: 3, ranges: [
        "conv1": .init(min: -1.5, max: 2, threshold: 1.25),
        "data": .init(min: 0, max: 0.99609375, threshold: 0.99609375),
        "split0:1": .init(min: 0, max: 0, threshold: 0),
    ])

    @Test func fileRoundTripsWithSortedKeys() throws {
        let dir = try Self.temporaryDirectory()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let path = dir + "/t.json"
        try Self.sample.save(to: path)
        #expect(try CalibrationTable.load(from: path) == Self.sample)
        let text = try String(contentsOfFile: path, encoding: .utf8)
        // Human-readable, keys sorted at every level.
        let order = ["\"batches\"", "\"format\"", "\"method\" : \"entropy\"", "\"ranges\"", "\"conv1\"", "\"max\"", "\"min\"", "\"threshold\"", "\"data\"", "\"split0:1\""]
        let positions = order.compactMap { text.range(of: $0)?.lowerBound }
        #expect(positions.count == order.count && positions == positions.sorted(), "\(text)")
        #expect(text.contains("\n"))
    }

    /// Each bad file names the file and the field at fault.
    @Test func badFilesNameTheField() throws {
        let cases: [(String, String)] = [
            (#"{"format": 1, "method": "entropy", "batches": 1, "ranges": {"c": {"min": 0, "max": 1}}}"#, "ranges.c.threshold"),
            (#"{"format": 1, "method": "kl", "batches": 1, "ranges": {}}"#, "method"),
            (#"{"format": 2, "method": "minmax", "batches": 1, "ranges": {}}"#, "format"),
            (#"{"format": 1, "method": "minmax", "batches": "x", "ranges": {}}"#, "batches"),
            (#"{"format": 1, "method": "minmax", "batches": -1, "ranges": {}}"#, "batches"),
            (#"{"format": 1, "method": "minmax", "batches": 1, "ranges": {"c": {"min": 2, "max": 1, "threshold": 2}}}"#, "ranges.c.min"),
            (#"{"format": 1, "method": "minmax", "batches": 1, "ranges": {"c": {"min": 0, "max": 1, "threshold": -1}}}"#, "ranges.c.threshold"),
            (#"{"format": 1, "method": "minmax", "batches": 1}"#, "ranges"),
            // Thresholds that pass as numbers but break quantization: NaN from a subnormal scale,
            // constant output from one far above the values, zeros for a range that is not all zero.
            (#"{"format": 1, "method": "minmax", "batches": 1, "ranges": {"c": {"min": -1, "max": 1, "threshold": 1e-44}}}"#, "ranges.c.threshold"),
            (#"{"format": 1, "method": "minmax", "batches": 1, "ranges": {"c": {"min": -1, "max": 1, "threshold": 1e30}}}"#, "ranges.c.threshold"),
            (#"{"format": 1, "method": "minmax", "batches": 1, "ranges": {"c": {"min": -1, "max": 1, "threshold": 1.1}}}"#, "ranges.c.threshold"),
            (#"{"format": 1, "method": "minmax", "batches": 1, "ranges": {"c": {"min": -3, "max": 2, "threshold": 0}}}"#, "ranges.c.threshold"),
            (#"{"format": 1, "method": "minmax", "batches": 1, "ranges": {"c": {"min": 0, "max": 1e30, "threshold": 1e-30}}}"#, "ranges.c.threshold"),
        ]
        for (json, field) in cases {
            #expect(throws: EngineError.calibrationFile(path: "bad.json", field: field, reason: "")) {
                do { _ = try CalibrationTable.decode(Data(json.utf8), source: "bad.json") } catch let EngineError.calibrationFile(path, f, _) {
                    throw EngineError.calibrationFile(path: path, field: f, reason: "")
                }
            }
        }
        do {
            _ = try CalibrationTable.decode(Data("not json".utf8), source: "bad.json")
            Issue.record("no error for text that is not JSON")
        } catch let e as EngineError {
            #expect("\(e)".hasPrefix("The calibration table bad.json cannot be read"))
        }
        do {
            _ = try CalibrationTable.load(from: "/nonexistent/calib.json")
            Issue.record("no error for a missing file")
        } catch let e as EngineError {
            #expect("\(e)".contains("/nonexistent/calib.json"))
        }
        let e = EngineError.calibrationFile(path: "t.json", field: "ranges.c.threshold", reason: "is missing")
        #expect("\(e)" == "The calibration table t.json cannot be read: its field 'ranges.c.threshold' is missing.")
    }

    /// Tables a calibrator writes pass the checks a damaged file fails, all-zero values included.
    @Test func soundThresholdsPass() throws {
        let json = #"{"format": 1, "method": "entropy", "batches": 1, "ranges": {"a": {"min": -3, "max": 2, "threshold": 3}, "# +
            #""b": {"min": 0, "max": 0, "threshold": 0}, "c": {"min": 0, "max": 8, "threshold": 0.5}}}"#
        let table = try CalibrationTable.decode(Data(json.utf8), source: "good.json")
        #expect(table.ranges.count == 3)
    }

    /// A damaged table in the cache folder is calibrated again and replaced, as a damaged plan is
    /// rebuilt; it never stops the run (`kiln run` stopped where `kiln compare` recomputed).
    @Test func aDamagedCachedTableIsCalibratedAgain() throws {
        let symbol = Symbol.fullyConnected(.variable("data"), numHidden: 2, name: "fc")
        let graph = symbol.graph
        let shapes = try graph.inferShapes(["data": [4, 3]])
        let weights = ["fc_weight": NDArray(shape: [2, 3], values: [1, 2, 3, 4, 5, 6]), "fc_bias": NDArray(shape: [2], values: [0, 1])]
        let dir = try Self.temporaryDirectory()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        var options = EngineOptions(precision: .int8, cacheDirectory: dir)
        options.calibrationBatches = 1
        options.calibrationMethod = .minmax
        let key = try CalibrationTable.key(graph: graph, shapes: shapes, constants: weights, method: .minMax, batches: 1)
        let path = CalibrationTable.cachePath(in: dir, key: key)
        try Data(#"{"format": 1, "method": "minmax", "batches": 1, "ranges": {"fc": {"min": -1, "max": 1, "threshold": 1e-44}}}"#.utf8)
            .write(to: URL(fileURLWithPath: path))
        let compiled = try CPUEngine(options: options, usesProcessCache: false)
            .compile(graph, shapes: shapes, types: try graph.inferTypes(), constants: weights)
        let calibrating = try #require(compiled as? CalibratingPlan, "the damaged table was not set aside")
        let data = NDArray(shape: [4, 3], values: [1, -2, 3, 0.5, 0, -1, 2, 2, 2, -3, 1, 0])
        let out = try calibrating.run(["data": data], isTrain: false)[0]
        #expect(Array(out.floats()[0...1]) == [6, 13])  // 1*1 - 2*2 + 3*3 + 0 and 1*4 - 2*5 + 3*6 + 1, in fp32 while calibrating
        let replaced = try CalibrationTable.load(from: path)
        #expect(replaced.ranges["fc"].map { $0.threshold > 1 } == true)
    }

    /// The key follows the graph, weights, shapes, method and batch count; a stored table is found again.
    @Test func cacheKeyAndStore() throws {
        let symbol = Symbol.fullyConnected(.variable("data"), numHidden: 2, name: "fc")
        let graph = symbol.graph
        let shapes = try graph.inferShapes(["data": [4, 3]])
        let weights = ["fc_weight": NDArray(shape: [2, 3], values: [1, 2, 3, 4, 5, 6]), "fc_bias": NDArray(shape: [2], values: [0, 1])]
        let key = try CalibrationTable.key(graph: graph, shapes: shapes, constants: weights, method: .entropy, batches: 10)
        #expect(key.count == 64)
        // Arrays that are not variables of the graph do not change the key.
        var extra = weights
        extra["not_in_graph"] = NDArray(shape: [1], values: [1])
        #expect(try CalibrationTable.key(graph: graph, shapes: shapes, constants: extra, method: .entropy, batches: 10) == key)
        #expect(try CalibrationTable.key(graph: graph, shapes: shapes, constants: weights, method: .entropy, batches: 10) == key)
        #expect(try CalibrationTable.key(graph: graph, shapes: shapes, constants: weights, method: .minMax, batches: 10) != key)
        #expect(try CalibrationTable.key(graph: graph, shapes: shapes, constants: weights, method: .entropy, batches: 9) != key)
        var other = weights
        other["fc_bias"] = NDArray(shape: [2], values: [0, 2])
        #expect(try CalibrationTable.key(graph: graph, shapes: shapes, constants: other, method: .entropy, batches: 10) != key)
        let bigger = try graph.inferShapes(["data": [8, 3]])
        #expect(try CalibrationTable.key(graph: graph, shapes: bigger, constants: weights, method: .entropy, batches: 10) != key)

        let dir = try Self.temporaryDirectory() + "/nested"
        defer { try? FileManager.default.removeItem(atPath: (dir as NSString).deletingLastPathComponent) }
        #expect(try CalibrationTable.cached(in: dir, key: key) == nil)
        let path = try Self.sample.store(in: dir, key: key)
        #expect(path == dir + "/calib-\(key).json")
        #expect(try CalibrationTable.cached(in: dir, key: key) == Self.sample)
    }
}
