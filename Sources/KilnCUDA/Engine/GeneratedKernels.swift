// CUDA C++ the engine generates and NVRTC compiles: conversions between the host's float NCHW and
// the group's layout and type, and fused pointwise epilogues. No header is included: half and
// bfloat16 travel as 16-bit integers and convert with PTX's cvt.
//
//   epilogue(conv out y, bias, residual r):  y[i] = relu(y[i] + bias[c(i)] + r[i])
//   c(i) = i % C (NHWC, and rows of a matrix)   or   (i / HW) % C (NCHW)
import Foundation
import KilnEngineCore

/// The element type inside a group.
enum StorageType: String, Sendable {
    case f32, f16, bf16

    var byteSize: Int { self == .f32 ? 4 : 2 }
    var cType: String { self == .f32 ? "float" : "unsigned short" }
    var cudnn: Int32 {
        switch self {
        case .f32: return CUDNNAPI.dataFloat
        case .f16: return CUDNNAPI.dataHalf
        case .bf16: return CUDNNAPI.dataBFloat16
        }
    }
    var cudaDataType: Int32 {
        switch self {
        case .f32: return CUDADataType.f32.rawValue
        case .f16: return CUDADataType.f16.rawValue
        case .bf16: return CUDADataType.bf16.rawValue
        }
    }
}

enum GeneratedKernels {
    /// Load/store helpers for every storage type.
    static let prelude = """
        __device__ __forceinline__ float ld(const float* p, long long i) { return p[i]; }
        __device__ __forceinline__ void st(float* p, long long i, float v) { p[i] = v; }
        __device__ __forceinline__ float h2f(unsigned short h) { float f; asm("cvt.f32.f16 %0, %1;" : "=f"(f) : "h"(h)); return f; }
        __device__ __forceinline__ unsigned short f2h(float f) { unsigned short h; asm("cvt.rn.f16.f32 %0, %1;" : "=h"(h) : "f"(f)); return h; }
        __device__ __forceinline__ float b2f(unsigned short b) { return __int_as_float(((unsigned int)b) << 16); }
        __device__ __forceinline__ unsigned short f2b(float f) {
            unsigned int u = __float_as_uint(f);
            if ((u & 0x7fffffffu) > 0x7f800000u) return 0x7fc0;
            return (unsigned short)((u + 0x7fffu + ((u >> 16) & 1u)) >> 16);
        }

        """

    static func load(_ t: StorageType, _ p: String, _ i: String) -> String {
        switch t {
        case .f32: return "\(p)[\(i)]"
        case .f16: return "h2f(\(p)[\(i)])"
        case .bf16: return "b2f(\(p)[\(i)])"
        }
    }

    static func store(_ t: StorageType, _ p: String, _ i: String, _ v: String) -> String {
        switch t {
        case .f32: return "\(p)[\(i)] = \(v);"
        case .f16: return "\(p)[\(i)] = f2h(\(v));"
        case .bf16: return "\(p)[\(i)] = f2b(\(v));"
        }
    }

    /// y[i] = act(x[i] * scale[c] + shift[c] + r[i]): every part optional. Parameters:
    /// (const T* x, T* y, const float* scale, const float* shift, const T* r, long long n, int C, int HW).
    static func epilogue(_ t: StorageType, channelsLast: Bool, scale: Bool, shift: Bool, residual: Bool,
                         activation: EltwiseSpec?) -> (name: String, source: String) {
        let name = "kiln_epilogue_\(t.rawValue)_\(channelsLast ? "nhwc" : "nchw")_\(scale ? "s" : "")\(shift ? "b" : "")\(residual ? "r" : "")_\(activation?.kernelName ?? "none")"
        var body = "float v = \(load(t, "x", "i"));\n"
        let channel = channelsLast ? "(int)(i % C)" : "(int)((i / HW) % C)"
        if scale || shift { body += "    int c = \(channel);\n" }
        if scale { body += "    v *= scale[c];\n" }
        if shift { body += "    v += shift[c];\n" }
        if residual { body += "    v += \(load(t, "r", "i"));\n" }
        if let activation { body += "    v = \(activation.cudaExpression);\n" }
        body += "    " + store(t, "y", "i", "v")
        let source = prelude + """
            extern "C" __global__ void \(name)(const \(t.cType)* __restrict__ x, \(t.cType)* __restrict__ y, const float* __restrict__ scale,
                                               const float* __restrict__ shift, const \(t.cType)* __restrict__ r, long long n, int C, int HW) {
                long long i = (long long)blockIdx.x * blockDim.x + threadIdx.x;
                if (i >= n) return;
                \(body)
            }
            """
        return (name, source)
    }

