#!/usr/bin/env python3
"""Golden fixtures for KilnTrain, from real MXNet 1.9.1.

Writes Tests/Fixtures/golden/train/{optimizers,schedulers,initializers,metrics}.json:

- optimizers: a few steps of SGD, NAG and Adam on fixed weights and gradients (update_multi_precision,
  as mx.mod.Module's updater calls it), with the weights after every step. One case takes lr_mult and
  wd_mult from a symbol's `__lr_mult__`/`__wd_mult__` attributes, as Module does.
- schedulers: the learning rate of Factor, MultiFactor and Cosine schedulers (with and without
  warm-up) at update counts 1, 2, ... called in order, as the optimizer calls them.
- initializers: the bound (uniform) or standard deviation (gaussian) that Xavier and MSRAPrelu pass to
  the random generator for given weight shapes, captured by replacing mxnet.initializer.random; and
  the `__init__` attribute strings that mx.sym.Variable(init=...) writes.
- metrics: Accuracy, TopKAccuracy and CrossEntropy on small hand-made batches.
- module: mx.mod.Module.fit of FullyConnected + SoftmaxOutput for 2 epochs on 10 examples in batches of
  4 (NDArrayIter pads the last batch from the start), from given weights, with the parameters after
  each epoch; and a network with BatchNorm, whose moving statistics are recorded too. MXNet's own
  metrics count padded rows; Kiln's skip them, so only parameters are compared.

Run with the MXNet 1.9.1 venv and MXNET_SUBGRAPH_BACKEND=NONE:

    MXNET_SUBGRAPH_BACKEND=NONE /tmp/mxvenv/bin/python tools/golden/make_golden_train.py

Everything is deterministic (fixed numpy seeds; no MXNet random draw is recorded).
"""
import json
import os
import sys

if os.environ.get("MXNET_SUBGRAPH_BACKEND", "") != "NONE":
    sys.exit("make_golden_train.py: set MXNET_SUBGRAPH_BACKEND=NONE")

import numpy as np
import mxnet as mx

REPO = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))
OUT = os.path.join(REPO, "Tests", "Fixtures", "golden", "train")


def write_json(name, obj):
    os.makedirs(OUT, exist_ok=True)
    with open(os.path.join(OUT, name), "w") as f:
        json.dump(obj, f, indent=1)
        f.write("\n")


def floats(a):
    return [float(x) for x in np.asarray(a, dtype=np.float32).reshape(-1)]


# ---------------------------------------------------------------------------
# Optimizers
# ---------------------------------------------------------------------------

def optimizer_case(name, opt_name, kwargs, shapes, steps, attrs=None, seed=0):
    """Runs `steps` updates of every parameter in `shapes` (name -> shape) and records the weights."""
    rs = np.random.RandomState(seed)
    names = list(shapes)
    idx2name = dict(enumerate(names))
    sym = None
    if attrs:
        variables = [mx.sym.Variable(n, attr=attrs.get(n, {})) for n in names]
        sym = mx.sym.Group(variables)
    opt = mx.optimizer.create(opt_name, param_idx2name=idx2name, sym=sym, **kwargs)
    weights = {n: mx.nd.array(rs.uniform(-1, 1, shapes[n]).astype(np.float32)) for n in names}
    initial = {n: floats(weights[n].asnumpy()) for n in names}
    states = {i: opt.create_state_multi_precision(i, weights[n]) for i, n in idx2name.items()}
    grads_per_step, weights_per_step = [], []
    for _ in range(steps):
        grads = {n: rs.uniform(-2, 2, shapes[n]).astype(np.float32) for n in names}
        for i, n in idx2name.items():
            opt.update_multi_precision(i, weights[n], mx.nd.array(grads[n]), states[i])
        grads_per_step.append({n: floats(grads[n]) for n in names})
        weights_per_step.append({n: floats(weights[n].asnumpy()) for n in names})
    return {
        "name": name, "optimizer": opt_name, "kwargs": kwargs,
        "names": names, "shapes": {n: list(shapes[n]) for n in names},
        "attributes": attrs or {},
        "initial": initial, "gradients": grads_per_step, "weights": weights_per_step,
    }


