"""Checks that a run started from a parameters file holds exactly those
parameters: the checkpoint of step 0 against the file.

  check_init.py CHECKPOINT_DIR PARAMS_FILE

Prints "N parameters as in FILE" or the first that differs.
"""

import os
import sys

import numpy as np

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)),
                                ".."))
import reference  # noqa: E402


def main():
    directory, path = sys.argv[1:]
    saved = reference.read_checkpoint(directory).tensors
    given = reference.read_safetensors(path).tensors
    for name, value in given.items():
        if name not in saved:
            print(f"{name}: not in the checkpoint")
            return 1
        if saved[name].shape != value.shape or not np.array_equal(
                saved[name].astype(np.float32), value.astype(np.float32)):
            print(f"{name}: differs")
            return 1
    print(f"{len(given)} parameters as in {os.path.basename(path)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
