#!/usr/bin/env python3
"""Tokenizes a text file with a Hugging Face tokenizer into a token file.

  tokenize.py --tokenizer DIR --text FILE -o TOKENS.bin

`cleavec prepare-text FILE --tokenizer DIR -o TOKENS.bin` runs this. DIR
holds the checkpoint's `tokenizer.json`; the text (UTF-8) is encoded whole,
without special tokens, by the `tokenizers` library, so the ids are those
transformers' fast tokenizer gives. The file gets llm.c's header (256
little-endian int32: magic, version, count) and 2-byte tokens when the
vocabulary fits in 65536 ids, 4-byte ones otherwise. Exits 1 with a message
on any error.
"""

import argparse
import os
import struct
import sys

MAGIC_U16, VERSION_U16 = 20240520, 1
MAGIC_U32, VERSION_U32 = 20240801, 7
HEADER_INTS = 256


def fail(message):
    print(f"cleavec: error: {message}", file=sys.stderr)
    sys.exit(1)


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tokenizer", required=True)
    parser.add_argument("--text", required=True)
    parser.add_argument("-o", dest="output", required=True)
    args = parser.parse_args()

    try:
        from tokenizers import Tokenizer
    except ImportError:
        fail(f"prepare-text --tokenizer needs the Python package 'tokenizers' "
             f"for {sys.executable} (pip install tokenizers, or set "
             f"CLEAVE_PYTHON to an interpreter that has it)")
    path = os.path.join(args.tokenizer, "tokenizer.json")
    if not os.path.isfile(path):
        fail(f"'{path}' does not exist: --tokenizer takes a directory with "
             f"the checkpoint's tokenizer.json")
    try:
        tokenizer = Tokenizer.from_file(path)
    except Exception as error:  # The library raises its own exception types.
        fail(f"'{path}' is not a tokenizer the tokenizers library reads: "
             f"{error}")
    try:
        with open(args.text, "r", encoding="utf-8", newline="") as file:
            text = file.read()
    except (OSError, UnicodeDecodeError) as error:
        fail(f"cannot read '{args.text}' as UTF-8 text: {error}")
    if not text:
        fail(f"'{args.text}' is empty")

    ids = tokenizer.encode(text, add_special_tokens=False).ids
    vocab = tokenizer.get_vocab_size(with_added_tokens=True)
    wide = vocab > 65536
    if len(ids) >= 2**31:
        fail(f"'{args.text}' has {len(ids)} tokens; a token file holds "
             f"fewer than 2^31")
    header = [0] * HEADER_INTS
    header[0], header[1] = ((MAGIC_U32, VERSION_U32) if wide
                            else (MAGIC_U16, VERSION_U16))
    header[2] = len(ids)
    temporary = args.output + ".tmp"
    try:
        with open(temporary, "wb") as file:
            file.write(struct.pack(f"<{HEADER_INTS}i", *header))
            file.write(struct.pack(f"<{len(ids)}{'I' if wide else 'H'}",
                                   *ids))
        os.replace(temporary, args.output)
    except OSError as error:
        fail(f"cannot write '{args.output}': {error}")
    print(f"cleavec: wrote {len(ids)} tokens (vocabulary {vocab}, "
          f"{4 if wide else 2}-byte) to {args.output}")


if __name__ == "__main__":
    main()
