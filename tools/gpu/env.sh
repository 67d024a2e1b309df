# Sourced by the GPU machine's scripts (ab.sh, ab_binaries.sh): unpacks what tools/gpu/package.sh
# packed (once; KILN_GPU_TARBALL names another tarball), sets K to the unpacked folder and points the
# loader at its libraries and at CUDA's in PyTorch's venv.
mkdir -p /tmp/kiln-gpu
[ -x /tmp/kiln-gpu/kiln/kiln ] || tar -C /tmp/kiln-gpu -xJf "${KILN_GPU_TARBALL:-.devcarry/kiln-gpu.tar.xz}"
K=/tmp/kiln-gpu/kiln
export LD_LIBRARY_PATH=$K/lib:${LD_LIBRARY_PATH:-}
venv=/opt/torch/.venv/lib/python3.12/site-packages/nvidia
export KILN_CUDA_PATH=${KILN_CUDA_PATH:-$venv/cu13/lib:$venv/cudnn/lib}
prefix=$K/bench-models/cifar_resnet56_v1
