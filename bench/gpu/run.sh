#!/usr/bin/env bash
# Runs on the GPU machine, inside a directory made by bench/gpu/bundle.sh:
# builds the CUDA runtime and the emitted models with nvcc, runs each with
# parameters initialized on the machine (--init-seed 0), compares the loss
# with the CPU backend's and prints the forward time.
#
#   ./run.sh [--build-only] [--arch native|90|80,90]
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
nvcc=${NVCC:-$(command -v nvcc || echo /usr/local/cuda/bin/nvcc)}
arch=native build_only=0
while [[ $# -gt 0 ]]; do
  case $1 in
    --build-only) build_only=1; shift ;;
    --arch) arch=$2; shift 2 ;;
    *) echo "run.sh: unknown option '$1'" >&2; exit 1 ;;
  esac
done
if [[ $arch == native ]]; then
  archflags=(-arch=native)
else
  archflags=()
  for a in ${arch//,/ }; do archflags+=("-gencode=arch=compute_$a,code=sm_$a"); done
fi

out=$here/out
mkdir -p "$out/obj"
flags=(-O3 -std=c++17 -I"$here/include")
for source in DType Init Safetensors Runner; do
  "$nvcc" "${flags[@]}" -x c++ -c "$here/src/$source.cpp" -o "$out/obj/$source.o" &
done
for source in ContextCuda GemmCuda KernelsCuda; do
  "$nvcc" "${flags[@]}" "${archflags[@]}" -c "$here/src/$source.cu" -o "$out/obj/$source.o" &
done
wait
for model in "$here"/models/*.cu; do
  name=$(basename "$model" .cu)
  "$nvcc" "${flags[@]}" "${archflags[@]}" "$model" "$out"/obj/*.o -lcublasLt \
    -o "$out/$name"
  echo "run: built $name"
done
[[ $build_only == 1 ]] && exit 0

nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv,noheader || true
for model in "$here"/models/*.cu; do
  name=$(basename "$model" .cu)
  result=$("$out/$name" --init-seed 0 --inputs "$here/models/$name.inputs.safetensors" \
    --repeat 20 --gemm-baseline)
  echo "$result" | sed "s/^/$name: /"
  gpu=$(echo "$result" | sed -n 's/^loss: //p')
  cpu=$(cat "$here/models/$name.cpu-loss")
  /usr/bin/env python3 -c "
g, c = float('$gpu'), float('$cpu')
print('$name: loss gpu %.9g cpu %.9g relative difference %.3e' % (g, c, abs(g - c) / max(1.0, abs(c))))"
done
