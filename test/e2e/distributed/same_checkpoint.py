"""Checks that two checkpoints hold the same step and bit-identical tensors.

  same_checkpoint.py DIR_A DIR_B

Prints "N tensors at step S are bit-identical", or the first difference
and exits 1.
"""

import os
import sys

import numpy as np

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)),
                                ".."))
import reference  # noqa: E402


def main(first, second):
    a = reference.read_checkpoint(first)
    b = reference.read_checkpoint(second)
    if a.metadata["step"] != b.metadata["step"]:
        print(f"steps differ: {a.metadata['step']} and {b.metadata['step']}")
        return 1
    if sorted(a.tensors) != sorted(b.tensors):
        print("the checkpoints hold different tensors")
        return 1
    for name in sorted(a.tensors):
        x, y = np.asarray(a.tensors[name]), np.asarray(b.tensors[name])
        if x.shape != y.shape or x.tobytes() != y.tobytes():
            print(f"tensor '{name}' differs")
            return 1
    print(f"{len(a.tensors)} tensors at step {a.metadata['step']} are "
          "bit-identical")
    return 0


if __name__ == "__main__":
    sys.exit(main(*sys.argv[1:]))
