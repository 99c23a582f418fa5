"""Checks one optimizer step against its definition, in NumPy.

  check_update.py --before P0 --gradients G --after CHECKPOINT
                  --optimizer sgd|adamw --lr X [--weight-decay W]
                  [--clip-norm C] [--beta1 B1] [--beta2 B2] [--epsilon E]

P0 holds the initial parameters, G the gradient program's `grad.<param>` on
the same batch, CHECKPOINT what one training step saved. Matrices (rank >= 2)
get weight decay; for AdamW at step 1 the bias-corrected moments are g and
g^2, and the saved state must be (1 - b1) g and (1 - b2) g^2.
"""

import argparse
import os
import sys

import numpy as np

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)),
                                ".."))
import reference  # noqa: E402


def main():
    parser = argparse.ArgumentParser()
    for flag in ("--before", "--gradients", "--after", "--optimizer"):
        parser.add_argument(flag, required=True)
    parser.add_argument("--lr", type=float, required=True)
    parser.add_argument("--weight-decay", type=float, default=0.0)
    parser.add_argument("--clip-norm", type=float, default=0.0)
    parser.add_argument("--beta1", type=float, default=0.9)
    parser.add_argument("--beta2", type=float, default=0.999)
    parser.add_argument("--epsilon", type=float, default=1e-8)
    args = parser.parse_args()

    before = reference.read_tensors(args.before).tensors
    grads = reference.read_tensors(args.gradients).tensors
    after = reference.read_tensors(args.after).tensors
    g = {name: grads["grad." + name].astype(np.float64) for name in before}
    norm = np.sqrt(sum(float(np.sum(x * x)) for x in g.values()))
    if args.clip_norm > 0:
        scale = min(1.0, args.clip_norm / (norm + 1e-6))
        g = {name: x * scale for name, x in g.items()}

    expected = {}
    for name, p in before.items():
        p = p.astype(np.float64)
        if args.optimizer == "sgd":
            direction = g[name]
        else:
            direction = g[name] / (np.abs(g[name]) + args.epsilon)
            expected["adam_m." + name] = (1 - args.beta1) * g[name]
            expected["adam_v." + name] = (1 - args.beta2) * g[name] ** 2
        if args.weight_decay > 0 and p.ndim >= 2:
            direction = direction + args.weight_decay * p
        expected[name] = p - args.lr * direction

    # The program works in f32: allow a few f32 roundings of values of the
    # size the parameters and the step have.
    worst = 0.0
    for name, want in expected.items():
        have = after[name].astype(np.float64)
        allowed = 1e-5 * np.abs(want) + 2e-7
        excess = float(np.max(np.abs(have - want) / allowed))
        worst = max(worst, excess)
        if excess > 1:
            index = int(np.argmax(np.abs(have - want) / allowed))
            print(f"{name}[{index}]: got {have.flat[index]!r}, expected "
                  f"{want.flat[index]!r}")
            return 1
    print(f"{len(expected)} tensors match (worst error {worst:.2f} of the "
          f"allowed, gradient norm {norm:.4f})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
