"""The benchmark matrix: Kiln (framework, engine fp32, bf16, int8) against MXNet, ONNX Runtime and
OpenVINO, on gluoncv's CIFAR ResNets, at several batch sizes; interleaved rounds, medians.

Usage: python3 tools/bench/run.py [--models resnet20,resnet56,resnet110] [--batches 1,16,64]
         [--configs framework,fp32,bf16,int8,mxnet,mxnet-fused,ort,openvino-fp32,openvino-default]
         [--rounds 3] [--seconds 2] [--quick] [--kiln .build/release/kiln] [--no-check]
(`make bench` runs it after tools/bench/setup.sh and make_models.py; see docs/BENCHMARKS.md.)

Every run is its own process (`kiln bench` or tools/bench/peers.py) printing one JSON line. Round r
runs every (model, batch, config) once, the configs in an order rotated by r, so that drift in the
machine's speed hits every config alike; the tables give the median over rounds. A config that fails
(kiln int8 before the engine supports it, say) is recorded with its error and the run goes on.

OpenMP's wait policy is left at its default for every runtime (OMP_WAIT_POLICY is removed from the
runs' environment unless --omp-wait-policy is given), so that no runtime gets a setting the others
do not. The default spins: on a machine with other work that slows the OpenMP runtimes (Kiln, MXNet)
much more than the others; the machine must be otherwise idle, and the load average is recorded.

Writes bench/results/cpu-<date>.json (every run, the medians, the machine), cpu-latest.md (tables)
and cpu-latest.png (a bar chart, when matplotlib is importable).
"""
import argparse
import datetime
import json
import os
import platform
import statistics
import subprocess
import sys
import time

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
MODELS = {"resnet20": "cifar_resnet20_v1", "resnet56": "cifar_resnet56_v1", "resnet110": "cifar_resnet110_v1"}
# name -> (runner, arguments); runner "kiln" is `kiln bench`, the others tools/bench/peers.py in a venv.
CONFIGS = {
    "framework": ("kiln", ["--engine", "off"]),
    "fp32": ("kiln", ["--engine", "on", "--precision", "fp32"]),
    "bf16": ("kiln", ["--engine", "on", "--precision", "bf16"]),
    "int8": ("kiln", ["--engine", "on", "--precision", "int8"]),
    "mxnet": ("mx", ["--runtime", "mxnet"]),
    "mxnet-fused": ("mx", ["--runtime", "mxnet-fused"]),
    "ort": ("peers", ["--runtime", "onnxruntime"]),
    "openvino-fp32": ("peers", ["--runtime", "openvino-fp32"]),
    "openvino-default": ("peers", ["--runtime", "openvino-default"]),
}
LABELS = {
    "framework": "Kiln framework", "fp32": "Kiln engine fp32", "bf16": "Kiln engine bf16", "int8": "Kiln engine int8",
    "mxnet": "MXNet oneDNN", "mxnet-fused": "MXNet oneDNN + fusion", "ort": "ONNX Runtime",
    "openvino-fp32": "OpenVINO fp32", "openvino-default": "OpenVINO default",
}
# (numerator, denominator, heading) for the ratio tables.
RATIOS = [("fp32", "openvino-fp32", "engine fp32 / OpenVINO fp32"), ("fp32", "ort", "engine fp32 / ORT"),
          ("fp32", "framework", "engine fp32 / framework"), ("int8", "openvino-default", "int8 / OpenVINO default"),
          ("bf16", "openvino-default", "bf16 / OpenVINO default")]


def csv(text, allowed, what):
    items = [t.strip() for t in text.split(",") if t.strip()]
    bad = [t for t in items if allowed is not None and t not in allowed]
    if bad:
        sys.exit(f"run.py: unknown {what} {', '.join(bad)}; accepted: {', '.join(allowed)}")
    return items


