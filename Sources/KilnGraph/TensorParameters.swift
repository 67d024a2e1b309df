import KilnCore

// The tensor family's attributes read against an input shape: the index arithmetic that shape rules
// and kernels share, kept in one place so a kernel can never disagree with the shape it was bound for.
// Each initializer takes the node's context (attributes with defaults filled in) and throws errors
// that name the node.

/// Reshape's output shape: from `shape` codes (see ``ShapeCodes``), or else from the deprecated
/// `target_shape` and `keep_highest`.
public func reshapeOutputShape(_ ctx: NodeContext, input: Shape) throws -> Shape {
    let a = ctx.attributes
    let codes = try a.ints("shape")
    let target = try a.ints("target_shape")
    do {
        if !codes.isEmpty { return try ShapeCodes.reshape(input, codes: codes, reverse: try a.bool("reverse")) }
        if !target.isEmpty { return try ShapeCodes.legacyReshape(input, target: target, keepHighest: try a.bool("keep_highest")) }
    } catch let failure as ShapeCodes.Failure {
        throw ctx.invalid("cannot reshape input '\(ctx.inputNames.first ?? "data")' of shape \(input): \(failure.reason)")
    }
    throw ctx.invalid("needs the attribute shape (or the deprecated target_shape) to reshape input of shape \(input)")
}

/// transpose's permutation: `axes`, or the reversed axes when `axes` is empty (MXNet's default).
public struct TransposeParameters: Sendable, Equatable {
    /// Output axis `i` is input axis `axes[i]`.
    public let axes: [Int]

    /// Reads `axes` for `input`; throws unless it is empty or a permutation of the input's axes.
    public init(_ ctx: NodeContext, input: Shape) throws {
        let given = try ctx.attributes.ints("axes")
        if given.isEmpty {
            axes = Array((0..<input.rank).reversed())
            return
        }
        guard given.count == input.rank, Set(given) == Set(0..<input.rank) else {
            throw ctx.invalid("axes \(AttributeText.tuple(given)) is not a permutation of 0..<\(input.rank) for input of shape \(input)")
        }
        axes = given
    }

    /// The output shape for `input`.
    public func outputShape(_ input: Shape) -> Shape { Shape(axes.map { input[$0] }) }
}

/// expand_dims's output shape: `axis` may be negative, counted over the output's rank.
public func expandDimsOutputShape(_ ctx: NodeContext, input: Shape) throws -> Shape {
    let axis = try ctx.attributes.int("axis")
    let position = axis < 0 ? axis + input.rank + 1 : axis
    guard (0...input.rank).contains(position) else {
        throw ctx.invalid("axis \(axis) is outside [\(-input.rank - 1), \(input.rank)] for input of shape \(input)")
    }
    var dims = input.dims
    dims.insert(1, at: position)
    return Shape(dims)
}

/// An array seen as `(outer, axis, inner)` around one axis: what concatenation, splitting and slicing
/// along an axis of a C-ordered array need.
public struct AxisSplit: Sendable, Equatable {
    /// Product of the dims before the axis.
    public let outer: Int
    /// The axis's extent.
    public let extent: Int
    /// Product of the dims after the axis.
    public let inner: Int

    /// The split of `shape` around `axis`, which must be a valid (normalized) axis.
    public init(_ shape: Shape, axis: Int) {
        outer = shape.dims[..<axis].reduce(1, *)
        extent = shape.dims[axis]
        inner = shape.dims[(axis + 1)...].reduce(1, *)
    }
}

/// Concat's axis (normalized) and its check that inputs agree on every other axis.
public struct ConcatParameters: Sendable, Equatable {
    /// The concatenated axis, in `0..<rank`.
    public let axis: Int

    /// Reads `dim` for inputs of the given shapes; throws unless they agree on every other axis.
    public init(_ ctx: NodeContext, inputs: [Shape]) throws {
        let dim = try ctx.attributes.int("dim")
        guard let first = inputs.first else { throw ctx.invalid("needs at least one input") }
        guard let axis = first.normalizedAxis(dim) else {
            throw ctx.invalid("dim \(dim) is outside [\(-first.rank), \(first.rank - 1)] for input '\(ctx.inputNames.first ?? "arg0")' of shape \(first)")
        }
        self.axis = axis
        for (i, s) in inputs.enumerated().dropFirst() {
            let name = i < ctx.inputNames.count ? ctx.inputNames[i] : "arg\(i)"
            guard s.rank == first.rank else {
                throw ctx.invalid("input '\(name)' has shape \(s), but input '\(ctx.inputNames.first ?? "arg0")' has shape \(first); inputs must have the same rank and differ only on the concatenated axis \(axis)")
            }
            if let bad = (0..<s.rank).first(where: { $0 != axis && s[$0] != first[$0] }) {
                throw ctx.invalid("input '\(name)' has shape \(s), but input '\(ctx.inputNames.first ?? "arg0")' has shape \(first); they differ on axis \(bad), and inputs may differ only on the concatenated axis \(axis)")
            }
        }
    }

