"""Builds the benchmark's models: gluoncv's cifar_resnet20_v1, cifar_resnet56_v1 and cifar_resnet110_v1
with random weights (fixed seed) and non-trivial BatchNorm statistics, exported for MXNet and ONNX.

Usage: .venv-bench-mx/bin/python tools/bench/make_models.py [OUTDIR] [--force]

Writes, for each NAME, into OUTDIR (default bench/models, git-ignored):
  NAME-symbol.json, NAME-0000.params   MXNet checkpoint (what Kiln and MXNet load)
  NAME.onnx                            the same graph for ONNX Runtime and OpenVINO, batch dynamic
  NAME-input.npy, NAME-output.npy      a batch of 2 and unfused MXNet's output, to check the runtimes
Existing files are kept unless --force is given.

The weights are random: the benchmark measures speed, not accuracy. gluoncv's model definition is
loaded from the installed package's model_zoo/cifarresnet.py alone, because `import gluoncv` needs
many packages the benchmark does not.
"""
import importlib.util
import os
import sys

# Unfused MXNet for the reference outputs (the fused path was seen to give wrong answers: NOTES.md).
os.environ.setdefault("MXNET_SUBGRAPH_BACKEND", "NONE")
import mxnet as mx  # noqa: E402
import numpy as np  # noqa: E402

MODELS = {"cifar_resnet20_v1": 20, "cifar_resnet56_v1": 56, "cifar_resnet110_v1": 110}


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


def check_batchnorm(symbol_file):
    """MXNet's ONNX exporter ignores BatchNorm's fix_gamma (NOTES.md): with fix_gamma=True MXNet reads
    gamma as 1 but the ONNX model would use the stored gamma. gluon's BatchNorm writes fix_gamma=False
    (scale=True, gluoncv's default); make sure, so that both files mean the same model."""
    import json
    with open(symbol_file) as f:
        nodes = json.load(f)["nodes"]
    bad = [n["name"] for n in nodes if n["op"] == "BatchNorm"
           and n.get("attrs", {}).get("fix_gamma", "True").lower() not in ("false", "0")]
    if bad:
        raise RuntimeError(f"{symbol_file}: BatchNorm with fix_gamma=True ({', '.join(bad[:3])}); "
                           "the ONNX export would differ from the MXNet model")
    return sum(1 for n in nodes if n["op"] == "BatchNorm")


def build(mod, name, seed, outdir):
    mx.random.seed(seed)
    net = getattr(mod, name)(classes=10)
    net.initialize(mx.init.Xavier(magnitude=2.0))
    rng = np.random.RandomState(seed)
    x = rng.standard_normal((2, 3, 32, 32)).astype(np.float32)
    net(mx.nd.array(x))  # materialise deferred shapes
    for pname, p in sorted(net.collect_params().items()):
        shape = p.shape
        if pname.endswith("running_mean"):
            p.set_data(mx.nd.array((0.2 * rng.standard_normal(shape)).astype(np.float32)))
        elif pname.endswith("running_var"):
            p.set_data(mx.nd.array(rng.uniform(0.5, 1.5, size=shape).astype(np.float32)))
        elif pname.endswith("gamma"):
            p.set_data(mx.nd.array(rng.uniform(0.6, 1.4, size=shape).astype(np.float32)))
        elif pname.endswith("beta"):
            p.set_data(mx.nd.array((0.1 * rng.standard_normal(shape)).astype(np.float32)))
        elif pname.endswith("bias"):
            p.set_data(mx.nd.array((0.05 * rng.standard_normal(shape)).astype(np.float32)))
    net.hybridize()
    out = net(mx.nd.array(x)).asnumpy()
    prefix = os.path.join(outdir, name)
    net.export(prefix, epoch=0)
    bns = check_batchnorm(prefix + "-symbol.json")
    np.save(prefix + "-input.npy", x)
    np.save(prefix + "-output.npy", out.astype(np.float32))
    # The exported checkpoint must reproduce the network's output.
    sb = mx.gluon.nn.SymbolBlock.imports(prefix + "-symbol.json", ["data"], prefix + "-0000.params")
    again = sb(mx.nd.array(x)).asnumpy()
    if not np.allclose(out, again, rtol=1e-5, atol=1e-5):
        raise RuntimeError(f"{prefix}: the exported checkpoint does not reproduce the output")
    mx.onnx.export_model(prefix + "-symbol.json", prefix + "-0000.params", in_shapes=[(1, 3, 32, 32)],
                         in_types=[np.float32], onnx_file_path=prefix + ".onnx",
                         dynamic=True, dynamic_input_shapes=[(None, 3, 32, 32)])
    import onnx
    onnx.checker.check_model(onnx.load(prefix + ".onnx"))
    print(f"{name}: wrote {prefix}-symbol.json, -0000.params, .onnx ({bns} BatchNorm, all fix_gamma=False); "
          f"output {out.shape}, max |y| {np.abs(out).max():.4g}")


def main():
    args = [a for a in sys.argv[1:] if not a.startswith("--")]
    force = "--force" in sys.argv
    outdir = args[0] if args else "bench/models"
    os.makedirs(outdir, exist_ok=True)
    mod = None
    for name, seed in MODELS.items():
        prefix = os.path.join(outdir, name)
        files = [prefix + s for s in ("-symbol.json", "-0000.params", ".onnx", "-input.npy", "-output.npy")]
        if not force and all(os.path.isfile(f) for f in files):
            print(f"{name}: present in {outdir} (--force to rebuild)")
            continue
        mod = mod or load_cifarresnet_module()
        build(mod, name, seed, outdir)


if __name__ == "__main__":
    main()