def machine_facts(args, env):
    facts = {"python": sys.version.split()[0], "platform": platform.platform(), "cores": os.cpu_count()}
    try:
        with open("/proc/cpuinfo") as f:
            info = f.read()
        for line in info.splitlines():
            if line.startswith("model name"):
                facts["cpu"] = line.split(":", 1)[1].strip()
                break
        flags = next((line.split(":", 1)[1].split() for line in info.splitlines() if line.startswith("flags")), [])
        facts["flags"] = {f: f in flags for f in ("avx2", "avx512f", "avx512_vnni", "avx512_bf16", "amx_bf16", "amx_int8")}
    except OSError:
        pass
    facts["omp"] = {k: env.get(k, "unset") for k in ("OMP_NUM_THREADS", "OMP_WAIT_POLICY", "OMP_PROC_BIND", "KMP_AFFINITY")}
    facts["omp_wait_policy_choice"] = (f"OMP_WAIT_POLICY={args.omp_wait_policy} for every run" if args.omp_wait_policy
                                       else "OMP_WAIT_POLICY unset (each runtime's default) for every run")
    try:
        facts["git_commit"] = subprocess.run(["git", "rev-parse", "HEAD"], cwd=REPO, capture_output=True,
                                             text=True, check=True).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        pass
    facts["loadavg_start"] = os.getloadavg()
    return facts


def command(config, model, batch, args, extra=()):
    runner, flags = CONFIGS[config]
    if runner == "kiln":
        prefix = os.path.join(args.models_dir, model)
        return [args.kiln, "bench", "--symbol", prefix + "-symbol.json", "--params", prefix + "-0000.params",
                "--shape", f"data={batch},3,32,32", *flags, "--json", *extra]
    python = os.path.join(REPO, ".venv-bench-mx" if runner == "mx" else ".venv-bench-peers", "bin", "python")
    return [python, os.path.join(REPO, "tools", "bench", "peers.py"), *flags, "--model", model,
            "--models-dir", args.models_dir, "--batch", str(batch), "--json", *extra]


def cpu_seconds():
    """(busy seconds of the whole machine, CPU seconds of this process's finished children)."""
    import resource
    try:
        with open("/proc/stat") as f:
            fields = [int(x) for x in f.readline().split()[1:]]
        # user nice system idle iowait irq softirq steal: busy = all but idle and iowait.
        busy = (sum(fields[:8]) - fields[3] - fields[4]) / os.sysconf("SC_CLK_TCK")
    except (OSError, ValueError, IndexError):
        busy = float("nan")
    ru = resource.getrusage(resource.RUSAGE_CHILDREN)
    return busy, ru.ru_utime + ru.ru_stime


def run_one(config, model, batch, args, env, extra=(), timeout=None):
    cmd = command(config, model, batch, args, extra)
    record = {"config": config, "model": model, "batch": batch, "loadavg_before": os.getloadavg()[0]}
    busy0, own0 = cpu_seconds()
    start = time.perf_counter()
    try:
        p = subprocess.run(cmd, cwd=REPO, env=env, capture_output=True, text=True,
                           timeout=timeout or args.seconds + args.warmup * 5 + 180)
    except subprocess.TimeoutExpired:
        record.update(ok=False, error=f"timed out after {timeout} s")
        return record
    except OSError as e:
        record.update(ok=False, error=str(e))
        return record
    wall = time.perf_counter() - start
    busy1, own1 = cpu_seconds()
    record["process_wall_s"] = wall
    # The share of the machine's cores that other processes used while this run ran: the contention
    # that makes a timing unreliable (the load average cannot tell it from the run's own threads).
    record["others_cpu_share"] = max(0.0, (busy1 - busy0) - (own1 - own0)) / (wall * (os.cpu_count() or 1))
    lines = [line for line in p.stdout.splitlines() if line.startswith("{")]
    if p.returncode != 0 or not lines:
        err = [line for line in p.stderr.splitlines() if line.strip() and "subgraph backend" not in line]
        record.update(ok=False, rc=p.returncode, error=(err[-1] if err else f"exit code {p.returncode}, no JSON line"))
        return record
    record.update(ok=True, result=json.loads(lines[-1]))
    return record


