"""Turns the GPU run's JSON lines (kiln bench --context gpu, tools/gpu/torch_bench.py) into a
markdown table of median images/s, p50 latency and first result per configuration and batch."""
import collections
import json
import os
import statistics
import sys


def main(src, dst, first_file=None):
    rows = collections.defaultdict(list)
    for line in open(src):
        line = line.strip()
        if not line.startswith("{"):
            continue
        r = json.loads(line)
        if "error" in r:
            print("failed:", r)
            continue
        if r.get("runtime") == "kiln":
            name = "Kiln " + ("framework" if r.get("engine") == "off" else "engine " + r.get("precision", "")) + f" ({r.get('context', '')})"
            if r.get("asynchronous"):
                name += ", async"
        else:
            name = "PyTorch " + r["config"]
        rows[(name, r["batch"])].append(r)
    batches = sorted({b for _, b in rows})
    names = list(dict.fromkeys(n for n, _ in rows))
    out = ["| configuration | " + " | ".join(f"batch {b}: images/s, p50 ms, first s" for b in batches) + " |",
           "|---|" + "---:|" * len(batches)]
    for n in names:
        cells = []
        for b in batches:
            rs = rows.get((n, b))
            if not rs:
                cells.append("-")
                continue
            ips = statistics.median(r["images_per_s"] for r in rs)
            p50 = statistics.median(r["latency_ms_p50"] for r in rs)
            first = min(r["first_result_s"] for r in rs)
            extra = ""
            if "images_per_s_async" in rs[0]:
                extra = f" ({statistics.median(r['images_per_s_async'] for r in rs):,.0f} async)"
            cells.append(f"{ips:,.0f}{extra}, {p50:.3f}, {first:.2f}")
        out.append(f"| {n} | " + " | ".join(cells) + " |")
    if first_file and os.path.exists(first_file):
        out.append("")
        out.append("First result, cuda engine fp16, batch 16 (load, bind, compile, first forward): " + ", ".join(
            f"{r['cache']} engine cache {r['first_result_s']:.3f} s" for r in (json.loads(l) for l in open(first_file) if l.startswith("{"))))
    text = "\n".join(out) + "\n"
    open(dst, "w").write(text)
    print(text)


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2], sys.argv[3] if len(sys.argv) > 3 else None)
