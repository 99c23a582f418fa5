#!/usr/bin/env python3
"""Checks Cleave against Hugging Face transformers (and tokenizers).

The tests run it with a Python that has NumPy, PyTorch, transformers and
tokenizers (`%hf_python`). Nothing is downloaded: models are built from
configs with random weights, tokenizers are trained on a local file.

Subcommands:

  make --arch {gpt2,llama,mistral} --seed N -o DIR [--dtype f32|bf16]
       [--sharded] [--vocab V]
      Builds a tiny random model (vocabulary V, 96 by default, hidden 32, 2 layers,
      4 heads, 64 positions, no dropout) and saves it with
      save_pretrained(DIR, safe_serialization=True): config.json and
      model.safetensors, or with --sharded several files of at most 20 KB and
      model.safetensors.index.json. The weights are redrawn from a generator
      seeded with N: normal(0, 0.2), norm weights 1 + normal(0, 0.1), so that
      every term of the loss matters. --dtype bf16 saves bfloat16 weights.
      llama has 2 key/value heads (grouped-query attention), rope_theta
      500000 and Llama 3.1's rope scaling; mistral has 1 key/value head and a
      sliding window of 32 positions.

  inputs --vocab V --batch B --seq S --seed N -o FILE.safetensors
      Writes int32 `tokens` and `targets`, both [B, S], uniform in [0, V).

  compare --hf DIR --inputs FILE --outputs FILE [--loss-rtol R]
          [--grad-rtol R] [--grad-floor F]
      Runs the model of DIR in float32 (eager attention, training mode,
      dropout off) on the inputs: the loss is the mean cross-entropy of
      logits[b, s] against targets[b, s], with no shift (the targets already
      are the next tokens). Then compares Cleave's gradient program's outputs
      with it: `loss` within R (default 1e-5) relative, and every `grad.P`
      within R (default 1e-4) in relative L2 norm, ||c - hf|| / ||hf||, after
      mapping the Hugging Face gradients to Cleave's names and layouts
      (cleave_parameters below). ||hf|| is raised to at least F (default
      1e-3) times the norm of all the gradients together: GPT-2's
      attn.k.bias has a zero gradient but for rounding noise. Every `grad.*`
      must have a Hugging Face counterpart and every Hugging Face parameter a
      `grad.*`. Prints a line per tensor, then
      `hf_check: loss C vs H, N gradients within R`.

  loss --hf DIR --inputs FILE [--expect X] [--rtol R]
      Prints `hf_check: loss L` (7 significant digits), the same loss as
      compare's. With --expect, fails unless |L - X| <= R * |X| (R default
      1e-5): a checkpoint that Cleave exported loads in transformers and gives
      Cleave's loss.

  make-tokenizer --text FILE -o DIR [--vocab 300] [--special TOKEN ...]
      Trains a byte-level BPE tokenizer (GPT-2's pre-tokenizer and decoder)
      on FILE with `tokenizers`, wraps it in PreTrainedTokenizerFast and
      saves it to DIR (tokenizer.json, tokenizer_config.json, ...).
      --special appends special tokens after the trained vocabulary.

  make-tokens --vocab V --count N --seed S -o FILE.bin
      Writes a token file (llm.c's header, 2-byte tokens) of N uniform
      random tokens below V, for training the tiny models.

  set-config --dir DIR KEY=JSON ...
      Rewrites fields of DIR/config.json (for the refused-config tests).

  checkpoint-params --checkpoint DIR --like FILE -o FILE
      Writes the tensors FILE (a parameter file) names, assembled from the
      pieces of a sharded Cleave checkpoint, to one safetensors file.

  tokenize --tokenizer DIR --text FILE --tokens FILE.bin
      Tokenizes FILE's text (UTF-8, line ends kept as they are) with
      AutoTokenizer.from_pretrained(DIR), adding no special tokens, and checks
      that FILE.bin, a Cleave token file (llm.c's 256 x int32 header: magic
      20240520 version 1 for uint16 tokens, 20240801 version 7 for uint32;
      header[2] the count; then the tokens), holds exactly those ids.

Every subcommand exits 1, with a message on stderr, on bad files or
arguments, and compare, loss --expect and tokenize exit 1 on a mismatch.
"""

import argparse
import math
import os
import re
import sys

# reference.py (one directory up) has the safetensors reader and writer.
sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
from reference import (ReferenceError, read_checkpoint,  # noqa: E402
                       read_safetensors, write_safetensors)

