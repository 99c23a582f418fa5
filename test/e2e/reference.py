#!/usr/bin/env python3
"""Independent NumPy implementation of the reference models of `cleave-models`.

The end-to-end tests use it to check compiled programs: given the same
parameters and inputs (safetensors files), it computes the loss of the gpt,
llama or mlp model in float64, straight from the documented op semantics
(include/cleave/Dialect/Cleave/IR/CleaveOps.td) and the model structure
(docs/models.md), without sharing any code with the compiler.

Subcommands:

  make-inputs  deterministic inputs (tokens/targets, or features/targets)
  loss         the reference loss of a parameter file and an input file
  compare      the reference loss against a compiled program's `output0`

Only NumPy is needed (run it with a Python that has NumPy, e.g.
/usr/bin/python3 on Debian).
"""

import argparse
import json
import math
import os
import re
import sys
from dataclasses import dataclass

try:
    import numpy as np
except ImportError:  # pragma: no cover - depends on the interpreter
    sys.exit("error: reference.py needs NumPy; run it with a Python that has "
             "it (on Debian: /usr/bin/python3 with python3-numpy)")

MODELS = ("gpt", "llama", "mlp")

# The defaults of ModelConfig (include/cleave/Models/Models.h); heads, norm
# epsilon and rope base cannot be recovered from parameter shapes.
DEFAULT_HEADS = 4
DEFAULT_EPS = 1e-5
DEFAULT_ROPE_BASE = 10000.0
# The defaults of cleave-models, so that both tools agree without flags.
DEFAULT_BATCH = 1
DEFAULT_SEQ = 16
DEFAULT_VOCAB = 256
DEFAULT_HIDDEN = 64


class ReferenceError(Exception):
    """A problem with the files or arguments; main() prints it and exits 1."""


# ===----------------------------------------------------------------------=== #
# Safetensors I/O
# ===----------------------------------------------------------------------=== #

# Little-endian NumPy types of the dtypes stored as themselves. BF16 has no
# NumPy type: it is stored as uint16 bit patterns and converted by hand.
_NUMPY_TYPES = {
    "F64": np.dtype("<f8"),
    "F32": np.dtype("<f4"),
    "F16": np.dtype("<f2"),
    "I64": np.dtype("<i8"),
    "I32": np.dtype("<i4"),
    "BOOL": np.dtype("?"),
}
_ITEM_SIZES = {"F64": 8, "F32": 4, "F16": 2, "BF16": 2, "I64": 8, "I32": 4,
               "BOOL": 1}
# Same bound as the runtime's reader: anything larger is not a tensor index.
_MAX_HEADER_BYTES = 100 << 20


@dataclass
class TensorFile:
    """The contents of a safetensors file. BF16 tensors are float32 arrays
    here; `dtypes` keeps the stored dtype of every tensor."""
    tensors: dict
    dtypes: dict
    metadata: dict


def bf16_bits_to_float32(bits):
    """bfloat16 is the upper half of a float32, so widening is exact."""
    widened = np.asarray(bits, dtype=np.uint16).astype(np.uint32) << 16
    return widened.view(np.float32)


def float32_to_bf16_bits(values):
    """Rounds float32 values to bfloat16 bit patterns, to nearest even."""
    bits = np.ascontiguousarray(values, dtype=np.float32).view(np.uint32)
    wide = bits.astype(np.uint64)
    # Adding 0x7FFF plus the lowest kept bit rounds ties to even; a carry out
    # of the mantissa correctly bumps the exponent (up to infinity).
    rounded = ((wide + 0x7FFF + ((wide >> 16) & 1)) >> 16).astype(np.uint16)
    # NaN payloads could round to infinity: keep a quiet NaN of the same sign.
    is_nan = np.isnan(bits.view(np.float32))
    quiet_nan = ((bits >> 16) & 0x8000).astype(np.uint16) | np.uint16(0x7FC0)
    return np.where(is_nan, quiet_nan, rounded).astype(np.uint16)


def _format_shape(shape):
    return "[" + ", ".join(str(d) for d in shape) + "]"


