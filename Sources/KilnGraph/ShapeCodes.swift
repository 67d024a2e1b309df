import KilnCore

/// MXNet's Reshape target shapes: the special codes of `shape` and the deprecated `target_shape`.
///
/// `shape` is read left to right against the input's dims, with a cursor on the next input dim.
/// Each entry either copies input dims, merges or splits them, or gives a new dim:
///
/// ```
/// code   meaning                                       input      shape            output
/// ----   -------------------------------------------   ---------  ---------------  ---------
///  d>0   a new dim d (the cursor moves one dim)        (2,3,4)    (4,0,2)          (4,3,2)
///   0    copy the input dim under the cursor           (2,3,4)    (4,0,2)          (4,3,2)
///  -1    inferred from the element count (at most     (2,3,4)    (6,1,-1)         (6,1,4)
///        one; the cursor moves one dim)
///  -2    copy all remaining input dims                 (2,3,4)    (-2,)            (2,3,4)
///                                                      (2,3,4)    (2,-2)           (2,3,4)
///  -3    merge the next two input dims into one        (2,3,4)    (-3,4)           (6,4)
///                                                      (2,3,4,5)  (-3,-3)          (6,20)
///  -4    split the next input dim into the two         (2,3,4)    (-4,1,2,-2)      (1,2,3,4)
///        entries that follow (one may be -1)           (2,3,4)    (2,-4,-1,3,-2)   (2,1,3,4)
/// ```
///
/// With `reverse`, input dims and codes are both read right to left, and the result is reversed
/// back; this changes which dims `0` and `-1` refer to:
///
/// ```
/// input (10,5,4), shape (-1,0):                 -> (40,5)    0 copies dim 1 (5)
/// input (10,5,4), shape (-1,0), reverse=True:   -> (50,4)    0 copies the last dim (4)
/// ```
///
/// Unlike MXNet 1.9, which accepts a result of another element count and fails later, a result whose
/// element count differs from the input's is an error here.
public enum ShapeCodes {
    /// Why a target shape cannot be resolved, as a sentence fragment (no node name: the caller adds it).
    public struct Failure: Error, CustomStringConvertible, Equatable {
        public let reason: String
        public init(_ reason: String) { self.reason = reason }
        public var description: String { reason }
    }

    /// Resolves Reshape's `shape` codes (`0`, `-1`, `-2`, `-3`, `-4` and positive dims) for `input`.
    ///
    /// - Throws: ``Failure`` when a code needs input dims that are not there, a `-4` split does not
    ///   divide its dim, `-1` appears twice or cannot be inferred, a code is not one of the above, or
    ///   the result has a different element count than the input.
    public static func reshape(_ input: Shape, codes: [Int], reverse: Bool = false) throws(Failure) -> Shape {
        let source = reverse ? Array(input.dims.reversed()) : input.dims
        let spec = reverse ? Array(codes.reversed()) : codes
        let requested = "shape \(AttributeText.tuple(codes))\(reverse ? " with reverse" : "")"
        var out: [Int] = []
        var cursor = 0
        var inferred: Int?
        var i = 0

        func sourceDim(_ code: Int) throws(Failure) -> Int {
            guard cursor < source.count else {
                throw Failure("\(requested) uses code \(code) after all \(source.count) dims of the input \(input) were consumed")
            }
            defer { cursor += 1 }
            return source[cursor]
        }

        while i < spec.count {
            let code = spec[i]
            switch code {
            case 0:
                out.append(try sourceDim(0))
            case -1:
                guard inferred == nil else {
                    throw Failure("\(requested) has -1 twice, but only one dim can be inferred")
                }
                inferred = out.count
                out.append(1)
                cursor += 1
            case -2:
                if cursor < source.count { out += source[cursor...] }
                cursor = source.count
            case -3:
                let a = try sourceDim(-3)
                let b = try sourceDim(-3)
                out.append(a * b)
            case -4:
                guard i + 2 < spec.count else {
                    throw Failure("\(requested) ends its -4 without the two dims to split into")
                }
                let whole = try sourceDim(-4)
                var first = spec[i + 1], second = spec[i + 2]
                i += 2
                guard first >= -1, second >= -1, !(first == -1 && second == -1) else {
                    throw Failure("\(requested) splits input dim \(whole) into (\(first), \(second)); the two parts must be sizes, and at most one of them -1")
                }
                if first == -1, second > 0, whole % second == 0 { first = whole / second }
                if second == -1, first > 0, whole % first == 0 { second = whole / first }
                // Checked: the sizes come from the attribute and may multiply past Int.max.
                guard first >= 0, second >= 0, first.multipliedReportingOverflow(by: second) == (whole, false) else {
                    throw Failure("\(requested) splits input dim \(whole) into (\(spec[i - 1]), \(spec[i])), which do not multiply to \(whole)")
                }
                out += [first, second]
            case let d where d > 0:
                out.append(d)
                cursor += 1
            default:
                throw Failure("\(requested) has code \(code); codes are positive sizes, 0, -1, -2, -3 and -4")
            }
            i += 1
        }

        if let k = inferred {
            let known = try countOf(out, requested)
            guard known > 0, input.elementCount % known == 0 else {
                throw Failure("\(requested) cannot infer its -1: the input \(input) has \(input.elementCount) elements, which is not a multiple of the \(known) of the other dims")
            }
            out[k] = input.elementCount / known
        }
        if reverse { out.reverse() }
        let result = Shape(out)
        try requireSameCount(input, result, requested)
        return result
    }

