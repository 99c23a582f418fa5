"""Writes broken copies of a safetensors file for the bad-input tests.

  corrupt.py KIND IN OUT

KIND: drop (remove the first tensor), reshape (first tensor gets one more
row), retype (first float tensor stored as F64), extra (add a tensor no
program has), truncate (cut the file in the middle of the data), token
(set the first token to the vocabulary size, one past the last row).
"""

import os
import sys

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import reference  # noqa: E402


def main(kind, source, target):
    if kind == "truncate":
        with open(source, "rb") as file:
            data = file.read()
        with open(target, "wb") as file:
            file.write(data[: len(data) - 7])
        return 0
    loaded = reference.read_safetensors(source)
    tensors = {name: (loaded.dtypes[name], array)
               for name, array in loaded.tensors.items()}
    first = next(iter(tensors))
    dtype, array = tensors[first]
    if kind == "drop":
        del tensors[first]
    elif kind == "reshape":
        tensors[first] = (dtype, np.concatenate([array, array[:1]]))
    elif kind == "retype":
        tensors[first] = ("F64", array.astype(np.float64))
    elif kind == "extra":
        tensors["layers.99.mystery.weight"] = ("F32", np.zeros(3, np.float32))
    elif kind == "token":
        vocab = int(sys.argv[4])
        tokens = tensors["tokens"][1].copy()
        tokens.flat[0] = vocab
        tensors["tokens"] = ("I32", tokens)
    else:
        print(f"unknown kind '{kind}'", file=sys.stderr)
        return 2
    reference.write_safetensors(target, tensors)
    return 0


if __name__ == "__main__":
    sys.exit(main(*sys.argv[1:4]))
