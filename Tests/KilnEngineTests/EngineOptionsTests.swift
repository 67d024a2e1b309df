import KilnCore
import KilnGraph
import KilnEngine
import KilnEngineCore
import Testing

@Suite struct EngineOptionsTests {
    @Test func defaults() throws {
        let o = try EngineOptions(parsing: [:])
        #expect(o == EngineOptions())
        #expect(o.precision == .fp32 && o.minGroupSize == 2 && o.excludedOps.isEmpty && o.cacheDirectory == nil && !o.verbose)
    }

    @Test func shortAndEnvironmentNamesBothParse() throws {
        let a = try EngineOptions(parsing: ["precision": "fp32", "min_group": "3", "exclude": "elemwise_add, Pooling",
                                            "cache_dir": "/tmp/x", "verbose": "1"])
        let b = try EngineOptions(parsing: ["KILN_ENGINE_PRECISION": "FP32", "KILN_ENGINE_MIN_GROUP": "3",
                                            "KILN_ENGINE_EXCLUDE": "elemwise_add,Pooling", "KILN_ENGINE_CACHE_DIR": "/tmp/x",
                                            "KILN_ENGINE_VERBOSE": "true"])
        #expect(a == b)
        #expect(a.minGroupSize == 3 && a.excludedOps == ["elemwise_add", "Pooling"] && a.cacheDirectory == "/tmp/x" && a.verbose)
    }

    /// fp32, bf16, fp16 (the cuda engine's) and int8 are accepted (any case); anything else is refused
    /// with the accepted values listed.
    @Test(arguments: ["fp8", "", "int4"])
    func unknownPrecisionIsRefused(value: String) {
        #expect { try EngineOptions(parsing: ["KILN_ENGINE_PRECISION": value]) } throws: { e in
            let m = "\(e)"
            return m.contains("KILN_ENGINE_PRECISION=\(value)") && m.contains("accepted values: fp32, bf16, fp16, int8")
        }
    }

    @Test(arguments: [("fp32", EngineOptions.Precision.fp32), ("BF16", .bf16), ("int8", .int8)])
    func precisionsAreParsed(text: String, precision: EngineOptions.Precision) throws {
        #expect(try EngineOptions(parsing: ["precision": text]).precision == precision)
    }

    @Test func int8OptionsRoundTripThroughTheCompactForm() throws {
        let o = try EngineOptions(parsing: ["KILN_ENGINE_PRECISION": "int8", "KILN_ENGINE_CALIBRATION_BATCHES": "4",
                                            "KILN_ENGINE_CALIBRATION": "entropy", "KILN_ENGINE_FP32_NODES": "conv0, dense0"])
        #expect(o.calibrationBatches == 4 && o.calibrationMethod == .entropy && o.floatNodes == ["conv0", "dense0"])
        // minmax, the default, is left out of the compact form; entropy is written.
        #expect(o.compact == "precision=int8;fp32_nodes=conv0,dense0;calibration_batches=4;calibration=entropy")
        #expect(EngineOptions().compact.contains("calibration=") == false)
        #expect(try EngineOptions(compact: o.compact) == o)
        #expect { try EngineOptions(parsing: ["calibration_batches": "0"]) } throws: { "\($0)".contains("at least 1") }
        #expect { try EngineOptions(parsing: ["calibration": "kl"]) } throws: { "\($0)".contains("entropy, minmax") }
    }

    @Test(arguments: ["0", "-1", "two", "1.5"])
    func minimumGroupMustBeAPositiveInteger(value: String) {
        #expect { try EngineOptions(parsing: ["min_group": value]) } throws: { "\($0)".contains("an integer of at least 1") }
    }

    @Test func excludedOpsAreCanonicalAndChecked() throws {
        // Aliases resolve to MXNet's canonical names.
        #expect(try EngineOptions(parsing: ["exclude": "_Plus,flatten"]).excludedOps == ["elemwise_add", "Flatten"])
        #expect { try EngineOptions(parsing: ["exclude": "Convolution,NoSuchOp"]) } throws: { e in
            "\(e)".contains("NoSuchOp") && "\(e)".contains("Convolution")
        }
    }

    @Test func unknownKeysAndValuesListWhatIsAccepted() {
        #expect { try EngineOptions(parsing: ["KILN_ENGINE_PRECISON": "fp32"]) } throws: { e in
            "\(e)".contains("KILN_ENGINE_PRECISON") && "\(e)".contains("KILN_ENGINE_PRECISION")
        }
        #expect { try EngineOptions(parsing: ["verbose": "maybe"]) } throws: { "\($0)".contains("0, 1, true, false") }
    }

    /// The environment: only KILN_ENGINE_* is read.
    @Test func environmentIgnoresOtherVariables() throws {
        let o = try EngineOptions(environment: ["PATH": "/bin", "KILN_USE_ENGINE": "1", "KILN_ENGINE_MIN_GROUP": "4"])
        #expect(o.minGroupSize == 4)
    }

    /// An engine node stores its options as text and reads them back unchanged.
    @Test func valuesRoundTrip() throws {
        let o = EngineOptions(minGroupSize: 5, excludedOps: ["Concat", "softmax"], cacheDirectory: "/tmp/c", verbose: true)
        #expect(try EngineOptions(parsing: o.values) == o)
        #expect(try EngineOptions(parsing: EngineOptions().values) == EngineOptions())
    }

    /// The one-line form of an engine node's `options` attribute.
    @Test func compactFormRoundTrips() throws {
        #expect(EngineOptions().compact == "precision=fp32")
        let o = EngineOptions(minGroupSize: 3, excludedOps: ["Pooling", "softmax"], cacheDirectory: "/tmp/c", verbose: true)
        #expect(o.compact == "precision=fp32;min_group=3;exclude=Pooling,softmax;cache_dir=/tmp/c;verbose=1")
        #expect(try EngineOptions(compact: o.compact) == o)
        #expect(try EngineOptions(compact: "") == EngineOptions())
        #expect { try EngineOptions(compact: "precision=fp8") } throws: { "\($0)".contains("accepted values: fp32, bf16, fp16, int8") }
        #expect { try EngineOptions(compact: "fp32") } throws: { "\($0)".contains("key=value") }
    }
}

/// fp16 is a precision of the cuda engine; the cpu engine refuses it with a sentence saying so.
@Suite struct CPUEngineFP16Tests {
    @Test func cpuEngineRefusesFP16() throws {
        let y = Symbol.fullyConnected(.variable("data"), numHidden: 2, name: "fc")
        let g = y.graph
        let shapes = try g.inferShapes(["data": [1, 3]]), types = try g.inferTypes([:])
        let engine = CPUEngine(options: EngineOptions(precision: .fp16), usesProcessCache: false)
        let constants = ["fc_weight": NDArray(zeros: [2, 3]), "fc_bias": NDArray(zeros: [2])]
        #expect { _ = try engine.compile(g, shapes: shapes, types: types, constants: constants) } throws: {
            "\($0)".contains("fp16 is the cuda engine's")
        }
    }
}
