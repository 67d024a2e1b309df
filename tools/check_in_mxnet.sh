#!/usr/bin/env bash
# Scores a Kiln checkpoint in real MXNet 1.9.1 (installed into .venv-golden, as `make golden` does).
# Usage: tools/check_in_mxnet.sh PREFIX EPOCH [KILN_ACCURACY]
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
venv="${KILN_GOLDEN_VENV:-$root/.venv-golden}"
if [ ! -x "$venv/bin/python" ]; then
  py=$(for p in python3.11 python3.10 python3.9 python3.8 python3; do command -v $p && break; done | head -1)
  "$py" -m venv "$venv"
  "$venv/bin/pip" install -q mxnet==1.9.1 numpy==1.23.5
fi
MXNET_SUBGRAPH_BACKEND=NONE "$venv/bin/python" "$root/tools/check_in_mxnet.py" "$1" "$2" \
  "${KILN_DATA_DIR:-$HOME/.kiln/data}/mnist" ${3:-} 2>&1 | grep -v "subgraph backend"
