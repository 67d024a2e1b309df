#!/usr/bin/env python3
"""Checks Kiln against real MXNet 1.9.1 on the zoo that export_zoo.py wrote.

For each model under ZOO/NAME/ it runs, each in its own process so that peak memory is the
process's own (ru_maxrss from wait4):
  kiln partition --json       engine groups, FLOP share, framework<->engine switches
  kiln run --backend framework / engine --json
                              every output, load + bind + first forward (cold: an empty engine
                              cache), median forward at batch 1
and compares every output with MXNet's:
  classify, segment, pose, features
      max |kiln - mxnet| / max |mxnet| per output must be <= --tolerance (default 1e-3);
      classifiers also report top-1 agreement
  detect
      MXNet's final detections (after NMS: ids, scores, boxes) are matched row by row: same class,
      score within 1e-4, box corners within 1e-3 of the box scale. A row left unmatched on either
      side is a tie, not a failure, only where rounding can flip the decision: its score is within
      2e-5 of another candidate's (an order that decides a top-k cut), or its overlap with a
      higher-scored kept box of its class is within 1e-3 of the model's NMS threshold.
Writes ZOO/results.json, and with --write-docs the table in docs/ZOO.md (between its
<!-- zoo-check --> markers) and in the README (between <!-- zoo-table --> markers).

    python3 tools/zoo/zoo_check.py --kiln .build/release/kiln --zoo out/zoo [--models a,b] [--write-docs]
"""
import argparse
import datetime
import json
import os
import platform
import shutil
import subprocess
import sys
import tempfile
import time

import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.abspath(os.path.join(HERE, "..", ".."))
sys.path.insert(0, HERE)
from models import MODELS, QUICK  # noqa: E402

SCORE_TOL = 1e-4
TIE_TOL = 2e-5
IOU_TOL = 1e-3


def run_measured(cmd, env):
    """Runs cmd; returns (returncode, stdout, stderr, wall seconds, peak RSS in MB)."""
    start = time.perf_counter()
    with tempfile.TemporaryFile() as out, tempfile.TemporaryFile() as err:
        p = subprocess.Popen(cmd, stdout=out, stderr=err, env=env)
        _, status, usage = os.wait4(p.pid, 0)
        wall = time.perf_counter() - start
        out.seek(0)
        err.seek(0)
        code = os.waitstatus_to_exitcode(status)
        return code, out.read().decode(errors="replace"), err.read().decode(errors="replace"), wall, usage.ru_maxrss / 1024


def last_json(text):
    for line in reversed(text.strip().splitlines()):
        line = line.strip()
        if line.startswith("{"):
            try:
                return json.loads(line)
            except ValueError:
                pass
    return None


def nms_thresholds(symbol_file):
    """overlap_thresh and force_suppress of every box_nms node of the symbol."""
    with open(symbol_file) as f:
        nodes = json.load(f)["nodes"]
    found = []
    for n in nodes:
        if n["op"] in ("_contrib_box_nms", "_contrib_box_non_maximum_suppression"):
            a = n.get("attrs", n.get("param", {}))
            found.append((float(a.get("overlap_thresh", 0.5)), a.get("force_suppress", "False") in ("True", "true", "1")))
    return found


def iou(a, b):
    ix = max(0.0, min(a[2], b[2]) - max(a[0], b[0]))
    iy = max(0.0, min(a[3], b[3]) - max(a[1], b[1]))
    inter = ix * iy
    union = (a[2] - a[0]) * (a[3] - a[1]) + (b[2] - b[0]) * (b[3] - b[1]) - inter
    return inter / union if union > 0 else 0.0


def detections(outs):
    """(ids, scores, boxes) of the valid rows of image 0 from a detector's three outputs."""
    ids, scores, boxes = (np.asarray(o, dtype=np.float64) for o in outs[:3])
    ids, scores, boxes = ids.reshape(ids.shape[0], -1)[0], scores.reshape(scores.shape[0], -1)[0], boxes[0].reshape(-1, 4)
    keep = ids >= 0
    return ids[keep], scores[keep], boxes[keep]


