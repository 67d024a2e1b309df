import CDNNL
import KilnCore

/// Thin Swift ownership over oneDNN 2.6's C API: engine, stream, memory and primitive handles that
/// free themselves, and a status check that throws ``RuntimeError/dnnl(call:status:node:)``.
///
/// Kernels build their primitives once at bind (`DNNLPrimitive`), wrap the arrays' buffers as
/// `DNNLMemory` at run time by pointer (no copy), and execute on their own stream.
public enum DNNL {
    /// The process's CPU engine, created on first use. Nil only if oneDNN cannot create one.
    nonisolated(unsafe) public static let engine: dnnl_engine_t? = {
        var e: dnnl_engine_t?
        guard dnnl_engine_create(&e, dnnl_cpu, 0) == dnnl_success else { return nil }
        return e
    }()

    /// Throws unless `status` is success.
    @inline(__always)
    public static func check(_ status: dnnl_status_t, _ call: @autoclosure () -> String, node: @autoclosure () -> String) throws {
        if status != dnnl_success {
            throw RuntimeError.dnnl(call: call(), status: Int(status.rawValue), node: node())
        }
    }

    /// The engine, or an error naming the node that needed it.
    public static func requireEngine(node: String) throws -> dnnl_engine_t {
        guard let e = engine else { throw RuntimeError.dnnl(call: "dnnl_engine_create", status: 5, node: node) }
        return e
    }

    /// oneDNN's data type for a dtype.
    public static func dataType(_ t: DType) -> dnnl_data_type_t {
        switch t {
        case .float32: return dnnl_f32
        case .float16: return dnnl_f16
        case .bfloat16: return dnnl_bf16
        case .int32: return dnnl_s32
        case .int8: return dnnl_s8
        case .uint8: return dnnl_u8
        case .float64, .int64: return dnnl_data_type_undef
        }
    }

    /// The plain C-order format tag for a rank (`a`, `ab`, `abc`, ...).
    public static func plainTag(rank: Int) -> dnnl_format_tag_t {
        switch rank {
        case 1: return dnnl_a
        case 2: return dnnl_ab
        case 3: return dnnl_abc
        case 4: return dnnl_abcd
        case 5: return dnnl_abcde
        case 6: return dnnl_abcdef
        default: return dnnl_format_tag_undef
        }
    }

    /// A memory descriptor for dims in a given format (plain C order by default; `dnnl_format_tag_any`
    /// lets a primitive choose).
    public static func memoryDesc(_ dims: [Int], _ type: DType = .float32, tag: dnnl_format_tag_t? = nil, node: String) throws -> dnnl_memory_desc_t {
        var md = dnnl_memory_desc_t()
        var d = dims.map { Int64($0) }
        if d.isEmpty { d = [1] }
        let t = tag ?? plainTag(rank: d.count)
        let status = d.withUnsafeBufferPointer { dnnl_memory_desc_init_by_tag(&md, Int32(d.count), $0.baseAddress, dataType(type), t) }
        try check(status, "dnnl_memory_desc_init_by_tag(\(dims))", node: node)
        return md
    }

    /// A memory descriptor with explicit strides (for views such as a channel slice).
    public static func memoryDesc(_ dims: [Int], strides: [Int], _ type: DType = .float32, node: String) throws -> dnnl_memory_desc_t {
        var md = dnnl_memory_desc_t()
        let d = dims.map { Int64($0) }, s = strides.map { Int64($0) }
        let status = d.withUnsafeBufferPointer { dp in
            s.withUnsafeBufferPointer { sp in dnnl_memory_desc_init_by_strides(&md, Int32(d.count), dp.baseAddress, dataType(type), sp.baseAddress) }
        }
        try check(status, "dnnl_memory_desc_init_by_strides(\(dims))", node: node)
        return md
    }

    /// Bytes a memory descriptor needs.
    public static func size(_ md: dnnl_memory_desc_t) -> Int {
        var m = md
        return dnnl_memory_desc_get_size(&m)
    }

    /// Whether two memory descriptors describe the same layout.
    public static func equal(_ a: dnnl_memory_desc_t, _ b: dnnl_memory_desc_t) -> Bool {
        var x = a, y = b
        return dnnl_memory_desc_equal(&x, &y) != 0
    }
}

/// A oneDNN stream, destroyed with its owner.
public final class DNNLStream {
    public let handle: dnnl_stream_t

    public init(node: String) throws {
        var s: dnnl_stream_t?
        try DNNL.check(dnnl_stream_create(&s, try DNNL.requireEngine(node: node), dnnl_stream_default_flags.rawValue), "dnnl_stream_create", node: node)
        guard let s else { throw RuntimeError.dnnl(call: "dnnl_stream_create", status: 5, node: node) }
        handle = s
    }

    deinit { dnnl_stream_destroy(handle) }
}

/// A oneDNN memory object over a buffer Kiln owns (or one oneDNN allocates, for scratch).
public final class DNNLMemory {
    public let handle: dnnl_memory_t
    public let desc: dnnl_memory_desc_t
    private var owned: UnsafeMutableRawPointer?