def make_optimizers():
    cases = [
        optimizer_case("sgd_momentum_wd_clip", "sgd",
                       {"learning_rate": 0.1, "momentum": 0.9, "wd": 0.01, "rescale_grad": 0.5,
                        "clip_gradient": 0.3},
                       {"fc_weight": (2, 3)}, 3, seed=1),
        optimizer_case("sgd_plain_wd", "sgd",
                       {"learning_rate": 0.05, "wd": 0.1},
                       {"fc_weight": (4,)}, 3, seed=2),
        optimizer_case("sgd_multipliers", "sgd",
                       {"learning_rate": 0.1, "momentum": 0.5, "wd": 0.1},
                       {"fc_weight": (2, 2), "fc_bias": (2,), "other_weight": (3,)}, 2,
                       attrs={"fc_weight": {"__lr_mult__": "2"}, "other_weight": {"__wd_mult__": "3"}},
                       seed=3),
        optimizer_case("sgd_factor_scheduler", "sgd",
                       {"learning_rate": 0.2, "momentum": 0.9,
                        "lr_scheduler": mx.lr_scheduler.FactorScheduler(step=2, factor=0.5)},
                       {"fc_weight": (3,)}, 5, seed=4),
        optimizer_case("nag_momentum_wd_clip", "nag",
                       {"learning_rate": 0.1, "momentum": 0.9, "wd": 0.01, "rescale_grad": 0.5,
                        "clip_gradient": 0.4},
                       {"fc_weight": (2, 3)}, 3, seed=5),
        optimizer_case("nag_no_momentum", "nag",
                       {"learning_rate": 0.1, "wd": 0.02},
                       {"fc_weight": (4,)}, 2, seed=6),
        optimizer_case("adam_default", "adam",
                       {"learning_rate": 0.01},
                       {"fc_weight": (2, 3)}, 3, seed=7),
        optimizer_case("adam_wd_clip_rescale", "adam",
                       {"learning_rate": 0.02, "beta1": 0.8, "beta2": 0.99, "epsilon": 1e-6,
                        "wd": 0.05, "rescale_grad": 0.25, "clip_gradient": 0.2},
                       {"fc_weight": (5,)}, 3, seed=8),
    ]
    for c in cases:
        # JSON cannot hold the scheduler object; describe it instead.
        if "lr_scheduler" in c["kwargs"]:
            c["kwargs"] = dict(c["kwargs"])
            c["kwargs"]["lr_scheduler"] = {"kind": "factor", "step": 2, "factor": 0.5}
    write_json("optimizers.json", {"cases": cases})


# ---------------------------------------------------------------------------
# Schedulers
# ---------------------------------------------------------------------------

def make_schedulers():
    S = mx.lr_scheduler
    specs = [
        ("factor", {"step": 3, "factor": 0.5, "base_lr": 0.1}),
        ("factor", {"step": 2, "factor": 0.1, "stop_factor_lr": 1e-4, "base_lr": 0.1}),
        ("factor", {"step": 3, "factor": 0.5, "base_lr": 0.1, "warmup_steps": 4, "warmup_begin_lr": 0.01}),
        ("factor", {"step": 3, "factor": 0.5, "base_lr": 0.1, "warmup_steps": 4, "warmup_begin_lr": 0.02,
                    "warmup_mode": "constant"}),
        ("multifactor", {"step": [3, 7, 10], "factor": 0.5, "base_lr": 1.0}),
        ("multifactor", {"step": [5, 8], "factor": 0.1, "base_lr": 0.5, "warmup_steps": 3,
                         "warmup_begin_lr": 0.1}),
        ("cosine", {"max_update": 12, "base_lr": 0.1}),
        ("cosine", {"max_update": 12, "base_lr": 0.1, "final_lr": 0.01, "warmup_steps": 4,
                    "warmup_begin_lr": 0.001}),
    ]
    cases = []
    for kind, kwargs in specs:
        cls = {"factor": S.FactorScheduler, "multifactor": S.MultiFactorScheduler,
               "cosine": S.CosineScheduler}[kind]
        sched = cls(**kwargs)
        updates = list(range(0, 17))
        cases.append({"kind": kind, "kwargs": kwargs, "updates": updates,
                      "learning_rates": [float(sched(u)) for u in updates]})
    write_json("schedulers.json", {"cases": cases})


# ---------------------------------------------------------------------------
# Initializers
# ---------------------------------------------------------------------------

