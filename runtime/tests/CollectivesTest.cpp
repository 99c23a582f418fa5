//===- CollectivesTest.cpp - Communicator setup and collectives over MPI --===//
//
// Runs under `mpirun -np 4` (ctest does so): every rank runs every test, and
// each test builds the communicator of a dp=2 x tp=2 mesh, so the four ranks
// meet in the same collectives in the same order.
//
//===----------------------------------------------------------------------===//

#include "cleave/runtime/Communicator.h"
#include "cleave/runtime/Portability.h"
#include "cleave/runtime/Profile.h"

#include "TestSupport.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <memory>
#include <vector>

using namespace cleave::rt;

namespace {

const char *const kAxes[] = {"dp", "tp"};
const int64_t kSizes[] = {2, 2};
// Group 3 numbers devices tp-major, against the mesh's order.
const char *const kGroups[] = {"tp", "dp", "dp,tp", "tp,dp"};
const MeshSpec kMesh = {kAxes, kSizes, 2, kGroups, 4};
enum Group { Tp = 0, Dp = 1, All = 2, AllTpMajor = 3 };

class CollectivesTest : public ::testing::Test {
protected:
  void SetUp() override {
    ASSERT_TRUE(context.initialize().ok());
    Status status = createCommunicator(context, kMesh, communicator);
    ASSERT_TRUE(status.ok()) << status.message();
    context.setCommunicator(communicator.get());
    rank = communicator->getRank();
    dp = rank / 2;
    tp = rank % 2;
  }

