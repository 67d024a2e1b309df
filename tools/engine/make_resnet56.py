"""Exports gluoncv's cifar_resnet56_v1 with random weights for the engine's benchmark.

Usage: /tmp/mxvenv/bin/python tools/engine/make_resnet56.py OUTDIR [BATCH]
Writes OUTDIR/cifar_resnet56_v1-symbol.json, -0000.params, input.npy and MXNet's output.npy
(unfused MXNet: MXNET_SUBGRAPH_BACKEND=NONE, see shared NOTES). Weights are Xavier with BatchNorm
statistics drawn as in tools/golden/make_golden.py, so activations stay in range.
"""
import importlib.util
import os
import sys

os.environ.setdefault("MXNET_SUBGRAPH_BACKEND", "NONE")
import mxnet as mx  # noqa: E402
import numpy as np  # noqa: E402


def load_cifarresnet_module():
    import mxnet.gluon  # noqa: F401
    for p in sys.path:
        f = os.path.join(p, "gluoncv", "model_zoo", "cifarresnet.py")
        if os.path.isfile(f):
            spec = importlib.util.spec_from_file_location("kiln_gluoncv_cifarresnet", f)
            mod = importlib.util.module_from_spec(spec)
            spec.loader.exec_module(mod)
            return mod
    raise RuntimeError("gluoncv/model_zoo/cifarresnet.py not found (pip install --no-deps gluoncv==0.10.5.post0)")


def main():
    outdir = sys.argv[1]
    batch = int(sys.argv[2]) if len(sys.argv) > 2 else 16
    os.makedirs(outdir, exist_ok=True)
    mod = load_cifarresnet_module()
    mx.random.seed(56)
    net = mod.cifar_resnet56_v1(classes=10)
    net.initialize(mx.init.Xavier(magnitude=2.0))
    rng = np.random.RandomState(56)
    x = rng.standard_normal((batch, 3, 32, 32)).astype(np.float32)
    net(mx.nd.array(x))
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
    net.hybridize()
    out = net(mx.nd.array(x)).asnumpy()
    prefix = os.path.join(outdir, "cifar_resnet56_v1")
    net.export(prefix, epoch=0)
    np.save(os.path.join(outdir, "input.npy"), x)
    np.save(os.path.join(outdir, "output.npy"), out.astype(np.float32))
    print("wrote", prefix, "output", out.shape)


if __name__ == "__main__":
    main()
