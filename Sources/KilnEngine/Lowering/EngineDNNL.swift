import CDNNL
import KilnCore
import KilnEngineCore
import KilnRuntime

// Small oneDNN helpers the lowering shares: status checks that throw EngineError, memory
// descriptors, primitive attributes (post-ops, user scratchpad), primitive creation and reorders.

enum EngineDNNL {
    static func check(_ status: dnnl_status_t, _ call: @autoclosure () -> String, node: @autoclosure () -> String) throws {
        if status != dnnl_success { throw EngineError.dnnl(call: call(), status: Int(status.rawValue), node: node()) }
    }

    static func engine(node: String) throws -> dnnl_engine_t {
        guard let e = DNNL.engine else { throw EngineError.dnnl(call: "dnnl_engine_create", status: 5, node: node) }
        return e
    }

    /// Runs a KilnRuntime oneDNN wrapper, turning its error into this module's.
    static func wrap<T>(_ node: String, _ body: () throws -> T) throws -> T {
        do { return try body() } catch let RuntimeError.dnnl(call, status, n) {
            throw EngineError.dnnl(call: call, status: status, node: n)
        }
    }

    /// A plain C-order descriptor of `dims` (a scalar as one element).
    static func plain(_ dims: [Int], node: String) throws -> dnnl_memory_desc_t {
        try tagged(dims, tag: DNNL.plainTag(rank: max(1, dims.count)), node: node)
    }

    /// A descriptor letting the primitive choose the layout.
    static func any(_ dims: [Int], type: dnnl_data_type_t = dnnl_f32, node: String) throws -> dnnl_memory_desc_t {
        try tagged(dims, tag: dnnl_format_tag_any, type: type, node: node)
    }

    static func tagged(_ dims: [Int], tag: dnnl_format_tag_t, type: dnnl_data_type_t = dnnl_f32, node: String) throws -> dnnl_memory_desc_t {
        var md = dnnl_memory_desc_t()
        var d = dims.map { Int64($0) }
        if d.isEmpty { d = [1] }
        let status = d.withUnsafeBufferPointer { dnnl_memory_desc_init_by_tag(&md, Int32(d.count), $0.baseAddress, type, tag) }
        try check(status, "dnnl_memory_desc_init_by_tag(\(dims))", node: node)
        return md
    }

    /// Quantization attributes of one primitive (int8 lowering): output scales (one for all, or one per
    /// channel along `mask`'s axes) and the scale and type of a `sum` post-op's operand.
    struct Scaling {
        var output: [Float] = []
        var outputMask: Int32 = 0
        var sum: Float = 1
        var sumType: dnnl_data_type_t = dnnl_data_type_undef
        /// Multiplies the result of the last eltwise post-op (quantizes it when the others ran on real values).
        var lastEltwise: Float = 1
    }

    /// Primitive attributes with the user-managed scratchpad, the given post-ops and scaling.
    static func attributes(postOps: [EngineIR.PostOp] = [], scaling: Scaling = Scaling(), node: String) throws -> dnnl_primitive_attr_t {
        var attr: dnnl_primitive_attr_t?
        try check(dnnl_primitive_attr_create(&attr), "dnnl_primitive_attr_create", node: node)
        guard let attr else { throw EngineError.dnnl(call: "dnnl_primitive_attr_create", status: 5, node: node) }
        do {
            try check(dnnl_primitive_attr_set_scratchpad_mode(attr, dnnl_scratchpad_mode_user), "dnnl_primitive_attr_set_scratchpad_mode", node: node)
            if !scaling.output.isEmpty {
                try check(scaling.output.withUnsafeBufferPointer {
                    dnnl_primitive_attr_set_output_scales(attr, Int64($0.count), scaling.outputMask, $0.baseAddress)
                }, "dnnl_primitive_attr_set_output_scales", node: node)
            }
            if !postOps.isEmpty {
                var ops: dnnl_post_ops_t?
                try check(dnnl_post_ops_create(&ops), "dnnl_post_ops_create", node: node)
                guard let ops else { throw EngineError.dnnl(call: "dnnl_post_ops_create", status: 5, node: node) }
                defer { dnnl_post_ops_destroy(ops) }
                let lastEltwise = postOps.lastIndex { if case .eltwise = $0 { return true } else { return false } }
                for (i, p) in postOps.enumerated() {
                    switch p {
                    case .sum: try check(dnnl_post_ops_append_sum_v2(ops, scaling.sum, scaling.sumType), "dnnl_post_ops_append_sum", node: node)
                    case let .eltwise(e):
                        try check(dnnl_post_ops_append_eltwise(ops, i == lastEltwise ? scaling.lastEltwise : 1, try e.algorithm.dnnl(node: node), e.alpha, e.beta),
                                  "dnnl_post_ops_append_eltwise(\(e.algorithm.rawValue))", node: node)
                    }
                }
                try check(dnnl_primitive_attr_set_post_ops(attr, ops), "dnnl_primitive_attr_set_post_ops", node: node)
            }
        } catch {
            dnnl_primitive_attr_destroy(attr)
            throw error
        }
        return attr
    }