# Never reach the Hub: without these, a directory that does not exist is taken
# for a repository id and fetched, with a minute of retries when offline.
# They must be set before transformers (and huggingface_hub) is imported.
os.environ["HF_HUB_OFFLINE"] = "1"
os.environ["TRANSFORMERS_OFFLINE"] = "1"

try:
    import numpy as np
    import torch
    import transformers
except ImportError as error:  # pragma: no cover - depends on the interpreter
    sys.exit(f"error: hf_check.py needs NumPy, PyTorch and transformers "
             f"({error}); run it with the test suite's %hf_python")

ARCHS = ("gpt2", "llama", "mistral")


class CheckError(Exception):
    """A problem with the files or arguments; main() prints it and exits 1."""


def _short(error):
    # transformers' messages can list every model type it knows.
    text = str(error).strip().splitlines()[0] if str(error).strip() else ""
    return text if len(text) <= 300 else text[:300] + " ..."


# ===----------------------------------------------------------------------=== #
# Tiny models
# ===----------------------------------------------------------------------=== #

def tiny_config(arch, vocab=96):
    if arch == "gpt2":
        # gelu_new is the tanh approximation, Cleave's gelu. The head is tied.
        return transformers.GPT2Config(
            n_embd=32, n_layer=2, n_head=4, n_positions=64, vocab_size=vocab,
            activation_function="gelu_new", resid_pdrop=0.0, embd_pdrop=0.0,
            attn_pdrop=0.0, layer_norm_epsilon=1e-5)
    if arch == "llama":
        # original_max_position_embeddings 16 puts the 4 rotary frequencies
        # of the 8-wide heads into all three bands of the llama3 scaling
        # (kept, interpolated, divided by the factor).
        return transformers.LlamaConfig(
            vocab_size=vocab, hidden_size=32, intermediate_size=80,
            num_hidden_layers=2, num_attention_heads=4, num_key_value_heads=2,
            max_position_embeddings=64, rms_norm_eps=1e-5,
            rope_theta=500000.0,
            rope_scaling={"rope_type": "llama3", "factor": 8.0,
                          "low_freq_factor": 1.0, "high_freq_factor": 4.0,
                          "original_max_position_embeddings": 16},
            tie_word_embeddings=False, attention_bias=False, mlp_bias=False,
            attention_dropout=0.0)
    return transformers.MistralConfig(
        vocab_size=vocab, hidden_size=32, intermediate_size=80,
        num_hidden_layers=2, num_attention_heads=4, num_key_value_heads=1,
        max_position_embeddings=64, sliding_window=32, rms_norm_eps=1e-6,
        rope_theta=10000.0, tie_word_embeddings=False, attention_dropout=0.0)


def _is_norm(module):
    # LayerNorm for GPT-2; LlamaRMSNorm / MistralRMSNorm have no common base.
    return (isinstance(module, torch.nn.LayerNorm)
            or type(module).__name__.endswith("RMSNorm"))


def randomize(model, seed):
    """Redraws every parameter from a seeded generator: the default init
    (std 0.02, zero biases, unit norms) would leave most of the model's terms
    too small to show a mistake in the gradients."""
    generator = torch.Generator().manual_seed(seed)
    seen = set()  # GPT-2's head is wte itself: draw it once
    with torch.no_grad():
        for module in model.modules():
            for name, param in module.named_parameters(recurse=False):
                if id(param) in seen:
                    continue
                seen.add(id(param))
                noise = torch.randn(param.shape, generator=generator,
                                    dtype=torch.float32)
                if _is_norm(module) and name == "weight":
                    param.copy_(1.0 + 0.1 * noise)
                else:
                    param.copy_(0.2 * noise)


def run_make(args):
    # Eager attention: torch 1.13 has no scaled_dot_product_attention.
    model = transformers.AutoModelForCausalLM.from_config(
        tiny_config(args.arch, args.vocab), attn_implementation="eager")
    randomize(model, args.seed)
    if args.dtype == "bf16":
        model = model.to(torch.bfloat16)
    kwargs = {"max_shard_size": "20KB"} if args.sharded else {}
    model.save_pretrained(args.output, safe_serialization=True, **kwargs)

    files = sorted(f for f in os.listdir(args.output)
                   if f.endswith(".safetensors"))
    if args.sharded and (len(files) < 2 or not os.path.exists(
            os.path.join(args.output, "model.safetensors.index.json"))):
        raise CheckError(f"--sharded wrote {files}, not several shards and "
                         "an index")
    count = sum(p.numel() for p in model.parameters())
    print(f"hf_check: wrote {args.arch} ({count} parameters, {args.dtype}) "
          f"to {args.output}: {', '.join(files)}")
    return 0


