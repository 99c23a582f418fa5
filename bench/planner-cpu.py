#!/usr/bin/env python3
"""The planner's predicted step time against the measured one on this
machine (the cpu-local cluster, calibrated by bench/calibrate-cpu.sh).

    bench/planner-cpu.py [--layers 4] [--hidden 256] [--heads 8] [--seq 128]
                         [--vocab 1024] [--batch 8] [--steps 6]

Trains the same GPT (AdamW, f32) on one rank and on meshes of two ranks
(one thread each), and asks `cleavec plan --json` for each run's prediction
with every choice fixed to what the run does (a tp run builds the plan's
tensor split: the search's, or Megatron's with sequence parallelism).
Measured: the median step_time of steps 2..N that the logging rank prints,
and the bytes it sent per step (comm_bytes) next to the planner's.
"""

import argparse
import json
import os
import re
import subprocess
import sys
import tempfile

from benchsupport import (add_gpt_arguments, make_gpt, median_step_ms,
                          prepare_text, tool)

# name, devices, train flags, plan flags
RUNS = [
    ("1 rank", 1, [], []),
    ("dp=2", 2, ["--mesh", "dp=2"], ["--mesh", "dp=2"]),
    ("tp=2", 2, ["--mesh", "tp=2"], ["--mesh", "tp=2"]),
    ("pp=2, 4 micro-batches, 1f1b", 2,
     ["--mesh", "pp=2", "--micro-batches", "4"],
     ["--mesh", "pp=2", "--schedule", "1f1b"]),
    ("pp=2, 4 micro-batches, gpipe", 2,
     ["--mesh", "pp=2", "--micro-batches", "4", "--schedule", "gpipe"],
     ["--mesh", "pp=2", "--schedule", "gpipe"]),
]


def main():
    parser = argparse.ArgumentParser()
    add_gpt_arguments(parser, layers=4, hidden=256, heads=8, seq=128,
                      vocab=1024, batch=8, steps=6)
    args = parser.parse_args()

    with tempfile.TemporaryDirectory() as work:
        model = os.path.join(work, "model.mlir")
        data = os.path.join(work, "text.bin")
        make_gpt(model, args)
        prepare_text(data)
        env = dict(os.environ, OMP_NUM_THREADS="1", OPENBLAS_NUM_THREADS="1")
        print(f"gpt {args.layers} layers, hidden {args.hidden}, seq {args.seq}, "
              f"batch {args.batch}, AdamW, f32; cluster cpu-local")
        print(f"{'run':<30} {'predicted ms':>13} {'measured ms':>12} {'error':>7}"
              f" {'predicted B':>12} {'measured B':>12}")
        for name, devices, train_flags, plan_flags in RUNS:
            out = os.path.join(work, re.sub(r"[^a-z0-9]+", "-", name))
            micro = 4 if "--micro-batches" in train_flags else 1
            dp = 2 if "dp=2" in train_flags else 1
            plan = json.loads(subprocess.run(
                [tool("cleavec"), "plan", model, "--gpus", str(devices),
                 "--cluster", "cpu-local", "--precision", "f32",
                 "--micro-batch-size", str(args.batch // dp // micro),
                 "--zero-stage", "0", "--recompute=none", "--json"]
                + plan_flags,
                check=True, capture_output=True, text=True).stdout)
            # The run takes the stage cut the prediction assumes.
            if plan["mesh"]["pp"] > 1:
                train_flags = train_flags + [
                    "--layers-per-stage",
                    ",".join(str(n) for n in plan["layers_per_stage"])]
            if plan["mesh"]["tp"] > 1:
                train_flags = train_flags + (
                    ["--strategy", "megatron-sp"] if plan["sequence_parallel"]
                    else ["--strategy", "search", "--cluster", "cpu-local"])
            log = subprocess.run(
                [tool("cleavec"), "train", model, "--data", data, "--steps",
                 str(args.steps), "--out", out] + train_flags,
                check=True, capture_output=True, text=True, env=env).stdout
            measured = median_step_ms(log)
            sent = re.findall(r"comm_bytes ([0-9]+)", log)
            measured_bytes = int(sent[-1]) if sent else 0
            predicted_bytes = plan["predicted"]["communicated_bytes"]
            predicted = plan["predicted"]["step_time_s"] * 1e3
            error = (predicted - measured) / measured
            cut = (" (stages " + ",".join(str(n) for n in plan["layers_per_stage"]) + ")"
                   if plan["mesh"]["pp"] > 1 else
                   (" (sp)" if plan["sequence_parallel"] else " (search)")
                   if plan["mesh"]["tp"] > 1 else "")
            print(f"{name + cut:<30} {predicted:>13.1f} {measured:>12.1f} "
                  f"{100 * error:>+6.1f}% {predicted_bytes:>12,.0f} "
                  f"{measured_bytes:>12,}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