    /// Memory over `pointer` (not owned), or over a new zeroed buffer when `pointer` is nil.
    public init(_ desc: dnnl_memory_desc_t, pointer: UnsafeMutableRawPointer?, node: String) throws {
        var md = desc
        var m: dnnl_memory_t?
        var p = pointer
        if p == nil {
            let size = max(DNNL.size(desc), 1)
            let buffer = UnsafeMutableRawPointer.allocate(byteCount: size, alignment: 64)
            buffer.initializeMemory(as: UInt8.self, repeating: 0, count: size)
            owned = buffer
            p = buffer
        }
        try DNNL.check(dnnl_memory_create(&m, &md, try DNNL.requireEngine(node: node), p), "dnnl_memory_create", node: node)
        guard let m else { throw RuntimeError.dnnl(call: "dnnl_memory_create", status: 5, node: node) }
        handle = m
        self.desc = desc
    }

    /// The buffer this memory reads and writes.
    public var pointer: UnsafeMutableRawPointer? {
        var p: UnsafeMutableRawPointer?
        dnnl_memory_get_data_handle(handle, &p)
        return p
    }

    /// Points the memory at another buffer of the same layout (no copy).
    public func setPointer(_ p: UnsafeMutableRawPointer, node: String) throws {
        try DNNL.check(dnnl_memory_set_data_handle(handle, p), "dnnl_memory_set_data_handle", node: node)
    }

    deinit {
        dnnl_memory_destroy(handle)
        owned?.deallocate()
    }
}

/// A primitive and its descriptor, created once at bind.
public final class DNNLPrimitive {
    public let handle: dnnl_primitive_t
    public let desc: dnnl_primitive_desc_t
    public let node: String

    /// Creates the primitive for an op descriptor (a `dnnl_*_desc_t` passed as raw pointer).
    public convenience init(opDesc: UnsafeRawPointer, attr: dnnl_primitive_attr_t? = nil, node: String, what: String) throws {
        var pd: dnnl_primitive_desc_t?
        try DNNL.check(dnnl_primitive_desc_create(&pd, opDesc, attr, try DNNL.requireEngine(node: node), nil),
                       "dnnl_primitive_desc_create(\(what))", node: node)
        guard let pd else { throw RuntimeError.dnnl(call: "dnnl_primitive_desc_create(\(what))", status: 5, node: node) }
        try self.init(primitiveDesc: pd, node: node, what: what)
    }

    /// Creates the primitive from a primitive descriptor this object then owns.
    public init(primitiveDesc pd: dnnl_primitive_desc_t, node: String, what: String) throws {
        var p: dnnl_primitive_t?
        let status = dnnl_primitive_create(&p, pd)
        guard status == dnnl_success, let p else {
            dnnl_primitive_desc_destroy(pd)
            throw RuntimeError.dnnl(call: "dnnl_primitive_create(\(what))", status: Int(status.rawValue), node: node)
        }
        handle = p
        desc = pd
        self.node = node
    }

    /// The memory descriptor the primitive chose for an argument kind (`dnnl_query_src_md`, index 0 ...).
    public func queryMemoryDesc(_ what: dnnl_query_t, index: Int32 = 0) -> dnnl_memory_desc_t? {
        guard let p = dnnl_primitive_desc_query_md(desc, what, index) else { return nil }
        return p.pointee
    }

    /// Runs the primitive on a stream and waits for it.
    public func execute(_ args: [(Int32, DNNLMemory)], stream: DNNLStream) throws {
        var a = args.map { dnnl_exec_arg_t(arg: $0.0, memory: $0.1.handle) }
        try DNNL.check(a.withUnsafeMutableBufferPointer { dnnl_primitive_execute(handle, stream.handle, Int32($0.count), $0.baseAddress) },
                       "dnnl_primitive_execute", node: node)
        try DNNL.check(dnnl_stream_wait(stream.handle), "dnnl_stream_wait", node: node)
    }

    deinit {
        dnnl_primitive_destroy(handle)
        dnnl_primitive_desc_destroy(desc)
    }
}

/// Named argument slots of `dnnl_primitive_execute` (the C macros do not import into Swift).
public enum DNNLArg {
    public static let src = kiln_dnnl_arg_src()
    public static let src1 = kiln_dnnl_arg_src_1()
    public static let dst = kiln_dnnl_arg_dst()
    public static let weights = kiln_dnnl_arg_weights()
    public static let bias = kiln_dnnl_arg_bias()
    public static let mean = kiln_dnnl_arg_mean()
    public static let variance = kiln_dnnl_arg_variance()
    public static let scaleShift = kiln_dnnl_arg_scale_shift()
    public static let scale = kiln_dnnl_arg_scale()
    public static let shift = kiln_dnnl_arg_shift()
    public static let workspace = kiln_dnnl_arg_workspace()
    public static let scratchpad = kiln_dnnl_arg_scratchpad()
    public static let from = kiln_dnnl_arg_from()
    public static let to = kiln_dnnl_arg_to()
    /// The slot of the i-th source of a multi-source primitive (concat, sum).
    public static func multipleSource(_ i: Int) -> Int32 { kiln_dnnl_arg_multiple_src() + Int32(i) }
}