def check_outputs(models, configs, args, env):
    """Each config on the models' check batch (MXNet unfused wrote the expected output): max |diff|."""
    import numpy as np
    import tempfile
    checks = {}
    with tempfile.TemporaryDirectory() as tmp:
        for short in models:
            model = MODELS[short]
            prefix = os.path.join(args.models_dir, model)
            expected = np.load(prefix + "-output.npy")
            for config in configs:
                out = os.path.join(tmp, f"{model}-{config}.npy")
                rec = run_one(config, model, expected.shape[0], args, env,
                              extra=["--input", prefix + "-input.npy", "--output", out, "--seconds", "0", "--warmup", "0"])
                if not rec["ok"]:
                    checks[f"{short}/{config}"] = {"ok": False, "error": rec["error"]}
                    continue
                y = np.load(out)
                diff = float(np.abs(y - expected).max())
                agree = int((y.argmax(axis=1) == expected.argmax(axis=1)).sum())
                checks[f"{short}/{config}"] = {"ok": True, "max_abs_diff": diff,
                                               "rel_diff": diff / max(float(np.abs(expected).max()), 1e-12),
                                               "top1_agree": f"{agree}/{expected.shape[0]}"}
                print(f"check {short:9} {config:16} max |diff| {diff:.3g} vs unfused MXNet, top-1 {agree}/{expected.shape[0]}",
                      flush=True)
    return checks


def medians(runs):
    groups = {}
    for r in runs:
        groups.setdefault((r["model"], r["batch"], r["config"]), []).append(r)
    out = []
    for (model, batch, config), rs in sorted(groups.items()):
        ok = [r["result"] for r in rs if r["ok"]]
        m = {"model": model, "batch": batch, "config": config, "runs": len(rs), "ok_runs": len(ok)}
        if ok:
            for key in ("images_per_s", "latency_ms_p50", "latency_ms_p99", "first_result_s", "peak_rss_mb"):
                m[key] = statistics.median(x[key] for x in ok)
            # The engine cache directory is fresh at the start: round 1 compiles cold (and times the
            # convolutions' algorithms), later rounds load the stored plan.
            first_round = [r["result"]["first_result_s"] for r in rs if r["ok"] and r.get("round") == 0]
            later = [r["result"]["first_result_s"] for r in rs if r["ok"] and r.get("round", 0) > 0]
            if first_round:
                m["first_result_cold_s"] = first_round[0]
            if later:
                m["first_result_warm_s"] = statistics.median(later)
            m["images_per_s_min"] = min(x["images_per_s"] for x in ok)
            m["images_per_s_max"] = max(x["images_per_s"] for x in ok)
            for key in ("arena_bytes", "weight_bytes", "intermediate_bytes", "precision", "threads"):
                if key in ok[-1]:
                    m[key] = ok[-1][key]
        else:
            m["error"] = next((r["error"] for r in rs if not r["ok"]), "")
        out.append(m)
    return out


def load_summary(runs):
    shares = sorted(r["others_cpu_share"] for r in runs if r.get("others_cpu_share") == r.get("others_cpu_share")
                    and "others_cpu_share" in r)
    if not shares:
        return ""
    busy = sum(1 for x in shares if x > 0.10)
    return (f"Other processes used a median {100 * statistics.median(shares):.0f}% (max {100 * shares[-1]:.0f}%) of the "
            f"machine's CPU time while a run ran; {busy} of {len(shares)} runs saw more than 10% (an idle machine "
            f"shows a few %).")


def versions(runs):
    seen = {}
    for r in runs:
        info = r.get("result", {}).get("info", {})
        if "version" in info:
            seen.setdefault({"mx": "MXNet"}.get(CONFIGS[r["config"]][0], r["result"]["runtime"]), info["version"])
    names = {"onnxruntime": "ONNX Runtime", "openvino-fp32": "OpenVINO", "openvino-default": "OpenVINO"}
    parts = sorted({f"{names.get(k, k)} {v.split('-')[0]}" for k, v in seen.items()})
    return "Peers: " + ", ".join(parts) + " (PyPI wheels, tools/bench/setup.sh)." if parts else ""


