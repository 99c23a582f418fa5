//===- Checksum.h - XXH64 of files and buffers ------------------*- C++ -*-===//
//
// Checkpoints record each shard's XXH64 (the xxHash project's 64-bit hash,
// seed 0), so that a flipped bit is caught on resume; `xxh64sum` and
// Python's `xxhash` compute the same value. It streams: bytes may arrive in
// pieces of any size.
//
//===----------------------------------------------------------------------===//

#ifndef CLEAVE_RUNTIME_CHECKSUM_H
#define CLEAVE_RUNTIME_CHECKSUM_H

#include <cstddef>
#include <cstdint>
#include <string>

namespace cleave::rt {

class Xxh64 {
public:
  Xxh64();
  void update(const void *data, size_t size);
  uint64_t digest() const;

private:
  uint64_t lanes[4];
  /// Bytes of an unfinished 32-byte stripe.
  uint8_t pending[32];
  size_t pendingSize = 0;
  uint64_t totalSize = 0;
};

/// The XXH64 of `size` bytes.
uint64_t computeXxh64(const void *data, size_t size);
/// 16 lowercase hexadecimal digits, as `xxh64sum` prints it.
std::string formatChecksum(uint64_t checksum);

} // namespace cleave::rt

#endif // CLEAVE_RUNTIME_CHECKSUM_H
