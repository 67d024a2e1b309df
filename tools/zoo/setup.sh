#!/usr/bin/env bash
# The venv `make zoo-check` exports the zoo with: MXNet 1.9.1, numpy 1.23.5 and gluoncv (the same
# venv as the golden files', tools/golden/make_golden.sh), plus the small packages `import gluoncv`
# needs. gluoncv is installed with --no-deps (its pinned dependencies would replace numpy); these
# are the ones its model zoo imports at start. Override the venv with KILN_GOLDEN_VENV.
set -euo pipefail
REPO="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
VENV="${KILN_GOLDEN_VENV:-$REPO/.venv-golden}"
if [ ! -x "$VENV/bin/python" ]; then
    # make_golden.sh makes the venv; --help-only is not an option, so build it the same way here.
    PY=""
    for p in python3.11 python3.10 python3.9 python3.8; do
        if command -v "$p" >/dev/null 2>&1; then PY="$p"; break; fi
    done
    [ -n "$PY" ] || { echo "tools/zoo/setup.sh: need Python 3.8-3.11 for numpy 1.23.5 / mxnet 1.9.1" >&2; exit 1; }
    echo "creating venv $VENV with $PY"
    "$PY" -m venv "$VENV"
    "$VENV/bin/python" -m pip install -q --upgrade pip
    "$VENV/bin/python" -m pip install -q "mxnet==1.9.1" "numpy==1.23.5"
    "$VENV/bin/python" -m pip install -q --no-deps "gluoncv==0.10.5.post0"
fi
if ! "$VENV/bin/python" -c 'import gluoncv.model_zoo' >/dev/null 2>&1; then
    echo "installing gluoncv's import-time dependencies into $VENV"
    "$VENV/bin/python" -m pip install -q tqdm requests "Pillow<11" portalocker "scipy<1.12" pyyaml yacs "numpy==1.23.5"
fi
"$VENV/bin/python" -c 'import gluoncv.model_zoo, mxnet; assert mxnet.__version__ == "1.9.1", mxnet.__version__'
