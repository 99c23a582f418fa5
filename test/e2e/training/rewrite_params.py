"""Rewrites a safetensors file of parameters for the --init-from tests.

  rewrite_params.py IN OUT --bf16 | --drop NAME | --add NAME | --flatten NAME

--bf16 stores every tensor in bfloat16; --drop leaves NAME out; --add adds
a tensor NAME that no model has; --flatten stores NAME as one dimension.
"""

import argparse
import os
import sys

import numpy as np

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)),
                                ".."))
import reference  # noqa: E402


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("input")
    parser.add_argument("output")
    change = parser.add_mutually_exclusive_group(required=True)
    change.add_argument("--bf16", action="store_true")
    change.add_argument("--drop")
    change.add_argument("--add")
    change.add_argument("--flatten")
    args = parser.parse_args()
    tensors = dict(reference.read_safetensors(args.input).tensors)
    if args.bf16:
        tensors = {name: ("BF16", value) for name, value in tensors.items()}
    elif args.drop:
        del tensors[args.drop]
    elif args.add:
        tensors[args.add] = np.zeros(4, dtype=np.float32)
    else:
        tensors[args.flatten] = tensors[args.flatten].reshape(-1)
    reference.write_safetensors(args.output, tensors)


if __name__ == "__main__":
    main()
