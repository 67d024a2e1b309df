#!/usr/bin/env python3
"""A/B of two Kiln binaries on the CPU: `kiln bench` with each, interleaved, same models and batches.

Used to show a change leaves speed unchanged: the binary from before the change (`--a`) and after
(`--b`), in one run on this machine, rounds alternating the order; prints each run and the median
images/s per (model, batch, config) with the ratio b / a.

    python3 tools/bench/ab_kiln.py --a /tmp/kiln-before --b .build/release/kiln \
        [--models resnet20,resnet56] [--batches 1,16] [--configs framework,fp32] [--rounds 5] [--seconds 2] \
        [--peer openvino-fp32]

With `--peer`, that runtime (tools/bench/peers.py, run by .venv-bench-peers) runs in every round too,
so each binary's ratio to it can be compared.

Models come from bench/models (tools/bench/make_models.py, as `make bench` makes them).
"""
import argparse, json, os, statistics, subprocess, sys

CONFIGS = {"framework": ["--engine", "off"], "fp32": ["--engine", "on"], "bf16": ["--engine", "on", "--precision", "bf16"]}


def run(kiln, model, batch, config, seconds, models_dir):
    prefix = os.path.join(models_dir, f"cifar_{model}_v1")
    cmd = [kiln, "bench", "--symbol", prefix + "-symbol.json", "--params", prefix + "-0000.params",
           "--shape", f"data={batch},3,32,32", "--seconds", str(seconds), "--json"] + CONFIGS[config]
    out = subprocess.run(cmd, capture_output=True, text=True)
    if out.returncode != 0:
        sys.exit(f"{' '.join(cmd)} failed: {out.stderr.strip()}")
    return json.loads(out.stdout.strip().splitlines()[-1])["images_per_s"]


def run_peer(runtime, model, batch, seconds, models_dir):
    cmd = [os.path.join(".venv-bench-peers", "bin", "python"), os.path.join("tools", "bench", "peers.py"), "--runtime", runtime,
           "--model", f"cifar_{model}_v1", "--batch", str(batch), "--seconds", str(seconds), "--models-dir", models_dir, "--json"]
    out = subprocess.run(cmd, capture_output=True, text=True)
    if out.returncode != 0:
        sys.exit(f"{' '.join(cmd)} failed: {out.stderr.strip()}")
    return json.loads(out.stdout.strip().splitlines()[-1])["images_per_s"]


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--a", required=True)
    p.add_argument("--b", required=True)
    p.add_argument("--models", default="resnet20,resnet56")
    p.add_argument("--batches", default="1,16")
    p.add_argument("--configs", default="framework,fp32")
    p.add_argument("--rounds", type=int, default=5)
    p.add_argument("--seconds", type=float, default=2)
    p.add_argument("--models-dir", default=os.path.join("bench", "models"))
    p.add_argument("--peer", help="a tools/bench/peers.py runtime timed in every round (openvino-fp32)")
    args = p.parse_args()
    cells = [(m, int(b), c) for m in args.models.split(",") for b in args.batches.split(",") for c in args.configs.split(",")]
    results = {(cell, side): [] for cell in cells for side in "ab"}
    peer = {(m, int(b)): [] for m in args.models.split(",") for b in args.batches.split(",")}
    for r in range(args.rounds):
        if args.peer:
            for (m, b) in peer:
                ips = run_peer(args.peer, m, b, args.seconds, args.models_dir)
                peer[(m, b)].append(ips)
                print(json.dumps({"round": r, "model": m, "batch": b, "config": args.peer, "images_per_s": ips}), flush=True)
        for cell in cells:
            for side in ("ab" if r % 2 == 0 else "ba"):
                ips = run(args.a if side == "a" else args.b, *cell, args.seconds, args.models_dir)
                results[(cell, side)].append(ips)
                print(json.dumps({"round": r, "model": cell[0], "batch": cell[1], "config": cell[2], "binary": side, "images_per_s": ips}), flush=True)
    head = "| model | batch | config | a images/s | b images/s | b / a |"
    if args.peer:
        head += f" {args.peer} | a / peer | b / peer |"
    print("\n" + head + "\n" + "|---" * (head.count("|") - 1) + "|")
    for cell in cells:
        a, b = statistics.median(results[(cell, "a")]), statistics.median(results[(cell, "b")])
        line = f"| {cell[0]} | {cell[1]} | {cell[2]} | {a:,.0f} | {b:,.0f} | {b / a:.3f} |"
        if args.peer:
            q = statistics.median(peer[(cell[0], cell[1])])
            line += f" {q:,.0f} | {a / q:.3f} | {b / q:.3f} |"
        print(line)


if __name__ == "__main__":
    main()
