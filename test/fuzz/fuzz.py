#!/usr/bin/env python3
"""Seeded fuzz smoke test for the Cleave compiler tools.

The script builds small gpt, llama and mlp models with cleave-models, first
checks that every pipeline below compiles each of them unchanged (so the
fuzzer is known to reach deep into the passes), then mutates their textual IR
with a seeded random generator and runs each mutant through one pipeline,
also drawn at random (PIPELINES lists the exact flags):

  verify              cleave-opt F -o /dev/null
  autodiff-optimizer  cleave-autodiff, cleave-optimizer (or with mixed
                      precision and recompute)
  parallelize         autodiff, optimizer, cleave-parallelize (dp, tp, ZeRO,
                      the searched split)
  pipeline-split      autodiff, cleave-assign-stages, cleave-pipeline-split
  auto-parallel       cleave-auto-parallel, then the passes its plan drives
  training            cleave-training-pipeline (the pipeline cleavec runs)
  translate           cleave-training-pipeline | cleave-translate --cleave-to-cpp

Each mutant gets one to three mutations: an integer literal or a tensor
dimension set to an edge value (0, -1, 2^31, 2^63-1, ...), an element type
swapped, a line deleted or duplicated, operands swapped or replaced, a layer
tag, role or initializer changed, a parameter or input renamed, an attribute
dropped, an op renamed to one with the same operands, or the file truncated.
With --mutate-options, some inputs also get an integer in the pipeline's
options changed (mesh sizes, micro-batches, stages).

A mutant may be rejected: exit status 1 with an "error:" diagnostic is the
expected answer to bad IR. A bad outcome is a crash (a signal, an exit status
other than 0 and 1, or LLVM's crash or assertion messages), a run that passes
--timeout, or a failure without any "error:" diagnostic (a silent failure).
Every tool runs under an address-space limit (--memory-limit), so a runaway
allocation ends as a crash rather than taking the machine's memory. Each bad
outcome is saved under WORK/repros/ with the command that reproduces it; the
script then exits 1.

Reproducing a failure: rerun the command it prints (also in the .sh file next
to the saved mutant), e.g.

  cleave-opt WORK/repros/seed1-input137-translate.mlir \\
      '--cleave-training-pipeline=mode=train mesh=dp=2' |
    cleave-translate --cleave-to-cpp -o /dev/null

or regenerate that one mutant and run it alone:

  fuzz.py --seed 1 --only 137 --bin build/bin --work /tmp/fuzz

Each input draws from its own generator, seeded by the seed and its index, so
an input comes out the same whatever the number of inputs or workers.
"""

import argparse
import concurrent.futures
import os
import random
import re
import resource
import shlex
import shutil
import subprocess
import sys
import time

# -- Seed models ----------------------------------------------------------

# Tiny sizes: every pipeline compiles them in tens of milliseconds, so a few
# hundred mutants fit in a CI run. Batch 4 splits into 2 micro-batches and
# over dp=2; hidden 32 with 4 heads (2 key/value heads for llama) splits
# over tp=2.
MODEL_FLAGS = ["--layers", "2", "--hidden", "32", "--heads", "4", "--seq", "8",
               "--batch", "4", "--vocab", "64"]
FAMILIES = {
    "gpt": MODEL_FLAGS,
    "llama": MODEL_FLAGS + ["--kv-heads", "2"],
    "mlp": MODEL_FLAGS,
}
ALL = tuple(FAMILIES)
# The planner and micro-batching need a language model: tokens that a
# [vocab, hidden] table embeds, and a loss over [batch, seq] rows.
LANGUAGE_MODELS = ("gpt", "llama")

# -- Pipelines ------------------------------------------------------------


class Variant:
    """One way to run a pipeline: cleave-opt's flags, whether its output is
    fed to cleave-translate, and the model families it compiles unchanged."""

    def __init__(self, opt_args, translate=False, families=ALL):
        self.opt_args = opt_args
        self.translate = translate
        self.families = families


