"""Inputs and expected outputs of ops.test, computed with NumPy.

  check_ops.py inputs INPUTS PARAMS        write the test's inputs
  check_ops.py check INPUTS PARAMS OUTPUTS compare the program's outputs
"""

import os
import sys

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import reference  # noqa: E402

X = np.array([[1e10, -1e10, np.nan], [2.7, -2.7, 0.4]], np.float32)
N = np.array([7, -7, np.iinfo(np.int32).min, 5], np.int32)
D = np.array([2, 0, -1, -2], np.int32)


def expected(w):
    quotient = np.array([3, 0, np.iinfo(np.int32).min, -2], np.int32)
    casted = np.array([[2147483647, -2147483648, 0], [2, -2, 0]], np.int32)
    nonzero = np.array([[True, True, True], [True, True, True]])
    shifted = np.exp(w - w.max(axis=1, keepdims=True))
    return {
        "output0": quotient,
        "output1": casted,
        "output2": nonzero,
        "output3": np.array(7, np.int32),
        "output4": np.array([-np.inf, -np.inf], np.float32),
        "output5": np.array([9007199254740993] * 2, np.int64),
        "output6": np.concatenate([X[:, 1:3], X], axis=1),
        "output7": X.T,
        "output8": shifted / shifted.sum(axis=1, keepdims=True),
        "output9": w.reshape(3, 4).sum(axis=1),
    }


def main(argv):
    if argv[1] == "inputs":
        reference.write_safetensors(argv[2], {"x": X, "n": N, "d": D})
        w = np.linspace(-2, 3, 12, dtype=np.float32).reshape(3, 4)
        reference.write_safetensors(argv[3], {"w": w})
        return 0
    w = reference.read_safetensors(argv[3]).tensors["w"]
    got = reference.read_safetensors(argv[4]).tensors
    failures = 0
    for name, want in expected(w).items():
        have = got[name]
        same_nan = np.isnan(want) & np.isnan(have) if want.dtype.kind == "f" \
            else np.zeros(want.shape, bool)
        close = np.isclose(have, want, rtol=1e-6, atol=0) | same_nan \
            if want.dtype.kind == "f" else have == want
        if have.shape != want.shape or not np.all(close):
            print(f"{name}: got {have!r}, expected {want!r}")
            failures += 1
        elif want.dtype.kind == "f" and np.any(np.signbit(have) != np.signbit(want)):
            print(f"{name}: signs differ: got {have!r}, expected {want!r}")
            failures += 1
    print(f"{len(got)} outputs, {failures} wrong")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