class _Recorder:
    """Stands in for mxnet.initializer.random: records what the initializer asks for."""
    def __init__(self):
        self.calls = []

    def uniform(self, low, high, shape, out=None):
        self.calls.append(("uniform", float(low), float(high)))

    def normal(self, loc, scale, shape, out=None):
        self.calls.append(("gaussian", float(loc), float(scale)))


def make_initializers():
    import mxnet.initializer as init_module
    real_random = init_module.random
    rec = _Recorder()
    init_module.random = rec
    cases = []
    try:
        specs = [
            ("xavier", {}),
            ("xavier", {"rnd_type": "gaussian", "factor_type": "in", "magnitude": 2}),
            ("xavier", {"rnd_type": "uniform", "factor_type": "out", "magnitude": 6}),
            ("msraprelu", {}),
            ("msraprelu", {"factor_type": "in", "slope": 0.0}),
            ("uniform", {"scale": 0.5}),
            ("normal", {"sigma": 0.2}),
        ]
        shapes = [(10, 20), (16, 3, 5, 5), (8, 4, 3), (7, 9, 2, 3, 2)]
        for kind, kwargs in specs:
            init = mx.init.create(kind, **kwargs)
            for shape in shapes:
                rec.calls = []
                init(mx.init.InitDesc("w_weight"), mx.nd.zeros(shape))
                dist, a, b = rec.calls[0]
                cases.append({"kind": kind, "kwargs": kwargs, "shape": list(shape),
                              "distribution": dist,
                              # uniform: the range [low, high]; gaussian: mean and standard deviation
                              "parameters": [a, b]})
    finally:
        init_module.random = real_random
    attributes = {}
    for label, init in [("zero", mx.init.Zero()), ("one", mx.init.One()),
                        ("constant", mx.init.Constant(0.25)),
                        ("xavier", mx.init.Xavier(rnd_type="gaussian", factor_type="in", magnitude=2.34)),
                        ("uniform", mx.init.Uniform(0.3)), ("normal", mx.init.Normal(0.5)),
                        ("msraprelu", mx.init.MSRAPrelu(slope=0.1))]:
        attributes[label] = mx.sym.Variable("v", init=init).attr_dict()["v"]["__init__"]
    bn = mx.sym.BatchNorm(mx.sym.Variable("data"), name="bn").attr_dict()
    attributes["batchnorm_moving_mean"] = bn["bn_moving_mean"]["__init__"]
    attributes["batchnorm_moving_var"] = bn["bn_moving_var"]["__init__"]
    write_json("initializers.json", {"cases": cases, "init_attributes": attributes})


# ---------------------------------------------------------------------------
# Metrics
# ---------------------------------------------------------------------------

def make_metrics():
    rs = np.random.RandomState(11)
    batches = []
    for n, c in [(6, 4), (5, 4), (3, 4)]:
        logits = rs.uniform(0, 1, (n, c)).astype(np.float32)
        probs = logits / logits.sum(axis=1, keepdims=True)
        labels = rs.randint(0, c, n).astype(np.float32)
        batches.append({"labels": floats(labels), "predictions": floats(probs), "shape": [n, c]})
    cases = []
    for name, metric in [("acc", mx.metric.Accuracy()), ("top_k_accuracy_2", mx.metric.TopKAccuracy(top_k=2)),
                         ("top_k_accuracy_3", mx.metric.TopKAccuracy(top_k=3)),
                         ("ce", mx.metric.CrossEntropy())]:
        after = []
        for b in batches:
            metric.update([mx.nd.array(b["labels"])],
                          [mx.nd.array(np.array(b["predictions"], dtype=np.float32).reshape(b["shape"]))])
            n, v = metric.get()
            after.append(float(v))
        cases.append({"metric": name, "name": metric.get()[0], "values_after_each_batch": after})
    write_json("metrics.json", {"batches": batches, "cases": cases})


# ---------------------------------------------------------------------------
# Module.fit
# ---------------------------------------------------------------------------

