#!/usr/bin/env python3
"""Golden-fixture generator for Kiln.

Runs real Apache MXNet 1.9.1 (and gluoncv's CIFAR ResNet definition) and
writes reference inputs/outputs into Tests/Fixtures/golden/.  Run it through
tools/golden/make_golden.sh, which sets up the venv and sets
MXNET_SUBGRAPH_BACKEND=NONE (the fused subgraph path gives wrong answers).

Everything is deterministic: each per-op case draws its inputs from a numpy
RandomState seeded from a CRC32 of the case name, so adding or removing cases
does not change the others.
"""
import glob
import importlib.util
import json
import os
import shutil
import sys
import zlib

if os.environ.get("MXNET_SUBGRAPH_BACKEND", "") != "NONE":
    sys.exit("make_golden.py: set MXNET_SUBGRAPH_BACKEND=NONE (use tools/golden/make_golden.sh)")

import numpy as np
import mxnet as mx

REPO = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))
OUT = os.path.join(REPO, "Tests", "Fixtures", "golden")
CTX = mx.cpu()


def rng_for(name):
    return np.random.RandomState(zlib.crc32(name.encode("utf-8")) & 0x7FFFFFFF)


def write_json(path, obj):
    with open(path, "w") as f:
        json.dump(obj, f, indent=1, sort_keys=False)
        f.write("\n")


def flat_values(a):
    """Flat C-order values as JSON-friendly python numbers."""
    a = np.ascontiguousarray(a)
    if a.dtype.kind == "f":
        return [float(x) for x in a.reshape(-1)]
    return [int(x) for x in a.reshape(-1)]


# ---------------------------------------------------------------------------
# 1. Per-op cases
# ---------------------------------------------------------------------------

V = mx.sym.var


def D(i=0):
    return V("data" if i == 0 else "data%d" % i)


# Input fillers: fn(shape, rng) -> float32 array
def normal(shape, rng):
    return rng.standard_normal(shape).astype(np.float32)


def positive(shape, rng):
    return rng.uniform(0.2, 3.0, size=shape).astype(np.float32)


def var_positive(shape, rng):
    return rng.uniform(0.5, 2.0, size=shape).astype(np.float32)


def class_ids(num_classes):
    def f(shape, rng):
        return rng.randint(0, num_classes, size=shape).astype(np.float32)
    return f


def uint8_range(shape, rng):
    # float -> uint8 is only well defined inside [0, 256)
    return rng.uniform(0.0, 255.0, size=shape).astype(np.float32)


def int_range(shape, rng):
    return rng.uniform(-100.0, 100.0, size=shape).astype(np.float32)


CASES = []  # (case, symbol builder, data shapes dict, fillers dict, note)


def case(name, sym, shapes, fill=None, note=""):
    CASES.append((name, sym, shapes, fill or {}, note))


def aux_fill(name, shape, rng):
    if name.endswith("moving_var"):
        return var_positive(shape, rng)
    if name.endswith("moving_mean"):
        return (0.5 * rng.standard_normal(shape)).astype(np.float32)
    return normal(shape, rng)


def arg_fill(name, shape, rng):
    if name.endswith("_gamma"):
        # BatchNorm / PReLU gamma: keep around 1 but not trivially 1
        return rng.uniform(0.5, 1.5, size=shape).astype(np.float32)
    return normal(shape, rng)


