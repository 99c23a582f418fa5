#!/usr/bin/env python3
"""Sharded training on the CPU: the bytes each rank sends per step, measured
by the runtime as it runs the collectives, next to cleave-print-cost's
prediction for the same partitioned program; and the step time per mesh.
With micro-batches (m=4) each rank accumulates its gradients and reduces
them once per step (ZeRO-2: every micro-batch's reduce-scatter).

    bench/distributed.py [--layers 4] [--hidden 256] [--heads 8] [--seq 128]
                         [--vocab 1024] [--batch 8] [--steps 8]

Needs a build (scripts/setup or scripts/test). Every mesh trains the same
tiny GPT with AdamW from the same initial parameters and data; cleavec
launches the ranks with mpirun (one OpenMP thread each). The prediction
runs cleavec's own pipeline (cleave-opt --cleave-training-pipeline, up to
the sharded phase) and reads train_step's comm_bytes. Step time is the median over steps 2..N of the step_time rank 0
logs; on a machine with fewer cores than ranks the ranks share cores, so
compare meshes with that in mind.
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

MESHES = [
    ("1 rank", []),
    ("dp=2", ["--mesh", "dp=2"]),
    ("tp=2", ["--mesh", "tp=2"]),
    ("dp=4", ["--mesh", "dp=4"]),
    ("tp=4", ["--mesh", "tp=4"]),
    ("dp=2 x tp=2", ["--mesh", "dp=2,tp=2"]),
    ("zero1 dp=2", ["--mesh", "dp=2", "--strategy", "dp,zero1"]),
    ("zero3 dp=2", ["--mesh", "dp=2", "--strategy", "dp,zero3"]),
    # Micro-batches accumulate locally: dp and ZeRO-1 send what one
    # micro-batch sends; ZeRO-2 reduce-scatters every micro-batch's.
    ("dp=2 m=4", ["--mesh", "dp=2", "--micro-batches", "4"]),
    ("zero1 dp=2 m=4", ["--mesh", "dp=2", "--strategy", "dp,zero1",
                        "--micro-batches", "4"]),
    ("zero2 dp=2 m=4", ["--mesh", "dp=2", "--strategy", "dp,zero2",
                        "--micro-batches", "4"]),
]


def tool(name):
    return os.path.join(BUILD, "bin", name)


def predict(model_path, flags):
    """cleave-print-cost's comm_bytes per step after cleavec's passes: the
    train_step's, or with micro-batches (a pp axis of one stage) each
    stage program's times the micro-batches plus the update's."""
    def flag(name, default=None):
        return flags[flags.index(name) + 1] if name in flags else default
    micro_batches = int(flag("--micro-batches", "1"))
    mesh = flag("--mesh")
    option = "mode=train"
    if micro_batches > 1:
        mesh += ",pp=1"
        option += f" compile-to=staged micro-batches={micro_batches}"
    else:
        option += " compile-to=sharded"
    option += " mesh=" + mesh
    if "--strategy" in flags:
        option += " strategy=" + flag("--strategy")
    report = subprocess.run(
        [tool("cleave-opt"), model_path,
         "--cleave-training-pipeline=" + option,
         "--cleave-print-cost=json=true", "-o", os.devnull],
        capture_output=True, text=True, check=True).stdout
    total, found = 0.0, False
    for line in report.splitlines():
        entry = json.loads(line)
        name = entry["function"]
        if name == "train_step" or name.startswith("apply_update"):
            total += entry.get("comm_bytes", 0.0)
            found = True
        elif "_stage" in name:
            total += micro_batches * entry.get("comm_bytes", 0.0)
    if not found:
        sys.exit("distributed: no train_step or update in the cost report")
    return total


def train(model_path, data_path, out, steps, flags):
    """(comm_bytes per step as rank 0 logged them, median step time in ms)."""
    log = subprocess.run(
        [tool("cleavec"), "train", model_path, "--data", data_path,
         "--token-bytes", "2", "--steps", str(steps), "--lr", "1e-3",
         "--out", out] + flags,
        capture_output=True, text=True)
    if log.returncode != 0:
        sys.exit(f"distributed: training {flags} failed:\n{log.stdout}{log.stderr}")
    measured, times = set(), []
    for line in log.stdout.splitlines():
        words = line.split()
        if words[:1] != ["step"]:
            continue
        # "step N loss X ... step_time T ms [comm_bytes B]"
        value = {name: words[i + 1] for i, name in enumerate(words[:-1])}
        if int(value["step"]) > 1:
            times.append(float(value["step_time"]))
        if "comm_bytes" in value:
            measured.add(float(value["comm_bytes"]))
    if len(measured) > 1:
        sys.exit(f"distributed: {flags}: bytes differ between steps: {measured}")
    return (measured.pop() if measured else 0.0), statistics.median(times)


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--layers", type=int, default=4)
    parser.add_argument("--hidden", type=int, default=256)
    parser.add_argument("--heads", type=int, default=8)
    parser.add_argument("--seq", type=int, default=128)
    parser.add_argument("--vocab", type=int, default=1024)
    parser.add_argument("--batch", type=int, default=8)
    parser.add_argument("--steps", type=int, default=8)
    args = parser.parse_args()

    with tempfile.TemporaryDirectory() as work:
        model = os.path.join(work, "gpt.mlir")
        data = os.path.join(work, "text.bin")
        subprocess.run([tool("cleave-models"), "gpt", "--layers", str(args.layers),
                        "--hidden", str(args.hidden), "--heads", str(args.heads),
                        "--seq", str(args.seq), "--vocab", str(args.vocab),
                        "--batch", str(args.batch), "-o", model], check=True)
        with open(data, "wb") as file:
            # Deterministic uint16 tokens inside the vocabulary, without a
            # header (read with --token-bytes 2).
            tokens = array.array("H", ((i * 7919 + i // 3) % args.vocab
                                       for i in range(1 << 18)))
            if sys.byteorder != "little":
                tokens.byteswap()
            file.write(tokens.tobytes())
        print(f"gpt: layers {args.layers}, hidden {args.hidden}, heads "
              f"{args.heads}, seq {args.seq}, vocab {args.vocab}, batch "
              f"{args.batch}; AdamW, f32, {args.steps} steps, {os.cpu_count()} "
              "cores")
        print(f"{'mesh':<14}{'measured B/step/rank':>22}{'predicted':>14}"
              f"{'ratio':>10}{'step ms':>10}")
        for name, flags in MESHES:
            out = os.path.join(work, name.replace(" ", "_").replace("=", ""))
            measured, step_ms = train(model, data, out, args.steps, flags)
            predicted = predict(model, flags) if flags else 0.0
            ratio = f"{measured / predicted:.6f}" if predicted else "-"
            print(f"{name:<14}{measured:>22,.0f}{predicted:>14,.0f}{ratio:>10}"
                  f"{step_ms:>10.1f}")


if __name__ == "__main__":
    main()
