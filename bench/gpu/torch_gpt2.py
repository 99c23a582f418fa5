#!/usr/bin/env python3
"""Cleave's GPT training step in PyTorch (eager, f32): a baseline that runs
the same model from the same initial parameters on the same batches as a
program built by `cleavec train`, to compare losses and tokens/s.

    torch_gpt2.py --layers 2 --hidden 64 --heads 4 --seq 32 --vocab 256 \\
        --batch 4 --init INIT --data text.bin --steps 10 --lr 1e-3 \\
        [--device cuda|cpu] [--compare CLEAVE_LOG] [--warmup-steps 2]

INIT is a Cleave checkpoint directory (checkpoint.json and step-N/*.
safetensors) or a single safetensors file; only the parameters are read.
The program `cleavec train` builds writes Cleave's initial parameters as the
checkpoint of step 0 when run with --steps 0:

    OUT/gpt --data text.bin --steps 0 --seed S --init-seed S --out INIT

Pass the same --seed here and to the Cleave run being compared: it picks the
batches. The optimizer flags are cleavec train's, except that its --warmup is
--lr-warmup here (--warmup-steps is the number of steps left out of the mean
tokens/s).

What it reproduces:
- the model of `cleave-models gpt` (lib/Models/GptModel.cpp): token and
  learned position embeddings; pre-LN blocks (layer norm, eps 1e-5; q, k, v
  and out projections with biases; causal attention scaled by
  1/sqrt(head_dim); residual; layer norm; fc, GELU with the tanh
  approximation, proj; residual); a final layer norm; the LM head tied to
  embed.tokens; mean token cross-entropy. Weights are stored [in, out].
- the batches of runtime/src/DataLoader.cpp: row r of step k (counted from
  1) starts at a SplitMix64 hash of (seed, k, r) scaled onto the file by a
  64x64 -> 128-bit multiply-high; targets are the tokens shifted by one.
- the update of cleave-optimizer (lib/Dialect/Cleave/Transforms/
  Optimizer.cpp) as cleavec train configures it: the global gradient norm
  before clipping; with --clip-norm C (default 0: off) every gradient times
  min(1, C / (norm + 1e-6)); AdamW (beta1 0.9, beta2 0.999, epsilon 1e-8)
  with bias corrections 1 - exp(t log beta) computed in f64, direction
  m_hat / (sqrt(v_hat) + eps), plus weight_decay * p (default 0) for tensors
  of rank >= 2 (both embeddings and every weight matrix; not biases or norm
  parameters), then p -= lr * direction.
  The constants and the step's lr are rounded to f32 as Cleave's program
  holds them, and the operations follow its order (torch.optim.AdamW computes
  the same function with different roundings).
- the learning-rate schedule of runtime/src/Schedule.cpp (constant, or
  linear warmup and cosine decay).

Each step prints `torch step N loss L tokens/s T step_time_ms M`; the step
time covers drawing the batch, copying it to the device, the forward and
backward passes and the update, as Cleave's does. With --compare, the losses
and gradient norms of a Cleave training log are printed side by side.
"""

import argparse
import contextlib
import json
import math
import os
import re
import statistics
import sys
import time

import numpy as np
import torch
import torch.nn.functional as F

NORM_EPSILON = 1e-5  # ModelConfig::normEpsilon
ADAM_EPSILON = 1e-8  # cleave-optimizer's epsilon (not a cleavec flag)
CLIP_EPSILON = 1e-6
OPTIMIZER_STATE_PREFIXES = ("adam_m.", "adam_v.", "momentum.")
SAFETENSORS_MAX_HEADER = 100 << 20


class RunError(Exception):
    """Bad input or a failed check: one line on stderr, exit status 1."""


def f32(value):
    """`value` rounded to the nearest float32, as a Python float."""
    return float(np.float32(value))


# ---------------------------------------------------------------------------
# Batches (runtime/src/DataLoader.cpp, runtime/src/Support.h)
# ---------------------------------------------------------------------------