def build_cases():
    # ---------------- Convolution ----------------
    C = mx.sym.Convolution
    case("Convolution_2d_k3", C(D(), kernel=(3, 3), num_filter=4, name="op"),
         {"data": (2, 3, 7, 6)})
    case("Convolution_2d_k3_s2_p1", C(D(), kernel=(3, 3), stride=(2, 2), pad=(1, 1), num_filter=5, name="op"),
         {"data": (2, 3, 8, 7)})
    case("Convolution_2d_k3_dilate2_p2", C(D(), kernel=(3, 3), dilate=(2, 2), pad=(2, 2), num_filter=3, name="op"),
         {"data": (1, 2, 9, 8)})
    case("Convolution_2d_k2x3_s1x2_nobias", C(D(), kernel=(2, 3), stride=(1, 2), num_filter=4, no_bias=True, name="op"),
         {"data": (2, 3, 6, 9)})
    case("Convolution_2d_group2", C(D(), kernel=(3, 3), pad=(1, 1), num_filter=6, num_group=2, name="op"),
         {"data": (2, 4, 5, 5)})
    case("Convolution_2d_depthwise", C(D(), kernel=(3, 3), pad=(1, 1), stride=(2, 2), num_filter=4, num_group=4,
                                       no_bias=True, name="op"),
         {"data": (2, 4, 7, 7)})
    case("Convolution_2d_k1", C(D(), kernel=(1, 1), num_filter=3, name="op"),
         {"data": (2, 5, 4, 4)})
    case("Convolution_2d_asym_pad_stride_dilate", C(D(), kernel=(3, 2), stride=(2, 1), pad=(1, 0), dilate=(1, 2),
                                                    num_filter=2, name="op"),
         {"data": (1, 3, 9, 8)})
    case("Convolution_1d_k3", C(D(), kernel=(3,), num_filter=4, name="op"),
         {"data": (2, 3, 10)})
    case("Convolution_1d_k5_s2_p2_dilate2", C(D(), kernel=(5,), stride=(2,), pad=(2,), dilate=(2,), num_filter=3,
                                              no_bias=True, name="op"),
         {"data": (2, 2, 15)})
    case("Convolution_1d_group", C(D(), kernel=(3,), pad=(1,), num_filter=4, num_group=2, name="op"),
         {"data": (1, 4, 8)})

    # ---------------- Deconvolution ----------------
    DC = mx.sym.Deconvolution
    case("Deconvolution_k2_s2", DC(D(), kernel=(2, 2), stride=(2, 2), num_filter=3, no_bias=False, name="op"),
         {"data": (2, 4, 3, 3)})
    case("Deconvolution_k3_s2_p1_adj1", DC(D(), kernel=(3, 3), stride=(2, 2), pad=(1, 1), adj=(1, 1), num_filter=2,
                                          no_bias=False, name="op"),
         {"data": (1, 3, 4, 5)})
    case("Deconvolution_k4_s2_p1_nobias", DC(D(), kernel=(4, 4), stride=(2, 2), pad=(1, 1), num_filter=3, no_bias=True,
                                            name="op"),
         {"data": (2, 2, 3, 3)}, note="no_bias=True (the MXNet default for Deconvolution)")
    case("Deconvolution_group2", DC(D(), kernel=(3, 3), stride=(2, 2), num_filter=4, num_group=2, no_bias=False,
                                   name="op"),
         {"data": (1, 4, 3, 3)})
    case("Deconvolution_default_nobias", DC(D(), kernel=(3, 3), num_filter=2, name="op"),
         {"data": (1, 3, 4, 4)}, note="no_bias not given: MXNet default is True, so no op_bias argument")
    case("Deconvolution_1d_s2", DC(D(), kernel=(3,), stride=(2,), pad=(1,), adj=(1,), num_filter=2, no_bias=False,
                                  name="op"),
         {"data": (2, 3, 5)})

    # ---------------- FullyConnected ----------------
    FC = mx.sym.FullyConnected
    case("FullyConnected_2d", FC(D(), num_hidden=5, name="op"), {"data": (3, 7)})
    case("FullyConnected_4d_flatten", FC(D(), num_hidden=4, name="op"), {"data": (2, 3, 2, 2)})
    case("FullyConnected_3d_flatten_false", FC(D(), num_hidden=4, flatten=False, name="op"), {"data": (2, 3, 5)})
    case("FullyConnected_3d_flatten_true_nobias", FC(D(), num_hidden=3, flatten=True, no_bias=True, name="op"),
         {"data": (2, 3, 5)})
    case("FullyConnected_nobias", FC(D(), num_hidden=6, no_bias=True, name="op"), {"data": (4, 3)})

    # ---------------- BatchNorm ----------------
    BN = mx.sym.BatchNorm
    case("BatchNorm_4d_default", BN(D(), name="op"), {"data": (2, 3, 4, 4)},
         note="default fix_gamma=True: gamma is ignored (treated as 1)")
    case("BatchNorm_4d_fixgamma_false_eps", BN(D(), eps=1e-3, fix_gamma=False, name="op"), {"data": (2, 3, 4, 4)})
    case("BatchNorm_4d_global_stats", BN(D(), fix_gamma=False, use_global_stats=True, momentum=0.8, name="op"),
         {"data": (2, 4, 3, 3)})
    case("BatchNorm_2d", BN(D(), fix_gamma=False, eps=1e-5, name="op"), {"data": (5, 3)})
    case("BatchNorm_axis_neg1", BN(D(), axis=-1, fix_gamma=False, name="op"), {"data": (2, 3, 3, 4)})
    case("BatchNorm_axis3", BN(D(), axis=3, fix_gamma=False, eps=0.01, name="op"), {"data": (2, 2, 3, 5)})
    case("BatchNorm_3d_axis1", BN(D(), fix_gamma=False, name="op"), {"data": (2, 3, 6)})

    # ---------------- Activation ----------------
    for act in ["relu", "sigmoid", "tanh", "softrelu", "softsign"]:
        case("Activation_%s" % act, mx.sym.Activation(D(), act_type=act, name="op"), {"data": (2, 3, 4)})

    # ---------------- LeakyReLU ----------------
    LR = mx.sym.LeakyReLU
    case("LeakyReLU_leaky_default", LR(D(), name="op"), {"data": (2, 3, 4)}, note="default act_type=leaky slope=0.25")
    case("LeakyReLU_leaky_0p1", LR(D(), act_type="leaky", slope=0.1, name="op"), {"data": (2, 3, 4)})
    case("LeakyReLU_elu", LR(D(), act_type="elu", slope=0.7, name="op"), {"data": (2, 3, 4)})
    case("LeakyReLU_selu", LR(D(), act_type="selu", name="op"), {"data": (2, 3, 4)})
    case("LeakyReLU_gelu", LR(D(), act_type="gelu", name="op"), {"data": (2, 3, 4)})
    case("LeakyReLU_prelu", LR(D(), act_type="prelu", name="op"), {"data": (2, 3, 4, 2)},
         note="gamma (op_gamma) has shape (C,) broadcast over axis 1")

    # ---------------- Pooling ----------------
    P = mx.sym.Pooling
    case("Pooling_max_2x2_s2", P(D(), kernel=(2, 2), stride=(2, 2), pool_type="max", name="op"), {"data": (2, 3, 6, 6)})
    case("Pooling_max_3x3_s2_p1", P(D(), kernel=(3, 3), stride=(2, 2), pad=(1, 1), pool_type="max", name="op"),
         {"data": (1, 2, 7, 8)})
    case("Pooling_max_3x3_s2_full", P(D(), kernel=(3, 3), stride=(2, 2), pool_type="max", pooling_convention="full",
                                      name="op"),
         {"data": (1, 2, 8, 8)}, note="full convention: ceil output size")
    case("Pooling_max_2x2_s2_valid_odd", P(D(), kernel=(2, 2), stride=(2, 2), pool_type="max",
                                           pooling_convention="valid", name="op"),
         {"data": (1, 2, 7, 5)})
    case("Pooling_avg_2x2_s2", P(D(), kernel=(2, 2), stride=(2, 2), pool_type="avg", name="op"), {"data": (2, 3, 6, 6)})
    case("Pooling_avg_3x3_s1_p1_countpad", P(D(), kernel=(3, 3), stride=(1, 1), pad=(1, 1), pool_type="avg",
                                             count_include_pad=True, name="op"),
         {"data": (1, 2, 5, 5)})
    case("Pooling_avg_3x3_s1_p1_nocountpad", P(D(), kernel=(3, 3), stride=(1, 1), pad=(1, 1), pool_type="avg",
                                               count_include_pad=False, name="op"),
         {"data": (1, 2, 5, 5)})
    case("Pooling_avg_3x3_s2_full", P(D(), kernel=(3, 3), stride=(2, 2), pool_type="avg", pooling_convention="full",
                                      name="op"),
         {"data": (1, 2, 8, 8)})
    case("Pooling_avg_3x3_s2_p1_full_nocountpad", P(D(), kernel=(3, 3), stride=(2, 2), pad=(1, 1), pool_type="avg",
                                                    pooling_convention="full", count_include_pad=False, name="op"),
         {"data": (1, 2, 8, 8)})
    case("Pooling_sum_2x2_s1", P(D(), kernel=(2, 2), stride=(1, 1), pool_type="sum", name="op"), {"data": (1, 2, 4, 5)})
    case("Pooling_global_avg", P(D(), kernel=(1, 1), global_pool=True, pool_type="avg", name="op"),
         {"data": (2, 3, 5, 4)})
    case("Pooling_global_max", P(D(), kernel=(1, 1), global_pool=True, pool_type="max", name="op"),
         {"data": (2, 3, 5, 4)})
    case("Pooling_global_sum_nokernel", P(D(), global_pool=True, pool_type="sum", name="op"),
         {"data": (2, 3, 3, 3)}, note="kernel omitted, allowed with global_pool")
    case("Pooling_1d_max_k3_s2", P(D(), kernel=(3,), stride=(2,), pool_type="max", name="op"), {"data": (2, 3, 9)})
    case("Pooling_1d_avg_k2_s2_p1", P(D(), kernel=(2,), stride=(2,), pad=(1,), pool_type="avg", name="op"),
         {"data": (2, 3, 8)})
    case("Pooling_1d_global_avg", P(D(), kernel=(1,), global_pool=True, pool_type="avg", name="op"),
         {"data": (2, 3, 7)})

    # ---------------- Flatten ----------------
    case("Flatten_4d", mx.sym.Flatten(D(), name="op"), {"data": (2, 3, 2, 2)})
    case("Flatten_3d", mx.sym.Flatten(D(), name="op"), {"data": (3, 2, 4)})
    case("Flatten_2d", mx.sym.Flatten(D(), name="op"), {"data": (3, 4)})

    # ---------------- Reshape ----------------
    R = mx.sym.Reshape
    case("Reshape_plain", R(D(), shape=(4, 6), name="op"), {"data": (2, 3, 4)})
    case("Reshape_minus1", R(D(), shape=(-1,), name="op"), {"data": (2, 3, 4)})
    case("Reshape_code0_minus1", R(D(), shape=(0, -1), name="op"), {"data": (2, 3, 4)})
    case("Reshape_code0_0_minus1", R(D(), shape=(0, 0, -1), name="op"), {"data": (2, 3, 2, 2)})
    case("Reshape_code_0_minus2", R(D(), shape=(0, -2), name="op"), {"data": (2, 3, 4, 5)},
         note="-2 copies all remaining input dims")
    case("Reshape_code_minus4_minus2", R(D(), shape=(-4, 1, 2, -2), name="op"), {"data": (2, 3, 4)},
         note="-4 splits dim 0 into (1, 2), then -2 copies the remaining dims")
    case("Reshape_code_minus3", R(D(), shape=(-3, 4), name="op"), {"data": (2, 3, 4)})
    case("Reshape_code_minus3_minus2", R(D(), shape=(-3, -2), name="op"), {"data": (2, 3, 4, 5)})
    case("Reshape_code_minus4", R(D(), shape=(-4, 2, -1, -2), name="op"), {"data": (6, 3, 4)},
         note="-4 splits first dim into (2, -1)")
    case("Reshape_code_minus4_b", R(D(), shape=(0, -4, -1, 2, 0), name="op"), {"data": (2, 6, 5)})
    case("Reshape_reverse", R(D(), shape=(-1, 0), reverse=True, name="op"), {"data": (2, 3, 4)},
         note="reverse=True matches special codes right to left")
    case("Reshape_reverse_false_explicit", R(D(), shape=(0, -1), reverse=False, name="op"), {"data": (2, 3, 4)})

    # ---------------- transpose / expand_dims ----------------
    case("transpose_default", mx.sym.transpose(D(), name="op"), {"data": (2, 3, 4)})
    case("transpose_axes_0213", mx.sym.transpose(D(), axes=(0, 2, 1, 3), name="op"), {"data": (2, 3, 4, 2)})
    case("transpose_axes_102", mx.sym.transpose(D(), axes=(1, 0, 2), name="op"), {"data": (2, 3, 4)})
    case("transpose_2d", mx.sym.transpose(D(), name="op"), {"data": (3, 5)})
    case("expand_dims_axis0", mx.sym.expand_dims(D(), axis=0, name="op"), {"data": (3, 4)})
    case("expand_dims_axis2", mx.sym.expand_dims(D(), axis=2, name="op"), {"data": (3, 4)})
    case("expand_dims_axis_neg1", mx.sym.expand_dims(D(), axis=-1, name="op"), {"data": (3, 4)})
    case("expand_dims_axis_neg3", mx.sym.expand_dims(D(), axis=-3, name="op"), {"data": (3, 4)})

    # ---------------- Concat / SliceChannel / slice_axis ----------------
    case("Concat_dim1_3in", mx.sym.Concat(D(0), D(1), D(2), dim=1, name="op"),
         {"data": (2, 3, 4), "data1": (2, 1, 4), "data2": (2, 2, 4)})
    case("Concat_dim0_3in", mx.sym.Concat(D(0), D(1), D(2), dim=0, name="op"),
         {"data": (1, 3), "data1": (2, 3), "data2": (3, 3)})
    case("Concat_dim_neg1_2in", mx.sym.Concat(D(0), D(1), dim=-1, name="op"),
         {"data": (2, 3, 2), "data1": (2, 3, 3)})
    case("SliceChannel_3_axis1", mx.sym.SliceChannel(D(), num_outputs=3, axis=1, name="op"), {"data": (2, 6, 2)})
    case("SliceChannel_2_axis0", mx.sym.SliceChannel(D(), num_outputs=2, axis=0, name="op"), {"data": (4, 3)})
    case("SliceChannel_4_axis2_squeeze", mx.sym.SliceChannel(D(), num_outputs=4, axis=2, squeeze_axis=True, name="op"),
         {"data": (2, 3, 4)})
    case("SliceChannel_2_axis_neg1", mx.sym.SliceChannel(D(), num_outputs=2, axis=-1, name="op"), {"data": (2, 3, 4)})
    case("slice_axis_basic", mx.sym.slice_axis(D(), axis=1, begin=1, end=3, name="op"), {"data": (2, 5, 3)})
    case("slice_axis_negative", mx.sym.slice_axis(D(), axis=-1, begin=-3, end=-1, name="op"), {"data": (2, 3, 6)})
    case("slice_axis_end_none", mx.sym.slice_axis(D(), axis=0, begin=2, end=None, name="op"), {"data": (5, 3)})
    case("slice_axis_neg_begin_none_end", mx.sym.slice_axis(D(), axis=2, begin=-2, end=None, name="op"),
         {"data": (2, 3, 5)})

    # ---------------- elementwise binary ----------------
    for op in ["elemwise_add", "elemwise_sub", "elemwise_mul", "elemwise_div"]:
        fill = {"data1": positive} if op == "elemwise_div" else None
        case("%s_3d" % op, getattr(mx.sym, op)(D(0), D(1), name="op"), {"data": (2, 3, 4), "data1": (2, 3, 4)},
             fill=fill)
        case("%s_2d" % op, getattr(mx.sym, op)(D(0), D(1), name="op"), {"data": (3, 5), "data1": (3, 5)}, fill=fill)

    bshapes = [
        ("same", (2, 3, 4), (2, 3, 4)),
        ("mid", (2, 3, 4), (1, 3, 1)),
        ("both", (2, 1, 4), (1, 3, 1)),
        ("lhs1", (1, 3, 4), (2, 3, 4)),
        ("scalarlike", (2, 3), (1, 1)),
    ]
    for op in ["broadcast_add", "broadcast_sub", "broadcast_mul", "broadcast_div"]:
        fill = {"data1": positive} if op == "broadcast_div" else None
        for tag, a, b in bshapes:
            case("%s_%s" % (op, tag), getattr(mx.sym, op)(D(0), D(1), name="op"), {"data": a, "data1": b}, fill=fill)

    # ---------------- scalar ops ----------------
    I = mx.sym._internal
    scal = [
        ("_plus_scalar", [2.5, -1.0], None),
        ("_minus_scalar", [2.5, -0.75], None),
        ("_rminus_scalar", [2.5, 0.0], None),
        ("_mul_scalar", [3.0, -0.5], None),
        ("_div_scalar", [4.0, -0.25], None),
        ("_rdiv_scalar", [1.0, 3.0], positive),
        ("_power_scalar", [2.0, 3.0, 0.5], None),
        ("_maximum_scalar", [0.0, 0.5], None),
        ("_minimum_scalar", [0.0, -0.3], None),
    ]
    for op, scalars, fill in scal:
        for s in scalars:
            f = fill
            if op == "_power_scalar" and s != int(s):
                f = positive
            tag = ("%g" % s).replace("-", "neg").replace(".", "p")
            case("%s_%s" % (op, tag), getattr(I, op)(D(), scalar=s, name="op"), {"data": (2, 3, 4)},
                 fill={"data": f} if f else None)

    # ---------------- add_n / clip / Dropout ----------------
    case("add_n_3in", mx.sym.add_n(D(0), D(1), D(2), name="op"),
         {"data": (2, 3, 4), "data1": (2, 3, 4), "data2": (2, 3, 4)})
    case("add_n_2in", mx.sym.add_n(D(0), D(1), name="op"), {"data": (3, 5), "data1": (3, 5)})
    case("clip_sym", mx.sym.clip(D(), a_min=-0.5, a_max=0.5, name="op"), {"data": (2, 3, 4)})
    case("clip_asym", mx.sym.clip(D(), a_min=0.0, a_max=1.2, name="op"), {"data": (3, 5)})
    case("Dropout_p0p5", mx.sym.Dropout(D(), p=0.5, name="op"), {"data": (2, 3, 4)},
         note="inference mode: identity")
    case("Dropout_default", mx.sym.Dropout(D(), name="op"), {"data": (3, 5)}, note="inference mode: identity")

    # ---------------- SoftmaxOutput / softmax / log_softmax ----------------
    SO = mx.sym.SoftmaxOutput
    case("SoftmaxOutput_2d", SO(D(), name="op"), {"data": (4, 5)}, fill={"op_label": class_ids(5)},
         note="label is auto-created as op_label; inference output = softmax over axis 1")
    case("SoftmaxOutput_4d_flatten", SO(D(), name="op"), {"data": (2, 3, 2, 2)}, fill={"op_label": class_ids(12)},
         note="non-multi_output with 4-D data: softmax over the flattened trailing dims, output keeps input shape")
    case("SoftmaxOutput_multi_output", SO(D(), multi_output=True, name="op"), {"data": (2, 4, 3)},
         fill={"op_label": class_ids(4)}, note="softmax over axis 1; label shape (N, 3)")
    case("SoftmaxOutput_preserve_shape", SO(D(), preserve_shape=True, name="op"), {"data": (2, 3, 4)},
         fill={"op_label": class_ids(4)}, note="softmax over the last axis")
    case("SoftmaxOutput_grad_scale_ignore", SO(D(), grad_scale=2.0, use_ignore=True, ignore_label=1,
                                              normalization="valid", name="op"),
         {"data": (3, 4)}, fill={"op_label": class_ids(4)}, note="training-only attrs; forward is plain softmax")
    SM = mx.sym.softmax
    case("softmax_default", SM(D(), name="op"), {"data": (3, 5)}, note="default axis=-1")
    case("softmax_axis1", SM(D(), axis=1, name="op"), {"data": (2, 3, 4)})
    case("softmax_axis0_temp2", SM(D(), axis=0, temperature=2.0, name="op"), {"data": (3, 4)})
    case("softmax_axis_neg1_temp0p5", SM(D(), axis=-1, temperature=0.5, name="op"), {"data": (2, 3, 4)})
    LS = mx.sym.log_softmax
    case("log_softmax_default", LS(D(), name="op"), {"data": (3, 5)})
    case("log_softmax_axis1", LS(D(), axis=1, name="op"), {"data": (2, 3, 4)})
    case("log_softmax_axis0_temp3", LS(D(), axis=0, temperature=3.0, name="op"), {"data": (3, 4)})

    # ---------------- Pad ----------------
    PD = mx.sym.Pad
    case("Pad_constant_zero", PD(D(), mode="constant", pad_width=(0, 0, 0, 0, 1, 2, 2, 1), name="op"),
         {"data": (1, 2, 3, 3)})
    case("Pad_constant_value", PD(D(), mode="constant", constant_value=1.5, pad_width=(0, 0, 0, 0, 1, 1, 0, 2),
                                  name="op"),
         {"data": (2, 2, 3, 4)})
    case("Pad_edge", PD(D(), mode="edge", pad_width=(0, 0, 0, 0, 2, 1, 1, 2), name="op"), {"data": (1, 2, 3, 3)})
    case("Pad_reflect", PD(D(), mode="reflect", pad_width=(0, 0, 0, 0, 2, 1, 1, 2), name="op"), {"data": (1, 2, 4, 4)})
    case("Pad_5d_constant", PD(D(), mode="constant", constant_value=-1.0, pad_width=(0, 0, 0, 0, 1, 0, 0, 1, 1, 1),
                               name="op"),
         {"data": (1, 1, 2, 2, 3)})

    # ---------------- _copy / Cast ----------------
    case("_copy_3d", I._copy(D(), name="op"), {"data": (2, 3, 4)})
    case("_copy_1d", I._copy(D(), name="op"), {"data": (5,)})
    case("Cast_int32", mx.sym.Cast(D(), dtype="int32", name="op"), {"data": (2, 3, 4)}, fill={"data": int_range},
         note="output dtype int32, truncation toward zero")
    case("Cast_uint8", mx.sym.Cast(D(), dtype="uint8", name="op"), {"data": (2, 3, 4)}, fill={"data": uint8_range},
         note="output dtype uint8; inputs kept in [0,255)")
    case("Cast_float16", mx.sym.Cast(D(), dtype="float16", name="op"), {"data": (2, 3, 4)},
         note="output dtype float16")
    case("Cast_float32", mx.sym.Cast(D(), dtype="float32", name="op"), {"data": (3, 4)})
    case("Cast_float64", mx.sym.Cast(D(), dtype="float64", name="op"), {"data": (3, 4)}, note="output dtype float64")

    # ---------------- mean / sum ----------------
    for op in ["mean", "sum"]:
        f = getattr(mx.sym, op)
        case("%s_all" % op, f(D(), name="op"), {"data": (2, 3, 4)}, note="axis None -> output shape (1,)")
        case("%s_axis1" % op, f(D(), axis=1, name="op"), {"data": (2, 3, 4)})
        case("%s_axis_neg1_keepdims" % op, f(D(), axis=-1, keepdims=True, name="op"), {"data": (2, 3, 4)})
        case("%s_axes_0_2" % op, f(D(), axis=(0, 2), name="op"), {"data": (2, 3, 4)})
        case("%s_axes_1_2_keepdims" % op, f(D(), axis=(1, 2), keepdims=True, name="op"), {"data": (2, 3, 4)})
        case("%s_exclude_axis1" % op, f(D(), axis=1, exclude=True, name="op"), {"data": (2, 3, 4)},
             note="exclude=True reduces over all axes except 1")
        case("%s_all_keepdims" % op, f(D(), keepdims=True, name="op"), {"data": (2, 3)})

    # ---------------- unary plain ops ----------------
    unary = [("relu", None), ("sigmoid", None), ("tanh", None), ("exp", None), ("log", positive),
             ("sqrt", positive), ("rsqrt", positive), ("square", None)]
    for op, fill in unary:
        case("%s_3d" % op, getattr(mx.sym, op)(D(), name="op"), {"data": (2, 3, 4)},
             fill={"data": fill} if fill else None)
        case("%s_1d" % op, getattr(mx.sym, op)(D(), name="op"), {"data": (7,)},
             fill={"data": fill} if fill else None)