def compare_detections(expected, actual, thresholds):
    """Matches detections; returns (ok, text)."""
    e_ids, e_sc, e_bx = detections(expected)
    a_ids, a_sc, a_bx = detections(actual)
    scale = max(1.0, float(np.abs(e_bx).max()) if e_bx.size else 1.0)
    box_tol = 1e-3 * scale
    used = np.zeros(len(a_ids), dtype=bool)
    unmatched_e = []
    worst_score = worst_box = 0.0
    for i in range(len(e_ids)):
        best = None
        for j in np.nonzero(~used & (a_ids == e_ids[i]))[0]:
            ds, db = abs(a_sc[j] - e_sc[i]), float(np.abs(a_bx[j] - e_bx[i]).max())
            if ds <= SCORE_TOL and db <= box_tol and (best is None or ds + db < best[1]):
                best = (j, ds + db, ds, db)
        if best is None:
            unmatched_e.append(i)
        else:
            used[best[0]] = True
            worst_score, worst_box = max(worst_score, best[2]), max(worst_box, best[3])
    unmatched_a = list(np.nonzero(~used)[0])
    overlap = [t for t, _ in thresholds]
    force = any(f for _, f in thresholds)

    def explained(k, ids, sc, bx, other_sc):
        # a near tie in score with any candidate on either side
        near = np.abs(np.concatenate([sc, other_sc]) - sc[k])
        if np.count_nonzero(near <= TIE_TOL) > 1:
            return True
        # an overlap at the NMS threshold with a higher-scored kept box
        for m in range(len(ids)):
            if m != k and sc[m] >= sc[k] and (force or ids[m] == ids[k]):
                o = iou(bx[m], bx[k])
                if any(abs(o - t) <= IOU_TOL for t in overlap):
                    return True
        return False

    bad = [("MXNet", k) for k in unmatched_e if not explained(k, e_ids, e_sc, e_bx, a_sc)]
    bad += [("Kiln", k) for k in unmatched_a if not explained(k, a_ids, a_sc, a_bx, e_sc)]
    text = "%d of %d detections matched (score within %.0e: worst %.1e; box: worst %.1e)" % (
        len(e_ids) - len(unmatched_e), len(e_ids), SCORE_TOL, worst_score, worst_box)
    if unmatched_e or unmatched_a:
        text += "; %d MXNet and %d Kiln rows unmatched, %d of them not ties" % (len(unmatched_e), len(unmatched_a), len(bad))
    if len(a_ids) != len(e_ids):
        text += "; Kiln kept %d" % len(a_ids)
    return not bad, text


def compare_dense(expected, actual, kind, tolerance):
    worst = 0.0
    notes = []
    for k, (e, a) in enumerate(zip(expected, actual)):
        if e.shape != a.shape:
            return False, "output %d has shape %s, MXNet's %s" % (k, a.shape, e.shape), None
        scale = max(float(np.abs(e).max()), 1e-30)
        d = float(np.abs(a.astype(np.float64) - e).max()) / scale
        if not np.isfinite(d):
            return False, "output %d holds NaN or infinity" % k, None
        worst = max(worst, d)
    if kind == "classify":
        agree = float(np.mean(np.argmax(expected[0].reshape(expected[0].shape[0], -1), 1) ==
                              np.argmax(actual[0].reshape(actual[0].shape[0], -1), 1)))
        notes.append("top-1 agrees" if agree == 1.0 else "top-1 agreement %.2f" % agree)
    return worst <= tolerance, "; ".join(notes), worst


def switches(report):
    """Framework<->engine switches on the way through the graph: inputs of engine groups that a
    framework node produces, plus engine outputs that a framework node reads."""
    groups = report.get("groups", [])
    framework = {n["name"] for n in report.get("framework_nodes", [])}
    count = 0
    for g in groups:
        count += sum(1 for i in g.get("inputs", []) if i.rsplit("_output", 1)[0] in framework or i.split(":")[0] in framework)
    return count


