#!/usr/bin/env bash
# Peak memory of gpt2-small's forward and gradient programs on the CPU
# backend at the same number of tokens, 4,096: sequence 1,024 x batch 4
# against sequence 4,096 x batch 1. Attention that held its [S, T] scores
# would need 4x more for them at the longer sequence; fused attention
# keeps the two within a small factor. Prints one line per program and the
# ratios (goal: at most 1.5).
#
#   bench/cpu-attention-memory.sh [--preset gpt2-small] [--layers N]
#
# Needs a build (scripts/setup or scripts/test); writes into build/bench/.
set -euo pipefail

root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
build=${CLEAVE_BUILD_DIR:-$root/build}
preset=gpt2-small layers=()
while [[ $# -gt 0 ]]; do
  case $1 in
    --preset) preset=$2; shift 2 ;;
    --layers) layers=(--layers "$2"); shift 2 ;;
    *) echo "cpu-attention-memory.sh: unknown option '$1'" >&2; exit 1 ;;
  esac
done

# peak MiB of one run of the program built for SEQ x BATCH, MODE forward or
# gradients.
measure() {
  local seq=$1 batch=$2 mode=$3
  local work=$build/bench/memory-$preset-s$seq-b$batch-$mode
  mkdir -p "$work"
  "$build/bin/cleave-models" gpt --preset "$preset" "${layers[@]}" \
    --seq "$seq" --batch "$batch" -o "$work/model.mlir"
  local flags=()
  [[ $mode == gradients ]] && flags=(--gradients)
  "$build/bin/cleavec" build "$work/model.mlir" --target cpu -o "$work" \
    "${flags[@]}" > /dev/null
  local vocab
  vocab=$(sed -n 's/.*tensor<\([0-9]*\)x[0-9]*x[a-z0-9]*> {[^}]*cleave.param = "embed.tokens"}.*/\1/p' \
    "$work/model.mlir")
  /usr/bin/python3 "$root/test/e2e/reference.py" make-inputs --model gpt \
    --batch "$batch" --seq "$seq" --vocab "$vocab" --seed 0 \
    -o "$work/inputs.safetensors"
  "$work/model" --init-seed 0 --inputs "$work/inputs.safetensors" \
    --repeat 1 --outputs "$work/outputs.safetensors" |
    sed -n 's/^peak_memory: \([0-9.]*\) MiB$/\1/p'
}

echo "machine: $(nproc) cores, $(lscpu | sed -n 's/^Model name: *//p')"
for mode in forward gradients; do
  short=$(measure 1024 4 $mode)
  long=$(measure 4096 1 $mode)
  echo "$mode: seq 1024 x batch 4: $short MiB; seq 4096 x batch 1: $long MiB;" \
    "ratio $(awk -v a="$long" -v b="$short" 'BEGIN { printf "%.2f", a / b }')"
done