def run_case(name, sym, shapes, fill, note, outdir):
    rng = rng_for(name)
    arg_names = sym.list_arguments()
    aux_names = sym.list_auxiliary_states()
    arg_shapes, out_shapes, aux_shapes = sym.infer_shape(**shapes)
    if arg_shapes is None:
        raise RuntimeError("shape inference failed for %s" % name)
    args = {}
    for n, s in zip(arg_names, arg_shapes):
        f = fill.get(n)
        args[n] = f(s, rng) if f else arg_fill(n, s, rng)
    aux = {}
    for n, s in zip(aux_names, aux_shapes):
        f = fill.get(n)
        aux[n] = f(s, rng) if f else aux_fill(n, s, rng)

    exe = sym.simple_bind(ctx=CTX, grad_req="null", **{k: v for k, v in zip(arg_names, arg_shapes)})
    for n in arg_names:
        exe.arg_dict[n][:] = args[n]
    for n in aux_names:
        exe.aux_dict[n][:] = aux[n]
    outs = exe.forward(is_train=False)
    if name.startswith("Reshape"):
        # MXNet 1.9 shape inference does not check that the element count is
        # preserved (e.g. shape=(6,-2) on (2,3,4,5) "works" and reads garbage)
        assert int(np.prod(outs[0].shape)) == int(np.prod(shapes["data"])), name

    save = {}
    for n in arg_names:
        save["arg:" + n] = mx.nd.array(args[n], dtype=np.float32, ctx=CTX)
    for n in aux_names:
        save["aux:" + n] = mx.nd.array(aux[n], dtype=np.float32, ctx=CTX)
    for i, o in enumerate(outs):
        save["out:%d" % i] = o.copy()
    js = sym.tojson()
    with open(os.path.join(outdir, name + ".json"), "w") as f:
        f.write(js)
    mx.nd.save(os.path.join(outdir, name + ".params"), save)

    ops = [n for n in json.loads(js)["nodes"] if n["op"] != "null"]
    assert len(ops) == 1, name
    return {"case": name, "op": ops[0]["op"], "attrs": ops[0].get("attrs", {}), "note": note,
            "arguments": arg_names, "aux": aux_names,
            "outputs": [{"shape": list(o.shape), "dtype": np.dtype(o.dtype).name} for o in outs]}


