//===- Support.h - Small helpers shared by runtime sources ------*- C++ -*-===//
//
// Internal to the runtime library: counter-based hashing, the number
// parsing of the generated programs' command lines, and reading a file.
//
//===----------------------------------------------------------------------===//

#ifndef CLEAVE_RUNTIME_SRC_SUPPORT_H
#define CLEAVE_RUNTIME_SRC_SUPPORT_H

#include <cerrno>
#include <cmath>
#include <cstdint>
#include <cstdlib>
#include <optional>
#include <string>
#include <vector>

#include "cleave/runtime/Status.h"

namespace cleave::rt {

/// Reads the whole file at `path` into `bytes`; errors name it as
/// `what` + 'path' ("token file 'x.bin'"). Defined in Safetensors.cpp.
Status readFileBytes(const std::string &path, std::vector<uint8_t> &bytes,
                     const std::string &what);

/// SplitMix64's finalizer: a bijective 64-bit mix with full avalanche, so
/// nearby counters give unrelated bits. Parameter init and the data loader
/// draw their values from it; changing it changes every run.
inline uint64_t mixBits(uint64_t x) {
  x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ULL;
  x = (x ^ (x >> 27)) * 0x94d049bb133111ebULL;
  return x ^ (x >> 31);
}

/// A whole decimal number in [0, limit]; nullopt for anything else (signs,
/// spaces, overflow).
inline std::optional<uint64_t> parseCount(const std::string &text,
                                          uint64_t limit = UINT64_MAX) {
  if (text.empty() || text.size() > 20 ||
      text.find_first_not_of("0123456789") != std::string::npos)
    return std::nullopt;
  errno = 0;
  unsigned long long value = std::strtoull(text.c_str(), nullptr, 10);
  if (errno == ERANGE || value > limit)
    return std::nullopt;
  return value;
}

/// A finite floating-point number; nullopt for anything else.
inline std::optional<double> parseNumber(const std::string &text) {
  if (text.empty())
    return std::nullopt;
  char *end = nullptr;
  errno = 0;
  double value = std::strtod(text.c_str(), &end);
  if (*end || errno == ERANGE || !std::isfinite(value))
    return std::nullopt;
  return value;
}

} // namespace cleave::rt

#endif // CLEAVE_RUNTIME_SRC_SUPPORT_H
