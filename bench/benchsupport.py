"""What the benchmark scripts share: the build's tools, a GPT from
cleave-models, a token file and the step times of a training log."""

import os
import re
import statistics
import subprocess

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
BUILD = os.environ.get("CLEAVE_BUILD_DIR", os.path.join(ROOT, "build"))


def tool(name):
    return os.path.join(BUILD, "bin", name)


def add_gpt_arguments(parser, layers, hidden, heads, seq, vocab, batch, steps):
    """--layers, --hidden, --heads, --seq, --vocab, --batch, --steps."""
    for name, default in [("layers", layers), ("hidden", hidden),
                          ("heads", heads), ("seq", seq), ("vocab", vocab),
                          ("batch", batch), ("steps", steps)]:
        parser.add_argument("--" + name, type=int, default=default)


def make_gpt(path, args):
    """Writes the GPT `args` describes (see add_gpt_arguments) to `path`."""
    subprocess.run([tool("cleave-models"), "gpt", "--layers", str(args.layers),
                    "--hidden", str(args.hidden), "--heads", str(args.heads),
                    "--seq", str(args.seq), "--vocab", str(args.vocab),
                    "--batch", str(args.batch), "-o", path], check=True)


def prepare_text(path):
    """Byte tokens of a text every Debian machine has."""
    subprocess.run([tool("cleavec"), "prepare-text",
                    "/usr/share/common-licenses/GPL-3", "-o", path],
                   check=True, capture_output=True)


def median_step_ms(log):
    """The median step_time of steps 2 and later in a training log."""
    times = [float(t) for t in re.findall(r"step_time ([0-9.]+) ms", log)]
    return statistics.median(times[1:])
