//===- DataLoader.h - Deterministic batches from token files ----*- C++ -*-===//
//
// Training data is a token file: little-endian uint16 (or, for
// vocabularies past 65536, uint32) tokens after the header llm.c writes
// (256 little-endian int32: a magic number, a version that with it gives
// the token width, and the token count), which `cleavec prepare-text`
// writes too. A file without the header (nanoGPT's .bin layout) is read
// at the token width its reader is told (--token-bytes).
//
// A batch is a function of (seed, step, row) only: row b of step s starts at
// an offset drawn from a counter-based hash of (seed, s, b). No generator
// state is carried between steps, so a run resumed from a checkpoint at step
// s reads exactly the batches the uninterrupted run would have, and a
// micro-batch or data-parallel rank computes its rows of the global batch
// without generating the others.
//
//===----------------------------------------------------------------------===//

#ifndef CLEAVE_RUNTIME_DATALOADER_H
#define CLEAVE_RUNTIME_DATALOADER_H

#include "cleave/runtime/Status.h"

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

namespace cleave::rt {

/// How many bytes each token takes in a token file.
enum class TokenWidth { U16, U32 };

/// Bytes per token of `width`.
inline uint64_t getTokenBytes(TokenWidth width) {
  return width == TokenWidth::U16 ? 2 : 4;
}
/// The width `--token-bytes` names: "2" or "4"; any other is an error.
Status parseTokenWidth(const std::string &value,
                       std::optional<TokenWidth> &width);

/// The token file header (llm.c's): its size, and the magic number and
/// version of each token width.
constexpr uint64_t kTokenHeaderBytes = 256 * 4;
constexpr int32_t kTokenMagicU16 = 20240520, kTokenVersionU16 = 1;
constexpr int32_t kTokenMagicU32 = 20240801, kTokenVersionU32 = 7;

/// A token file read whole into memory.
class TokenFile {
public:
  /// Reads `path`: after its header at the width the header gives, which
  /// `width`, when given, must match; without a header at `width`, which
  /// must then be given. Fails, naming the file, when it is missing or
  /// empty, its header is of another version or counts other tokens than
  /// follow it, or its size is not a multiple of the token width.
  static Status open(const std::string &path, std::optional<TokenWidth> width,
                     TokenFile &file);

  /// The number of tokens.
  uint64_t size() const { return count; }
  /// Token `index` (< size()).
  uint32_t get(uint64_t index) const {
    const uint8_t *p = bytes.data() + dataOffset + index * bytesPerToken();
    uint32_t value = uint32_t(p[0]) | uint32_t(p[1]) << 8;
    if (tokenWidth == TokenWidth::U32)
      value |= uint32_t(p[2]) << 16 | uint32_t(p[3]) << 24;
    return value;
  }
  uint32_t operator[](uint64_t index) const { return get(index); }

  TokenWidth width() const { return tokenWidth; }
  /// Whether the file has llm.c's header.
  bool hasHeader() const { return dataOffset != 0; }
  const std::string &path() const { return filePath; }

  /// Fails, naming the file, the first offending position and its value,
  /// when a token is >= `vocab` (an embedding lookup would read out of
  /// bounds).
  Status checkVocabulary(int64_t vocab) const;

private:
  uint64_t bytesPerToken() const { return getTokenBytes(tokenWidth); }

  std::string filePath;
  TokenWidth tokenWidth = TokenWidth::U16;
  uint64_t count = 0;
  /// Where the tokens start: after the header, if any.
  uint64_t dataOffset = 0;
  /// The raw little-endian file contents; decoding on access keeps uint16
  /// files at their on-disk size in memory.
  std::vector<uint8_t> bytes;
};

/// The first offset of row `row` of step `step` (counted from 1): uniform
/// over [0, file size - seq - 1], a function of (seed, step, row) only.
/// Requires tokenCount >= seq + 1 (getBatch checks it).
uint64_t getBatchOffset(uint64_t tokenCount, uint64_t seed, uint64_t step,
                        int64_t seq, int64_t row);

/// Fills `tokens[batch * seq]` and `targets[batch * seq]` (row-major) with
/// the global batch of optimizer step `step` (counted from 1): row b is
/// file[start .. start + seq) and targets the same span shifted by one
/// token, start = getBatchOffset(..., b). Fails if the file holds fewer than
/// seq + 1 tokens or a token does not fit in int32.
Status getBatch(const TokenFile &file, uint64_t seed, uint64_t step,
                int64_t batch, int64_t seq, int32_t *tokens, int32_t *targets);

/// Rows [rowOffset, rowOffset + rows) of the global batch of step `step`,
/// exactly as getBatch computes them: micro-batch j of m passes the range
/// getMicroBatchRows returns, and the micro-batches concatenated equal the
/// global batch.
Status getBatch(const TokenFile &file, uint64_t seed, uint64_t step,
                int64_t rowOffset, int64_t rows, int64_t seq, int32_t *tokens,
                int32_t *targets);

/// A half-open range of global batch rows.
struct RowRange {
  int64_t begin = 0;
  int64_t end = 0;
  int64_t size() const { return end - begin; }
};

/// The global rows of micro-batch `index` of `count` (0 <= index < count):
/// [index * batch / count, (index + 1) * batch / count). The ranges tile
/// [0, batch) and differ in size by at most one row.
RowRange getMicroBatchRows(int64_t batch, int64_t count, int64_t index);

} // namespace cleave::rt

#endif // CLEAVE_RUNTIME_DATALOADER_H
