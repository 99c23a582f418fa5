//===- MeshTest.cpp - Blocks of sharded tensors and sharded checkpoints ---===//

#include "cleave/runtime/Checkpoint.h"
#include "cleave/runtime/Mesh.h"

#include <gtest/gtest.h>

#include <cstdio>
#include <filesystem>
#include <numeric>

using namespace cleave::rt;

namespace {

Mesh makeMesh() {
  Mesh mesh;
  mesh.axes = {"dp", "tp"};
  mesh.sizes = {2, 3};
  return mesh;
}

TEST(MeshTest, RanksMapToCoordinatesRowMajor) {
  Mesh mesh = makeMesh();
  EXPECT_EQ(mesh.getNumDevices(), 6);
  EXPECT_EQ(mesh.toString(), "dp=2,tp=3");
  EXPECT_EQ(mesh.getCoordinates(4), (std::vector<int64_t>{1, 1}));
  for (int64_t rank = 0; rank < 6; ++rank)
    EXPECT_EQ(mesh.getRank(mesh.getCoordinates(rank)), rank);
  std::vector<int> group;
  ASSERT_TRUE(mesh.parseAxes("tp,dp", group).ok());
  EXPECT_EQ(group, (std::vector<int>{1, 0}));
  // tp outermost: (dp=1, tp=2) is 2 * 2 + 1.
  EXPECT_EQ(mesh.getGroupIndex(group, {1, 2}), 5);
  EXPECT_EQ(mesh.getGroupSize(group), 6);
}

TEST(MeshTest, RejectsUnknownAndRepeatedAxes) {
  Mesh mesh = makeMesh();
  std::vector<int> group;
  Status unknown = mesh.parseAxes("dp,pp", group);
  ASSERT_FALSE(unknown.ok());
  EXPECT_EQ(unknown.message(), "'pp' is not an axis of mesh dp=2,tp=3");
  EXPECT_FALSE(mesh.parseAxes("tp,tp", group).ok());
}

TEST(MeshTest, BlocksOffsetBySplitAxesAndHaveOneWriter) {
  Mesh mesh = makeMesh();
  Block block;
  // A [4, 3] block of a matrix split on dp along rows, tp along columns.
  ASSERT_TRUE(getBlock(mesh, "dp;tp", {4, 3}, {1, 2}, block).ok());
  EXPECT_EQ(block.globalShape, (std::vector<int64_t>{8, 9}));
  EXPECT_EQ(block.offsets, (std::vector<int64_t>{4, 6}));
  EXPECT_TRUE(block.isWriter);
  // Split on tp only: the dp=1 copy is not the writer.
  ASSERT_TRUE(getBlock(mesh, ";tp", {4, 3}, {1, 2}, block).ok());
  EXPECT_EQ(block.globalShape, (std::vector<int64_t>{4, 9}));
  EXPECT_FALSE(block.isWriter);
  // Replicated and scalar.
  ASSERT_TRUE(getBlock(mesh, "", {}, {0, 1}, block).ok());
  EXPECT_TRUE(block.globalShape.empty());
  EXPECT_FALSE(block.isWriter);
  ASSERT_TRUE(getBlock(mesh, nullptr, {5}, {1, 2}, block).ok());
  EXPECT_EQ(block.globalShape, (std::vector<int64_t>{5}));
  EXPECT_FALSE(getBlock(mesh, "dp", {4, 3}, {0, 0}, block).ok());
}

TEST(MeshTest, CopyOverlapMovesTheSharedBox) {
  // A [4, 4] tensor; `from` holds rows 0-1, `to` wants columns 1-2.
  std::vector<int> rows(8), columns(8, -1);
  std::iota(rows.begin(), rows.end(), 0);
  Box from{{0, 0}, {2, 4}}, to{{0, 1}, {4, 2}};
  EXPECT_EQ(copyOverlap(sizeof(int), from, rows.data(), to, columns.data()), 4);
  EXPECT_EQ(columns, (std::vector<int>{1, 2, 5, 6, -1, -1, -1, -1}));
  Box apart{{2, 0}, {2, 4}};
  EXPECT_EQ(copyOverlap(sizeof(int), apart, rows.data(), from, columns.data()), 0);
}

TEST(CheckpointTest, ReadsAnyBoxFromPiecesOfAnotherMesh) {
  namespace fs = std::filesystem;
  fs::path dir = fs::temp_directory_path() / "cleave-checkpoint-test";
  fs::remove_all(dir);
  fs::create_directories(dir / "step-3");
  // A [2, 4] tensor saved as two column halves by ranks 0 and 1 of tp=2.
  CheckpointIndex index;
  index.mesh.axes = {"tp"};
  index.mesh.sizes = {2};
  index.metadata = {{"step", "3"}};
  std::vector<float> left = {0, 1, 4, 5}, right = {2, 3, 6, 7};
  for (int rank : {0, 1}) {
    SafetensorsWriter writer;
    ASSERT_TRUE(writer.add("w", DType::F32, {2, 2},
                           (rank ? right : left).data())
                    .ok());
    for (const auto &[key, value] : getCheckpointFileMetadata(index))
      writer.setMetadata(key, value);
    writer.setMetadata(getCheckpointOffsetsKey("w"), rank ? "0,2" : "0,0");
    std::string name = getCheckpointShardName("step-3", rank);
    CheckpointFile &file = index.files[name];
    ASSERT_TRUE(writer.write((dir / name).string(), &file.checksum).ok());
    file.bytes = fs::file_size(dir / name);
  }
  index.tensors["w"] = {DType::F32,
                        {2, 4},
                        {{getCheckpointShardName("step-3", 0), {{0, 0}, {2, 2}}},
                         {getCheckpointShardName("step-3", 1), {{0, 2}, {2, 2}}}}};
  ASSERT_TRUE(writeCheckpointIndex(dir.string(), index).ok());

  CheckpointReader reader;
  Status opened = CheckpointReader::open(dir.string(), reader);
  ASSERT_TRUE(opened.ok()) << opened.message();
  EXPECT_EQ(reader.getIndex().metadata.at("step"), "3");
  // The whole tensor (one rank), and the second row (dp=2 on rows).
  std::vector<float> whole(8), row(4);
  ASSERT_TRUE(reader.read("w", DType::F32, {2, 4}, {{0, 0}, {2, 4}}, whole.data()).ok());
  EXPECT_EQ(whole, (std::vector<float>{0, 1, 2, 3, 4, 5, 6, 7}));
  ASSERT_TRUE(reader.read("w", DType::F32, {2, 4}, {{1, 0}, {1, 4}}, row.data()).ok());
  EXPECT_EQ(row, (std::vector<float>{4, 5, 6, 7}));

  Status wrongShape = reader.read("w", DType::F32, {4, 2}, {{0, 0}, {4, 2}}, whole.data());
  ASSERT_FALSE(wrongShape.ok());
  EXPECT_NE(wrongShape.message().find("is F32[2, 4], the program wants F32[4, 2]"),
            std::string::npos)
      << wrongShape.message();

  EXPECT_EQ(chooseCheckpointStepDir(dir.string(), 3), "step-3.b");
  EXPECT_EQ(chooseCheckpointStepDir(dir.string(), 4), "step-4");
  fs::remove(dir / getCheckpointShardName("step-3", 1));
  Status missing = CheckpointReader::open(dir.string(), reader);
  ASSERT_FALSE(missing.ok());
  EXPECT_NE(missing.message().find("rank-1.safetensors' (a piece of 'w')"),
            std::string::npos)
      << missing.message();
  fs::remove_all(dir);
}

} // namespace
