//===- Tokens.cpp - Preparing token files ---------------------------------===//

#include "cleave/runtime/Tokens.h"

#include "cleave/runtime/DataLoader.h"

#include <cerrno>
#include <climits>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <vector>

namespace cleave::rt {

Status prepareByteTokens(const std::string &textPath,
                         const std::string &outPath, uint64_t *count) {
  std::error_code error;
  if (std::filesystem::is_directory(textPath, error))
    return Status::error("cannot read '" + textPath + "': it is a directory");
  std::FILE *in = std::fopen(textPath.c_str(), "rb");
  if (!in)
    return Status::error("cannot open '" + textPath +
                         "': " + std::strerror(errno));
  std::string temporary = outPath + ".tmp";
  std::FILE *out = std::fopen(temporary.c_str(), "wb");
  if (!out) {
    Status status = Status::error("cannot create '" + temporary +
                                  "': " + std::strerror(errno));
    std::fclose(in);
    return status;
  }

  // The header first, its count filled in at the end.
  auto writeHeader = [&](uint64_t tokens) {
    std::vector<unsigned char> header(kTokenHeaderBytes, 0);
    for (auto [slot, value] : {std::pair(0, int64_t(kTokenMagicU16)),
                               std::pair(1, int64_t(kTokenVersionU16)),
                               std::pair(2, int64_t(tokens))})
      for (int i = 0; i < 4; ++i)
        header[4 * slot + i] = static_cast<unsigned char>(value >> (8 * i));
    return std::fwrite(header.data(), 1, header.size(), out) == header.size();
  };
  bool headerOk = writeHeader(0);
  int headerErrno = headerOk ? 0 : errno;

  // Stream in chunks: the input may be far larger than memory needs to be.
  constexpr size_t kChunk = 1 << 16;
  std::vector<unsigned char> bytes(kChunk);
  std::vector<unsigned char> tokens(2 * kChunk);
  uint64_t written = 0;
  bool readOk = true, writeOk = true;
  int writeErrno = 0;
  while (true) {
    size_t got = std::fread(bytes.data(), 1, kChunk, in);
    for (size_t i = 0; i < got; ++i) {
      tokens[2 * i] = bytes[i]; // Little-endian: low byte first.
      tokens[2 * i + 1] = 0;
    }
    if (got > 0 && std::fwrite(tokens.data(), 1, 2 * got, out) != 2 * got) {
      writeOk = false;
      writeErrno = errno;
      break;
    }
    written += got;
    // The header's count is an int32: stop before writing more.
    if (written > uint64_t(INT32_MAX))
      break;
    if (got < kChunk) {
      readOk = !std::ferror(in);
      break;
    }
  }
  std::fclose(in);
  bool tooMany = written > uint64_t(INT32_MAX);
  if (writeOk && headerOk && !tooMany) {
    headerOk = std::fseek(out, 0, SEEK_SET) == 0 && writeHeader(written);
    headerErrno = headerOk ? 0 : errno;
  }
  if (!headerOk && writeOk) {
    writeOk = false;
    writeErrno = headerErrno;
  }
  // fclose flushes the last buffered chunk, so it can fail too.
  if (std::fclose(out) != 0 && writeOk) {
    writeOk = false;
    writeErrno = errno;
  }

  Status status = Status::success();
  if (!readOk)
    status = Status::error("cannot read '" + textPath + "'");
  else if (!writeOk)
    status = Status::error("cannot write '" + temporary +
                           "': " + std::strerror(writeErrno));
  else if (written == 0)
    status = Status::error("cannot make tokens from '" + textPath +
                           "': the file is empty");
  else if (tooMany)
    status = Status::error("cannot make tokens from '" + textPath +
                           "': it holds more than the 2^31 - 1 tokens a "
                           "token file's header counts; split it");
  else if (std::rename(temporary.c_str(), outPath.c_str()) != 0)
    status = Status::error("cannot rename '" + temporary + "' to '" +
                           outPath + "': " + std::strerror(errno));
  if (!status.ok()) {
    std::remove(temporary.c_str());
    return status;
  }
  if (count)
    *count = written;
  return Status::success();
}

} // namespace cleave::rt
