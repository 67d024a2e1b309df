#!/usr/bin/env bash
# Kiln's scaling with threads on a bigger CPU (the GPU machine's 16 cores): kiln bench on ResNet-20/56
# at batch 16 and 64, framework and engine (fp32; bf16 and int8 at all threads), OMP_NUM_THREADS
# 1..N. Expects ARCHIVE (a tar.xz holding kiln, lib/ with libdnnl.so.2 and libgomp.so.1, models/),
# built here with `swift build -c release --static-swift-stdlib`. Prints one JSON line per run.
set -euo pipefail
ARCHIVE=${1:?usage: threads.sh ARCHIVE [OUT]}
OUT=${2:-/tmp}
WORK=$(mktemp -d)
tar -C "$WORK" -xJf "$ARCHIVE"
export LD_LIBRARY_PATH="$WORK/lib${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}"
export KILN_ENGINE_CACHE_DIR="$WORK/cache"
CORES=$(nproc)
echo "cores $CORES: $(grep -m1 'model name' /proc/cpuinfo)" | tee "$OUT/threads.txt"
for model in cifar_resnet20_v1 cifar_resnet56_v1; do
  for batch in 16 64; do
    for t in 1 2 4 8 16; do
      [ "$t" -le "$CORES" ] || continue
      for mode in "--engine off" "--engine on --precision fp32"; do
        OMP_NUM_THREADS=$t "$WORK/kiln" bench --symbol "$WORK/models/$model-symbol.json" --params "$WORK/models/$model-0000.params" \
          --shape data=$batch,3,32,32 $mode --seconds 2 --json | tail -1 | tee -a "$OUT/threads.jsonl"
      done
    done
    for p in bf16 int8; do
      OMP_NUM_THREADS=$CORES "$WORK/kiln" bench --symbol "$WORK/models/$model-symbol.json" --params "$WORK/models/$model-0000.params" \
        --shape data=$batch,3,32,32 --engine on --precision $p --seconds 2 --json | tail -1 | tee -a "$OUT/threads.jsonl"
    done
  done
done
