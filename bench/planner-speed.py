#!/usr/bin/env python3
"""How long planning takes: `cleavec plan` on GPT-3 175B's shape (hidden
12288, 96 heads, sequence 2048, global batch 1536) on dgx-a100-80g, as the
blocks and the devices grow, and how long the whole pipeline (autodiff,
partition, fusion, memory plan, emission; `cleavec train --emit-only`, not
the C++ compile) takes for gpt2-xl and gpt3-175b train steps.

    bench/planner-speed.py

Times are wall clock, best of 3, including parsing the model.
"""

import os
import subprocess
import sys
import tempfile
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
BUILD = os.environ.get("CLEAVE_BUILD_DIR", os.path.join(ROOT, "build"))


def tool(name):
    return os.path.join(BUILD, "bin", name)


def best(command, repeats=3):
    fastest = None
    for _ in range(repeats):
        start = time.perf_counter()
        subprocess.run(command, check=True, capture_output=True)
        elapsed = time.perf_counter() - start
        fastest = elapsed if fastest is None else min(fastest, elapsed)
    return fastest


def main():
    with tempfile.TemporaryDirectory() as work:
        def model(layers, batch=1536, preset="gpt3-175b", vocab=None):
            path = os.path.join(work, f"{preset}-{layers}-{batch}.mlir")
            command = [tool("cleave-models"), "gpt", "--preset", preset,
                       "--layers", str(layers), "--batch", str(batch), "-o", path]
            if vocab:
                command += ["--vocab", str(vocab)]
            subprocess.run(command, check=True)
            return path

        def plan(path, gpus):
            return best([tool("cleavec"), "plan", path, "--gpus", str(gpus),
                         "--cluster", "dgx-a100-80g"])

        print("planning GPT-3 175B shapes on dgx-a100-80g, global batch 1536")
        print(f"{'blocks':>6} {'devices':>7} {'seconds':>8}")
        for layers in [12, 24, 48, 96]:
            print(f"{layers:>6} {1024:>7} {plan(model(layers), 1024):>8.3f}")
        for gpus in [64, 256, 4096]:
            print(f"{96:>6} {gpus:>7} {plan(model(96), gpus):>8.3f}")

        data = os.path.join(work, "text.bin")
        subprocess.run([tool("cleavec"), "prepare-text",
                        "/usr/share/common-licenses/GPL-3", "-o", data],
                       check=True, capture_output=True)
        print("whole pipeline to CUDA C++ source (cleavec train --emit-only)")
        # Megatron's strategy, and the tensor-sharding search (an integer
        # program per group of identical layers) in its place.
        for preset, vocab, mesh in [("gpt2-xl", 50400, "dp=2,tp=5"),
                                    ("gpt3-175b", 51200, "dp=2,tp=8")]:
            path = model({"gpt2-xl": 48, "gpt3-175b": 96}[preset], batch=8,
                         preset=preset, vocab=vocab)
            for strategy in ["dp,megatron", "dp,search"]:
                seconds = best(
                    [tool("cleavec"), "train", path, "--data", data, "--steps",
                     "1", "--emit-only", "--target", "cuda", "--mesh", mesh,
                     "--strategy", strategy, "--cluster", "dgx-a100-80g",
                     "--out", os.path.join(work, preset)],
                    repeats=1)
                print(f"{preset} (vocabulary {vocab}, mesh {mesh}, strategies "
                      f"{strategy}): {seconds:.2f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
