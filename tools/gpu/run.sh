#!/usr/bin/env bash
# Runs Kiln's GPU experiments on the GPU machine (../shared/NOTES.md): unpacks what
# tools/gpu/package.sh packed, points the loader at CUDA's libraries in PyTorch's venv, then
#   1. kiln devices                      (libraries and GPUs found)
#   2. kiln gpu-check                    (every GPU kernel against the reference kernels; models GPU vs CPU)
#   3. kiln bench --context gpu          (the GPU's framework mode, cifar_resnet56_v1, batch 1, 16, 64)
#   4. tools/gpu/torch_bench.py          (PyTorch on the same architecture, same batches)
# and writes JSON lines and a markdown table into RESULTS (default bench/results, or $OUT when set).
#
# Usage: bash tools/gpu/run.sh [--torch-compile]
set -uo pipefail
cd "$(dirname "$0")/../.."
results=${OUT:-bench/results}
mkdir -p "$results" /tmp/kiln-gpu
tar -C /tmp/kiln-gpu -xJf .devcarry/kiln-gpu.tar.xz
K=/tmp/kiln-gpu/kiln
export LD_LIBRARY_PATH=$K/lib:${LD_LIBRARY_PATH:-}
venv=/opt/torch/.venv/lib/python3.12/site-packages/nvidia
export KILN_CUDA_PATH=${KILN_CUDA_PATH:-$venv/cu13/lib:$venv/cudnn/lib}
export KILN_MODEL_DIR=$K/models
log=$results/gpu-run.log
: > "$log"
say() { echo "$@" | tee -a "$log"; }

say "== kiln devices"
$K/kiln devices --json 2>&1 | tee -a "$log" | tail -1 > "$results/gpu-devices.json"
say "== kiln gpu-check"
$K/kiln gpu-check --output "$results/gpu-check.json" 2>&1 | tee -a "$log"

say "== kiln bench --context gpu"
jsonl=$results/gpu-bench.jsonl
: > "$jsonl"
prefix=$K/bench-models/cifar_resnet56_v1
for b in 1 16 64; do
    for rep in 1 2 3; do
        $K/kiln bench --symbol $prefix-symbol.json --params $prefix-0000.params --shape data=$b,3,32,32 \
            --engine off --context gpu --seconds 2 --json 2>>"$log" | tail -1 >> "$jsonl"
    done
done
cat "$jsonl" >> "$log"

say "== PyTorch"
python3 tools/gpu/torch_bench.py --batches 1,16,64 "$@" 2>>"$log" | tee -a "$log" >> "$jsonl"
python3 tools/gpu/report.py "$jsonl" "$results/gpu-latest.md" 2>&1 | tee -a "$log"