def gen_ops():
    outdir = os.path.join(OUT, "ops")
    if os.path.isdir(outdir):
        shutil.rmtree(outdir)
    os.makedirs(outdir)
    build_cases()
    names = [c[0] for c in CASES]
    assert len(names) == len(set(names)), "duplicate case names"
    index = []
    refused = []
    for name, sym, shapes, fill, note in CASES:
        assert all(ch.isalnum() or ch == "_" for ch in name), name
        try:
            index.append(run_case(name, sym, shapes, fill, note, outdir))
        except mx.base.MXNetError as e:
            msg = str(e).strip().splitlines()
            refused.append({"case": name, "error": msg[0] if msg else ""})
            print("REFUSED", name, msg[:2])
    write_json(os.path.join(outdir, "index.json"), index)
    if refused:
        write_json(os.path.join(outdir, "refused.json"), refused)
    return index


# ---------------------------------------------------------------------------
# 2. Whole models
# ---------------------------------------------------------------------------

def xavier_uniform(shape, rng):
    if len(shape) >= 2:
        rf = int(np.prod(shape[2:])) if len(shape) > 2 else 1
        fan_in, fan_out = shape[1] * rf, shape[0] * rf
    else:
        fan_in = fan_out = shape[0]
    s = np.sqrt(6.0 / (fan_in + fan_out))
    return rng.uniform(-s, s, size=shape).astype(np.float32)


