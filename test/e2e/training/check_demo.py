"""Checks the demo's training log: one line per step from 1 to N, the first
loss near ln(256) and the last below a bound.

  check_demo.py LOG STEPS BOUND
"""

import math
import sys


def main(path, steps, bound):
    losses = []
    with open(path) as log:
        for line in log:
            words = line.split()
            if "step" in words and "loss" in words:
                if words[0] != "step" or words[2] != "loss":
                    print(f"malformed step line: {line.strip()}")
                    return 1
                losses.append((int(words[1]), float(words[3])))
    numbers = [step for step, _ in losses]
    if numbers != list(range(1, int(steps) + 1)):
        print(f"expected steps 1..{steps}, got {numbers[:3]}...{numbers[-3:]}")
        return 1
    first, last = losses[0][1], losses[-1][1]
    print(f"loss {first:.3f} -> {last:.3f} over {steps} steps")
    if abs(first - math.log(256)) > 0.3:
        print(f"the first loss {first} is not near ln(256) = {math.log(256):.3f}")
        return 1
    if not last < float(bound):
        print(f"the last loss {last} is not below {bound}")
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main(*sys.argv[1:4]))
