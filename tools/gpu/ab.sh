#!/usr/bin/env bash
# A/B of a cuda engine setting on the GPU machine: runs `kiln bench --context gpu --engine on` on
# cifar_resnet56_v1 for each setting in turn, interleaved over ROUNDS rounds, waiting for each
# forward and with --async, and prints one JSON line per run (with the setting as "setting").
#
# Usage (after tools/gpu/package.sh, on the GPU machine):
#   AB_A="KILN_ENGINE_CUDA_TUNE=0" AB_B="KILN_ENGINE_CUDA_TUNE=1" [PRECISION=fp16] [BATCHES=1,16,64] [ROUNDS=3] bash tools/gpu/ab.sh
set -uo pipefail
cd "$(dirname "$0")/../.."
. tools/gpu/env.sh
for r in $(seq "${ROUNDS:-3}"); do
    for b in $(echo "${BATCHES:-1,16,64}" | tr , ' '); do
        for setting in "${AB_A:-}" "${AB_B:-}"; do
            for mode in "" --async; do
                env $setting $K/kiln bench --symbol $prefix-symbol.json --params $prefix-0000.params --shape data=$b,3,32,32 \
                    --engine on --precision "${PRECISION:-fp16}" $mode --context gpu --seconds 1 --json 2>/dev/null | tail -1 \
                    | sed "s/^{/{\"setting\":\"$setting\",/"
            done
        done
    done
done