def gen_lenet():
    outdir = os.path.join(OUT, "models", "lenet")
    os.makedirs(outdir, exist_ok=True)
    data = mx.sym.var("data")
    c1 = mx.sym.Convolution(data, kernel=(5, 5), num_filter=20, name="conv1")
    t1 = mx.sym.Activation(c1, act_type="tanh", name="tanh1")
    p1 = mx.sym.Pooling(t1, pool_type="max", kernel=(2, 2), stride=(2, 2), name="pool1")
    c2 = mx.sym.Convolution(p1, kernel=(5, 5), num_filter=50, name="conv2")
    t2 = mx.sym.Activation(c2, act_type="tanh", name="tanh2")
    p2 = mx.sym.Pooling(t2, pool_type="max", kernel=(2, 2), stride=(2, 2), name="pool2")
    fl = mx.sym.Flatten(p2, name="flatten")
    f1 = mx.sym.FullyConnected(fl, num_hidden=500, name="fc1")
    t3 = mx.sym.Activation(f1, act_type="tanh", name="tanh3")
    f2 = mx.sym.FullyConnected(t3, num_hidden=10, name="fc2")
    net = mx.sym.SoftmaxOutput(f2, name="softmax")

    rng = np.random.RandomState(5)
    in_shape = (4, 1, 28, 28)
    arg_shapes, _, _ = net.infer_shape(data=in_shape)
    arg_params = {}
    for n, s in zip(net.list_arguments(), arg_shapes):
        if n in ("data", "softmax_label"):
            continue
        if n.endswith("_weight"):
            arg_params[n] = xavier_uniform(s, rng)
        else:
            arg_params[n] = (0.1 * rng.standard_normal(s)).astype(np.float32)
    x = rng.uniform(0.0, 1.0, size=in_shape).astype(np.float32)

    exe = net.simple_bind(ctx=CTX, grad_req="null", data=in_shape)
    for n, v in arg_params.items():
        exe.arg_dict[n][:] = v
    exe.arg_dict["data"][:] = x
    exe.arg_dict["softmax_label"][:] = 0
    out = exe.forward(is_train=False)[0].asnumpy()

    prefix = os.path.join(outdir, "lenet")
    mx.model.save_checkpoint(prefix, 0, net, {k: mx.nd.array(v) for k, v in arg_params.items()}, {})
    np.save(os.path.join(outdir, "input.npy"), x)
    np.save(os.path.join(outdir, "output.npy"), out.astype(np.float32))
    return out


