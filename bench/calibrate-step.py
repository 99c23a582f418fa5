#!/usr/bin/env python3
"""The cpu-local cluster's compute efficiency and update time: what a whole
training step on one device reaches beyond its FLOPs and bytes.

    bench/calibrate-step.py CLUSTER.json

Trains two calibration GPTs with the same parameters and 8x apart in work
(2 layers, hidden 384, 6 heads, sequence 64, vocabulary 512, batch 16 and
batch 2: not models the validation uses) 6 steps on one rank with one
thread, as many copies at once as the machine has devices (a device's
speed while every device is busy). `cleavec plan` predicts each run's
compute with efficiency 1 (W) and the model's parameters (P); the measured
step T = W / efficiency + P * update time (plus the predicted rest),
twice, gives both, which go into the cluster file's
device.compute_efficiency and device.update_time_per_param. Run after
bench/calibrate-cpu.sh, which measures the GEMM peak, memory and links
this builds on.
"""

import copy
import json
import os
import re
import subprocess
import sys
import tempfile

from benchsupport import median_step_ms, prepare_text, tool


def measure(work, data, batch, copies):
    """Median step time (s) of `copies` concurrent one-rank runs of the
    calibration GPT at `batch`, and the model's path."""
    model = os.path.join(work, f"model-{batch}.mlir")
    subprocess.run([tool("cleave-models"), "gpt", "--layers", "2",
                    "--hidden", "384", "--heads", "6", "--seq", "64",
                    "--vocab", "512", "--batch", str(batch), "-o", model],
                   check=True)
    env = dict(os.environ, OMP_NUM_THREADS="1", OPENBLAS_NUM_THREADS="1")
    out = os.path.join(work, f"run-{batch}")
    subprocess.run([tool("cleavec"), "train", model, "--data", data,
                    "--steps", "1", "--out", out],
                   check=True, capture_output=True, env=env)
    program = os.path.join(out, f"model-{batch}")
    runs = [subprocess.Popen(
        [program, "--data", data, "--steps", "6", "--out",
         os.path.join(work, f"copy-{batch}-{i}")],
        stdout=subprocess.PIPE, text=True, env=env) for i in range(copies)]
    logs = [run.communicate()[0] for run in runs]
    times = sorted(median_step_ms(log) for log in logs)
    return times[len(times) // 2] / 1e3, model


def predict(work, cluster, model):
    """(compute, rest without the update, parameters) of cleavec plan's
    prediction for one rank at efficiency 1."""
    cluster["device"]["compute_efficiency"] = 1.0
    cluster["device"].pop("update_time_per_param", None)
    path = os.path.join(work, "cluster.json")
    json.dump(cluster, open(path, "w"))
    plan = json.loads(subprocess.run(
        [tool("cleavec"), "plan", model, "--gpus", "1", "--cluster", path,
         "--precision", "f32", "--recompute=none", "--json"],
        check=True, capture_output=True, text=True).stdout)
    breakdown = plan["predicted"]["breakdown_s"]
    rest = plan["predicted"]["step_time_s"] - breakdown["compute"] - \
        breakdown["optimizer"]
    report = subprocess.run([tool("cleavec"), "plan", model, "--gpus", "1",
                             "--cluster", path, "--precision", "f32",
                             "--recompute=none"],
                            check=True, capture_output=True, text=True).stdout
    params = float(re.search(r"([0-9.]+)M parameters", report).group(1)) * 1e6
    return breakdown["compute"], rest, params


def main():
    path = sys.argv[1]
    cluster = json.load(open(path))
    with tempfile.TemporaryDirectory() as work:
        data = os.path.join(work, "text.bin")
        prepare_text(data)
        rows = []
        for batch in [16, 2]:
            measured, model = measure(work, data, batch,
                                      cluster["devices_per_node"])
            work_time, rest, params = predict(work, copy.deepcopy(cluster),
                                              model)
            rows.append((measured - rest, work_time, params))
            print(f"calibration batch {batch}: measured {measured * 1e3:.1f} ms,"
                  f" predicted work {work_time * 1e3:.1f} ms, "
                  f"{params / 1e6:.2f}M parameters")
    # T = W x + P u for x = 1 / efficiency: two equations.
    (t1, w1, p1), (t2, w2, p2) = rows
    determinant = w1 * p2 - w2 * p1
    inverse = (t1 * p2 - t2 * p1) / determinant
    update = max(0.0, (w1 * t2 - w2 * t1) / determinant)
    efficiency = min(1.0, 1.0 / inverse)
    print(f"compute_efficiency {efficiency:.3f}, update_time_per_param "
          f"{update * 1e9:.2f} ns")
    cluster["device"]["compute_efficiency"] = round(efficiency, 4)
    cluster["device"]["update_time_per_param"] = float(f"{update:.4g}")
    source = ("measured: bench/calibrate-step.py, one copy per device "
              "training two calibration GPTs (2 layers, hidden 384; batch 16 "
              "and 2) at once, solved for both")
    cluster.setdefault("sources", {})["compute_efficiency"] = source
    cluster["sources"]["update_time_per_param"] = source
    with open(path, "w") as f:
        json.dump(cluster, f, indent=2)
        f.write("\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
