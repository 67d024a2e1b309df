#!/usr/bin/env python3
"""Golden GRADIENT fixtures for Kiln, from real MXNet 1.9.1.

For each case, one op is applied to variables and run as MXNet trains: simple_bind with
grad_req 'write' for every argument except labels ('null'), forward(is_train=True), then
backward with a random normal head gradient per output. Written to
Tests/Fixtures/golden/grads/:

    <case>.json    sym.tojson()
    <case>.params  mx.nd.save dict:
                     arg:<name>       every argument value (as set before the forward)
                     aux:<name>       auxiliary states before the forward
                     ograd:<i>        head gradient given for output i
                     out:<i>          forward output i (training mode)
                     grad:<name>      gradient of every argument bound with 'write'
                     auxafter:<name>  auxiliary states after forward and backward (MXNet 1.9
                                      updates BatchNorm's moving statistics in backward)
    index.json     [{case, op, attrs, arguments, grad_arguments, aux, outputs, note}]
    models/        two whole networks (LeNet-5, a conv-BN-relu-pool-fc net) with the same layout;
                   models/index.json lists them. LeNet's weights are those of
                   models/lenet/lenet-0000.params (named by "parameters_from"), not repeated here.

Every gradient is also checked here against central differences of L = sum(ograd * out) taken
in float64 with MXNet itself (SoftmaxOutput against its closed form instead, since its backward is
the cross-entropy gradient and ignores the head gradient). A case whose gradient disagrees is
reported, so a surprising MXNet behaviour cannot slip into the fixtures unnoticed.

Run through tools/golden/make_golden.sh (it sets MXNET_SUBGRAPH_BACKEND=NONE), after
make_golden.py, whose LeNet checkpoint the LeNet gradient case reads. Deterministic: each case
draws from a numpy RandomState seeded by a CRC32 of its name.
"""
import json
import os
import shutil
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import make_golden as mg  # noqa: E402  (checks MXNET_SUBGRAPH_BACKEND, shares fillers)

import numpy as np  # noqa: E402
import mxnet as mx  # noqa: E402

OUT = os.environ.get("KILN_GRADS_OUT") or os.path.join(mg.OUT, "grads")  # another folder: cross-checks
CTX = mx.cpu()
V = mx.sym.var
D = mg.D


# ---------------------------------------------------------------------------
# Input fillers: fn(shape, rng) -> float32 array. They keep inputs away from the points where an
# op is not differentiable, so MXNet, Kiln and finite differences all take the same branch.
# ---------------------------------------------------------------------------

positive = mg.positive
class_ids = mg.class_ids


def away_from_zero(shape, rng):
    """|x| in [0.1, 2]: relu-like kinks at 0 stay out of reach."""
    mag = rng.uniform(0.1, 2.0, size=shape)
    sign = np.where(rng.uniform(size=shape) < 0.5, -1.0, 1.0)
    return (mag * sign).astype(np.float32)


def distinct(shape, rng):
    """A permutation of evenly spaced values in [-2, 2]: no two elements tie (max pooling)."""
    n = int(np.prod(shape))
    vals = np.linspace(-2.0, 2.0, n) if n > 1 else np.array([0.5])
    return rng.permutation(vals).reshape(shape).astype(np.float32)


def away_from(points, margin=0.1, scale=1.0):
    """Normal values, each moved at least `margin` away from every point in `points`."""
    def f(shape, rng):
        x = scale * rng.standard_normal(shape)
        for p in points:
            near = np.abs(x - p) < margin
            x = np.where(near, np.where(x >= p, p + margin, p - margin) + (x - p), x)
        return x.astype(np.float32)
    return f


def labels_with(num_classes, force):
    """Random class ids with some positions forced (e.g. to the ignore label)."""
    def f(shape, rng):
        y = rng.randint(0, num_classes, size=shape)
        flat = y.reshape(-1)
        for i, v in force.items():
            flat[i] = v
        return y.astype(np.float32)
    return f


def is_label(name):
    return name.endswith("label")


# ---------------------------------------------------------------------------
# Cases
# ---------------------------------------------------------------------------

CASES = []  # (case, symbol, data shapes, fillers, note)


def case(name, sym, shapes, fill=None, note=""):
    CASES.append((name, sym, shapes, fill or {}, note))


