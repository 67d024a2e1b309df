#!/usr/bin/env bash
# Creates the two Python environments `make bench` needs, if absent:
#   .venv-bench-mx     MXNet 1.9.1 (numpy 1.23.5, onnx 1.14.1, protobuf 3.20.3; gluoncv 0.10.5.post0
#                      without its dependencies, for the CIFAR ResNet definitions): exports the models
#                      and times MXNet.
#   .venv-bench-peers  ONNX Runtime, OpenVINO, numpy 2, matplotlib: times the peers, runs run.py.
# They are two because MXNet 1.9.1 needs numpy < 1.24 and the peers need numpy 2.
#
#   bash tools/bench/setup.sh
#
# KILN_BENCH_PYTHON picks the interpreter for the MXNet venv (3.8-3.11: numpy 1.23.5 has no wheels
# for 3.12 and later).
set -euo pipefail

REPO="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
MX="$REPO/.venv-bench-mx"
PEERS="$REPO/.venv-bench-peers"

pick_python() {
    if [ -n "${KILN_BENCH_PYTHON:-}" ]; then echo "$KILN_BENCH_PYTHON"; return; fi
    for p in python3.11 python3.10 python3.9 python3.8 python3; do
        if command -v "$p" >/dev/null 2>&1 &&
           "$p" -c 'import sys; sys.exit(0 if (3, 8) <= sys.version_info[:2] <= (3, 11) else 1)'; then
            echo "$p"; return
        fi
    done
    echo "setup.sh: need Python 3.8-3.11 for numpy 1.23.5 / mxnet 1.9.1 (set KILN_BENCH_PYTHON)" >&2
    exit 1
}

PY="$(pick_python)"
if [ ! -x "$MX/bin/python" ] || ! "$MX/bin/python" -c 'import mxnet, onnx' >/dev/null 2>&1; then
    echo "setup.sh: creating $MX with $PY"
    "$PY" -m venv "$MX"
    "$MX/bin/python" -m pip install -q "mxnet==1.9.1" "numpy==1.23.5" "onnx==1.14.1" "protobuf==3.20.3"
    # Only gluoncv/model_zoo/cifarresnet.py is used (make_models.py loads that file alone).
    "$MX/bin/python" -m pip install -q --no-deps "gluoncv==0.10.5.post0"
fi
if [ ! -x "$PEERS/bin/python" ] || ! "$PEERS/bin/python" -c 'import onnxruntime, openvino, matplotlib' >/dev/null 2>&1; then
    echo "setup.sh: creating $PEERS with $PY"
    "$PY" -m venv "$PEERS"
    "$PEERS/bin/python" -m pip install -q "numpy>=2" onnxruntime openvino matplotlib
fi
"$MX/bin/python" -c 'import mxnet, numpy, onnx; print("mx venv: mxnet", mxnet.__version__, "numpy", numpy.__version__, "onnx", onnx.__version__)'
"$PEERS/bin/python" -c 'import onnxruntime, openvino, numpy; print("peers venv: onnxruntime", onnxruntime.__version__, "openvino", openvino.__version__, "numpy", numpy.__version__)'
