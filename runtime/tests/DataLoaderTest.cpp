//===- DataLoaderTest.cpp - Token files, batches, schedules ---------------===//

#include "cleave/runtime/DataLoader.h"
#include "cleave/runtime/Schedule.h"
#include "cleave/runtime/Tokens.h"

#include <gtest/gtest.h>

#include <cmath>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <limits>
#include <set>
#include <string>
#include <vector>

using namespace cleave::rt;

namespace {

/// A fresh directory under the test temp dir per test, removed afterwards.
class TempDirTest : public ::testing::Test {
protected:
  void SetUp() override {
    std::string pattern = ::testing::TempDir() + "cleave-data-XXXXXX";
    std::vector<char> buffer(pattern.begin(), pattern.end());
    buffer.push_back('\0');
    ASSERT_NE(mkdtemp(buffer.data()), nullptr);
    directory = buffer.data();
  }
  void TearDown() override { std::filesystem::remove_all(directory); }

  std::string file(const std::string &name) { return directory + "/" + name; }

  std::string writeBytes(const std::string &name, const std::string &bytes) {
    std::string path = file(name);
    std::ofstream(path, std::ios::binary) << bytes;
    return path;
  }

  /// Writes `tokens` little-endian at `width`.
  std::string writeTokens(const std::string &name,
                          const std::vector<uint32_t> &tokens,
                          TokenWidth width = TokenWidth::U16) {
    std::string bytes;
    int tokenBytes = width == TokenWidth::U16 ? 2 : 4;
    for (uint32_t token : tokens)
      for (int i = 0; i < tokenBytes; ++i)
        bytes.push_back(static_cast<char>(token >> (8 * i)));
    return writeBytes(name, bytes);
  }

  /// A file whose token at each position is the position itself, so a
  /// batch row reveals the offset it was read from.
  TokenFile positionFile(uint32_t size) {
    std::vector<uint32_t> tokens(size);
    for (uint32_t i = 0; i < size; ++i)
      tokens[i] = i;
    TokenFile tokenFile;
    Status status = TokenFile::open(
        writeTokens("positions.bin", tokens, TokenWidth::U32), TokenWidth::U32,
        tokenFile);
    EXPECT_TRUE(status.ok()) << status.message();
    return tokenFile;
  }

