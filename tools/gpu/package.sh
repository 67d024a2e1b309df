#!/usr/bin/env bash
# Builds the static-stdlib kiln binary here and packs what the GPU machine needs into
# .devcarry/kiln-gpu.tar.xz (kept under the device tool's 64 MiB): the binary, oneDNN and the other
# shared libraries it links (the GPU machine has none of them), the zoo's trained weights, the
# benchmark checkpoints and the conformance suite's golden per-op cases. tools/gpu/run.sh unpacks and
# runs it there.
set -euo pipefail
cd "$(dirname "$0")/../.."
swift build -c release --static-swift-stdlib --scratch-path .build-static --product kiln \
    --explicit-target-dependency-import-check error
stage=$(mktemp -d)
mkdir -p "$stage/kiln/lib" "$stage/kiln/models" "$stage/kiln/bench-models"
cp .build-static/release/kiln "$stage/kiln/kiln"
strip "$stage/kiln/kiln"
# The shared libraries the binary links that a bare Ubuntu with CUDA lacks.
for lib in $(ldd .build-static/release/kiln | awk '/=>/ {print $3}'); do
    case "$(basename "$lib")" in
        libdnnl*|libgomp*|libjpeg*|libpng*|libz.so*|libOpenCL*) cp -L "$lib" "$stage/kiln/lib/" ;;
    esac
done
cp models/*.params "$stage/kiln/models/" 2>/dev/null || true
if [ -d bench/models ]; then
    cp bench/models/cifar_resnet56_v1-symbol.json bench/models/cifar_resnet56_v1-0000.params "$stage/kiln/bench-models/"
fi
# The golden MXNet cases that `kiln gpu-check --golden` runs on the GPU's backends (inference only, so
# not grads/).
mkdir -p "$stage/kiln/golden"
cp -r Tests/Fixtures/golden/ops "$stage/kiln/golden/ops"
# Test data and a trained LeNet-5 for the engine's accuracy checks there, when they are here.
mkdir -p "$stage/kiln/data/mnist" "$stage/kiln/data/fashion-mnist" "$stage/kiln/lenet"
mnist=${KILN_DATA_DIR:-/tmp/kilndata}/mnist
cp "$mnist"/t10k-*-idx*-ubyte.gz "$stage/kiln/data/mnist/" 2>/dev/null || echo "package: no MNIST test set in $mnist (make data)"
cp /usr/share/datasets/fashion-mnist/t10k-*-idx*-ubyte.gz "$stage/kiln/data/fashion-mnist/" 2>/dev/null \
    || echo "package: no Fashion-MNIST test set (make fashion-mnist)"
lenet=${LENET_PREFIX:-out/lenet5}
if [ -f "$lenet-symbol.json" ]; then
    last=$(ls "$lenet"-0*.params | sort | tail -1)
    cp "$lenet-symbol.json" "$stage/kiln/lenet/lenet-symbol.json"
    cp "$last" "$stage/kiln/lenet/lenet-0001.params"
else
    echo "package: no trained LeNet-5 at $lenet (kiln lenet --prefix $lenet); gpu-check uses random weights"
fi
mkdir -p .devcarry
tar -C "$stage" -cJf .devcarry/kiln-gpu.tar.xz kiln
rm -rf "$stage"
ls -la .devcarry/kiln-gpu.tar.xz