# ===----------------------------------------------------------------------=== #
# Inputs
# ===----------------------------------------------------------------------=== #

def run_inputs(args):
    rng = np.random.default_rng(args.seed)
    shape = (args.batch, args.seq)
    tokens = rng.integers(0, args.vocab, size=shape, dtype=np.int32)
    targets = rng.integers(0, args.vocab, size=shape, dtype=np.int32)
    write_safetensors(args.output, {"tokens": tokens, "targets": targets})
    return 0


def read_inputs(path):
    data = read_safetensors(path).tensors
    arrays = []
    for name in ("tokens", "targets"):
        if name not in data:
            raise CheckError(f"'{path}' has no tensor '{name}' (it has: "
                             f"{', '.join(sorted(data)) or 'none'})")
        array = data[name]
        if array.ndim != 2 or not np.issubdtype(array.dtype, np.integer):
            raise CheckError(f"'{path}': '{name}' must be an integer [B, S] "
                             f"tensor, not {array.dtype} {list(array.shape)}")
        arrays.append(array)
    if arrays[0].shape != arrays[1].shape:
        raise CheckError(f"'{path}': tokens {list(arrays[0].shape)} and "
                         f"targets {list(arrays[1].shape)} differ in shape")
    return arrays


# ===----------------------------------------------------------------------=== #
# Hugging Face model: loading and the loss
# ===----------------------------------------------------------------------=== #

def _check_format_metadata(directory):
    """transformers (4.46) loads a safetensors file only if its
    __metadata__ has "format": "pt" (or tf, flax, mlx); without any
    __metadata__ it fails with an AttributeError. Say so plainly, since
    this is what an exporter most easily gets wrong."""
    for file in sorted(os.listdir(directory)):
        if not file.endswith(".safetensors"):
            continue
        metadata = read_safetensors(os.path.join(directory, file)).metadata
        if metadata.get("format") not in ("pt", "tf", "flax", "mlx"):
            raise CheckError(f"'{os.path.join(directory, file)}' has "
                             f"__metadata__ {metadata}: transformers loads "
                             "only files whose __metadata__ has "
                             "\"format\": \"pt\"")


def load_model(directory):
    """The model of DIR in float32 with eager attention (no sdpa on torch
    1.13; eager is also the plainest reference)."""
    if not os.path.isfile(os.path.join(directory, "config.json")):
        raise CheckError(f"'{directory}' has no config.json: not a Hugging "
                         "Face model directory")
    _check_format_metadata(directory)
    try:
        model = transformers.AutoModelForCausalLM.from_pretrained(
            directory, torch_dtype=torch.float32, attn_implementation="eager",
            local_files_only=True)
    except (OSError, ValueError, KeyError, RuntimeError) as error:
        raise CheckError(f"transformers cannot load '{directory}': "
                         f"{_short(error)}")
    arch = model.config.model_type
    if arch not in ARCHS:
        raise CheckError(f"'{directory}' holds a {arch} model; hf_check maps "
                         f"only {', '.join(ARCHS)}")
    # Training mode, as Cleave's gradient program, but with every dropout off
    # whatever the config says: Cleave's models have none.
    model.train()
    for module in model.modules():
        if isinstance(module, torch.nn.Dropout):
            module.p = 0.0
        if isinstance(getattr(module, "attention_dropout", None), float):
            module.attention_dropout = 0.0
    return model


def hf_loss(model, tokens, targets):
    """Mean cross-entropy of logits[b, s] against targets[b, s], unshifted."""
    config = model.config
    vocab = config.vocab_size
    for name, array in (("tokens", tokens), ("targets", targets)):
        if array.size and (array.min() < 0 or array.max() >= vocab):
            raise CheckError(f"input '{name}' has values in [{array.min()}, "
                             f"{array.max()}], outside the vocabulary "
                             f"[0, {vocab})")
    positions = getattr(config, "n_positions", None)
    if positions is not None and tokens.shape[1] > positions:
        raise CheckError(f"sequence length {tokens.shape[1]} exceeds the "
                         f"model's {positions} positions")
    # use_cache=False: no key/value cache is needed for one training step.
    logits = model(input_ids=torch.from_numpy(tokens.astype(np.int64)),
                   use_cache=False).logits
    return torch.nn.functional.cross_entropy(
        logits.reshape(-1, logits.shape[-1]).float(),
        torch.from_numpy(targets.astype(np.int64)).reshape(-1))