  std::string directory;
};

class DataLoaderTest : public TempDirTest {};
class TokensTest : public TempDirTest {};

struct Batch {
  std::vector<int32_t> tokens, targets;
  bool operator==(const Batch &other) const {
    return tokens == other.tokens && targets == other.targets;
  }
};

Batch readBatch(const TokenFile &file, uint64_t seed, uint64_t step,
                int64_t batch, int64_t seq) {
  Batch result{std::vector<int32_t>(batch * seq),
               std::vector<int32_t>(batch * seq)};
  Status status = getBatch(file, seed, step, batch, seq, result.tokens.data(),
                           result.targets.data());
  EXPECT_TRUE(status.ok()) << status.message();
  return result;
}

//===----------------------------------------------------------------------===//
// TokenFile
//===----------------------------------------------------------------------===//

TEST_F(DataLoaderTest, ReadsLittleEndianU16) {
  TokenFile tokens;
  ASSERT_TRUE(TokenFile::open(
      writeBytes("a.bin", std::string("\x01\x02\xff\xff\x00\x00", 6)),
      TokenWidth::U16, tokens));
  ASSERT_EQ(tokens.size(), 3u);
  EXPECT_EQ(tokens[0], 0x0201u);
  EXPECT_EQ(tokens[1], 65535u);
  EXPECT_EQ(tokens.get(2), 0u);
}

TEST_F(DataLoaderTest, ReadsLittleEndianU32) {
  TokenFile tokens;
  ASSERT_TRUE(TokenFile::open(writeTokens("a.bin", {0x01020304u, 70000u},
                                          TokenWidth::U32),
                              TokenWidth::U32, tokens));
  ASSERT_EQ(tokens.size(), 2u);
  EXPECT_EQ(tokens[0], 0x01020304u);
  EXPECT_EQ(tokens[1], 70000u);
}

/// llm.c's header: magic, version, count, then zeros to 1024 bytes.
std::string tokenHeader(int32_t magic, int32_t version, int32_t count) {
  std::string header(kTokenHeaderBytes, '\0');
  for (auto [slot, value] :
       {std::pair(0, magic), std::pair(1, version), std::pair(2, count)})
    for (int i = 0; i < 4; ++i)
      header[4 * slot + i] =
          static_cast<char>(static_cast<uint32_t>(value) >> (8 * i));
  return header;
}

TEST_F(DataLoaderTest, ReadsTheWidthFromTheHeader) {
  // A uint32 file (Llama 3's vocabulary) with llm.c's header.
  std::string body;
  for (uint32_t token : {128000u, 7u, 70000u})
    for (int i = 0; i < 4; ++i)
      body.push_back(static_cast<char>(token >> (8 * i)));
  std::string path = writeBytes(
      "llama.bin", tokenHeader(kTokenMagicU32, kTokenVersionU32, 3) + body);
  TokenFile tokens;
  Status status = TokenFile::open(path, std::nullopt, tokens);
  ASSERT_TRUE(status.ok()) << status.message();
  EXPECT_EQ(tokens.width(), TokenWidth::U32);
  ASSERT_EQ(tokens.size(), 3u);
  EXPECT_EQ(tokens[0], 128000u);
  EXPECT_EQ(tokens[2], 70000u);
  EXPECT_TRUE(TokenFile::open(path, TokenWidth::U32, tokens).ok());

  // Read at another width, it would be garbage: refused.
  status = TokenFile::open(path, TokenWidth::U16, tokens);
  ASSERT_FALSE(status.ok());
  EXPECT_EQ(status.message(), "--token-bytes 2 was given, but token file '" +
                                  path + "' has a header for 4-byte tokens");
  // The vocabulary check still applies: GPT-2's is too small for it.
  ASSERT_TRUE(TokenFile::open(path, std::nullopt, tokens).ok());
  EXPECT_FALSE(tokens.checkVocabulary(50257).ok());
  EXPECT_TRUE(tokens.checkVocabulary(128256).ok());
}

TEST_F(DataLoaderTest, RefusesABadHeaderOrAMissingWidth) {
  TokenFile tokens;
  // Truncated: the header counts 4 tokens, 3 follow.
  std::string truncated = writeBytes(
      "truncated.bin",
      tokenHeader(kTokenMagicU16, kTokenVersionU16, 4) + std::string(6, 'a'));
  Status status = TokenFile::open(truncated, std::nullopt, tokens);
  ASSERT_FALSE(status.ok());
  EXPECT_EQ(status.message(),
            "token file '" + truncated +
                "': its header counts 4 tokens of 2 bytes, but 6 bytes follow "
                "it (a truncated or damaged file?)");
  // Another version of the header.
  std::string future = writeBytes(
      "future.bin", tokenHeader(kTokenMagicU16, 9, 1) + std::string(2, 'a'));
  status = TokenFile::open(future, std::nullopt, tokens);
  ASSERT_FALSE(status.ok());
  EXPECT_NE(status.message().find("has version 9"), std::string::npos)
      << status.message();
  // A header that counts nothing, and a file that ends inside its header.
  std::string none =
      writeBytes("none.bin", tokenHeader(kTokenMagicU16, kTokenVersionU16, 0));
  status = TokenFile::open(none, std::nullopt, tokens);
  ASSERT_FALSE(status.ok());
  EXPECT_EQ(status.message(), "token file '" + none + "' holds no tokens");
  std::string cut = writeBytes(
      "cut.bin",
      tokenHeader(kTokenMagicU32, kTokenVersionU32, 1).substr(0, 100));
  status = TokenFile::open(cut, TokenWidth::U16, tokens);
  ASSERT_FALSE(status.ok());
  EXPECT_NE(status.message().find("ends inside its 1024-byte header"),
            std::string::npos)
      << status.message();
  // No header and no width given.
  std::string raw = writeTokens("raw.bin", {1, 2, 3});
  status = TokenFile::open(raw, std::nullopt, tokens);
  ASSERT_FALSE(status.ok());
  EXPECT_NE(status.message().find("has no header: give its token width with "
                                  "--token-bytes 2 or 4"),
            std::string::npos)
      << status.message();
  EXPECT_TRUE(TokenFile::open(raw, TokenWidth::U16, tokens).ok());
  EXPECT_FALSE(tokens.hasHeader());
  EXPECT_EQ(tokens[2], 3u);
}

TEST_F(DataLoaderTest, OpenErrorsNameTheFile) {
  TokenFile tokens;
  std::string missing = file("missing.bin");
  Status status = TokenFile::open(missing, TokenWidth::U16, tokens);
  ASSERT_FALSE(status.ok());
  EXPECT_NE(status.message().find(missing), std::string::npos)
      << status.message();

  std::string odd = writeBytes("odd.bin", "abc");
  status = TokenFile::open(odd, TokenWidth::U16, tokens);
  ASSERT_FALSE(status.ok());
  EXPECT_NE(status.message().find(odd), std::string::npos) << status.message();
  EXPECT_NE(status.message().find("3 bytes"), std::string::npos)
      << status.message();

  // Six bytes are three uint16 tokens but not whole uint32 ones.
  std::string six = writeBytes("six.bin", "abcdef");
  EXPECT_TRUE(TokenFile::open(six, TokenWidth::U16, tokens).ok());
  status = TokenFile::open(six, TokenWidth::U32, tokens);
  ASSERT_FALSE(status.ok());
  EXPECT_NE(status.message().find("4-byte"), std::string::npos)
      << status.message();

  std::string empty = writeBytes("empty.bin", "");
  status = TokenFile::open(empty, TokenWidth::U16, tokens);
  ASSERT_FALSE(status.ok());
  EXPECT_NE(status.message().find(empty), std::string::npos)
      << status.message();
  EXPECT_NE(status.message().find("empty"), std::string::npos)
      << status.message();

  status = TokenFile::open(directory, TokenWidth::U16, tokens);
  ASSERT_FALSE(status.ok());
  EXPECT_NE(status.message().find("directory"), std::string::npos)
      << status.message();
}

TEST_F(DataLoaderTest, CheckVocabularyNamesFirstOffender) {
  std::string path = writeTokens("v.bin", {1, 2, 300, 5, 400});
  TokenFile tokens;
  ASSERT_TRUE(TokenFile::open(path, TokenWidth::U16, tokens));
  EXPECT_TRUE(tokens.checkVocabulary(401).ok());

  Status status = tokens.checkVocabulary(256);
  ASSERT_FALSE(status.ok());
  EXPECT_NE(status.message().find(path), std::string::npos) << status.message();
  EXPECT_NE(status.message().find("token 300 at position 2"),
            std::string::npos)
      << status.message();

  // The bound is exclusive: token 400 needs a vocabulary of 401.
  status = tokens.checkVocabulary(400);
  ASSERT_FALSE(status.ok());
  EXPECT_NE(status.message().find("token 400 at position 4"),
            std::string::npos)
      << status.message();
  EXPECT_FALSE(tokens.checkVocabulary(0).ok());
}

//===----------------------------------------------------------------------===//
// getBatch
//===----------------------------------------------------------------------===//

TEST_F(DataLoaderTest, BatchDependsOnSeedAndStepOnly) {
  TokenFile tokens = positionFile(5000);
  Batch batch = readBatch(tokens, 42, 7, 4, 16);
  // Same (seed, step): same batch, whatever was read before or in between,
  // and from another TokenFile over the same data (a resumed process).
  readBatch(tokens, 42, 3, 4, 16);
  EXPECT_EQ(readBatch(tokens, 42, 7, 4, 16), batch);
  TokenFile reopened;
  ASSERT_TRUE(TokenFile::open(file("positions.bin"), TokenWidth::U32,
                              reopened));
  EXPECT_EQ(readBatch(reopened, 42, 7, 4, 16), batch);

  EXPECT_FALSE(readBatch(tokens, 42, 8, 4, 16) == batch);
  EXPECT_FALSE(readBatch(tokens, 43, 7, 4, 16) == batch);
  // Rows within a step are drawn independently.
  EXPECT_NE(batch.tokens[0], batch.tokens[16]);
}

TEST_F(DataLoaderTest, OffsetsArePinned) {
  // Resuming a run written by an older build relies on the exact offsets:
  // changing the hash would silently train on different data.
  // Values from SplitMix64 as documented, recomputed independently in
  // Python when they were pinned.
  EXPECT_EQ(getBatchOffset(1000000, 1337, 1, 1024, 0), 496095u);
  EXPECT_EQ(getBatchOffset(1000000, 1337, 1, 1024, 1), 363769u);
  EXPECT_EQ(getBatchOffset(1000000, 1337, 2, 1024, 0), 568099u);
  EXPECT_EQ(getBatchOffset(1000000, 0, 1, 1024, 0), 890516u);
}

TEST_F(DataLoaderTest, TargetsAreTokensShiftedByOne) {
  TokenFile tokens = positionFile(300);
  constexpr int64_t kBatch = 5, kSeq = 32;
  for (uint64_t step = 1; step <= 20; ++step) {
    Batch batch = readBatch(tokens, 9, step, kBatch, kSeq);
    for (int64_t row = 0; row < kBatch; ++row) {
      int32_t start = batch.tokens[row * kSeq];
      EXPECT_EQ(static_cast<uint64_t>(start),
                getBatchOffset(tokens.size(), 9, step, kSeq, row));
      for (int64_t i = 0; i < kSeq; ++i) {
        EXPECT_EQ(batch.tokens[row * kSeq + i], start + i);
        EXPECT_EQ(batch.targets[row * kSeq + i], start + i + 1);
      }
    }
  }
}

TEST_F(DataLoaderTest, MicroBatchesConcatenateToTheGlobalBatch) {
  TokenFile tokens = positionFile(1000);
  constexpr int64_t kBatch = 7, kSeq = 8, kMicroBatches = 3;
  Batch global = readBatch(tokens, 5, 11, kBatch, kSeq);
  Batch joined;
  int64_t nextRow = 0;
  for (int64_t j = 0; j < kMicroBatches; ++j) {
    RowRange rows = getMicroBatchRows(kBatch, kMicroBatches, j);
    EXPECT_EQ(rows.begin, nextRow);
    EXPECT_EQ(rows.begin, j * kBatch / kMicroBatches);
    EXPECT_EQ(rows.end, (j + 1) * kBatch / kMicroBatches);
    nextRow = rows.end;
    std::vector<int32_t> part(rows.size() * kSeq), partTargets(part.size());
    ASSERT_TRUE(getBatch(tokens, 5, 11, rows.begin, rows.size(), kSeq,
                         part.data(), partTargets.data()));
    joined.tokens.insert(joined.tokens.end(), part.begin(), part.end());
    joined.targets.insert(joined.targets.end(), partTargets.begin(),
                          partTargets.end());
  }
  EXPECT_EQ(nextRow, kBatch);
  EXPECT_EQ(joined, global);
}

TEST_F(DataLoaderTest, OffsetsCoverTheFileAndStayInBounds) {
  // 10 tokens, sequences of 4: starts 0..5 (start 5 reads tokens 5..8 and
  // targets 6..9, the last token).
  constexpr uint32_t kSize = 10;
  constexpr int64_t kSeq = 4, kBatch = 2, kSteps = 3000;
  TokenFile tokens = positionFile(kSize);
  std::vector<int> counts(kSize, 0);
  for (uint64_t step = 1; step <= kSteps; ++step) {
    Batch batch = readBatch(tokens, 1, step, kBatch, kSeq);
    for (int64_t row = 0; row < kBatch; ++row) {
      int32_t start = batch.tokens[row * kSeq];
      ASSERT_GE(start, 0);
      ASSERT_LE(start, static_cast<int32_t>(kSize - kSeq - 1));
      ++counts[start];
      EXPECT_EQ(batch.targets[row * kSeq + kSeq - 1], start + kSeq);
    }
  }
  // 6000 draws over 6 starts: 1000 expected each, standard deviation ~29.
  for (int start = 0; start <= 5; ++start)
    EXPECT_NEAR(counts[start], 1000, 150) << "start " << start;

  // A file of exactly seq + 1 tokens has a single start.
  TokenFile exact = positionFile(kSeq + 1);
  for (uint64_t step = 1; step <= 50; ++step)
    EXPECT_EQ(readBatch(exact, 3, step, 1, kSeq).tokens[0], 0);
}

TEST_F(DataLoaderTest, BatchErrors) {
  TokenFile tokens = positionFile(8);
  std::vector<int32_t> out(64), targets(64);
  // 8 tokens cannot give a sequence of 8 plus its shifted target.
  Status status = getBatch(tokens, 1, 1, 1, 8, out.data(), targets.data());
  ASSERT_FALSE(status.ok());
  EXPECT_NE(status.message().find(tokens.path()), std::string::npos)
      << status.message();
  EXPECT_NE(status.message().find("has 8 tokens"), std::string::npos)
      << status.message();
  EXPECT_NE(status.message().find("needs at least 9"), std::string::npos)
      << status.message();
  EXPECT_TRUE(getBatch(tokens, 1, 1, 1, 7, out.data(), targets.data()).ok());

  status = getBatch(tokens, 1, /*step=*/0, 1, 4, out.data(), targets.data());
  ASSERT_FALSE(status.ok());
  EXPECT_NE(status.message().find("counted from 1"), std::string::npos)
      << status.message();
  EXPECT_FALSE(getBatch(tokens, 1, 1, 0, 4, out.data(), targets.data()).ok());
  EXPECT_FALSE(getBatch(tokens, 1, 1, 2, 0, out.data(), targets.data()).ok());

  // A uint32 token past INT32_MAX cannot become an int32 input.
  TokenFile huge;
  ASSERT_TRUE(TokenFile::open(writeTokens("huge.bin", {1, 0x80000000u, 2},
                                          TokenWidth::U32),
                              TokenWidth::U32, huge));
  status = getBatch(huge, 1, 1, 1, 2, out.data(), targets.data());
  ASSERT_FALSE(status.ok());
  EXPECT_NE(status.message().find("int32"), std::string::npos)
      << status.message();
}

//===----------------------------------------------------------------------===//
// Learning-rate schedules
//===----------------------------------------------------------------------===//

TEST(ScheduleTest, Constant) {
  LrSchedule schedule{LrSchedule::Constant, 3e-4};
  EXPECT_TRUE(validate(schedule).ok());
  EXPECT_DOUBLE_EQ(getLearningRate(schedule, 1), 3e-4);
  EXPECT_DOUBLE_EQ(getLearningRate(schedule, 1000000), 3e-4);

  schedule.warmup = 10;
  EXPECT_DOUBLE_EQ(getLearningRate(schedule, 1), 3e-5);
  EXPECT_DOUBLE_EQ(getLearningRate(schedule, 5), 1.5e-4);
  EXPECT_DOUBLE_EQ(getLearningRate(schedule, 10), 3e-4);
  EXPECT_DOUBLE_EQ(getLearningRate(schedule, 11), 3e-4);
  EXPECT_DOUBLE_EQ(getLearningRate(schedule, 1000000), 3e-4);
}

TEST(ScheduleTest, CosineWithWarmup) {
  LrSchedule schedule{LrSchedule::Cosine, 1e-3, 1e-4, 10, 100};
  ASSERT_TRUE(validate(schedule).ok());
  EXPECT_DOUBLE_EQ(getLearningRate(schedule, 1), 1e-4);
  EXPECT_DOUBLE_EQ(getLearningRate(schedule, 0), 1e-4) << "treated as step 1";
  EXPECT_DOUBLE_EQ(getLearningRate(schedule, 5), 5e-4);
  EXPECT_DOUBLE_EQ(getLearningRate(schedule, 10), 1e-3);
  // A quarter of the way through decay: cos(pi/4).
  EXPECT_DOUBLE_EQ(getLearningRate(schedule, 35),
                   1e-4 + 9e-4 * 0.5 * (1 + std::sqrt(0.5)));
  EXPECT_DOUBLE_EQ(getLearningRate(schedule, 60), (1e-3 + 1e-4) / 2);
  EXPECT_DOUBLE_EQ(getLearningRate(schedule, 110), 1e-4);
  EXPECT_DOUBLE_EQ(getLearningRate(schedule, 111), 1e-4);
  EXPECT_DOUBLE_EQ(getLearningRate(schedule, 1000000), 1e-4);

  double previous = getLearningRate(schedule, 10);
  for (int64_t step = 11; step <= 110; ++step) {
    double rate = getLearningRate(schedule, step);
    EXPECT_LT(rate, previous) << "step " << step;
    previous = rate;
  }
}

TEST(ScheduleTest, CosineWithoutWarmup) {
  LrSchedule schedule{LrSchedule::Cosine, 2.0, 0.0, 0, 4};
  ASSERT_TRUE(validate(schedule).ok());
  // Step 1 is already one step into the decay.
  EXPECT_DOUBLE_EQ(getLearningRate(schedule, 1), 1.0 + std::sqrt(0.5));
  EXPECT_DOUBLE_EQ(getLearningRate(schedule, 2), 1.0);
  EXPECT_DOUBLE_EQ(getLearningRate(schedule, 4), 0.0);
  EXPECT_DOUBLE_EQ(getLearningRate(schedule, 5), 0.0);
}

TEST(ScheduleTest, ValidationNamesTheFlag) {
  auto expectError = [](const LrSchedule &schedule, const char *flag,
                        const char *value) {
    Status status = validate(schedule);
    ASSERT_FALSE(status.ok()) << flag;
    EXPECT_EQ(status.message().rfind(flag, 0), 0u) << status.message();
    if (value)
      EXPECT_NE(status.message().find(value), std::string::npos)
          << status.message();
  };
  constexpr double kNan = std::numeric_limits<double>::quiet_NaN();
  constexpr double kInf = std::numeric_limits<double>::infinity();
  expectError({LrSchedule::Constant, 0.0}, "--lr", "got 0");
  expectError({LrSchedule::Constant, -1e-3}, "--lr", "got -0.001");
  expectError({LrSchedule::Constant, kNan}, "--lr", "nan");
  expectError({LrSchedule::Constant, kInf}, "--lr", "inf");
  expectError({LrSchedule::Cosine, 1e-3, -1e-5, 0, 10}, "--min-lr", "-1e-05");
  expectError({LrSchedule::Cosine, 1e-3, 2e-3, 0, 10}, "--min-lr", "0.002");
  expectError({LrSchedule::Cosine, 1e-3, kNan, 0, 10}, "--min-lr", nullptr);
  expectError({LrSchedule::Cosine, 1e-3, 0, -1, 10}, "--warmup", "-1");
  expectError({LrSchedule::Cosine, 1e-3, 0, 10, 0}, "--decay-steps", nullptr);
  expectError({LrSchedule::Cosine, 1e-3, 0, 10, -5}, "--decay-steps", "-5");

  // minLr == lr is a valid (flat) cosine; a constant schedule ignores decay.
  EXPECT_TRUE(validate({LrSchedule::Cosine, 1e-3, 1e-3, 0, 10}).ok());
  EXPECT_TRUE(validate({LrSchedule::Constant, 1e-3, 0, 5, 0}).ok());
}

//===----------------------------------------------------------------------===//
// prepareByteTokens
//===----------------------------------------------------------------------===//

TEST_F(TokensTest, BytesRoundTripAsU16Tokens) {
  std::string bytes;
  for (int i = 0; i < 256; ++i)
    bytes.push_back(static_cast<char>(i));
  bytes += "hello, world\n";
  // Longer than one internal chunk, so chunk boundaries are exercised.
  for (int i = 0; i < 200000; ++i)
    bytes.push_back(static_cast<char>((i * 31) & 0xff));
  std::string input = writeBytes("input.txt", bytes);
  std::string output = file("train.bin");
  writeBytes("train.bin", "stale contents");

  uint64_t count = 0;
  Status status = prepareByteTokens(input, output, &count);
  ASSERT_TRUE(status.ok()) << status.message();
  EXPECT_EQ(count, bytes.size());
  EXPECT_EQ(std::filesystem::file_size(output),
            kTokenHeaderBytes + 2 * bytes.size());
  EXPECT_FALSE(std::filesystem::exists(output + ".tmp"));

  // The header says the width: no width needs to be given.
  TokenFile tokens;
  ASSERT_TRUE(TokenFile::open(output, std::nullopt, tokens));
  EXPECT_TRUE(tokens.hasHeader());
  EXPECT_EQ(tokens.width(), TokenWidth::U16);
  ASSERT_EQ(tokens.size(), bytes.size());
  for (uint64_t i = 0; i < bytes.size(); ++i)
    ASSERT_EQ(tokens[i], static_cast<unsigned char>(bytes[i])) << i;
  EXPECT_TRUE(tokens.checkVocabulary(256).ok());

  EXPECT_TRUE(prepareByteTokens(input, output, nullptr).ok());
}

TEST_F(TokensTest, ErrorsNameTheFiles) {
  std::string output = file("out.bin");
  std::string missing = file("missing.txt");
  Status status = prepareByteTokens(missing, output, nullptr);
  ASSERT_FALSE(status.ok());
  EXPECT_NE(status.message().find(missing), std::string::npos)
      << status.message();

  std::string empty = writeBytes("empty.txt", "");
  status = prepareByteTokens(empty, output, nullptr);
  ASSERT_FALSE(status.ok());
  EXPECT_NE(status.message().find(empty), std::string::npos)
      << status.message();
  EXPECT_NE(status.message().find("empty"), std::string::npos)
      << status.message();
  EXPECT_FALSE(std::filesystem::exists(output));
  EXPECT_FALSE(std::filesystem::exists(output + ".tmp"));

  std::string input = writeBytes("input.txt", "abc");
  std::string unwritable = file("no-such-dir/out.bin");
  status = prepareByteTokens(input, unwritable, nullptr);
  ASSERT_FALSE(status.ok());
  EXPECT_NE(status.message().find(unwritable + ".tmp"), std::string::npos)
      << status.message();
}

} // namespace
