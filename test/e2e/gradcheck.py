#!/usr/bin/env python3
"""Checks the gradients of a compiled training step against finite differences.

A training-step program writes the scalar `loss` and, for every parameter P,
the gradient `grad.P` (same shape and dtype as P). This script checks them
against the NumPy reference models of reference.py:

  * the outputs hold exactly `loss` and one `grad.P` per parameter, each of
    the parameter's shape and dtype;
  * `loss` equals the reference loss to rtol * max(1, |reference|);
  * for every parameter, a few elements of `grad.P` (always the one of
    largest magnitude, which also catches NaNs and infinities, plus random
    ones) equal the central difference

        (L(p + h) - L(p - h)) / (2h),   h = step * max(1, |p|)

    of the reference loss L, to |g - fd| <= atol + rtol * max(|g|, |fd|).

The differences are taken in float64, independently of the program's own
precision: their truncation error is O(h^2) and their rounding error
O(1e-16 * |L| / h). The default step, 3e-6, is near the float64 optimum
(about 1e-16^(1/3)); on the test models it keeps the difference within a
few percent of the default tolerance, tight enough for an f64 program, so
a failure points at the program rather than at the check. Only the
perturbed element changes between the two evaluations, so each checked
element costs two forward passes.

The models are smooth except at ReLU kinks (mlp). When a kink falls inside
the stencil the central difference averages the two one-sided slopes; an
element that fails for that reason alone is accepted if it matches the
second-order one-sided difference of either side (reported as `at a kink`).

  gradcheck.py --model {gpt,llama,mlp} --params P --inputs I --outputs O
               [--heads N] [--eps E] [--rope-base B] [--samples K]
               [--seed S] [--step H] [--rtol R] [--atol A]

Exits 0 when everything matches, 1 on a mismatch or a malformed file.
"""

import argparse
import os
import sys
from dataclasses import dataclass

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import reference  # noqa: E402
from reference import ReferenceError  # noqa: E402
# After reference.py, which says how to get NumPy when it is missing.
import numpy as np  # noqa: E402

DEFAULT_SAMPLES = 6
DEFAULT_STEP = 3e-6
DEFAULT_RTOL = 1e-5
DEFAULT_ATOL = 1e-8


# ===----------------------------------------------------------------------=== #
# Files
# ===----------------------------------------------------------------------=== #

def describe(dtype, shape):
    return f"{dtype} {reference._format_shape(shape)}"


def parameter_order(args, params, inputs):
    """The model's parameter names, in signature order, after checking that
    the parameter and input files fit the model."""
    config = reference.infer_config(args.model, params.tensors,
                                    inputs.tensors, args.heads)
    reference.check_params(args.model, config, params.tensors)
    reference.check_inputs(args.model, config, inputs.tensors)
    return list(reference.PARAM_SHAPES[args.model](config))


def read_loss(path, outputs):
    if "loss" not in outputs.tensors:
        raise ReferenceError(f"'{path}': missing tensor 'loss'")
    dtype, value = outputs.dtypes["loss"], outputs.tensors["loss"]
    if dtype not in ("F32", "F64") or value.shape != ():
        raise ReferenceError(f"'{path}': tensor 'loss' is "
                             f"{describe(dtype, value.shape)}, expected a "
                             "scalar F32 or F64")
    return float(value)


def read_gradients(path, outputs, params, names):
    """grad.P for every parameter P, as float64, checked against P."""
    grads = {}
    for name in names:
        key = "grad." + name
        want = describe(params.dtypes[name], params.tensors[name].shape)
        if key not in outputs.tensors:
            raise ReferenceError(f"'{path}': missing tensor '{key}' (expected "
                                 f"{want})")
        got = describe(outputs.dtypes[key], outputs.tensors[key].shape)
        if got != want:
            raise ReferenceError(f"'{path}': tensor '{key}' is {got}, "
                                 f"expected {want} like parameter '{name}'")
        grads[name] = outputs.tensors[key].astype(np.float64)
    return grads