def make_module():
    rs = np.random.RandomState(21)
    data = rs.normal(size=(10, 4)).astype(np.float32)
    label = rs.randint(0, 3, 10).astype(np.float32)
    init = {"fc_weight": rs.uniform(-0.5, 0.5, (3, 4)).astype(np.float32),
            "fc_bias": rs.uniform(-0.1, 0.1, (3,)).astype(np.float32)}
    cases = []
    for name, opt, params in [
        ("sgd_momentum_wd", "sgd", {"learning_rate": 0.1, "momentum": 0.9, "wd": 0.01}),
        ("nag_clip", "nag", {"learning_rate": 0.2, "momentum": 0.5, "clip_gradient": 0.1}),
        ("adam_wd", "adam", {"learning_rate": 0.05, "wd": 0.1}),
    ]:
        it = mx.io.NDArrayIter(data, label, batch_size=4, last_batch_handle="pad", label_name="softmax_label")
        fc = mx.sym.FullyConnected(mx.sym.Variable("data"), num_hidden=3, name="fc")
        sym = mx.sym.SoftmaxOutput(fc, mx.sym.Variable("softmax_label"), name="softmax")
        mod = mx.mod.Module(sym, data_names=["data"], label_names=["softmax_label"], context=mx.cpu())
        after = []

        def record(epoch, symbol, arg, aux):
            after.append({k: floats(v.asnumpy()) for k, v in arg.items()})
        mod.fit(it, num_epoch=2, optimizer=opt, optimizer_params=params,
                arg_params={k: mx.nd.array(v) for k, v in init.items()}, epoch_end_callback=record)
        cases.append({"name": name, "optimizer": opt, "kwargs": params, "params_after_epoch": after})
    # FullyConnected -> BatchNorm (fix_gamma False) -> relu -> FullyConnected -> SoftmaxOutput, so that
    # the moving statistics (auxiliary states) move during fit.
    bn_init = {"fc1_weight": rs.uniform(-0.5, 0.5, (5, 4)).astype(np.float32),
               "fc1_bias": rs.uniform(-0.1, 0.1, (5,)).astype(np.float32),
               "bn_gamma": rs.uniform(0.8, 1.2, (5,)).astype(np.float32),
               "bn_beta": rs.uniform(-0.1, 0.1, (5,)).astype(np.float32),
               "fc2_weight": rs.uniform(-0.5, 0.5, (3, 5)).astype(np.float32),
               "fc2_bias": rs.uniform(-0.1, 0.1, (3,)).astype(np.float32)}
    bn_aux = {"bn_moving_mean": np.zeros(5, np.float32), "bn_moving_var": np.ones(5, np.float32)}
    it = mx.io.NDArrayIter(data, label, batch_size=4, last_batch_handle="pad", label_name="softmax_label")
    h = mx.sym.FullyConnected(mx.sym.Variable("data"), num_hidden=5, name="fc1")
    h = mx.sym.BatchNorm(h, fix_gamma=False, momentum=0.8, name="bn")
    h = mx.sym.Activation(h, act_type="relu", name="relu")
    h = mx.sym.FullyConnected(h, num_hidden=3, name="fc2")
    sym = mx.sym.SoftmaxOutput(h, mx.sym.Variable("softmax_label"), name="softmax")
    mod = mx.mod.Module(sym, data_names=["data"], label_names=["softmax_label"], context=mx.cpu())
    bn_after = []

    def record_bn(epoch, symbol, arg, aux):
        bn_after.append({"arg": {k: floats(v.asnumpy()) for k, v in arg.items()},
                         "aux": {k: floats(v.asnumpy()) for k, v in aux.items()}})
    mod.fit(it, num_epoch=2, optimizer="sgd", optimizer_params={"learning_rate": 0.1, "momentum": 0.9, "wd": 0.01},
            arg_params={k: mx.nd.array(v) for k, v in bn_init.items()},
            aux_params={k: mx.nd.array(v) for k, v in bn_aux.items()}, epoch_end_callback=record_bn)
    batchnorm = {"initial": {k: floats(v) for k, v in bn_init.items()},
                 "initial_aux": {k: floats(v) for k, v in bn_aux.items()},
                 "shapes": {k: list(v.shape) for k, v in list(bn_init.items()) + list(bn_aux.items())},
                 "after_epoch": bn_after}
    write_json("module.json", {
        "data": floats(data), "data_shape": list(data.shape), "label": floats(label), "batch_size": 4,
        "initial": {k: floats(v) for k, v in init.items()}, "cases": cases, "batchnorm": batchnorm})


if __name__ == "__main__":
    make_optimizers()
    make_schedulers()
    make_initializers()
    make_metrics()
    make_module()
    print("wrote", OUT)
