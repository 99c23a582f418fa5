"""Masked vocabulary padding against the unpadded model.

  compare_padded.py pad PARAMS VOCAB PADDED -o OUT
      The unpadded PARAMS with the token table's rows (and llama's head
      columns) padded from VOCAB to PADDED with random values: masked
      classes must ignore whatever their rows hold.
  compare_padded.py compare UNPADDED PADDED VOCAB [--rtol R]
      The gradient programs' outputs: the same loss and gradients, and no
      gradient at all (exact zeros) in the padding.
"""
import argparse
import sys

import numpy as np

import reference


def pad(args):
    params = reference.read_safetensors(args.params)
    rng = np.random.default_rng(3)
    out = {}
    for name, value in params.tensors.items():
        if name == "embed.tokens":
            extra = rng.normal(0, 1, (args.padded - args.vocab, value.shape[1]))
            value = np.concatenate([value, extra.astype(value.dtype)], axis=0)
        elif name == "head.weight" and value.shape[-1] == args.vocab:
            extra = rng.normal(0, 1, (value.shape[0], args.padded - args.vocab))
            value = np.concatenate([value, extra.astype(value.dtype)], axis=1)
        out[name] = value
    reference.write_safetensors(args.output, out)


def compare(args):
    unpadded = reference.read_safetensors(args.unpadded).tensors
    padded = reference.read_safetensors(args.padded).tensors
    if sorted(unpadded) != sorted(padded):
        sys.exit("compare_padded: the outputs differ in names")
    worst = 0.0
    for name, want in unpadded.items():
        got = padded[name]
        if got.shape != want.shape:
            if name == "grad.embed.tokens":
                rest, got = got[args.vocab:], got[:args.vocab]
            elif name == "grad.head.weight":
                rest, got = got[:, args.vocab:], got[:, :args.vocab]
            else:
                sys.exit(f"compare_padded: {name}: shape {got.shape} "
                         f"vs {want.shape}")
            if np.any(rest != 0):
                sys.exit(f"compare_padded: {name}: the padding has a "
                         f"gradient (max |g| {np.abs(rest).max():.3g})")
        scale = max(np.abs(want).max(), 1e-30)
        error = np.abs(got - want).max() / scale
        worst = max(worst, error)
        if error > args.rtol:
            sys.exit(f"compare_padded: {name}: relative difference "
                     f"{error:.3g} > {args.rtol}")
    print(f"compare_padded: {len(unpadded)} outputs agree (worst relative "
          f"difference {worst:.1e}); the padding has no gradient")


def main():
    parser = argparse.ArgumentParser()
    commands = parser.add_subparsers(dest="command", required=True)
    p = commands.add_parser("pad")
    p.add_argument("params")
    p.add_argument("vocab", type=int)
    p.add_argument("padded", type=int)
    p.add_argument("-o", dest="output", required=True)
    c = commands.add_parser("compare")
    c.add_argument("unpadded")
    c.add_argument("padded")
    c.add_argument("vocab", type=int)
    c.add_argument("--rtol", type=float, default=1e-5)
    args = parser.parse_args()
    pad(args) if args.command == "pad" else compare(args)


if __name__ == "__main__":
    main()
