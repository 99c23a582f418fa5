#!/usr/bin/env python3
"""The data-parallel reduction hidden behind the backward, on the CPU,
next to the cost model's prediction for the same run.

    bench/overlap-cpu.py [--layers 4] [--hidden 256] [--heads 4] [--seq 64]
                         [--batch 16] [--micro-batches 4] [--bucket-mb 1]
                         [--zero-stage 0] [--pipeline] [--steps 6]
                         [--repeats 3]

Needs a build (scripts/setup or scripts/test). Trains a GPT on dp=2 with
micro-batches (one OpenMP thread per rank), with the reduction's buckets
started as the last backward fills them (--overlap 1) and, alternately,
all of them run before the update (--overlap 0, the baseline: nothing
hidden), each with a Chrome trace (CLEAVE_TRACE). The time a rank waits
for buckets per step (steps 2..N, both ranks) is what the step still pays;
the baseline's is the reduction's whole time. Hidden = 1 - exposed /
baseline, per repeat. Waiting less is not all saved: on the CPU the
copies run inside the MPI calls that progress them, between ops, so they
still take the cores' time. "saved" is the step time the overlap saved
over the baseline's waits: (baseline step - step) / baseline waits. The
prediction is `cleavec plan` for the same model,
mesh, micro-batches and bucket size on cpu-local: its reduction's hidden
seconds over its total (the cluster file's overlap model).

With --zero-stage 2 or 3 the gradients are reduce-scattered in each
micro-batch's backward and (ZeRO-3) the weights gathered a layer ahead,
by collectives the program starts early (cleave-overlap-collectives);
--overlap 0 finishes each where it starts, and the waits are those for
the started collectives. The program groups them in buckets of 25 MiB
(the pipeline's default), whatever --bucket-mb says.

With --pipeline the mesh is pp=2 (1F1B) instead: the loop posts each
action's receives an action ahead, and --overlap 0 leaves each to the
program's receive; the waits are the time ranks spend in receives. There
is no prediction: the cost model has no term for it.
"""

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile

from benchsupport import (ROOT, add_gpt_arguments, make_gpt, median_step_ms,
                          prepare_text, tool)

sys.path.insert(0, os.path.join(ROOT, "test", "e2e", "pipeline"))
sys.path.insert(0, os.path.join(ROOT, "test", "e2e", "distributed"))
import check_overlap  # noqa: E402
import pipeline_trace  # noqa: E402


def mpirun():
    command = ["mpirun", "-np", "2", "--oversubscribe", "--bind-to", "none",
               "-x", "OMP_NUM_THREADS=1", "-x", "OPENBLAS_NUM_THREADS=1",
               "-x", "CLEAVE_TRACE"]
    if os.geteuid() == 0:
        command.append("--allow-run-as-root")
    return command


def receive_waits_per_step(ranks):
    """Mean seconds per step a rank spent in pipeline receives, steps
    2..N."""
    total, count = 0.0, 0
    for events in ranks.values():
        for inside in pipeline_trace.split_steps(events)[1:]:
            total += sum(e["dur"] for e in inside
                         if e["cat"] == "communication" and e["name"] == "recv")
            count += 1
    return total / max(count, 1) / 1e6


