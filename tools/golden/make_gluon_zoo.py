"""Golden files for KilnGluon's CIFAR model zoo, from real MXNet 1.9.1 + gluoncv 0.10.5.post0.

For each of the ten models this builds gluoncv's network, sets its parameters to a deterministic
function of (parameter index k in collect_params order, flat element index i) that Kiln's tests compute
the same way (see `deterministic_values` and Tests/KilnGluonTests/ZooGoldenTests.swift), runs a fixed
(2, 3, 32, 32) input and writes, under Tests/Fixtures/golden/gluon/NAME/:

  input.npy, output.npy     the input and gluoncv's output (unfused MXNet, inference)
  params.json               [[name, shape], ...] in collect_params order
  symbol.json               net(mx.sym.var('data')).tojson()
  NAME.params               gluoncv's save_parameters file (cifar_resnet20_v1/_v2, cifar_resnet56_v1 only)

Weights of the big models (wide ResNets, ResNeXt) are never committed: both sides compute them.

    MXNET_SUBGRAPH_BACKEND=NONE /work/main/.venv-bench-mx/bin/python tools/golden/make_gluon_zoo.py
"""
import importlib.util
import json
import math
import os
import sys

os.environ.setdefault("MXNET_SUBGRAPH_BACKEND", "NONE")
import mxnet as mx  # noqa: E402
import numpy as np  # noqa: E402

ROOT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "Tests", "Fixtures", "golden", "gluon")
MODELS = [
    ("cifarresnet", "cifar_resnet20_v1"), ("cifarresnet", "cifar_resnet56_v1"), ("cifarresnet", "cifar_resnet110_v1"),
    ("cifarresnet", "cifar_resnet20_v2"), ("cifarresnet", "cifar_resnet56_v2"), ("cifarresnet", "cifar_resnet110_v2"),
    ("cifarwideresnet", "cifar_wideresnet16_10"), ("cifarwideresnet", "cifar_wideresnet28_10"),
    ("cifarwideresnet", "cifar_wideresnet40_8"), ("cifarresnext", "cifar_resnext29_16x64d"),
]
SAVE_PARAMS = {"cifar_resnet20_v1", "cifar_resnet20_v2", "cifar_resnet56_v1"}


def load_module(file):
    import mxnet.gluon  # noqa: F401
    for p in sys.path:
        f = os.path.join(p, "gluoncv", "model_zoo", file + ".py")
        if os.path.isfile(f):
            spec = importlib.util.spec_from_file_location("kiln_gluoncv_" + file, f)
            mod = importlib.util.module_from_spec(spec)
            spec.loader.exec_module(mod)
            return mod
    raise RuntimeError(file + ".py not found (pip install --no-deps gluoncv==0.10.5.post0)")


def deterministic_values(name, shape, k):
    """The values both sides give parameter k: a hash of (k, i) in [-1, 1), scaled by kind (float64
    math, then float32). A smooth function such as sin(0.7 i) makes neighbouring filters alike and the
    deep ResNets' activations explode; this hash does not."""
    n = int(np.prod(shape))
    i = np.arange(n, dtype=np.float64)
    t = np.sin(12.9898 * i + 78.233 * k + 0.5) * 43758.5453
    u = 2.0 * (t - np.floor(t)) - 1.0
    if name.endswith("running_var"):
        v = 1.0 + 0.2 * u
    elif name.endswith("gamma"):
        v = 1.0 + 0.1 * u
    elif name.endswith("weight") and len(shape) >= 2:
        fan_in = int(np.prod(shape[1:]))
        v = u * math.sqrt(3.0 / fan_in)
    else:  # bias, beta, running_mean
        v = 0.1 * u
    return v.astype(np.float32).reshape(shape)


def main():
    rng = np.random.RandomState(6)
    x = rng.uniform(-1, 1, size=(2, 3, 32, 32)).astype(np.float32)
    only = set(sys.argv[1:])
    for file, name in MODELS:
        if only and name not in only:
            continue
        mod = load_module(file)
        # A fresh name manager per model: the names of a model built first in a fresh process
        # (cifarresnetv10_, not cifarresnetv11_ for the second ResNet v1 built here).
        with mx.name.NameManager():
            net = getattr(mod, name)(classes=10)
        net.initialize(mx.init.Uniform(0.07))
        net(mx.nd.array(x[:1]))  # resolves deferred shapes
        params = net.collect_params()
        names = []
        for k, (pname, p) in enumerate(params.items()):
            p.set_data(mx.nd.array(deterministic_values(pname, p.shape, k)))
            names.append([pname, list(p.shape)])
        with mx.name.NameManager():
            sym = net(mx.sym.var("data"))
        # Outputs from the exported symbol, bound unfused (hybridize would fuse on some wheels).
        args = {n: p.data() for n, p in params.items()}
        exe = sym.bind(mx.cpu(), args=dict({"data": mx.nd.array(x)}, **{n: a for n, a in args.items() if n in sym.list_arguments()}),
                       aux_states={n: a for n, a in args.items() if n in sym.list_auxiliary_states()}, grad_req="null")
        out = exe.forward(is_train=False)[0].asnumpy()
        imperative = net(mx.nd.array(x)).asnumpy()
        assert np.allclose(out, imperative, rtol=1e-4, atol=1e-4 * np.abs(out).max()), name
        d = os.path.join(ROOT, name)
        os.makedirs(d, exist_ok=True)
        np.save(os.path.join(d, "input.npy"), x)
        np.save(os.path.join(d, "output.npy"), out.astype(np.float32))
        with open(os.path.join(d, "params.json"), "w") as f:
            json.dump(names, f, indent=0)
        with open(os.path.join(d, "symbol.json"), "w") as f:
            f.write(sym.tojson())
        if name in SAVE_PARAMS:
            net.save_parameters(os.path.join(d, name + ".params"))
        print(name, len(names), "parameters", sum(int(np.prod(s)) for _, s in names), "values; output max", np.abs(out).max(), flush=True)


if __name__ == "__main__":
    main()
