//===- Checksum.cpp - XXH64 of files and buffers --------------------------===//
//
// The algorithm as the xxHash specification defines it: four lanes of
// 64-bit multiply-rotate rounds over 32-byte stripes, merged, then the tail
// and an avalanche.
//
//===----------------------------------------------------------------------===//

#include "cleave/runtime/Checksum.h"

#include <algorithm>
#include <cstdio>
#include <cstring>

namespace cleave::rt {

namespace {

constexpr uint64_t kPrime1 = 0x9E3779B185EBCA87ULL;
constexpr uint64_t kPrime2 = 0xC2B2AE3D27D4EB4FULL;
constexpr uint64_t kPrime3 = 0x165667B19E3779F9ULL;
constexpr uint64_t kPrime4 = 0x85EBCA77C2B2AE63ULL;
constexpr uint64_t kPrime5 = 0x27D4EB2F165667C5ULL;

uint64_t rotateLeft(uint64_t value, int bits) {
  return (value << bits) | (value >> (64 - bits));
}

// Little-endian reads, whatever the host.
uint64_t read64(const uint8_t *bytes) {
  uint64_t value = 0;
  for (int i = 7; i >= 0; --i)
    value = (value << 8) | bytes[i];
  return value;
}

uint32_t read32(const uint8_t *bytes) {
  return static_cast<uint32_t>(bytes[0]) |
         static_cast<uint32_t>(bytes[1]) << 8 |
         static_cast<uint32_t>(bytes[2]) << 16 |
         static_cast<uint32_t>(bytes[3]) << 24;
}

uint64_t round(uint64_t lane, uint64_t input) {
  return rotateLeft(lane + input * kPrime2, 31) * kPrime1;
}

uint64_t mergeRound(uint64_t hash, uint64_t lane) {
  return (hash ^ round(0, lane)) * kPrime1 + kPrime4;
}

void consumeStripe(uint64_t lanes[4], const uint8_t *stripe) {
  for (int i = 0; i < 4; ++i)
    lanes[i] = round(lanes[i], read64(stripe + 8 * i));
}

} // namespace

Xxh64::Xxh64() : lanes{kPrime1 + kPrime2, kPrime2, 0, 0 - kPrime1}, pending{} {}

void Xxh64::update(const void *data, size_t size) {
  const uint8_t *bytes = static_cast<const uint8_t *>(data);
  totalSize += size;
  if (pendingSize > 0) {
    size_t taken = std::min(size, sizeof(pending) - pendingSize);
    std::memcpy(pending + pendingSize, bytes, taken);
    pendingSize += taken;
    bytes += taken;
    size -= taken;
    if (pendingSize < sizeof(pending))
      return;
    consumeStripe(lanes, pending);
    pendingSize = 0;
  }
  for (; size >= 32; bytes += 32, size -= 32)
    consumeStripe(lanes, bytes);
  std::memcpy(pending, bytes, size);
  pendingSize = size;
}

uint64_t Xxh64::digest() const {
  uint64_t hash;
  if (totalSize >= 32) {
    hash = rotateLeft(lanes[0], 1) + rotateLeft(lanes[1], 7) +
           rotateLeft(lanes[2], 12) + rotateLeft(lanes[3], 18);
    for (uint64_t lane : lanes)
      hash = mergeRound(hash, lane);
  } else {
    hash = kPrime5;
  }
  hash += totalSize;
  const uint8_t *tail = pending;
  size_t size = pendingSize;
  for (; size >= 8; tail += 8, size -= 8)
    hash = rotateLeft(hash ^ round(0, read64(tail)), 27) * kPrime1 + kPrime4;
  if (size >= 4) {
    hash = rotateLeft(hash ^ (read32(tail) * kPrime1), 23) * kPrime2 + kPrime3;
    tail += 4;
    size -= 4;
  }
  for (; size > 0; ++tail, --size)
    hash = rotateLeft(hash ^ (*tail * kPrime5), 11) * kPrime1;
  hash ^= hash >> 33;
  hash *= kPrime2;
  hash ^= hash >> 29;
  hash *= kPrime3;
  hash ^= hash >> 32;
  return hash;
}

uint64_t computeXxh64(const void *data, size_t size) {
  Xxh64 hasher;
  hasher.update(data, size);
  return hasher.digest();
}

std::string formatChecksum(uint64_t checksum) {
  char text[17];
  std::snprintf(text, sizeof(text), "%016llx",
                static_cast<unsigned long long>(checksum));
  return text;
}

} // namespace cleave::rt