def build_cases():
    # ---------------- Convolution ----------------
    C = mx.sym.Convolution
    case("Convolution_2d_k3", C(D(), kernel=(3, 3), num_filter=4, name="op"), {"data": (2, 3, 6, 5)})
    case("Convolution_2d_k3_s2_p1", C(D(), kernel=(3, 3), stride=(2, 2), pad=(1, 1), num_filter=4, name="op"),
         {"data": (2, 3, 7, 6)})
    case("Convolution_2d_group2", C(D(), kernel=(3, 3), pad=(1, 1), num_filter=6, num_group=2, name="op"),
         {"data": (2, 4, 5, 5)})
    case("Convolution_2d_depthwise_s2_nobias", C(D(), kernel=(3, 3), pad=(1, 1), stride=(2, 2), num_filter=3,
                                                 num_group=3, no_bias=True, name="op"),
         {"data": (2, 3, 6, 6)})
    case("Convolution_2d_dilate2_p2", C(D(), kernel=(3, 3), dilate=(2, 2), pad=(2, 2), num_filter=3, name="op"),
         {"data": (1, 2, 7, 6)})
    case("Convolution_2d_k2x3_s1x2_nobias", C(D(), kernel=(2, 3), stride=(1, 2), num_filter=4, no_bias=True,
                                              name="op"),
         {"data": (2, 3, 5, 7)})
    case("Convolution_2d_k1", C(D(), kernel=(1, 1), num_filter=3, name="op"), {"data": (2, 4, 3, 3)})
    case("Convolution_1d_k3", C(D(), kernel=(3,), num_filter=4, name="op"), {"data": (2, 3, 9)})
    case("Convolution_1d_k3_s2_p1_dilate2_nobias", C(D(), kernel=(3,), stride=(2,), pad=(1,), dilate=(2,),
                                                     num_filter=3, no_bias=True, name="op"),
         {"data": (2, 2, 11)})

    # ---------------- Deconvolution ----------------
    DC = mx.sym.Deconvolution
    case("Deconvolution_k2_s2", DC(D(), kernel=(2, 2), stride=(2, 2), num_filter=3, no_bias=False, name="op"),
         {"data": (2, 4, 3, 3)})
    case("Deconvolution_k3_s2_p1_adj1", DC(D(), kernel=(3, 3), stride=(2, 2), pad=(1, 1), adj=(1, 1), num_filter=2,
                                          no_bias=False, name="op"),
         {"data": (1, 3, 3, 4)})
    case("Deconvolution_k4_s2_p1_nobias", DC(D(), kernel=(4, 4), stride=(2, 2), pad=(1, 1), num_filter=3,
                                            no_bias=True, name="op"),
         {"data": (2, 2, 3, 3)})
    case("Deconvolution_group2_s2", DC(D(), kernel=(3, 3), stride=(2, 2), num_filter=4, num_group=2, no_bias=False,
                                      name="op"),
         {"data": (1, 4, 3, 3)})
    case("Deconvolution_1d_s2_p1", DC(D(), kernel=(3,), stride=(2,), pad=(1,), num_filter=2, no_bias=False,
                                     name="op"),
         {"data": (2, 3, 5)})

    # ---------------- FullyConnected ----------------
    FC = mx.sym.FullyConnected
    case("FullyConnected_2d", FC(D(), num_hidden=5, name="op"), {"data": (3, 7)})
    case("FullyConnected_4d_flatten", FC(D(), num_hidden=4, name="op"), {"data": (2, 3, 2, 2)})
    case("FullyConnected_3d_flatten_false", FC(D(), num_hidden=4, flatten=False, name="op"), {"data": (2, 3, 5)})
    case("FullyConnected_nobias", FC(D(), num_hidden=6, no_bias=True, name="op"), {"data": (4, 3)})
    case("FullyConnected_3d_flatten_false_nobias", FC(D(), num_hidden=3, flatten=False, no_bias=True, name="op"),
         {"data": (2, 2, 4)})

    # ---------------- BatchNorm (training) ----------------
    BN = mx.sym.BatchNorm
    case("BatchNorm_fix_gamma_default", BN(D(), name="op"), {"data": (4, 3, 3, 3)},
         note="fix_gamma=True (default): gamma is read as 1 and its gradient is 0; MXNet also writes 1 into "
              "the gamma argument during the forward. Moving var uses the biased batch variance.")
    case("BatchNorm_fix_gamma_false", BN(D(), fix_gamma=False, eps=1e-3, name="op"), {"data": (4, 3, 3, 3)})
    case("BatchNorm_momentum0p8", BN(D(), fix_gamma=False, momentum=0.8, name="op"), {"data": (3, 2, 4, 2)})
    case("BatchNorm_use_global_stats", BN(D(), fix_gamma=False, use_global_stats=True, name="op"),
         {"data": (2, 4, 3, 3)}, note="normalizes with the moving statistics, which stay unchanged")
    case("BatchNorm_2d", BN(D(), fix_gamma=False, name="op"), {"data": (6, 3)})
    case("BatchNorm_3d", BN(D(), fix_gamma=False, name="op"), {"data": (3, 2, 5)})
    case("BatchNorm_axis_neg1", BN(D(), axis=-1, fix_gamma=False, name="op"), {"data": (2, 3, 2, 4)})

    # ---------------- Activation ----------------
    for act in ["relu", "sigmoid", "tanh", "softrelu", "softsign"]:
        fill = {"data": away_from_zero} if act == "relu" else None
        case("Activation_%s" % act, mx.sym.Activation(D(), act_type=act, name="op"), {"data": (2, 3, 4)}, fill=fill)

    # ---------------- LeakyReLU ----------------
    LR = mx.sym.LeakyReLU
    az = {"data": away_from_zero}
    case("LeakyReLU_leaky_default", LR(D(), name="op"), {"data": (2, 3, 4)}, fill=az)
    case("LeakyReLU_leaky_0p1", LR(D(), act_type="leaky", slope=0.1, name="op"), {"data": (2, 3, 4)}, fill=az)
    case("LeakyReLU_elu", LR(D(), act_type="elu", slope=0.7, name="op"), {"data": (2, 3, 4)}, fill=az)
    case("LeakyReLU_selu", LR(D(), act_type="selu", name="op"), {"data": (2, 3, 4)}, fill=az)
    case("LeakyReLU_gelu", LR(D(), act_type="gelu", name="op"), {"data": (2, 3, 4)})
    case("LeakyReLU_prelu", LR(D(), act_type="prelu", name="op"), {"data": (2, 3, 4, 2)}, fill=az,
         note="gamma (op_gamma) has shape (C,) broadcast over axis 1 and gets a gradient")

    # ---------------- Pooling ----------------
    P = mx.sym.Pooling
    dd = {"data": distinct}
    case("Pooling_max_2x2_s2", P(D(), kernel=(2, 2), stride=(2, 2), pool_type="max", name="op"),
         {"data": (2, 2, 4, 4)}, fill=dd)
    case("Pooling_max_3x3_s2_p1", P(D(), kernel=(3, 3), stride=(2, 2), pad=(1, 1), pool_type="max", name="op"),
         {"data": (1, 2, 5, 6)}, fill=dd, note="overlapping windows: an element can be the max of several")
    case("Pooling_max_3x3_s2_full", P(D(), kernel=(3, 3), stride=(2, 2), pool_type="max", pooling_convention="full",
                                      name="op"),
         {"data": (1, 2, 6, 6)}, fill=dd, note="full convention: the last window hangs over the edge")
    case("Pooling_avg_2x2_s2", P(D(), kernel=(2, 2), stride=(2, 2), pool_type="avg", name="op"), {"data": (2, 2, 4, 4)})
    case("Pooling_avg_3x3_s1_p1_countpad", P(D(), kernel=(3, 3), stride=(1, 1), pad=(1, 1), pool_type="avg",
                                             count_include_pad=True, name="op"),
         {"data": (1, 2, 4, 4)})
    case("Pooling_avg_3x3_s1_p1_nocountpad", P(D(), kernel=(3, 3), stride=(1, 1), pad=(1, 1), pool_type="avg",
                                               count_include_pad=False, name="op"),
         {"data": (1, 2, 4, 4)})
    case("Pooling_avg_3x3_s2_full", P(D(), kernel=(3, 3), stride=(2, 2), pool_type="avg", pooling_convention="full",
                                      name="op"),
         {"data": (1, 2, 6, 6)})
    case("Pooling_avg_3x3_s2_p1_full_nocountpad", P(D(), kernel=(3, 3), stride=(2, 2), pad=(1, 1), pool_type="avg",
                                                    pooling_convention="full", count_include_pad=False, name="op"),
         {"data": (1, 2, 6, 6)})
    case("Pooling_sum_2x2_s1", P(D(), kernel=(2, 2), stride=(1, 1), pool_type="sum", name="op"), {"data": (1, 2, 3, 4)})
    case("Pooling_global_avg", P(D(), kernel=(1, 1), global_pool=True, pool_type="avg", name="op"),
         {"data": (2, 3, 4, 3)})
    case("Pooling_global_max", P(D(), kernel=(1, 1), global_pool=True, pool_type="max", name="op"),
         {"data": (2, 3, 4, 3)}, fill=dd)
    case("Pooling_1d_max_k3_s2", P(D(), kernel=(3,), stride=(2,), pool_type="max", name="op"), {"data": (2, 2, 9)},
         fill=dd)
    case("Pooling_1d_avg_k2_s2_p1", P(D(), kernel=(2,), stride=(2,), pad=(1,), pool_type="avg", name="op"),
         {"data": (2, 2, 6)})

    # ---------------- shape ops ----------------
    case("Flatten_4d", mx.sym.Flatten(D(), name="op"), {"data": (2, 3, 2, 2)})
    case("Flatten_3d", mx.sym.Flatten(D(), name="op"), {"data": (3, 2, 4)})
    R = mx.sym.Reshape
    case("Reshape_plain", R(D(), shape=(4, 6), name="op"), {"data": (2, 3, 4)})
    case("Reshape_code0_minus1", R(D(), shape=(0, -1), name="op"), {"data": (2, 3, 4)})
    case("Reshape_code_minus4_minus2", R(D(), shape=(-4, 1, 2, -2), name="op"), {"data": (2, 3, 4)})
    case("transpose_default", mx.sym.transpose(D(), name="op"), {"data": (2, 3, 4)})
    case("transpose_axes_0213", mx.sym.transpose(D(), axes=(0, 2, 1, 3), name="op"), {"data": (2, 3, 4, 2)})
    case("expand_dims_axis1", mx.sym.expand_dims(D(), axis=1, name="op"), {"data": (3, 4)})
    case("expand_dims_axis_neg1", mx.sym.expand_dims(D(), axis=-1, name="op"), {"data": (3, 4)})

    # ---------------- Concat / SliceChannel / slice_axis ----------------
    case("Concat_dim1_3in", mx.sym.Concat(D(0), D(1), D(2), dim=1, name="op"),
         {"data": (2, 3, 4), "data1": (2, 1, 4), "data2": (2, 2, 4)})
    case("Concat_dim0_2in", mx.sym.Concat(D(0), D(1), dim=0, name="op"), {"data": (1, 3), "data1": (2, 3)})
    case("Concat_dim_neg1_2in", mx.sym.Concat(D(0), D(1), dim=-1, name="op"), {"data": (2, 3, 2), "data1": (2, 3, 3)})
    case("SliceChannel_3_axis1", mx.sym.SliceChannel(D(), num_outputs=3, axis=1, name="op"), {"data": (2, 6, 2)},
         note="three outputs, each with its own head gradient")
    case("SliceChannel_2_axis0", mx.sym.SliceChannel(D(), num_outputs=2, axis=0, name="op"), {"data": (4, 3)})
    case("SliceChannel_4_axis2_squeeze", mx.sym.SliceChannel(D(), num_outputs=4, axis=2, squeeze_axis=True,
                                                             name="op"),
         {"data": (2, 3, 4)})
    case("slice_axis_basic", mx.sym.slice_axis(D(), axis=1, begin=1, end=3, name="op"), {"data": (2, 5, 3)})
    case("slice_axis_negative", mx.sym.slice_axis(D(), axis=-1, begin=-3, end=-1, name="op"), {"data": (2, 3, 6)})
    case("slice_axis_end_none", mx.sym.slice_axis(D(), axis=0, begin=2, end=None, name="op"), {"data": (5, 3)})

    # ---------------- Pad ----------------
    PD = mx.sym.Pad
    case("Pad_constant_zero", PD(D(), mode="constant", pad_width=(0, 0, 0, 0, 1, 2, 2, 1), name="op"),
         {"data": (1, 2, 3, 3)})
    case("Pad_constant_value", PD(D(), mode="constant", constant_value=1.5, pad_width=(0, 0, 0, 0, 1, 1, 0, 2),
                                  name="op"),
         {"data": (2, 2, 3, 4)})
    case("Pad_edge", PD(D(), mode="edge", pad_width=(0, 0, 0, 0, 2, 1, 1, 2), name="op"), {"data": (1, 2, 3, 3)},
         note="edge elements collect the gradients of all their copies")
    case("Pad_reflect", PD(D(), mode="reflect", pad_width=(0, 0, 0, 0, 2, 1, 1, 2), name="op"),
         {"data": (1, 2, 4, 4)}, note="mirrored elements collect the gradients of their reflections")
    case("Pad_5d_edge", PD(D(), mode="edge", pad_width=(0, 0, 0, 0, 1, 0, 0, 1, 1, 1), name="op"),
         {"data": (1, 1, 2, 2, 3)})

    # ---------------- sum / mean ----------------
    for op in ["sum", "mean"]:
        f = getattr(mx.sym, op)
        case("%s_all" % op, f(D(), name="op"), {"data": (2, 3, 4)})
        case("%s_axis1" % op, f(D(), axis=1, name="op"), {"data": (2, 3, 4)})
        case("%s_axis_neg1_keepdims" % op, f(D(), axis=-1, keepdims=True, name="op"), {"data": (2, 3, 4)})
        case("%s_axes_0_2" % op, f(D(), axis=(0, 2), name="op"), {"data": (2, 3, 4)})
        case("%s_exclude_axis1" % op, f(D(), axis=1, exclude=True, name="op"), {"data": (2, 3, 4)})

    # ---------------- elementwise binary ----------------
    for op in ["elemwise_add", "elemwise_sub", "elemwise_mul", "elemwise_div"]:
        fill = {"data1": positive} if op == "elemwise_div" else None
        case("%s_3d" % op, getattr(mx.sym, op)(D(0), D(1), name="op"), {"data": (2, 3, 4), "data1": (2, 3, 4)},
             fill=fill)
    x = D()
    case("elemwise_mul_same_input", mx.sym.elemwise_mul(x, x, name="op"), {"data": (3, 4)},
         note="one variable read twice: its gradient is the sum of both input slots' (2·x·ograd)")

    bshapes = [
        ("same", (2, 3, 4), (2, 3, 4)),
        ("rhs_mid", (2, 3, 4), (1, 3, 1)),
        ("both", (2, 1, 4), (1, 3, 1)),
        ("lhs_lead", (1, 3, 4), (2, 3, 4)),
        ("rhs_scalarlike", (2, 3), (1, 1)),
    ]
    for op in ["broadcast_add", "broadcast_sub", "broadcast_mul", "broadcast_div"]:
        fill = {"data1": positive} if op == "broadcast_div" else None
        for tag, a, b in bshapes:
            case("%s_%s" % (op, tag), getattr(mx.sym, op)(D(0), D(1), name="op"), {"data": a, "data1": b}, fill=fill)

    # ---------------- scalar ops ----------------
    I = mx.sym._internal
    scal = [
        ("_plus_scalar", [2.5], None),
        ("_minus_scalar", [0.75], None),
        ("_rminus_scalar", [2.5], None),
        ("_mul_scalar", [3.0, -0.5], None),
        ("_div_scalar", [4.0], None),
        ("_rdiv_scalar", [1.0, -3.0], positive),
        ("_power_scalar", [2.0, 3.0, 0.5], None),
        ("_maximum_scalar", [0.5], away_from([0.5])),
        ("_minimum_scalar", [-0.3], away_from([-0.3])),
    ]
    for op, scalars, fill in scal:
        for s in scalars:
            f = fill
            if op == "_power_scalar" and s != int(s):
                f = positive
            tag = ("%g" % s).replace("-", "neg").replace(".", "p")
            case("%s_%s" % (op, tag), getattr(I, op)(D(), scalar=s, name="op"), {"data": (2, 3, 4)},
                 fill={"data": f} if f else None)

    # ---------------- add_n / clip / _copy ----------------
    case("add_n_3in", mx.sym.add_n(D(0), D(1), D(2), name="op"),
         {"data": (2, 3, 4), "data1": (2, 3, 4), "data2": (2, 3, 4)})
    case("add_n_2in", mx.sym.add_n(D(0), D(1), name="op"), {"data": (3, 5), "data1": (3, 5)})
    case("clip_sym", mx.sym.clip(D(), a_min=-0.5, a_max=0.5, name="op"), {"data": (2, 3, 4)},
         fill={"data": away_from([-0.5, 0.5], margin=0.05)}, note="gradient passes only strictly inside the bounds")
    case("clip_asym", mx.sym.clip(D(), a_min=0.0, a_max=1.2, name="op"), {"data": (3, 5)},
         fill={"data": away_from([0.0, 1.2], margin=0.05)})
    case("_copy_3d", I._copy(D(), name="op"), {"data": (2, 3, 4)})

    # ---------------- unary ----------------
    unary = [("relu", away_from_zero), ("sigmoid", None), ("tanh", None), ("exp", None), ("log", positive),
             ("sqrt", positive), ("rsqrt", positive), ("square", None)]
    for op, fill in unary:
        case("%s_3d" % op, getattr(mx.sym, op)(D(), name="op"), {"data": (2, 3, 4)},
             fill={"data": fill} if fill else None)

    # ---------------- softmax / log_softmax ----------------
    SM, LS = mx.sym.softmax, mx.sym.log_softmax
    case("softmax_default", SM(D(), name="op"), {"data": (3, 5)})
    case("softmax_axis1", SM(D(), axis=1, name="op"), {"data": (2, 3, 4)})
    case("softmax_axis0_temp2", SM(D(), axis=0, temperature=2.0, name="op"), {"data": (3, 4)})
    case("log_softmax_default", LS(D(), name="op"), {"data": (3, 5)})
    case("log_softmax_axis1", LS(D(), axis=1, name="op"), {"data": (2, 3, 4)})
    case("log_softmax_axis0_temp0p5", LS(D(), axis=0, temperature=0.5, name="op"), {"data": (3, 4)})

    # ---------------- SoftmaxOutput ----------------
    SO = mx.sym.SoftmaxOutput
    case("SoftmaxOutput_null", SO(D(), name="op"), {"data": (4, 5)}, fill={"op_label": class_ids(5)},
         note="grad = softmax - onehot(label); the head gradient is ignored")
    case("SoftmaxOutput_batch", SO(D(), normalization="batch", name="op"), {"data": (4, 5)},
         fill={"op_label": class_ids(5)}, note="grad divided by the batch size")
    case("SoftmaxOutput_valid_no_ignore", SO(D(), normalization="valid", name="op"), {"data": (4, 5)},
         fill={"op_label": class_ids(5)}, note="without use_ignore every label is valid")
    case("SoftmaxOutput_valid_ignore", SO(D(), normalization="valid", use_ignore=True, ignore_label=2, name="op"),
         {"data": (5, 4)}, fill={"op_label": labels_with(4, {0: 2, 3: 2})},
         note="rows whose label is 2 get no gradient; the rest are divided by the number of valid rows (3)")
    case("SoftmaxOutput_null_ignore_grad_scale", SO(D(), use_ignore=True, ignore_label=0, grad_scale=2.5, name="op"),
         {"data": (4, 3)}, fill={"op_label": labels_with(3, {1: 0})},
         note="ignored rows get no gradient; with normalization null nothing is divided, grad_scale multiplies")
    case("SoftmaxOutput_batch_grad_scale", SO(D(), normalization="batch", grad_scale=0.5, name="op"), {"data": (3, 4)},
         fill={"op_label": class_ids(4)})
    case("SoftmaxOutput_multi_output_null", SO(D(), multi_output=True, name="op"), {"data": (2, 4, 3)},
         fill={"op_label": class_ids(4)},
         note="softmax over axis 1; label (N, 3). normalization null still divides by the 3 positions per sample")
    case("SoftmaxOutput_multi_output_batch", SO(D(), multi_output=True, normalization="batch", name="op"),
         {"data": (2, 3, 2, 2)}, fill={"op_label": class_ids(3)},
         note="label (N, 4); batch divides by N times the 4 positions per sample")
    case("SoftmaxOutput_multi_output_valid_ignore", SO(D(), multi_output=True, normalization="valid", use_ignore=True,
                                                       ignore_label=1, name="op"),
         {"data": (2, 3, 4)}, fill={"op_label": labels_with(3, {0: 1, 5: 1})},
         note="valid divides by the number of valid positions over the whole batch, not per sample")
    case("SoftmaxOutput_out_grad", SO(D(), out_grad=True, name="op"), {"data": (3, 4)},
         fill={"op_label": class_ids(4)}, note="out_grad=True: the gradient is multiplied by the head gradient")
    case("SoftmaxOutput_smooth_alpha", SO(D(), smooth_alpha=0.1, name="op"), {"data": (3, 5)},
         fill={"op_label": class_ids(5)},
         note="label smoothing: the target is 1 - 0.1 at the label and 0.1 / (K - 1) elsewhere")


