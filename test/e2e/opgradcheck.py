"""Checks a compiled gradient program against central finite differences of
its own forward program, both built from one function in f64.

  opgradcheck.py --forward EXE --gradients EXE --params P --inputs I
                 [--samples K] [--step H] [--rtol R] [--atol A]

The gradient program (cleavec build --gradients) writes `loss` and
`grad.<param>`; for K elements of every parameter the forward program is run
with the element moved by +h and -h, and (L+ - L-) / 2h must match. Running
the real forward program makes this work for any function, so each op's
gradient rule can be checked on a small function that uses it.
"""

import argparse
import os
import subprocess
import sys
import tempfile

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import reference  # noqa: E402


def run(executable, params, inputs, outputs):
    command = [executable, "--params", params, "--outputs", outputs]
    if inputs:
        command += ["--inputs", inputs]
    done = subprocess.run(command, capture_output=True, text=True)
    if done.returncode != 0:
        raise reference.ReferenceError(
            f"{' '.join(command)} failed: {done.stderr.strip()}")
    return reference.read_safetensors(outputs).tensors


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--forward", required=True)
    parser.add_argument("--gradients", required=True)
    parser.add_argument("--params", required=True)
    parser.add_argument("--inputs")
    parser.add_argument("--index-input", action="append", default=[],
                        metavar="NAME:D0xD1:LIMIT",
                        help="write an i32 input of that shape with values "
                             "in [0, LIMIT) (instead of --inputs)")
    parser.add_argument("--samples", type=int, default=4)
    parser.add_argument("--step", type=float, default=1e-6)
    parser.add_argument("--rtol", type=float, default=1e-6)
    parser.add_argument("--atol", type=float, default=1e-8)
    args = parser.parse_args()

    params = reference.read_safetensors(args.params)
    with tempfile.TemporaryDirectory() as scratch:
        if args.index_input:
            rng = np.random.default_rng(1)
            tensors = {}
            for spec in args.index_input:
                name, shape, limit = spec.split(":")
                dims = [int(d) for d in shape.split("x")]
                tensors[name] = rng.integers(0, int(limit), dims,
                                             dtype=np.int32)
            args.inputs = os.path.join(scratch, "inputs.safetensors")
            reference.write_safetensors(args.inputs, tensors)
        out = os.path.join(scratch, "out.safetensors")
        moved = os.path.join(scratch, "moved.safetensors")
        analytic = run(args.gradients, args.params, args.inputs, out)
        forward_loss = float(run(args.forward, args.params, args.inputs,
                                 out)["output0"])
        if abs(float(analytic["loss"]) - forward_loss) > 1e-12 * max(
                1.0, abs(forward_loss)):
            print(f"loss: gradient program {float(analytic['loss'])!r}, "
                  f"forward program {forward_loss!r}")
            return 1

        def loss_with(name, index, value):
            tensors = {key: (params.dtypes[key], array.copy())
                       for key, array in params.tensors.items()}
            tensors[name][1].flat[index] = value
            reference.write_safetensors(moved, tensors)
            return float(run(args.forward, moved, args.inputs,
                             out)["output0"])

        rng = np.random.default_rng(0)
        checked = failed = 0
        for name, array in params.tensors.items():
            grad = analytic.get("grad." + name)
            if grad is None or grad.shape != array.shape:
                print(f"error: no gradient of the right shape for '{name}'")
                return 1
            picks = {int(np.argmax(np.abs(grad)))}
            picks.update(int(i) for i in rng.choice(
                array.size, min(args.samples, array.size), replace=False))
            worst = 0.0
            for index in sorted(picks):
                value = float(array.flat[index])
                h = args.step * max(1.0, abs(value))
                numeric = (loss_with(name, index, value + h) -
                           loss_with(name, index, value - h)) / (2 * h)
                got = float(grad.flat[index])
                error = abs(got - numeric)
                worst = max(worst, error)
                checked += 1
                if error > args.atol + args.rtol * max(abs(got), abs(numeric)):
                    failed += 1
                    print(f"FAIL grad.{name}[{index}]: analytic {got!r}, "
                          f"numeric {numeric!r}")
            print(f"{name} {list(array.shape)}: {len(picks)} checked, "
                  f"max abs err {worst:.3e}")
    print(f"opgradcheck: {checked} elements checked, {failed} failed")
    return 1 if failed else 0


if __name__ == "__main__":
    try:
        sys.exit(main())
    except reference.ReferenceError as error:
        print(f"error: {error}", file=sys.stderr)
        sys.exit(1)
