#!/usr/bin/env python3
"""Pipeline bubbles on the CPU: the idle share of the ranks' time measured
from the Chrome traces a pipeline run writes (CLEAVE_TRACE), next to the
textbook (p - 1) / (v m + p - 1) and the schedule's simulation.

    bench/pipeline.py [--layers 8] [--hidden 128] [--heads 4] [--seq 64]
                      [--vocab 256] [--batch 16] [--steps 5]

Needs a build (scripts/setup or scripts/test). Every run trains the same
tiny GPT on pp=2 (two ranks, one OpenMP thread each, so on a 2-core machine
each rank has a core and the timing means something) for each schedule and
micro-batch count. The bubble of a step is 1 - busy / (p * span): span runs
from the first pass any rank starts to the last it ends, and a rank is busy
while it runs a forward or backward pass and is not waiting to receive
(test/e2e/pipeline/pipeline_trace.py). It is the median over steps 2..N. The
textbook assumes a backward costs twice a forward and communication is
free; the measured bubble also holds the transfers and the imbalance of the
stages (the first holds the embedding, the last the head and the loss).
"""

import argparse
import os
import re
import statistics
import subprocess
import sys
import tempfile

from benchsupport import (ROOT, add_gpt_arguments, make_gpt, median_step_ms,
                          prepare_text, tool)

sys.path.insert(0, os.path.join(ROOT, "test", "e2e", "pipeline"))
import pipeline_trace as trace  # noqa: E402

RUNS = [
    # schedule, micro-batches, virtual stages
    ("gpipe", 2, 1),
    ("gpipe", 4, 1),
    ("gpipe", 8, 1),
    ("1f1b", 2, 1),
    ("1f1b", 4, 1),
    ("1f1b", 8, 1),
    ("interleaved", 2, 2),
    ("interleaved", 4, 2),
    ("interleaved", 8, 2),
]


def main():
    parser = argparse.ArgumentParser()
    add_gpt_arguments(parser, layers=8, hidden=128, heads=4, seq=64,
                      vocab=256, batch=16, steps=5)
    args = parser.parse_args()
    ranks = 2

    with tempfile.TemporaryDirectory() as work:
        model = os.path.join(work, "model.mlir")
        data = os.path.join(work, "text.bin")
        make_gpt(model, args)
        prepare_text(data)
        print(f"gpt {args.layers} layers, hidden {args.hidden}, seq {args.seq}, "
              f"batch {args.batch}; pp={ranks}; bubble = idle share of the "
              f"ranks' time, median of steps 2..{args.steps}")
        print(f"{'schedule':<12} {'m':>2} {'v':>2} {'measured':>9} "
              f"{'(p-1)/(vm+p-1)':>15} {'simulated':>10} {'step ms':>8}")
        for schedule, micro, virtual in RUNS:
            out = os.path.join(work, f"{schedule}-{micro}")
            traces = out + "-trace"
            os.makedirs(traces)
            log = subprocess.run(
                [tool("cleavec"), "train", model, "--data", data, "--steps",
                 str(args.steps), "--mesh", f"pp={ranks}", "--micro-batches",
                 str(micro), "--schedule", schedule, "--virtual-stages",
                 str(virtual), "--out", out],
                check=True, capture_output=True, text=True,
                env=dict(os.environ, CLEAVE_TRACE=traces)).stdout
            simulated = float(re.search(r"bubble ([0-9.]+) simulated", log).group(1))
            per_rank = trace.read_ranks(traces)
            bubbles = [trace.bubble(per_rank, step)
                       for step in range(1, args.steps)]
            ideal = (ranks - 1) / (virtual * micro + ranks - 1)
            print(f"{schedule:<12} {micro:>2} {virtual:>2} "
                  f"{statistics.median(bubbles):>9.3f} {ideal:>15.3f} "
                  f"{simulated:>10.3f} {median_step_ms(log):>8.1f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
