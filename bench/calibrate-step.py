#!/usr/bin/env python3
"""The cpu-local cluster's compute efficiency: the share of the planner's
predicted compute speed a whole training step reaches on one rank.

    bench/calibrate-step.py CLUSTER.json

Trains a calibration GPT (2 layers, hidden 384, 6 heads, sequence 64,
vocabulary 512, batch 16: not a model the validation uses) 6 steps on one
rank with one thread, as many copies at once as the machine has devices
(a device's speed while every device is busy), asks `cleavec plan` for the
same run's prediction with the efficiency at 1, and writes measured /
predicted into the cluster file's device.compute_efficiency. Run after
bench/calibrate-cpu.sh, which measures the GEMM peak, memory and links
this builds on.
"""

import json
import os
import re
import statistics
import subprocess
import sys
import tempfile

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
BUILD = os.environ.get("CLEAVE_BUILD_DIR", os.path.join(ROOT, "build"))


def tool(name):
    return os.path.join(BUILD, "bin", name)


def main():
    path = sys.argv[1]
    cluster = json.load(open(path))
    cluster["device"]["compute_efficiency"] = 1.0
    with tempfile.TemporaryDirectory() as work:
        raw = os.path.join(work, "raw.json")
        json.dump(cluster, open(raw, "w"))
        model = os.path.join(work, "model.mlir")
        data = os.path.join(work, "text.bin")
        subprocess.run([tool("cleave-models"), "gpt", "--layers", "2",
                        "--hidden", "384", "--heads", "6", "--seq", "64",
                        "--vocab", "512", "--batch", "16", "-o", model],
                       check=True)
        subprocess.run([tool("cleavec"), "prepare-text",
                        "/usr/share/common-licenses/GPL-3", "-o", data],
                       check=True, capture_output=True)
        env = dict(os.environ, OMP_NUM_THREADS="1", OPENBLAS_NUM_THREADS="1")
        subprocess.run([tool("cleavec"), "train", model, "--data", data,
                        "--steps", "1", "--emit-only", "--out",
                        os.path.join(work, "run")],
                       check=True, capture_output=True, env=env)
        program = os.path.join(work, "run", "model")
        subprocess.run([tool("cleavec"), "train", model, "--data", data,
                        "--steps", "1", "--out", os.path.join(work, "run")],
                       check=True, capture_output=True, env=env)
        copies = [subprocess.Popen(
            [program, "--data", data, "--steps", "6", "--out",
             os.path.join(work, f"copy{i}")],
            stdout=subprocess.PIPE, text=True, env=env)
            for i in range(cluster["devices_per_node"])]
        times = []
        for copy in copies:
            log = copy.communicate()[0]
            times += [float(t) for t in
                      re.findall(r"step_time ([0-9.]+) ms", log)[1:]]
        measured = statistics.median(times) / 1e3
        plan = json.loads(subprocess.run(
            [tool("cleavec"), "plan", model, "--gpus", "1", "--cluster", raw,
             "--precision", "f32", "--recompute=none", "--json"],
            check=True, capture_output=True, text=True).stdout)
        predicted = plan["predicted"]["step_time_s"]
    efficiency = min(1.0, predicted / measured)
    print(f"calibration step: measured {measured * 1e3:.1f} ms, predicted at "
          f"full efficiency {predicted * 1e3:.1f} ms: compute_efficiency "
          f"{efficiency:.3f}")
    cluster["device"]["compute_efficiency"] = round(efficiency, 4)
    cluster.setdefault("sources", {})["compute_efficiency"] = (
        "measured: bench/calibrate-step.py, one copy per device training a "
        "calibration GPT (2 layers, hidden 384, batch 16) at once: the "
        "prediction at efficiency 1 over the measured step")
    with open(path, "w") as f:
        json.dump(cluster, f, indent=2)
        f.write("\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