    /// Resolves the deprecated `target_shape`: positive dims, with at most one `0` inferred from the
    /// element count; with `keepHighest`, the first dim is the input's whatever `target` says.
    ///
    /// ```
    /// input (2,3,4), target_shape (0,4)                       -> (6,4)
    /// input (2,3,4), target_shape (7,0), keep_highest=True    -> (2,12)
    /// ```
    public static func legacyReshape(_ input: Shape, target: [Int], keepHighest: Bool = false) throws(Failure) -> Shape {
        let requested = "target_shape \(AttributeText.tuple(target))\(keepHighest ? " with keep_highest" : "")"
        guard !target.isEmpty else { throw Failure("\(requested) is empty") }
        guard target.allSatisfy({ $0 >= 0 }) else {
            throw Failure("\(requested) has a negative dim; target_shape takes sizes and one 0 to infer")
        }
        var out = target
        if keepHighest {
            guard let first = input.dims.first else {
                throw Failure("\(requested) keeps the first dim of the input, but the input \(input) has none")
            }
            out[0] = first
        }
        let start = keepHighest ? 1 : 0
        let zeros = (start..<out.count).filter { out[$0] == 0 }
        if zeros.count == 1 {
            let k = zeros[0]
            out[k] = 1
            let known = try countOf(out, requested)
            guard known > 0, input.elementCount % known == 0 else {
                throw Failure("\(requested) cannot infer its 0: the input \(input) has \(input.elementCount) elements, which is not a multiple of \(known)")
            }
            out[k] = input.elementCount / known
        }
        let result = Shape(out)
        try requireSameCount(input, result, requested)
        return result
    }

    /// The element count of `dims`, which hold the attribute's sizes: thrown rather than trapped on
    /// when they multiply past Int.max (`shape (4294967296, 4294967296, -1)`).
    static func countOf(_ dims: [Int], _ requested: String) throws(Failure) -> Int {
        guard let count = Shape(dims).checkedElementCount else {
            throw Failure("\(requested) asks for \(Shape(dims)), which has more elements than Int can count")
        }
        return count
    }

    static func requireSameCount(_ input: Shape, _ result: Shape, _ requested: String) throws(Failure) {
        guard try countOf(result.dims, requested) == input.elementCount else {
            throw Failure("\(requested) gives \(result) (\(result.elementCount) elements) for the input \(input) (\(input.elementCount) elements); a reshape keeps the element count")
        }
    }
}