    /// A primitive from an op descriptor built by `initialize` (a `dnnl_*_desc_init` call).
    static func primitive<Desc>(_ empty: Desc, postOps: [EngineIR.PostOp] = [], scaling: Scaling = Scaling(), node: String, what: String,
                                _ initialize: (UnsafeMutablePointer<Desc>) -> dnnl_status_t) throws -> DNNLPrimitive {
        var desc = empty
        try check(initialize(&desc), "\(what) descriptor init", node: node)
        let attr = try attributes(postOps: postOps, scaling: scaling, node: node)
        defer { dnnl_primitive_attr_destroy(attr) }
        var pd: dnnl_primitive_desc_t?
        let engine = try engine(node: node)
        try withUnsafePointer(to: &desc) { p in
            try check(dnnl_primitive_desc_create(&pd, UnsafeRawPointer(p), attr, engine, nil), "dnnl_primitive_desc_create(\(what))", node: node)
        }
        guard let pd else { throw EngineError.dnnl(call: "dnnl_primitive_desc_create(\(what))", status: 5, node: node) }
        return try wrap(node) { try DNNLPrimitive(primitiveDesc: pd, node: node, what: what) }
    }

    /// A reorder from one layout to another (with the user scratchpad).
    static func reorder(from source: dnnl_memory_desc_t, to target: dnnl_memory_desc_t, scaling: Scaling = Scaling(), node: String) throws -> DNNLPrimitive {
        var from = source, to = target
        let attr = try attributes(scaling: scaling, node: node)
        defer { dnnl_primitive_attr_destroy(attr) }
        let engine = try engine(node: node)
        var pd: dnnl_primitive_desc_t?
        try check(dnnl_reorder_primitive_desc_create(&pd, &from, engine, &to, engine, attr), "dnnl_reorder_primitive_desc_create", node: node)
        guard let pd else { throw EngineError.dnnl(call: "dnnl_reorder_primitive_desc_create", status: 5, node: node) }
        return try wrap(node) { try DNNLPrimitive(primitiveDesc: pd, node: node, what: "reorder") }
    }

    /// The layout a primitive chose for an argument.
    static func chosen(_ p: DNNLPrimitive, _ what: dnnl_query_t, index: Int32 = 0, node: String) throws -> dnnl_memory_desc_t {
        guard let md = p.queryMemoryDesc(what, index: index) else {
            throw EngineError.dnnl(call: "dnnl_primitive_desc_query_md", status: 2, node: node)
        }
        return md
    }

    /// The implementation oneDNN picked (`"brg:avx512_core"`, `"jit:uni"`, `"ref:any"`).
    static func implementation(_ p: DNNLPrimitive) -> String {
        var name: UnsafePointer<CChar>?
        guard dnnl_primitive_desc_query(p.desc, dnnl_query_impl_info_str, 0, &name) == dnnl_success, let name else { return "?" }
        return String(cString: name)
    }

    /// The layout of a descriptor in words, for reports: `plain`, the axes from outermost to innermost
    /// when permuted (`acdb`, channels last), plus oneDNN's inner blocks (`aBcd16b`-style `+16b`).
    static func layoutName(_ md: dnnl_memory_desc_t) -> String {
        var m = md
        let rank = Int(m.ndims)
        guard md.format_kind == dnnl_blocked, rank > 0 else { return "other" }
        let letters = Array("abcdefghijkl")
        var blocking = md.format_desc.blocking
        let strides = withUnsafeBytes(of: &blocking.strides) { raw in (0..<rank).map { raw.load(fromByteOffset: $0 * 8, as: Int64.self) } }
        let dims = withUnsafeBytes(of: &m.dims) { raw in (0..<rank).map { raw.load(fromByteOffset: $0 * 8, as: Int64.self) } }
        // Axes of size 1 do not change the layout: only the others' order counts.
        let order = (0..<rank).filter { dims[$0] != 1 }.sorted { a, b in strides[a] != strides[b] ? strides[a] > strides[b] : a < b }
        var name = order == order.sorted() ? "plain" : String(order.map { letters[min($0, letters.count - 1)] })
        var inner: [String] = []
        withUnsafeBytes(of: &blocking.inner_blks) { blks in
            withUnsafeBytes(of: &blocking.inner_idxs) { idxs in
                for i in 0..<Int(blocking.inner_nblks) {
                    let size = blks.load(fromByteOffset: i * 8, as: Int64.self), axis = idxs.load(fromByteOffset: i * 8, as: Int64.self)
                    inner.append("\(size)\(letters[min(Int(axis), letters.count - 1)])")
                }
            }
        }
        if !inner.isEmpty { name += "+" + inner.joined() }
        return name
    }

    /// The same layout holding another data type (activations only: no extra flags).
    static func retyped(_ md: dnnl_memory_desc_t, _ type: dnnl_data_type_t) -> dnnl_memory_desc_t {
        var m = md
        m.data_type = type
        return m
    }

    /// `dims` as the int64 array oneDNN's descriptor initializers read.
    static func int64s(_ v: [Int]) -> [Int64] { v.map { Int64($0) } }
}

extension EltwiseSpec.Algorithm {
    /// oneDNN's eltwise algorithm; nil for a function oneDNN 2.6 lacks (the capability table refuses it).
    var dnnl: dnnl_alg_kind_t? {
        switch self {
        case .relu: return dnnl_eltwise_relu
        case .tanh: return dnnl_eltwise_tanh
        case .logistic: return dnnl_eltwise_logistic
        case .softRelu: return dnnl_eltwise_soft_relu
        case .elu: return dnnl_eltwise_elu
        case .geluErf: return dnnl_eltwise_gelu_erf
        case .softSign: return nil
        case .linear: return dnnl_eltwise_linear
        case .clip: return dnnl_eltwise_clip
        case .exp: return dnnl_eltwise_exp
        case .hardSwish: return dnnl_eltwise_hardswish
        }
    }

    /// oneDNN's eltwise algorithm, or an error naming the node for a function it lacks.
    func dnnl(node: String) throws -> dnnl_alg_kind_t {
        guard let a = dnnl else { throw EngineError.unsupportedNode(node: node, op: rawValue, reason: "oneDNN has no eltwise \(rawValue)") }
        return a
    }
}
