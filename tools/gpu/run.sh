#!/usr/bin/env bash
# Runs Kiln's GPU experiments on the GPU machine (../shared/NOTES.md): unpacks what
# tools/gpu/package.sh packed, points the loader at CUDA's libraries in PyTorch's venv, then
#   1. kiln devices                      (libraries and GPUs found)
#   2. kiln gpu-check                    (the conformance suite's golden cases on the GPU framework and the
#                                         cuda engine, log in gpu-conformance.txt; models GPU vs CPU)
#   3. kiln bench --context gpu          (the GPU's framework mode, cifar_resnet56_v1, batch 1, 16, 64)
#   4. tools/gpu/torch_bench.py          (PyTorch on the same architecture, same batches)
# and writes JSON lines and a markdown table into RESULTS (default bench/results, or $OUT when set).
#
# Usage: [TORCH_ARGS=--torch-compile] bash tools/gpu/run.sh
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
# GPU_RUN_STEPS picks steps (default all): devices,check,zoo,first,bench,torch
steps=${GPU_RUN_STEPS:-devices,check,zoo,first,bench,torch}
want() { [[ ",$steps," == *",$1,"* ]]; }

want devices && { say "== kiln devices"
$K/kiln devices --json 2>&1 | tee -a "$log" | tail -1 > "$results/gpu-devices.json"; }
want check && { say "== kiln gpu-check"
lenet=()
[ -f $K/lenet/lenet-symbol.json ] && lenet=(--lenet $K/lenet/lenet --lenet-epoch 1 --mnist $K/data/mnist)
$K/kiln gpu-check --golden $K/golden --output "$results/gpu-check.json" "${lenet[@]}" 2>&1 | tee -a "$log" \
    | tee "$results/gpu-conformance.txt"; }

want zoo && { say "== kiln zoo --context gpu (the seed's experiment on the GPU, trained models, Fashion-MNIST-32 test set)"
for p in fp32 fp16 bf16; do
    KILN_ENGINE_PRECISION=$p $K/kiln zoo --context gpu --batch 16 --models "$(cd $K/models && ls *.params | sed 's/.params//' | paste -sd,)" \
        --data-dir $K/data/fashion-mnist --model-dir $K/models 2>&1 | tee -a "$log" | tee "$results/gpu-zoo-$p.txt" | tail -8
done; }

want first && { say "== first result with a cold, then a warm engine cache (fp16, batch 16)"
export KILN_ENGINE_CACHE_DIR=$(mktemp -d)
prefix=$K/bench-models/cifar_resnet56_v1
: > "$results/gpu-first.jsonl"
for c in cold warm; do
    $K/kiln bench --symbol $prefix-symbol.json --params $prefix-0000.params --shape data=16,3,32,32 --engine on --precision fp16 \
        --context gpu --seconds 0.2 --json 2>>"$log" | tail -1 | sed "s/^{/{\"cache\":\"$c\",/" | tee -a "$log" >> "$results/gpu-first.jsonl"
done; }

jsonl=$results/gpu-bench.jsonl
: > "$jsonl"
want bench && { say "== kiln bench --context gpu"
prefix=$K/bench-models/cifar_resnet56_v1
for b in 1 16 64; do
    for rep in 1 2 3; do
        # --async: forwards started back to back (Executor.startForward), as PyTorch's async column.
        for cfg in "off fp32" "on fp32" "on fp16" "on bf16" "on fp32 --async" "on fp16 --async"; do
            set -- $cfg
            $K/kiln bench --symbol $prefix-symbol.json --params $prefix-0000.params --shape data=$b,3,32,32 \
                --engine $1 --precision $2 ${3:-} --context gpu --seconds 2 --json 2>>"$log" | tail -1 >> "$jsonl"
        done
    done
done
# The engine's device time per launch (KILN_ENGINE_CUDA_PROFILE), fp16, batch 1 and 16.
for b in 1 16; do
    KILN_ENGINE_CUDA_PROFILE=1 $K/kiln bench --symbol $prefix-symbol.json --params $prefix-0000.params --shape data=$b,3,32,32 \
        --engine on --precision fp16 --context gpu --seconds 1 2>&1 | grep -v '^{' | tee -a "$log" | tee "$results/gpu-profile-b$b.txt"
done; }

want torch && { say "== PyTorch"
python3 tools/gpu/torch_bench.py --batches 1,16,64 ${TORCH_ARGS:-} 2>>"$log" | tee -a "$log" >> "$jsonl"; }
python3 tools/gpu/report.py "$jsonl" "$results/gpu-latest.md" "$results/gpu-first.jsonl" 2>&1 | tee -a "$log"
