#!/usr/bin/env bash
# Training throughput of the README demo's model on the CPU backend, and the
# cost of its backward pass relative to its forward pass (the textbook
# ratio is about 2: two products per forward product).
#
#   bench/cpu-training.sh [--steps N]
#
# forward: the forward program; gradients: cleave-autodiff's program
# (forward + backward), both timed with --repeat on the same batch; the
# backward is their difference. tokens/s is the mean of the training log
# after its first 5 steps (cleavec train, AdamW, as in scripts/demo).
set -euo pipefail

root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
build=${CLEAVE_BUILD_DIR:-$root/build}
steps=50
while [[ $# -gt 0 ]]; do
  case $1 in
    --steps) steps=$2; shift 2 ;;
    *) echo "cpu-training.sh: unknown option '$1'" >&2; exit 1 ;;
  esac
done

work=$build/bench/training
mkdir -p "$work/forward" "$work/gradients"
"$build/bin/cleavec" prepare-text /usr/share/common-licenses/GPL-3 -o "$work/text.bin" > /dev/null
"$build/bin/cleave-models" gpt --layers 4 --hidden 128 --heads 4 --seq 64 \
  --vocab 256 --batch 16 -o "$work/gpt.mlir"
"$build/bin/cleavec" build "$work/gpt.mlir" -o "$work/forward" > /dev/null
"$build/bin/cleavec" build "$work/gpt.mlir" --gradients -o "$work/gradients" > /dev/null

echo "machine: $(nproc) cores, $(lscpu | sed -n 's/^Model name: *//p')"
time_of() {
  "$1" --init-seed 0 --data "$work/text.bin" --repeat 20 |
    sed -n 's/^time: \([0-9.]*\) ms.*/\1/p'
}
forward=$(time_of "$work/forward/gpt")
gradients=$(time_of "$work/gradients/gpt")
/usr/bin/python3 - "$forward" "$gradients" <<'PY'
import sys
forward, gradients = float(sys.argv[1]), float(sys.argv[2])
backward = gradients - forward
print(f"forward {forward:.1f} ms, forward+backward {gradients:.1f} ms, "
      f"backward {backward:.1f} ms, backward/forward {backward / forward:.2f}")
PY

"$build/bin/cleavec" train "$work/gpt.mlir" --data "$work/text.bin" \
  --steps "$steps" --lr 2e-3 --out "$work/run" > "$work/train.log"
/usr/bin/python3 - "$work/train.log" <<'PY'
import sys
rates = [float(line.split()[9]) for line in open(sys.argv[1])
         if line.startswith("step ")]
steady = rates[5:] or rates
print(f"training: {sum(steady) / len(steady):.0f} tokens/s "
      f"(mean of steps 6..{len(rates)}, batch 16 x 64 tokens)")
PY
