"""Checks that a pipeline cut is optimal: no other cut of the same blocks
into as many stages has a smaller largest stage (FLOPs, then parameter
bytes).

  check_stages.py PER_BLOCK_REPORT CUT_REPORT

Both are cleave-assign-stages reports: the first with one block per stage
(the blocks' own costs), the second the cut to check.
"""

import itertools
import re
import sys

LINE = re.compile(r"stage \d+ \(rank \d+\): blocks (\d+)-(\d+), "
                  r"flops ([0-9.e+]+) \([0-9.]+%\), params (\d+) bytes")


def read(path):
    stages = [LINE.match(line) for line in open(path)]
    return [(int(m[1]), int(m[2]), float(m[3]), float(m[4]))
            for m in stages if m]


def main(per_block_path, cut_path):
    blocks = [(flops, params) for _, _, flops, params in read(per_block_path)]
    cut = read(cut_path)
    counts = [last - first + 1 for first, last, _, _ in cut]
    n, k = len(blocks), len(counts)

    def largest(sizes):
        stages, start = [], 0
        for size in sizes:
            part = blocks[start:start + size]
            stages.append((sum(f for f, _ in part), sum(p for _, p in part)))
            start += size
        return (max(f for f, _ in stages), max(p for _, p in stages))

    chosen = largest(counts)
    cuts = 0
    for bounds in itertools.combinations(range(1, n), k - 1):
        edges = (0,) + bounds + (n,)
        sizes = [b - a for a, b in zip(edges, edges[1:])]
        cuts += 1
        # The report rounds FLOPs to 4 digits: compare with that slack.
        other = largest(sizes)
        if other[0] < chosen[0] * (1 - 1e-3) or (
                abs(other[0] - chosen[0]) <= 1e-3 * chosen[0] and
                other[1] < chosen[1]):
            print(f"the cut {counts} is beaten by {sizes}: {other} < {chosen}")
            return 1
    print(f"the cut is optimal among {cuts} cuts")
    return 0


if __name__ == "__main__":
    sys.exit(main(*sys.argv[1:]))