MASK64 = (1 << 64) - 1
DATA_STREAM = 0x6461746173747265  # "datastre"


def mix_bits(x):
    """SplitMix64's finalizer with 64-bit wrapping arithmetic."""
    x = ((x ^ (x >> 30)) * 0xBF58476D1CE4E5B9) & MASK64
    x = ((x ^ (x >> 27)) * 0x94D049BB133111EB) & MASK64
    return x ^ (x >> 31)


def batch_offset(token_count, seed, step, seq, row):
    """Where row `row` of step `step` starts: getBatchOffset."""
    bits = mix_bits((mix_bits((mix_bits(seed ^ DATA_STREAM) + step) & MASK64)
                     + row) & MASK64)
    # The high 64 bits of the 128-bit product map the hash onto the
    # token_count - seq possible starts.
    return (bits * (token_count - seq)) >> 64


def read_tokens(path, token_bytes, seq, vocab):
    try:
        size = os.path.getsize(path)
    except OSError as error:
        raise RunError(f"cannot read token file '{path}': {error.strerror}")
    # llm.c's header (what cleavec prepare-text writes): 256 int32, the
    # magic and version giving the width, then the count.
    offset = 0
    magic = int(np.fromfile(path, dtype="<i4", count=1)[0]) if size >= 4 else 0
    versions = {20240520: (1, 2), 20240801: (7, 4)}
    if magic in versions:
        if size < 1024:
            raise RunError(f"token file '{path}' ends inside its header")
        version, count = (int(v) for v in
                          np.fromfile(path, dtype="<i4", count=3)[1:])
        expected, width = versions[magic]
        if version != expected:
            raise RunError(f"token file '{path}' has version {version} of "
                           f"the header with magic {magic}")
        if token_bytes is not None and token_bytes != width:
            raise RunError(f"--token-bytes {token_bytes} was given, but "
                           f"token file '{path}' has a header for "
                           f"{width}-byte tokens")
        token_bytes, offset = width, 1024
        if size - offset != count * token_bytes:
            raise RunError(f"token file '{path}': its header counts "
                           f"{count} tokens, but {size - offset} bytes "
                           "follow it")
    elif token_bytes is None:
        raise RunError(f"token file '{path}' has no header: give its token "
                       "width with --token-bytes 2 or 4")
    if size - offset == 0 or (size - offset) % token_bytes:
        raise RunError(f"token file '{path}' has {size} bytes, not a "
                       f"non-zero multiple of the {token_bytes}-byte token "
                       "width")
    tokens = np.fromfile(path, dtype="<u2" if token_bytes == 2 else "<u4",
                         offset=offset)
    if len(tokens) < seq + 1:
        raise RunError(f"token file '{path}' has {len(tokens)} tokens; "
                       f"sequence length {seq} needs at least {seq + 1} "
                       "(the targets are shifted by one)")
    largest = int(tokens.max())
    if largest >= vocab:
        raise RunError(f"token file '{path}': token {largest} at position "
                       f"{int(np.argmax(tokens >= vocab))} is outside the "
                       f"model's vocabulary of {vocab}")
    return tokens.astype(np.int64)


def get_batch(tokens, seed, step, batch, seq):
    """The (tokens, targets) of step `step`, each [batch, seq]: getBatch."""
    if step < 1:
        raise RunError(f"steps are counted from 1, got step {step}")
    starts = np.array([batch_offset(len(tokens), seed, step, seq, row)
                       for row in range(batch)], dtype=np.int64)
    rows = tokens[starts[:, None] + np.arange(seq + 1)]
    return (np.ascontiguousarray(rows[:, :-1]),
            np.ascontiguousarray(rows[:, 1:]))


# ---------------------------------------------------------------------------
# Initial parameters (safetensors files and Cleave checkpoint directories)
# ---------------------------------------------------------------------------