    /// The inputs' shape with the axis extended to their total extent.
    public func outputShape(_ inputs: [Shape]) -> Shape {
        var dims = inputs[0].dims
        dims[axis] = inputs.reduce(0) { $0 + $1[axis] }
        return Shape(dims)
    }
}

/// SliceChannel's axis, number of parts and whether the split axis is dropped.
public struct SplitParameters: Sendable, Equatable {
    /// The split axis, in `0..<rank`.
    public let axis: Int
    /// Number of parts (`num_outputs`).
    public let count: Int
    /// Whether the parts drop the split axis (`squeeze_axis`).
    public let squeeze: Bool
    /// Extent of each part along the axis.
    public let partExtent: Int

    /// Reads the attributes for `input`; throws unless the axis splits evenly (into parts of extent
    /// 1 with `squeeze_axis`).
    public init(_ ctx: NodeContext, input: Shape) throws {
        let a = ctx.attributes
        count = try a.int("num_outputs")
        squeeze = try a.bool("squeeze_axis")
        let given = try a.int("axis")
        guard count >= 1 else { throw ctx.invalid("num_outputs is \(count), but it must be at least 1") }
        guard let axis = input.normalizedAxis(given) else {
            throw ctx.invalid("axis \(given) is outside [\(-input.rank), \(input.rank - 1)] for input of shape \(input)")
        }
        self.axis = axis
        guard input[axis] % count == 0 else {
            throw ctx.invalid("axis \(axis) of input of shape \(input) has extent \(input[axis]), which cannot be split into \(count) equal parts")
        }
        partExtent = input[axis] / count
        guard !squeeze || partExtent == 1 else {
            throw ctx.invalid("squeeze_axis needs the split axis's extent to equal num_outputs, but axis \(axis) of input of shape \(input) has extent \(input[axis]) and num_outputs is \(count)")
        }
    }

    /// The shape of every part.
    public func outputShape(_ input: Shape) -> Shape {
        var dims = input.dims
        if squeeze { dims.remove(at: axis) } else { dims[axis] = partExtent }
        return Shape(dims)
    }
}

/// slice_axis's axis and `[begin, end)` range, negative values counted from the end.
public struct SliceAxisParameters: Sendable, Equatable {
    /// The sliced axis, in `0..<rank`.
    public let axis: Int
    /// First index taken, in `0..<extent`.
    public let begin: Int
    /// One past the last index taken, in `begin + 1...extent`.
    public let end: Int

    /// Reads the attributes for `input`; throws unless they give a non-empty range inside the axis.
    public init(_ ctx: NodeContext, input: Shape) throws {
        let a = ctx.attributes
        let givenAxis = try a.int("axis")
        let givenBegin = try a.int("begin")
        let givenEnd = try a.optionalInt("end")
        guard let axis = input.normalizedAxis(givenAxis) else {
            throw ctx.invalid("axis \(givenAxis) is outside [\(-input.rank), \(input.rank - 1)] for input of shape \(input)")
        }
        let n = input[axis]
        let begin = givenBegin < 0 ? givenBegin + n : givenBegin
        let end = givenEnd.map { $0 < 0 ? $0 + n : $0 } ?? n
        guard begin >= 0, end <= n, begin < end else {
            throw ctx.invalid("begin \(givenBegin) and end \(givenEnd.map(String.init) ?? "None") give the range [\(begin), \(end)) of axis \(axis), which must be a non-empty range within [0, \(n)) for input of shape \(input)")
        }
        self.axis = axis
        self.begin = begin
        self.end = end
    }

    /// The input's shape with the axis cut to the range.
    public func outputShape(_ input: Shape) -> Shape {
        var dims = input.dims
        dims[axis] = end - begin
        return Shape(dims)
    }
}

/// How Pad fills the border.
public enum PadMode: String, Sendable, CaseIterable {
    /// The constant `constant_value`.
    case constant
    /// Copies of the nearest edge element.
    case edge
    /// The input mirrored at its edge, without repeating the edge (numpy's `reflect`).
    case reflect
}

/// Pad's mode, per-axis widths and fill value. MXNet pads 4-D and 5-D inputs only, and never their
/// first two axes (batch and channel).
public struct PadParameters: Sendable, Equatable {
    /// How the border is filled (`mode`).
    public let mode: PadMode
    /// Elements added before each axis.
    public let before: [Int]
    /// Elements added after each axis.
    public let after: [Int]
    /// The fill of `constant` mode (`constant_value`).
    public let value: Double