# ===----------------------------------------------------------------------=== #
# Hugging Face -> Cleave parameter mapping
# ===----------------------------------------------------------------------=== #

def _same(x):
    return x


def _transposed(x):
    # nn.Linear stores [out, in]; Cleave's linear weights are [in, out].
    return np.ascontiguousarray(x.T)


def _columns(begin, end):
    # A slice of the last dimension: c_attn's weight [h, 3h] and bias [3h].
    return lambda x: np.ascontiguousarray(x[..., begin:end])


# GPT-2's Conv1D weights are already [in, out].
_GPT2_LAYER = {
    "ln_1.weight": "ln1.scale", "ln_1.bias": "ln1.bias",
    "attn.c_proj.weight": "attn.out.weight",
    "attn.c_proj.bias": "attn.out.bias",
    "ln_2.weight": "ln2.scale", "ln_2.bias": "ln2.bias",
    "mlp.c_fc.weight": "mlp.fc.weight", "mlp.c_fc.bias": "mlp.fc.bias",
    "mlp.c_proj.weight": "mlp.proj.weight", "mlp.c_proj.bias": "mlp.proj.bias",
}
_GPT2_TOP = {"wte.weight": "embed.tokens", "ln_f.weight": "final_norm.scale",
             "ln_f.bias": "final_norm.bias"}

_LLAMA_LAYER = {
    "input_layernorm.weight": ("attn_norm.scale", _same),
    "self_attn.q_proj.weight": ("attn.q.weight", _transposed),
    "self_attn.k_proj.weight": ("attn.k.weight", _transposed),
    "self_attn.v_proj.weight": ("attn.v.weight", _transposed),
    "self_attn.o_proj.weight": ("attn.o.weight", _transposed),
    "post_attention_layernorm.weight": ("mlp_norm.scale", _same),
    "mlp.gate_proj.weight": ("mlp.gate.weight", _transposed),
    "mlp.up_proj.weight": ("mlp.up.weight", _transposed),
    "mlp.down_proj.weight": ("mlp.down.weight", _transposed),
}
_LLAMA_TOP = {
    "embed_tokens.weight": ("embed.tokens", _same),
    "norm.weight": ("final_norm.scale", _same),
    "lm_head.weight": ("head.weight", _transposed),
}

_LLAMA_BLOCK = re.compile(r"layers\.(\d+)\.(.+)")
_GPT2_BLOCK = re.compile(r"h\.(\d+)\.(.+)")


def cleave_parameters(arch, hf_name, hidden, seq):
    """The Cleave parameters that Hugging Face parameter `hf_name` becomes:
    a list of (Cleave name, transform), the transform taking the tensor (or
    its gradient) from the Hugging Face layout to Cleave's. `hidden` splits
    GPT-2's fused c_attn; `seq` is the sequence length Cleave's
    `embed.positions` has. Raises CheckError for a parameter Cleave has no
    counterpart of."""
    if arch == "gpt2":
        # A GPT2LMHeadModel's names carry `transformer.`; a bare GPT2Model's
        # (and the original checkpoints') do not.
        name = hf_name.removeprefix("transformer.")
        if name in _GPT2_TOP:
            return [(_GPT2_TOP[name], _same)]
        if name == "wpe.weight":
            # Cleave's table has only the S positions it uses.
            return [("embed.positions",
                     lambda x: np.ascontiguousarray(x[:seq]))]
        block = _GPT2_BLOCK.fullmatch(name)
        if block:
            prefix, rest = f"layers.{block[1]}.", block[2]
            if rest in _GPT2_LAYER:
                return [(prefix + _GPT2_LAYER[rest], _same)]
            if rest in ("attn.c_attn.weight", "attn.c_attn.bias"):
                kind = rest.rsplit(".", 1)[1]
                return [(f"{prefix}attn.{part}.{kind}",
                         _columns(i * hidden, (i + 1) * hidden))
                        for i, part in enumerate("qkv")]
        if name == "lm_head.weight":
            raise CheckError("the GPT-2 model has an untied lm_head; "
                             "Cleave's gpt ties its head to embed.tokens")
    else:  # llama, mistral
        # A *ForCausalLM's names carry `model.` but for lm_head.
        name = hf_name.removeprefix("model.")
        if name in _LLAMA_TOP:
            return [_LLAMA_TOP[name]]
        block = _LLAMA_BLOCK.fullmatch(name)
        if block and block[2] in _LLAMA_LAYER:
            cleave_name, transform = _LLAMA_LAYER[block[2]]
            return [(f"layers.{block[1]}.{cleave_name}", transform)]
    raise CheckError(f"{arch} parameter '{hf_name}' has no Cleave "
                     "counterpart (biases, untied GPT-2 heads and other "
                     "variants are not modelled)")


