// Parameter initializers with MXNet's semantics (mxnet/initializer.py).
//
// Which initializer fills a variable follows MXNet's rule, in this order:
//
//   variable                      __init__ attribute          fills with
//   ----------------------------  --------------------------  --------------------------------
//   w  (attrs __init__=["one",{}])  ["one", {}]                 One()          (attribute wins)
//   fc1_weight                    -                           the initializer given
//   fc1_bias, bn_beta             -                           0
//   bn_gamma                      -                           1
//   bn_moving_mean / running_mean -                           0
//   bn_moving_var / running_var   -                           1
//   anything else                 -                           error (unknown pattern)
//
// Random initializers draw from a SplitMix64 stream seeded per variable name, so a variable's values
// depend only on the seed and its name, not on which variables were initialized before it.

import Foundation
import KilnCore

/// Fills parameter arrays (MXNet's `mx.init.Initializer`).
///
/// Conforming types implement ``fillWeight(_:name:generator:)``; ``initialize(_:name:attributes:seed:)``
/// applies MXNet's naming rule around it.
public protocol Initializer: Sendable, CustomStringConvertible {
    /// Fills `array` as MXNet's `_init_weight` does. `name` is for error messages.
    func fillWeight(_ array: inout NDArray, name: String, generator: inout SplitMix64) throws
}

/// What MXNet's default rule does with a variable that has no `__init__` attribute.
public enum InitializationRule: Sendable, Equatable {
    /// The initializer's own weight rule.
    case weight
    /// Zeros (bias, beta, min, moving and running means).
    case zero
    /// Ones (gamma, max, moving and running variances).
    case one

    /// The rule for a variable name, or nil when MXNet knows no pattern for it.
    ///
    /// MXNet 1.9 checks `weight`, `bias`, `gamma`, `beta`, `min`, `max` by suffix; BatchNorm's
    /// statistics get theirs from an `__init__` attribute that MXNet's backend attaches, which
    /// symbols built in Kiln do not carry, so the suffixes of MXNet's legacy rule cover them here.
    public init?(variableName name: String) {
        if name.hasSuffix("weight") { self = .weight }
        else if name.hasSuffix("bias") || name.hasSuffix("beta") { self = .zero }
        else if name.hasSuffix("gamma") { self = .one }
        else if name.hasSuffix("min") { self = .zero }
        else if name.hasSuffix("max") { self = .one }
        else if name.hasSuffix("moving_mean") || name.hasSuffix("running_mean")
                    || name.hasSuffix("moving_inv_var") || name.hasSuffix("moving_avg") { self = .zero }
        else if name.hasSuffix("moving_var") || name.hasSuffix("running_var") { self = .one }
        else { return nil }
    }
}

extension Initializer {
    /// Initializes one variable by MXNet's rule: its `__init__` attribute when it has one, else the
    /// suffix of its name (see ``InitializationRule``).
    ///
    /// - Parameters:
    ///   - attributes: the variable's attributes (from the symbol), where `__init__` is looked up.
    ///   - seed: with the name, determines the random values.
    public func initialize(_ array: inout NDArray, name: String, attributes: [String: String] = [:], seed: UInt64 = 0) throws {
        var generator = SplitMix64(seed: seed ^ stableHash(name))
        if let text = attributes["__init__"], !text.isEmpty {
            let chosen = try initializer(fromAttribute: text, variable: name)
            try fillAsFloat32(&array) { try chosen.fillWeight(&$0, name: name, generator: &generator) }
            return
        }
        guard let rule = InitializationRule(variableName: name) else {
            throw KilnTrainError.unknownInitializationPattern(variable: name)
        }
        switch rule {
        case .weight: try fillAsFloat32(&array) { try fillWeight(&$0, name: name, generator: &generator) }
        case .zero: array = NDArray(zeros: array.shape, dtype: array.dtype)
        case .one: try fillAsFloat32(&array) { $0.fill(1) }
        }
    }
}

