import Foundation
import KilnCore
import KilnGraph

/// The one-input pointwise functions of the elementwise family, with their attributes resolved at
/// bind. The formulas are MXNet's (`mshadow_op.h`), written in Double: this is the oracle that the
/// framework's oneDNN mapping is tested against.
enum Pointwise: Sendable, Equatable {
    case identity
    case relu, sigmoid, tanh, exp, log, sqrt, rsqrt, square
    /// log(1 + exp(x)), with MXNet's cut-off: x itself above 20.
    case softReLU
    /// x / (1 + |x|).
    case softSign
    /// x > 0 ? x : slope * x (leaky, and rrelu at inference).
    case leaky(slope: Double)
    /// x > 0 ? x : alpha * (exp(x) - 1).
    case elu(alpha: Double)
    /// λ * elu(x, α) with SELU's fixed constants.
    case selu
    /// x * Φ(x) = 0.5 x (1 + erf(x / √2)).
    case gelu
    /// scale * x + shift: the scalar add, subtract, reverse subtract and multiply.
    case linear(scale: Double, shift: Double)
    /// x / s.
    case divide(by: Double)
    /// s / x.
    case reverseDivide(Double)
    /// x ^ s.
    case power(Double)
    case maximum(Double)
    case minimum(Double)
    /// x > upper ? upper : (x < lower ? lower : x); note the order when lower > upper.
    case clip(lower: Double, upper: Double)

    static let seluLambda = 1.0507009873554804934193349852946
    static let seluAlpha = 1.6732632423543772848170429916717

    func callAsFunction(_ x: Double) -> Double {
        switch self {
        case .identity: return x
        case .relu: return x > 0 ? x : 0
        case .sigmoid: return 1 / (1 + Foundation.exp(-x))
        case .tanh: return Foundation.tanh(x)
        case .exp: return Foundation.exp(x)
        case .log: return Foundation.log(x)
        case .sqrt: return x.squareRoot()
        case .rsqrt: return 1 / x.squareRoot()
        case .square: return x * x
        case .softReLU: return x > 20 ? x : log1p(Foundation.exp(x))
        case .softSign: return x / (1 + abs(x))
        case let .leaky(slope): return x > 0 ? x : slope * x
        case let .elu(alpha): return x > 0 ? x : alpha * expm1(x)
        case .selu: return Pointwise.seluLambda * (x > 0 ? x : Pointwise.seluAlpha * expm1(x))
        case .gelu: return 0.5 * x * (1 + erf(x / 2.0.squareRoot()))
        case let .linear(scale, shift): return scale * x + shift
        case let .divide(s): return x / s
        case let .reverseDivide(s): return s / x
        case let .power(s): return pow(x, s)
        case let .maximum(s): return x > s ? x : s
        case let .minimum(s): return x < s ? x : s
        case let .clip(lower, upper): return x > upper ? upper : (x < lower ? lower : x)
        }
    }

    /// The function a one-input node computes, from its op and resolved attributes. Throws for ops that
    /// are not pointwise functions of one input (`prelu` has two).
    static func of(_ sig: KernelSignature) throws -> Pointwise {
        let a = sig.attributes
        switch sig.node.op {
        case "relu": return .relu
        case "sigmoid": return .sigmoid
        case "tanh": return .tanh
        case "exp": return .exp
        case "log": return .log
        case "sqrt": return .sqrt
        case "rsqrt": return .rsqrt
        case "square": return .square
        case "_copy": return .identity
        case "clip":
            let p = try ClipParameters(a)
            return .clip(lower: p.min, upper: p.max)
        case "Activation":
            switch try ActivationParameters(a).kind {
            case .relu: return .relu
            case .sigmoid: return .sigmoid
            case .tanh: return .tanh
            case .softReLU: return .softReLU
            case .softSign: return .softSign
            }
        case "LeakyReLU":
            let p = try LeakyReLUParameters(a)
            // MXNet keeps these attributes in float32, so their values are rounded as MXNet sees them.
            let slope = Double(Float(p.slope))
            switch p.kind {
            case .leaky: return .leaky(slope: slope)
            case .elu: return .elu(alpha: slope)
            case .selu: return .selu
            case .gelu: return .gelu
            case .rrelu:
                let lower = Float(p.lowerBound), upper = Float(p.upperBound)
                return .leaky(slope: Double((lower + upper) / 2))
            case .prelu: throw sig.unsupported("act_type prelu is not a one-input function")
            }
        default:
            guard sig.node.op.hasSuffix("_scalar") else { throw sig.unsupported("the op is not a pointwise function") }
            var s = try a.float("scalar")
            // With an integer input and is_int, MXNet first casts the scalar to the input's type.
            if let t = sig.inputTypes.first, !t.isFloatingPoint, try a.bool("is_int") { s = s.rounded(.towardZero) }
            switch sig.node.op {
            case "_plus_scalar": return .linear(scale: 1, shift: s)
            case "_minus_scalar": return .linear(scale: 1, shift: -s)
            case "_rminus_scalar": return .linear(scale: -1, shift: s)
            case "_mul_scalar": return .linear(scale: s, shift: 0)
            case "_div_scalar": return .divide(by: s)
            case "_rdiv_scalar": return .reverseDivide(s)
            case "_power_scalar": return .power(s)
            case "_maximum_scalar": return .maximum(s)
            case "_minimum_scalar": return .minimum(s)
            default: throw sig.unsupported("the op is not a pointwise function")
            }
        }
    }
}

extension Pointwise {
    /// The derivative at input `x` with output `y = f(x)`, as MXNet 1.9.1's backward computes it (some
    /// of its formulas read the output: tanh' = 1 - y²). At kinks MXNet's choice is kept: relu' (0) = 0,
    /// leaky' (0) = slope, clip and `_maximum_scalar` pass the gradient at their bounds:
    /// ```
    /// clip(-1, 1):  x = -2 -1 0 1 2  ->  f' = 0 1 1 1 0
    /// ```
    func derivative(_ x: Double, _ y: Double) -> Double {
        switch self {
        case .identity: return 1
        case .relu: return x > 0 ? 1 : 0
        case .sigmoid: return y * (1 - y)
        case .tanh: return 1 - y * y
        case .exp: return y
        case .log: return 1 / x
        case .sqrt: return 0.5 / y
        case .rsqrt: return -0.5 / (x.squareRoot() * x)
        case .square: return 2 * x
        case .softReLU: return -expm1(-y)
        case .softSign: return 1 / ((1 + abs(x)) * (1 + abs(x)))
        case let .leaky(slope): return x > 0 ? 1 : slope
        case let .elu(alpha): return x > 0 ? 1 : alpha * Foundation.exp(x)
        case .selu: return Pointwise.seluLambda * (x > 0 ? 1 : Pointwise.seluAlpha * Foundation.exp(x))
        case .gelu:
            // Φ(x) + x φ(x)
            return 0.5 * (1 + erf(x / 2.0.squareRoot())) + x * Foundation.exp(-0.5 * x * x) / (2 * Double.pi).squareRoot()
        case let .linear(scale, _): return scale
        case let .divide(s): return 1 / s
        case let .reverseDivide(s): return -s / (x * x)
        case let .power(s): return s * pow(x, s - 1)
        case let .maximum(s): return x >= s ? 1 : 0
        case let .minimum(s): return x <= s ? 1 : 0
        case let .clip(lower, upper): return x > upper || x < lower ? 0 : 1
        }
    }
}
