"""Compares the `step <n> loss <v> grad_norm <g>` of two training logs.

  compare_logs.py FULL PARTIAL...

Every step a PARTIAL log reports must appear in FULL with exactly the same
loss and gradient norm: a resumed run continues the uninterrupted one bit for
bit. Prints the steps compared; exits 1 on a difference or if nothing
overlaps.
"""

import sys


def read_steps(path):
    steps = {}
    with open(path) as log:
        for line in log:
            words = line.split()
            if len(words) >= 6 and words[0] == "step" and words[2] == "loss":
                steps[int(words[1])] = (words[3], words[5])
    return steps


def main(full_path, *partial_paths):
    full = read_steps(full_path)
    compared = []
    for path in partial_paths:
        for step, values in sorted(read_steps(path).items()):
            if full.get(step) != values:
                print(f"{path}: step {step} has loss/grad_norm {values}, "
                      f"the uninterrupted run {full.get(step)}")
                return 1
            compared.append(step)
    if not compared:
        print("no steps to compare")
        return 1
    print(f"{len(compared)} steps identical: {compared[0]}..{compared[-1]}")
    return 0


if __name__ == "__main__":
    sys.exit(main(*sys.argv[1:]))