AUTODIFF_OPTIMIZER = ["--cleave-autodiff", "--cleave-optimizer"]
PIPELINES = {
    "verify": [Variant([])],
    "autodiff-optimizer": [
        Variant(AUTODIFF_OPTIMIZER),
        Variant(["--cleave-mixed-precision=precision=bf16", "--cleave-autodiff",
                 "--cleave-recompute", "--cleave-optimizer=optimizer=sgd clip-norm=1.0"]),
    ],
    "parallelize": [
        Variant(AUTODIFF_OPTIMIZER + ["--cleave-parallelize=mesh=dp=2,tp=2"]),
        Variant(AUTODIFF_OPTIMIZER +
                ["--cleave-parallelize=mesh=dp=2,tp=2 strategy=dp,megatron-sp,zero3"],
                families=LANGUAGE_MODELS),
        Variant(["--cleave-autodiff", "--cleave-parallelize=mesh=tp=2 strategy=search"]),
    ],
    "pipeline-split": [
        Variant(["--cleave-autodiff", "--cleave-assign-stages=stages=2",
                 "--cleave-pipeline-split=micro-batches=2"]),
        Variant(["--cleave-autodiff", "--cleave-assign-stages=stages=2",
                 "--cleave-pipeline-split=schedule=gpipe micro-batches=4"]),
    ],
    "auto-parallel": [
        Variant(["--cleave-auto-parallel=devices=4 cluster=cpu-local"] +
                AUTODIFF_OPTIMIZER + ["--cleave-parallelize"],
                families=LANGUAGE_MODELS),
    ],
    "training": [
        Variant(["--cleave-training-pipeline=mode=train mesh=dp=2,pp=2"]),
        Variant(["--cleave-training-pipeline=mode=train mesh=dp=2,tp=2 "
                 "strategy=zero1,megatron overlap-collectives gemm-epilogues"]),
        Variant(["--cleave-training-pipeline=mode=train mesh=pp=2 micro-batches=2 "
                 "recompute precision=bf16"], families=LANGUAGE_MODELS),
    ],
    "translate": [
        Variant(["--cleave-training-pipeline=mode=train mesh=dp=2"], translate=True),
        Variant(["--cleave-training-pipeline=mode=train mesh=pp=2 micro-batches=2"],
                translate=True, families=LANGUAGE_MODELS),
    ],
}

# -- Mutations ------------------------------------------------------------

# Values that tend to find overflow and off-by-one bugs.
INTERESTING_INTS = [0, 1, -1, 2, 3, 7, 64, 2147483647, 2147483648, -2147483649,
                    4294967296, 9223372036854775807, -9223372036854775808,
                    18446744073709551616]
ELEMENT_TYPES = ["f32", "f16", "bf16", "f64", "i32", "i64", "i1", "i8"]
LAYER_VALUES = ["embed", "head", "block", "0", "1", "2", "7", "-1",
                "2147483648", "9223372036854775807", "bogus"]
ENUM_VALUES = {
    "role": ["forward", "step", "update", "stage_forward", "stage_backward", "bogus"],
    "input_role": ["tokens", "targets", "features", "gradient", "learning_rate",
                   "step_number", "bogus"],
    "init": ["zeros", "ones", "normal, 0.0", "normal, -1.0", "normal, 1.0e+308",
             "normal, 0x7FF8000000000000", "zeros, 2.0", "normal"],
}
# Ops that take the same operands, so renaming one to another keeps the IR
# parseable and lets the verifier and the passes see an unexpected model.
SAME_SHAPE_OPS = [
    ["add", "sub", "mul", "div", "max", "min"],
    ["gelu", "relu", "silu", "exp", "log", "neg", "tanh", "sqrt", "rsqrt"],
    ["layer_norm", "rms_norm"],
    ["reduce_mean", "reduce_sum", "reduce_max"],
]

