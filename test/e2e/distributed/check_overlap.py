"""Checks that a data-parallel run reduced its gradients behind the backward
and measures how much of the reduction it hid.

  check_overlap.py TRACE_DIR [--baseline TRACE_DIR]

TRACE_DIR holds the Chrome traces of a run with micro-batches on a dp axis
(CLEAVE_TRACE=DIR): each bucket's reduction is a "reduction" span on a lane
(tid) of its own, from its start to when the rank saw it finish, and a
"wait for bucket" span is time the rank blocked on one. On every rank and
every step, some bucket must start before the step's last backward pass
ends, on its own lane. With --baseline (the same run with --overlap 0,
where every reduction runs before the update), prints the share of the
baseline's reduction time the run hid: 1 - exposed / baseline, exposed and
baseline being the mean wait per step over steps 2..N and all ranks.
"""

import argparse
import os
import sys

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)),
                                "..", "pipeline"))
import pipeline_trace as trace  # noqa: E402


def waits_per_step(ranks):
    """Mean seconds per step a rank waited for buckets and for collectives
    its programs started, steps 2..N."""
    total, count = 0.0, 0
    for events in ranks.values():
        for inside in trace.split_steps(events)[1:]:
            total += sum(e["dur"] for e in inside
                         if e["name"].startswith(("wait for bucket",
                                                  "wait for started")))
            count += 1
    return total / max(count, 1) / 1e6


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("directory")
    parser.add_argument("--baseline")
    args = parser.parse_args()
    ranks = trace.read_ranks(args.directory)
    if not ranks:
        print(f"no traces in {args.directory}")
        return 1
    early = buckets = steps = 0
    for rank, events in sorted(ranks.items()):
        per_step = trace.split_steps(events)
        steps = len(per_step)
        for number, inside in enumerate(per_step, 1):
            reductions = [e for e in inside if e["cat"] == "reduction"]
            backward = [e for e in trace.actions(inside)
                        if e["name"].startswith("B")]
            if not reductions or not backward:
                print(f"rank {rank} step {number}: no reductions or backward")
                return 1
            if any(e["tid"] != 1 for e in reductions) or any(
                    e["tid"] != 0 for e in backward):
                print(f"rank {rank} step {number}: reductions share the "
                      "compute lane")
                return 1
            end = max(e["ts"] + e["dur"] for e in backward)
            started = sum(1 for e in reductions if e["ts"] < end)
            if started == 0:
                print(f"rank {rank} step {number}: every bucket started after "
                      "the backward")
                return 1
            early += started
            buckets += len(reductions)
    print(f"{len(ranks)} ranks, {steps} steps: {early} of {buckets} buckets "
          "started while the backward ran, on a lane of their own")
    if args.baseline:
        exposed = waits_per_step(ranks)
        baseline = waits_per_step(trace.read_ranks(args.baseline))
        print(f"waited {exposed * 1e3:.3f} ms per step for reductions, "
              f"{baseline * 1e3:.3f} ms without overlap: "
              f"{100 * (1 - exposed / baseline):.1f}% hidden")
    return 0


if __name__ == "__main__":
    sys.exit(main())
