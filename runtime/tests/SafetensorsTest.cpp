//===- SafetensorsTest.cpp - Safetensors reader and writer ----------------===//

#include "cleave/runtime/Safetensors.h"

#include <gtest/gtest.h>

#include <cstdio>
#include <fstream>
#include <string>
#include <unistd.h>

using namespace cleave::rt;

namespace {

class SafetensorsTest : public ::testing::Test {
protected:
  void SetUp() override {
    char pattern[] = "/tmp/cleave-safetensors-XXXXXX";
    ASSERT_NE(mkdtemp(pattern), nullptr);
    directory = pattern;
  }
  void TearDown() override {
    std::string command = "rm -rf '" + directory + "'";
    ASSERT_EQ(std::system(command.c_str()), 0);
  }

  std::string file(const std::string &name) { return directory + "/" + name; }

  /// Writes a file with the given JSON header and `dataBytes` zero bytes.
  std::string writeRaw(const std::string &header, size_t dataBytes,
                       uint64_t declaredHeaderSize = UINT64_MAX) {
    std::string path = file("raw.safetensors");
    std::ofstream out(path, std::ios::binary);
    uint64_t size =
        declaredHeaderSize == UINT64_MAX ? header.size() : declaredHeaderSize;
    for (int i = 0; i < 8; ++i)
      out.put(static_cast<char>(size >> (8 * i)));
    out << header << std::string(dataBytes, '\0');
    return path;
  }

  /// Opens `path`, expects failure, returns the message.
  std::string openError(const std::string &path) {
    SafetensorsReader reader;
    Status status = SafetensorsReader::open(path, reader);
    EXPECT_FALSE(status.ok());
    return status.message();
  }

