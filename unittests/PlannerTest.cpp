//===- PlannerTest.cpp - Cost formulas, cluster files and the search ------===//

#include "cleave/Planner/Planner.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <functional>
#include <limits>
#include <random>

using namespace mlir;
using namespace mlir::cleave;
using namespace mlir::cleave::planner;

namespace {

/// Two nodes' worth of a simple device: 100 TFLOP/s bf16 at efficiency
/// 0.5, 1 TB/s memory, 16 GB; links of 100 and 10 GB/s with 1 and 10 us.
Cluster makeCluster() {
  Cluster cluster;
  cluster.name = "test";
  cluster.peakFlops = {{"bf16", 100e12}, {"f32", 10e12}};
  cluster.memoryBytes = 16e9;
  cluster.memoryBandwidth = 1e12;
  cluster.gemmEfficiency = 0.5;
  cluster.devicesPerNode = 4;
  cluster.intraNode = {100e9, 1e-6};
  cluster.interNode = {10e9, 10e-6};
  return cluster;
}

/// A model whose numbers are easy to follow: 8 blocks, per sample 1 GFLOP
/// of GEMMs and 1 MB of activations each, no memory-bound work.
ModelProfile makeModel() {
  ModelProfile model;
  model.batch = 16;
  model.seq = 128;
  model.hidden = 256;
  model.heads = 8;
  model.vocab = 1000;
  model.layers = 8;
  model.elementBytes = 4;
  model.block.params = 1e6;
  model.block.matmulFlops = 1e9;
  model.block.activationBytes = 1e6;
  return model;
}

/// The cluster of makeCluster with the whole window available to hide
/// collectives under and 1 MB buckets, and options for an f32 dp=2 plan.
struct OverlapCase {
  ModelProfile model = makeModel();
  Cluster cluster = makeCluster();
  PlannerOptions options;
  Plan plan;
  OverlapCase() {
    cluster.overlap.backwardShare = 1.0;
    cluster.overlap.bucketBytes = 1e6;
    options.devices = 2;
    options.precision = "f32";
    plan.dp = 2;
  }
};

/// pp=2 under 1F1B, 4 micro-batches of 4 samples: the first rank keeps 2
/// in flight.
Plan makePipelinePlan() {
  Plan plan;
  plan.pp = 2;
  plan.microBatchSize = 4;
  plan.microBatches = 4;
  plan.schedule = pipeline::ScheduleKind::OneFOneB;
  return plan;
}

TEST(PlannerTest, CollectivesFollowTheRingFormulas) {
  Link link{100e9, 1e-6};
  // 2(n-1) alpha + 2(n-1)/n S/B: 6 us + 1.5 * 1 GB / 100 GB/s.
  EXPECT_DOUBLE_EQ(getAllReduceTime(1e9, 4, link), 6e-6 + 0.015);
  // (n-1) alpha + (n-1)/n S/B.
  EXPECT_DOUBLE_EQ(getAllGatherTime(1e9, 4, link), 3e-6 + 0.0075);
  EXPECT_DOUBLE_EQ(getSendTime(1e9, link), 1e-6 + 0.01);
  // One device moves nothing.
  EXPECT_EQ(getAllReduceTime(1e9, 1, link), 0.0);
}

TEST(PlannerTest, AnAxisUsesTheNodeLinkWhileItsGroupFitsANode) {
  Cluster cluster = makeCluster();
  EXPECT_EQ(&getAxisLink(cluster, 1, 4), &cluster.intraNode);
  // Stride 2, size 2: devices 0 and 2, one node.
  EXPECT_EQ(&getAxisLink(cluster, 2, 2), &cluster.intraNode);
  // Stride 4: the second device is on the next node.
  EXPECT_EQ(&getAxisLink(cluster, 4, 2), &cluster.interNode);
  EXPECT_EQ(&getAxisLink(cluster, 1, 8), &cluster.interNode);
  // Groups of 3 on nodes of 4: devices 3, 4, 5 straddle two nodes.
  EXPECT_EQ(&getAxisLink(cluster, 1, 3), &cluster.interNode);
}

TEST(PlannerTest, ComputeMemoryAndBubbleOfOnePipelinePlan) {
  ModelProfile model = makeModel();
  Cluster cluster = makeCluster();
  PlannerOptions options;
  options.devices = 2;
  Plan plan = makePipelinePlan();
  std::string why;
  std::optional<PlanCost> cost =
      evaluatePlan(model, cluster, options, plan, why);
  ASSERT_TRUE(cost) << why;
  // Per micro-batch a rank runs 4 blocks x 3 passes x 4 samples x 1 GFLOP
  // at 50 TFLOP/s: 0.96 ms; 4 micro-batches.
  EXPECT_NEAR(cost->compute, 4 * 4 * 3 * 4e9 / 50e12, 1e-12);
  // (p - 1) / (m + p - 1).
  EXPECT_DOUBLE_EQ(cost->bubbleFraction, 1.0 / 5.0);
  // Two transfers of 4 x 128 x 256 bf16 values per micro-batch, inside the
  // node.
  double activation = 4.0 * 128 * 256 * 2;
  EXPECT_NEAR(cost->pipelineTransfers, 4 * 2 * (1e-6 + activation / 100e9),
              1e-15);
  EXPECT_NEAR(cost->bubble,
              (cost->compute + cost->pipelineTransfers) / 4.0, 1e-12);
  // 4 blocks of 1M parameters: f32 weights and gradients and AdamW's two
  // f32 moments, 4 + 4 + 8 bytes each (mixed precision computes in bf16
  // but keeps these in f32).
  EXPECT_DOUBLE_EQ(cost->weightsMemory, 4e6 * 4);
  EXPECT_DOUBLE_EQ(cost->gradientsMemory, 4e6 * 4);
  EXPECT_DOUBLE_EQ(cost->optimizerMemory, 4e6 * 8);
  // 1F1B: the first rank keeps 2 micro-batches of 4 blocks x 4 samples x
  // 1 MB (f32 in the IR, bf16 trained: half).
  EXPECT_DOUBLE_EQ(cost->activationMemory, 2 * 4 * 4 * 1e6 / 2);
  EXPECT_TRUE(cost->fits);
  // The sends, listed: 2 per micro-batch of the activation.
  ASSERT_EQ(cost->collectives.size(), 1u);
  EXPECT_EQ(cost->collectives[0].name,
            "pp send of activations and their gradients");
  EXPECT_DOUBLE_EQ(cost->collectives[0].count, 8.0);
  EXPECT_DOUBLE_EQ(cost->collectives[0].bytes, activation);
  EXPECT_DOUBLE_EQ(cost->collectives[0].seconds, cost->pipelineTransfers);
}

// ZeRO-1 over dp=2 with tp=2: the listed collectives are the tensor
// parallel all-reduces, the gradients' reduce-scatter and the weights'
// all-gather, and their seconds are the breakdown's.
TEST(PlannerTest, TheStepsCollectivesAddUpToItsCommunication) {
  ModelProfile model = makeModel();
  Cluster cluster = makeCluster();
  PlannerOptions options;
  options.devices = 4;
  Plan plan;
  plan.dp = 2;
  plan.tp = 2;
  plan.microBatchSize = 8;
  plan.zeroStage = 1;
  std::string why;
  std::optional<PlanCost> cost =
      evaluatePlan(model, cluster, options, plan, why);
  ASSERT_TRUE(cost) << why;
  ASSERT_EQ(cost->collectives.size(), 3u);
  EXPECT_EQ(cost->collectives[0].name, "tp all-reduce of activations");
  // 8 blocks x 4 (two forward, two backward) + the embedding's and head's.
  EXPECT_DOUBLE_EQ(cost->collectives[0].count, 8 * 4 + 2);
  EXPECT_DOUBLE_EQ(cost->collectives[0].seconds, cost->tensorParallel);
  EXPECT_EQ(cost->collectives[1].name, "dp reduce-scatter of gradients");
  EXPECT_EQ(cost->collectives[2].name, "dp all-gather of weights");
  EXPECT_NEAR(cost->collectives[1].seconds + cost->collectives[2].seconds,
              cost->dataParallel, 1e-15);
}

// The once-per-step reduction hides behind backwardShare of the last
// backward, but never its last bucket, which starts when the backward
// ends; each bucket adds its start latency. Exposed and hidden make up the
// whole.
TEST(PlannerTest, OverlapModelExposesWhatTheBackwardCannotHide) {
  OverlapModel overlap;
  overlap.backwardShare = 0.5;
  overlap.bucketLatency = 1e-3;
  overlap.bucketBytes = 25.0;
  auto expect = [&](double bytes, double seconds, double window, double exposed,
                    double hidden, const OverlapModel &model) {
    ReductionOverlap got = getReductionOverlap(model, bytes, seconds, window);
    EXPECT_NEAR(got.exposed, exposed, 1e-12) << bytes << " " << window;
    EXPECT_NEAR(got.hidden, hidden, 1e-12) << bytes << " " << window;
  };
  // 100 bytes in 4 buckets, 0.1 s unhidden: 0.104 s with the latencies.
  // Half of a 0.1 s window hides 0.05 s.
  expect(100.0, 0.1, 0.1, 0.054, 0.05, overlap);
  // A long window hides all but the last bucket: a quarter, plus its start.
  expect(100.0, 0.1, 10.0, 0.026, 0.078, overlap);
  // One bucket: nothing hides.
  expect(10.0, 0.1, 10.0, 0.101, 0.0, overlap);
  // A cluster that says nothing hides nothing.
  expect(100.0, 0.1, 10.0, 0.1, 0.0, OverlapModel());
  expect(0.0, 0.0, 1.0, 0.0, 0.0, overlap);
}

// With micro-batches plain dp reduces its f32 gradients once per step, the
// same bytes as one micro-batch, and the overlap model hides part of it;
// ZeRO-2 still reduce-scatters every micro-batch's.
TEST(PlannerTest, DataParallelReducesOncePerStepWithMicroBatches) {
  OverlapCase test;
  auto &[model, cluster, options, plan] = test;
  plan.microBatchSize = 8;
  std::string why;
  std::optional<PlanCost> one =
      evaluatePlan(model, cluster, options, plan, why);
  ASSERT_TRUE(one) << why;
  plan.microBatchSize = 2;
  plan.microBatches = 4;
  std::optional<PlanCost> four =
      evaluatePlan(model, cluster, options, plan, why);
  ASSERT_TRUE(four) << why;
  EXPECT_DOUBLE_EQ(four->communicatedBytes, one->communicatedBytes);
  ASSERT_FALSE(four->collectives.empty());
  const CollectiveCost &reduction = four->collectives.front();
  EXPECT_EQ(reduction.name, "dp all-reduce of gradients, once per step");
  EXPECT_DOUBLE_EQ(reduction.count, 1.0);
  EXPECT_DOUBLE_EQ(reduction.bytes, 8e6 * 4);
  EXPECT_GT(four->dataParallelHidden, 0.0);
  EXPECT_NEAR(four->dataParallel + four->dataParallelHidden, reduction.seconds,
              1e-15);

  plan.zeroStage = 2;
  std::optional<PlanCost> zero2 =
      evaluatePlan(model, cluster, options, plan, why);
  ASSERT_TRUE(zero2) << why;
  EXPECT_EQ(zero2->collectives.front().name, "dp reduce-scatter of gradients");
  EXPECT_DOUBLE_EQ(zero2->collectives.front().count, 4.0);
  // Each micro-batch's reduce-scatter hides behind its own backward; the
  // weights' gather after the update does not.
  double scatters = zero2->collectives[0].seconds;
  double gather = zero2->collectives[1].seconds;
  EXPECT_GT(zero2->dataParallelHidden, 0.0);
  EXPECT_LE(zero2->dataParallelHidden, scatters);
  EXPECT_NEAR(zero2->dataParallel + zero2->dataParallelHidden,
              scatters + gather, 1e-15);
}

// ZeRO-3 gathers each micro-batch's weights a layer ahead, behind its
// forward, and those its backward reads behind the backward with the
// reduce-scatters; with no share of the compute to hide under, all of it
// is exposed.
TEST(PlannerTest, ZeroThreeGathersHideBehindTheForward) {
  OverlapCase test;
  auto &[model, cluster, options, plan] = test;
  plan.zeroStage = 3;
  plan.microBatchSize = 2;
  plan.microBatches = 4;
  std::string why;
  std::optional<PlanCost> hidden =
      evaluatePlan(model, cluster, options, plan, why);
  ASSERT_TRUE(hidden) << why;
  double total = 0.0;
  for (const CollectiveCost &collective : hidden->collectives)
    if (StringRef(collective.name).starts_with("dp "))
      total += collective.seconds;
  EXPECT_GT(hidden->dataParallelHidden, 0.0);
  EXPECT_NEAR(hidden->dataParallel + hidden->dataParallelHidden, total, 1e-12);
  cluster.overlap.backwardShare = 0.0;
  std::optional<PlanCost> exposed =
      evaluatePlan(model, cluster, options, plan, why);
  ASSERT_TRUE(exposed) << why;
  EXPECT_EQ(exposed->dataParallelHidden, 0.0);
  EXPECT_NEAR(exposed->dataParallel, total, 1e-12);
  EXPECT_GT(exposed->stepTime, hidden->stepTime);
}

TEST(PlannerTest, ZeroDividesStateOverDataParallelRanks) {
  ModelProfile model = makeModel();
  Cluster cluster = makeCluster();
  PlannerOptions options;
  options.devices = 4;
  Plan plan;
  plan.dp = 4;
  plan.microBatchSize = 4;
  std::string why;
  for (int64_t stage = 0; stage <= 3; ++stage) {
    plan.zeroStage = stage;
    std::optional<PlanCost> cost =
        evaluatePlan(model, cluster, options, plan, why);
    ASSERT_TRUE(cost) << why;
    double params = 8e6;
    EXPECT_DOUBLE_EQ(cost->optimizerMemory, params * 8 / (stage >= 1 ? 4 : 1));
    EXPECT_DOUBLE_EQ(cost->gradientsMemory, params * 4 / (stage >= 2 ? 4 : 1));
    EXPECT_DOUBLE_EQ(cost->weightsMemory, params * 4 / (stage == 3 ? 4 : 1));
  }
}

// Recompute of the first k of a stage's 4 blocks (pp=2, 1F1B, 4
// micro-batches of 4: rank 0 keeps 2 in flight): each recomputed block
// keeps its input (4 x 128 x 256 bf16 values) instead of its activations,
// one block's are rebuilt at a time, and its forward runs again.
TEST(PlannerTest, RecomputeOfTheFirstBlocksOfEachStage) {
  ModelProfile model = makeModel();
  Cluster cluster = makeCluster();
  PlannerOptions options;
  options.devices = 2;
  Plan plan = makePipelinePlan();
  plan.recompute = true;
  std::string why;
  double input = 4.0 * 128 * 256 * 2;
  double perBlock = 4 * 1e6 / 2;
  double forward = 4 * 1e9 / 50e12; // one block, one micro-batch of 4
  std::optional<PlanCost> none;
  for (int64_t k = 0; k <= 4; ++k) {
    options.recomputeLayers = k;
    std::optional<PlanCost> cost =
        evaluatePlan(model, cluster, options, plan, why);
    ASSERT_TRUE(cost) << why;
    EXPECT_DOUBLE_EQ(
        cost->activationMemory,
        2 * (k * input + (k > 0 ? perBlock : 0.0) + (4 - k) * perBlock));
    // The slowest rank's recomputed forwards, 4 micro-batches of them.
    EXPECT_NEAR(cost->recompute, 4 * k * forward, 1e-12);
    EXPECT_NEAR(cost->compute, 4 * 4 * 3 * forward, 1e-12);
    // All blocks is full recompute: no per-stage counts.
    if (k == 4)
      EXPECT_TRUE(cost->recomputeLayers.empty());
    else
      EXPECT_EQ(cost->recomputeLayers, (std::vector<int64_t>{k, k}));
    if (k == 0)
      none = cost;
  }
  // Full recompute prices as every block recomputed.
  options.recomputeLayers.reset();
  std::optional<PlanCost> full =
      evaluatePlan(model, cluster, options, plan, why);
  ASSERT_TRUE(full) << why;
  EXPECT_DOUBLE_EQ(full->activationMemory, 2 * (4 * input + perBlock));
  EXPECT_TRUE(full->recomputeLayers.empty());
  EXPECT_DOUBLE_EQ(full->tflopsPerDevice * full->stepTime,
                   4.0 / 3.0 * none->tflopsPerDevice * none->stepTime);
}

// Left to choose, recompute covers the fewest blocks of each stage that
// fit: under a limit between the two ends, the first rank (2 micro-batches
// in flight) recomputes more than the last (1).
TEST(PlannerTest, RecomputeTakesTheFewestBlocksThatFit) {
  ModelProfile model = makeModel();
  Cluster cluster = makeCluster();
  PlannerOptions options;
  options.devices = 2;
  Plan plan = makePipelinePlan();
  std::string why;
  std::optional<PlanCost> none =
      evaluatePlan(model, cluster, options, plan, why);
  ASSERT_TRUE(none) << why;
  // Room for the weights, gradients, state and 1.5 stages' activations.
  double fixed = none->peakMemory - none->activationMemory;
  options.memoryLimit = fixed + 0.75 * none->activationMemory;
  plan.recompute = true;
  plan.recomputeFewest = true;
  std::optional<PlanCost> fewest =
      evaluatePlan(model, cluster, options, plan, why);
  ASSERT_TRUE(fewest) << why;
  EXPECT_TRUE(fewest->fits);
  ASSERT_EQ(fewest->recomputeLayers.size(), 2u);
  EXPECT_GT(fewest->recomputeLayers[0], fewest->recomputeLayers[1]);
  // One block fewer on the first rank would not fit.
  options.recomputeLayers = fewest->recomputeLayers[0] - 1;
  plan.recomputeFewest = false;
  std::optional<PlanCost> less =
      evaluatePlan(model, cluster, options, plan, why);
  ASSERT_TRUE(less) << why;
  EXPECT_FALSE(less->fits);
}

// ZeRO inside pipeline stages divides each rank's state (and gradients,
// weights) by dp as without stages. Over several micro-batches ZeRO-1
// keeps whole gradients, reduce-scattered once per step, then the weights
// all-gathered once; ZeRO-2 reduce-scatters each micro-batch's.
TEST(PlannerTest, ZeroInsidePipelineStages) {
  ModelProfile model = makeModel();
  Cluster cluster = makeCluster();
  PlannerOptions options;
  options.devices = 4;
  Plan plan;
  plan.dp = 2;
  plan.pp = 2;
  plan.microBatchSize = 2;
  plan.microBatches = 4;
  std::string why;
  double stageParams = 4e6; // the larger stage's 4 blocks
  for (int64_t stage = 1; stage <= 3; ++stage) {
    plan.zeroStage = stage;
    std::optional<PlanCost> cost =
        evaluatePlan(model, cluster, options, plan, why);
    ASSERT_TRUE(cost) << why;
    EXPECT_DOUBLE_EQ(cost->optimizerMemory, stageParams * 8 / 2);
    EXPECT_DOUBLE_EQ(cost->gradientsMemory,
                     stageParams * 4 / (stage >= 2 ? 2 : 1));
    EXPECT_DOUBLE_EQ(cost->weightsMemory,
                     stageParams * 4 / (stage == 3 ? 2 : 1));
    std::vector<std::string> names;
    for (const CollectiveCost &collective : cost->collectives)
      names.push_back(collective.name);
    std::string gradients =
        stage == 1 ? "dp reduce-scatter of gradients, once per step"
                   : "dp reduce-scatter of gradients";
    ASSERT_NE(std::find(names.begin(), names.end(), gradients), names.end());
    for (const CollectiveCost &collective : cost->collectives) {
      if (collective.name == gradients) {
        EXPECT_DOUBLE_EQ(collective.count, stage == 1 ? 1.0 : 4.0);
      }
      if (collective.name == "dp all-gather of weights") {
        EXPECT_DOUBLE_EQ(collective.count, stage == 3 ? 4.0 : 1.0);
      }
      // The profile does not say what the backward reads: all of it.
      if (collective.name == "dp all-gather of weights the backward reads") {
        EXPECT_EQ(stage, 3);
        EXPECT_DOUBLE_EQ(collective.count, 4.0);
        // Gathered as the forward reads them: in 16 bits (bf16 plans).
        EXPECT_DOUBLE_EQ(collective.bytes, stageParams * 2);
      }
    }
  }
}

// ZeRO-3 gathers, for each micro-batch's backward, only the parameters the
// backward reads (a profile from the training step tells which); the bytes
// per device count them.
TEST(PlannerTest, ZeroThreeGathersWhatTheBackwardReads) {
  ModelProfile model = makeModel();
  Cluster cluster = makeCluster();
  PlannerOptions options;
  options.devices = 2;
  Plan plan;
  plan.dp = 2;
  plan.microBatchSize = 4;
  plan.microBatches = 2;
  plan.zeroStage = 3;
  std::string why;
  std::optional<PlanCost> all =
      evaluatePlan(model, cluster, options, plan, why);
  ASSERT_TRUE(all) << why;
  for (PartCost *part : {&model.embed, &model.block, &model.head})
    part->backwardParams = part->params / 2;
  std::optional<PlanCost> half =
      evaluatePlan(model, cluster, options, plan, why);
  ASSERT_TRUE(half) << why;
  // Each of the 2 micro-batches gathers half the parameters fewer, half of
  // each gather sent by each of the 2 devices, 2 bytes each (bf16).
  EXPECT_DOUBLE_EQ(all->communicatedBytes - half->communicatedBytes,
                   2 * (model.getParams() / 2) / 2 * 2);
  EXPECT_LT(half->dataParallel, all->dataParallel);
}

// Tensor parallelism splits the activations inside attention and the MLP;
// the residual stream's (here a quarter of them) only with sequence
// parallelism, which needs the sequence to divide by tp.
TEST(PlannerTest, SequenceParallelismSplitsTheResidualStream) {
  ModelProfile model = makeModel();
  model.block.replicatedActivationBytes = 0.25e6;
  Cluster cluster = makeCluster();
  PlannerOptions options;
  options.devices = 2;
  Plan plan;
  plan.tp = 2;
  plan.microBatchSize = 16;
  std::string why;
  std::optional<PlanCost> megatron =
      evaluatePlan(model, cluster, options, plan, why);
  ASSERT_TRUE(megatron) << why;
  plan.sequenceParallel = true;
  std::optional<PlanCost> sequence =
      evaluatePlan(model, cluster, options, plan, why);
  ASSERT_TRUE(sequence) << why;
  // 8 blocks x 16 samples, bf16 (half the IR's f32 bytes).
  double scale = 8 * 16 / 2.0;
  EXPECT_DOUBLE_EQ(megatron->activationMemory, scale * (0.75e6 / 2 + 0.25e6));
  EXPECT_DOUBLE_EQ(sequence->activationMemory, scale * 1e6 / 2);
  // The same bytes move: each all-reduce becomes a reduce-scatter and an
  // all-gather.
  EXPECT_DOUBLE_EQ(sequence->communicatedBytes, megatron->communicatedBytes);
  EXPECT_DOUBLE_EQ(sequence->stepTime, megatron->stepTime);
  EXPECT_EQ(sequence->collectives.front().name,
            "tp reduce-scatter and all-gather of activations");
  EXPECT_EQ(plan.getStrategies(), (SmallVector<std::string, 3>{"megatron-sp"}));
  model.seq = 127;
  EXPECT_FALSE(evaluatePlan(model, cluster, options, plan, why));
  EXPECT_NE(why.find("sequence parallelism splits the 127-token sequence"),
            std::string::npos);
}

TEST(PlannerTest, TensorParallelismIsPricedAsTheSearchedSplit) {
  ModelProfile model = makeModel();
  Cluster cluster = makeCluster();
  PlannerOptions options;
  options.devices = 2;
  options.precision = "f32";
  options.unpaddedVocabulary = true;
  Plan plan;
  plan.tp = 2;
  plan.microBatchSize = 8;
  plan.microBatches = 2;
  plan.pp = 1;
  std::string why;
  std::optional<PlanCost> megatron =
      evaluatePlan(model, cluster, options, plan, why);
  ASSERT_TRUE(megatron) << why;

  // A split that keeps every block whole: each device computes all of it,
  // keeps all of its parameters and activations, and sends nothing.
  SearchedSplit whole;
  model.searchedSplits[2] = whole;
  std::optional<PlanCost> kept =
      evaluatePlan(model, cluster, options, plan, why);
  ASSERT_TRUE(kept) << why;
  Plan single;
  single.microBatchSize = 8;
  single.microBatches = 2;
  single.pp = 1;
  options.devices = 1;
  std::optional<PlanCost> one =
      evaluatePlan(model, cluster, options, single, why);
  ASSERT_TRUE(one) << why;
  EXPECT_DOUBLE_EQ(kept->compute, one->compute);
  EXPECT_DOUBLE_EQ(kept->weightsMemory, one->weightsMemory);
  EXPECT_DOUBLE_EQ(kept->activationMemory, one->activationMemory);
  EXPECT_DOUBLE_EQ(kept->communicatedBytes, 0.0);
  EXPECT_DOUBLE_EQ(kept->tensorParallel, 0.0);
  options.devices = 2;

  // A split of half of everything with one all-reduce of an activation
  // (1 MB at the IR's 16 samples) and one all-gather of a weight (1 MB)
  // per block: per micro-batch of 8 samples, half the activation's bytes
  // and all of the weight's, as each device sends them.
  SearchedSplit half;
  half.block.matmulShare = half.block.memoryShare = 0.5;
  half.block.activationShare = half.block.parameterShare = 0.5;
  SplitCollectiveCost reduce;
  reduce.tensorBytes = 1e6;
  reduce.communicatedBytes = 1e6; // 2 (n - 1) / n of it, n = 2
  reduce.scalesWithBatch = true;
  reduce.forward = true;
  SplitCollectiveCost gather;
  gather.kind = SplitCollectiveCost::Kind::AllGather;
  gather.tensorBytes = 1e6;
  gather.communicatedBytes = 0.5e6;
  half.block.collectives = {reduce, gather};
  model.searchedSplits[2] = half;
  std::optional<PlanCost> searched =
      evaluatePlan(model, cluster, options, plan, why);
  ASSERT_TRUE(searched) << why;
  EXPECT_DOUBLE_EQ(searched->compute, megatron->compute);
  EXPECT_DOUBLE_EQ(searched->weightsMemory, megatron->weightsMemory);
  // 2 micro-batches x 8 blocks x (0.5 MB + 0.5 MB), and the gradient
  // norm's all-reduce over tp (one f32: 2 x 1/2 x 4 bytes).
  EXPECT_DOUBLE_EQ(searched->communicatedBytes, 2 * 8 * (0.5e6 + 0.5e6) + 4);
  double perMicro = 8 * (getAllReduceTime(0.5e6, 2, cluster.intraNode) +
                         getAllGatherTime(1e6, 2, cluster.intraNode));
  EXPECT_DOUBLE_EQ(searched->tensorParallel, 2 * perMicro);
  ASSERT_FALSE(searched->collectives.empty());
  EXPECT_EQ(searched->collectives.front().name,
            "tp collectives of the searched split");
  EXPECT_DOUBLE_EQ(searched->collectives.front().count, 2 * 8 * 2);

  // A recomputed block runs its forward's collectives again.
  plan.recompute = true;
  std::optional<PlanCost> recomputed =
      evaluatePlan(model, cluster, options, plan, why);
  ASSERT_TRUE(recomputed) << why;
  EXPECT_DOUBLE_EQ(recomputed->communicatedBytes,
                   searched->communicatedBytes + 2 * 8 * 0.5e6);

  // A vocabulary padded for tp is a model the search has not seen: priced
  // as Megatron-LM's split.
  plan.recompute = false;
  options.unpaddedVocabulary = false;
  std::optional<PlanCost> padded =
      evaluatePlan(model, cluster, options, plan, why);
  ASSERT_TRUE(padded) << why;
  EXPECT_EQ(padded->paddedVocab, 1024);
  model.searchedSplits.clear();
  std::optional<PlanCost> paddedMegatron =
      evaluatePlan(model, cluster, options, plan, why);
  ASSERT_TRUE(paddedMegatron) << why;
  EXPECT_DOUBLE_EQ(padded->communicatedBytes,
                   paddedMegatron->communicatedBytes);
  EXPECT_DOUBLE_EQ(padded->stepTime, paddedMegatron->stepTime);
  options.unpaddedVocabulary = true;
  model.searchedSplits[2] = half;

  // Sequence parallelism builds Megatron-LM's split, priced as such.
  plan.sequenceParallel = true;
  model.block.replicatedActivationBytes = 0.0;
  std::optional<PlanCost> sequence =
      evaluatePlan(model, cluster, options, plan, why);
  ASSERT_TRUE(sequence) << why;
  EXPECT_DOUBLE_EQ(sequence->communicatedBytes, megatron->communicatedBytes);
}

TEST(PlannerTest, TensorParallelismPadsTheVocabulary) {
  ModelProfile model = makeModel();
  Cluster cluster = makeCluster();
  PlannerOptions options;
  options.devices = 2;
  Plan plan;
  plan.tp = 2;
  plan.microBatchSize = 16;
  std::string why;
  std::optional<PlanCost> cost =
      evaluatePlan(model, cluster, options, plan, why);
  ASSERT_TRUE(cost) << why;
  EXPECT_EQ(cost->paddedVocab, 1024);
  // Run as it is, the model keeps its vocabulary, which tp must divide.
  options.unpaddedVocabulary = true;
  cost = evaluatePlan(model, cluster, options, plan, why);
  ASSERT_TRUE(cost) << why;
  EXPECT_EQ(cost->paddedVocab, 1000);
  model.vocab = 1001;
  EXPECT_FALSE(evaluatePlan(model, cluster, options, plan, why));
  EXPECT_EQ(why, "tp=2 does not divide the 1001-token vocabulary");
  model.vocab = 1000;
  options.unpaddedVocabulary = false;
  plan.tp = 3;
  EXPECT_FALSE(evaluatePlan(model, cluster, options, plan, why));
  EXPECT_EQ(why, "tp=3 does not divide the 8 attention heads");
}

TEST(PlannerTest, PlansBeyondTheMemoryLimitDoNotFit) {
  ModelProfile model = makeModel();
  model.block.params = 1e9; // 8 G parameters: 128 GB of state
  Cluster cluster = makeCluster();
  PlannerOptions options;
  options.devices = 2;
  std::string error;
  FailureOr<SearchResult> result = searchPlans(model, cluster, options, error);
  EXPECT_TRUE(failed(result));
  EXPECT_NE(error.find("no plan fits in memory"), std::string::npos) << error;
}

TEST(PlannerTest, SearchRanksPlansByStepTime) {
  ModelProfile model = makeModel();
  Cluster cluster = makeCluster();
  PlannerOptions options;
  options.devices = 4;
  std::string error;
  FailureOr<SearchResult> result = searchPlans(model, cluster, options, error);
  ASSERT_TRUE(succeeded(result)) << error;
  ASSERT_FALSE(result->plans.empty());
  for (size_t i = 1; i < result->plans.size(); ++i)
    EXPECT_LE(result->plans[i - 1].cost.stepTime, result->plans[i].cost.stepTime);
  // A device count nothing divides.
  options.devices = 9;
  EXPECT_TRUE(failed(searchPlans(model, cluster, options, error)));
  EXPECT_NE(error.find("no mesh of 9 devices"), std::string::npos) << error;
}

TEST(PlannerTest, ClusterFilesNeedEveryField) {
  std::string error;
  FailureOr<Cluster> cluster = parseCluster(R"({
    "name": "n", "devices_per_node": 2,
    "device": {"name": "d", "peak_flops": {"f32": 1e12},
               "memory_bytes": 1e9, "memory_bandwidth": 1e11,
               "gemm_efficiency": 0.9},
    "links": {"intra_node": {"bandwidth": 1e10, "latency": 1e-6},
              "inter_node": {"bandwidth": 1e9, "latency": 1e-5}}})",
                                            error);
  ASSERT_TRUE(succeeded(cluster)) << error;
  EXPECT_EQ(cluster->getPeakFlops("f32"), 1e12);
  EXPECT_FALSE(cluster->getPeakFlops("bf16"));
  EXPECT_TRUE(failed(parseCluster(R"({"name": "n", "device": {}})", error)));
  EXPECT_EQ(error, "'device.peak_flops' must map dtypes to FLOP/s");
  EXPECT_TRUE(failed(parseCluster("[", error)));
}