def fmt(v, digits=0):
    return "-" if v is None else f"{v:,.{digits}f}"


def markdown(report):
    meds = {(m["model"], m["batch"], m["config"]): m for m in report["medians"]}
    o = report["options"]
    models, batches, configs = o["models"], o["batches"], o["configs"]
    f = report["machine"]
    lines = [f"# CPU benchmark, {report['date']}", "",
             f"Machine: {f.get('cpu', '?')}, {f.get('cores')} cores; "
             + ", ".join(k for k, v in f.get("flags", {}).items() if v) + f". {f.get('omp_wait_policy_choice')}; "
             f"OMP_NUM_THREADS={f['omp']['OMP_NUM_THREADS']}. The machine should be otherwise idle: with another "
             f"process on a core, the OpenMP runtimes (Kiln, MXNet) suffer most under the default spinning wait policy.",
             "",
             load_summary(report["runs"]),
             "",
             versions(report["runs"]),
             "",
             f"{o['rounds']} interleaved rounds of {o['seconds']} s per run, medians; every run a separate process. "
             f"Models: gluoncv CIFAR ResNets v1 with random weights (bench/models, tools/bench/make_models.py), "
             f"the same checkpoint for Kiln and MXNet and its ONNX export for ONNX Runtime and OpenVINO. "
             f"Commit {f.get('git_commit', '?')[:12]}.", ""]
    for b in batches:
        lines += [f"## Batch {b}: images/s", "",
                  "| model | " + " | ".join(LABELS[c] for c in configs) + " |",
                  "|---|" + "---:|" * len(configs)]
        for mname in models:
            cells = []
            for c in configs:
                m = meds.get((MODELS[mname], b, c))
                cells.append("failed" if m and "images_per_s" not in m else fmt(m and m.get("images_per_s")))
            lines.append(f"| {mname} | " + " | ".join(cells) + " |")
        ratios = [(n, d, h) for n, d, h in RATIOS if n in configs and d in configs]
        if ratios:
            lines += ["", "| model | " + " | ".join(h for _, _, h in ratios) + " |", "|---|" + "---:|" * len(ratios)]
            for mname in models:
                cells = []
                for n, d, _ in ratios:
                    a, z = meds.get((MODELS[mname], b, n), {}), meds.get((MODELS[mname], b, d), {})
                    cells.append(f"{a['images_per_s'] / z['images_per_s']:.2f}x"
                                 if "images_per_s" in a and "images_per_s" in z else "-")
                lines.append(f"| {mname} | " + " | ".join(cells) + " |")
        lines += ["", f"First result (s: load, compile, first batch; Kiln engine: cold, then with the engine cache warm) / "
                  f"peak RSS (MB), batch {b}:", "",
                  "| model | " + " | ".join(LABELS[c] for c in configs) + " |", "|---|" + "---:|" * len(configs)]
        for mname in models:
            cells = []
            for c in configs:
                m = meds.get((MODELS[mname], b, c), {})
                if "first_result_s" not in m:
                    cells.append("-")
                elif CONFIGS[c][0] == "kiln" and c != "framework" and "first_result_warm_s" in m:
                    cells.append(f"{m.get('first_result_cold_s', m['first_result_s']):.3f}, {m['first_result_warm_s']:.3f} / {m['peak_rss_mb']:.0f}")
                else:
                    cells.append(f"{m['first_result_s']:.3f} / {m['peak_rss_mb']:.0f}")
            lines.append(f"| {mname} | " + " | ".join(cells) + " |")
        lines.append("")
    order = {MODELS[m]: k for k, m in enumerate(models)}
    engine_rows = sorted((m for m in report["medians"] if "arena_bytes" in m),
                         key=lambda m: (order.get(m["model"], 99), m["batch"], m["config"]))
    if engine_rows:
        lines += ["## Kiln engine memory", "", "| model | batch | precision | arena MB | intermediates MB | weights MB |",
                  "|---|---:|---|---:|---:|---:|"]
        for m in engine_rows:
            lines.append(f"| {m['model']} | {m['batch']} | {m.get('precision', '?')} | {m['arena_bytes'] / 1e6:.2f} | "
                         f"{m.get('intermediate_bytes', 0) / 1e6:.2f} | {m['weight_bytes'] / 1e6:.2f} |")
        lines.append("")
    failed = {}
    for m in report["medians"]:
        if "error" in m:
            failed.setdefault((m["config"], m["error"]), []).append(f"{m['model']}@{m['batch']}")
    if failed:
        lines += ["## Failed configurations", ""]
        for (c, err), where in failed.items():
            lines.append(f"- {LABELS[c]} ({len(where)} cells): {err}")
        lines.append("")
    if report.get("checks"):
        lines += ["## Outputs against unfused MXNet (batch 2 check input)", "", "| model / config | max abs diff | top-1 |",
                  "|---|---:|---:|"]
        for k, v in report["checks"].items():
            lines.append(f"| {k} | {v['max_abs_diff']:.3g} | {v['top1_agree']} |" if v["ok"] else f"| {k} | failed | - |")
        lines.append("")
    lines += ["Read with docs/BENCHMARKS.md. Raw runs, versions and machine facts: the JSON file of the same date.", ""]
    return "\n".join(lines)