/// Reads an `__init__` attribute as MXNet writes it (`["xavier", {"magnitude": 2.34}]`, or a bare
/// name such as `ones` as Gluon's export does) into an initializer. Names are case-insensitive, as in MXNet's registry; `zeros` and `ones` are aliases.
public func initializer(fromAttribute text: String, variable: String = "variable") throws -> any Initializer {
    func bad(_ reason: String) -> KilnTrainError { .invalidInitAttribute(variable: variable, value: text, reason: reason) }
    // Gluon's export writes a registered name alone (`ones`, `zeros`), which MXNet's registry takes too.
    let bareName = !text.isEmpty && text.allSatisfy { $0.isLetter || $0.isNumber || $0 == "_" }
    guard let json = bareName ? text : try? JSONSerialization.jsonObject(with: Data(text.utf8), options: [.fragmentsAllowed]) else {
        throw bad("it is neither JSON nor an initializer's name")
    }
    let kind: String, arguments: [String: Any]
    if let pair = json as? [Any], pair.count == 2, let k = pair[0] as? String, let a = pair[1] as? [String: Any] {
        kind = k; arguments = a
    } else if let k = json as? String {
        kind = k; arguments = [:]
    } else {
        throw bad("expected [\"name\", {arguments}]")
    }
    func number(_ key: String, _ fallback: Double) throws -> Double {
        guard let v = arguments[key] else { return fallback }
        if let d = v as? Double { return d }
        if let s = v as? String, let d = Double(s) { return d }
        throw bad("argument '\(key)' is not a number")
    }
    func string(_ key: String, _ fallback: String) throws -> String {
        guard let v = arguments[key] else { return fallback }
        guard let s = v as? String else { throw bad("argument '\(key)' is not a string") }
        return s
    }
    func factor() throws -> Xavier.FactorType {
        let s = try string("factor_type", "avg")
        guard let f = Xavier.FactorType(rawValue: s) else { throw bad("factor_type '\(s)' is not avg, in or out") }
        return f
    }
    switch kind.lowercased() {
    case "zero", "zeros": return Zero()
    case "one", "ones": return One()
    case "constant":
        guard let value = arguments["value"] else { throw bad("argument 'value' is missing") }
        if let list = value as? [Any] {
            guard let values = flattenNumbers(list) else { throw bad("argument 'value' holds something other than numbers") }
            return Constant(values: values)
        }
        return Constant(try number("value", 0))
    case "uniform": return Uniform(scale: try number("scale", 0.07))
    case "normal": return Normal(sigma: try number("sigma", 0.01))
    case "xavier":
        let r = try string("rnd_type", "uniform")
        guard let randomType = Xavier.RandomType(rawValue: r) else { throw bad("rnd_type '\(r)' is not uniform or gaussian") }
        return Xavier(randomType: randomType, factorType: try factor(), magnitude: try number("magnitude", 3))
    case "msraprelu":
        return MSRAPrelu(factorType: try factor(), slope: try number("slope", 0.25))
    default:
        throw bad("Kiln knows the initializers zero, one, constant, uniform, normal, xavier and msraprelu, not '\(kind)'")
    }
}

private func flattenNumbers(_ list: [Any]) -> [Float]? {
    var out: [Float] = []
    for item in list {
        if let d = item as? Double { out.append(Float(d)) }
        else if let nested = item as? [Any], let inner = flattenNumbers(nested) { out.append(contentsOf: inner) }
        else { return nil }
    }
    return out
}

/// FNV-1a of the UTF-8 bytes: a hash that, unlike `Hasher`, is the same in every run.
func stableHash(_ s: String) -> UInt64 {
    var h: UInt64 = 0xCBF2_9CE4_8422_2325
    for b in s.utf8 { h = (h ^ UInt64(b)) &* 0x0000_0100_0000_01B3 }
    return h
}

/// Runs `body` on a float32 array and converts the result back to the array's dtype.
private func fillAsFloat32(_ array: inout NDArray, _ body: (inout NDArray) throws -> Void) throws {
    if array.dtype == .float32 { try body(&array); return }
    var f = NDArray(zeros: array.shape, dtype: .float32)
    try body(&f)
    array = f.converted(to: array.dtype)
}

extension NDArray {
    /// Sets every element of a float32 array to `value`.
    mutating func fill(_ value: Float) {
        withUnsafeMutableBufferPointer(as: Float.self) { p in
            for i in p.indices { p[i] = value }
        }
    }

    /// Fills a float32 array with uniform values in `[-scale, scale)`.
    mutating func fillUniform(scale: Float, generator: inout SplitMix64) {
        withUnsafeMutableBufferPointer(as: Float.self) { p in
            for i in p.indices { p[i] = -scale + 2 * scale * generator.nextFloat() }
        }
    }

    /// Fills a float32 array with normal values of mean 0 and standard deviation `sigma`.
    mutating func fillNormal(sigma: Float, generator: inout SplitMix64) {
        withUnsafeMutableBufferPointer(as: Float.self) { p in
            for i in p.indices { p[i] = sigma * generator.nextGaussian() }
        }
    }
}

/// Zeros (MXNet's `Zero`, alias `zeros`).
public struct Zero: Initializer {
    public init() {}
    public func fillWeight(_ array: inout NDArray, name: String, generator: inout SplitMix64) throws { array.fill(0) }
    public var description: String { "Zero()" }
}

/// Ones (MXNet's `One`, alias `ones`).
public struct One: Initializer {
    public init() {}
    public func fillWeight(_ array: inout NDArray, name: String, generator: inout SplitMix64) throws { array.fill(1) }
    public var description: String { "One()" }
}

/// A constant (MXNet's `Constant`): one value everywhere, or one value per element.
public struct Constant: Initializer {
    /// One value, or as many as the array has elements.
    public let values: [Float]

    public init(_ value: Float) { values = [value] }
    public init(_ value: Double) { values = [Float(value)] }
    /// Element values in C order; the array filled must have exactly this many elements.
    public init(values: [Float]) { self.values = values }

