#!/usr/bin/env python3
"""Bytes each rank sends in one training step of a sharded GPT, as the
partitioned program's collectives report them (cleave-print-cost's
comm_bytes), next to the analytic minimum of the same strategy.

    bench/sharding-comm.py [--preset gpt2-small] [--vocab 50304] [--batch 8]

Needs a build (scripts/setup or scripts/test). The vocabulary is padded to
a multiple of 128 (50304 for GPT-2) so that tensor parallelism can split it,
as Megatron-LM pads it.

Analytic minima (f32, B = 4 bytes; an all-reduce over n devices moves
2 (n - 1) / n of its tensor, a reduce-scatter or all-gather (n - 1) / n):
  dp n:      all-reduce of every gradient, 2 (n-1)/n P B, plus the loss.
  zero1 n:   reduce-scatter of every gradient and all-gather of every
             updated parameter, 2 (n-1)/n P B, plus the loss and the
             gradient norm (one scalar each).
  megatron t: Megatron-LM's 8 b s h (t-1)/t B per layer (two all-reduces of
             the b s h activations forward, two backward), plus the
             vocab-parallel embedding (one forward) and output head (one
             backward), the vocab-parallel loss (three all-reduces of b s
             values) and the gradient norm (one scalar).
  dp x megatron: the Megatron terms with the per-replica batch b / d, plus
             the all-reduce over dp of each rank's gradients (P_rank, the
             parameters one rank holds) and the loss.
"""

import argparse
import json
import os
import subprocess
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
BUILD = os.environ.get("CLEAVE_BUILD_DIR", os.path.join(ROOT, "build"))
BYTES = 4  # f32

CONFIGS = [
    ("dp", "mesh=dp=8", {"dp": 8}),
    ("megatron", "mesh=tp=4", {"tp": 4}),
    ("zero1", "mesh=dp=8 strategy=dp,zero1", {"dp": 8, "zero": True}),
    ("dp x megatron", "mesh=dp=2,tp=4", {"dp": 2, "tp": 4}),
]


def all_reduce(n, size):
    return 2 * (n - 1) / n * size * BYTES


def gather(n, size):
    return (n - 1) / n * size * BYTES


def measure(model, pipeline):
    """comm_bytes and per-rank parameters of the partitioned train_step."""
    report = subprocess.run(
        [os.path.join(BUILD, "bin", "cleave-opt"), "--cleave-autodiff",
         "--cleave-optimizer", "--cleave-parallelize=" + pipeline,
         "--cleave-print-cost=json=true", "-o", os.devnull],
        input=model, capture_output=True, text=True, check=True).stdout
    for line in report.splitlines():
        entry = json.loads(line)
        if entry["function"] == "train_step":
            return entry.get("comm_bytes", 0.0), entry["params"]
    sys.exit("sharding-comm: no train_step in the cost report")


def minimum(config, shape, params, rank_params):
    layers, hidden, seq, batch = shape
    dp, tp = config.get("dp", 1), config.get("tp", 1)
    scalar_on_dp = all_reduce(dp, 1) if dp > 1 else 0
    if tp == 1:
        grads = 2 * gather(dp, params) if config.get("zero") else all_reduce(dp, params)
        norm = scalar_on_dp if config.get("zero") else 0
        return grads + scalar_on_dp + norm
    b = batch // dp
    activations = b * seq * hidden
    total = layers * 8 * activations * (tp - 1) / tp * BYTES
    total += 2 * all_reduce(tp, activations)       # embedding, output head
    total += 3 * all_reduce(tp, b * seq)           # vocab-parallel loss
    total += all_reduce(tp, 1)                     # gradient norm
    if dp > 1:
        total += all_reduce(dp, rank_params) + scalar_on_dp
    return total


def main():
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--preset", default="gpt2-small")
    parser.add_argument("--vocab", type=int, default=50304)
    parser.add_argument("--batch", type=int, default=8)
    args = parser.parse_args()

    model = subprocess.run(
        [os.path.join(BUILD, "bin", "cleave-models"), "gpt", "--preset",
         args.preset, "--vocab", str(args.vocab), "--batch", str(args.batch)],
        capture_output=True, text=True, check=True).stdout
    _, params = measure(model, "mesh=dp=1")
    presets = {"gpt2-small": (12, 768, 1024), "gpt2-medium": (24, 1024, 1024),
               "gpt2-large": (36, 1280, 1024), "gpt2-xl": (48, 1600, 1024)}
    if args.preset not in presets:
        sys.exit(f"sharding-comm: unknown preset '{args.preset}'")
    layers, hidden, seq = presets[args.preset]
    shape = (layers, hidden, seq, args.batch)

    print(f"{args.preset}, vocab {args.vocab}, batch {args.batch}, sequence "
          f"{seq}, f32, AdamW; {params:,} parameters")
    print("| strategy | mesh | bytes sent per rank per step | analytic minimum | ratio |")
    print("|---|---|---|---|---|")
    for name, pipeline, config in CONFIGS:
        measured, rank_params = measure(model, pipeline)
        least = minimum(config, shape, params, rank_params)
        mesh = pipeline.split()[0][len("mesh="):]
        print(f"| {name} | {mesh} | {measured:,.0f} | {least:,.0f} | "
              f"{measured / least:.6f} |")


if __name__ == "__main__":
    main()