def main():
    parser = argparse.ArgumentParser()
    add_gpt_arguments(parser, layers=4, hidden=256, heads=4, seq=64,
                      vocab=256, batch=16, steps=6)
    parser.add_argument("--micro-batches", type=int, default=4)
    parser.add_argument("--bucket-mb", type=float, default=1.0)
    parser.add_argument("--zero-stage", type=int, default=0,
                        choices=[0, 2, 3])
    parser.add_argument("--pipeline", action="store_true")
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()

    with tempfile.TemporaryDirectory() as work:
        model = os.path.join(work, "gpt.mlir")
        data = os.path.join(work, "text.bin")
        make_gpt(model, args)
        prepare_text(data)
        out = os.path.join(work, "run")
        subprocess.run([tool("cleavec"), "train", model, "--data", data,
                        "--steps", "1", "--out", out,
                        "--micro-batches", str(args.micro_batches)] +
                       (["--mesh", "pp=2"] if args.pipeline else
                        ["--mesh", "dp=2", "--strategy",
                         "dp" + (f",zero{args.zero_stage}"
                                 if args.zero_stage else "")]),
                       check=True, capture_output=True)
        program = os.path.join(out, "gpt")

        def run(overlap, repeat):
            traces = os.path.join(work, f"trace-{overlap}-{repeat}")
            env = dict(os.environ, CLEAVE_TRACE=traces)
            log = subprocess.run(
                mpirun() + [program, "--data", data, "--steps",
                            str(args.steps), "--out",
                            os.path.join(work, f"out-{overlap}-{repeat}"),
                            "--overlap", str(overlap)] +
                ([] if args.zero_stage or args.pipeline else
                 ["--bucket-mb", str(args.bucket_mb)]),
                env=env, capture_output=True, text=True, check=True).stdout
            ranks = pipeline_trace.read_ranks(traces)
            buckets = sum(1 for e in ranks[0]
                          if e["cat"] == "reduction") / args.steps
            if args.pipeline:
                return (receive_waits_per_step(ranks), median_step_ms(log), 0)
            return (check_overlap.waits_per_step(ranks), median_step_ms(log),
                    buckets)

        if args.pipeline:
            print(f"gpt: layers {args.layers}, hidden {args.hidden}, seq "
                  f"{args.seq}, batch {args.batch}; pp=2 1F1B, "
                  f"{args.micro_batches} micro-batches; AdamW f32, "
                  f"{args.steps} steps, {os.cpu_count()} cores")
            print(f"{'repeat':<8}{'received ms':>12}{'baseline ms':>13}"
                  f"{'step ms':>9}{'baseline step ms':>18}")
            steps, baselines = [], []
            for repeat in range(args.repeats):
                waited, step, _ = run(1, repeat)
                baseline, baseline_step, _ = run(0, repeat)
                steps.append(step)
                baselines.append(baseline_step)
                print(f"{repeat + 1:<8}{waited * 1e3:>12.3f}"
                      f"{baseline * 1e3:>13.3f}{step:>9.1f}"
                      f"{baseline_step:>18.1f}")
            print(f"median step: {statistics.median(steps):.1f} ms posted "
                  f"early, {statistics.median(baselines):.1f} ms not")
            return

        plan = json.loads(subprocess.run(
            [tool("cleavec"), "plan", model, "--gpus", "2", "--cluster",
             "cpu-local", "--mesh", "dp=2", "--precision", "f32",
             "--micro-batch-size",
             str(args.batch // 2 // args.micro_batches), "--zero-stage",
             str(args.zero_stage),
             "--recompute", "none", "--bucket-mb", str(args.bucket_mb),
             "--json"], capture_output=True, text=True, check=True).stdout)
        breakdown = plan["predicted"]["breakdown_s"]
        predicted_hidden = breakdown["data_parallel_hidden"]
        predicted_total = predicted_hidden + breakdown["data_parallel"]

        print(f"gpt: layers {args.layers}, hidden {args.hidden}, seq "
              f"{args.seq}, batch {args.batch}; dp=2, ZeRO-{args.zero_stage}, "
              f"{args.micro_batches} micro-batches, buckets of "
              f"{25 if args.zero_stage else args.bucket_mb:g} MiB; AdamW f32, "
              f"{args.steps} steps, {os.cpu_count()} cores")
        print(f"{'repeat':<8}{'buckets':>8}{'waited ms':>11}"
              f"{'baseline ms':>13}{'hidden':>8}{'step ms':>9}"
              f"{'baseline step ms':>18}{'saved':>8}")
        shares, saved = [], []
        for repeat in range(args.repeats):
            exposed, step, buckets = run(1, repeat)
            baseline, baseline_step, _ = run(0, repeat)
            share = 1 - exposed / baseline
            shares.append(share)
            saved.append((baseline_step - step) / (baseline * 1e3))
            print(f"{repeat + 1:<8}{buckets:>8.0f}{exposed * 1e3:>11.3f}"
                  f"{baseline * 1e3:>13.3f}{100 * share:>7.1f}%{step:>9.1f}"
                  f"{baseline_step:>18.1f}{100 * saved[-1]:>7.1f}%")
        print(f"measured hidden: median {100 * statistics.median(shares):.1f}%"
              f" of the waits; step time saved: median "
              f"{100 * statistics.median(saved):.1f}% of the baseline's "
              f"waits")
        print(f"predicted (cpu-local's overlap model): reduction "
              f"{predicted_total * 1e3:.3f} ms, hidden "
              f"{predicted_hidden * 1e3:.3f} ms = "
              f"{100 * predicted_hidden / predicted_total:.1f}%")


if __name__ == "__main__":
    main()