# ===----------------------------------------------------------------------=== #
# compare, loss
# ===----------------------------------------------------------------------=== #

def _scalar(outputs, path, name):
    if name not in outputs:
        raise CheckError(f"'{path}' has no tensor '{name}'")
    value = outputs[name]
    if value.size != 1:
        raise CheckError(f"'{path}': '{name}' has shape {list(value.shape)}, "
                         "not a scalar")
    return float(value.reshape(()))


def run_compare(args):
    tokens, targets = read_inputs(args.inputs)
    model = load_model(args.hf)
    loss = hf_loss(model, tokens, targets)
    loss.backward()
    hf_value = float(loss)

    arch, hidden = model.config.model_type, model.config.hidden_size
    expected = {}
    # named_parameters lists a tied parameter once (GPT-2's wte, not lm_head).
    for hf_name, param in model.named_parameters():
        if param.grad is None:
            raise CheckError(f"'{hf_name}' got no gradient from the loss")
        grad = param.grad.detach().numpy()
        for name, transform in cleave_parameters(arch, hf_name, hidden,
                                                 tokens.shape[1]):
            if "grad." + name in expected:
                raise CheckError(f"two parameters map to '{name}'")
            expected["grad." + name] = transform(grad)

    outputs = read_safetensors(args.outputs).tensors
    got = {k: v for k, v in outputs.items() if k.startswith("grad.")}
    extra = sorted(set(got) - set(expected))
    missing = sorted(set(expected) - set(got))
    if extra:
        raise CheckError(f"'{args.outputs}' has gradients of parameters the "
                         f"{arch} model does not have: {', '.join(extra)}")
    if missing:
        raise CheckError(f"'{args.outputs}' lacks the gradients of: "
                         f"{', '.join(missing)}")

    failures = 0
    cleave_value = _scalar(outputs, args.outputs, "loss")
    loss_error = abs(cleave_value - hf_value)
    loss_ok = loss_error <= args.loss_rtol * abs(hf_value)
    failures += not loss_ok
    print(f"loss: cleave {cleave_value:#.7g} hf {hf_value:#.7g} relative "
          f"{loss_error / max(abs(hf_value), 1e-30):.2e} "
          f"{'ok' if loss_ok else 'MISMATCH'}")

    # Some gradients are zero in exact arithmetic: GPT-2's attn.k.bias adds
    # the same q.b to every score of a query, which softmax ignores. Both
    # programs then hold only rounding noise (~1e-8), which no relative test
    # can match, so each tensor's error is measured against at least
    # --grad-floor times the norm of all the gradients together.
    total = math.sqrt(sum(float(np.sum(np.square(g, dtype=np.float64)))
                          for g in expected.values()))
    floor = args.grad_floor * total
    for name in sorted(expected):
        want = expected[name].astype(np.float64)
        have = got[name].astype(np.float64)
        # A padded vocabulary (cleave-import --vocab-multiple) adds rows or
        # columns past the model's: their gradient must be zero.
        if have.ndim == want.ndim and have.shape != want.shape and all(
                h >= w for h, w in zip(have.shape, want.shape)):
            inside = tuple(slice(0, w) for w in want.shape)
            padding = have.copy()
            padding[inside] = 0
            if np.any(padding):
                print(f"{name}: the padding's gradient is not zero MISMATCH")
                failures += 1
                continue
            have = have[inside]
        if have.shape != want.shape:
            print(f"{name}: shape {list(have.shape)}, expected "
                  f"{list(want.shape)} MISMATCH")
            failures += 1
            continue
        reference = np.linalg.norm(want)
        difference = np.linalg.norm(have - want)
        scale = max(reference, floor)
        relative = difference / scale if scale else (
            0.0 if difference == 0 else math.inf)
        ok = relative <= args.grad_rtol
        failures += not ok
        note = f" (|hf| {reference:.3e}"
        note += f" < floor {floor:.3e})" if reference < floor else ")"
        print(f"{name} {list(want.shape)}: relative L2 {relative:.2e}{note} "
              f"{'ok' if ok else 'MISMATCH'}")

    if failures:
        print(f"hf_check: FAILED: {failures} mismatch(es) (loss rtol "
              f"{args.loss_rtol:g}, gradient rtol {args.grad_rtol:g})")
        return 1
    print(f"hf_check: loss {cleave_value:#.7g} vs {hf_value:#.7g}, "
          f"{len(expected)} gradients within {args.grad_rtol:g}")
    return 0


