//===- Schedule.cpp - Pipeline schedules as data --------------------------===//

#include "cleave/Pipeline/Schedule.h"

#include "llvm/ADT/StringSwitch.h"

#include <algorithm>
#include <map>
#include <set>
#include <tuple>

using namespace mlir::cleave::pipeline;

std::optional<ScheduleKind>
mlir::cleave::pipeline::parseScheduleKind(llvm::StringRef name) {
  return llvm::StringSwitch<std::optional<ScheduleKind>>(name)
      .Case("gpipe", ScheduleKind::GPipe)
      .Case("1f1b", ScheduleKind::OneFOneB)
      .Case("interleaved", ScheduleKind::Interleaved)
      .Default(std::nullopt);
}

llvm::StringRef mlir::cleave::pipeline::getScheduleName(ScheduleKind kind) {
  switch (kind) {
  case ScheduleKind::GPipe:
    return "gpipe";
  case ScheduleKind::OneFOneB:
    return "1f1b";
  case ScheduleKind::Interleaved:
    return "interleaved";
  }
  return "";
}

namespace {

Action forward(int64_t microBatch, int64_t chunk = 0) {
  return {Action::Kind::Forward, microBatch, chunk};
}
Action backward(int64_t microBatch, int64_t chunk = 0) {
  return {Action::Kind::Backward, microBatch, chunk};
}

void buildGPipe(Schedule &schedule) {
  for (auto &actions : schedule.ranks) {
    for (int64_t i = 0; i < schedule.microBatches; ++i)
      actions.push_back(forward(i));
    for (int64_t i = 0; i < schedule.microBatches; ++i)
      actions.push_back(backward(i));
  }
}

/// Warm-up forwards, then forward/backward pairs, then cool-down backwards,
/// over `total` steps whose k-th forward and backward are given by
/// `forwardAt` and `backwardAt`.
template <typename ForwardAt, typename BackwardAt>
void buildOneFOneB(llvm::SmallVector<Action> &actions, int64_t total,
                   int64_t warmup, ForwardAt forwardAt, BackwardAt backwardAt) {
  warmup = std::min(warmup, total);
  for (int64_t k = 0; k < warmup; ++k)
    actions.push_back(forwardAt(k));
  for (int64_t k = 0; k < total - warmup; ++k) {
    actions.push_back(forwardAt(warmup + k));
    actions.push_back(backwardAt(k));
  }
  for (int64_t k = std::max<int64_t>(0, total - warmup); k < total; ++k)
    actions.push_back(backwardAt(k));
}

} // namespace

std::optional<Schedule>
mlir::cleave::pipeline::buildSchedule(ScheduleKind kind, int64_t stages,
                                      int64_t microBatches,
                                      int64_t virtualStages,
                                      std::string &error) {
  if (stages < 1 || microBatches < 1 || virtualStages < 1) {
    error = "a pipeline needs at least one stage, micro-batch and virtual "
            "stage";
    return std::nullopt;
  }
  // The schedule lists every action of every rank: bound it before it is
  // built (4M stage-passes of each direction, far past any real one).
  constexpr int64_t kMaxPasses = int64_t(1) << 22;
  if (microBatches > kMaxPasses / stages ||
      virtualStages > kMaxPasses / (stages * microBatches)) {
    error = "a schedule of " + std::to_string(stages) + " ranks x " +
            std::to_string(microBatches) + " micro-batches x " +
            std::to_string(virtualStages) +
            " virtual stages is too large (at most " +
            std::to_string(kMaxPasses) + " passes)";
    return std::nullopt;
  }
  if (kind != ScheduleKind::Interleaved && virtualStages != 1) {
    error = "virtual stages need the interleaved schedule";
    return std::nullopt;
  }
  if (kind == ScheduleKind::Interleaved && microBatches % stages != 0) {
    error = "the interleaved schedule runs micro-batches in groups of the " +
            std::to_string(stages) + " pipeline ranks: " +
            std::to_string(microBatches) + " micro-batches is not a multiple";
    return std::nullopt;
  }
  Schedule schedule{kind, stages, microBatches, virtualStages, {}};
  schedule.ranks.resize(stages);
  int64_t p = stages, m = microBatches, v = virtualStages;
  switch (kind) {
  case ScheduleKind::GPipe:
    buildGPipe(schedule);
    break;
  case ScheduleKind::OneFOneB:
    for (int64_t rank = 0; rank < p; ++rank)
      buildOneFOneB(
          schedule.ranks[rank], m, p - rank - 1,
          [](int64_t k) { return forward(k); },
          [](int64_t k) { return backward(k); });
    break;
  case ScheduleKind::Interleaved:
    // Step k runs micro-batch (k / pv) p + k % p through chunk (k / p) % v,
    // backwards through the chunks in reverse.
    for (int64_t rank = 0; rank < p; ++rank) {
      auto microBatch = [&](int64_t k) { return k / (p * v) * p + k % p; };
      auto chunk = [&](int64_t k) { return k % (p * v) / p; };
      int64_t total = m * v;
      int64_t warmup = m == p ? total : (p - rank - 1) * 2 + (v - 1) * p;
      buildOneFOneB(
          schedule.ranks[rank], total, warmup,
          [&](int64_t k) { return forward(microBatch(k), chunk(k)); },
          [&](int64_t k) { return backward(microBatch(k), v - 1 - chunk(k)); });
    }
    break;
  }
  return schedule;
}

