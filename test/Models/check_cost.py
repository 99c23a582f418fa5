#!/usr/bin/env python3
"""Checks a `cleave-print-cost json=true` report of a generated model against
closed-form counts: the parameter count of the family and, for gpt, Megatron's
forward matmul FLOPs 24*B*s*l*h^2*(1 + s/(6h)) + 2*B*s*h*V, in exact integer
arithmetic. Exits 1 with a message on any mismatch."""

import argparse
import json
import sys


def expected_params(family, l, h, f, s, V):
    if family == "gpt":
        # Tied head, biases, learned positions (12 l h^2 + 13 l h when f = 4h).
        return l * (4 * h * h + 4 * h + 2 * h * f + f + h + 4 * h) + (V + s) * h + 2 * h
    if family == "llama":
        return 2 * V * h + l * (4 * h * h + 3 * h * f + 2 * h) + h
    if family == "mlp":
        return l * (h * h + h) + h * V + V
    raise ValueError(family)


def megatron_matmul_flops(B, s, l, h, V):
    # 24 B s l h^2 (1 + s / (6h)) = 24 B s l h^2 + 4 B s^2 l h, exactly.
    return 24 * B * s * l * h * h + 4 * B * s * s * l * h + 2 * B * s * h * V


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--family", required=True)
    for name in ["layers", "hidden", "ffn", "seq", "vocab", "batch"]:
        parser.add_argument("--" + name, type=int, required=True)
    args = parser.parse_args()

    report = json.loads(sys.stdin.readline())
    failures = []
    params = expected_params(args.family, args.layers, args.hidden, args.ffn,
                             args.seq, args.vocab)
    if report["params"] != params:
        failures.append(f"params {report['params']} != expected {params}")
    if args.family == "gpt":
        if args.ffn != 4 * args.hidden:
            sys.exit("Megatron's formula assumes ffn = 4 * hidden")
        flops = megatron_matmul_flops(args.batch, args.seq, args.layers,
                                      args.hidden, args.vocab)
        if report["matmul_flops"] != flops:
            failures.append(
                f"matmul_flops {report['matmul_flops']} != Megatron's {flops}")
    for failure in failures:
        print("error:", failure, file=sys.stderr)
    if failures:
        sys.exit(1)
    print("ok", report["params"], report["matmul_flops"])


if __name__ == "__main__":
    main()
