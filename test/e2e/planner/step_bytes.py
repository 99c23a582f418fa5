#!/usr/bin/env python3
"""Bytes a device sends per training step, from cleave-print-cost's JSON
lines (`--cleave-print-cost=json=true`) for a program cleavec built: a
stage's forward and backward run once per micro-batch, an update or a whole
step once; the model's own forward is not part of a step. With a pp axis,
pipeline rank r runs the stages s with s % ranks == r and the update
`..._rank<r>`; the most any rank sends is printed.

    step_bytes.py COST.jsonl MICRO_BATCHES
"""

import json
import re
import sys


def main():
    path, micro_batches = sys.argv[1], int(sys.argv[2])
    functions = [json.loads(line) for line in open(path)]
    ranks = sum(1 for f in functions if re.search(r"_rank\d+$", f["function"]))
    sent = {}
    for function in functions:
        name = function["function"]
        if name == "forward":
            continue
        stage = re.search(r"_stage(\d+)_(forward|backward)$", name)
        update = re.search(r"_rank(\d+)$", name)
        if stage:
            rank = int(stage.group(1)) % max(ranks, 1)
            times = micro_batches
        else:
            rank = int(update.group(1)) if update else 0
            times = 1
        sent[rank] = sent.get(rank, 0) + times * function["comm_bytes"]
    print(round(max(sent.values())))


if __name__ == "__main__":
    main()