  std::string directory;
};

TEST_F(SafetensorsTest, RoundTrip) {
  std::vector<float> weights = {1.5f, -2.0f, 3.25f, 0.0f, 7.0f, -1.0f};
  std::vector<int32_t> tokens = {3, 1, 4};
  std::vector<uint16_t> half = {0x3c00};
  SafetensorsWriter writer;
  ASSERT_TRUE(writer.add("layers.0.weight", DType::F32, {2, 3}, weights.data()));
  ASSERT_TRUE(writer.add("tokens", DType::I32, {3}, tokens.data()));
  ASSERT_TRUE(writer.add("scalar", DType::BF16, {}, half.data()));
  writer.setMetadata("step", "42");
  std::string path = file("model.safetensors");
  ASSERT_TRUE(writer.write(path));
  EXPECT_FALSE(std::ifstream(path + ".tmp").good()) << "temporary file left";

  SafetensorsReader reader;
  Status status = SafetensorsReader::open(path, reader);
  ASSERT_TRUE(status) << status.message();
  ASSERT_EQ(reader.getTensors().size(), 3u);
  EXPECT_EQ(reader.getMetadata().at("step"), "42");

  std::vector<float> readWeights(6);
  ASSERT_TRUE(reader.read("layers.0.weight", DType::F32, {2, 3},
                          readWeights.data()));
  EXPECT_EQ(readWeights, weights);
  std::vector<int32_t> readTokens(3);
  ASSERT_TRUE(reader.read("tokens", DType::I32, {3}, readTokens.data()));
  EXPECT_EQ(readTokens, tokens);
  uint16_t readHalf = 0;
  ASSERT_TRUE(reader.read("scalar", DType::BF16, {}, &readHalf));
  EXPECT_EQ(readHalf, 0x3c00);

  // The data section starts 8-byte aligned.
  std::ifstream in(path, std::ios::binary);
  uint64_t headerSize = 0;
  in.read(reinterpret_cast<char *>(&headerSize), 8);
  EXPECT_EQ((8 + headerSize) % 8, 0u);
}

TEST_F(SafetensorsTest, ReadChecksNameDTypeAndShape) {
  std::vector<float> data(6);
  SafetensorsWriter writer;
  ASSERT_TRUE(writer.add("w", DType::F32, {2, 3}, data.data()));
  std::string path = file("w.safetensors");
  ASSERT_TRUE(writer.write(path));
  SafetensorsReader reader;
  ASSERT_TRUE(SafetensorsReader::open(path, reader));

  std::vector<float> out(6);
  Status missing = reader.read("v", DType::F32, {2, 3}, out.data());
  EXPECT_EQ(missing.message(),
            "'" + path + "': no tensor named 'v' (expected F32 [2, 3])");
  Status shape = reader.read("w", DType::F32, {3, 2}, out.data());
  EXPECT_EQ(shape.message(),
            "'" + path + "': tensor 'w' is F32 [2, 3], expected F32 [3, 2]");
  Status dtype = reader.read("w", DType::F64, {2, 3}, out.data());
  EXPECT_EQ(dtype.message(),
            "'" + path + "': tensor 'w' is F32 [2, 3], expected F64 [2, 3]");
}

TEST_F(SafetensorsTest, MissingAndTruncatedFiles) {
  EXPECT_NE(openError(file("absent")).find("cannot open"), std::string::npos);
  EXPECT_NE(openError(directory).find("it is a directory"), std::string::npos);
  EXPECT_NE(openError(writeRaw("", 0)).find("header is not a JSON object"),
            std::string::npos);
  {
    std::ofstream(file("short"), std::ios::binary) << "abc";
  }
  EXPECT_NE(openError(file("short")).find("truncated: 3 bytes"),
            std::string::npos);
  std::string path = writeRaw("{}", 0, /*declaredHeaderSize=*/64);
  EXPECT_NE(openError(path).find("truncated: header of 64 bytes but only 2"),
            std::string::npos);
  path = writeRaw("{}", 0, /*declaredHeaderSize=*/uint64_t(1) << 40);
  EXPECT_NE(openError(path).find("implausibly large"), std::string::npos);
}

TEST_F(SafetensorsTest, CorruptHeaders) {
  struct Case {
    std::string header;
    size_t dataBytes;
    std::string expected;
  } cases[] = {
      {"not json", 0, "header is not a JSON object"},
      {"[1, 2]", 0, "header is not a JSON object"},
      {R"({"w": 3})", 0, "tensor 'w': entry is not an object"},
      {R"({"w": {"shape": [1], "data_offsets": [0, 4]}})", 4,
       "tensor 'w': missing string field 'dtype'"},
      {R"({"w": {"dtype": "F7", "shape": [1], "data_offsets": [0, 4]}})", 4,
       "tensor 'w': unsupported dtype 'F7'"},
      {R"({"w": {"dtype": "F32", "data_offsets": [0, 4]}})", 4,
       "tensor 'w': missing array field 'shape'"},
      {R"({"w": {"dtype": "F32", "shape": [-1], "data_offsets": [0, 4]}})", 4,
       "shape entries must be non-negative integers"},
      {R"({"w": {"dtype": "F32", "shape": [1], "data_offsets": [0]}})", 4,
       "'data_offsets' must be two non-negative integers"},
      {R"({"w": {"dtype": "F32", "shape": [2], "data_offsets": [0, 8]}})", 4,
       "tensor 'w': data_offsets [0, 8) lie outside the data section of 4 bytes"},
      {R"({"w": {"dtype": "F32", "shape": [2], "data_offsets": [4, 0]}})", 8,
       "lie outside the data section"},
      {R"({"w": {"dtype": "F32", "shape": [3], "data_offsets": [0, 8]}})", 8,
       "tensor 'w': F32 [3] needs 12 bytes but data_offsets span 8"},
      {R"({"a": {"dtype": "F32", "shape": [2], "data_offsets": [0, 8]},
           "b": {"dtype": "F32", "shape": [2], "data_offsets": [4, 12]}})",
       12, "tensors 'a' and 'b' overlap"},
      {R"({"a": {"dtype": "F32", "shape": [1], "data_offsets": [4, 8]}})", 8,
       "data bytes [0, 4) belong to no tensor"},
      {R"({"a": {"dtype": "F32", "shape": [1], "data_offsets": [0, 4]}})", 8,
       "data bytes [4, 8) belong to no tensor"},
      {R"({"__metadata__": {"step": 3}})", 0,
       "'__metadata__' value of 'step' is not a string"},
  };
  for (const Case &c : cases) {
    std::string message = openError(writeRaw(c.header, c.dataBytes));
    EXPECT_NE(message.find(c.expected), std::string::npos)
        << "header " << c.header << "\ngot: " << message;
  }
}

TEST_F(SafetensorsTest, WriterRejectsBadInput) {
  float value = 0;
  SafetensorsWriter writer;
  ASSERT_TRUE(writer.add("x", DType::F32, {1}, &value));
  EXPECT_EQ(writer.add("x", DType::F32, {1}, &value).message(),
            "tensor 'x' added twice");
  EXPECT_FALSE(writer.add("__metadata__", DType::F32, {1}, &value));
  EXPECT_FALSE(writer.add("y", DType::F32, {-2}, &value));
  EXPECT_FALSE(writer.add("huge", DType::F32, {int64_t(1) << 62}, &value));
  Status status = writer.write(file("no/such/dir/out.safetensors"));
  EXPECT_NE(status.message().find("cannot create"), std::string::npos);

  SafetensorsWriter badName;
  ASSERT_TRUE(badName.add("bad\xff", DType::F32, {1}, &value));
  status = badName.write(file("bad.safetensors"));
  EXPECT_NE(status.message().find("not valid UTF-8"), std::string::npos);
}

} // namespace
