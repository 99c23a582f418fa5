#!/usr/bin/env python3
"""How the tools scale with the number of layers (issue: every tool linear
in model size).

For a GPT of L layers (tiny widths, so that only the op count grows) it
times, each in a fresh process:

  build     cleave-models gpt --layers L          (build and verify the IR)
  verify    cleave-opt MODEL                       (parse and verify it)
  emit      cleavec train --emit-only              (autodiff, optimizer,
            [--mesh dp=2,tp=2]                      partitioning, fusion,
                                                    memory plan, emission;
                                                    no C++ compile)
  plan      cleavec plan --gpus 8 --cluster dgx-a100-80g

and prints seconds and peak memory (max RSS) per layer count, then each
step's growth from the smallest count to the largest against the growth of
the layers. Run from the repository root after scripts/setup:

  bench/scaling.py [--layers 12 96 400 1000] [--timeout 600]
"""

import argparse
import os
import resource
import subprocess
import sys
import tempfile
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
BIN = os.path.join(ROOT, "build", "bin")


def run(command, timeout):
    """Seconds and peak memory (MiB) of one command in its own process."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
    start = time.perf_counter()
    result = subprocess.run(command, stdout=subprocess.DEVNULL,
                            stderr=subprocess.PIPE, timeout=timeout)
    seconds = time.perf_counter() - start
    if result.returncode != 0:
        sys.exit(f"scaling: {' '.join(command)} failed:\n"
                 f"{result.stderr.decode(errors='replace')}")
    peak = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
    # ru_maxrss of the children is the largest so far, in KiB: a step that
    # peaks below an earlier one reports the earlier peak (an upper bound).
    return seconds, max(peak, before) / 1024


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--layers", type=int, nargs="+",
                        default=[12, 96, 400, 1000])
    parser.add_argument("--timeout", type=float, default=600)
    args = parser.parse_args()

    steps = ["build", "verify", "emit", "emit dp2tp2", "plan"]
    rows = {}
    with tempfile.TemporaryDirectory() as work:
        text = os.path.join(work, "text.txt")
        with open("/usr/share/common-licenses/GPL-3", "rb") as source:
            data = source.read()
        with open(text, "wb") as file:
            file.write(data)
        tokens = os.path.join(work, "tokens.bin")
        subprocess.run([os.path.join(BIN, "cleavec"), "prepare-text", text,
                        "-o", tokens], check=True, stdout=subprocess.DEVNULL)
        for layers in sorted(args.layers):
            model = os.path.join(work, f"gpt{layers}.mlir")
            commands = {
                "build": [os.path.join(BIN, "cleave-models"), "gpt",
                          "--layers", str(layers), "--hidden", "64",
                          "--heads", "4", "--seq", "16", "--vocab", "256",
                          "--batch", "4", "-o", model],
                "verify": [os.path.join(BIN, "cleave-opt"), model,
                           "-o", os.devnull],
                "emit": [os.path.join(BIN, "cleavec"), "train", model,
                         "--data", tokens, "--steps", "1", "--emit-only",
                         "--out", os.path.join(work, f"one{layers}")],
                "emit dp2tp2": [os.path.join(BIN, "cleavec"), "train", model,
                                "--data", tokens, "--steps", "1",
                                "--emit-only", "--mesh", "dp=2,tp=2",
                                "--out", os.path.join(work, f"mesh{layers}")],
                "plan": [os.path.join(BIN, "cleavec"), "plan", model,
                         "--gpus", "8", "--cluster", "dgx-a100-80g"],
            }
            rows[layers] = {step: run(commands[step], args.timeout)
                            for step in steps}
            cells = "  ".join(f"{step} {rows[layers][step][0]:7.2f} s"
                              for step in steps)
            print(f"{layers:5d} layers: {cells}", flush=True)

    smallest, largest = min(rows), max(rows)
    print(f"\ngrowth from {smallest} to {largest} layers "
          f"(layers x{largest / smallest:.1f}):")
    for step in steps:
        low, high = rows[smallest][step][0], rows[largest][step][0]
        print(f"  {step:12s} time x{high / max(low, 1e-3):6.1f}")
    print("\npeak memory (MiB, max RSS so far):")
    for layers in sorted(rows):
        print(f"  {layers:5d} layers: " + "  ".join(
            f"{step} {rows[layers][step][1]:7.0f}" for step in steps))


if __name__ == "__main__":
    main()