// The overlap model is optional (nothing hides without it) and checked.
TEST(PlannerTest, ClusterFilesMayGiveAnOverlapModel) {
  auto withOverlap = [](const std::string &overlap) {
    return R"({"name": "n", "devices_per_node": 2,
      "device": {"name": "d", "peak_flops": {"f32": 1e12},
                 "memory_bytes": 1e9, "memory_bandwidth": 1e11,
                 "gemm_efficiency": 0.9},
      "links": {"intra_node": {"bandwidth": 1e10, "latency": 1e-6},
                "inter_node": {"bandwidth": 1e9, "latency": 1e-5}})" +
           overlap + "}";
  };
  std::string error;
  FailureOr<Cluster> none = parseCluster(withOverlap(""), error);
  ASSERT_TRUE(succeeded(none)) << error;
  EXPECT_EQ(none->overlap.backwardShare, 0.0);
  FailureOr<Cluster> some =
      parseCluster(withOverlap(R"(, "overlap": {"backward_share": 0.8,
                                  "bucket_latency": 2e-5})"),
                   error);
  ASSERT_TRUE(succeeded(some)) << error;
  EXPECT_EQ(some->overlap.backwardShare, 0.8);
  EXPECT_EQ(some->overlap.bucketLatency, 2e-5);
  for (const char *bad :
       {R"(, "overlap": {"backward_share": 1.5, "bucket_latency": 0})",
        R"(, "overlap": {"backward_share": 0.5})", R"(, "overlap": 1)"}) {
    EXPECT_TRUE(failed(parseCluster(withOverlap(bad), error))) << bad;
    EXPECT_EQ(error, "'overlap' needs 'backward_share', a share in [0, 1], "
                     "and 'bucket_latency', seconds in [0, 1)");
  }
}