def _parse_entry(path, name, entry, data_size):
    """Checks one header entry; returns (dtype, shape, begin, end)."""
    where = f"'{path}': tensor '{name}'"
    if not isinstance(entry, dict):
        raise ReferenceError(f"{where}: header entry is not an object")
    dtype = entry.get("dtype")
    if dtype not in _ITEM_SIZES:
        raise ReferenceError(
            f"{where}: unsupported dtype {dtype!r} (supported: "
            f"{', '.join(_ITEM_SIZES)})")
    shape = entry.get("shape")
    if (not isinstance(shape, list)
            or not all(type(d) is int and d >= 0 for d in shape)):
        raise ReferenceError(f"{where}: shape {shape!r} is not a list of "
                             "non-negative integers")
    offsets = entry.get("data_offsets")
    if (not isinstance(offsets, list) or len(offsets) != 2
            or not all(type(o) is int for o in offsets)
            or not 0 <= offsets[0] <= offsets[1] <= data_size):
        raise ReferenceError(f"{where}: data_offsets {offsets!r} are not a "
                             f"range inside the {data_size}-byte data section")
    begin, end = offsets
    needed = math.prod(shape) * _ITEM_SIZES[dtype]
    if end - begin != needed:
        raise ReferenceError(f"{where}: {dtype} {_format_shape(shape)} needs "
                             f"{needed} bytes but data_offsets span "
                             f"{end - begin}")
    return dtype, shape, begin, end


def _decode(data, dtype, shape, begin, end):
    raw = data[begin:end]
    if dtype == "BF16":
        bits = np.frombuffer(raw, dtype=np.dtype("<u2"))
        return bf16_bits_to_float32(bits).reshape(shape)
    return np.frombuffer(raw, dtype=_NUMPY_TYPES[dtype]).reshape(shape).copy()


