"""Checks a 16-bit training run against the f32 run of the same model: the
losses agree within TOLERANCE (relative) at every step, and the checkpoint
holds f32 master weights.

  compare_precision.py F32_LOG LOW_LOG LOW_CHECKPOINT TOLERANCE
"""

import os
import sys

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)),
                                ".."))
import reference  # noqa: E402
from compare_runs import losses  # noqa: E402


def main(f32_log, low_log, checkpoint, tolerance):
    full, low = losses(f32_log), losses(low_log)
    if not full or sorted(full) != sorted(low):
        print("the logs cover different steps")
        return 1
    worst = max(abs(full[s] - low[s]) / abs(full[s]) for s in full)
    if worst > float(tolerance):
        print(f"the losses differ by up to {worst:.2e}, more than {tolerance}")
        return 1
    dtypes = set(reference.read_tensors(checkpoint).dtypes.values())
    if dtypes != {"F32"}:
        print(f"the checkpoint holds {sorted(dtypes)}, not f32 master weights")
        return 1
    print(f"{len(full)} steps within {worst:.1e} of f32; master weights f32")
    return 0


if __name__ == "__main__":
    sys.exit(main(*sys.argv[1:5]))