# An integer literal, not part of a name (%arg3, f32), a float
# (2.000000e-02) or a shape (4x8).
INT_RE = re.compile(r"(?<![\w.%#$-])-?\d+(?![\w.])")
SHAPE_RE = re.compile(r"tensor<((?:[0-9?]+x)*)([a-z]+[0-9]+)>")
SSA_RE = re.compile(r"%[\w]+")
OPERANDS_RE = re.compile(r"= cleave\.\w+ (%\w+(?:, %\w+)+)")
ENUM_RE = re.compile(r"#cleave\.(layer|role|input_role|init)<([^<>]*)>")
NAME_RE = re.compile(r"cleave\.(param|input) = \"([^\"]*)\"")
ATTR_DICT_RE = re.compile(r"\{([^{}]*)\}")
OP_RE = re.compile(r"(?<= = )cleave\.(\w+)")
KEYWORD_RE = re.compile(r" (causal|transpose_rhs|transpose_lhs)(?= )")


def pick(rng, matches):
    matches = list(matches)
    return rng.choice(matches) if matches else None


def splice(text, start, end, new):
    return text[:start] + new + text[end:]


def line_of(text, offset):
    return text.count("\n", 0, offset) + 1


def mutate_int(text, rng):
    m = pick(rng, INT_RE.finditer(text))
    if not m:
        return None
    old = int(m.group())
    new = rng.choice(INTERESTING_INTS + [old + 1, old - 1, old * 2])
    return (splice(text, m.start(), m.end(), str(new)),
            f"line {line_of(text, m.start())}: integer {old} -> {new}")


