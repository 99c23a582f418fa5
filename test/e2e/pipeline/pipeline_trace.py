"""Reads the Chrome traces a pipeline run writes with CLEAVE_TRACE=DIR
(DIR/trace-rank<R>.json) and measures its bubble.

Each rank records, per step, a "step" span, one "compute" span per forward
or backward pass (named as `cleavec schedule` prints them: F3, B3, or F3.1
with the chunk) plus one for the update, and "communication" spans inside
them for each send and receive. Times are microseconds on the machine's
monotonic clock, which all ranks share.
"""

import glob
import json
import os
import re

ACTION = re.compile(r"^[FB]\d+(\.\d+)?$")


def read_ranks(directory):
    """{rank: [events sorted by start]}"""
    ranks = {}
    for path in glob.glob(os.path.join(directory, "trace-rank*.json")):
        rank = int(re.search(r"trace-rank(\d+)\.json$", path).group(1))
        with open(path) as f:
            events = [e for e in json.load(f)["traceEvents"] if e.get("ph") == "X"]
        ranks[rank] = sorted(events, key=lambda e: e["ts"])
    return ranks


def split_steps(events):
    """Per step, the events inside its "step" span."""
    steps = [e for e in events if e["cat"] == "step"]
    return [[e for e in events
             if e["cat"] != "step" and s["ts"] <= e["ts"] <= s["ts"] + s["dur"]]
            for s in steps]


def actions(events):
    return [e for e in events if e["cat"] == "compute" and ACTION.match(e["name"])]


def waits(events, action):
    """Time `action` spent waiting for a peer's data."""
    end = action["ts"] + action["dur"]
    return sum(e["dur"] for e in events
               if e["cat"] == "communication" and e["name"] == "recv"
               and action["ts"] <= e["ts"] <= end)


def bubble(ranks, step):
    """Idle share of the ranks' time over step `step`'s schedule: from the
    first pass to start to the last to end, a rank is busy while it runs a
    pass and not waiting for a receive."""
    busy, start, end = 0.0, None, None
    for events in ranks.values():
        inside = split_steps(events)[step]
        for action in actions(inside):
            busy += action["dur"] - waits(inside, action)
            start = action["ts"] if start is None else min(start, action["ts"])
            finish = action["ts"] + action["dur"]
            end = finish if end is None else max(end, finish)
    return 1.0 - busy / (len(ranks) * (end - start))