    /// Reads the attributes for `input`; throws unless it is 4-D or 5-D and the widths are valid
    /// for the mode.
    public init(_ ctx: NodeContext, input: Shape) throws {
        let a = ctx.attributes
        let modeText = try a.choice("mode", PadMode.allCases.map(\.rawValue))
        mode = PadMode(rawValue: modeText) ?? .constant
        value = try a.float("constant_value")
        let widths = try a.ints("pad_width")
        guard input.rank == 4 || input.rank == 5 else {
            throw ctx.mismatch(0, expected: "rank 4 or 5 (Pad supports 4-D and 5-D inputs only)", actual: input)
        }
        guard widths.count == 2 * input.rank else {
            throw ctx.invalid("pad_width \(AttributeText.tuple(widths)) has \(widths.count) entries, but input of shape \(input) needs \(2 * input.rank) (before and after for each axis)")
        }
        guard widths[0..<4].allSatisfy({ $0 == 0 }) else {
            throw ctx.invalid("pad_width \(AttributeText.tuple(widths)) pads the first two axes; their four entries must be 0")
        }
        guard widths.allSatisfy({ $0 >= 0 }) else {
            throw ctx.invalid("pad_width \(AttributeText.tuple(widths)) has a negative width")
        }
        before = stride(from: 0, to: widths.count, by: 2).map { widths[$0] }
        after = stride(from: 1, to: widths.count, by: 2).map { widths[$0] }
        for axis in 2..<input.rank where before[axis] > 0 || after[axis] > 0 {
            switch mode {
            case .constant: break
            case .edge:
                guard input[axis] > 0 else {
                    throw ctx.invalid("edge padding of axis \(axis) needs at least one element, but input has shape \(input)")
                }
            case .reflect:
                guard before[axis] < input[axis], after[axis] < input[axis] else {
                    throw ctx.invalid("reflect padding of axis \(axis) by (\(before[axis]), \(after[axis])) must be smaller than its extent \(input[axis]) in input of shape \(input)")
                }
            }
        }
    }

    /// The input's shape with each axis grown by its widths.
    public func outputShape(_ input: Shape) -> Shape {
        Shape(input.dims.indices.map { input[$0] + before[$0] + after[$0] })
    }

    /// The input index that output index `i` of an axis of extent `n` reads, or nil for the constant.
    public func sourceIndex(_ i: Int, axis: Int, extent n: Int) -> Int? {
        let j = i - before[axis]
        if j >= 0 && j < n { return j }
        switch mode {
        case .constant: return nil
        case .edge: return j < 0 ? 0 : n - 1
        case .reflect:
            // Mirror at the edges without repeating them; widths below n need one reflection.
            return j < 0 ? -j : 2 * (n - 1) - j
        }
    }
}

/// Which axes sum and mean reduce, and the output shape, from `axis`, `keepdims` and `exclude`.
///
/// `axis` None or `()` reduces every axis (to shape `(1,)`, or all ones with `keepdims`); `exclude`
/// reduces the axes not listed.
public struct ReductionParameters: Sendable, Equatable {
    /// For each input axis, whether it is reduced.
    public let reduced: [Bool]
    /// Whether reduced axes stay in the output with extent 1 (`keepdims`).
    public let keepDims: Bool

    /// Reads the attributes for `input`; throws on an axis out of range or listed twice.
    public init(_ ctx: NodeContext, input: Shape) throws {
        let a = ctx.attributes
        keepDims = try a.bool("keepdims")
        let exclude = try a.bool("exclude")
        guard let listed = try a.optionalInts("axis"), !listed.isEmpty else {
            reduced = [Bool](repeating: true, count: input.rank)
            return
        }
        var marks = [Bool](repeating: false, count: input.rank)
        for entry in listed {
            guard let given = entry else { throw ctx.invalid("axis has a None entry; give integers") }
            guard let axis = input.normalizedAxis(given) else {
                throw ctx.invalid("axis \(given) is outside [\(-input.rank), \(input.rank - 1)] for input of shape \(input)")
            }
            guard !marks[axis] else {
                throw ctx.invalid("axis lists axis \(axis) twice for input of shape \(input)")
            }
            marks[axis] = true
        }
        reduced = exclude ? marks.map { !$0 } : marks
    }

    /// The input shape with reduced axes set to 1 (the output's layout, whatever `keepdims` says).
    public func keptShape(_ input: Shape) -> Shape {
        Shape(input.dims.indices.map { reduced[$0] ? 1 : input[$0] })
    }

    /// The output shape: reduced axes dropped (or 1 with `keepdims`); `(1,)` when nothing is left.
    public func outputShape(_ input: Shape) -> Shape {
        if keepDims { return keptShape(input) }
        let dims = input.dims.indices.filter { !reduced[$0] }.map { input[$0] }
        return Shape(dims.isEmpty ? [1] : dims)
    }

    /// Number of input elements that reduce into each output element.
    public func reductionSize(_ input: Shape) -> Int {
        input.dims.indices.filter { reduced[$0] }.map { input[$0] }.reduce(1, *)
    }
}