# ---------------------------------------------------------------------------
# Running a case
# ---------------------------------------------------------------------------

def train_step(sym, args, aux, rng_ograd):
    """MXNet's training step: forward(is_train=True) then backward; returns everything written."""
    arg_names = sym.list_arguments()
    reqs = {n: ("null" if is_label(n) else "write") for n in arg_names}
    exe = sym.simple_bind(ctx=CTX, grad_req=reqs, **{n: args[n].shape for n in arg_names})
    for n in arg_names:
        exe.arg_dict[n][:] = args[n]
    for n, v in aux.items():
        exe.aux_dict[n][:] = v
    outs = [o.asnumpy().copy() for o in exe.forward(is_train=True)]
    ograds = [rng_ograd.standard_normal(o.shape).astype(np.float32) for o in outs]
    exe.backward([mx.nd.array(g, ctx=CTX) for g in ograds])
    grads = {n: exe.grad_dict[n].asnumpy().copy() for n in arg_names if reqs[n] == "write"}
    auxafter = {n: exe.aux_dict[n].asnumpy().copy() for n in aux}
    return outs, ograds, grads, auxafter


def finite_difference_errors(sym, args, aux, ograds, grads, rng):
    """Per argument: relative error between <grad, v> and the central difference of
    L = sum(ograd * out) along a random direction v, in float64 with MXNet itself."""
    arg_names = sym.list_arguments()
    shapes = {n: args[n].shape for n in arg_names}
    exe = sym.simple_bind(ctx=CTX, grad_req="null", type_dict={n: "float64" for n in arg_names}, **shapes)

    def loss(values):
        for n in arg_names:
            exe.arg_dict[n][:] = values[n].astype(np.float64)
        for n, v in aux.items():
            exe.aux_dict[n][:] = v.astype(exe.aux_dict[n].dtype)
        outs = exe.forward(is_train=True)
        return sum(float(np.sum(o.asnumpy().astype(np.float64) * g)) for o, g in zip(outs, ograds))

    errors = {}
    eps = 1e-4
    for n in grads:
        v = rng.standard_normal(args[n].shape)
        plus = dict(args)
        plus[n] = args[n].astype(np.float64) + eps * v
        minus = dict(args)
        minus[n] = args[n].astype(np.float64) - eps * v
        numeric = (loss(plus) - loss(minus)) / (2 * eps)
        analytic = float(np.sum(grads[n].astype(np.float64) * v))
        errors[n] = abs(analytic - numeric) / max(1e-3, abs(analytic), abs(numeric))
    return errors