// A 2 x 1 x 2 grid: efficiency 0.2 at (10, *, 10), 0.4 at (10, *, 1000),
// 0.6 at (1000, *, 10) and 0.8 at (1000, *, 1000). Halfway in log space
// between the corners (m = k = 100) is their mean; beyond the grid the
// edge holds.
TEST(PlannerTest, GemmEfficiencyInterpolatesTheTableInLogSpace) {
  std::string error;
  FailureOr<Cluster> cluster = parseCluster(R"({
    "name": "n", "devices_per_node": 1,
    "device": {"name": "d", "peak_flops": {"f32": 1e12},
               "memory_bytes": 1e9, "memory_bandwidth": 1e11,
               "gemm_efficiency": 0.9,
               "gemm_table": {"m": [10, 1000], "n": [64], "k": [10, 1000],
                              "efficiency": [0.2, 0.4, 0.6, 0.8]}},
    "links": {"intra_node": {"bandwidth": 1e10, "latency": 1e-6},
              "inter_node": {"bandwidth": 1e9, "latency": 1e-5}}})",
                                            error);
  ASSERT_TRUE(succeeded(cluster)) << error;
  EXPECT_NEAR(cluster->getGemmEfficiency(10, 64, 10), 0.2, 1e-12);
  EXPECT_NEAR(cluster->getGemmEfficiency(1000, 7, 1000), 0.8, 1e-12);
  EXPECT_NEAR(cluster->getGemmEfficiency(100, 64, 100), 0.5, 1e-12);
  EXPECT_NEAR(cluster->getGemmEfficiency(100, 64, 10), 0.4, 1e-12);
  EXPECT_NEAR(cluster->getGemmEfficiency(1e6, 64, 1), 0.6, 1e-12);
  // Without a table, every shape runs at the large-GEMM efficiency.
  cluster->gemmTable.reset();
  EXPECT_EQ(cluster->getGemmEfficiency(10, 10, 10), 0.9);

  EXPECT_TRUE(failed(parseCluster(R"({
    "name": "n", "devices_per_node": 1,
    "device": {"name": "d", "peak_flops": {"f32": 1e12},
               "memory_bytes": 1e9, "memory_bandwidth": 1e11,
               "gemm_efficiency": 0.9,
               "gemm_table": {"m": [10, 5], "n": [64], "k": [10],
                              "efficiency": [0.2, 0.4]}},
    "links": {"intra_node": {"bandwidth": 1e10, "latency": 1e-6},
              "inter_node": {"bandwidth": 1e9, "latency": 1e-5}}})",
                                  error)));
  EXPECT_EQ(error, "'device.gemm_table' needs ascending sizes 'm', 'n', 'k' "
                   "and an 'efficiency' per shape (m-major)");
}

} // namespace

