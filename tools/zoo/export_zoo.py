#!/usr/bin/env python3
"""Exports the zoo of tools/zoo/models.py from real MXNet 1.9.1 (+ gluoncv) with random weights.

For each model, under OUT/NAME/:
  NAME-symbol.json, NAME-0000.params   net.export(), as MXNet users deploy it
  input.npy                            a fixed input of shape (1, C, H, W), standard normal
  mxnet_outK.npy                       MXNet's output K for it (unfused CPU, inference)
  meta.json                            kind, input shape, output names, MXNet's median forward time

Weights are a deterministic function of each parameter's name (numpy RandomState seeded from a
CRC32 of it), so the files are the same on every machine:
  conv/dense weights  He-normal (variance-preserving through ReLU nets)
  biases, beta        uniform(-0.1, 0.1)     non-zero, so a dropped bias shows
  gamma               uniform(0.5, 1.5)
  running_mean        normal(0, 0.1)         BatchNorm statistics away from identity, so a
  running_var         uniform(0.5, 2.0)      wrong or skipped normalisation shows
Nothing here is committed: `make zoo-check` regenerates it (large models are never committed).

    MXNET_SUBGRAPH_BACKEND=NONE .venv-golden/bin/python tools/zoo/export_zoo.py --out out/zoo [--models a,b]
"""
import argparse
import json
import os
import sys
import time
import traceback
import zlib

os.environ.setdefault("MXNET_SUBGRAPH_BACKEND", "NONE")
os.environ.setdefault("OMP_NUM_THREADS", "2")
import numpy as np  # noqa: E402
import mxnet as mx  # noqa: E402

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from models import MODELS, QUICK  # noqa: E402


def rng_for(name):
    return np.random.RandomState(zlib.crc32(name.encode("utf-8")) & 0x7FFFFFFF)


def random_value(name, shape):
    rng = rng_for(name)
    leaf = name.rsplit("_", 1)[-1]
    if name.endswith("running_mean") or name.endswith("moving_mean"):
        return rng.normal(0, 0.1, shape)
    if name.endswith("running_var") or name.endswith("moving_var"):
        return rng.uniform(0.5, 2.0, shape)
    if leaf == "gamma":
        return rng.uniform(0.5, 1.5, shape)
    if leaf in ("beta", "bias"):
        return rng.uniform(-0.1, 0.1, shape)
    if len(shape) >= 2:
        fan_in = int(np.prod(shape[1:]))
        return rng.normal(0, np.sqrt(2.0 / max(fan_in, 1)), shape)
    # PReLU slopes and other vectors
    return rng.uniform(0.1, 0.3, shape)


def build(name, source, kwargs):
    if source == "vision":
        from mxnet.gluon.model_zoo import vision
        return vision.get_model(name, pretrained=False, **kwargs)
    from gluoncv import model_zoo
    return model_zoo.get_model(name, pretrained=False, **kwargs)


def export_one(entry, out_root, repeats):
    name, source, kind, chw, kwargs = entry
    folder = os.path.join(out_root, name)
    os.makedirs(folder, exist_ok=True)
    net = build(name, source, dict(kwargs))
    x = mx.nd.array(rng_for("input:" + name).standard_normal((1,) + tuple(chw)).astype(np.float32))
    net.initialize(mx.init.Zero(), force_reinit=True)
    net.hybridize(static_alloc=False)
    net(x)  # finishes deferred initialisation; the values are replaced below
    for pname, p in net.collect_params().items():
        if p.shape is None or any(d == 0 for d in p.shape):
            continue
        p.set_data(mx.nd.array(random_value(pname, p.shape).astype(np.float32)))
    outs = net(x)
    outs = list(outs) if isinstance(outs, (list, tuple)) else [outs]
    mx.nd.waitall()
    times = []
    for _ in range(repeats):
        t = time.perf_counter()
        o = net(x)
        (o[0] if isinstance(o, (list, tuple)) else o).wait_to_read()
        mx.nd.waitall()
        times.append((time.perf_counter() - t) * 1000)
    prefix = os.path.join(folder, name)
    net.export(prefix, epoch=0)
    np.save(os.path.join(folder, "input.npy"), x.asnumpy())
    for k, o in enumerate(outs):
        np.save(os.path.join(folder, "mxnet_out%d.npy" % k), o.asnumpy())
    sym = mx.sym.load(prefix + "-symbol.json")
    ops = sorted({n["op"] for n in json.loads(sym.tojson())["nodes"] if n["op"] != "null"})
    meta = {
        "name": name, "source": source, "kind": kind, "input": [1] + list(chw),
        "outputs": [{"name": n, "shape": list(o.shape), "dtype": np.dtype(o.dtype).name} for n, o in zip(sym.list_outputs(), outs)],
        "ops": ops,
        "mxnet_ms": sorted(times)[len(times) // 2] if times else None,
    }
    with open(os.path.join(folder, "meta.json"), "w") as f:
        json.dump(meta, f, indent=1)
    return meta


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--out", default="out/zoo")
    ap.add_argument("--models", help="comma-separated names (default: all); 'quick' for the CI subset")
    ap.add_argument("--repeats", type=int, default=5, help="timed MXNet forwards per model")
    ap.add_argument("--force", action="store_true", help="export again even where meta.json exists")
    a = ap.parse_args()
    wanted = None
    if a.models == "quick":
        wanted = set(QUICK)
    elif a.models:
        wanted = set(a.models.split(","))
        unknown = wanted - {m[0] for m in MODELS}
        if unknown:
            sys.exit("export_zoo.py: unknown models %s; tools/zoo/models.py lists the zoo" % ", ".join(sorted(unknown)))
    failed = []
    for entry in MODELS:
        if wanted is not None and entry[0] not in wanted:
            continue
        if not a.force and os.path.exists(os.path.join(a.out, entry[0], "meta.json")):
            print("%-32s exported before (--force to redo)" % entry[0], flush=True)
            continue
        t = time.time()
        try:
            meta = export_one(entry, a.out, a.repeats)
            print("%-32s %d outputs, %d ops, MXNet %.1f ms, %.1f s" % (entry[0], len(meta["outputs"]), len(meta["ops"]),
                                                                     meta["mxnet_ms"] or 0, time.time() - t), flush=True)
        except Exception as e:  # one model's failure must not hide the others
            failed.append(entry[0])
            print("%-32s FAILED to export: %s" % (entry[0], str(e).splitlines()[0][:300]), flush=True)
            traceback.print_exc(limit=3)
    if failed:
        print("export failed for: " + ", ".join(failed))
        sys.exit(1)


if __name__ == "__main__":
    main()
