"""Times one peer runtime on one model and batch, as `kiln bench` does, and prints the same JSON line.

Usage:
  .venv-bench-mx/bin/python    tools/bench/peers.py --runtime mxnet|mxnet-fused       --model NAME --batch 16 [...]
  .venv-bench-peers/bin/python tools/bench/peers.py --runtime onnxruntime|openvino-fp32|openvino-default --model NAME --batch 16 [...]
Options: --models-dir bench/models, --seconds 3, --warmup 3, --input F.npy, --output F.npy, --json.

  mxnet             MXNet 1.9.1 symbol API, simple_bind on CPU (oneDNN op by op), MXNET_SUBGRAPH_BACKEND=NONE
  mxnet-fused       the same with MXNET_SUBGRAPH_BACKEND=MKLDNN (oneDNN subgraph fusion)
  onnxruntime       NAME.onnx, default CPU execution provider, ORT_ENABLE_ALL graph optimizations
  openvino-fp32     NAME.onnx reshaped to the batch, compile_model on CPU, PERFORMANCE_HINT=LATENCY,
                    INFERENCE_PRECISION_HINT=f32, one synchronous infer request
  openvino-default  the same with OpenVINO's default precision hint (bf16 on CPUs with AVX512_BF16)

first_result_s is measured from before the runtime's module is imported (its libraries load then),
through loading and compiling the model, to the end of the first inference. The Python interpreter's
own start and numpy are not counted; peak_rss_mb (VmHWM) includes them.
"""
import argparse
import json
import os
import sys
import time

RUNTIMES = ["mxnet", "mxnet-fused", "onnxruntime", "openvino-fp32", "openvino-default"]


def peak_rss_mb():
    try:
        with open("/proc/self/status") as f:
            for line in f:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) / 1024.0
    except OSError:
        pass
    return 0.0


def percentile(sorted_values, q):
    """Nearest rank, as `kiln bench`: the p99 of few samples is the largest."""
    import math
    if not sorted_values:
        return 0.0
    rank = int(math.ceil(q * len(sorted_values))) - 1
    return sorted_values[min(max(rank, 0), len(sorted_values) - 1)]


def prepare_mxnet(args, prefix, x, fused):
    # Must be set before mxnet loads: it is read when binding.
    os.environ["MXNET_SUBGRAPH_BACKEND"] = "MKLDNN" if fused else "NONE"
    import mxnet as mx
    sym = mx.sym.load(prefix + "-symbol.json")
    loaded = mx.nd.load(prefix + "-0000.params")
    arg_params = {k[4:]: v for k, v in loaded.items() if k.startswith("arg:")}
    aux_params = {k[4:]: v for k, v in loaded.items() if k.startswith("aux:")}
    exe = sym.simple_bind(ctx=mx.cpu(), grad_req="null", data=x.shape)
    exe.copy_params_from(arg_params, aux_params, allow_extra_params=True)
    exe.arg_dict["data"][:] = x

    def run():
        exe.forward(is_train=False)
        return exe.outputs[0].asnumpy()   # waits for MXNet's asynchronous engine
    info = {"version": mx.__version__, "subgraph_backend": os.environ["MXNET_SUBGRAPH_BACKEND"]}
    return run, info


def prepare_onnxruntime(args, prefix, x):
    import onnxruntime as ort
    so = ort.SessionOptions()
    so.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    sess = ort.InferenceSession(prefix + ".onnx", sess_options=so, providers=["CPUExecutionProvider"])
    name = sess.get_inputs()[0].name

    def run():
        return sess.run(None, {name: x})[0]
    return run, {"version": ort.__version__, "providers": sess.get_providers()}


def prepare_openvino(args, prefix, x, fp32):
    import openvino as ov
    core = ov.Core()
    model = core.read_model(prefix + ".onnx")
    # Static shapes, as Kiln binds them: the ONNX file's batch is dynamic.
    model.reshape({model.inputs[0].get_any_name(): list(x.shape)})
    config = {"PERFORMANCE_HINT": "LATENCY"}
    if fp32:
        config["INFERENCE_PRECISION_HINT"] = "f32"
    compiled = core.compile_model(model, "CPU", config)
    request = compiled.create_infer_request()

    def run():
        request.infer({0: x})
        return request.get_output_tensor(0).data
    info = {"version": ov.__version__}
    for prop in ("INFERENCE_PRECISION_HINT", "INFERENCE_NUM_THREADS", "NUM_STREAMS"):
        try:
            info[prop.lower()] = str(compiled.get_property(prop))   # e.g. "<Type: 'bfloat16'>"
        except Exception:  # noqa: BLE001 (a property this version does not have)
            pass
    return run, info


