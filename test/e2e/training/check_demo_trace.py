"""Checks the Chrome trace the demo leaves: one step, with the ops it ran.

  check_demo_trace.py TRACE.json
"""

import json
import sys


def main():
    events = json.load(open(sys.argv[1]))["traceEvents"]
    steps = [e for e in events if e.get("cat") == "step"]
    if len(steps) != 1:
        print(f"{len(steps)} steps traced, expected the last one")
        return 1
    step = steps[0]
    inside = [e for e in events if e.get("cat") == "op" and
              step["ts"] <= e["ts"] and e["ts"] + e["dur"] <= step["ts"] + step["dur"] + 1]
    if not inside or any(e["dur"] < 0 for e in inside):
        print("no op traced inside the step")
        return 1
    names = {e["name"].split()[0] for e in inside}
    print(f"trace: 1 step, {len(inside)} ops inside it, "
          f"{'with' if 'cleave.matmul' in names else 'without'} matmuls")
    return 0


if __name__ == "__main__":
    sys.exit(main())