ScheduleStats mlir::cleave::pipeline::simulate(const Schedule &schedule) {
  int64_t p = schedule.stages, v = schedule.virtualStages;
  int64_t lastStage = p * v - 1;
  double forwardTime = 1.0 / v, backwardTime = 2.0 / v;
  // When each (kind, micro-batch, global stage) finished.
  using Key = std::tuple<int, int64_t, int64_t>;
  std::map<Key, double> finished;
  auto finishOf = [&](Action::Kind kind, int64_t microBatch,
                      int64_t stage) -> std::optional<double> {
    auto it = finished.find({static_cast<int>(kind), microBatch, stage});
    if (it == finished.end())
      return std::nullopt;
    return it->second;
  };

  ScheduleStats stats;
  // Every rank runs each chunk's forward and backward of every micro-batch
  // exactly once; anything else never completes.
  for (const auto &actions : schedule.ranks) {
    std::set<std::tuple<int, int64_t, int64_t>> seen;
    for (const Action &action : actions)
      if (action.chunk < 0 || action.chunk >= v || action.microBatch < 0 ||
          action.microBatch >= schedule.microBatches ||
          !seen.insert({static_cast<int>(action.kind), action.microBatch,
                        action.chunk})
               .second)
        return stats;
    if (static_cast<int64_t>(seen.size()) != 2 * schedule.microBatches * v)
      return stats;
  }
  llvm::SmallVector<size_t> next(p, 0);
  llvm::SmallVector<double> free(p, 0.0);
  size_t remaining = 0;
  for (const auto &actions : schedule.ranks)
    remaining += actions.size();
  for (bool progress = true; progress && remaining > 0;) {
    progress = false;
    for (int64_t rank = 0; rank < p; ++rank) {
      while (next[rank] < schedule.ranks[rank].size()) {
        const Action &action = schedule.ranks[rank][next[rank]];
        int64_t stage = schedule.getStage(rank, action.chunk);
        bool isForward = action.kind == Action::Kind::Forward;
        // What this action waits for.
        std::optional<double> ready = 0.0;
        if (isForward && stage > 0)
          ready = finishOf(Action::Kind::Forward, action.microBatch, stage - 1);
        if (!isForward) {
          ready = finishOf(Action::Kind::Forward, action.microBatch, stage);
          if (ready && stage < lastStage) {
            std::optional<double> later = finishOf(Action::Kind::Backward,
                                                   action.microBatch, stage + 1);
            ready = later ? std::optional<double>(std::max(*ready, *later))
                          : std::nullopt;
          }
        }
        if (!ready)
          break;
        double start = std::max(free[rank], *ready);
        free[rank] = start + (isForward ? forwardTime : backwardTime);
        finished[{static_cast<int>(action.kind), action.microBatch, stage}] =
            free[rank];
        ++next[rank];
        --remaining;
        progress = true;
      }
    }
  }
  stats.completes = remaining == 0;
  for (int64_t rank = 0; rank < p; ++rank) {
    stats.makespan = std::max(stats.makespan, free[rank]);
    int64_t alive = 0, peak = 0;
    for (const Action &action : schedule.ranks[rank]) {
      alive += action.kind == Action::Kind::Forward ? 1 : -1;
      peak = std::max(peak, alive);
    }
    stats.peakInFlight.push_back(peak);
  }
  if (stats.completes && stats.makespan > 0)
    stats.bubble = 1.0 - 3.0 * schedule.microBatches / stats.makespan;
  return stats;
}

double mlir::cleave::pipeline::getIdealBubble(const Schedule &schedule) {
  double p = schedule.stages, m = schedule.microBatches,
         v = schedule.virtualStages;
  return (p - 1) / (v * m + p - 1);
}

std::string mlir::cleave::pipeline::formatAction(const Schedule &schedule,
                                                 const Action &action) {
  std::string text = action.kind == Action::Kind::Forward ? "F" : "B";
  text += std::to_string(action.microBatch);
  if (schedule.virtualStages > 1)
    text += "." + std::to_string(action.chunk);
  return text;
}