def main():
    start = time.perf_counter()
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--runtime", required=True, choices=RUNTIMES)
    p.add_argument("--model", required=True, help="e.g. cifar_resnet20_v1")
    p.add_argument("--models-dir", default="bench/models")
    p.add_argument("--batch", type=int, default=16)
    p.add_argument("--seconds", type=float, default=3.0)
    p.add_argument("--warmup", type=int, default=3)
    p.add_argument("--input", help="a .npy input instead of seeded random data")
    p.add_argument("--output", help="write output 0 of the first inference to this .npy file")
    p.add_argument("--json", action="store_true")
    args = p.parse_args()

    import numpy as np
    if args.input:
        x = np.load(args.input).astype(np.float32)
        args.batch = x.shape[0]
    else:
        x = np.random.default_rng(20240605).standard_normal((args.batch, 3, 32, 32)).astype(np.float32)
    x = np.ascontiguousarray(x)
    prefix = os.path.join(args.models_dir, args.model)
    first_start = time.perf_counter()
    if args.runtime in ("mxnet", "mxnet-fused"):
        run, info = prepare_mxnet(args, prefix, x, fused=args.runtime == "mxnet-fused")
        precision = "fp32"
    elif args.runtime == "onnxruntime":
        run, info = prepare_onnxruntime(args, prefix, x)
        precision = "fp32"
    else:
        run, info = prepare_openvino(args, prefix, x, fp32=args.runtime == "openvino-fp32")
        hint = info.get("inference_precision_hint", "")
        precision = next((short for name, short in (("bfloat16", "bf16"), ("float32", "fp32"), ("float16", "fp16"))
                          if name in hint), hint or "default")
    y = run()
    first_result = time.perf_counter() - first_start
    if args.output:
        np.save(args.output, np.array(y, dtype=np.float32))

    for _ in range(args.warmup):
        run()
    latencies = []
    timed = time.perf_counter()
    while len(latencies) < 3 or time.perf_counter() - timed < args.seconds:
        t = time.perf_counter()
        run()
        latencies.append(time.perf_counter() - t)
    wall = time.perf_counter() - timed
    lat = sorted(latencies)
    threads = os.environ.get("OMP_NUM_THREADS")
    result = {
        "runtime": args.runtime, "model": args.model, "batch": args.batch, "engine": args.runtime,
        "precision": precision, "images_per_s": args.batch * len(latencies) / wall,
        "latency_ms_p50": percentile(lat, 0.50) * 1000, "latency_ms_p99": percentile(lat, 0.99) * 1000,
        "latency_ms_mean": wall / len(latencies) * 1000,
        "first_result_s": first_result, "peak_rss_mb": peak_rss_mb(), "iterations": len(latencies),
        "seconds": wall, "threads": int(threads) if threads and threads.isdigit() else os.cpu_count(),
        "omp_wait_policy": os.environ.get("OMP_WAIT_POLICY", "unset"), "info": info,
        "process_s": time.perf_counter() - start,
    }
    print(f"{args.model}, batch {args.batch}, {args.runtime} ({precision}), {result['threads']} threads, "
          f"OMP_WAIT_POLICY={result['omp_wait_policy']}")
    print(f"first result {first_result:.3f} s (import, load, compile, first inference)")
    print(f"{result['images_per_s']:.1f} images/s over {len(latencies)} inferences in {wall:.2f} s; latency p50 "
          f"{result['latency_ms_p50']:.3f} ms, p99 {result['latency_ms_p99']:.3f} ms; peak RSS {result['peak_rss_mb']:.1f} MB")
    if args.json:
        print(json.dumps(result, sort_keys=True))


if __name__ == "__main__":
    try:
        main()
    except Exception as e:  # noqa: BLE001 (one sentence for run.py's failure record)
        print(f"peers.py: {type(e).__name__}: {e}", file=sys.stderr)
        sys.exit(1)