  Context context;
  std::unique_ptr<Communicator> communicator;
  int rank = 0, dp = 0, tp = 0;
};

TEST_F(CollectivesTest, CoordinatesAndGroupsFollowTheMesh) {
  EXPECT_EQ(communicator->getSize(), 4);
  EXPECT_EQ(communicator->getCoordinates(), (std::vector<int64_t>{dp, tp}));
  EXPECT_EQ(communicator->getGroupSize(Tp), 2);
  EXPECT_EQ(communicator->getGroupSize(All), 4);
  EXPECT_EQ(communicator->getGroupIndex(Tp), tp);
  EXPECT_EQ(communicator->getGroupIndex(Dp), dp);
  EXPECT_EQ(communicator->getGroupIndex(All), rank);
  EXPECT_EQ(communicator->getGroupIndex(AllTpMajor), tp * 2 + dp);
  EXPECT_EQ(communicator->describeGroup(All), "[dp, tp]");
}

TEST_F(CollectivesTest, AllReduceSumsAndMaximaWithinEachGroup) {
  std::vector<float> values = {float(rank + 1), float(10 * (rank + 1))};
  std::vector<float> sums(2);
  ASSERT_TRUE(allReduce(context, Tp, DType::F32, 2, ReduceKind::Sum,
                        values.data(), sums.data(), "test")
                  .ok());
  // tp groups are ranks {0, 1} and {2, 3}.
  float expected = dp == 0 ? 3.0f : 7.0f;
  EXPECT_EQ(sums, (std::vector<float>{expected, 10 * expected}));
  // In place, over every rank.
  ASSERT_TRUE(allReduce(context, All, DType::F32, 2, ReduceKind::Max,
                        values.data(), values.data(), "test")
                  .ok());
  EXPECT_EQ(values, (std::vector<float>{4.0f, 40.0f}));
}

TEST_F(CollectivesTest, AllReduceOfBf16UsesFloatArithmetic) {
  std::vector<cleave::bf16> values(3, cleave::fromFloat<cleave::bf16>(0.5f + rank));
  ASSERT_TRUE(allReduce(context, Dp, DType::BF16, 3, ReduceKind::Sum,
                        values.data(), values.data(), "test")
                  .ok());
  // dp groups are ranks {0, 2} and {1, 3}: 0.5 + 2.5 and 1.5 + 3.5.
  for (cleave::bf16 value : values)
    EXPECT_EQ(cleave::toCompute(value), tp == 0 ? 3.0f : 5.0f);
}

TEST_F(CollectivesTest, AllGatherConcatenatesAnInnerDimensionInGroupOrder) {
  // Each rank holds a [2, 3] block of a [2, 6] matrix split on tp.
  std::vector<int32_t> block(6), whole(12);
  for (int i = 0; i < 6; ++i)
    block[i] = 100 * rank + i;
  ASSERT_TRUE(allGather(context, Tp, sizeof(int32_t), makeShape({2, 3}), 1,
                        block.data(), whole.data(), "test")
                  .ok());
  int first = 2 * dp, second = first + 1;
  std::vector<int32_t> expected;
  for (int row = 0; row < 2; ++row)
    for (int source : {first, second})
      for (int col = 0; col < 3; ++col)
        expected.push_back(100 * source + 3 * row + col);
  EXPECT_EQ(whole, expected);
}

TEST_F(CollectivesTest, ReduceScatterKeepsThisRanksBlockOfTheSum) {
  // A [2, 4] addend on every rank; dp rank d keeps columns [2d, 2d + 2).
  std::vector<float> addend(8), block(4);
  for (int i = 0; i < 8; ++i)
    addend[i] = float(i + rank);
  ASSERT_TRUE(reduceScatter(context, Dp, DType::F32, makeShape({2, 4}), 1,
                            ReduceKind::Sum, addend.data(), block.data(),
                            "test")
                  .ok());
  // The dp group of this rank: ranks tp and tp + 2.
  int rankSum = tp + (tp + 2);
  std::vector<float> expected;
  for (int row = 0; row < 2; ++row)
    for (int col = 2 * dp; col < 2 * dp + 2; ++col)
      expected.push_back(float(2 * (4 * row + col) + rankSum));
  EXPECT_EQ(block, expected);
}

TEST_F(CollectivesTest, StartedCollectivesFinishAtTheirWait) {
  // Two gathers and a sum started together over dp, then each waited for:
  // the same results as the blocking collectives, counted the same.
  std::vector<float> block = {float(rank), float(rank + 10)};
  std::vector<float> gathered(4), sum(2), scattered(1);
  std::vector<int32_t> ids = {rank}, allIds(2);
  communicator->resetCommunicatedBytes();
  ASSERT_TRUE(startAllGather(context, Dp, sizeof(float), makeShape({2}), 0,
                             block.data(), gathered.data(), "test")
                  .ok());
  ASSERT_TRUE(startAllGather(context, Dp, sizeof(int32_t), makeShape({1}), 0,
                             ids.data(), allIds.data(), "test")
                  .ok());
  ASSERT_TRUE(startAllReduce(context, Dp, DType::F32, 2, block.data(),
                             sum.data(), "test")
                  .ok());
  ASSERT_TRUE(startReduceScatter(context, Dp, DType::F32, makeShape({2}), 0,
                                 block.data(), scattered.data(), "test")
                  .ok());
  ASSERT_TRUE(launchCollectives(context, "test").ok());
  EXPECT_TRUE(communicator->hasStarted());
  progressStartedCollectives(context);
  for (void *output : {(void *)gathered.data(), (void *)allIds.data(),
                       (void *)sum.data(), (void *)scattered.data()})
    ASSERT_TRUE(waitCollective(context, output, "test").ok());
  EXPECT_FALSE(communicator->hasStarted());
  // dp groups are ranks {tp, tp + 2}.
  float low = float(tp), high = float(tp + 2);
  EXPECT_EQ(gathered, (std::vector<float>{low, low + 10, high, high + 10}));
  EXPECT_EQ(allIds, (std::vector<int32_t>{tp, tp + 2}));
  EXPECT_EQ(sum, (std::vector<float>{low + high, low + high + 20}));
  EXPECT_EQ(scattered[0], dp == 0 ? low + high : low + high + 20);
  // Half of the 16 and 8 gathered bytes, 2 * 1/2 of the 8 summed, half of
  // the 8 scattered.
  EXPECT_EQ(communicator->getCommunicatedBytes(), 8 + 4 + 8 + 4);
}

TEST_F(CollectivesTest, StartedGroupsLaunchAtTheBucketCap) {
  // With a cap of 8 bytes, a 16-byte gather launches as it is queued.
  communicator->setStartedOptions(true, 8);
  std::vector<float> block = {float(rank), 1.0f, 2.0f, 3.0f}, gathered(8);
  ASSERT_TRUE(startAllGather(context, Dp, sizeof(float), makeShape({4}), 0,
                             block.data(), gathered.data(), "test")
                  .ok());
  EXPECT_TRUE(communicator->hasStarted());
  ASSERT_TRUE(waitCollective(context, gathered.data(), "test").ok());
  EXPECT_FALSE(communicator->hasStarted());
  EXPECT_EQ(gathered[0], float(tp));
  EXPECT_EQ(gathered[4], float(tp + 2));
  communicator->setStartedOptions(true, 25.0 * 1024 * 1024);
}

TEST_F(CollectivesTest, WaitsOnlyForWhatWasStarted) {
  float value = 0;
  Status status = waitCollective(context, &value, "test");
  EXPECT_FALSE(status.ok());
  EXPECT_NE(status.message().find("was not started"), std::string::npos);
  // Blocks along an inner dimension are never started.
  std::vector<float> block(4), whole(8);
  status = startAllGather(context, Dp, sizeof(float), makeShape({2, 2}), 1,
                          block.data(), whole.data(), "test");
  EXPECT_FALSE(status.ok());
  EXPECT_NE(status.message().find("not contiguous"), std::string::npos);
}

TEST_F(CollectivesTest, AllToAllMovesTheSplitBetweenDimensions) {
  // Split on rows before, on columns after: a [4, 2] block of a [4, 4]
  // matrix (split on tp along columns) becomes a [2, 4] block of rows.
  std::vector<int32_t> input(8), output(8);
  for (int row = 0; row < 4; ++row)
    for (int col = 0; col < 2; ++col)
      input[row * 2 + col] = 10 * row + (2 * tp + col); // global (row, col)
  ASSERT_TRUE(allToAll(context, Tp, sizeof(int32_t), makeShape({4, 2}), 0, 1,
                       input.data(), output.data(), "test")
                  .ok());
  std::vector<int32_t> expected;
  for (int row = 2 * tp; row < 2 * tp + 2; ++row)
    for (int col = 0; col < 4; ++col)
      expected.push_back(10 * row + col);
  EXPECT_EQ(output, expected);
}

TEST_F(CollectivesTest, LocalSliceAndDeviceIndexFollowTheGroupOrder) {
  std::vector<int32_t> whole = {0, 1, 2, 3, 4, 5, 6, 7}, block(2);
  ASSERT_TRUE(localSlice(context, AllTpMajor, sizeof(int32_t), makeShape({8}),
                         0, whole.data(), block.data(), "test")
                  .ok());
  int index = tp * 2 + dp;
  EXPECT_EQ(block, (std::vector<int32_t>{2 * index, 2 * index + 1}));
  int32_t device = -1;
  ASSERT_TRUE(deviceIndex(context, AllTpMajor, &device, "test").ok());
  EXPECT_EQ(device, index);
}

TEST_F(CollectivesTest, CountsBytesAsTheCostModelPredicts) {
  std::vector<float> values(100, 1.0f), gathered(200);
  ASSERT_TRUE(allReduce(context, All, DType::F32, 100, ReduceKind::Sum,
                        values.data(), values.data(), "test")
                  .ok());
  // 2 (n - 1) / n of 400 bytes over 4 ranks.
  EXPECT_DOUBLE_EQ(communicator->getCommunicatedBytes(), 600.0);
  communicator->resetCommunicatedBytes();
  ASSERT_TRUE(allGather(context, Tp, sizeof(float), makeShape({100}), 0,
                        values.data(), gathered.data(), "test")
                  .ok());
  // (n - 1) / n of the 800-byte result over 2 ranks.
  EXPECT_DOUBLE_EQ(communicator->getCommunicatedBytes(), 400.0);
  EXPECT_TRUE(communicator->barrier("test").ok());
}

TEST_F(CollectivesTest, SendAndReceiveBetweenPipelineNeighbours) {
  // Along dp (as a pipeline of two stages): stage 0 sends two buffers, stage
  // 1 receives them in the same order, then sends one back.
  std::vector<float> activation = {float(rank), 1.5f, -2.0f};
  std::vector<int32_t> mask = {rank, 7};
  std::vector<float> received(3), gradient(3);
  std::vector<int32_t> receivedMask(2);
  int64_t peer = 1 - dp;
  if (dp == 0) {
    ASSERT_TRUE(sendTo(context, Dp, peer, 0, 12, activation.data(), "test").ok());
    ASSERT_TRUE(sendTo(context, Dp, peer, 1, 8, mask.data(), "test").ok());
    ASSERT_TRUE(receiveFrom(context, Dp, peer, 2, 12, gradient.data(), "test").ok());
    EXPECT_EQ(gradient, (std::vector<float>{-float(rank), -1.5f, 2.0f}));
  } else {
    ASSERT_TRUE(receiveFrom(context, Dp, peer, 0, 12, received.data(), "test").ok());
    ASSERT_TRUE(receiveFrom(context, Dp, peer, 1, 8, receivedMask.data(), "test").ok());
    // The partner is the rank with the same tp coordinate on dp = 0.
    EXPECT_EQ(received, (std::vector<float>{float(rank - 2), 1.5f, -2.0f}));
    EXPECT_EQ(receivedMask, (std::vector<int32_t>{rank - 2, 7}));
    for (float &value : received)
      value = -value;
    ASSERT_TRUE(sendTo(context, Dp, peer, 2, 12, received.data(), "test").ok());
  }
  // Only what this rank sent counts.
  EXPECT_DOUBLE_EQ(communicator->getCommunicatedBytes(), dp == 0 ? 20.0 : 12.0);
}

TEST_F(CollectivesTest, SendsNeverWaitForTheirReceiver) {
  // Both neighbours send 4 MiB (far past MPI's eager limit, where a send
  // completes only once the receive is posted) before either receives:
  // sends copy their bytes out, so this cannot deadlock, and the buffer is
  // free as soon as the send returns.
  constexpr size_t kCount = 1 << 20;
  std::vector<float> outgoing(kCount, float(rank)), incoming(kCount, -1.0f);
  int64_t peer = 1 - dp;
  ASSERT_TRUE(sendTo(context, Dp, peer, 3, kCount * sizeof(float),
                     outgoing.data(), "test").ok());
  std::fill(outgoing.begin(), outgoing.end(), -7.0f);
  ASSERT_TRUE(receiveFrom(context, Dp, peer, 3, kCount * sizeof(float),
                          incoming.data(), "test").ok());
  ASSERT_TRUE(communicator->completeSends("test").ok());
  // The partner is the rank with the same tp coordinate on the other dp.
  float partner = float(rank + (dp == 0 ? 2 : -2));
  EXPECT_EQ(incoming.front(), partner);
  EXPECT_EQ(incoming.back(), partner);
}

TEST_F(CollectivesTest, ReceivesPostedEarlyTakeTheirBytesInPostingOrder) {
  // Two receives with one peer and tag posted before anything is sent,
  // then a third left to the program: the messages land in posting order,
  // large ones included (past the eager limit, where an unposted receive
  // holds the transfer back).
  constexpr size_t kCount = 1 << 18;
  int64_t peer = 1 - dp;
  std::vector<float> first(kCount, -1.0f), second(kCount, -1.0f),
      third(kCount, -1.0f);
  for (int i = 0; i < 2; ++i)
    ASSERT_TRUE(
        communicator->postReceive(Dp, peer, 5, kCount * sizeof(float), "test")
            .ok());
  for (int i = 0; i < 3; ++i) {
    std::vector<float> message(kCount, float(10 * rank + i));
    ASSERT_TRUE(sendTo(context, Dp, peer, 5, kCount * sizeof(float),
                       message.data(), "test")
                    .ok());
  }
  communicator->progressTransfers();
  for (std::vector<float> *target : {&first, &second, &third})
    ASSERT_TRUE(receiveFrom(context, Dp, peer, 5, kCount * sizeof(float),
                            target->data(), "test")
                    .ok());
  ASSERT_TRUE(communicator->completeSends("test").ok());
  float partner = float(10 * (rank + (dp == 0 ? 2 : -2)));
  EXPECT_EQ(first.back(), partner);
  EXPECT_EQ(second.front(), partner + 1);
  EXPECT_EQ(third.back(), partner + 2);
  // A program receiving another size than was posted is told so.
  ASSERT_TRUE(communicator->postReceive(Dp, peer, 6, 8, "test").ok());
  float pair[2] = {float(rank), 0.0f};
  ASSERT_TRUE(sendTo(context, Dp, peer, 6, 8, pair, "test").ok());
  Status mismatch = receiveFrom(context, Dp, peer, 6, 4, pair, "m.mlir:5:6");
  ASSERT_FALSE(mismatch.ok());
  EXPECT_EQ(mismatch.message(), "m.mlir:5:6: recv of 4 bytes was posted for 8");
  ASSERT_TRUE(communicator->completeSends("test").ok());
}

TEST_F(CollectivesTest, RejectsPeersOutsideTheGroup) {
  float value = 0;
  Status self = sendTo(context, Dp, dp, 0, 4, &value, "m.mlir:1:2");
  ASSERT_FALSE(self.ok());
  EXPECT_EQ(self.message(), "m.mlir:1:2: send to peer " + std::to_string(dp) +
                                " of a group of 2 where this rank is " +
                                std::to_string(dp));
  EXPECT_FALSE(receiveFrom(context, Dp, 5, 0, 4, &value, "m.mlir:1:2").ok());
}

TEST_F(CollectivesTest, RejectsGroupsTheProgramDoesNotHave) {
  float value = 0;
  Status status = allReduce(context, 7, DType::F32, 1, ReduceKind::Sum, &value,
                            &value, "m.mlir:3:4");
  ASSERT_FALSE(status.ok());
  EXPECT_EQ(status.message(), "m.mlir:3:4: all_reduce names group 7 of 4");
}

} // namespace
