//===- DataLoader.cpp - Deterministic batches from token files ------------===//

#include "cleave/runtime/DataLoader.h"

#include <limits>

#include "Support.h"

namespace cleave::rt {

namespace {
/// Separates the data stream from other users of the same seed (parameter
/// init hashes the seed with a parameter name), so a batch offset never
/// correlates with an initial weight.
constexpr uint64_t kDataStream = 0x6461746173747265ULL; // "datastre"
} // namespace

namespace {
int32_t readInt32(const std::vector<uint8_t> &bytes, size_t offset) {
  uint32_t value = 0;
  for (int i = 0; i < 4; ++i)
    value |= uint32_t(bytes[offset + i]) << (8 * i);
  return static_cast<int32_t>(value);
}
} // namespace

Status parseTokenWidth(const std::string &value,
                       std::optional<TokenWidth> &width) {
  if (value != "2" && value != "4")
    return Status::error("--token-bytes must be 2 or 4, got '" + value + "'");
  width = value == "2" ? TokenWidth::U16 : TokenWidth::U32;
  return Status::success();
}

Status TokenFile::open(const std::string &path, std::optional<TokenWidth> width,
                       TokenFile &file) {
  std::vector<uint8_t> bytes;
  if (Status status = readFileBytes(path, bytes, "token file "); !status)
    return status;
  uint64_t size = bytes.size();
  if (size == 0)
    return Status::error("token file '" + path + "' is empty");
  uint64_t offset = 0;
  int32_t magic = size >= 4 ? readInt32(bytes, 0) : 0;
  if (magic == kTokenMagicU16 || magic == kTokenMagicU32) {
    if (size < kTokenHeaderBytes)
      return Status::error("token file '" + path + "' ends inside its " +
                           std::to_string(kTokenHeaderBytes) +
                           "-byte header (a truncated file?)");
    TokenWidth headerWidth =
        magic == kTokenMagicU16 ? TokenWidth::U16 : TokenWidth::U32;
    int32_t expected =
        magic == kTokenMagicU16 ? kTokenVersionU16 : kTokenVersionU32;
    int32_t version = readInt32(bytes, 4);
    if (version != expected)
      return Status::error(
          "token file '" + path + "' has version " + std::to_string(version) +
          " of the header with magic " + std::to_string(magic) +
          "; Cleave reads version " + std::to_string(expected));
    uint64_t tokenBytes = getTokenBytes(headerWidth);
    if (width && *width != headerWidth)
      return Status::error(
          "--token-bytes " + std::to_string(getTokenBytes(*width)) +
          " was given, but token file '" + path + "' has a header for " +
          std::to_string(tokenBytes) + "-byte tokens");
    int32_t count = readInt32(bytes, 8);
    uint64_t following = size - kTokenHeaderBytes;
    if (count < 0 || following != uint64_t(count) * tokenBytes)
      return Status::error("token file '" + path + "': its header counts " +
                           std::to_string(count) + " tokens of " +
                           std::to_string(tokenBytes) + " bytes, but " +
                           std::to_string(following) +
                           " bytes follow it (a truncated or damaged file?)");
    if (count == 0)
      return Status::error("token file '" + path + "' holds no tokens");
    width = headerWidth;
    offset = kTokenHeaderBytes;
  } else if (!width) {
    return Status::error(
        "token file '" + path +
        "' has no header: give its token width "
        "with --token-bytes 2 or 4 (a headerless nanoGPT file), or write it "
        "with cleavec prepare-text");
  }
  uint64_t tokenBytes = getTokenBytes(*width);
  if ((size - offset) % tokenBytes != 0)
    return Status::error(
        "token file '" + path + "' has " + std::to_string(size) +
        " bytes, not a multiple of the " + std::to_string(tokenBytes) +
        "-byte token width (wrong token width, or a truncated file?)");

  file.filePath = path;
  file.tokenWidth = *width;
  file.dataOffset = offset;
  file.count = (size - offset) / tokenBytes;
  file.bytes = std::move(bytes);
  return Status::success();
}

Status TokenFile::checkVocabulary(int64_t vocab) const {
  if (vocab <= 0)
    return Status::error("cannot check token file '" + filePath +
                         "' against vocabulary size " + std::to_string(vocab));
  // A 2-byte file was tokenized for a vocabulary of at most 65536 (llm.c's
  // convention): not this model's.
  if (tokenWidth == TokenWidth::U16 && hasHeader() && vocab > 65536)
    return Status::error("token file '" + filePath +
                         "' holds 2-byte tokens, but the model's vocabulary "
                         "of " +
                         std::to_string(vocab) +
                         " needs 4-byte tokens (a file tokenized for "
                         "another model?)");
  for (uint64_t i = 0; i < count; ++i) {
    uint32_t token = get(i);
    if (static_cast<int64_t>(token) >= vocab)
      return Status::error("token file '" + filePath + "': token " +
                           std::to_string(token) + " at position " +
                           std::to_string(i) +
                           " is outside the model's vocabulary of " +
                           std::to_string(vocab));
  }
  return Status::success();
}

uint64_t getBatchOffset(uint64_t tokenCount, uint64_t seed, uint64_t step,
                        int64_t seq, int64_t row) {
  // Chaining the mix per counter (rather than adding them) keeps (step, row)
  // and (step + 1, row - 1) apart.
  uint64_t bits = mixBits(mixBits(mixBits(seed ^ kDataStream) + step) +
                      static_cast<uint64_t>(row));
  // Starts 0 .. tokenCount - seq - 1 leave room for seq tokens plus the one
  // extra target. Multiply-high maps the hash onto them with a bias below
  // starts / 2^64, far under anything a training run could observe.
  uint64_t starts = tokenCount - static_cast<uint64_t>(seq);
  return static_cast<uint64_t>(
      (static_cast<unsigned __int128>(bits) * starts) >> 64);
}

Status getBatch(const TokenFile &file, uint64_t seed, uint64_t step,
                int64_t batch, int64_t seq, int32_t *tokens,
                int32_t *targets) {
  return getBatch(file, seed, step, /*rowOffset=*/0, /*rows=*/batch, seq,
                  tokens, targets);
}

Status getBatch(const TokenFile &file, uint64_t seed, uint64_t step,
                int64_t rowOffset, int64_t rows, int64_t seq, int32_t *tokens,
                int32_t *targets) {
  if (step == 0)
    return Status::error("batch from '" + file.path() +
                         "': steps are counted from 1, got step 0");
  if (rows <= 0 || seq <= 0 || rowOffset < 0)
    return Status::error("batch from '" + file.path() + "': invalid shape (" +
                         std::to_string(rows) + " rows from row " +
                         std::to_string(rowOffset) + ", sequence length " +
                         std::to_string(seq) + ")");
  uint64_t needed = static_cast<uint64_t>(seq) + 1;
  if (file.size() < needed)
    return Status::error("token file '" + file.path() + "' has " +
                         std::to_string(file.size()) +
                         " tokens; sequence length " + std::to_string(seq) +
                         " needs at least " + std::to_string(needed) +
                         " (the targets are shifted by one)");
  constexpr uint32_t kMaxToken = std::numeric_limits<int32_t>::max();
  for (int64_t r = 0; r < rows; ++r) {
    uint64_t start = getBatchOffset(file.size(), seed, step, seq, rowOffset + r);
    int32_t *rowTokens = tokens + r * seq;
    int32_t *rowTargets = targets + r * seq;
    // Each token is a target of the previous position, so decode seq + 1
    // tokens once and write each into both arrays.
    for (int64_t i = 0; i <= seq; ++i) {
      uint32_t token = file[start + static_cast<uint64_t>(i)];
      if (token > kMaxToken)
        return Status::error("token file '" + file.path() + "': token " +
                             std::to_string(token) + " at position " +
                             std::to_string(start + i) +
                             " does not fit in int32");
      if (i < seq)
        rowTokens[i] = static_cast<int32_t>(token);
      if (i > 0)
        rowTargets[i - 1] = static_cast<int32_t>(token);
    }
  }
  return Status::success();
}

RowRange getMicroBatchRows(int64_t batch, int64_t count, int64_t index) {
  return {index * batch / count, (index + 1) * batch / count};
}

} // namespace cleave::rt