def check_no_extras(path, outputs, names):
    expected = {"loss"} | {"grad." + name for name in names}
    extras = [key for key in outputs.tensors if key not in expected]
    if extras:
        raise ReferenceError(f"'{path}': unexpected tensors "
                             f"{', '.join(repr(k) for k in extras)} (expected "
                             "only 'loss' and 'grad.<parameter>')")


# ===----------------------------------------------------------------------=== #
# Finite differences
# ===----------------------------------------------------------------------=== #

def is_close(analytic, numeric, rtol, atol):
    """Written so that a NaN on either side is a mismatch."""
    return bool(abs(analytic - numeric)
                <= atol + rtol * max(abs(analytic), abs(numeric)))


def errors(analytic, numeric):
    """(absolute, relative) error; relative to the larger magnitude."""
    error = abs(analytic - numeric)
    scale = max(abs(analytic), abs(numeric))
    return error, (error / scale if scale > 0 else error)


class Probe:
    """Evaluates the reference loss with one element of one parameter moved
    to p + k*h, on a copy of that parameter only."""

    def __init__(self, args, params, inputs):
        self.args = args
        self.params = params
        self.inputs = inputs

    def loss(self, params):
        return reference.reference_loss(
            self.args.model, params, self.inputs, self.args.heads,
            self.args.eps, self.args.rope_base)

    def shifted(self, name, index, value):
        moved = self.params[name].copy()
        moved.flat[index] = value
        return self.loss({**self.params, name: moved})

    def step(self, name, index):
        """h, rounded so that p + h is exactly p plus h."""
        value = self.params[name].flat[index]
        nominal = self.args.step * max(1.0, abs(value))
        return value, (value + nominal) - value

    def central(self, name, index):
        value, h = self.step(name, index)
        return ((self.shifted(name, index, value + h)
                 - self.shifted(name, index, value - h)) / (2.0 * h))

    def one_sided(self, name, index, base):
        """Second-order one-sided differences (left, right): each is exact
        for a slope that stays constant on its own side of p."""
        value, h = self.step(name, index)
        at = [self.shifted(name, index, value + k * h) for k in (-2, -1, 1, 2)]
        left = (3.0 * base - 4.0 * at[1] + at[0]) / (2.0 * h)
        right = (-3.0 * base + 4.0 * at[2] - at[3]) / (2.0 * h)
        return left, right


def pick_elements(grad, samples, rng):
    """Flat indices: the largest |gradient| (a NaN counts as largest), then
    random distinct others, up to `samples` in all."""
    size = grad.size
    if size == 0:
        return []
    largest = int(np.argmax(np.abs(grad)))
    drawn = rng.choice(size, size=min(samples, size), replace=False)
    others = [int(i) for i in drawn if i != largest]
    return [largest] + others[:samples - 1]


# ===----------------------------------------------------------------------=== #
# Checking
# ===----------------------------------------------------------------------=== #

@dataclass
class Outcome:
    checked: int = 0
    failed: int = 0
    kinks: int = 0
    max_abs: float = 0.0
    max_rel: float = 0.0


def check_element(probe, name, index, analytic, base, outcome):
    """Returns a failure message, or None."""
    rtol, atol = probe.args.rtol, probe.args.atol
    numeric, note = probe.central(name, index), ""
    if not is_close(analytic, numeric, rtol, atol):
        left, right = probe.one_sided(name, index, base)
        # Only a kink makes the two sides disagree; then either is a valid
        # derivative of the program's choice of branch.
        if not is_close(left, right, rtol, atol):
            note = f"; at a kink, one-sided {left!r} and {right!r}"
            for side in (left, right):
                if is_close(analytic, side, rtol, atol):
                    outcome.kinks += 1
                    numeric = side
                    break
    absolute, relative = errors(analytic, numeric)
    outcome.checked += 1
    # np.maximum, unlike max(), keeps a NaN visible in the summary.
    outcome.max_abs = float(np.maximum(outcome.max_abs, absolute))
    outcome.max_rel = float(np.maximum(outcome.max_rel, relative))
    if is_close(analytic, numeric, rtol, atol):
        return None
    outcome.failed += 1
    position = ", ".join(str(int(i)) for i in
                         np.unravel_index(index, probe.params[name].shape))
    return (f"FAIL grad.{name}[{position}]: analytic {analytic!r}, numeric "
            f"{numeric!r} (abs err {absolute:.3e}, rel err {relative:.3e})"
            f"{note}")