def chart(report, path):
    try:
        import matplotlib
        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        print("run.py: matplotlib is not importable here; no chart (run with .venv-bench-peers/bin/python)")
        return False
    meds = {(m["model"], m["batch"], m["config"]): m for m in report["medians"]}
    o = report["options"]
    models, batches, configs = o["models"], o["batches"], o["configs"]
    fig, axes = plt.subplots(1, len(batches), figsize=(5.5 * len(batches), 5), squeeze=False)
    width = 0.8 / max(1, len(configs))
    for ax, b in zip(axes[0], batches):
        for k, c in enumerate(configs):
            ys = [meds.get((MODELS[m], b, c), {}).get("images_per_s", 0) for m in models]
            ax.bar([i + (k - (len(configs) - 1) / 2) * width for i in range(len(models))], ys, width, label=LABELS[c])
        ax.set_xticks(range(len(models)))
        ax.set_xticklabels(models)
        ax.set_title(f"batch {b}")
        ax.set_ylabel("images/s")
        ax.grid(axis="y", alpha=0.3)
    handles, labels = axes[0][0].get_legend_handles_labels()
    fig.legend(handles, labels, loc="lower center", ncol=min(len(configs), 3 * len(batches)), fontsize=8)
    fig.suptitle(f"CPU inference, {report['machine'].get('cpu', '')}, {report['machine'].get('cores')} cores, {report['date']}")
    fig.tight_layout(rect=(0, 0.12, 1, 1))
    fig.savefig(path, dpi=80)
    return True


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--models", default=",".join(MODELS))
    p.add_argument("--batches", default="1,16,64")
    p.add_argument("--configs", default=",".join(CONFIGS))
    p.add_argument("--rounds", type=int, default=5)
    p.add_argument("--seconds", type=float, default=2.0)
    p.add_argument("--warmup", type=int, default=3)
    p.add_argument("--quick", action="store_true", help="resnet20 at batch 16, 1 round of 0.5 s (a smoke test)")
    p.add_argument("--kiln", default=os.path.join(".build", "release", "kiln"))
    p.add_argument("--models-dir", default=os.path.join("bench", "models"))
    p.add_argument("--out", default=os.path.join("bench", "results"))
    p.add_argument("--omp-wait-policy", help="set OMP_WAIT_POLICY for every run (default: leave it unset)")
    p.add_argument("--no-check", action="store_true", help="skip comparing each config's output with MXNet's")
    p.add_argument("--from-json", help="write the markdown and chart again from a results JSON file; run nothing")
    args = p.parse_args()
    if args.from_json:
        with open(args.from_json) as f:
            report = json.load(f)
        out = os.path.dirname(args.from_json) or "."
        with open(os.path.join(out, "cpu-latest.md"), "w") as f:
            f.write(markdown(report))
        chart(report, os.path.join(out, "cpu-latest.png"))
        print(f"run.py: wrote {out}/cpu-latest.md and cpu-latest.png from {args.from_json}")
        return
    if args.quick:
        args.models, args.batches, args.rounds, args.seconds = "resnet20", "16", 1, 0.5
    models = csv(args.models, list(MODELS), "model")
    batches = [int(b) for b in csv(args.batches, None, "batch")]
    configs = csv(args.configs, list(CONFIGS), "config")

    env = dict(os.environ)
    env.pop("OMP_WAIT_POLICY", None)
    if args.omp_wait_policy:
        env["OMP_WAIT_POLICY"] = args.omp_wait_policy
    env.setdefault("PYTHONWARNINGS", "ignore")
    # A fresh engine cache for Kiln: round 1 is a cold compile, later rounds find the plans stored.
    import tempfile
    cache = tempfile.mkdtemp(prefix="kiln-bench-cache-")
    env["KILN_ENGINE_CACHE_DIR"] = cache
    facts = machine_facts(args, env)
    print(f"run.py: {facts.get('cpu')}, {facts.get('cores')} cores, {facts['omp_wait_policy_choice']}; "
          f"load average {facts['loadavg_start'][0]:.2f}", flush=True)
    # One second of the machine's busy time before starting: the load average would still count
    # whatever ran a minute ago (a build, say).
    busy0, _ = cpu_seconds()
    time.sleep(1.0)
    busy1, _ = cpu_seconds()
    facts["busy_share_start"] = (busy1 - busy0) / (os.cpu_count() or 1)
    if facts["busy_share_start"] > 0.10:
        print(f"run.py: the machine is not idle ({100 * facts['busy_share_start']:.0f}% of its CPU time busy in the last "
              "second): timings will be noisy, the OpenMP runtimes' (Kiln, MXNet) most", flush=True)

    checks = {} if args.no_check else check_outputs(models, configs, args, env)
    runs = []
    cells = [(MODELS[m], b) for m in models for b in batches]
    total = args.rounds * len(cells) * len(configs)
    started = time.perf_counter()
    for r in range(args.rounds):
        order = configs[r % len(configs):] + configs[:r % len(configs)]
        for model, b in cells:
            for c in order:
                rec = run_one(c, model, b, args, env, extra=["--seconds", str(args.seconds), "--warmup", str(args.warmup)])
                rec["round"] = r
                runs.append(rec)
                res = rec.get("result", {})
                state = (f"{res['images_per_s']:9.1f} images/s, p50 {res['latency_ms_p50']:8.3f} ms"
                         if rec["ok"] else f"failed: {rec['error'][:100]}")
                others = rec.get("others_cpu_share")
                print(f"[{len(runs):3}/{total} {time.perf_counter() - started:6.0f} s] round {r + 1} {model:18} "
                      f"batch {b:3} {c:16} {state}" + (f" (others {100 * others:.0f}%)" if others is not None else ""),
                      flush=True)
    facts["loadavg_end"] = os.getloadavg()
    date = datetime.datetime.now().strftime("%Y-%m-%d")
    report = {"date": date, "machine": facts, "checks": checks, "medians": medians(runs), "runs": runs,
              "options": {"models": models, "batches": batches, "configs": configs, "rounds": args.rounds,
                          "seconds": args.seconds, "warmup": args.warmup}}
    os.makedirs(args.out, exist_ok=True)
    jpath = os.path.join(args.out, f"cpu-{date}.json")
    with open(jpath, "w") as f:
        json.dump(report, f, indent=1, sort_keys=True)
    md = markdown(report)
    with open(os.path.join(args.out, "cpu-latest.md"), "w") as f:
        f.write(md)
    wrote = [jpath, os.path.join(args.out, "cpu-latest.md")]
    if chart(report, os.path.join(args.out, "cpu-latest.png")):
        wrote.append(os.path.join(args.out, "cpu-latest.png"))
    print(md)
    print("run.py: wrote " + ", ".join(wrote))


if __name__ == "__main__":
    main()
