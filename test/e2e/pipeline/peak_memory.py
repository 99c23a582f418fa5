"""Compares the peak memory training runs report.

  peak_memory.py SMALLER.log,LARGER.log ...

For each pair, the last `peak_memory <v> MiB` of the first log must be below
the second's. Prints "a < b" per pair (a and b the logs' names without
.log), joined by "; ", or says which pair is not and exits 1.
"""

import os
import sys


def peak(path):
    value = None
    for line in open(path):
        words = line.split()
        if "peak_memory" in words:
            value = float(words[words.index("peak_memory") + 1])
    if value is None:
        sys.exit(f"{path}: no peak_memory")
    return value


def name(path):
    return os.path.splitext(os.path.basename(path))[0]


def main():
    said = []
    for pair in sys.argv[1:]:
        smaller, larger = pair.split(",")
        a, b = peak(smaller), peak(larger)
        if not a < b:
            sys.exit(f"{name(smaller)} uses {a} MiB, not less than "
                     f"{name(larger)}'s {b} MiB")
        said.append(f"{name(smaller)} < {name(larger)}")
    print("; ".join(said))


if __name__ == "__main__":
    main()