def read_safetensors_header(path):
    """(header entries, offset of the data section) of a
    safetensors file: an 8-byte little-endian header length, a JSON header,
    then the raw tensor data."""
    try:
        with open(path, "rb") as file:
            prefix = file.read(8)
            if len(prefix) < 8:
                raise RunError(f"'{path}': {len(prefix)} bytes is too short "
                               "for a safetensors file")
            header_size = int.from_bytes(prefix, "little")
            if header_size > SAFETENSORS_MAX_HEADER:
                raise RunError(f"'{path}': header length {header_size} is "
                               "not plausible")
            text = file.read(header_size)
    except OSError as error:
        raise RunError(f"cannot read '{path}': {error.strerror}")
    if len(text) < header_size:
        raise RunError(f"'{path}' is too short: its header needs "
                       f"{header_size} bytes after the length, the file has "
                       f"{len(text)}")
    try:
        header = json.loads(text.decode("utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as error:
        raise RunError(f"'{path}': header is not valid JSON: {error}")
    if not isinstance(header, dict):
        raise RunError(f"'{path}': header is not a JSON object")
    header.pop("__metadata__", None)
    return header, 8 + header_size


def read_safetensors_tensor(path, header, data_start, name):
    """Tensor `name` of a safetensors file as a float32 array."""
    entry = header.get(name)
    if not isinstance(entry, dict):
        raise RunError(f"'{path}' has no tensor '{name}'")
    if entry.get("dtype") != "F32":
        raise RunError(f"'{path}': tensor '{name}' is "
                       f"{entry.get('dtype')}, expected F32")
    shape = entry.get("shape")
    offsets = entry.get("data_offsets")
    if (not isinstance(shape, list) or not isinstance(offsets, list)
            or len(offsets) != 2):
        raise RunError(f"'{path}': tensor '{name}' has a malformed entry")
    begin, end = offsets
    if end - begin != 4 * math.prod(shape):
        raise RunError(f"'{path}': tensor '{name}' of shape {shape} spans "
                       f"{end - begin} bytes")
    with open(path, "rb") as file:
        file.seek(data_start + begin)
        data = file.read(end - begin)
    if len(data) < end - begin:
        raise RunError(f"'{path}' is too short: tensor '{name}' ends at "
                       f"byte {data_start + end}, the file has "
                       f"{os.path.getsize(path)}")
    return np.frombuffer(bytearray(data), dtype="<f4").reshape(shape)


def read_checkpoint_tensor(directory, index, name, cache):
    """Tensor `name` of a checkpoint, assembled from its pieces."""
    entry = index["tensors"].get(name)
    if entry is None:
        raise RunError(f"checkpoint '{directory}' has no tensor '{name}'")
    if entry.get("dtype") != "F32":
        raise RunError(f"checkpoint '{directory}': tensor '{name}' is "
                       f"{entry.get('dtype')}, expected F32")
    shape = tuple(entry["shape"])
    whole = np.zeros(shape, dtype=np.float32)
    covered = 0
    for piece in entry["pieces"]:
        path = os.path.join(directory, piece["file"])
        if path not in cache:
            cache[path] = read_safetensors_header(path)
        block = read_safetensors_tensor(path, *cache[path], name)
        if list(block.shape) != list(piece["shape"]):
            raise RunError(f"'{path}': tensor '{name}' has shape "
                           f"{list(block.shape)}, the index says "
                           f"{piece['shape']}")
        region = tuple(slice(o, o + n)
                       for o, n in zip(piece["offsets"], piece["shape"]))
        whole[region] = block
        covered += block.size
    if covered != whole.size:
        raise RunError(f"checkpoint '{directory}': the pieces of '{name}' "
                       f"cover {covered} of {whole.size} elements")
    return whole


def load_parameters(path, shapes):
    """The parameters named in `shapes` from a checkpoint directory or a
    safetensors file, checked against the model's shapes."""
    if os.path.isdir(path):
        index_path = os.path.join(path, "checkpoint.json")
        try:
            with open(index_path) as file:
                index = json.load(file)
        except (OSError, json.JSONDecodeError) as error:
            raise RunError(f"cannot read '{index_path}': {error}")
        if index.get("format") != "cleave-checkpoint":
            raise RunError(f"'{index_path}' is not a Cleave checkpoint "
                           "index")
        names = set(index["tensors"])
        cache = {}

        def read(name):
            return read_checkpoint_tensor(path, index, name, cache)
    else:
        header, data_start = read_safetensors_header(path)
        names = set(header)

        def read(name):
            return read_safetensors_tensor(path, header, data_start, name)
    unexpected = sorted(name for name in names - set(shapes)
                        if not name.startswith(OPTIMIZER_STATE_PREFIXES))
    if unexpected:
        raise RunError(f"'{path}' has tensors this model does not: "
                       f"{', '.join(unexpected[:5])} (wrong --layers?)")
    params = {}
    for name, shape in shapes.items():
        if name not in names:
            raise RunError(f"'{path}' has no parameter '{name}'")
        value = read(name)
        if tuple(value.shape) != shape:
            raise RunError(f"'{path}': parameter '{name}' has shape "
                           f"{list(value.shape)}, the model needs "
                           f"{list(shape)}")
        params[name] = value
    return params


# ---------------------------------------------------------------------------
# The model (lib/Models/GptModel.cpp)
# ---------------------------------------------------------------------------

def parameter_shapes(c):
    """Name -> shape in the order of the forward function's arguments."""
    h, f = c.hidden, c.ffn
    shapes = {"embed.tokens": (c.vocab, h), "embed.positions": (c.seq, h)}
    linears = [("attn.q", h, h), ("attn.k", h, h), ("attn.v", h, h),
               ("attn.out", h, h)]
    for layer in range(c.layers):
        prefix = f"layers.{layer}."
        shapes[prefix + "ln1.scale"] = (h,)
        shapes[prefix + "ln1.bias"] = (h,)
        for name, fan_in, fan_out in linears:
            shapes[prefix + name + ".weight"] = (fan_in, fan_out)
            shapes[prefix + name + ".bias"] = (fan_out,)
        shapes[prefix + "ln2.scale"] = (h,)
        shapes[prefix + "ln2.bias"] = (h,)
        shapes[prefix + "mlp.fc.weight"] = (h, f)
        shapes[prefix + "mlp.fc.bias"] = (f,)
        shapes[prefix + "mlp.proj.weight"] = (f, h)
        shapes[prefix + "mlp.proj.bias"] = (h,)
    shapes["final_norm.scale"] = (h,)
    shapes["final_norm.bias"] = (h,)
    return shapes


class Gpt:
    def __init__(self, config, params, attention):
        self.c = config
        self.p = params
        self.head_dim = config.hidden // config.heads
        self.scale = 1.0 / math.sqrt(self.head_dim)
        self.attention = attention
        if attention == "math":
            # Query i sees keys j <= i.
            positions = torch.arange(config.seq,
                                     device=params["embed.tokens"].device)
            self.future = positions[None, :] > positions[:, None]

    def linear(self, x, name):
        # Cleave's weights are [in, out]; F.linear takes [out, in].
        return F.linear(x, self.p[name + ".weight"].t(),
                        self.p[name + ".bias"])

    def layer_norm(self, x, name):
        return F.layer_norm(x, (self.c.hidden,), self.p[name + ".scale"],
                            self.p[name + ".bias"], NORM_EPSILON)

    def split_heads(self, x):
        b, s, _ = x.shape
        return x.view(b, s, self.c.heads, self.head_dim).transpose(1, 2)

    def attend(self, q, k, v):
        if self.attention == "sdpa":
            # Its default scale is 1/sqrt(head_dim).
            return F.scaled_dot_product_attention(q, k, v, is_causal=True)
        scores = torch.matmul(q, k.transpose(-2, -1)) * self.scale
        scores = scores.masked_fill(self.future, float("-inf"))
        return torch.matmul(torch.softmax(scores, dim=-1), v)

    def loss(self, tokens, targets):
        c, p = self.c, self.p
        x = F.embedding(tokens, p["embed.tokens"]) + p["embed.positions"]
        for layer in range(c.layers):
            prefix = f"layers.{layer}."
            normed = self.layer_norm(x, prefix + "ln1")
            q, k, v = (self.split_heads(self.linear(normed, prefix + name))
                       for name in ("attn.q", "attn.k", "attn.v"))
            attended = self.attend(q, k, v).transpose(1, 2).reshape(x.shape)
            x = x + self.linear(attended, prefix + "attn.out")
            normed = self.layer_norm(x, prefix + "ln2")
            hidden = F.gelu(self.linear(normed, prefix + "mlp.fc"),
                            approximate="tanh")
            x = x + self.linear(hidden, prefix + "mlp.proj")
        x = self.layer_norm(x, "final_norm")
        logits = torch.matmul(x, p["embed.tokens"].t())
        return F.cross_entropy(logits.view(-1, c.vocab), targets.reshape(-1))


# ---------------------------------------------------------------------------
# The update (lib/Dialect/Cleave/Transforms/Optimizer.cpp)
# ---------------------------------------------------------------------------

def learning_rate(args, step):
    """getLearningRate of runtime/src/Schedule.cpp."""
    step = max(step, 1)
    if step <= args.lr_warmup:
        return args.lr * step / args.lr_warmup
    if args.lr_schedule == "constant":
        return args.lr
    decayed = step - args.lr_warmup
    if decayed >= args.decay_steps:
        return args.min_lr
    progress = decayed / args.decay_steps
    return args.min_lr + (args.lr - args.min_lr) * 0.5 * (
        1.0 + math.cos(math.pi * progress))


def bias_correction(beta, t):
    """1 - beta^t as 1 - exp(t log beta) in f64, then rounded to f32."""
    power = math.exp(t * math.log(beta)) if beta > 0 else 0.0
    return f32(1.0 - power)


class AdamW:
    """cleave-optimizer's AdamW, on lists of tensors (torch._foreach_*)."""

    def __init__(self, params, beta1, beta2, weight_decay, clip_norm):
        self.params = params
        self.m = [torch.zeros_like(p) for p in params]
        self.v = [torch.zeros_like(p) for p in params]
        self.decayed = [i for i, p in enumerate(params) if p.dim() >= 2]
        self.beta1, self.beta2 = beta1, beta2
        self.weight_decay = weight_decay
        self.clip_norm = clip_norm

    @torch.no_grad()
    def step(self, step, lr):
        """Updates the parameters from their .grad; returns the gradient norm
        before clipping (a device tensor)."""
        grads = [p.grad for p in self.params]
        norm = torch.linalg.vector_norm(
            torch.stack(torch._foreach_norm(grads)))
        if self.clip_norm > 0:
            factor = torch.clamp(
                f32(self.clip_norm) / (norm + f32(CLIP_EPSILON)), max=1.0)
            for grad in grads:
                grad.mul_(factor)
        # m = b1 m + (1 - b1) g, v = b2 v + (1 - b2) g^2, constants in f32.
        torch._foreach_mul_(self.m, f32(self.beta1))
        torch._foreach_add_(self.m,
                            torch._foreach_mul(grads, f32(1 - self.beta1)))
        squares = torch._foreach_mul(grads, grads)
        torch._foreach_mul_(squares, f32(1 - self.beta2))
        torch._foreach_mul_(self.v, f32(self.beta2))
        torch._foreach_add_(self.v, squares)
        del squares
        t = f32(step)  # Cleave's step input is f32
        correction1 = bias_correction(self.beta1, t)
        correction2 = bias_correction(self.beta2, t)
        denominator = torch._foreach_div(self.v, correction2)
        torch._foreach_sqrt_(denominator)
        torch._foreach_add_(denominator, f32(ADAM_EPSILON))
        direction = torch._foreach_div(self.m, correction1)
        torch._foreach_div_(direction, denominator)
        del denominator
        if self.weight_decay > 0:
            torch._foreach_add_(
                [direction[i] for i in self.decayed],
                torch._foreach_mul([self.params[i] for i in self.decayed],
                                   f32(self.weight_decay)))
        torch._foreach_mul_(direction, f32(lr))
        torch._foreach_sub_(self.params, direction)
        for p in self.params:
            p.grad = None
        return norm


# ---------------------------------------------------------------------------
# Cleave training logs (runtime/src/Trainer.cpp)
# ---------------------------------------------------------------------------

# step N loss L grad_norm G lr X tokens/s T step_time S ms [comm_bytes B]
LOG_LINE = re.compile(r"(?:^|\s)step (\d+) loss (\S+) grad_norm (\S+) lr \S+ "
                      r"tokens/s (\S+) step_time (\S+) ms")


def read_cleave_log(path):
    """step -> (loss, grad_norm, tokens/s) of a Cleave training log."""
    try:
        with open(path, errors="replace") as file:
            lines = file.readlines()
    except OSError as error:
        raise RunError(f"cannot read Cleave log '{path}': {error.strerror}")
    steps = {}
    for line in lines:
        match = LOG_LINE.search(line)
        if match:
            steps[int(match.group(1))] = tuple(
                float(match.group(i)) for i in (2, 3, 4))
    if not steps:
        raise RunError(f"'{path}' has no 'step N loss L ...' lines of a "
                       "Cleave training log")
    return steps


def compare(cleave, torch_steps, warmup_steps):
    """Prints both runs side by side; returns the largest relative loss
    difference."""
    common = sorted(set(cleave) & set(torch_steps))
    if not common:
        raise RunError("the Cleave log has none of the steps run here")
    missing = sorted(set(torch_steps) - set(cleave))
    if missing:
        print(f"compare: the Cleave log lacks steps {missing}")
    print(f"{'step':>5} {'torch loss':>12} {'cleave loss':>12} "
          f"{'rel diff':>10} {'torch gnorm':>12} {'cleave gnorm':>12}")
    worst, worst_step = 0.0, common[0]
    for step in common:
        loss, norm, _ = torch_steps[step]
        cleave_loss, cleave_norm, _ = cleave[step]
        difference = abs(loss - cleave_loss) / max(abs(cleave_loss), 1e-30)
        if difference > worst:
            worst, worst_step = difference, step
        print(f"{step:>5} {loss:>12.6f} {cleave_loss:>12.6f} "
              f"{difference:>10.2e} {norm:>12.4f} {cleave_norm:>12.4f}")
    print(f"max relative loss difference {worst:.3e} (step {worst_step}; "
          "Cleave prints the loss to 6 decimals)")
    timed = [step for step in common if step > warmup_steps]
    if timed:
        print(f"tokens/s after the warm-up: torch "
              f"{statistics.mean(torch_steps[s][2] for s in timed):.0f}, "
              f"cleave {statistics.mean(cleave[s][2] for s in timed):.0f} "
              f"(steps {timed[0]}-{timed[-1]})")
    return worst


# ---------------------------------------------------------------------------
# Driver
# ---------------------------------------------------------------------------

def parse_args():
    parser = argparse.ArgumentParser(
        description="Cleave's GPT training in PyTorch (eager, f32).")
    model = parser.add_argument_group("model (as given to cleave-models gpt)")
    for name in ("layers", "hidden", "heads", "seq", "vocab", "batch"):
        model.add_argument("--" + name, type=int, required=True)
    model.add_argument("--ffn", type=int, default=0,
                       help="feed-forward width (default 4 * hidden)")
    run = parser.add_argument_group("run")
    run.add_argument("--init", required=True,
                     help="checkpoint directory or safetensors file with the "
                          "initial parameters")
    run.add_argument("--data", required=True,
                     help="token file: llm.c's header, then little-endian "
                     "tokens (or tokens alone, with --token-bytes)")
    run.add_argument("--token-bytes", type=int, choices=(2, 4))
    run.add_argument("--seed", type=int, default=0,
                     help="data seed, as given to cleavec train (0)")
    run.add_argument("--steps", type=int, required=True,
                     help="train steps 1..N")
    run.add_argument("--device", default=None,
                     help="cuda or cpu (default: cuda when available)")
    run.add_argument("--attention", choices=("sdpa", "math"), default=None,
                     help="F.scaled_dot_product_attention (default when this "
                          "PyTorch has it) or explicit matmul/softmax/matmul")
    run.add_argument("--bf16", action="store_true",
                     help="bf16 autocast around the forward and loss (f32 "
                          "parameters and optimizer, as cleavec train "
                          "--precision bf16)")
    run.add_argument("--compile", action="store_true",
                     help="torch.compile the forward and loss")
    run.add_argument("--flops-per-step", type=float, default=None,
                     help="the model FLOPs of one step (3x the forward's "
                          "matmuls, as Megatron-LM counts them), to print MFU")
    run.add_argument("--peak-tflops", type=float, default=989.0,
                     help="the device's dense peak for MFU (989: H100/H200 "
                          "bf16)")
    run.add_argument("--tf32", action="store_true",
                     help="allow TF32 in f32 matmuls (as CLEAVE_TF32=1)")
    run.add_argument("--warmup-steps", type=int, default=2,
                     help="steps left out of the mean tokens/s (2)")
    run.add_argument("--compare", metavar="CLEAVE_LOG",
                     help="a cleavec train log of the same run")
    run.add_argument("--tolerance", type=float, default=None,
                     help="with --compare: fail when the largest relative "
                          "loss difference exceeds this")
    opt = parser.add_argument_group("optimizer (cleavec train's flags)")
    opt.add_argument("--lr", type=float, default=1e-3)
    opt.add_argument("--lr-schedule", choices=("constant", "cosine"),
                     default="constant")
    opt.add_argument("--lr-warmup", type=int, default=0,
                     help="cleavec train --warmup: linear warmup steps")
    opt.add_argument("--decay-steps", type=int, default=0)
    opt.add_argument("--min-lr", type=float, default=0.0)
    opt.add_argument("--beta1", type=float, default=0.9)
    opt.add_argument("--beta2", type=float, default=0.999)
    opt.add_argument("--weight-decay", type=float, default=0.0)
    opt.add_argument("--clip-norm", type=float, default=0.0)
    args = parser.parse_args()

    for name in ("layers", "hidden", "heads", "seq", "vocab", "batch",
                 "steps"):
        if getattr(args, name) < 1:
            parser.error(f"--{name} must be at least 1")
    if args.hidden % args.heads:
        parser.error(f"--heads ({args.heads}) must divide --hidden "
                     f"({args.hidden})")
    if args.ffn < 0 or args.seed < 0 or args.seed > MASK64:
        parser.error("--ffn and --seed must be non-negative (seed < 2^64)")
    args.ffn = args.ffn or 4 * args.hidden
    if not (0 <= args.beta1 < 1 and 0 <= args.beta2 < 1
            and args.weight_decay >= 0 and args.clip_norm >= 0):
        parser.error("need 0 <= beta1, beta2 < 1, weight decay >= 0 and "
                     "clip norm >= 0")
    if not (args.lr > 0 and 0 <= args.min_lr <= args.lr):
        parser.error("need --lr > 0 and 0 <= --min-lr <= --lr")
    if args.lr_schedule == "cosine" and args.decay_steps < 1:
        parser.error("--lr-schedule cosine needs --decay-steps")
    if args.warmup_steps < 0:
        parser.error("--warmup-steps must not be negative")
    if args.device is None:
        args.device = "cuda" if torch.cuda.is_available() else "cpu"
    if args.attention is None:
        has_sdpa = hasattr(F, "scaled_dot_product_attention")
        args.attention = "sdpa" if has_sdpa else "math"
    return args


def main():
    args = parse_args()
    try:
        device = torch.device(args.device)
    except RuntimeError:
        raise RunError(f"unknown --device '{args.device}' (cuda or cpu)")
    if device.type == "cuda" and not torch.cuda.is_available():
        raise RunError("--device cuda, but this PyTorch sees no CUDA device")
    if args.tf32:
        torch.set_float32_matmul_precision("high")

    shapes = parameter_shapes(args)
    initial = load_parameters(args.init, shapes)
    params = {name: torch.tensor(value, device=device).requires_grad_()
              for name, value in initial.items()}
    tokens = read_tokens(args.data, args.token_bytes, args.seq, args.vocab)
    model = Gpt(args, params, args.attention)
    loss_of = torch.compile(model.loss) if args.compile else model.loss

    def autocast():
        if not args.bf16:
            return contextlib.nullcontext()
        return torch.autocast(device_type=device.type, dtype=torch.bfloat16)
    optimizer = AdamW(list(params.values()), args.beta1, args.beta2,
                      args.weight_decay, args.clip_norm)

    name = (torch.cuda.get_device_name(device) if device.type == "cuda"
            else "cpu")
    count = sum(value.size for value in initial.values())
    print(f"torch {torch.__version__} on {name}: gpt layers {args.layers} "
          f"hidden {args.hidden} heads {args.heads} ffn {args.ffn} "
          f"seq {args.seq} vocab {args.vocab} batch {args.batch}, "
          f"{count} parameters, attention {args.attention}, "
          f"tf32 {'on' if args.tf32 else 'off'}, "
          f"{'bf16 autocast' if args.bf16 else 'f32'}"
          f"{', torch.compile' if args.compile else ''}")
    sys.stdout.flush()

    def synchronize():
        if device.type == "cuda":
            torch.cuda.synchronize(device)

    results = {}
    norms = []
    for step in range(1, args.steps + 1):
        synchronize()
        start = time.perf_counter()
        lr = learning_rate(args, step)
        batch_tokens, batch_targets = get_batch(tokens, args.seed, step,
                                                args.batch, args.seq)
        inputs = torch.from_numpy(batch_tokens).to(device)
        targets = torch.from_numpy(batch_targets).to(device)
        with autocast():
            loss = loss_of(inputs, targets)
        loss.backward()
        norms.append(optimizer.step(step, lr))
        loss = loss.item()
        synchronize()
        elapsed = time.perf_counter() - start
        tokens_per_second = args.batch * args.seq / elapsed
        results[step] = [loss, math.nan, tokens_per_second]
        print(f"torch step {step} loss {loss:.6f} tokens/s "
              f"{tokens_per_second:.0f} step_time_ms {elapsed * 1e3:.1f}")
        sys.stdout.flush()
        if not math.isfinite(loss):
            raise RunError(f"the loss is not finite at step {step}; "
                           "stopping")
    for step, norm in zip(results, torch.stack(norms).tolist()):
        results[step][1] = norm

    timed = [step for step in results if step > args.warmup_steps]
    if timed:
        mean = statistics.mean(results[step][2] for step in timed)
        print(f"torch mean tokens/s {mean:.0f} over steps {timed[0]}-"
              f"{timed[-1]} ({args.warmup_steps} warm-up steps left out)")
        if args.flops_per_step:
            tokens_per_step = args.batch * args.seq
            mfu = (args.flops_per_step * mean / tokens_per_step /
                   (args.peak_tflops * 1e12))
            print(f"torch MFU {100 * mfu:.1f}% of {args.peak_tflops:g} "
                  "TFLOP/s")
    else:
        print(f"torch mean tokens/s: no steps after the {args.warmup_steps} "
              "warm-up steps")
    if device.type == "cuda":
        peak = torch.cuda.max_memory_allocated(device)
        print(f"torch peak device memory {peak / 2**20:.1f} MiB "
              "(torch.cuda.max_memory_allocated)")
    else:
        print("torch peak device memory: n/a on the CPU")
    if args.compare:
        worst = compare(read_cleave_log(args.compare), results,
                        args.warmup_steps)
        if args.tolerance is not None and worst > args.tolerance:
            raise RunError(f"the losses differ by {worst:.3e} relative, "
                           f"more than --tolerance {args.tolerance:g}")
    return 0


if __name__ == "__main__":
    try:
        sys.exit(main())
    except RunError as error:
        sys.exit(f"torch_gpt2.py: error: {error}")