    public func fillWeight(_ array: inout NDArray, name: String, generator: inout SplitMix64) throws {
        if values.count == 1 { array.fill(values[0]); return }
        guard values.count == array.elementCount else {
            throw KilnTrainError.cannotInitialize(variable: name, initializer: description,
                                                  reason: "it holds \(values.count) values for \(array.elementCount) elements of shape \(array.shape)")
        }
        array.withUnsafeMutableBufferPointer(as: Float.self) { p in
            for i in p.indices { p[i] = values[i] }
        }
    }

    public var description: String { values.count == 1 ? "Constant(\(values[0]))" : "Constant(\(values.count) values)" }
}

/// Uniform values in `[-scale, scale)` (MXNet's `Uniform`, default scale 0.07).
public struct Uniform: Initializer {
    public let scale: Double
    public init(scale: Double = 0.07) { self.scale = scale }
    public func fillWeight(_ array: inout NDArray, name: String, generator: inout SplitMix64) throws {
        array.fillUniform(scale: Float(scale), generator: &generator)
    }
    public var description: String { "Uniform(scale: \(scale))" }
}

/// Normal values of mean 0 and standard deviation `sigma` (MXNet's `Normal`, default 0.01).
public struct Normal: Initializer {
    public let sigma: Double
    public init(sigma: Double = 0.01) { self.sigma = sigma }
    public func fillWeight(_ array: inout NDArray, name: String, generator: inout SplitMix64) throws {
        array.fillNormal(sigma: Float(sigma), generator: &generator)
    }
    public var description: String { "Normal(sigma: \(sigma))" }
}

/// Glorot's initializer as MXNet's `Xavier` defines it.
///
/// For a weight of shape (out, in, k1, k2, ...), with `r = k1 * k2 * ...`:
/// `fanIn = in * r`, `fanOut = out * r`, and `scale = sqrt(magnitude / factor)` where the factor is
/// `(fanIn + fanOut) / 2`, `fanIn` or `fanOut`. Uniform draws from `[-scale, scale)`; gaussian uses
/// `scale` as the standard deviation.
///
/// ```
/// FullyConnected weight (10, 20), defaults (uniform, avg, 3):  scale = sqrt(3 / 15) = 0.447
/// ```
public struct Xavier: Initializer {
    public enum RandomType: String, Sendable { case uniform, gaussian }
    public enum FactorType: String, Sendable {
        case average = "avg"
        case fanIn = "in"
        case fanOut = "out"
    }

    public let randomType: RandomType
    public let factorType: FactorType
    public let magnitude: Double

    public init(randomType: RandomType = .uniform, factorType: FactorType = .average, magnitude: Double = 3) {
        self.randomType = randomType
        self.factorType = factorType
        self.magnitude = magnitude
    }

    /// The bound (uniform) or standard deviation (gaussian) for a weight of this shape; nil below rank 2.
    public func scale(for shape: Shape) -> Double? {
        guard shape.rank >= 2 else { return nil }
        let receptive = Double(shape.dims.dropFirst(2).reduce(1, *))
        let fanIn = Double(shape[1]) * receptive, fanOut = Double(shape[0]) * receptive
        let factor: Double
        switch factorType {
        case .average: factor = (fanIn + fanOut) / 2
        case .fanIn: factor = fanIn
        case .fanOut: factor = fanOut
        }
        return (magnitude / factor).squareRoot()
    }

    public func fillWeight(_ array: inout NDArray, name: String, generator: inout SplitMix64) throws {
        guard let scale = scale(for: array.shape) else {
            throw KilnTrainError.cannotInitialize(variable: name, initializer: "Xavier",
                                                  reason: "it needs a weight of at least 2 dimensions, got shape \(array.shape)")
        }
        switch randomType {
        case .uniform: array.fillUniform(scale: Float(scale), generator: &generator)
        case .gaussian: array.fillNormal(sigma: Float(scale), generator: &generator)
        }
    }

    public var description: String {
        "Xavier(randomType: \(randomType.rawValue), factorType: \(factorType.rawValue), magnitude: \(magnitude))"
    }
}

/// He et al.'s initializer for rectifiers, as MXNet's `MSRAPrelu`: a gaussian ``Xavier`` with
/// magnitude `2 / (1 + slope²)`.
public struct MSRAPrelu: Initializer {
    public let factorType: Xavier.FactorType
    public let slope: Double

    public init(factorType: Xavier.FactorType = .average, slope: Double = 0.25) {
        self.factorType = factorType
        self.slope = slope
    }

    /// The gaussian Xavier this initializer is.
    public var xavier: Xavier { Xavier(randomType: .gaussian, factorType: factorType, magnitude: 2 / (1 + slope * slope)) }

    public func fillWeight(_ array: inout NDArray, name: String, generator: inout SplitMix64) throws {
        do {
            try xavier.fillWeight(&array, name: name, generator: &generator)
        } catch KilnTrainError.cannotInitialize(let variable, _, let reason) {
            throw KilnTrainError.cannotInitialize(variable: variable, initializer: "MSRAPrelu", reason: reason)
        }
    }

    public var description: String { "MSRAPrelu(factorType: \(factorType.rawValue), slope: \(slope))" }
}