def softmax_output_expected(attrs, x, label, ograd):
    """SoftmaxOutput's gradient in closed form, as MXNet documents it."""
    a = lambda k, d: attrs.get(k, d)  # noqa: E731
    multi = a("multi_output", "False") == "True"
    use_ignore = a("use_ignore", "False") == "True"
    ignore = float(a("ignore_label", "-1"))
    scale = float(a("grad_scale", "1"))
    norm = a("normalization", "null")
    alpha = float(a("smooth_alpha", "0"))
    x = x.astype(np.float64)
    if multi:
        n, c = x.shape[0], x.shape[1]
        z = x.reshape(n, c, -1).transpose(0, 2, 1).reshape(-1, c)
    else:
        c = x.shape[-1]
        z = x.reshape(-1, c)
    y = label.reshape(-1).astype(np.int64)
    p = np.exp(z - z.max(1, keepdims=True))
    p /= p.sum(1, keepdims=True)
    target = np.full_like(p, alpha / (c - 1)) if alpha else np.zeros_like(p)
    target[np.arange(len(y)), y] = 1.0 - alpha
    g = p - target
    valid = np.ones(len(y), dtype=bool)
    if use_ignore:
        valid = label.reshape(-1) != ignore
        g[~valid] = 0
    # MXNet's multi_output divides null and batch by the number of positions per sample too
    positions = z.shape[0] // x.shape[0] if multi else 1
    if norm == "batch":
        g /= x.shape[0] * positions
    elif norm == "valid":
        g /= max(1, int(valid.sum()))
    else:
        g /= positions
    g *= scale
    if multi:
        g = g.reshape(n, -1, c).transpose(0, 2, 1).reshape(x.shape)
    else:
        g = g.reshape(x.shape)
    if a("out_grad", "False") == "True":
        g = g * ograd
    return g


