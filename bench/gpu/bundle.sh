#!/usr/bin/env bash
# Prepares what a GPU machine needs to build and check the CUDA programs
# without MLIR: the emitted CUDA sources of a tiny GPT and of gpt2-small, their
# inputs, the CPU backend's losses on the same parameters (--init-seed 0), the
# runtime sources and the JSON header the runtime uses. Copy the directory to
# the GPU machine and run its run.sh there.
#
#   bench/gpu/bundle.sh [DIR]      (default: build/gpu-bundle)
set -euo pipefail

root=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
build=${CLEAVE_BUILD_DIR:-$root/build}
bundle=${1:-$build/gpu-bundle}
rm -rf "$bundle"
mkdir -p "$bundle/models" "$bundle/cpu" "$bundle/include"

emit() {
  local name=$1; shift
  "$build/bin/cleave-models" gpt "$@" -o "$bundle/models/$name.mlir"
  "$build/bin/cleavec" build "$bundle/models/$name.mlir" --target cuda \
    --emit-only -o "$bundle/models" > /dev/null
  "$build/bin/cleavec" build "$bundle/models/$name.mlir" --target cpu \
    -o "$bundle/cpu" > /dev/null
  local vocab
  vocab=$(sed -n 's/.*tensor<\([0-9]*\)x[0-9]*x[a-z0-9]*> {cleave.param = "embed.tokens"}.*/\1/p' \
    "$bundle/models/$name.mlir")
  /usr/bin/python3 "$root/test/e2e/reference.py" make-inputs --model gpt \
    --batch "$batch" --seq "$seq" --vocab "$vocab" --seed 0 \
    -o "$bundle/models/$name.inputs.safetensors"
  "$bundle/cpu/$name" --init-seed 0 --inputs "$bundle/models/$name.inputs.safetensors" \
    | sed -n 's/^loss: //p' > "$bundle/models/$name.cpu-loss"
  echo "bundle: $name: CPU loss $(cat "$bundle/models/$name.cpu-loss")"
}

batch=2 seq=64
emit gpt-tiny --layers 2 --hidden 64 --heads 4 --seq $seq --vocab 256 --batch $batch
batch=1 seq=128
emit gpt2-small --preset gpt2-small --seq $seq --batch $batch

cp -r "$root/runtime/include" "$root/runtime/src" "$bundle/"
cp -r /usr/include/nlohmann "$bundle/include/"
cp "$root/bench/gpu/run.sh" "$bundle/"
rm -rf "$bundle/cpu"
echo "bundle: wrote $bundle ($(du -sh "$bundle" | cut -f1))"
