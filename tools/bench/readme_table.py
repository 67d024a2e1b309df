"""Writes the headline table of bench/results/cpu-DATE.json into README.md between the markers
BENCH_TABLE_START and BENCH_TABLE_END (run by `make bench` after run.py)."""
import json
import os
import sys

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
COLUMNS = [("framework", "Kiln framework"), ("fp32", "Kiln fp32"), ("bf16", "Kiln bf16"), ("int8", "Kiln int8"),
           ("mxnet-fused", "MXNet + fusion"), ("ort", "ONNX Runtime"), ("openvino-fp32", "OpenVINO fp32"),
           ("openvino-default", "OpenVINO default (bf16)")]


def table(report):
    meds = {(m["model"], m["batch"], m["config"]): m for m in report["medians"]}
    models = sorted({m["model"] for m in report["medians"]}, key=lambda n: int("".join(c for c in n.split("_")[1] if c.isdigit()) or 0))
    batches = sorted({m["batch"] for m in report["medians"]})
    lines = ["| batch | model | " + " | ".join(h for _, h in COLUMNS) + " | fp32 / OpenVINO fp32 | fp32 / ORT | int8 / OpenVINO default |",
             "|---:|---|" + "---:|" * (len(COLUMNS) + 3)]
    for b in batches:
        for model in models:
            def ips(c):
                return meds.get((model, b, c), {}).get("images_per_s")
            cells = [f"{ips(c):,.0f}" if ips(c) else "-" for c, _ in COLUMNS]

            def ratio(n, d):
                return f"{ips(n) / ips(d):.2f}x" if ips(n) and ips(d) else "-"
            lines.append(f"| {b} | {model.replace('cifar_', '').replace('_v1', '')} | " + " | ".join(cells) +
                         f" | {ratio('fp32', 'openvino-fp32')} | {ratio('fp32', 'ort')} | {ratio('int8', 'openvino-default')} |")
    m = report.get("machine", {})
    lines += ["", f"Run of {report.get('date')} ({report.get('options', {}).get('rounds')} rounds of "
              f"{report.get('options', {}).get('seconds')} s, commit {str(m.get('git_commit', ''))[:12]})."]
    return "\n".join(lines)


def main():
    path = sys.argv[1] if len(sys.argv) > 1 else None
    if path is None:
        results = os.path.join(REPO, "bench", "results")
        files = sorted(f for f in os.listdir(results) if f.startswith("cpu-") and f.endswith(".json"))
        path = os.path.join(results, files[-1])
    with open(path) as f:
        report = json.load(f)
    readme = os.path.join(REPO, "README.md")
    with open(readme) as f:
        text = f.read()
    start, end = text.find("BENCH_TABLE_START"), text.find("<!-- BENCH_TABLE_END")
    if start < 0 or end < 0:
        sys.exit("readme_table.py: README.md has no BENCH_TABLE_START/BENCH_TABLE_END markers")
    start = text.index("\n", start) + 1
    text = text[:start] + table(report) + "\n" + text[end:]
    with open(readme, "w") as f:
        f.write(text)
    print(f"readme_table.py: README.md table from {path}")


if __name__ == "__main__":
    main()
