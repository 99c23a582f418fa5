#!/usr/bin/env python3
"""Bytes each device sends per training step, from cleave-print-cost's JSON
lines (`--cleave-print-cost=json=true`) for a program cleavec built without
a pp axis: a stage's forward and backward run once per micro-batch, an
update or a whole step once; the model's own forward is not part of a step.

    step_bytes.py COST.jsonl MICRO_BATCHES
"""

import json
import sys


def main():
    path, micro_batches = sys.argv[1], int(sys.argv[2])
    total = 0.0
    for line in open(path):
        function = json.loads(line)
        name = function["function"]
        if name == "forward":
            continue
        per_micro_batch = "_stage" in name and name.endswith(("_forward", "_backward"))
        total += (micro_batches if per_micro_batch else 1) * function["comm_bytes"]
    print(round(total))


if __name__ == "__main__":
    main()
