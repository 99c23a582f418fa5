"""Compares two training runs that should compute the same thing: their
per-step losses and their final checkpoints.

  compare_runs.py LOG_A LOG_B CHECKPOINT_A CHECKPOINT_B --optimizer sgd|adamw

Losses must agree to 1e-5 * max(1, |loss|) at every step. Parameters and
state must agree elementwise within 1e-5 * max|p| (over the whole model:
attention's key bias has no gradient at all, so its values are rounding
noise that no per-tensor scale can judge) after SGD,
and in relative L2 norm within 1e-4 of the whole model after AdamW, whose
division by sqrt(v) amplifies rounding in near-zero gradients.
"""

import argparse
import os
import sys

import numpy as np

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)),
                                ".."))
import reference  # noqa: E402


def losses(path):
    values = {}
    for line in open(path):
        words = line.split()
        if len(words) > 3 and words[0] == "step" and words[2] == "loss":
            values[int(words[1])] = float(words[3])
    return values


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("logs", nargs=2)
    parser.add_argument("checkpoints", nargs=2)
    parser.add_argument("--optimizer", required=True, choices=["sgd", "adamw"])
    args = parser.parse_args()

    a, b = losses(args.logs[0]), losses(args.logs[1])
    if not a or sorted(a) != sorted(b):
        print(f"the logs cover different steps: {sorted(a)} vs {sorted(b)}")
        return 1
    worst = max(abs(a[s] - b[s]) / max(1.0, abs(a[s])) for s in a)
    if worst > 1e-5:
        print(f"losses differ by {worst:.2e} (relative)")
        return 1

    first = reference.read_tensors(args.checkpoints[0]).tensors
    second = reference.read_tensors(args.checkpoints[1]).tensors
    if sorted(first) != sorted(second):
        print("the checkpoints hold different tensors")
        return 1
    if args.optimizer == "sgd":
        scale = max(float(np.max(np.abs(x))) for x in first.values())
        largest = 0.0
        for name in first:
            x = first[name].astype(np.float64)
            y = second[name].astype(np.float64)
            difference = float(np.max(np.abs(x - y))) / scale
            largest = max(largest, difference)
            if difference > 1e-5:
                print(f"{name}: differs by {difference:.2e} of the largest "
                      "parameter")
                return 1
        detail = (f"elementwise within {largest:.1e} of the largest "
                  "parameter")
    else:
        difference = sum(float(np.sum((first[n].astype(np.float64) -
                                       second[n]) ** 2)) for n in first)
        size = sum(float(np.sum(first[n].astype(np.float64) ** 2))
                   for n in first)
        relative = (difference / size) ** 0.5
        if relative > 1e-4:
            print(f"the models differ by {relative:.2e} in relative L2 norm")
            return 1
        detail = f"relative L2 difference {relative:.1e}"
    print(f"{len(a)} steps: losses within {worst:.1e}; {len(first)} tensors "
          f"agree ({detail})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
