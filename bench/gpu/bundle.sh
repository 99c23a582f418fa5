#!/usr/bin/env bash
# Prepares what a GPU machine needs to check and measure the CUDA backend
# without MLIR (run.sh, copied in, does the rest there):
#  - the runtime's sources, its kernel tests with GoogleTest's sources, the
#    kernel bandwidth benchmark, the JSON header the runtime uses;
#  - emitted CUDA sources: forward programs (a tiny GPT; gpt2-small at
#    batch 1 x 128 and 8 x 1024) with their inputs; training steps of a tiny
#    and a mid GPT on one rank and partitioned (dp=1, tp=1, dp=2, tp=2, a
#    pp=2 pipeline); gpt2-small's training step, AdamW, batch 8 x 1024, in
#    f32 and in bf16, with its model FLOPs per step;
#  - the CPU backend's losses for the small ones (the reference), a token
#    file, PyTorch's gpt2-small (torch_gpt2.py), the cluster files, and
#    MPICH from PyPI for GPU machines that have no MPI.
# Copy the directory to the GPU machine and run its run.sh there.
#
#   bench/gpu/bundle.sh [--sources-only] [DIR]      (default: build/gpu-bundle)
#
# --sources-only leaves out the CPU reference runs and MPICH: what a build
# check needs (run.sh --build-only then uses the system's MPI).
set -euo pipefail

root=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
build=${CLEAVE_BUILD_DIR:-$root/build}
sources_only=0
if [[ ${1:-} == --sources-only ]]; then
  sources_only=1
  shift
fi
bundle=${1:-$build/gpu-bundle}
rm -rf "$bundle"
mkdir -p "$bundle/models" "$bundle/cpu" "$bundle/include" "$bundle/train"

# A forward program: its CUDA source and inputs, and (unless --sources-only
# or `reference` is no) the CPU backend's loss on parameters --init-seed 0.
emit() {
  local name=$1 reference=$2; shift 2
  "$build/bin/cleave-models" gpt "$@" -o "$bundle/models/$name.mlir"
  "$build/bin/cleavec" build "$bundle/models/$name.mlir" --target cuda \
    --emit-only -o "$bundle/models" > /dev/null
  local vocab
  vocab=$(sed -n 's/.*tensor<\([0-9]*\)x[0-9]*x[a-z0-9]*> {[^}]*cleave.param = "embed.tokens"}.*/\1/p' \
    "$bundle/models/$name.mlir")
  /usr/bin/python3 "$root/test/e2e/reference.py" make-inputs --model gpt \
    --batch "$batch" --seq "$seq" --vocab "$vocab" --seed 0 \
    -o "$bundle/models/$name.inputs.safetensors"
  if [[ $sources_only == 0 && $reference == yes ]]; then
    "$build/bin/cleavec" build "$bundle/models/$name.mlir" --target cpu \
      -o "$bundle/cpu" > /dev/null
    "$bundle/cpu/$name" --init-seed 0 --inputs "$bundle/models/$name.inputs.safetensors" \
      | sed -n 's/^loss: //p' > "$bundle/models/$name.cpu-loss"
    echo "bundle: $name: CPU loss $(cat "$bundle/models/$name.cpu-loss")"
  fi
}

batch=2 seq=64
emit gpt-tiny yes --layers 2 --hidden 64 --heads 4 --seq $seq --vocab 256 --batch $batch
batch=1 seq=128
emit gpt2-small yes --preset gpt2-small --seq $seq --batch $batch
# The issue's shape: batch 8 x 1024 (no CPU reference: minutes on a CPU).
batch=8 seq=1024
emit gpt2-small-b8 no --preset gpt2-small --seq $seq --batch $batch

# Training steps: one rank, and partitioned. The CPU logs are the reference.
"$build/bin/cleavec" prepare-text /usr/share/common-licenses/GPL-3 \
  -o "$bundle/train/text.bin" > /dev/null