def check_model(entry, args, kiln):
    name, _, kind, _, _ = entry
    folder = os.path.join(args.zoo, name)
    meta_file = os.path.join(folder, "meta.json")
    row = {"name": name, "kind": kind}
    if not os.path.exists(meta_file):
        row["error"] = "not exported (see export_zoo.py's output)"
        return row
    with open(meta_file) as f:
        meta = json.load(f)
    sym, params = os.path.join(folder, name + "-symbol.json"), os.path.join(folder, name + "-0000.params")
    shape = "data=" + ",".join(str(d) for d in meta["input"])
    expected = [np.load(os.path.join(folder, "mxnet_out%d.npy" % k)) for k in range(len(meta["outputs"]))]
    row["mxnet_ms"] = meta.get("mxnet_ms")
    env = dict(os.environ)
    env.setdefault("OMP_WAIT_POLICY", "passive")

    code, out, err, _, _ = run_measured([kiln, "partition", "--symbol", sym, "--params", params, "--shape", shape, "--json"], env)
    if code != 0:
        row["error"] = (err.strip().splitlines() or ["kiln partition failed"])[-1]
        return row
    report = json.loads(out)
    row["groups"] = len(report["groups"])
    row["flop_share"] = report.get("flop_share")
    row["node_share"] = report.get("node_share")
    row["switches"] = switches(report)
    row["framework_ops"] = sorted({n["op"] for n in report.get("framework_nodes", [])})

    thresholds = nms_thresholds(sym)
    for mode in ("framework", "engine"):
        with tempfile.TemporaryDirectory() as tmp:
            outs = []
            cmd = [kiln, "run", "--symbol", sym, "--params", params, "--input", "data=" + os.path.join(folder, "input.npy"),
                   "--backend", mode, "--repeat", str(args.repeat), "--json"]
            for k in range(len(expected)):
                outs.append(os.path.join(tmp, "out%d.npy" % k))
                cmd += ["--output", "%d=%s" % (k, outs[-1])]
            menv = dict(env)
            menv["KILN_ENGINE_CACHE_DIR"] = os.path.join(tmp, "cache")  # cold: the first result compiles
            code, out, err, wall, rss = run_measured(cmd, menv)
            if code != 0:
                row[mode] = {"error": (err.strip().splitlines() or ["kiln run failed"])[-1]}
                continue
            summary = last_json(out) or {}
            actual = [np.load(o) for o in outs]
        if kind == "detect":
            ok, note = compare_detections(expected, actual, thresholds)
            diff = None
        else:
            ok, note, diff = compare_dense(expected, actual, kind, args.tolerance)
        row[mode] = {
            "ok": ok, "note": note, "max_rel_diff": diff, "median_ms": summary.get("median_ms"),
            "first_result_s": (summary.get("load_s", 0) + summary.get("bind_s", 0) + summary.get("first_forward_ms", 0) / 1000),
            "peak_mb": rss, "wall_s": wall,
        }
    fw, en = row.get("framework", {}), row.get("engine", {})
    if fw.get("median_ms") and en.get("median_ms"):
        row["speedup"] = fw["median_ms"] / en["median_ms"]
    return row


def fmt(v, spec, missing="-"):
    return missing if v is None else format(v, spec)


def cell(m):
    if not m:
        return "-"
    if "error" in m:
        return "error"
    mark = "ok" if m["ok"] else "FAIL"
    if m.get("max_rel_diff") is not None:
        return "%s %.1e" % (mark, m["max_rel_diff"])
    return mark


