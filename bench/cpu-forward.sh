#!/usr/bin/env bash
# Forward time of a GPT on the CPU backend divided by the time its GEMMs
# alone take in OpenBLAS (same shapes and buffers, replayed back to back).
# The ratio is what code generation costs on top of the unavoidable GEMMs.
#
#   bench/cpu-forward.sh [--preset gpt2-small] [--seq 128] [--batch 1] [--repeat 10]
#
# Needs a build (scripts/setup or scripts/test); writes into build/bench/.
set -euo pipefail

root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
build=${CLEAVE_BUILD_DIR:-$root/build}
preset=gpt2-small seq=128 batch=1 repeat=10
while [[ $# -gt 0 ]]; do
  case $1 in
    --preset) preset=$2; shift 2 ;;
    --seq) seq=$2; shift 2 ;;
    --batch) batch=$2; shift 2 ;;
    --repeat) repeat=$2; shift 2 ;;
    *) echo "cpu-forward.sh: unknown option '$1'" >&2; exit 1 ;;
  esac
done

work=$build/bench/$preset-b$batch-s$seq
mkdir -p "$work"
"$build/bin/cleave-models" gpt --preset "$preset" --seq "$seq" --batch "$batch" \
  -o "$work/model.mlir"
"$build/bin/cleavec" build "$work/model.mlir" --target cpu -o "$work" |
  grep -v '^cleavec: build:'
vocab=$(sed -n 's/.*tensor<\([0-9]*\)x[0-9]*x[a-z0-9]*> {[^}]*cleave.param = "embed.tokens"}.*/\1/p' \
  "$work/model.mlir")
/usr/bin/python3 "$root/test/e2e/reference.py" make-inputs --model gpt \
  --batch "$batch" --seq "$seq" --vocab "$vocab" --seed 0 -o "$work/inputs.safetensors"

echo "machine: $(nproc) cores, $(lscpu | sed -n 's/^Model name: *//p')"
"$work/model" --init-seed 0 --inputs "$work/inputs.safetensors" \
  --repeat "$repeat" --gemm-baseline
