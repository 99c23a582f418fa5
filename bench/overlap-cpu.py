#!/usr/bin/env python3
"""The data-parallel reduction hidden behind the backward, on the CPU,
next to the cost model's prediction for the same run.

    bench/overlap-cpu.py [--layers 4] [--hidden 256] [--heads 4] [--seq 64]
                         [--batch 16] [--micro-batches 4] [--bucket-mb 1]
                         [--steps 6] [--repeats 3]

Needs a build (scripts/setup or scripts/test). Trains a GPT on dp=2 with
micro-batches (one OpenMP thread per rank), with the reduction's buckets
started as the last backward fills them (--overlap 1) and, alternately,
all of them run before the update (--overlap 0, the baseline: nothing
hidden), each with a Chrome trace (CLEAVE_TRACE). The time a rank waits
for buckets per step (steps 2..N, both ranks) is what the step still pays;
the baseline's is the reduction's whole time. Hidden = 1 - exposed /
baseline, per repeat. The prediction is `cleavec plan` for the same model,
mesh, micro-batches and bucket size on cpu-local: its reduction's hidden
seconds over its total (the cluster file's overlap model).
"""

import argparse
import array
import json
import os
import statistics
import subprocess
import sys
import tempfile

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
BUILD = os.environ.get("CLEAVE_BUILD_DIR", os.path.join(ROOT, "build"))
sys.path.insert(0, os.path.join(ROOT, "test", "e2e", "pipeline"))
sys.path.insert(0, os.path.join(ROOT, "test", "e2e", "distributed"))
import check_overlap  # noqa: E402
import pipeline_trace  # noqa: E402


def tool(name):
    return os.path.join(BUILD, "bin", name)


def mpirun():
    command = ["mpirun", "-np", "2", "--oversubscribe", "--bind-to", "none",
               "-x", "OMP_NUM_THREADS=1", "-x", "OPENBLAS_NUM_THREADS=1",
               "-x", "CLEAVE_TRACE"]
    if os.geteuid() == 0:
        command.append("--allow-run-as-root")
    return command


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--layers", type=int, default=4)
    parser.add_argument("--hidden", type=int, default=256)
    parser.add_argument("--heads", type=int, default=4)
    parser.add_argument("--seq", type=int, default=64)
    parser.add_argument("--vocab", type=int, default=256)
    parser.add_argument("--batch", type=int, default=16)
    parser.add_argument("--micro-batches", type=int, default=4)
    parser.add_argument("--bucket-mb", type=float, default=1.0)
    parser.add_argument("--steps", type=int, default=6)
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()

    with tempfile.TemporaryDirectory() as work:
        model = os.path.join(work, "gpt.mlir")
        data = os.path.join(work, "text.bin")
        subprocess.run([tool("cleave-models"), "gpt", "--layers",
                        str(args.layers), "--hidden", str(args.hidden),
                        "--heads", str(args.heads), "--seq", str(args.seq),
                        "--vocab", str(args.vocab), "--batch",
                        str(args.batch), "-o", model], check=True)
        with open(data, "wb") as file:
            tokens = array.array("H", ((i * 7919 + i // 3) % args.vocab
                                       for i in range(1 << 18)))
            if sys.byteorder != "little":
                tokens.byteswap()
            file.write(tokens.tobytes())
        out = os.path.join(work, "run")
        subprocess.run([tool("cleavec"), "train", model, "--data", data,
                        "--steps", "1", "--out", out, "--mesh", "dp=2",
                        "--micro-batches", str(args.micro_batches)],
                       check=True, capture_output=True)
        program = os.path.join(out, "gpt")

        def run(overlap, repeat):
            traces = os.path.join(work, f"trace-{overlap}-{repeat}")
            env = dict(os.environ, CLEAVE_TRACE=traces)
            log = subprocess.run(
                mpirun() + [program, "--data", data, "--steps",
                            str(args.steps), "--out",
                            os.path.join(work, f"out-{overlap}-{repeat}"),
                            "--bucket-mb", str(args.bucket_mb), "--overlap",
                            str(overlap)],
                env=env, capture_output=True, text=True, check=True).stdout
            times = [float(line.split("step_time ")[1].split()[0])
                     for line in log.splitlines()
                     if line.startswith("step ") and not line.startswith("step 1 ")]
            ranks = pipeline_trace.read_ranks(traces)
            buckets = sum(1 for e in ranks[0]
                          if e["cat"] == "reduction") / args.steps
            return (check_overlap.waits_per_step(ranks),
                    statistics.median(times), buckets)

        plan = json.loads(subprocess.run(
            [tool("cleavec"), "plan", model, "--gpus", "2", "--cluster",
             "cpu-local", "--mesh", "dp=2", "--precision", "f32",
             "--micro-batch-size",
             str(args.batch // 2 // args.micro_batches), "--zero-stage", "0",
             "--recompute", "none", "--bucket-mb", str(args.bucket_mb),
             "--json"], capture_output=True, text=True, check=True).stdout)
        breakdown = plan["predicted"]["breakdown_s"]
        predicted_hidden = breakdown["data_parallel_hidden"]
        predicted_total = predicted_hidden + breakdown["data_parallel"]

        print(f"gpt: layers {args.layers}, hidden {args.hidden}, seq "
              f"{args.seq}, batch {args.batch}; dp=2, {args.micro_batches} "
              f"micro-batches, buckets of {args.bucket_mb:g} MiB; AdamW f32, "
              f"{args.steps} steps, {os.cpu_count()} cores")
        print(f"{'repeat':<8}{'buckets':>8}{'waited ms':>11}"
              f"{'baseline ms':>13}{'hidden':>8}{'step ms':>9}"
              f"{'baseline step ms':>18}")
        shares = []
        for repeat in range(args.repeats):
            exposed, step, buckets = run(1, repeat)
            baseline, baseline_step, _ = run(0, repeat)
            share = 1 - exposed / baseline
            shares.append(share)
            print(f"{repeat + 1:<8}{buckets:>8.0f}{exposed * 1e3:>11.3f}"
                  f"{baseline * 1e3:>13.3f}{100 * share:>7.1f}%{step:>9.1f}"
                  f"{baseline_step:>18.1f}")
        print(f"measured hidden: median {100 * statistics.median(shares):.1f}%")
        print(f"predicted (cpu-local's overlap model): reduction "
              f"{predicted_total * 1e3:.3f} ms, hidden "
              f"{predicted_hidden * 1e3:.3f} ms = "
              f"{100 * predicted_hidden / predicted_total:.1f}%")


if __name__ == "__main__":
    main()
