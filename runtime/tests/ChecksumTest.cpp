//===- ChecksumTest.cpp - XXH64 against the reference implementation -----===//

#include "cleave/runtime/Checksum.h"

#include <gtest/gtest.h>

#include <vector>

using namespace cleave::rt;

namespace {

std::vector<uint8_t> getPattern(size_t size) {
  std::vector<uint8_t> bytes(size);
  for (size_t i = 0; i < size; ++i)
    bytes[i] = static_cast<uint8_t>((i * 37 + 11) % 256);
  return bytes;
}

// Values from Python's xxhash package (xxhash.xxh64(bytes).hexdigest()):
// every tail path (bytes, a 4-byte word, 8-byte words) around the 32-byte
// stripes.
TEST(ChecksumTest, MatchesTheReference) {
  const std::pair<size_t, const char *> expected[] = {
      {0, "ef46db3751d8e999"},   {1, "f592c0c7639c4cb6"},
      {3, "22c08528601d4f27"},   {4, "fb1e5cf2f1ae4d95"},
      {7, "5613ac510496c04e"},   {8, "57cb2b7521f3e21a"},
      {31, "e4a0e629e519a4ae"},  {32, "cc6b8aaada790b2d"},
      {33, "35ec49850475a832"},  {63, "bf9f0ba3cf95b28a"},
      {64, "155ccce4bf32befc"},  {100, "4826e367566ea023"},
      {1000, "128da10cfbdc59d9"}};
  for (const auto &[size, digest] : expected) {
    std::vector<uint8_t> bytes = getPattern(size);
    EXPECT_EQ(formatChecksum(computeXxh64(bytes.data(), bytes.size())), digest)
        << size << " bytes";
  }
}

// Streaming in pieces of any size gives the one-shot value.
TEST(ChecksumTest, StreamsInPieces) {
  std::vector<uint8_t> bytes = getPattern(1000);
  uint64_t whole = computeXxh64(bytes.data(), bytes.size());
  for (size_t piece : {1, 5, 31, 32, 33, 100}) {
    Xxh64 hasher;
    for (size_t offset = 0; offset < bytes.size(); offset += piece)
      hasher.update(bytes.data() + offset,
                    std::min(piece, bytes.size() - offset));
    EXPECT_EQ(hasher.digest(), whole) << "pieces of " << piece;
  }
}

} // namespace