def write_case(outdir, name, sym, args, aux, outs, ograds, grads, auxafter):
    save = {}
    for n in sym.list_arguments():
        if n in args:
            save["arg:" + n] = mx.nd.array(args[n], dtype=np.float32, ctx=CTX)
    for n, v in aux.items():
        save["aux:" + n] = mx.nd.array(v, dtype=np.float32, ctx=CTX)
    for i, g in enumerate(ograds):
        save["ograd:%d" % i] = mx.nd.array(g, dtype=np.float32, ctx=CTX)
    for i, o in enumerate(outs):
        save["out:%d" % i] = mx.nd.array(o, dtype=np.float32, ctx=CTX)
    for n, g in grads.items():
        save["grad:" + n] = mx.nd.array(g, dtype=np.float32, ctx=CTX)
    for n, v in auxafter.items():
        save["auxafter:" + n] = mx.nd.array(v, dtype=np.float32, ctx=CTX)
    with open(os.path.join(outdir, name + ".json"), "w") as f:
        f.write(sym.tojson())
    mx.nd.save(os.path.join(outdir, name + ".params"), save)


def run_case(name, sym, shapes, fill, note):
    rng = mg.rng_for(name)
    arg_names = sym.list_arguments()
    aux_names = sym.list_auxiliary_states()
    arg_shapes, _, aux_shapes = sym.infer_shape(**shapes)
    args = {}
    for n, s in zip(arg_names, arg_shapes):
        f = fill.get(n)
        args[n] = f(s, rng) if f else mg.arg_fill(n, s, rng)
    aux = {}
    for n, s in zip(aux_names, aux_shapes):
        aux[n] = mg.aux_fill(n, s, rng)
    outs, ograds, grads, auxafter = train_step(sym, args, aux, rng)
    write_case(OUT, name, sym, args, aux, outs, ograds, grads, auxafter)

    node = [n for n in json.loads(sym.tojson())["nodes"] if n["op"] != "null"]
    assert len(node) == 1, name
    op, attrs = node[0]["op"], node[0].get("attrs", {})
    if op == "SoftmaxOutput":
        expected = softmax_output_expected(attrs, args["data"], args["op_label"], ograds[0])
        err = float(np.max(np.abs(expected - grads["data"]))) / max(1.0, float(np.max(np.abs(expected))))
        check = {"data": err}  # against the closed form
    else:
        check = finite_difference_errors(sym, args, aux, ograds, grads, mg.rng_for(name + "/check"))
    return {"case": name, "op": op, "attrs": attrs, "arguments": arg_names,
            "grad_arguments": [n for n in arg_names if n in grads], "aux": aux_names,
            "outputs": [list(o.shape) for o in outs], "note": note}, check


