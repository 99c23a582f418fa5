//===- PipelineScheduleTest.cpp - GPipe, 1F1B and interleaved 1F1B --------===//

#include "cleave/Pipeline/Schedule.h"

#include <gtest/gtest.h>

using namespace mlir::cleave::pipeline;

namespace {

Schedule build(ScheduleKind kind, int64_t p, int64_t m, int64_t v = 1) {
  std::string error;
  std::optional<Schedule> schedule = buildSchedule(kind, p, m, v, error);
  if (!schedule) {
    ADD_FAILURE() << error;
    return Schedule{kind, p, m, v, {}};
  }
  return *schedule;
}

std::string format(const Schedule &schedule, int64_t rank) {
  std::string text;
  for (const Action &action : schedule.ranks[rank])
    text += (text.empty() ? "" : " ") + formatAction(schedule, action);
  return text;
}

TEST(PipelineScheduleTest, OneFOneBWarmsUpByDistanceToTheLastStage) {
  Schedule schedule = build(ScheduleKind::OneFOneB, 4, 8);
  EXPECT_EQ(format(schedule, 0),
            "F0 F1 F2 F3 B0 F4 B1 F5 B2 F6 B3 F7 B4 B5 B6 B7");
  EXPECT_EQ(format(schedule, 3),
            "F0 B0 F1 B1 F2 B2 F3 B3 F4 B4 F5 B5 F6 B6 F7 B7");
}

TEST(PipelineScheduleTest, GPipeRunsEveryForwardFirst) {
  Schedule schedule = build(ScheduleKind::GPipe, 2, 3);
  EXPECT_EQ(format(schedule, 1), "F0 F1 F2 B0 B1 B2");
}

TEST(PipelineScheduleTest, InterleavedVisitsChunksInGroupsOfStages) {
  Schedule schedule = build(ScheduleKind::Interleaved, 2, 4, 2);
  // Rank 1: warm-up (p - r - 1) 2 + (v - 1) p = 2 forwards.
  EXPECT_EQ(format(schedule, 1),
            "F0.0 F1.0 F0.1 B0.1 F1.1 B1.1 F2.0 B0.0 F3.0 B1.0 F2.1 B2.1 "
            "F3.1 B3.1 B2.0 B3.0");
  EXPECT_EQ(schedule.getStage(1, 1), 3);
}

TEST(PipelineScheduleTest, SimulationGivesTheTextbookBubble) {
  for (ScheduleKind kind : {ScheduleKind::GPipe, ScheduleKind::OneFOneB}) {
    for (int64_t p : {1, 2, 4}) {
      for (int64_t m : {1, 4, 8}) {
        Schedule schedule = build(kind, p, m);
        ScheduleStats stats = simulate(schedule);
        ASSERT_TRUE(stats.completes);
        EXPECT_NEAR(stats.bubble, getIdealBubble(schedule), 1e-12)
            << getScheduleName(kind).str() << " p=" << p << " m=" << m;
      }
    }
  }
}

TEST(PipelineScheduleTest, InterleavingShrinksTheBubbleByV) {
  Schedule plain = build(ScheduleKind::OneFOneB, 4, 8);
  Schedule interleaved = build(ScheduleKind::Interleaved, 4, 8, 2);
  ScheduleStats stats = simulate(interleaved);
  ASSERT_TRUE(stats.completes);
  EXPECT_NEAR(stats.bubble, getIdealBubble(interleaved), 1e-12);
  EXPECT_LT(stats.bubble, simulate(plain).bubble);
}

TEST(PipelineScheduleTest, OneFOneBKeepsAtMostPMicroBatchesInFlight) {
  ScheduleStats oneFOneB = simulate(build(ScheduleKind::OneFOneB, 4, 8));
  EXPECT_EQ(oneFOneB.peakInFlight, (llvm::SmallVector<int64_t>{4, 3, 2, 1}));
  ScheduleStats gpipe = simulate(build(ScheduleKind::GPipe, 4, 8));
  EXPECT_EQ(gpipe.peakInFlight, (llvm::SmallVector<int64_t>{8, 8, 8, 8}));
}

TEST(PipelineScheduleTest, SimulationFindsOrdersThatWaitOnEachOther) {
  Schedule schedule = build(ScheduleKind::OneFOneB, 2, 2);
  // The last stage runs B1 before F1 ever reaches it... and before its own
  // F1: nothing can make progress past it.
  std::swap(schedule.ranks[1][1], schedule.ranks[1][3]);
  EXPECT_FALSE(simulate(schedule).completes);
}

TEST(PipelineScheduleTest, SimulationRejectsMissingOrRepeatedSteps) {
  Schedule missing = build(ScheduleKind::GPipe, 2, 2);
  missing.ranks[0].pop_back();
  EXPECT_FALSE(simulate(missing).completes);
  Schedule repeated = build(ScheduleKind::GPipe, 2, 2);
  repeated.ranks[1][3] = repeated.ranks[1][2];
  EXPECT_FALSE(simulate(repeated).completes);
}

TEST(PipelineScheduleTest, RejectsImpossibleRequests) {
  std::string error;
  EXPECT_FALSE(buildSchedule(ScheduleKind::OneFOneB, 4, 0, 1, error));
  EXPECT_EQ(error, "a pipeline needs at least one stage, micro-batch and "
                   "virtual stage");
  EXPECT_FALSE(buildSchedule(ScheduleKind::OneFOneB, 4, 8, 2, error));
  EXPECT_EQ(error, "virtual stages need the interleaved schedule");
  EXPECT_FALSE(buildSchedule(ScheduleKind::Interleaved, 4, 6, 2, error));
  EXPECT_EQ(error, "the interleaved schedule runs micro-batches in groups of "
                   "the 4 pipeline ranks: 6 micro-batches is not a multiple");
  EXPECT_EQ(parseScheduleKind("1f1b"), ScheduleKind::OneFOneB);
  EXPECT_FALSE(parseScheduleKind("zb-h1"));
}

} // namespace