def run_checkpoint_params(args):
    """Assembles the parameters of a sharded checkpoint (any mesh), the
    tensors --like names, into one file: the optimizer state stays out."""
    checkpoint = read_checkpoint(args.checkpoint)
    names = read_safetensors(args.like).tensors
    missing = [name for name in names if name not in checkpoint.tensors]
    if missing:
        raise CheckError(f"'{args.checkpoint}' lacks {', '.join(missing)}")
    write_safetensors(args.output,
                      {name: checkpoint.tensors[name] for name in names})
    print(f"hf_check: wrote {len(names)} parameters to {args.output}")
    return 0


def run_make_tokens(args):
    """A token file (llm.c's header, 2-byte tokens) of uniform random tokens
    below --vocab."""
    rng = np.random.default_rng(args.seed)
    tokens = rng.integers(0, args.vocab, size=args.count).astype("<u2")
    header = np.zeros(256, dtype="<i4")
    header[:3] = (20240520, 1, args.count)
    with open(args.output, "wb") as file:
        file.write(header.tobytes() + tokens.tobytes())
    return 0


def run_set_config(args):
    """Rewrites fields of DIR/config.json (KEY=JSON; JSON null removes the
    field's value), for the tests of refused configurations."""
    import json
    path = os.path.join(args.dir, "config.json")
    with open(path) as file:
        config = json.load(file)
    for assignment in args.fields:
        key, _, value = assignment.partition("=")
        config[key] = json.loads(value)
    with open(path, "w") as file:
        json.dump(config, file, indent=2)
    return 0


def run_loss(args):
    tokens, targets = read_inputs(args.inputs)
    model = load_model(args.hf)
    with torch.no_grad():
        value = float(hf_loss(model, tokens, targets))
    # '#' keeps trailing zeros: always 7 significant digits.
    print(f"hf_check: loss {value:#.7g}")
    if args.expect is None:
        return 0
    error = abs(value - args.expect)
    if not error <= args.rtol * abs(args.expect):
        print(f"hf_check: MISMATCH: expected {args.expect:#.7g} within "
              f"relative {args.rtol:g}, got {value:#.7g} (relative "
              f"{error / max(abs(args.expect), 1e-30):.2e})")
        return 1
    return 0


# ===----------------------------------------------------------------------=== #
# Tokenizers
# ===----------------------------------------------------------------------=== #

def run_make_tokenizer(args):
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers
    from tokenizers import processors, trainers

    # GPT-2's layout: byte-level pre-tokenizer (its regex, no prefix space),
    # byte-level decoder, and the byte-level post-processor, which only
    # fixes offsets.
    tokenizer = Tokenizer(models.BPE())
    tokenizer.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tokenizer.decoder = decoders.ByteLevel()
    tokenizer.post_processor = processors.ByteLevel(trim_offsets=False)
    # All 256 bytes are in the vocabulary whatever the text, so any text
    # encodes; the rest of --vocab are merges.
    trainer = trainers.BpeTrainer(
        vocab_size=args.vocab, show_progress=False,
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet())
    try:
        tokenizer.train([args.text], trainer)
    except Exception as error:  # tokenizers raises plain Exceptions
        raise CheckError(f"cannot train on '{args.text}': {error}")
    if args.special:
        # After the trained ids, as GPT-2's <|endoftext|> is.
        tokenizer.add_special_tokens(args.special)
    wrapped = transformers.PreTrainedTokenizerFast(tokenizer_object=tokenizer)
    wrapped.save_pretrained(args.output)
    print(f"hf_check: wrote a byte-level BPE tokenizer of "
          f"{tokenizer.get_vocab_size()} tokens to {args.output}")
    return 0


