"""Checks that a pipeline run's traces show its schedule.

  check_trace.py TRACE_DIR SCHEDULE_REPORT

SCHEDULE_REPORT is `cleavec schedule`'s output for the same pipeline: on
every rank and every step, the forward and backward passes must appear in
the report's order, and the ranks must have sent and received.
"""

import sys

import pipeline_trace as trace


def main():
    directory, report = sys.argv[1:3]
    expected = {}
    for line in open(report):
        if line.startswith("rank "):
            head, order = line.split(":", 1)
            expected[int(head.split()[1])] = order.split()
    ranks = trace.read_ranks(directory)
    if sorted(ranks) != sorted(expected):
        print(f"traces of ranks {sorted(ranks)}, schedule of {sorted(expected)}")
        return 1
    steps = None
    for rank, events in sorted(ranks.items()):
        per_step = trace.split_steps(events)
        steps = len(per_step) if steps is None else min(steps, len(per_step))
        for number, inside in enumerate(per_step, 1):
            names = [e["name"] for e in trace.actions(inside)]
            if names != expected[rank]:
                print(f"rank {rank} step {number} ran {' '.join(names)}")
                return 1
            kinds = {e["name"] for e in inside if e["cat"] == "communication"}
            if not {"send", "recv"} <= kinds:
                print(f"rank {rank} step {number}: no send or receive traced")
                return 1
    print(f"{len(ranks)} ranks, {steps} steps: every rank ran its schedule; "
          f"bubble of the last step {trace.bubble(ranks, steps - 1):.3f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
