#!/usr/bin/env bash
# A/B of two kiln binaries on the GPU machine (a change's "before" and "after"): `kiln bench --context
# gpu --engine on` on cifar_resnet56_v1 with each binary in turn, interleaved over ROUNDS rounds,
# waiting for each forward and with --async; one JSON line per run, with "binary": "a" or "b".
#
# Usage (after tools/gpu/package.sh, on the GPU machine; KILN_A and KILN_B are the two binaries):
#   [KILN_GPU_TARBALL=.devcarry/kiln-ab.tar.xz] KILN_A=/tmp/kiln-gpu/kiln/kiln-before KILN_B=/tmp/kiln-gpu/kiln/kiln [PRECISIONS=fp32,fp16] [BATCHES=1,16,64] [ROUNDS=3] \
#       bash tools/gpu/ab_binaries.sh
set -uo pipefail
cd "$(dirname "$0")/../.."
. tools/gpu/env.sh
for r in $(seq "${ROUNDS:-3}"); do
    for b in $(echo "${BATCHES:-1,16,64}" | tr , ' '); do
        for p in $(echo "${PRECISIONS:-fp32,fp16}" | tr , ' '); do
            for mode in "" --async; do
                # Alternate which binary goes first, so drift touches both alike.
                order="a b"; [ $((r % 2)) -eq 0 ] && order="b a"
                for side in $order; do
                    bin=$KILN_A; [ "$side" = b ] && bin=$KILN_B
                    $bin bench --symbol $prefix-symbol.json --params $prefix-0000.params --shape data=$b,3,32,32 \
                        --engine on --precision "$p" $mode --context gpu --seconds 1 --json 2>/dev/null | tail -1 \
                        | sed "s/^{/{\"binary\":\"$side\",\"mode\":\"${mode:-sync}\",/"
                done
            done
        done
    done
done