def read_safetensors(path):
    """Reads and checks a whole safetensors file."""
    try:
        with open(path, "rb") as file:
            content = file.read()
    except OSError as error:
        raise ReferenceError(f"cannot read '{path}': {error.strerror}")
    if len(content) < 8:
        raise ReferenceError(f"'{path}': {len(content)} bytes is too short "
                             "for a safetensors file")
    header_size = int.from_bytes(content[:8], "little")
    if header_size > min(len(content) - 8, _MAX_HEADER_BYTES):
        raise ReferenceError(f"'{path}': header length {header_size} does "
                             f"not fit in the {len(content)}-byte file")
    try:
        header = json.loads(content[8:8 + header_size].decode("utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as error:
        raise ReferenceError(f"'{path}': header is not valid JSON: {error}")
    if not isinstance(header, dict):
        raise ReferenceError(f"'{path}': header is not a JSON object")

    metadata = header.pop("__metadata__", {})
    if not isinstance(metadata, dict) or not all(
            isinstance(v, str) for v in metadata.values()):
        raise ReferenceError(f"'{path}': __metadata__ is not a map of strings")

    data = content[8 + header_size:]
    entries = {name: _parse_entry(path, name, entry, len(data))
               for name, entry in header.items()}
    # The tensors must tile the data section exactly: a hole or an overlap
    # means the writer lost track of its offsets.
    position = 0
    for name, (_, _, begin, end) in sorted(entries.items(),
                                           key=lambda item: item[1][2:]):
        if begin != position:
            raise ReferenceError(f"'{path}': tensor '{name}' starts at byte "
                                 f"{begin}, expected {position} (hole or "
                                 "overlap)")
        position = end
    if position != len(data):
        raise ReferenceError(f"'{path}': tensors end at byte {position} but "
                             f"the data section has {len(data)} bytes")

    tensors = {name: _decode(data, *entry) for name, entry in entries.items()}
    dtypes = {name: entry[0] for name, entry in entries.items()}
    return TensorFile(tensors, dtypes, dict(metadata))


def read_checkpoint(directory):
    """Reads a sharded checkpoint directory into whole tensors."""
    index_path = os.path.join(directory, "checkpoint.json")
    try:
        with open(index_path) as file:
            index = json.load(file)
    except (OSError, json.JSONDecodeError) as error:
        raise ReferenceError(f"cannot read '{index_path}': {error}")
    files = {}
    tensors, dtypes = {}, {}
    for name, entry in index["tensors"].items():
        shape = tuple(entry["shape"])
        whole = None
        covered = 0
        for piece in entry["pieces"]:
            path = os.path.join(directory, piece["file"])
            if path not in files:
                files[path] = read_safetensors(path)
            block = files[path].tensors[name]
            if whole is None:
                whole = np.zeros(shape, dtype=block.dtype)
            region = tuple(slice(o, o + n)
                           for o, n in zip(piece["offsets"], piece["shape"]))
            whole[region] = block
            covered += block.size
        if covered != math.prod(shape):
            raise ReferenceError(f"'{index_path}': the pieces of '{name}' "
                                 f"cover {covered} of {math.prod(shape)} "
                                 "elements")
        tensors[name] = whole
        dtypes[name] = entry["dtype"]
    return TensorFile(tensors, dtypes, dict(index["metadata"]))


def read_tensors(path):
    """A safetensors file, or a checkpoint directory, as whole tensors."""
    if os.path.isdir(path):
        return read_checkpoint(path)
    return read_safetensors(path)


def _dtype_of_array(name, array):
    for dtype, numpy_type in _NUMPY_TYPES.items():
        if array.dtype.type is numpy_type.type:
            return dtype
    raise ReferenceError(f"tensor '{name}': cannot store NumPy dtype "
                         f"{array.dtype} (give the safetensors dtype)")


def _encode(dtype, array):
    if dtype == "BF16":
        return float32_to_bf16_bits(array).astype("<u2").tobytes()
    return np.ascontiguousarray(array, dtype=_NUMPY_TYPES[dtype]).tobytes()


def write_safetensors(path, tensors, metadata=None):
    """Writes `tensors` (name -> array, or name -> (dtype, array) to choose
    the stored dtype, e.g. ("BF16", x)) in order. Like the runtime, it writes
    PATH.tmp and renames it, so nobody reads a half-written file."""
    header, chunks, offset = {}, [], 0
    for name, value in tensors.items():
        dtype, array = value if isinstance(value, tuple) else (None, value)
        array = np.asarray(array)
        dtype = dtype or _dtype_of_array(name, array)
        if dtype not in _ITEM_SIZES:
            raise ReferenceError(f"tensor '{name}': unsupported dtype "
                                 f"{dtype!r}")
        chunk = _encode(dtype, array)
        header[name] = {"dtype": dtype, "shape": list(array.shape),
                        "data_offsets": [offset, offset + len(chunk)]}
        chunks.append(chunk)
        offset += len(chunk)
    if metadata:
        header["__metadata__"] = dict(metadata)
    text = json.dumps(header, separators=(",", ":")).encode("utf-8")
    # Spaces pad the header so that the data starts 8-byte aligned.
    text += b" " * (-len(text) % 8)

    temporary = path + ".tmp"
    try:
        with open(temporary, "wb") as file:
            file.write(len(text).to_bytes(8, "little"))
            file.write(text)
            for chunk in chunks:
                file.write(chunk)
        os.replace(temporary, path)
    except OSError as error:
        raise ReferenceError(f"cannot write '{path}': {error.strerror}")


# ===----------------------------------------------------------------------=== #
# Ops, as documented in CleaveOps.td, in float64
# ===----------------------------------------------------------------------=== #

def gelu(x):
    """The tanh approximation, as cleave.gelu defines it."""
    return 0.5 * x * (1.0 + np.tanh(math.sqrt(2.0 / math.pi)
                                    * (x + 0.044715 * x ** 3)))


def silu(x):
    # x * sigmoid(x), with sigmoid = exp(-log(1 + exp(-x))) so that no
    # intermediate overflows for large |x|.
    return x * np.exp(-np.logaddexp(0.0, -x))


def relu(x):
    return np.maximum(x, 0.0)


def softmax(x):
    """Softmax over the last dimension."""
    shifted = np.exp(x - x.max(axis=-1, keepdims=True))
    return shifted / shifted.sum(axis=-1, keepdims=True)


def layer_norm(x, scale, bias, eps):
    """Over the last dimension, with the biased (1/N) variance."""
    mean = x.mean(axis=-1, keepdims=True)
    variance = ((x - mean) ** 2).mean(axis=-1, keepdims=True)
    return (x - mean) / np.sqrt(variance + eps) * scale + bias


def rms_norm(x, scale, eps):
    return x / np.sqrt((x ** 2).mean(axis=-1, keepdims=True) + eps) * scale


def rotary(x, base):
    """Rotates the pairs (i, i + D/2) of each row by p * base^(-2i/D), where
    p is the row's index along dimension -2."""
    positions, width = x.shape[-2], x.shape[-1]
    half = width // 2
    frequencies = base ** (-2.0 * np.arange(half) / width)
    angles = np.arange(positions)[:, None] * frequencies[None, :]
    cos, sin = np.cos(angles), np.sin(angles)
    first, second = x[..., :half], x[..., half:]
    return np.concatenate([first * cos - second * sin,
                           second * cos + first * sin], axis=-1)


def attention(query, key, value, causal, scale=None):
    """softmax(scale * q k^T + mask) v; with `causal`, query i sees keys
    j <= i + (T - S). (A query that sees no key, possible only when T < S,
    has no defined result; the models always have T == S.)"""
    queries, keys = query.shape[-2], key.shape[-2]
    if scale is None:
        scale = 1.0 / math.sqrt(query.shape[-1])
    scores = scale * (query @ np.swapaxes(key, -1, -2))
    if causal:
        visible = (np.arange(keys)[None, :]
                   <= np.arange(queries)[:, None] + (keys - queries))
        scores = np.where(visible, scores, -np.inf)
    return softmax(scores) @ value


def embedding(table, indices, name="indices"):
    """Row gather; indices outside the table are an error, as at run time."""
    _check_index_range(indices, table.shape[0], name)
    return table[indices.astype(np.intp)]


def cross_entropy(logits, targets, name="targets"):
    """logsumexp(logits) - logits[target], per target."""
    _check_index_range(targets, logits.shape[-1], name)
    top = logits.max(axis=-1, keepdims=True)
    log_sum_exp = (np.log(np.exp(logits - top).sum(axis=-1))
                   + top[..., 0])
    picked = np.take_along_axis(logits, targets.astype(np.intp)[..., None],
                                axis=-1)[..., 0]
    return log_sum_exp - picked


def _check_index_range(indices, size, name):
    if indices.size and (indices.min() < 0 or indices.max() >= size):
        raise ReferenceError(
            f"input '{name}' has values in [{indices.min()}, {indices.max()}]"
            f", outside [0, {size})")


# ===----------------------------------------------------------------------=== #
# Model structure: parameter names and shapes, as the builders create them
# ===----------------------------------------------------------------------=== #

@dataclass
class Config:
    layers: int
    hidden: int
    ffn: int
    vocab: int
    batch: int
    seq: int
    heads: int = DEFAULT_HEADS


def gpt_param_shapes(c):
    """Names and shapes in the order of the function signature."""
    shapes = {"embed.tokens": [c.vocab, c.hidden],
              "embed.positions": [c.seq, c.hidden]}
    for layer in range(c.layers):
        prefix = f"layers.{layer}"
        shapes[f"{prefix}.ln1.scale"] = [c.hidden]
        shapes[f"{prefix}.ln1.bias"] = [c.hidden]
        for projection in ("q", "k", "v", "out"):
            shapes[f"{prefix}.attn.{projection}.weight"] = [c.hidden, c.hidden]
            shapes[f"{prefix}.attn.{projection}.bias"] = [c.hidden]
        shapes[f"{prefix}.ln2.scale"] = [c.hidden]
        shapes[f"{prefix}.ln2.bias"] = [c.hidden]
        shapes[f"{prefix}.mlp.fc.weight"] = [c.hidden, c.ffn]
        shapes[f"{prefix}.mlp.fc.bias"] = [c.ffn]
        shapes[f"{prefix}.mlp.proj.weight"] = [c.ffn, c.hidden]
        shapes[f"{prefix}.mlp.proj.bias"] = [c.hidden]
    shapes["final_norm.scale"] = [c.hidden]
    shapes["final_norm.bias"] = [c.hidden]
    return shapes


def llama_param_shapes(c):
    shapes = {"embed.tokens": [c.vocab, c.hidden]}
    for layer in range(c.layers):
        prefix = f"layers.{layer}"
        shapes[f"{prefix}.attn_norm.scale"] = [c.hidden]
        for projection in ("q", "k", "v", "o"):
            shapes[f"{prefix}.attn.{projection}.weight"] = [c.hidden, c.hidden]
        shapes[f"{prefix}.mlp_norm.scale"] = [c.hidden]
        shapes[f"{prefix}.mlp.gate.weight"] = [c.hidden, c.ffn]
        shapes[f"{prefix}.mlp.up.weight"] = [c.hidden, c.ffn]
        shapes[f"{prefix}.mlp.down.weight"] = [c.ffn, c.hidden]
    shapes["final_norm.scale"] = [c.hidden]
    shapes["head.weight"] = [c.hidden, c.vocab]
    return shapes


def mlp_param_shapes(c):
    shapes = {}
    for layer in range(c.layers):
        shapes[f"layers.{layer}.weight"] = [c.hidden, c.hidden]
        shapes[f"layers.{layer}.bias"] = [c.hidden]
    shapes["head.weight"] = [c.hidden, c.vocab]
    shapes["head.bias"] = [c.vocab]
    return shapes


def input_shapes(model, c):
    """The `cleave.input` arguments: name -> (shape, kind)."""
    if model == "mlp":
        return {"features": ([c.batch, c.hidden], "float"),
                "targets": ([c.batch], "int")}
    return {"tokens": ([c.batch, c.seq], "int"),
            "targets": ([c.batch, c.seq], "int")}


PARAM_SHAPES = {"gpt": gpt_param_shapes, "llama": llama_param_shapes,
                "mlp": mlp_param_shapes}


def _require(tensors, name, kind, rank, model):
    if name not in tensors:
        raise ReferenceError(f"missing {kind} '{name}' of the {model} model "
                             "(is --model right?)")
    shape = list(np.shape(tensors[name]))
    if len(shape) != rank:
        raise ReferenceError(f"{kind} '{name}' has shape {_format_shape(shape)}"
                             f", expected rank {rank}")
    return shape


def _count_layers(params):
    indices = {int(match.group(1)) for name in params
               if (match := re.match(r"layers\.(\d+)\.", name))}
    if not indices:
        raise ReferenceError("no 'layers.N.*' parameters: a model has at "
                             "least one layer")
    # Missing intermediate layers are reported by the shape check by name.
    return max(indices) + 1


def infer_config(model, params, inputs, heads=DEFAULT_HEADS):
    """Sizes from the parameter and input shapes; heads cannot be inferred."""
    layers = _count_layers(params)
    if model == "mlp":
        hidden, _ = _require(params, "layers.0.weight", "parameter", 2, model)
        _, vocab = _require(params, "head.weight", "parameter", 2, model)
        batch, _ = _require(inputs, "features", "input", 2, model)
        return Config(layers, hidden, ffn=0, vocab=vocab, batch=batch, seq=1,
                      heads=heads)

    vocab, hidden = _require(params, "embed.tokens", "parameter", 2, model)
    ffn_weight = "layers.0.mlp.fc.weight" if model == "gpt" \
        else "layers.0.mlp.gate.weight"
    _, ffn = _require(params, ffn_weight, "parameter", 2, model)
    batch, seq = _require(inputs, "tokens", "input", 2, model)
    if model == "gpt":
        rows, _ = _require(params, "embed.positions", "parameter", 2, model)
        if rows != seq:
            raise ReferenceError(
                f"input 'tokens' has sequence length {seq} but parameter "
                f"'embed.positions' has {rows} rows (they must match)")
    config = Config(layers, hidden, ffn, vocab, batch, seq, heads)
    if heads < 1 or hidden % heads:
        raise ReferenceError(f"--heads {heads} does not divide the hidden "
                             f"size {hidden}")
    if model == "llama" and (hidden // heads) % 2:
        raise ReferenceError(f"llama needs an even head size for rotary "
                             f"embeddings, got {hidden} / {heads}")
    return config


def check_params(model, config, params):
    """Returns the parameters as float64 after checking every name and shape;
    an unexpected name usually means the wrong --model."""
    expected = PARAM_SHAPES[model](config)
    for name in params:
        if name not in expected:
            raise ReferenceError(f"unexpected parameter '{name}' for a "
                                 f"{config.layers}-layer {model} model (is "
                                 "--model right?)")
    checked = {}
    for name, shape in expected.items():
        if name not in params:
            raise ReferenceError(f"missing parameter '{name}' (expected shape "
                                 f"{_format_shape(shape)})")
        array = np.asarray(params[name])
        if list(array.shape) != shape:
            raise ReferenceError(
                f"parameter '{name}' has shape {_format_shape(array.shape)}, "
                f"expected {_format_shape(shape)}")
        if not np.issubdtype(array.dtype, np.floating):
            raise ReferenceError(f"parameter '{name}' has dtype {array.dtype}"
                                 ", expected a float type")
        checked[name] = array.astype(np.float64)
    return checked


def check_inputs(model, config, inputs):
    """Returns the inputs (features as float64) after checking them."""
    expected = input_shapes(model, config)
    for name in inputs:
        if name not in expected:
            raise ReferenceError(f"unexpected input '{name}' for {model} "
                                 f"(expected {', '.join(expected)})")
    checked = {}
    for name, (shape, kind) in expected.items():
        if name not in inputs:
            raise ReferenceError(f"missing input '{name}' (expected shape "
                                 f"{_format_shape(shape)})")
        array = np.asarray(inputs[name])
        if list(array.shape) != shape:
            raise ReferenceError(
                f"input '{name}' has shape {_format_shape(array.shape)}, "
                f"expected {_format_shape(shape)}")
        if kind == "int" and not np.issubdtype(array.dtype, np.integer):
            raise ReferenceError(f"input '{name}' has dtype {array.dtype}, "
                                 "expected an integer type")
        if kind == "float":
            if not np.issubdtype(array.dtype, np.floating):
                raise ReferenceError(f"input '{name}' has dtype {array.dtype}"
                                     ", expected a float type")
            array = array.astype(np.float64)
        checked[name] = array
    return checked


def _prepare(model, params, inputs, heads):
    config = infer_config(model, params, inputs, heads)
    return (config, check_params(model, config, params),
            check_inputs(model, config, inputs))


# ===----------------------------------------------------------------------=== #
# Forward passes
# ===----------------------------------------------------------------------=== #

def linear(x, p, name, bias=True):
    """x @ name.weight (+ name.bias); weights are [in, out]."""
    y = x @ p[name + ".weight"]
    return y + p[name + ".bias"] if bias else y


def split_heads(x, heads):
    """[B, S, H] -> [B, heads, S, H / heads]."""
    batch, seq, hidden = x.shape
    return x.reshape(batch, seq, heads, hidden // heads).transpose(0, 2, 1, 3)


def merge_heads(x):
    """[B, heads, S, D] -> [B, S, heads * D]."""
    batch, heads, seq, width = x.shape
    return x.transpose(0, 2, 1, 3).reshape(batch, seq, heads * width)


def mean_cross_entropy(logits, targets):
    return float(cross_entropy(logits, targets).mean())


def gpt_loss(params, inputs, heads=DEFAULT_HEADS, eps=DEFAULT_EPS):
    """GPT-2: learned positions, pre-LN blocks, tied LM head."""
    c, p, data = _prepare("gpt", params, inputs, heads)
    x = embedding(p["embed.tokens"], data["tokens"], "tokens")
    x = x + p["embed.positions"][None, :, :]
    for layer in range(c.layers):
        prefix = f"layers.{layer}"
        normed = layer_norm(x, p[prefix + ".ln1.scale"],
                            p[prefix + ".ln1.bias"], eps)
        q, k, v = (split_heads(linear(normed, p, f"{prefix}.attn.{name}"),
                               c.heads) for name in ("q", "k", "v"))
        attended = merge_heads(attention(q, k, v, causal=True))
        x = x + linear(attended, p, prefix + ".attn.out")

        normed = layer_norm(x, p[prefix + ".ln2.scale"],
                            p[prefix + ".ln2.bias"], eps)
        hidden = gelu(linear(normed, p, prefix + ".mlp.fc"))
        x = x + linear(hidden, p, prefix + ".mlp.proj")
    x = layer_norm(x, p["final_norm.scale"], p["final_norm.bias"], eps)
    logits = x @ p["embed.tokens"].T
    return mean_cross_entropy(logits, data["targets"])


def llama_loss(params, inputs, heads=DEFAULT_HEADS, eps=DEFAULT_EPS,
               rope_base=DEFAULT_ROPE_BASE):
    """Llama: RMSNorm, rotary queries and keys, SwiGLU, untied head."""
    c, p, data = _prepare("llama", params, inputs, heads)
    x = embedding(p["embed.tokens"], data["tokens"], "tokens")
    for layer in range(c.layers):
        prefix = f"layers.{layer}"
        normed = rms_norm(x, p[prefix + ".attn_norm.scale"], eps)

        def project(name):
            return split_heads(
                linear(normed, p, f"{prefix}.attn.{name}", bias=False),
                c.heads)

        q = rotary(project("q"), rope_base)
        k = rotary(project("k"), rope_base)
        attended = merge_heads(attention(q, k, project("v"), causal=True))
        x = x + linear(attended, p, prefix + ".attn.o", bias=False)

        normed = rms_norm(x, p[prefix + ".mlp_norm.scale"], eps)
        gate = silu(linear(normed, p, prefix + ".mlp.gate", bias=False))
        up = linear(normed, p, prefix + ".mlp.up", bias=False)
        x = x + linear(gate * up, p, prefix + ".mlp.down", bias=False)
    x = rms_norm(x, p["final_norm.scale"], eps)
    logits = linear(x, p, "head", bias=False)
    return mean_cross_entropy(logits, data["targets"])


def mlp_loss(params, inputs):
    """ReLU hidden layers, then a linear classifier head."""
    c, p, data = _prepare("mlp", params, inputs, heads=DEFAULT_HEADS)
    x = data["features"]
    for layer in range(c.layers):
        x = relu(linear(x, p, f"layers.{layer}"))
    logits = linear(x, p, "head")
    return mean_cross_entropy(logits, data["targets"])


def reference_loss(model, params, inputs, heads=DEFAULT_HEADS,
                   eps=DEFAULT_EPS, rope_base=DEFAULT_ROPE_BASE):
    if model == "gpt":
        return gpt_loss(params, inputs, heads, eps)
    if model == "llama":
        return llama_loss(params, inputs, heads, eps, rope_base)
    return mlp_loss(params, inputs)


# ===----------------------------------------------------------------------=== #
# Inputs
# ===----------------------------------------------------------------------=== #

_FEATURE_DTYPES = {"f64": "F64", "f32": "F32", "bf16": "BF16", "f16": "F16"}


def make_inputs(model, batch, seq, vocab, hidden, seed, feature_dtype="f32"):
    """Deterministic inputs for `seed`: name -> (safetensors dtype, array)."""
    rng = np.random.default_rng(seed)
    if model == "mlp":
        # The features have the model's element type (f32 unless the model
        # was built with another --dtype).
        features = rng.standard_normal((batch, hidden)).astype(np.float32)
        targets = rng.integers(0, vocab, size=(batch,), dtype=np.int32)
        return {"features": (_FEATURE_DTYPES[feature_dtype], features),
                "targets": ("I32", targets)}
    # Targets are the next tokens of one stream, as in language modelling.
    stream = rng.integers(0, vocab, size=(batch, seq + 1), dtype=np.int32)
    return {"tokens": ("I32", np.ascontiguousarray(stream[:, :-1])),
            "targets": ("I32", np.ascontiguousarray(stream[:, 1:]))}


# ===----------------------------------------------------------------------=== #
# Command line
# ===----------------------------------------------------------------------=== #

def _positive(text):
    value = int(text)
    if not 1 <= value < 2 ** 31:
        raise argparse.ArgumentTypeError(f"must be in [1, 2^31), got {value}")
    return value


def _non_negative_float(text):
    value = float(text)
    if not value >= 0.0:
        raise argparse.ArgumentTypeError(f"must be non-negative, got {text}")
    return value


def _positive_float(text):
    value = float(text)
    if not value > 0.0:
        raise argparse.ArgumentTypeError(f"must be positive, got {text}")
    return value


def _add_model_flags(parser):
    parser.add_argument("--model", required=True, choices=MODELS)
    parser.add_argument("--params", required=True, metavar="P.safetensors",
                        help="parameters, named as in cleave.param")
    parser.add_argument("--inputs", required=True, metavar="I.safetensors",
                        help="inputs, named as in cleave.input")
    parser.add_argument("--heads", type=_positive, default=DEFAULT_HEADS,
                        help=f"attention heads (default {DEFAULT_HEADS})")
    parser.add_argument("--eps", type=_non_negative_float, default=DEFAULT_EPS,
                        help=f"norm epsilon (default {DEFAULT_EPS:g})")
    parser.add_argument("--rope-base", type=_positive_float,
                        default=DEFAULT_ROPE_BASE,
                        help="rotary base, llama only (default "
                             f"{DEFAULT_ROPE_BASE:g})")


def _loss_from_files(args):
    params = read_safetensors(args.params).tensors
    inputs = read_safetensors(args.inputs).tensors
    return reference_loss(args.model, params, inputs, args.heads, args.eps,
                          args.rope_base)


def run_make_inputs(args):
    if args.dtype != "f32" and args.model != "mlp":
        raise ReferenceError("--dtype sets the type of mlp features; gpt and "
                             "llama inputs are always i32")
    tensors = make_inputs(args.model, args.batch, args.seq, args.vocab,
                          args.hidden, args.seed, args.dtype)
    write_safetensors(args.output, tensors)
    return 0


def run_loss(args):
    print(f"loss = {_loss_from_files(args)!r}")
    return 0


def _read_compiled_loss(path):
    outputs = read_safetensors(path)
    if "output0" not in outputs.tensors:
        raise ReferenceError(f"'{path}': missing tensor 'output0' (has: "
                             f"{', '.join(outputs.tensors) or 'none'})")
    dtype = outputs.dtypes["output0"]
    value = outputs.tensors["output0"]
    if dtype not in ("F32", "F64") or value.shape != ():
        raise ReferenceError(f"'{path}': tensor 'output0' is {dtype} "
                             f"{_format_shape(value.shape)}, expected a scalar"
                             " F32 or F64 loss")
    return float(value)


def run_compare(args):
    compiled = _read_compiled_loss(args.outputs)
    reference = _loss_from_files(args)
    error = abs(compiled - reference)
    allowed = args.rtol * max(1.0, abs(reference))
    print(f"compiled  loss = {compiled!r}")
    print(f"reference loss = {reference!r}")
    print(f"relative error = {error / max(1.0, abs(reference)):.3e} "
          f"(rtol {args.rtol:g})")
    # Written so that a NaN on either side is a mismatch.
    if error <= allowed:
        print("OK")
        return 0
    print(f"MISMATCH: the compiled loss {compiled!r} differs from the "
          f"reference {reference!r} by {error:.3e}, more than "
          f"rtol * max(1, |reference|) = {allowed:.3e}")
    return 1


def run_randomize(args):
    """Rewrites every parameter with larger random values of the same name,
    dtype and shape. GPT-2 initialization makes nearly uniform logits, which
    hide mistakes in attention and the norms; these values do not."""
    source = read_safetensors(args.params)
    rng = np.random.default_rng(args.seed)
    tensors = {}
    for name, array in source.tensors.items():
        noise = rng.standard_normal(array.shape) * args.std
        if name.endswith(".scale"):
            noise += 1.0
        dtype = source.dtypes[name]
        storage = np.float32 if dtype == "BF16" else _NUMPY_TYPES[dtype]
        tensors[name] = (dtype, noise.astype(storage))
    write_safetensors(args.output, tensors, {"randomized": str(args.seed)})
    return 0


def build_parser():
    parser = argparse.ArgumentParser(
        description="NumPy reference of the cleave-models models.")
    commands = parser.add_subparsers(dest="command", required=True)

    make = commands.add_parser(
        "make-inputs", help="write deterministic inputs for a model")
    make.add_argument("--model", required=True, choices=MODELS)
    make.add_argument("--batch", type=_positive, default=DEFAULT_BATCH)
    make.add_argument("--seq", type=_positive, default=DEFAULT_SEQ,
                      help="sequence length (gpt, llama)")
    make.add_argument("--vocab", type=_positive, default=DEFAULT_VOCAB,
                      help="vocabulary size, or classes for mlp")
    make.add_argument("--hidden", type=_positive, default=DEFAULT_HIDDEN,
                      help="feature width (mlp)")
    make.add_argument("--dtype", choices=sorted(_FEATURE_DTYPES),
                      default="f32", help="element type of mlp features, the "
                      "model's --dtype (default f32)")
    make.add_argument("--seed", type=int, default=0)
    make.add_argument("-o", dest="output", required=True, metavar="FILE")
    make.set_defaults(run=run_make_inputs)

    loss = commands.add_parser("loss", help="print the reference loss")
    _add_model_flags(loss)
    loss.set_defaults(run=run_loss)

    compare = commands.add_parser(
        "compare", help="check a compiled program's loss against the reference")
    _add_model_flags(compare)
    compare.add_argument("--outputs", required=True, metavar="O.safetensors",
                         help="the compiled program's outputs (scalar "
                              "'output0')")
    compare.add_argument("--rtol", type=_non_negative_float, default=1e-5,
                         help="passes if |got - ref| <= rtol * max(1, |ref|)"
                              " (default 1e-5)")
    compare.set_defaults(run=run_compare)

    randomize = commands.add_parser(
        "randomize", help="rewrite parameters with larger random values")
    randomize.add_argument("--params", required=True, metavar="P.safetensors")
    randomize.add_argument("--std", type=_positive_float, default=0.3)
    randomize.add_argument("--seed", type=int, default=0)
    randomize.add_argument("-o", dest="output", required=True, metavar="FILE")
    randomize.set_defaults(run=run_randomize)
    return parser


def main(argv=None):
    args = build_parser().parse_args(argv)
    try:
        return args.run(args)
    except ReferenceError as error:
        print(f"error: {error}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
