#!/usr/bin/env bash
# GEMM epilogues on the CPU backend: a GPT forward built with
# --gemm-epilogues (bias and gelu applied after OpenBLAS by one loop) and
# without (a separate fused kernel), run interleaved, with each build's
# arena and loss. The losses must be identical; the times should be within
# the machine's noise (the epilogue saves a kernel launch and a buffer, not
# arithmetic, on the CPU: its gain is on the GPU, inside cuBLASLt).
#
#   bench/cpu-gemm-epilogues.sh [--preset gpt2-small] [--seq 1024] [--rounds 6]
#
# Needs a build (scripts/setup or scripts/test); writes into build/bench/.
set -euo pipefail

root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
build=${CLEAVE_BUILD_DIR:-$root/build}
preset=gpt2-small seq=1024 rounds=6
while [[ $# -gt 0 ]]; do
  case $1 in
    --preset) preset=$2; shift 2 ;;
    --seq) seq=$2; shift 2 ;;
    --rounds) rounds=$2; shift 2 ;;
    *) echo "cpu-gemm-epilogues.sh: unknown option '$1'" >&2; exit 1 ;;
  esac
done

work=$build/bench/epilogues-$preset-s$seq
mkdir -p "$work"
"$build/bin/cleave-models" gpt --preset "$preset" --seq "$seq" --batch 1 \
  -o "$work/model.mlir"
vocab=$(sed -n 's/.*tensor<\([0-9]*\)x[0-9]*x[a-z0-9]*> {[^}]*cleave.param = "embed.tokens"}.*/\1/p' \
  "$work/model.mlir")
/usr/bin/python3 "$root/test/e2e/reference.py" make-inputs --model gpt \
  --batch 1 --seq "$seq" --vocab "$vocab" --seed 0 -o "$work/inputs.safetensors"
for fold in true false; do
  echo "epilogues=$fold: $("$build/bin/cleavec" build "$work/model.mlir" \
    --target cpu --gemm-epilogues=$fold -o "$work/$fold" | grep 'arena')"
done

echo "machine: $(nproc) cores, $(lscpu | sed -n 's/^Model name: *//p')"
for ((round = 1; round <= rounds; ++round)); do
  for fold in true false; do
    out=$("$work/$fold/model" --init-seed 0 --inputs "$work/inputs.safetensors" --repeat 3)
    echo "round $round epilogues=$fold $(sed -n 's/^time: \([0-9.]*\) ms.*/\1 ms/p' <<< "$out") loss $(sed -n 's/^loss: //p' <<< "$out")"
  done
done | tee "$work/times.txt"
awk '{ sum[$3] += $4; n[$3]++ } END { for (k in sum) printf "%s: mean %.1f ms over %d rounds\n", k, sum[k] / n[k], n[k] }' \
  "$work/times.txt" | sort