namespace {

// Eight blocks of one second each on two stages; the last stage also runs
// a three-second head. Even halves take 7 s; the DP moves two blocks to
// the first stage (6 s and 5 s).
TEST(PlannerTest, StageDpBalancesTheSlowestStage) {
  auto time = [](int64_t rank, int64_t count) {
    return count + (rank == 1 ? 3.0 : 0.0);
  };
  std::vector<int64_t> cut =
      partitionStages(8, 2, time, [](int64_t, int64_t) { return true; });
  EXPECT_EQ(cut, (std::vector<int64_t>{6, 2}));
  // A memory limit of four blocks a stage forces the even cut.
  cut = partitionStages(8, 2, time,
                        [](int64_t, int64_t count) { return count <= 4; });
  EXPECT_EQ(cut, (std::vector<int64_t>{4, 4}));
  // Three blocks a stage cannot hold eight.
  EXPECT_TRUE(partitionStages(8, 2, time, [](int64_t, int64_t count) {
                return count <= 3;
              }).empty());
  // Every stage needs a block.
  EXPECT_TRUE(partitionStages(2, 3, time, [](int64_t, int64_t) {
                return true;
              }).empty());
}

// The DP's binary search over counts finds what trying every cut finds.
TEST(PlannerTest, StageDpMatchesEveryCut) {
  std::mt19937 random(11);
  for (int trial = 0; trial < 200; ++trial) {
    int64_t stages = 1 + random() % 4, layers = stages + random() % 8;
    std::vector<double> perBlock(stages), extra(stages);
    std::vector<int64_t> capacity(stages);
    for (int64_t k = 0; k < stages; ++k) {
      perBlock[k] = 1.0 + random() % 3;
      extra[k] = random() % 6;
      capacity[k] = 1 + random() % layers;
    }
    auto time = [&](int64_t k, int64_t count) {
      return count * perBlock[k] + extra[k];
    };
    auto fits = [&](int64_t k, int64_t count) { return count <= capacity[k]; };
    // Every composition of the layers into non-empty stages.
    double best = std::numeric_limits<double>::infinity();
    std::vector<int64_t> counts(stages, 1);
    std::function<void(int64_t, int64_t)> visit = [&](int64_t k, int64_t left) {
      if (k == stages - 1) {
        counts[k] = left;
        double slowest = 0.0;
        for (int64_t s = 0; s < stages; ++s) {
          if (!fits(s, counts[s]))
            return;
          slowest = std::max(slowest, time(s, counts[s]));
        }
        best = std::min(best, slowest);
        return;
      }
      for (int64_t c = 1; c <= left - (stages - 1 - k); ++c) {
        counts[k] = c;
        visit(k + 1, left - c);
      }
    };
    visit(0, layers);
    std::vector<int64_t> cut = partitionStages(layers, stages, time, fits);
    if (best == std::numeric_limits<double>::infinity()) {
      EXPECT_TRUE(cut.empty()) << "trial " << trial;
      continue;
    }
    ASSERT_EQ(cut.size(), static_cast<size_t>(stages)) << "trial " << trial;
    double slowest = 0.0;
    int64_t total = 0;
    for (int64_t s = 0; s < stages; ++s) {
      EXPECT_TRUE(fits(s, cut[s]) && cut[s] >= 1) << "trial " << trial;
      slowest = std::max(slowest, time(s, cut[s]));
      total += cut[s];
    }
    EXPECT_EQ(total, layers) << "trial " << trial;
    EXPECT_DOUBLE_EQ(slowest, best) << "trial " << trial;
  }
}

} // namespace