def load_cifarresnet_module():
    # `import gluoncv` pulls in many optional deps; the model definition itself
    # only needs mxnet, so load that one file directly.
    import mxnet.gluon  # noqa: F401
    cands = []
    for p in sys.path:
        f = os.path.join(p, "gluoncv", "model_zoo", "cifarresnet.py")
        if os.path.isfile(f):
            cands.append(f)
    if not cands:
        raise RuntimeError("gluoncv/model_zoo/cifarresnet.py not found (pip install --no-deps gluoncv==0.10.5.post0)")
    spec = importlib.util.spec_from_file_location("kiln_gluoncv_cifarresnet", cands[0])
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def gen_cifar_resnet():
    outdir = os.path.join(OUT, "models", "cifar_resnet20_v1")
    os.makedirs(outdir, exist_ok=True)
    mod = load_cifarresnet_module()
    mx.random.seed(20)
    net = mod.cifar_resnet20_v1(classes=10)
    net.initialize(mx.init.Xavier(magnitude=2.0), ctx=CTX)
    rng = np.random.RandomState(20)
    x = rng.standard_normal((2, 3, 32, 32)).astype(np.float32)
    net(mx.nd.array(x))  # materialise deferred shapes
    for name, p in sorted(net.collect_params().items()):
        shape = p.shape
        if name.endswith("running_mean"):
            p.set_data(mx.nd.array((0.2 * rng.standard_normal(shape)).astype(np.float32)))
        elif name.endswith("running_var"):
            p.set_data(mx.nd.array(rng.uniform(0.5, 1.5, size=shape).astype(np.float32)))
        elif name.endswith("gamma"):
            p.set_data(mx.nd.array(rng.uniform(0.6, 1.4, size=shape).astype(np.float32)))
        elif name.endswith("beta"):
            p.set_data(mx.nd.array((0.1 * rng.standard_normal(shape)).astype(np.float32)))
        elif name.endswith("bias"):
            p.set_data(mx.nd.array((0.05 * rng.standard_normal(shape)).astype(np.float32)))
    net.hybridize()
    out = net(mx.nd.array(x)).asnumpy()
    prefix = os.path.join(outdir, "cifar_resnet20_v1")
    net.export(prefix, epoch=0)
    net.save_parameters(os.path.join(outdir, "cifar_resnet20_v1-gluon.params"))
    np.save(os.path.join(outdir, "input.npy"), x)
    np.save(os.path.join(outdir, "output.npy"), out.astype(np.float32))

    # cross-check: the exported files reproduce the output
    sb = mx.gluon.nn.SymbolBlock.imports(prefix + "-symbol.json", ["data"], prefix + "-0000.params", ctx=CTX)
    out2 = sb(mx.nd.array(x)).asnumpy()
    assert np.allclose(out, out2, rtol=1e-5, atol=1e-5), "exported resnet does not reproduce output"
    return out


# ---------------------------------------------------------------------------
# 3. I/O fixtures
# ---------------------------------------------------------------------------

NPY_DTYPES = ["float32", "float64", "float16", "uint8", "int8", "int32", "int64"]


def npy_values(dtype):
    base = np.arange(24).reshape(2, 3, 4)
    if dtype.startswith("float"):
        return (base * 0.5 - 3.0).astype(dtype)      # exactly representable incl. float16
    if dtype.startswith("int"):
        return (base - 12).astype(dtype)            # include negatives
    return (base * 10).astype(dtype)                # uint8: 0..230


