#!/usr/bin/env bash
# Regenerate Kiln's golden fixtures (Tests/Fixtures/golden/) with real MXNet 1.9.1.
#
#   bash tools/golden/make_golden.sh
#
# Creates a private venv at <repo>/.venv-golden on first use (override the
# location with KILN_GOLDEN_VENV=/path/to/venv, e.g. an existing venv that
# already has mxnet==1.9.1, numpy==1.23.5 and gluoncv==0.10.5.post0).
# numpy 1.23.5 has no wheels for Python >= 3.12, so a Python 3.8-3.11
# interpreter is picked (override with KILN_GOLDEN_PYTHON=/path/to/python3.x).
set -euo pipefail

REPO="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
VENV="${KILN_GOLDEN_VENV:-$REPO/.venv-golden}"

pick_python() {
    if [ -n "${KILN_GOLDEN_PYTHON:-}" ]; then echo "$KILN_GOLDEN_PYTHON"; return; fi
    for p in python3.11 python3.10 python3.9 python3.8 python3; do
        if command -v "$p" >/dev/null 2>&1 &&
           "$p" -c 'import sys; sys.exit(0 if (3, 8) <= sys.version_info[:2] <= (3, 11) else 1)'; then
            echo "$p"; return
        fi
    done
    echo "make_golden.sh: need Python 3.8-3.11 for numpy 1.23.5 / mxnet 1.9.1" >&2
    exit 1
}

if [ ! -x "$VENV/bin/python" ]; then
    PY="$(pick_python)"
    echo "creating venv $VENV with $PY"
    "$PY" -m venv "$VENV"
    "$VENV/bin/python" -m pip install --upgrade pip
    "$VENV/bin/python" -m pip install "mxnet==1.9.1" "numpy==1.23.5"
    # only gluoncv/model_zoo/cifarresnet.py is used; make_golden.py loads that
    # file directly, so none of gluoncv's (heavy) dependencies are needed.
    "$VENV/bin/python" -m pip install --no-deps "gluoncv==0.10.5.post0"
fi

cd "$REPO"
export MXNET_SUBGRAPH_BACKEND=NONE   # the fused subgraph path gives wrong answers
export OMP_NUM_THREADS="${OMP_NUM_THREADS:-1}"
# MXNet logs one line per bind with the subgraph backend off; keep the rest.
"$VENV/bin/python" "$REPO/tools/golden/make_golden.py" "$@" 2> >(grep -v "subgraph backend is not in use" >&2)
"$VENV/bin/python" "$REPO/tools/golden/make_golden_grads.py" 2> >(grep -v "subgraph backend is not in use" >&2)
