#!/usr/bin/env bash
# GPT-3 175B on 1024 dgx-a100-80g GPUs at global batch 1536 on
# Megatron-LM's mesh (dp=8, tp=8, pp=16) with full recompute: what
# `cleavec plan` predicts for it, next to the ~140 TFLOP/s per GPU
# Megatron-LM reports for this run (Narayanan et al., SC'21), and how long
# planning takes.
#
#   bench/planner-gpt3.sh [BUILD_DIR]
set -euo pipefail
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
build=${1:-$root/build}
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
"$build/bin/cleave-models" gpt --preset gpt3-175b --batch 1536 -o "$work/gpt3.mlir"
plan() {
  "$build/bin/cleavec" plan "$work/gpt3.mlir" --gpus 1024 \
    --cluster dgx-a100-80g --mesh dp=8,tp=8,pp=16 --recompute full "$@"
}
echo "== Megatron's mesh, full recompute; micro-batches, schedule and ZeRO searched"
start=$(date +%s.%N)
plan --alternatives 3 | grep -v '^cleavec: \(model\|cluster\|precision\):'
end=$(date +%s.%N)
echo "planning time: $(echo "$end - $start" | bc) s"
echo "== as Megatron-LM ran it: micro-batches of 1, interleaved, no ZeRO"
plan --micro-batch-size 1 --schedule interleaved --zero-stage 0 \
  --alternatives 0 | grep '^cleavec: \(chosen\|predicted\|why\)'
