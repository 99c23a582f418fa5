//===- Tokens.h - Preparing token files -------------------------*- C++ -*-===//
//
// Byte-level tokenization: every byte of the input is one token (vocabulary
// 256), written as little-endian uint16 after llm.c's header
// (DataLoader.h), so the result loads like any other token file. It needs no
// tokenizer, which makes it the way to train on an arbitrary text file.
//
//===----------------------------------------------------------------------===//

#ifndef CLEAVE_RUNTIME_TOKENS_H
#define CLEAVE_RUNTIME_TOKENS_H

#include "cleave/runtime/Status.h"

#include <cstdint>
#include <string>

namespace cleave::rt {

/// Writes each byte of `textPath` as one uint16 token to `outPath`, after
/// the token file header (DataLoader.h) that counts them; more than
/// 2^31 - 1 tokens are refused (the header's count is an int32). The
/// output appears atomically (written to `outPath`.tmp, then renamed), so an
/// interrupted run never leaves a truncated token file. An empty input is an
/// error. On success `*count` (if not null) is the number of tokens written.
Status prepareByteTokens(const std::string &textPath,
                         const std::string &outPath, uint64_t *count);

} // namespace cleave::rt

#endif // CLEAVE_RUNTIME_TOKENS_H
