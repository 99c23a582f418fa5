"""Lists the collectives of a partitioned program, one line each in program
order (or, with --count, each distinct one once with how many there are),
so that tests can pin exactly which collectives a strategy produces."""

import argparse
import collections
import re
import sys

COLLECTIVE = re.compile(
    r"cleave\.(all_reduce|all_gather|reduce_scatter|all_to_all|local_slice) "
    r"%\S+ on @\w+ (\[[^\]]*\])([^{:]*)(\{[^}]*\})?\s*:\s*(.*)$")
LAYER = re.compile(r"#cleave\.layer<([^>]*)>")


def main():
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--count", action="store_true",
                        help="count each distinct collective instead")
    args = parser.parse_args()
    lines = []
    for line in sys.stdin:
        match = COLLECTIVE.search(line)
        if not match:
            continue
        op, axes, rest, attrs, types = match.groups()
        layer = LAYER.search(attrs or "")
        result_type = types.split("->")[-1].strip()
        words = [op, axes] + rest.split() + [
            "layer=" + (layer.group(1) if layer else "-"), result_type]
        lines.append(" ".join(words))
    if args.count:
        for text, count in sorted(collections.Counter(lines).items()):
            print(count, text)
    else:
        print("\n".join(lines))
    print("end")


if __name__ == "__main__":
    main()