def check_parameter(probe, name, grad, base, rng):
    outcome = Outcome()
    failures = [check_element(probe, name, index, float(grad.flat[index]),
                              base, outcome)
                for index in pick_elements(grad, probe.args.samples, rng)]
    notes = ""
    if outcome.kinks:
        notes += f", {outcome.kinks} at a kink"
    non_finite = int(np.count_nonzero(~np.isfinite(grad)))
    if non_finite:
        notes += f", {non_finite} non-finite in all"
    print(f"{name} {reference._format_shape(grad.shape)}: {outcome.checked} "
          f"checked, max abs err {outcome.max_abs:.3e}, max rel err "
          f"{outcome.max_rel:.3e}{notes}")
    for failure in failures:
        if failure:
            print(failure)
    return outcome


def check_loss(args, program, expected):
    error = abs(program - expected)
    relative = error / max(1.0, abs(expected))
    ok = bool(error <= args.rtol * max(1.0, abs(expected)))
    print(f"loss: program {program!r}, reference {expected!r}, rel err "
          f"{relative:.3e}{'' if ok else ' FAIL'}")
    return ok


def run(args):
    params = reference.read_safetensors(args.params)
    inputs = reference.read_safetensors(args.inputs)
    outputs = reference.read_safetensors(args.outputs)
    names = parameter_order(args, params, inputs)
    program_loss = read_loss(args.outputs, outputs)
    grads = read_gradients(args.outputs, outputs, params, names)
    check_no_extras(args.outputs, outputs, names)

    values = {name: params.tensors[name].astype(np.float64) for name in names}
    probe = Probe(args, values, inputs.tensors)
    base = probe.loss(values)
    loss_ok = check_loss(args, program_loss, base)

    rng = np.random.default_rng(args.seed)
    checked = failed = 0
    for name in names:
        outcome = check_parameter(probe, name, grads[name], base, rng)
        checked += outcome.checked
        failed += outcome.failed
    print(f"gradcheck: {checked} elements checked, {failed} failed"
          + ("" if loss_ok else ", loss differs"))
    return 0 if loss_ok and failed == 0 else 1


# ===----------------------------------------------------------------------=== #
# Command line
# ===----------------------------------------------------------------------=== #

def build_parser():
    parser = argparse.ArgumentParser(
        description="Check a training step's loss and gradients against "
                    "float64 central differences of the NumPy reference.")
    reference._add_model_flags(parser)
    parser.add_argument("--outputs", required=True, metavar="O.safetensors",
                        help="the program's outputs: 'loss' and "
                             "'grad.<parameter>'")
    parser.add_argument("--samples", type=reference._positive,
                        default=DEFAULT_SAMPLES,
                        help="elements checked per parameter (default "
                             f"{DEFAULT_SAMPLES})")
    parser.add_argument("--seed", type=int, default=0,
                        help="chooses the random elements (default 0)")
    parser.add_argument("--step", type=reference._positive_float,
                        default=DEFAULT_STEP,
                        help="h = step * max(1, |p|) (default "
                             f"{DEFAULT_STEP:g})")
    parser.add_argument("--rtol", type=reference._non_negative_float,
                        default=DEFAULT_RTOL,
                        help="relative tolerance of gradients and loss "
                             f"(default {DEFAULT_RTOL:g})")
    parser.add_argument("--atol", type=reference._non_negative_float,
                        default=DEFAULT_ATOL,
                        help="absolute tolerance of gradients (default "
                             f"{DEFAULT_ATOL:g})")
    return parser


def main(argv=None):
    args = build_parser().parse_args(argv)
    try:
        return run(args)
    except ReferenceError as error:
        print(f"error: {error}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