_TOKEN_HEADERS = {20240520: (1, "<u2"), 20240801: (7, "<u4")}


def read_token_file(path):
    try:
        with open(path, "rb") as file:
            content = file.read()
    except OSError as error:
        raise CheckError(f"cannot read '{path}': {error.strerror}")
    if len(content) < 1024:
        raise CheckError(f"'{path}' has {len(content)} bytes, less than the "
                         "1024-byte header")
    header = np.frombuffer(content[:1024], dtype="<i4")
    magic, version, count = (int(v) for v in header[:3])
    if magic not in _TOKEN_HEADERS or _TOKEN_HEADERS[magic][0] != version:
        raise CheckError(f"'{path}': header magic {magic} version {version} "
                         "is neither 20240520 1 (uint16) nor 20240801 7 "
                         "(uint32)")
    dtype = np.dtype(_TOKEN_HEADERS[magic][1])
    if len(content) - 1024 != count * dtype.itemsize:
        raise CheckError(f"'{path}': the header counts {count} tokens of "
                         f"{dtype.itemsize} bytes but {len(content) - 1024} "
                         "bytes follow it")
    return np.frombuffer(content[1024:], dtype=dtype).astype(np.int64)


def run_tokenize(args):
    try:
        with open(args.text, "rb") as file:
            # Bytes, then UTF-8: text mode would turn \r\n into \n.
            text = file.read().decode("utf-8")
    except OSError as error:
        raise CheckError(f"cannot read '{args.text}': {error.strerror}")
    except UnicodeDecodeError as error:
        raise CheckError(f"'{args.text}' is not UTF-8: {error}")
    if not os.path.isdir(args.tokenizer):
        raise CheckError(f"tokenizer directory '{args.tokenizer}' does not "
                         "exist")
    try:
        tokenizer = transformers.AutoTokenizer.from_pretrained(
            args.tokenizer, local_files_only=True)
    except (OSError, ValueError) as error:
        # AutoTokenizer needs tokenizer_config.json (or a config.json with a
        # model_type) beside tokenizer.json to pick the tokenizer class.
        raise CheckError(f"transformers cannot load the tokenizer "
                         f"'{args.tokenizer}' (AutoTokenizer needs "
                         f"tokenizer_config.json or config.json): "
                         f"{_short(error)}")
    # verbose=False: no "longer than the model's maximum length" warning.
    want = tokenizer.encode(text, add_special_tokens=False, verbose=False)
    have = read_token_file(args.tokens)

    common = min(len(want), len(have))
    differ = np.nonzero(np.asarray(want[:common]) != have[:common])[0]
    if differ.size == 0 and len(want) == len(have):
        print(f"hf_check: {len(want)} tokens match")
        return 0
    first = int(differ[0]) if differ.size else common
    begin = max(0, first - 3)

    def show(ids):
        # Each id with its text; the first difference between >> <<.
        return " ".join(
            (">>{}<<" if begin + n == first else "{}").format(
                f"{i}({tokenizer.decode([i])!r})")
            for n, i in enumerate(ids))

    print(f"hf_check: MISMATCH: transformers gives {len(want)} tokens, "
          f"'{args.tokens}' holds {len(have)}; first difference at token "
          f"{first}")
    print(f"  transformers: ... {show(want[begin:first + 4])}")
    print(f"  token file:   ... {show(int(i) for i in have[begin:first + 4])}")
    return 1


# ===----------------------------------------------------------------------=== #
# Command line
# ===----------------------------------------------------------------------=== #

def _positive(text):
    value = int(text)
    if value <= 0:
        raise argparse.ArgumentTypeError(f"{text} is not positive")
    return value


def _non_negative_float(text):
    value = float(text)
    if not value >= 0 or math.isinf(value):
        raise argparse.ArgumentTypeError(f"{text} is not a finite number "
                                         ">= 0")
    return value


