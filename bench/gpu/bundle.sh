#!/usr/bin/env bash
# Prepares what a GPU machine needs to build and check the CUDA programs
# without MLIR: the emitted CUDA sources of a tiny GPT and of gpt2-small, their
# inputs, the CPU backend's losses on the same parameters (--init-seed 0);
# training steps of two GPTs on one rank and partitioned for dp=1, tp=1,
# dp=2 and tp=2 (with the token file and the CPU runs' logs); the runtime sources, the
# JSON header the runtime uses, and MPICH from PyPI for machines without an
# MPI. Copy the directory to the GPU machine and run its run.sh there.
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

# Training steps: one rank, and partitioned. The CPU logs are the reference.
mkdir -p "$bundle/train"
"$build/bin/cleavec" prepare-text /usr/share/common-licenses/GPL-3 \
  -o "$bundle/train/text.bin" > /dev/null
emit_train() {
  local model=$1 name=$2; shift 2
  "$build/bin/cleavec" train "$bundle/train/$model.mlir" --target cuda \
    --emit-only --data "$bundle/train/text.bin" --steps 1 "$@" \
    --out "$bundle/train/$name" > /dev/null
  mv "$bundle/train/$name/$model.cu" "$bundle/train/$name.cu"
  rm -rf "$bundle/train/$name"
  "$build/bin/cleavec" train "$bundle/train/$model.mlir" --target cpu \
    --data "$bundle/train/text.bin" --steps 5 --lr 1e-3 "$@" \
    --out "$build/gpu-bundle-cpu/$name" | grep '^step' > "$bundle/train/$name.cpu-log"
  echo "bundle: $name: CPU losses $(awk '{printf "%s ", $4}' "$bundle/train/$name.cpu-log")"
}
"$build/bin/cleave-models" gpt --layers 2 --hidden 32 --heads 4 --seq 16 \
  --vocab 256 --batch 8 -o "$bundle/train/tiny.mlir"
"$build/bin/cleave-models" gpt --layers 4 --hidden 512 --heads 8 --seq 256 \
  --vocab 256 --batch 16 -o "$bundle/train/mid.mlir"
for model in tiny mid; do
  emit_train $model $model-one
  emit_train $model $model-dp1 --mesh dp=1
  emit_train $model $model-tp1 --mesh tp=1
  emit_train $model $model-dp2 --mesh dp=2
  emit_train $model $model-tp2 --mesh tp=2
  emit_train $model $model-pp2 --mesh pp=2 --micro-batches 4
done
rm -rf "$build/gpu-bundle-cpu"

# An MPI for GPU machines that have none (the runtime uses only the C API).
mkdir -p "$bundle/wheels"
python3 -m pip download -q --no-deps --only-binary=:all: --python-version 3.12 \
  --implementation cp --platform manylinux_2_28_x86_64 -d "$bundle/wheels" \
  mpich==5.0.2 || echo "bundle: no MPICH wheel (pip failed): run.sh needs an MPI there"

cp -r "$root/runtime/include" "$root/runtime/src" "$bundle/"
cp -r /usr/include/nlohmann "$bundle/include/"
cp "$root/bench/gpu/run.sh" "$bundle/"
mkdir -p "$bundle/calibrate"
cp "$root/bench/calibrate/gpu.cu" "$root/bench/calibrate-gpu.py" "$bundle/calibrate/"
cp -r "$root/share/cleave/clusters" "$bundle/"
rm -rf "$bundle/cpu"
echo "bundle: wrote $bundle ($(du -sh "$bundle" | cut -f1))"