TEST(PlannerTest, GroupedQueryAttentionSplitsByKeyValueHeads) {
  ModelProfile model = makeModel();
  model.heads = 32;
  model.kvHeads = 8;
  EXPECT_TRUE(model.canSplitHeads(8));
  // 16 ranks would split the 8 key/value heads.
  EXPECT_FALSE(model.canSplitHeads(16));
  EXPECT_EQ(model.describeHeads("heads"),
            "the 32 heads and the 8 key/value heads (unless there is one)");
  // One key/value head: every rank computes it whole.
  model.kvHeads = 1;
  EXPECT_TRUE(model.canSplitHeads(16));
  // Without grouped-query attention only the heads count.
  model.kvHeads = 0;
  EXPECT_TRUE(model.canSplitHeads(16));
  EXPECT_EQ(model.describeHeads("heads"), "the 32 heads");

  Plan plan;
  plan.tp = 16;
  plan.microBatchSize = model.batch;
  plan.microBatches = 1;
  model.kvHeads = 8;
  std::string why;
  EXPECT_FALSE(evaluatePlan(model, makeCluster(), PlannerOptions(), plan, why));
  EXPECT_NE(why.find("tp=16 does not divide the 32 attention heads and the 8 "
                     "key/value heads"),
            std::string::npos)
      << why;
}