def mutate_dim(text, rng):
    m = pick(rng, SHAPE_RE.finditer(text))
    if not m:
        return None
    dims = m.group(1).split("x")[:-1]
    action = rng.choice(["change", "change", "change", "drop", "insert"])
    if action == "drop" and dims:
        del dims[rng.randrange(len(dims))]
    elif action == "insert" or not dims:
        dims.insert(rng.randrange(len(dims) + 1), str(rng.choice([1, 2, 4])))
    else:
        i = rng.randrange(len(dims))
        old = int(dims[i]) if dims[i].isdigit() else 1
        dims[i] = str(rng.choice([0, 1, 3, old + 1, old * 2, max(old // 2, 1), "?",
                                  2147483648, 9223372036854775807]))
    new = "tensor<" + "".join(d + "x" for d in dims) + m.group(2) + ">"
    return retype(text, rng, m, new)


def mutate_element_type(text, rng):
    m = pick(rng, SHAPE_RE.finditer(text))
    if not m:
        return None
    element = rng.choice([t for t in ELEMENT_TYPES if t != m.group(2)])
    return retype(text, rng, m, f"tensor<{m.group(1)}{element}>")


def retype(text, rng, m, new):
    """Replaces the tensor type `m` by `new`: at that one place, which the
    parser mostly catches, or everywhere, which keeps every use agreeing with
    its definition and so reaches the verifiers and the passes."""
    if rng.random() < 0.3:
        return (splice(text, m.start(), m.end(), new),
                f"line {line_of(text, m.start())}: {m.group()} -> {new}")
    return (text.replace(m.group(), new),
            f"every {m.group()} -> {new} ({text.count(m.group())} places)")


def mutate_delete_line(text, rng):
    lines = text.splitlines(keepends=True)
    i = rng.randrange(len(lines))
    del lines[i]
    return "".join(lines), f"line {i + 1}: deleted"


def mutate_duplicate_line(text, rng):
    lines = text.splitlines(keepends=True)
    i = rng.randrange(len(lines))
    lines.insert(i, lines[i])
    return "".join(lines), f"line {i + 1}: duplicated"


def mutate_operands(text, rng):
    """Swaps two operands of an op, or replaces one with another value."""
    m = pick(rng, OPERANDS_RE.finditer(text))
    if not m:
        return None
    operands = m.group(1).split(", ")
    i = rng.randrange(len(operands))
    if rng.random() < 0.5:
        j = (i + 1 + rng.randrange(len(operands) - 1)) % len(operands)
        operands[i], operands[j] = operands[j], operands[i]
        what = f"swapped operands {i} and {j}"
    else:
        old = operands[i]
        operands[i] = rng.choice(sorted(set(SSA_RE.findall(text))))
        what = f"operand {old} -> {operands[i]}"
    return (splice(text, m.start(1), m.end(1), ", ".join(operands)),
            f"line {line_of(text, m.start())}: {what}")


def mutate_enum_attribute(text, rng):
    """Changes a layer tag, a function or input role, or an initializer."""
    m = pick(rng, ENUM_RE.finditer(text))
    if not m:
        return None
    kind = m.group(1)
    values = LAYER_VALUES if kind == "layer" else ENUM_VALUES[kind]
    new = rng.choice(values)
    return (splice(text, m.start(2), m.end(2), new),
            f"line {line_of(text, m.start())}: #cleave.{kind}<{m.group(2)}> -> <{new}>")


def mutate_name(text, rng):
    """Renames a parameter or input: to another's name, empty, or new."""
    matches = list(NAME_RE.finditer(text))
    m = pick(rng, matches)
    if not m:
        return None
    new = rng.choice([pick(rng, matches).group(2), "", "x", m.group(2) + ".extra"])
    return (splice(text, m.start(2), m.end(2), new),
            f"line {line_of(text, m.start())}: {m.group(1)} \"{m.group(2)}\" -> \"{new}\"")


def mutate_drop_attribute(text, rng):
    """Drops one entry of an attribute dictionary: an argument's cleave.param,
    cleave.input, cleave.init, the function's cleave.role, an op's
    cleave.layer."""
    m = pick(rng, ATTR_DICT_RE.finditer(text))
    if not m or not m.group(1).strip():
        return None
    entries = re.split(r", (?=[\w.]+ = )", m.group(1))
    dropped = entries.pop(rng.randrange(len(entries)))
    return (splice(text, m.start(1), m.end(1), ", ".join(entries)),
            f"line {line_of(text, m.start())}: dropped attribute {dropped}")


def mutate_op(text, rng):
    """Renames an op to one with the same operands, or drops a keyword such
    as causal or transpose_rhs."""
    if rng.random() < 0.25:
        m = pick(rng, KEYWORD_RE.finditer(text))
        if m:
            return (splice(text, m.start(), m.end(), ""),
                    f"line {line_of(text, m.start())}: dropped '{m.group(1)}'")
    candidates = [m for m in OP_RE.finditer(text)
                  if any(m.group(1) in group for group in SAME_SHAPE_OPS)]
    m = pick(rng, candidates)
    if not m:
        return None
    group = next(g for g in SAME_SHAPE_OPS if m.group(1) in g)
    new = rng.choice([op for op in group if op != m.group(1)])
    return (splice(text, m.start(1), m.end(1), new),
            f"line {line_of(text, m.start())}: cleave.{m.group(1)} -> cleave.{new}")


def mutate_truncate(text, rng):
    cut = rng.randrange(len(text))
    return text[:cut], f"truncated at byte {cut} (line {line_of(text, cut)})"


# Weights favour the mutations that keep the IR parseable, so that many
# mutants (about a third) get past the parser and into the passes.
MUTATIONS = [
    (mutate_int, 3), (mutate_dim, 3), (mutate_element_type, 2),
    (mutate_delete_line, 1), (mutate_duplicate_line, 1), (mutate_operands, 1),
    (mutate_enum_attribute, 4), (mutate_name, 2), (mutate_drop_attribute, 3),
    (mutate_op, 3), (mutate_truncate, 1),
]


def mutate_options(variant, rng):
    """Changes one integer in the pipeline's options (a mesh size, a count
    of stages or micro-batches); None if they have none."""
    places = [(i, m) for i, arg in enumerate(variant.opt_args)
              for m in INT_RE.finditer(arg)]
    if not places:
        return None
    i, m = rng.choice(places)
    new = rng.choice(INTERESTING_INTS)
    args = list(variant.opt_args)
    args[i] = splice(args[i], m.start(), m.end(), str(new))
    return (Variant(args, variant.translate, variant.families),
            f"option {variant.opt_args[i]!r}: {m.group()} -> {new}")


def mutate(text, rng):
    """Applies one to three mutations; returns the text and what was done."""
    functions, weights = zip(*MUTATIONS)
    count, done = rng.choices([1, 2, 3], [6, 3, 1])[0], []
    while len(done) < count:
        result = rng.choices(functions, weights)[0](text, rng)
        if result:
            text, what = result
            done.append(what)
    return text, done

# -- Running the tools ----------------------------------------------------

CRASH_MARKERS = ["PLEASE submit a bug report", "Stack dump", "LLVM ERROR",
                 "Assertion", "UNREACHABLE", "Segmentation fault"]
# A diagnostic: MLIR's "error:", or LLVM's command-line parser rejecting an
# option's value ("cleave-opt: for the --micro-batches option: ...").
DIAGNOSTIC_RE = re.compile(r"error:|^[\w.-]+: for the -+[\w-]+ option: ", re.M)


class Run:
    """One tool run and how it ended: ok, rejected (exit 1 with an error
    diagnostic), crash, timeout or silent (a failure without a diagnostic)."""

    def __init__(self, argv, stdin, timeout):
        self.argv = argv
        try:
            proc = subprocess.run(argv, input=stdin, capture_output=True,
                                  timeout=timeout)
        except subprocess.TimeoutExpired as e:
            self.returncode, self.stdout = None, b""
            self.stderr = (e.stderr or b"").decode(errors="replace")
            self.outcome = "timeout"
            return
        self.returncode, self.stdout = proc.returncode, proc.stdout
        self.stderr = proc.stderr.decode(errors="replace")
        if (proc.returncode not in (0, 1)
                or any(marker in self.stderr for marker in CRASH_MARKERS)):
            self.outcome = "crash"
        elif proc.returncode == 0:
            self.outcome = "ok"
        elif DIAGNOSTIC_RE.search(self.stderr):
            self.outcome = "rejected"
        else:
            self.outcome = "silent"


BAD_OUTCOMES = ("crash", "timeout", "silent")


class Tools:
    """The paths of the tools, from --bin or PATH."""

    def __init__(self, bin_dir):
        def find(name):
            path = os.path.join(bin_dir, name) if bin_dir else shutil.which(name)
            if not path or not os.access(path, os.X_OK):
                sys.exit(f"fuzz: error: cannot find {name}"
                         + (f" in {bin_dir}" if bin_dir else " on PATH (pass --bin)"))
            # Absolute, so that the printed commands run from any directory.
            return os.path.abspath(path)
        self.models = find("cleave-models")
        self.opt = find("cleave-opt")
        self.translate = find("cleave-translate")


def commands(tools, variant, path):
    """The argv of each stage; stage 2, if any, reads stage 1's output."""
    if not variant.translate:
        return [[tools.opt, path] + variant.opt_args + ["-o", "/dev/null"]]
    return [[tools.opt, path] + variant.opt_args,
            [tools.translate, "--cleave-to-cpp", "-o", "/dev/null"]]


def shell_command(argvs):
    return " | ".join(shlex.join(argv) for argv in argvs)


def run_pipeline(argvs, timeout):
    """Runs the stages in order; stops at the first that does not succeed.
    Returns the last run."""
    stdin = None
    for argv in argvs:
        run = Run(argv, stdin, timeout)
        if run.outcome != "ok":
            return run
        stdin = run.stdout
    return run

# -- The fuzzer -----------------------------------------------------------


def build_seeds(tools, work):
    """Writes the unmutated models to WORK/seeds; returns their text."""
    seeds = {}
    for family, flags in FAMILIES.items():
        path = os.path.join(work, "seeds", family + ".mlir")
        argv = [tools.models, family] + flags + ["-o", path]
        if subprocess.run(argv).returncode != 0:
            sys.exit(f"fuzz: error: cannot build the {family} model: {shlex.join(argv)}")
        with open(path) as f:
            seeds[family] = f.read()
    return seeds


def check_seeds(tools, work, pool, timeout):
    """Every variant must compile the unmutated models it claims, or the
    fuzzer would only be testing the parser."""
    jobs = []
    for name, variants in PIPELINES.items():
        for variant in variants:
            for family in variant.families:
                argvs = commands(tools, variant, os.path.join(work, "seeds", family + ".mlir"))
                jobs.append((name, family, argvs, pool.submit(run_pipeline, argvs, timeout)))
    failed = 0
    for name, family, argvs, job in jobs:
        run = job.result()
        if run.outcome != "ok":
            failed += 1
            print(f"fuzz: seed check: the unmutated {family} model does not pass "
                  f"{name} ({run.outcome}, exit status {run.returncode}):\n"
                  f"  {shell_command(argvs)}\n{indent(excerpt(run.stderr))}")
    return failed


STACK_FRAME_RE = re.compile(r"^\s*#\d+ 0x")


def excerpt(text, lines=20, width=240):
    """What to print of a tool's stderr: its start (the diagnostic, or the
    crash message) and, from a stack dump, the innermost frames in Cleave's
    own code rather than those of the signal handler."""
    text = [line[:width] for line in text.rstrip().splitlines()]
    frames = [line for line in text if STACK_FRAME_RE.match(line)]
    if frames:
        own = [line for line in frames if "cleave::" in line] or frames
        text = [line for line in text if not STACK_FRAME_RE.match(line)][:8] + own
    more = len(text) - lines
    return "\n".join(text[:lines] + ([f"[{more} more lines]"] if more > 0 else []))


def indent(text):
    return "\n".join("    " + line for line in text.splitlines())


def make_input(seed, index, seeds, mutate_options_too):
    """The mutant and pipeline of input `index`, from its own generator."""
    rng = random.Random(f"{seed}:{index}")
    family = rng.choice(sorted(seeds))
    name = rng.choice(sorted(n for n, vs in PIPELINES.items()
                             if any(family in v.families for v in vs)))
    variant = rng.choice([v for v in PIPELINES[name] if family in v.families])
    text, mutations = mutate(seeds[family], rng)
    if mutate_options_too and rng.random() < 0.3:
        changed = mutate_options(variant, rng)
        if changed:
            variant, what = changed
            mutations.append(what)
    return family, name, variant, text, mutations


def report(seed, index, family, name, argvs, mutations, run, repro_dir, path):
    """Saves the reproducer and prints how to run it."""
    os.makedirs(repro_dir, exist_ok=True)
    stem = os.path.join(repro_dir, f"seed{seed}-input{index}-{name}")
    shutil.copyfile(path, stem + ".mlir")
    argvs = [[stem + ".mlir" if arg == path else arg for arg in argv] for argv in argvs]
    with open(stem + ".sh", "w") as f:
        f.write(f"# {run.outcome}: seed {seed}, input {index}, {family}\n"
                f"# mutations: {'; '.join(mutations)}\n{shell_command(argvs)}\n")
    status = "timed out" if run.returncode is None else f"exit status {run.returncode}"
    print(f"fuzz: {run.outcome.upper()} ({status}) in {name}: seed {seed}, "
          f"input {index} ({family})\n"
          f"  mutations: {'; '.join(mutations)}\n"
          f"  failing tool: {os.path.basename(run.argv[0])}\n"
          f"  reproduce: {shell_command(argvs)}\n"
          f"  stderr:\n{indent(excerpt(run.stderr) or '(empty)')}", flush=True)


class Fuzzer:
    """Runs the inputs on the pool and counts their outcomes."""

    def __init__(self, args, tools, seeds, pool):
        self.args, self.tools, self.seeds, self.pool = args, tools, seeds, pool
        self.repro_dir = os.path.join(args.work, "repros")
        self.counts = {outcome: 0 for outcome in ("ok", "rejected") + BAD_OUTCOMES}
        self.per_pipeline = {name: 0 for name in PIPELINES}
        self.pending = {}

    def run(self, indices, deadline):
        """Runs the inputs in order until the deadline; returns how many ran.
        Mutants are made here and run by the pool; at most two per worker
        wait, so the deadline stops new work promptly."""
        ran = 0
        for index in indices:
            if time.monotonic() > deadline:
                break
            self.submit(index)
            ran += 1
            while len(self.pending) >= 2 * self.args.jobs:
                done, _ = concurrent.futures.wait(
                    self.pending, return_when=concurrent.futures.FIRST_COMPLETED)
                for job in done:
                    self.finish(job)
        for job in list(self.pending):
            self.finish(job)
        return ran

    def submit(self, index):
        family, name, variant, text, mutations = make_input(
            self.args.seed, index, self.seeds, self.args.mutate_options)
        path = os.path.join(self.args.work, "inputs", f"input{index}.mlir")
        with open(path, "w") as f:
            f.write(text)
        argvs = commands(self.tools, variant, path)
        job = self.pool.submit(run_pipeline, argvs, self.args.timeout)
        self.pending[job] = (index, family, name, argvs, mutations, path)
        self.per_pipeline[name] += 1

    def finish(self, job):
        index, family, name, argvs, mutations, path = self.pending.pop(job)
        run = job.result()
        self.counts[run.outcome] += 1
        if run.outcome in BAD_OUTCOMES:
            report(self.args.seed, index, family, name, argvs, mutations, run,
                   self.repro_dir, path)
        os.remove(path)


def limit_memory(mib):
    """Caps the address space of this process, which every tool inherits: a
    mutant that makes a tool allocate without bound then fails (as a crash)
    instead of taking the machine's memory."""
    hard = resource.getrlimit(resource.RLIMIT_AS)[1]
    limit = mib << 20
    if hard != resource.RLIM_INFINITY:
        limit = min(limit, hard)
    resource.setrlimit(resource.RLIMIT_AS, (limit, hard))


def parse_args():
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--inputs", type=int, default=300, help="mutants to run")
    parser.add_argument("--bin", help="directory of the Cleave tools (default: PATH)")
    parser.add_argument("--work", required=True, help="scratch directory")
    parser.add_argument("--timeout", type=float, default=20, help="seconds per tool run")
    parser.add_argument("--budget", type=float, default=90,
                        help="seconds after which no new input starts")
    parser.add_argument("--jobs", type=int, default=2, help="inputs run at once")
    parser.add_argument("--only", type=int, metavar="INDEX",
                        help="run input INDEX alone (to reproduce it)")
    parser.add_argument("--mutate-options", action="store_true",
                        help="also change an integer in some pipelines' options")
    parser.add_argument("--memory-limit", type=int, default=4096, metavar="MIB",
                        help="address space of each tool run (0: no limit)")
    return parser.parse_args()


def main():
    args = parse_args()
    args.work = os.path.abspath(args.work)
    start = time.monotonic()
    tools = Tools(args.bin)
    if args.memory_limit:
        limit_memory(args.memory_limit)
    # Only the script's own folders are cleared: --work may hold other files.
    for sub in ("seeds", "inputs", "repros"):
        shutil.rmtree(os.path.join(args.work, sub), ignore_errors=True)
    for sub in ("seeds", "inputs"):
        os.makedirs(os.path.join(args.work, sub))
    seeds = build_seeds(tools, args.work)
    indices = [args.only] if args.only is not None else range(args.inputs)

    # Threads, not processes: each worker only waits for a tool's process.
    with concurrent.futures.ThreadPoolExecutor(args.jobs) as pool:
        if check_seeds(tools, args.work, pool, args.timeout):
            print("fuzz: error: the unmutated models must pass every pipeline")
            return 1
        fuzzer = Fuzzer(args, tools, seeds, pool)
        ran = fuzzer.run(indices, start + args.budget)

    counts = fuzzer.counts
    stopped = ""
    if ran < len(indices):
        stopped = f"; budget of {args.budget:g} s spent, {len(indices) - ran} not run"
    print(f"fuzz: {ran} inputs (seed {args.seed}{stopped}): {counts['crash']} crashes, "
          f"{counts['timeout']} timeouts, {counts['silent']} silent failures; "
          f"outcomes: ok {counts['ok']}, rejected {counts['rejected']}; "
          f"{time.monotonic() - start:.1f} s")
    print("fuzz: pipelines: " + ", ".join(f"{name} {count}"
                                          for name, count in fuzzer.per_pipeline.items()))
    bad = sum(counts[outcome] for outcome in BAD_OUTCOMES)
    if bad:
        print(f"fuzz: {bad} bad outcomes; reproducers in {fuzzer.repro_dir}")
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