def table(rows):
    lines = [
        "| model | kind | loads | framework vs MXNet | engine vs MXNet | engine groups | switches | FLOP share | "
        "speed-up (batch 1) | first result fw / engine (s) | peak memory fw / engine (MB) |",
        "|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for r in rows:
        if "error" in r:
            lines.append("| %s | %s | no: %s | | | | | | | | |" % (r["name"], r["kind"], r["error"].replace("|", "/")[:160]))
            continue
        fw, en = r.get("framework", {}), r.get("engine", {})
        lines.append("| %s | %s | yes | %s | %s | %d | %d | %s | %s | %s / %s | %s / %s |" % (
            r["name"], r["kind"], cell(fw), cell(en), r["groups"], r["switches"],
            fmt(r["flop_share"] * 100 if r.get("flop_share") is not None else None, ".0f") + "%",
            fmt(r.get("speedup"), ".2f") + "x" if r.get("speedup") else "-",
            fmt(fw.get("first_result_s"), ".1f"), fmt(en.get("first_result_s"), ".1f"),
            fmt(fw.get("peak_mb"), ".0f"), fmt(en.get("peak_mb"), ".0f")))
    return "\n".join(lines)


def details(rows):
    out = []
    for r in rows:
        for mode in ("framework", "engine"):
            m = r.get(mode, {})
            if m.get("error"):
                out.append("- %s, %s: %s" % (r["name"], mode, m["error"]))
            elif m.get("note") and (r["kind"] == "detect" or not m.get("ok", True)):
                out.append("- %s, %s: %s" % (r["name"], mode, m["note"]))
        if r.get("framework_ops") and r.get("groups", 0) > 0:
            out.append("- %s: ops left to the framework: %s" % (r["name"], ", ".join(r["framework_ops"])))
    return "\n".join(out)


def write_docs(rows, args):
    cpu = "unknown CPU"
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    cpu = line.split(":", 1)[1].strip()
                    break
    except OSError:
        pass
    ok = [r for r in rows if "error" not in r and r.get("framework", {}).get("ok") and r.get("engine", {}).get("ok")]
    section = (
        "Written by `make zoo-check` (tools/zoo/zoo_check.py) on %s, %s, %d cores, at batch 1. Each model is "
        "exported by MXNet 1.9.1 + gluoncv with random weights (tools/zoo/export_zoo.py: fixed seeds, BatchNorm "
        "statistics away from identity, non-zero biases) and run by Kiln in framework mode and with the CPU engine, "
        "each in its own process. Differences are max |Kiln - MXNet| / max |MXNet| over every output (tolerance %.0e); "
        "detectors compare MXNet's final ids, scores and boxes with the tie rule in zoo_check.py. *Switches* counts "
        "values handed between the framework and engine groups; *first result* is load + bind + first forward with "
        "an empty engine cache; *peak memory* is the process's maximum resident set; *speed-up* is the framework's "
        "median forward over the engine's.\n\n"
        "%d of %d models load and match MXNet in both modes.\n\n" % (
            datetime.date.today().isoformat(), cpu, os.cpu_count() or 0, args.tolerance, len(ok), len(rows)))
    body = section + table(rows) + "\n\n### Notes\n\n" + (details(rows) or "none") + "\n"
    replace_between(os.path.join(REPO, "docs", "ZOO.md"), "<!-- zoo-check -->", "<!-- /zoo-check -->", body,
                    heading="\n## The real-world zoo against MXNet (`make zoo-check`)\n\n")
    summary = "%d of %d zoo models load and match MXNet 1.9.1 in both modes (`make zoo-check`, %s; notes in docs/ZOO.md).\n\n" % (
        len(ok), len(rows), datetime.date.today().isoformat()) + table(rows) + "\n"
    replace_between(os.path.join(REPO, "README.md"), "<!-- zoo-table -->", "<!-- /zoo-table -->", summary)


def replace_between(path, start, end, body, heading=None):
    """Puts `body` between the markers of the file; appends them (after `heading`) when absent."""
    with open(path) as f:
        text = f.read()
    if start in text and end in text:
        text = text.split(start)[0] + start + "\n" + body + end + text.split(end, 1)[1]
    elif heading is not None:
        text = text.rstrip("\n") + "\n" + heading + start + "\n" + body + end + "\n"
    else:
        print("zoo_check.py: %s has no %s markers; not written" % (path, start))
        return
    with open(path, "w") as f:
        f.write(text)


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--kiln", default=os.path.join(REPO, ".build", "release", "kiln"))
    ap.add_argument("--zoo", default=os.path.join(REPO, "out", "zoo"))
    ap.add_argument("--models", help="comma-separated names (default: all); 'quick' for the CI subset")
    ap.add_argument("--repeat", type=int, default=5, help="timed forwards per mode")
    ap.add_argument("--tolerance", type=float, default=1e-3)
    ap.add_argument("--write-docs", action="store_true", help="write docs/ZOO.md and the README's zoo table")
    a = ap.parse_args()
    if not os.access(a.kiln, os.X_OK):
        sys.exit("zoo_check.py: %s is not an executable; build it with `make release`" % a.kiln)
    wanted = set(QUICK) if a.models == "quick" else set(a.models.split(",")) if a.models else None
    rows = []
    for entry in MODELS:
        if wanted is not None and entry[0] not in wanted:
            continue
        t = time.time()
        r = check_model(entry, a, a.kiln)
        rows.append(r)
        if "error" in r:
            print("%-30s does not load: %s" % (r["name"], r["error"]), flush=True)
        else:
            print("%-30s framework %-12s engine %-12s groups %-3d speed-up %s  (%.0f s)" % (
                r["name"], cell(r.get("framework")), cell(r.get("engine")), r["groups"],
                fmt(r.get("speedup"), ".2f"), time.time() - t), flush=True)
    with open(os.path.join(a.zoo, "results.json"), "w") as f:
        json.dump(rows, f, indent=1)
    if a.write_docs:
        write_docs(rows, a)
    failed = [r["name"] for r in rows if "error" in r or not r.get("framework", {}).get("ok") or not r.get("engine", {}).get("ok")]
    print("%d of %d models load and match MXNet in both modes" % (len(rows) - len(failed), len(rows)))
    if failed:
        print("not matching: " + ", ".join(failed))
        sys.exit(1)


if __name__ == "__main__":
    main()