def gen_io():
    npydir = os.path.join(OUT, "io", "npy")
    pdir = os.path.join(OUT, "io", "params")
    sdir = os.path.join(OUT, "io", "symbols")
    for d in (npydir, pdir, sdir):
        if os.path.isdir(d):
            shutil.rmtree(d)
        os.makedirs(d)

    values = {}
    for dt in NPY_DTYPES:
        a = npy_values(dt)
        np.save(os.path.join(npydir, dt + ".npy"), a)
        values[dt + ".npy"] = {"dtype": dt, "descr": np.lib.format.dtype_to_descr(a.dtype), "shape": list(a.shape),
                               "fortran_order": False, "values": flat_values(a)}
    s = np.array(3.5, dtype=np.float32)
    np.save(os.path.join(npydir, "scalar_float32.npy"), s)
    values["scalar_float32.npy"] = {"dtype": "float32", "descr": "<f4", "shape": [], "fortran_order": False,
                                    "values": [3.5]}
    f = np.asfortranarray(np.arange(6, dtype=np.float32).reshape(2, 3))
    np.save(os.path.join(npydir, "fortran.npy"), f)
    values["fortran.npy"] = {"dtype": "float32", "descr": "<f4", "shape": [2, 3], "fortran_order": True,
                             "values": flat_values(f), "expect_error": True,
                             "note": "fortran_order True: the Kiln reader must reject it with an error; "
                                     "values are the logical C-order values"}
    be = (np.arange(6, dtype=np.float32).reshape(2, 3) * 1.25 - 2.0).astype(">f4")
    np.save(os.path.join(npydir, "bigendian_float32.npy"), be)
    values["bigendian_float32.npy"] = {"dtype": "float32", "descr": ">f4", "shape": [2, 3], "fortran_order": False,
                                       "values": flat_values(be)}
    # 1-D and empty-ish shapes help header parsing ("(5,)" trailing comma)
    one = np.array([1.0, -2.0, 3.5, 0.25, 7.0], dtype=np.float32)
    np.save(os.path.join(npydir, "vector_float32.npy"), one)
    values["vector_float32.npy"] = {"dtype": "float32", "descr": "<f4", "shape": [5], "fortran_order": False,
                                    "values": flat_values(one)}
    write_json(os.path.join(npydir, "values.json"), values)

    # ----- params -----
    mixed = {}
    meta = {}
    specs = [
        ("w_float32", "float32", (2, 3)),
        ("w_float64", "float64", (3, 2)),
        ("w_float16", "float16", (2, 2, 2)),
        ("w_uint8", "uint8", (4,)),
        ("w_int8", "int8", (2, 3)),
        ("w_int32", "int32", (3, 1)),
        ("w_int64", "int64", (2, 2)),
        ("one_element", "float32", (1,)),
        ("arg:prefixed_name", "float32", (1, 2, 1, 2)),
        ("name with spaces/and.dots", "int32", (2,)),
    ]
    for key, dt, shape in specs:
        n = int(np.prod(shape))
        if dt.startswith("float"):
            a = (np.arange(n) * 0.75 - 1.5).astype(dt).reshape(shape)
        elif dt.startswith("int"):
            a = (np.arange(n) * 7 - 9).astype(dt).reshape(shape)
        else:
            a = (np.arange(n) * 60 + 15).astype(dt).reshape(shape)
        if key == "one_element":
            a = np.array([42.5], dtype=np.float32)
        if dt == "int64":
            a = np.array([[-(2 ** 40), 1], [2 ** 33 + 5, -7]], dtype=np.int64)
        mixed[key] = mx.nd.array(a, dtype=dt)
        meta[key] = {"dtype": dt, "shape": list(shape), "values": flat_values(a)}
    mx.nd.save(os.path.join(pdir, "mixed.params"), mixed)
    write_json(os.path.join(pdir, "mixed.json"), {"format": "dict", "arrays": meta,
                                                  "order": list(mixed.keys())})

    lst = [mx.nd.array(np.arange(6, dtype=np.float32).reshape(2, 3) - 2.5),
           mx.nd.array(np.array([1, 2, 3], dtype=np.int32), dtype="int32"),
           mx.nd.array(np.array([0.5], dtype=np.float64), dtype="float64")]
    mx.nd.save(os.path.join(pdir, "list.params"), lst)
    write_json(os.path.join(pdir, "list.json"), {"format": "list", "arrays": [
        {"dtype": np.dtype(a.dtype).name, "shape": list(a.shape), "values": flat_values(a.asnumpy())} for a in lst]})

    small = {"w": mx.nd.array([[1, 2, 3], [4, 5, 6]], dtype="float32")}
    mx.nd.save(os.path.join(pdir, "small.params"), small)
    write_json(os.path.join(pdir, "small.json"), {"format": "dict", "arrays": {
        "w": {"dtype": "float32", "shape": [2, 3], "values": [1.0, 2.0, 3.0, 4.0, 5.0, 6.0]}}, "order": ["w"]})

    # numpy-semantics file (NDARRAY_V3 magic, 0-d arrays allowed)
    from mxnet import npx
    from mxnet import np as mnp
    prev = npx.is_np_array(), npx.is_np_shape()
    npx.set_np()
    try:
        npx.save(os.path.join(pdir, "np_v3.params"),
                 {"scalar": mnp.array(2.5, dtype="float32"),
                  "vec": mnp.array([1, 2, 3], dtype="int64"),
                  "mat": mnp.array([[1.0, -1.0], [0.5, 4.0]], dtype="float32")})
    finally:
        npx.reset_np()
    write_json(os.path.join(pdir, "np_v3.json"), {"format": "dict", "order": ["scalar", "vec", "mat"], "arrays": {
        "scalar": {"dtype": "float32", "shape": [], "values": [2.5]},
        "vec": {"dtype": "int64", "shape": [3], "values": [1, 2, 3]},
        "mat": {"dtype": "float32", "shape": [2, 2], "values": [1.0, -1.0, 0.5, 4.0]}},
        "note": "written with npx.set_np(): arrays use NDARRAY_V3 magic 0xF993FACA; 0-d shape has ndim 0"})

    # ----- legacy symbol JSON -----
    legacy = {
        "nodes": [
            {"op": "null", "param": {}, "name": "data", "inputs": [], "backward_source_id": -1,
             "attr": {"ctx_group": "stage1"}},
            {"op": "null", "param": {}, "name": "conv1_weight", "inputs": [], "backward_source_id": -1},
            {"op": "null", "param": {}, "name": "conv1_bias", "inputs": [], "backward_source_id": -1},
            {"op": "Convolution", "param": {"kernel": "(3, 3)", "num_filter": "4", "pad": "(1, 1)",
                                            "stride": "(1, 1)", "no_bias": "False", "num_group": "1",
                                            "workspace": "512", "dilate": "(1, 1)", "cudnn_tune": "off"},
             "name": "conv1", "inputs": [[0, 0], [1, 0], [2, 0]], "backward_source_id": -1,
             "attr": {"ctx_group": "stage1", "lr_mult": "0.5"}},
            {"op": "Activation", "param": {"act_type": "relu"}, "name": "relu1", "inputs": [[3, 0]],
             "backward_source_id": -1},
            {"op": "Flatten", "param": {}, "name": "flatten1", "inputs": [[4, 0]], "backward_source_id": -1},
            {"op": "null", "param": {}, "name": "fc1_weight", "inputs": [], "backward_source_id": -1},
            {"op": "null", "param": {}, "name": "fc1_bias", "inputs": [], "backward_source_id": -1},
            {"op": "FullyConnected", "param": {"no_bias": "False", "num_hidden": "10"}, "name": "fc1",
             "inputs": [[5, 0], [6, 0], [7, 0]], "backward_source_id": -1,
             "attr": {"weight_lr_mult": "1.2", "wd_mult": "0.3"}},
        ],
        "arg_nodes": [0, 1, 2, 6, 7],
        "heads": [[8, 0]],
    }
    # same net, but the 0.8-era file leaves out the weight/bias variables of fc1
    # and uses a BatchNorm without its aux states: the 0.8->0.9 upgrader creates
    # fc1_weight / fc1_bias / bn1_* variables by the op's FListInputNames.
    implicit = {
        "nodes": [
            {"op": "null", "param": {}, "name": "data", "inputs": [], "backward_source_id": -1},
            {"op": "null", "param": {}, "name": "conv1_weight", "inputs": [], "backward_source_id": -1},
            {"op": "null", "param": {}, "name": "conv1_bias", "inputs": [], "backward_source_id": -1},
            {"op": "Convolution", "param": {"kernel": "(3, 3)", "num_filter": "4", "pad": "(1, 1)"},
             "name": "conv1", "inputs": [[0, 0], [1, 0], [2, 0]], "backward_source_id": -1},
            {"op": "null", "param": {}, "name": "bn1_gamma", "inputs": [], "backward_source_id": -1},
            {"op": "null", "param": {}, "name": "bn1_beta", "inputs": [], "backward_source_id": -1},
            {"op": "BatchNorm", "param": {"eps": "0.001", "fix_gamma": "False"}, "name": "bn1",
             "inputs": [[3, 0], [4, 0], [5, 0]], "backward_source_id": -1},
            {"op": "Activation", "param": {"act_type": "relu"}, "name": "relu1", "inputs": [[6, 0]],
             "backward_source_id": -1},
            {"op": "FullyConnected", "param": {"num_hidden": "10"}, "name": "fc1",
             "inputs": [[7, 0]], "backward_source_id": -1},
        ],
        "arg_nodes": [0, 1, 2, 4, 5],
        "heads": [[8, 0]],
    }
    notes = {}
    for fname, obj in [("legacy", legacy), ("legacy_implicit_inputs", implicit)]:
        p = os.path.join(sdir, fname + ".json")
        with open(p, "w") as fh:
            json.dump(obj, fh, indent=2)
            fh.write("\n")
        try:
            s = mx.sym.load(p)
            with open(os.path.join(sdir, fname + "-upgraded.json"), "w") as fh:
                fh.write(s.tojson())
            notes[fname] = {"loaded": True, "arguments": s.list_arguments(), "aux": s.list_auxiliary_states(),
                            "outputs": s.list_outputs(), "attr_dict": s.attr_dict()}
        except mx.base.MXNetError as e:
            notes[fname] = {"loaded": False, "error": str(e).splitlines()[0]}
            print("MXNet refused", fname, e)
    write_json(os.path.join(sdir, "legacy_notes.json"), notes)


