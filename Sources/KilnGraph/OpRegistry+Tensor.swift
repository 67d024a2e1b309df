import KilnCore

// The tensor family: ops that change shapes, select or join elements, and reduce along axes.
// Attribute spellings and defaults are MXNet 1.9.1's (checked against its op documentation and
// behaviour); the index arithmetic lives in OpRegistry+TensorParameters.swift and ShapeCodes.swift.
// Every op here is linear in its inputs and differentiable in all of them (Concat in each of its
// `num_args` inputs); the kernels move or broadcast the output gradient back.
extension OpRegistry {
    static var tensorOps: [OpDefinition] {
        [flatten, reshape, transpose, expandDims, concat, sliceChannel, sliceAxis, pad,
         reduction("sum", aliases: ["sum_axis", "_sparse_sum"]),
         reduction("mean", aliases: ["_sparse_mean"])]
    }

    /// `(N, d1, d2, ...) -> (N, d1*d2*...)`; a 1-D input `(N,)` becomes `(N, 1)`.
    static var flatten: OpDefinition {
        OpDefinition(name: "Flatten", aliases: ["flatten", "_npx_batch_flatten"], fusion: .injective, inferShape: { shapes, ctx in
            let data = try ctx.known(shapes, 0)
            guard let first = data.dims.first else { throw ctx.mismatch(0, expected: "rank 1 or more", actual: data) }
            return [Shape([first, data.dims.dropFirst().reduce(1, *)])]
        }, gradient: .only([0]))
    }

    static var reshape: OpDefinition {
        OpDefinition(
            name: "Reshape", aliases: ["reshape"],
            attributes: [
                AttributeSpec("shape", .ints, default: "()"),
                AttributeSpec("reverse", .bool, default: "False"),
                // Deprecated by MXNet, still found in old files.
                AttributeSpec("target_shape", .ints, default: "()"),
                AttributeSpec("keep_highest", .bool, default: "False"),
            ],
            fusion: .injective,
            inferShape: { shapes, ctx in [try reshapeOutputShape(ctx, input: try ctx.known(shapes, 0))] },
            gradient: .only([0]))
    }

    static var transpose: OpDefinition {
        OpDefinition(name: "transpose", attributes: [AttributeSpec("axes", .ints, default: "()")], fusion: .injective,
                     inferShape: { shapes, ctx in
                         let data = try ctx.known(shapes, 0)
                         return [try TransposeParameters(ctx, input: data).outputShape(data)]
                     }, gradient: .only([0]))
    }

    static var expandDims: OpDefinition {
        OpDefinition(name: "expand_dims", aliases: ["_npi_expand_dims"], attributes: [AttributeSpec("axis", .int)], fusion: .injective,
                     inferShape: { shapes, ctx in [try expandDimsOutputShape(ctx, input: try ctx.known(shapes, 0))] },
                     gradient: .only([0]))
    }

    /// Inputs are named `arg0`, `arg1`, ... as MXNet's `list_arguments` names them.
    static var concat: OpDefinition {
        OpDefinition(
            name: "Concat", aliases: ["concat", "_sparse_concat"],
            attributes: [AttributeSpec("num_args", .int), AttributeSpec("dim", .int, default: "1")],
            fusion: .injective,
            inputs: { a in
                let n = try a.count("num_args")
                return (0..<n).map { "arg\($0)" }
            },
            inferShape: { shapes, ctx in
                let n = try ctx.attributes.int("num_args")
                guard shapes.count == n else {
                    throw GraphError.inputCount(node: ctx.name, op: ctx.op, expected: "num_args=\(n)", actual: shapes.count)
                }
                let inputs = try shapes.indices.map { try ctx.known(shapes, $0) }
                return [try ConcatParameters(ctx, inputs: inputs).outputShape(inputs)]
            },
            gradient: .allInputs { a in (try? a.int("num_args")) ?? 0 })
    }

    /// Several outputs, named `output0`, `output1`, ... as MXNet's `list_outputs` names them.
    static var sliceChannel: OpDefinition {
        OpDefinition(
            name: "SliceChannel", aliases: ["split"],
            attributes: [
                AttributeSpec("num_outputs", .int),
                AttributeSpec("axis", .int, default: "1"),
                AttributeSpec("squeeze_axis", .bool, default: "False"),
            ],
            fusion: .injective,
            outputs: { a in
                let n = try a.count("num_outputs")
                return (0..<n).map { "output\($0)" }
            },
            inferShape: { shapes, ctx in
                let data = try ctx.known(shapes, 0)
                let p = try SplitParameters(ctx, input: data)
                return [Shape](repeating: p.outputShape(data), count: p.count)
            },
            gradient: .only([0]))
    }

    static var sliceAxis: OpDefinition {
        OpDefinition(
            name: "slice_axis",
            attributes: [AttributeSpec("axis", .int), AttributeSpec("begin", .int), AttributeSpec("end", .optionalInt)],
            fusion: .injective,
            inferShape: { shapes, ctx in
                let data = try ctx.known(shapes, 0)
                return [try SliceAxisParameters(ctx, input: data).outputShape(data)]
            },
            gradient: .only([0]))
    }

    static var pad: OpDefinition {
        OpDefinition(
            name: "Pad", aliases: ["pad"],
            attributes: [
                AttributeSpec("mode", .choice(PadMode.allCases.map(\.rawValue))),
                AttributeSpec("pad_width", .ints),
                AttributeSpec("constant_value", .float, default: "0"),
            ],
            fusion: .injective,
            inferShape: { shapes, ctx in
                let data = try ctx.known(shapes, 0)
                return [try PadParameters(ctx, input: data).outputShape(data)]
            },
            gradient: .only([0]))
    }

    static func reduction(_ name: String, aliases: [String]) -> OpDefinition {
        OpDefinition(
            name: name, aliases: aliases,
            attributes: [
                AttributeSpec("axis", .optionalInts, default: "None"),
                AttributeSpec("keepdims", .bool, default: "False"),
                AttributeSpec("exclude", .bool, default: "False"),
            ],
            fusion: .reduction,
            inferShape: { shapes, ctx in
                let data = try ctx.known(shapes, 0)
                return [try ReductionParameters(ctx, input: data).outputShape(data)]
            },
            gradient: .only([0]))
    }
}