def build_parser():
    parser = argparse.ArgumentParser(
        description="Check Cleave against Hugging Face transformers.")
    commands = parser.add_subparsers(dest="command", required=True)

    make = commands.add_parser("make", help="save a tiny random HF model")
    make.add_argument("--arch", required=True, choices=ARCHS)
    make.add_argument("--seed", type=int, required=True)
    make.add_argument("--vocab", type=_positive, default=96)
    make.add_argument("--dtype", choices=("f32", "bf16"), default="f32")
    make.add_argument("--sharded", action="store_true",
                      help="several safetensors files of at most 20 KB")
    make.add_argument("-o", dest="output", required=True, metavar="DIR")
    make.set_defaults(run=run_make)

    inputs = commands.add_parser("inputs", help="write random tokens and "
                                 "targets")
    inputs.add_argument("--vocab", type=_positive, required=True)
    inputs.add_argument("--batch", type=_positive, required=True)
    inputs.add_argument("--seq", type=_positive, required=True)
    inputs.add_argument("--seed", type=int, required=True)
    inputs.add_argument("-o", dest="output", required=True,
                        metavar="FILE.safetensors")
    inputs.set_defaults(run=run_inputs)

    compare = commands.add_parser(
        "compare", help="check Cleave's loss and gradients against HF's")
    compare.add_argument("--hf", required=True, metavar="DIR")
    compare.add_argument("--inputs", required=True, metavar="FILE")
    compare.add_argument("--outputs", required=True, metavar="FILE",
                         help="Cleave's `loss` and `grad.*`")
    compare.add_argument("--loss-rtol", type=_non_negative_float,
                         default=1e-5)
    compare.add_argument("--grad-rtol", type=_non_negative_float,
                         default=1e-4)
    compare.add_argument("--grad-floor", type=_non_negative_float,
                         default=1e-3, help="errors are relative to at least "
                         "this times the norm of all gradients (default "
                         "1e-3), for gradients that are zero but for "
                         "rounding")
    compare.set_defaults(run=run_compare)

    loss = commands.add_parser("loss", help="print the HF model's loss")
    loss.add_argument("--hf", required=True, metavar="DIR")
    loss.add_argument("--inputs", required=True, metavar="FILE")
    loss.add_argument("--expect", type=float,
                      help="fail unless the loss is this within --rtol")
    loss.add_argument("--rtol", type=_non_negative_float, default=1e-5)
    loss.set_defaults(run=run_loss)

    make_tokenizer = commands.add_parser(
        "make-tokenizer", help="train a byte-level BPE tokenizer")
    make_tokenizer.add_argument("--text", required=True, metavar="FILE")
    make_tokenizer.add_argument("--vocab", type=_positive, default=300)
    make_tokenizer.add_argument("--special", action="append", default=[],
                                metavar="TOKEN",
                                help="a special token to append (repeatable)")
    make_tokenizer.add_argument("-o", dest="output", required=True,
                                metavar="DIR")
    make_tokenizer.set_defaults(run=run_make_tokenizer)

    make_tokens = commands.add_parser(
        "make-tokens", help="write a token file of random tokens")
    make_tokens.add_argument("--vocab", type=_positive, required=True)
    make_tokens.add_argument("--count", type=_positive, required=True)
    make_tokens.add_argument("--seed", type=int, required=True)
    make_tokens.add_argument("-o", dest="output", required=True)
    make_tokens.set_defaults(run=run_make_tokens)

    set_config = commands.add_parser(
        "set-config", help="rewrite fields of a model's config.json")
    set_config.add_argument("--dir", required=True)
    set_config.add_argument("fields", nargs="+", metavar="KEY=JSON")
    set_config.set_defaults(run=run_set_config)

    params = commands.add_parser(
        "checkpoint-params",
        help="a Cleave checkpoint's parameters as one safetensors file")
    params.add_argument("--checkpoint", required=True, metavar="DIR")
    params.add_argument("--like", required=True, metavar="FILE",
                        help="a parameter file naming the tensors to keep")
    params.add_argument("-o", dest="output", required=True, metavar="FILE")
    params.set_defaults(run=run_checkpoint_params)

    tokenize = commands.add_parser(
        "tokenize", help="check a Cleave token file against transformers")
    tokenize.add_argument("--tokenizer", required=True, metavar="DIR")
    tokenize.add_argument("--text", required=True, metavar="FILE")
    tokenize.add_argument("--tokens", required=True, metavar="FILE.bin")
    tokenize.set_defaults(run=run_tokenize)
    return parser


def main(argv=None):
    args = build_parser().parse_args(argv)
    # "Loading checkpoint shards" progress bars would fill the test logs.
    transformers.utils.logging.disable_progress_bar()
    try:
        return args.run(args)
    except (CheckError, ReferenceError) as error:
        print(f"error: {error}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