# ---------------------------------------------------------------------------
# Whole models
# ---------------------------------------------------------------------------

def pool_gaps(sym, args, pool_inputs):
    """Smallest gap between the two largest values of any 2x2 max-pool window, per pooled tensor,
    ignoring windows whose top value is 0 (all-zero relu outputs: their gradient is zero anyway)."""
    internals = sym.get_internals()
    gaps = {}
    for t in pool_inputs:
        s = internals[t]
        exe = s.simple_bind(ctx=CTX, grad_req="null", **{n: args[n].shape for n in s.list_arguments()})
        for n in s.list_arguments():
            exe.arg_dict[n][:] = args[n]
        y = exe.forward(is_train=True)[0].asnumpy()
        n, c, h, w = y.shape
        win = y[:, :, :h // 2 * 2, :w // 2 * 2].reshape(n, c, h // 2, 2, w // 2, 2)
        win = np.sort(win.transpose(0, 1, 2, 4, 3, 5).reshape(-1, 4), axis=1)
        live = win[:, 3] != 0
        gaps[t] = float((win[live, 3] - win[live, 2]).min())
    return gaps


def pick_data(name, sym, args, make, pool_inputs, min_gap=5e-6, tries=200):
    """Draws the model's input until no max-pool window holds a near-tie (two values closer than
    min_gap, a few dozen float32 ulps), so that a backend whose sums round differently still
    routes each window's gradient to the same element as MXNet."""
    for k in range(tries):
        rng = mg.rng_for("%s/data/%d" % (name, k))
        args["data"] = make(rng)
        gaps = pool_gaps(sym, args, pool_inputs)
        if min(gaps.values()) >= min_gap:
            return k, gaps
    raise RuntimeError("no input without near-ties in %d tries for %s" % (tries, name))


def gen_lenet_grads(outdir):
    """LeNet-5 of models/lenet with its weights (read from the committed checkpoint, so its 1.6 MB
    are not stored twice), batch 4, one training step with a label."""
    prefix = os.path.join(mg.OUT, "models", "lenet", "lenet")
    sym, argp, auxp = mx.model.load_checkpoint(prefix, 0)
    x_shape = np.load(os.path.join(mg.OUT, "models", "lenet", "input.npy")).shape
    rng = mg.rng_for("models/lenet")
    args = {n: v.asnumpy() for n, v in argp.items()}
    args["softmax_label"] = rng.randint(0, 10, size=(x_shape[0],)).astype(np.float32)
    draw, gaps = pick_data("models/lenet", sym, args,
                           lambda r: r.uniform(0.0, 1.0, size=x_shape).astype(np.float32),
                           ["tanh1_output", "tanh2_output"])
    aux = {n: v.asnumpy() for n, v in auxp.items()}
    outs, ograds, grads, auxafter = train_step(sym, args, aux, rng)
    own = {n: args[n] for n in ("data", "softmax_label")}
    write_case(outdir, "lenet", sym, own, aux, outs, ograds, grads, auxafter)
    return {"case": "models/lenet", "arguments": sym.list_arguments(),
            "grad_arguments": [n for n in sym.list_arguments() if n in grads], "aux": list(aux),
            "parameters_from": "models/lenet/lenet-0000.params",
            "note": "arguments other than data and softmax_label are the arg: entries of parameters_from "
                    "(uniform [0,1) data, draw %d: smallest max-pool top-2 gap %.2e); SoftmaxOutput "
                    "normalization null, so gradients are summed over the batch"
                    % (draw, min(gaps.values())),
            }, sym, args, grads


def gen_convbn_grads(outdir):
    """conv -> BatchNorm (training) -> relu -> max pool -> fc -> SoftmaxOutput."""
    data = V("data")
    c = mx.sym.Convolution(data, kernel=(3, 3), pad=(1, 1), num_filter=6, name="conv")
    b = mx.sym.BatchNorm(c, fix_gamma=False, momentum=0.9, eps=1e-5, name="bn")
    r = mx.sym.Activation(b, act_type="relu", name="relu")
    p = mx.sym.Pooling(r, kernel=(2, 2), stride=(2, 2), pool_type="max", name="pool")
    f = mx.sym.FullyConnected(mx.sym.Flatten(p, name="flatten"), num_hidden=5, name="fc")
    net = mx.sym.SoftmaxOutput(f, normalization="batch", name="softmax")
    rng = mg.rng_for("models/convbn")
    in_shape = (4, 3, 6, 6)
    arg_shapes, _, aux_shapes = net.infer_shape(data=in_shape)
    args = {}
    for n, s in zip(net.list_arguments(), arg_shapes):
        if n == "data":
            continue
        if n == "softmax_label":
            args[n] = rng.randint(0, 5, size=s).astype(np.float32)
        elif n.endswith("_weight"):
            args[n] = mg.xavier_uniform(s, rng)
        elif n.endswith("_gamma"):
            args[n] = rng.uniform(0.5, 1.5, size=s).astype(np.float32)
        else:
            args[n] = (0.1 * rng.standard_normal(s)).astype(np.float32)
    aux = {n: mg.aux_fill(n, s, rng) for n, s in zip(net.list_auxiliary_states(), aux_shapes)}
    # the relu kink: no BatchNorm output within 1e-4 of 0 either
    bn_out = net.get_internals()["bn_output"]

    def make(r):
        for _ in range(100):
            x = r.standard_normal(in_shape).astype(np.float32)
            a = dict(args, data=x)
            exe = bn_out.simple_bind(ctx=CTX, grad_req="null", **{n: a[n].shape for n in bn_out.list_arguments()})
            for n in bn_out.list_arguments():
                exe.arg_dict[n][:] = a[n]
            if np.abs(exe.forward(is_train=True)[0].asnumpy()).min() > 1e-4:
                return x
        raise RuntimeError("BatchNorm outputs keep landing next to 0")
    draw, gaps = pick_data("models/convbn", net, args, make, ["relu_output"])
    outs, ograds, grads, auxafter = train_step(net, args, aux, rng)
    write_case(outdir, "convbn", net, args, aux, outs, ograds, grads, auxafter)
    return {"case": "models/convbn", "arguments": net.list_arguments(),
            "grad_arguments": [n for n in net.list_arguments() if n in grads], "aux": list(aux),
            "note": "BatchNorm in training mode (batch statistics; moving stats in auxafter); SoftmaxOutput "
                    "normalization batch. Max-pool windows that tie are all-zero relu outputs, whose gradient "
                    "is zero whichever element takes it; otherwise the smallest top-2 gap is %.2e (draw %d)"
                    % (min(gaps.values()), draw),
            }, net, args, grads


def check_model(sym, args, grads, name):
    """Per argument, the relative error of <grad, v> against central differences (float64, a step
    small enough not to cross a max-pool or relu kink) of the cross-entropy loss that
    SoftmaxOutput's gradient belongs to."""
    nodes = json.loads(sym.tojson())["nodes"]
    logits = sym.get_internals()[nodes[nodes[-1]["inputs"][0][0]]["name"] + "_output"]
    attrs = nodes[-1].get("attrs", {})
    divide = args["data"].shape[0] if attrs.get("normalization") == "batch" else 1
    exe = logits.simple_bind(ctx=CTX, grad_req="null", type_dict={n: "float64" for n in logits.list_arguments()},
                             **{n: args[n].shape for n in logits.list_arguments()})
    y = args["softmax_label"].astype(np.int64)

    def loss(values):
        for n in logits.list_arguments():
            exe.arg_dict[n][:] = values[n].astype(np.float64)
        z = exe.forward(is_train=True)[0].asnumpy()
        z = z - z.max(1, keepdims=True)
        logp = z - np.log(np.exp(z).sum(1, keepdims=True))
        return -float(logp[np.arange(len(y)), y].sum()) / divide

    rng = mg.rng_for(name + "/check")
    errors = {}
    eps = 1e-7
    for n in sym.list_arguments():
        if n not in grads:
            continue
        v = rng.standard_normal(args[n].shape)
        plus, minus = dict(args), dict(args)
        plus[n] = args[n].astype(np.float64) + eps * v
        minus[n] = args[n].astype(np.float64) - eps * v
        numeric = (loss(plus) - loss(minus)) / (2 * eps)
        analytic = float(np.sum(grads[n].astype(np.float64) * v))
        errors[n] = abs(analytic - numeric) / max(1e-3, abs(analytic), abs(numeric))
    return errors


# ---------------------------------------------------------------------------
# Known disagreements, each checked on every run: a case listed here must still disagree, and no
# other case may.
# ---------------------------------------------------------------------------

# MXNet 1.9.1's gradient is wrong in every CPU build (oneDNN or not). The fixture keeps MXNet's
# values and the index names them under "mxnet_wrong"; Kiln's test expects to differ there.
MXNET_WRONG = {
    "LeakyReLU_selu": {"data": "for x < 0 MXNet 1.9.1 gives lambda*y + lambda*alpha (y the output) instead of "
                               "y + lambda*alpha = lambda*alpha*exp(x): the derivative is off by (lambda-1)*y"},
    "SoftmaxOutput_out_grad": {"data": "with out_grad=True MXNet 1.9.1 multiplies (softmax - onehot) by the "
                                       "softmax output instead of by the head gradient"},
}

# The default (oneDNN) build's gradient is wrong and MXNet's own CPU kernel is right: these cases
# are generated with MXNET_MKLDNN_ENABLED=0.
NATIVE_ONLY = {
    "Pooling_avg_3x3_s2_full": "generated with MXNET_MKLDNN_ENABLED=0: oneDNN's backward divides a window that "
                               "hangs over the edge (full convention, no padding) by the kernel size 9, while "
                               "the forward divides by the 6 elements it covers",
}

TOLERANCE = 1e-3


def worst(check):
    return max(check.values()) if check else 0.0


def run_native(name):
    """Runs one case in a child process with oneDNN off; returns its index entry and check."""
    import subprocess
    env = dict(os.environ, MXNET_MKLDNN_ENABLED="0", MXNET_STORAGE_FALLBACK_LOG_VERBOSE="0")
    r = subprocess.run([sys.executable, os.path.abspath(__file__), "--only", name], env=env,
                       stdout=subprocess.PIPE, check=True, universal_newlines=True)
    result = json.loads(r.stdout.strip().splitlines()[-1])
    return result["entry"], result["check"]


def main():
    build_cases()
    by_name = {c[0]: c for c in CASES}
    if len(sys.argv) == 3 and sys.argv[1] == "--only":
        entry, check = run_case(*by_name[sys.argv[2]])
        print(json.dumps({"entry": entry, "check": check}))
        return

    if os.path.isdir(OUT):
        shutil.rmtree(OUT)
    os.makedirs(os.path.join(OUT, "models"))
    assert len(by_name) == len(CASES), "duplicate case names"
    index, problems, counts = [], [], {}
    for name, sym, shapes, fill, note in CASES:
        assert all(ch.isalnum() or ch == "_" for ch in name), name
        entry, check = run_case(name, sym, shapes, fill, note)
        if name in NATIVE_ONLY:
            if worst(check) <= TOLERANCE:
                problems.append("%s: the oneDNN build now agrees; drop it from NATIVE_ONLY" % name)
            entry, check = run_native(name)
            entry["note"] = (entry["note"] + " " if entry["note"] else "") + NATIVE_ONLY[name]
        if name in MXNET_WRONG:
            entry["mxnet_wrong"] = MXNET_WRONG[name]
            bad = {k for k, e in check.items() if e > TOLERANCE}
            if bad != set(MXNET_WRONG[name]):
                problems.append("%s: expected MXNet to be wrong for %s, found %s %s"
                                % (name, sorted(MXNET_WRONG[name]), sorted(bad), check))
        elif worst(check) > TOLERANCE:
            problems.append("%s: gradient disagrees with finite differences / closed form: %s" % (name, check))
        index.append(entry)
        counts[entry["op"]] = counts.get(entry["op"], 0) + 1
    mg.write_json(os.path.join(OUT, "index.json"), index)

    models = []
    for gen in (gen_lenet_grads, gen_convbn_grads):
        entry, sym, args, grads = gen(os.path.join(OUT, "models"))
        models.append(entry)
        check = check_model(sym, args, grads, entry["case"])
        print("%s: %d gradients, worst finite-difference error %.2e" % (entry["case"], len(grads), worst(check)))
        if worst(check) > TOLERANCE:
            problems.append("%s: gradient disagrees with finite differences: %s" % (entry["case"], check))
    mg.write_json(os.path.join(OUT, "models", "index.json"), models)

    print("gradient cases (%d):" % len(index))
    for op in sorted(counts):
        print("  %-20s %d" % (op, counts[op]))
    total = sum(os.path.getsize(os.path.join(dp, f)) for dp, _, fs in os.walk(OUT) for f in fs)
    print("gradient fixture size: %.1f KiB" % (total / 1024.0))
    for p in problems:
        print("PROBLEM:", p)
    if problems:
        sys.exit("make_golden_grads.py: %d problem(s); see above" % len(problems))


if __name__ == "__main__":
    main()
