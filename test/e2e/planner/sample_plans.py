"""Builds and trains a sample of the plans the planner's search considers.

  sample_plans.py --cleavec PATH --model MODEL --data TOKENS --gpus N
                  --cluster NAME --out DIR

Lists every plan `cleavec plan` finds that fits (--alternatives), takes
plans in rank order until every mesh (with its axis order), schedule, ZeRO
stage and recompute setting among them has been taken at least once, and
trains each for one step with `cleavec train` under the flags that spell
the plan (tensor parallelism as the searched split or, with sequence
parallelism, megatron-sp). Prints one line per plan and a summary; exits 1 when a plan
does not build or train.
"""

import argparse
import json
import os
import subprocess
import sys


def features(plan):
    mesh = plan["mesh"]
    order = mesh["order"] if mesh["dp"] > 1 and mesh["pp"] > 1 else ""
    return {
        "mesh": f"dp={mesh['dp']},tp={mesh['tp']},pp={mesh['pp']}"
                + (f" ({order})" if order else ""),
        "tensor": "sequence parallel" if plan["sequence_parallel"]
                  else "searched split" if mesh["tp"] > 1 else "no tp",
        "schedule": plan["schedule"]
                    + (f" v={plan['virtual_stages']}"
                       if plan["virtual_stages"] > 1 else ""),
        "zero": f"ZeRO-{plan['zero_stage']}",
        "recompute": plan["recompute"],
    }


def train_flags(plan, cluster):
    mesh = plan["mesh"]
    sizes = {"dp": mesh["dp"], "tp": mesh["tp"], "pp": mesh["pp"]}
    axes = [f"{axis}={sizes[axis]}" for axis in mesh["order"].split(",")
            if sizes[axis] > 1]
    flags = ["--micro-batches", str(plan["micro_batches"])]
    if axes:
        flags += ["--mesh", ",".join(axes)]
    strategies = []
    if mesh["dp"] > 1:
        strategies.append("dp")
    if mesh["tp"] > 1:
        strategies.append("megatron-sp" if plan["sequence_parallel"]
                          else "search")
    if plan["zero_stage"] > 0:
        strategies.append(f"zero{plan['zero_stage']}")
    if strategies:
        flags += ["--strategy", ",".join(strategies), "--cluster", cluster]
    if mesh["pp"] > 1:
        flags += ["--schedule", plan["schedule"]]
        if plan["virtual_stages"] > 1:
            flags += ["--virtual-stages", str(plan["virtual_stages"])]
        else:
            flags += ["--layers-per-stage",
                      ",".join(map(str, plan["layers_per_stage"]))]
    if plan["recompute"] == "full":
        flags += ["--recompute", "full"]
    elif plan["recompute"] == "partial":
        flags += ["--recompute-layers",
                  ",".join(map(str, plan["recompute_layers"]))]
    return flags


def main():
    parser = argparse.ArgumentParser()
    for name in ["cleavec", "model", "data", "cluster", "out"]:
        parser.add_argument("--" + name, required=True)
    parser.add_argument("--gpus", type=int, required=True)
    args = parser.parse_args()

    listing = subprocess.run(
        [args.cleavec, "plan", args.model, "--gpus", str(args.gpus),
         "--cluster", args.cluster, "--precision", "f32", "--json",
         "--alternatives", "100000"],
        check=True, capture_output=True, text=True).stdout
    report = json.loads(listing)
    plans = [report] + report["alternatives"][1:]
    seen = {key: set() for key in features(report)}
    every = {key: set() for key in seen}
    sample = []
    for plan in plans:
        described = features(plan)
        for key, value in described.items():
            every[key].add(value)
        if any(value not in seen[key] for key, value in described.items()):
            sample.append(plan)
            for key, value in described.items():
                seen[key].add(value)

    for index, plan in enumerate(sample):
        flags = train_flags(plan, args.cluster)
        out = os.path.join(args.out, f"plan{index}")
        run = subprocess.run(
            [args.cleavec, "train", args.model, "--data", args.data,
             "--steps", "1", "--opt-level", "0", "--out", out] + flags,
            capture_output=True, text=True)
        described = ", ".join(features(plan).values())
        losses = [line.split()[3] for line in run.stdout.splitlines()
                  if line.startswith("step 1 loss")]
        if run.returncode != 0 or not losses:
            print(f"plan {index} ({described}; {' '.join(flags)}) failed:")
            print(run.stdout[-2000:], run.stderr[-2000:])
            sys.exit(1)
        print(f"plan {index}: {described}: step 1 loss {losses[0]}")
    covered = all(seen[key] == every[key] for key in seen)
    print(f"{len(sample)} of {len(plans)} plans trained, covering "
          + ("every" if covered else "NOT every")
          + " mesh ({}), tensor split ({}), schedule ({}), ZeRO stage ({}) "
            "and recompute setting ({})".format(
                *(len(every[key]) for key in every)))


if __name__ == "__main__":
    main()