# ---------------------------------------------------------------------------
# verification
# ---------------------------------------------------------------------------

def verify(index):
    ops_dir = os.path.join(OUT, "ops")
    counts = {}
    for e in index:
        d = mx.nd.load(os.path.join(ops_dir, e["case"] + ".params"))
        s = mx.sym.load(os.path.join(ops_dir, e["case"] + ".json"))
        assert set(k[4:] for k in d if k.startswith("arg:")) == set(s.list_arguments()), e["case"]
        assert set(k[4:] for k in d if k.startswith("aux:")) == set(s.list_auxiliary_states()), e["case"]
        nout = sum(1 for k in d if k.startswith("out:"))
        assert nout == len(s.list_outputs()) == len(e["outputs"]), e["case"]
        for k, v in d.items():
            assert np.all(np.isfinite(v.asnumpy().astype(np.float64))), (e["case"], k)
        counts[e["op"]] = counts.get(e["op"], 0) + 1
    print("ops covered (%d cases):" % len(index))
    for op in sorted(counts):
        print("  %-20s %d" % (op, counts[op]))

    x = np.load(os.path.join(OUT, "models", "lenet", "input.npy"))
    y = np.load(os.path.join(OUT, "models", "lenet", "output.npy"))
    sym, argp, auxp = mx.model.load_checkpoint(os.path.join(OUT, "models", "lenet", "lenet"), 0)
    exe = sym.simple_bind(ctx=CTX, grad_req="null", data=x.shape)
    exe.copy_params_from(argp, auxp)
    exe.arg_dict["data"][:] = x
    y2 = exe.forward(is_train=False)[0].asnumpy()
    assert np.allclose(y, y2, atol=1e-6), "lenet reload mismatch"
    print("lenet: output", y.shape, "argmax", y.argmax(1), "reload OK")

    rdir = os.path.join(OUT, "models", "cifar_resnet20_v1")
    g = mx.nd.load(os.path.join(rdir, "cifar_resnet20_v1-gluon.params"))
    e = mx.nd.load(os.path.join(rdir, "cifar_resnet20_v1-0000.params"))
    print("resnet: %d gluon keys (e.g. %s), %d export keys (e.g. %s)" % (
        len(g), sorted(g)[0], len(e), sorted(e)[0]))

    for name in ["mixed", "list", "small", "np_v3"]:
        p = os.path.join(OUT, "io", "params", name + ".params")
        if name == "np_v3":
            from mxnet import npx
            npx.set_np()
            d = npx.load(p)
            npx.reset_np()
        else:
            d = mx.nd.load(p)
        meta = json.load(open(os.path.join(OUT, "io", "params", name + ".json")))
        if isinstance(d, list):
            for a, m in zip(d, meta["arrays"]):
                assert flat_values(a.asnumpy()) == m["values"]
            print("params/%s: list of %d" % (name, len(d)))
        else:
            for k, a in d.items():
                m = meta["arrays"][k]
                assert list(a.shape) == m["shape"] and np.dtype(a.dtype).name == m["dtype"], k
                assert flat_values(a.asnumpy()) == m["values"], k
            print("params/%s: %s" % (name, ", ".join("%s:%s%s" % (k, np.dtype(a.dtype).name, tuple(a.shape))
                                                      for k, a in d.items())))
    vals = json.load(open(os.path.join(OUT, "io", "npy", "values.json")))
    for fn, m in vals.items():
        a = np.load(os.path.join(OUT, "io", "npy", fn))
        assert list(a.shape) == m["shape"] and flat_values(a) == m["values"], fn
    print("npy: %d files OK" % len(vals))

    total = 0
    for p in glob.glob(os.path.join(OUT, "**", "*"), recursive=True):
        if os.path.isfile(p):
            total += os.path.getsize(p)
    print("total fixture size: %.1f KiB" % (total / 1024.0))


def main():
    os.makedirs(OUT, exist_ok=True)
    index = gen_ops()
    gen_lenet()
    gen_cifar_resnet()
    gen_io()
    verify(index)


if __name__ == "__main__":
    main()