emit_train() {
  local model=$1 name=$2; shift 2
  "$build/bin/cleavec" train "$bundle/train/$model.mlir" --target cuda \
    --emit-only --data "$bundle/train/text.bin" --steps 1 "$@" \
    --out "$bundle/train/$name" > /dev/null
  mv "$bundle/train/$name/$model.cu" "$bundle/train/$name.cu"
  rm -rf "$bundle/train/$name"
  [[ $sources_only == 1 || $model == gpt2 ]] && return
  "$build/bin/cleavec" train "$bundle/train/$model.mlir" --target cpu \
    --data "$bundle/train/text.bin" --steps 5 --lr 1e-3 "$@" \
    --out "$build/gpu-bundle-cpu/$name" | grep '^step' > "$bundle/train/$name.cpu-log"
  echo "bundle: $name: CPU losses $(awk '{printf "%s ", $4}' "$bundle/train/$name.cpu-log")"
}
"$build/bin/cleave-models" gpt --layers 2 --hidden 32 --heads 4 --seq 16 \
  --vocab 256 --batch 8 -o "$bundle/train/tiny.mlir"
"$build/bin/cleave-models" gpt --layers 4 --hidden 512 --heads 8 --seq 256 \
  --vocab 256 --batch 16 -o "$bundle/train/mid.mlir"
"$build/bin/cleave-models" gpt --preset gpt2-small --seq 1024 --batch 8 \
  -o "$bundle/train/gpt2.mlir"
for model in tiny mid; do
  emit_train $model $model-one
  emit_train $model $model-dp1 --mesh dp=1
  emit_train $model $model-tp1 --mesh tp=1
  emit_train $model $model-dp2 --mesh dp=2
  emit_train $model $model-tp2 --mesh tp=2
  emit_train $model $model-pp2 --mesh pp=2 --micro-batches 4
done
emit_train gpt2 gpt2-one
emit_train gpt2 gpt2-bf16 --precision bf16
# Model FLOPs per step as Megatron-LM counts them: 3x the forward's matmuls.
"$build/bin/cleave-opt" "$bundle/train/gpt2.mlir" --cleave-print-cost=json=true \
  -o /dev/null | head -1 |
  python3 -c 'import json, sys; print(3 * json.load(sys.stdin)["matmul_flops"])' \
  > "$bundle/train/gpt2.flops-per-step"
rm -rf "$build/gpu-bundle-cpu" "$bundle/cpu"

# An MPI for GPU machines that have none (the runtime uses only the C API).
mkdir -p "$bundle/wheels"
if [[ $sources_only == 0 ]]; then
  python3 -m pip download -q --no-deps --only-binary=:all: --python-version 3.12 \
    --implementation cp --platform manylinux_2_28_x86_64 -d "$bundle/wheels" \
    mpich==5.0.2 || echo "bundle: no MPICH wheel (pip failed): run.sh needs an MPI there"
fi

cp -r "$root/runtime/include" "$root/runtime/src" "$root/runtime/tests" "$bundle/"
cp -r /usr/include/nlohmann "$bundle/include/"
# GoogleTest, built from source there like here (Debian's googletest).
mkdir -p "$bundle/googletest"
cp -r /usr/src/googletest/googletest/include /usr/src/googletest/googletest/src \
  "$bundle/googletest/"
mkdir -p "$bundle/bench"
cp "$root/bench/kernels/bandwidth.cpp" "$root/bench/gpu/torch_gpt2.py" "$bundle/bench/"
cp "$root/bench/gpu/run.sh" "$bundle/"
mkdir -p "$bundle/calibrate"
cp "$root/bench/calibrate/gpu.cu" "$root/bench/calibrate-gpu.py" "$bundle/calibrate/"
cp -r "$root/share/cleave/clusters" "$bundle/"
echo "bundle: wrote $bundle ($(du -sh "$bundle" | cut -f1))"