    /// y = act(a + b) (or act(a)) elementwise. Parameters: (const T* a, const T* b, T* y, long long n).
    /// Global average pooling, then a dense layer and an optional ReLU, one block per sample:
    /// mean[c] = sum over HW of x[n, c, hw] / HW in shared memory, then y[n, k] = act(b[k] + w[k, :] . mean).
    /// A network's head (pool, flatten, FC, output conversion) in one launch instead of four.
    static func head(_ t: StorageType, channelsLast: Bool, relu: Bool, output: StorageType) -> (name: String, source: String) {
        let name = "kiln_head_\(t.rawValue)_\(channelsLast ? "nhwc" : "nchw")_\(relu ? "relu" : "id")_\(output.rawValue)"
        let index = channelsLast ? "(long long)i * C + c" : "(long long)c * HW + i"
        let source = prelude + """
        extern "C" __global__ void \(name)(const \(t.cType)* __restrict__ x, const \(t.cType)* __restrict__ w, const float* __restrict__ bias,
                                          \(output.cType)* __restrict__ y, int C, int HW, int K) {
            extern __shared__ float mean[];
            const long long n = blockIdx.x;
            const \(t.cType)* xn = x + n * (long long)C * HW;
            for (int c = threadIdx.x; c < C; c += blockDim.x) {
                float s = 0.f;
                for (int i = 0; i < HW; ++i) s += \(load(t, "xn", index));
                mean[c] = s / (float)HW;
            }
            __syncthreads();
            for (int k = threadIdx.x; k < K; k += blockDim.x) {
                float s = bias ? bias[k] : 0.f;
                for (int c = 0; c < C; ++c) s += \(load(t, "w", "(long long)k * C + c")) * mean[c];
                \(relu ? "s = fmaxf(s, 0.f);" : "")
                \(store(output, "y", "n * K + k", "s"))
            }
        }
        """
        return (name, source)
    }

    /// One thread that spins for `cycles` clock cycles: it holds the stream while the host queues the
    /// work to time, so that the events between launches measure the device, not the host's launches.
    static func spin() -> (name: String, source: String) {
        ("kiln_spin", """
        extern "C" __global__ void kiln_spin(long long cycles) {
            long long start = clock64();
            while (clock64() - start < cycles) { }
        }
        """)
    }

    static func pointwise(_ t: StorageType, binary: Bool, activation: EltwiseSpec?) -> (name: String, source: String) {
        let name = "kiln_pointwise_\(t.rawValue)_\(binary ? "add" : "id")_\(activation?.kernelName ?? "none")"
        var body = "float v = \(load(t, "a", "i"))\(binary ? " + " + load(t, "b", "i") : "");\n"
        if let activation { body += "    v = \(activation.cudaExpression);\n" }
        body += "    " + store(t, "y", "i", "v")
        let source = prelude + """
            extern "C" __global__ void \(name)(const \(t.cType)* __restrict__ a, const \(t.cType)* __restrict__ b, \(t.cType)* __restrict__ y, long long n) {
                long long i = (long long)blockIdx.x * blockDim.x + threadIdx.x;
                if (i >= n) return;
                \(body)
            }
            """
        return (name, source)
    }

    /// A 4-d reorder and type conversion between NCHW and NHWC, indexed by the output element.
    /// Parameters: (const S* x, D* y, long long n, int C, int H, int W).
    static func reorder(from s: StorageType, to d: StorageType, toChannelsLast: Bool) -> (name: String, source: String) {
        let name = "kiln_reorder_\(s.rawValue)_\(d.rawValue)_\(toChannelsLast ? "nchw_nhwc" : "nhwc_nchw")"
        let index: String
        if toChannelsLast {
            // y is NHWC: i = ((n*H + h)*W + w)*C + c; x is NCHW.
            index = """
                long long c = i % C; long long w = (i / C) % W; long long h = (i / ((long long)C * W)) % H; long long b = i / ((long long)C * W * H);
                    long long j = ((b * C + c) * H + h) * W + w;
                """
        } else {
            // y is NCHW: i = ((n*C + c)*H + h)*W + w; x is NHWC.
            index = """
                long long w = i % W; long long h = (i / W) % H; long long c = (i / ((long long)W * H)) % C; long long b = i / ((long long)W * H * C);
                    long long j = ((b * H + h) * W + w) * C + c;
                """
        }
        let source = prelude + """
            extern "C" __global__ void \(name)(const \(s.cType)* __restrict__ x, \(d.cType)* __restrict__ y, long long n, int C, int H, int W) {
                long long i = (long long)blockIdx.x * blockDim.x + threadIdx.x;
                if (i >= n) return;
                \(index)
                float v = \(load(s, "x", "j"));
                \(store(d, "y", "i", "v"))
            }
            """
        return (name, source)
    }
}

extension EltwiseSpec {
    /// The expression in `v` (float) that generated kernels apply, its parameter as an exact literal.
    var cudaExpression: String {
        let a = ScalarKernel.literal(Double(alpha))
        switch algorithm {
        case .relu: return alpha == 0 ? "fmaxf(v, 0.f)" : "(v > 0.f ? v : \(a) * v)"
        case .logistic: return "1.f / (1.f + expf(-v))"
        case .tanh: return "tanhf(v)"
        case .softRelu: return "(v > 20.f ? v : log1pf(expf(v)))"
        case .softSign: return "v / (1.f + fabsf(v))"
        case .elu: return "(v > 0.f ? v : \(a) * (expf(v) - 1.f))"
        case .geluErf: return "(0.5f * v * (1.f + erff(v * 0.70710678118654752f)))"
        case .linear: return "(\(a) * v + \(ScalarKernel.literal(Double(beta))))"
        case .clip: return "fminf(fmaxf(v, \(a)), \(ScalarKernel.literal(Double(beta))))"
        case .exp: return "expf(v)"
        case .hardSwish: return "(v * fminf(fmaxf(v + 3.f, 0.f), 6.f) / 6.f)"
        }
    }

    /// A C identifier naming the function and its parameter, for kernel names.
    var kernelName: String {
        alpha == 0 && beta == 0 ? algorithm.rawValue
            : beta == 0 ? "\(algorithm.rawValue)_\(alpha.bitPattern)" : "\(algorithm.rawValue)_\(alpha.bitPattern)_\(beta.bitPattern)"
    }
}
