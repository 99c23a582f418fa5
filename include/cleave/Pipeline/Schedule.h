//===- Schedule.h - Pipeline schedules as data ------------------*- C++ -*-===//
//
// A pipeline schedule lists, for each rank of the `pp` axis, the order in
// which it runs the forward and backward passes of each micro-batch through
// each of its model chunks. Schedules are data: the emitter turns them into
// the host loop, and the checks here (dependencies, deadlock, activation
// memory, bubble) run on the same lists.
//
// Stages: with p ranks and v virtual stages per rank the model is cut into
// p * v stages; rank r holds chunks c = 0 .. v-1, which are global stages
// c * p + r (Megatron-LM's interleaved layout). Without interleaving v = 1
// and rank r is stage r.
//
//===----------------------------------------------------------------------===//

#ifndef CLEAVE_PIPELINE_SCHEDULE_H
#define CLEAVE_PIPELINE_SCHEDULE_H

#include "llvm/ADT/SmallVector.h"
#include "llvm/ADT/StringRef.h"

#include <cstdint>
#include <optional>
#include <string>

namespace mlir::cleave::pipeline {

enum class ScheduleKind {
  /// All forwards, then all backwards (one flush per step).
  GPipe,
  /// PipeDream-Flush: p - r - 1 warm-up forwards, then one forward and one
  /// backward in turn, then the remaining backwards.
  OneFOneB,
  /// 1F1B over v model chunks per rank (Megatron-LM).
  Interleaved,
};

/// "gpipe", "1f1b", "interleaved"; nullopt for anything else.
std::optional<ScheduleKind> parseScheduleKind(llvm::StringRef name);
llvm::StringRef getScheduleName(ScheduleKind kind);

struct Action {
  enum class Kind { Forward, Backward };
  Kind kind;
  int64_t microBatch;
  /// The model chunk on this rank, 0 .. v-1.
  int64_t chunk;

  bool operator==(const Action &other) const {
    return kind == other.kind && microBatch == other.microBatch &&
           chunk == other.chunk;
  }
};

struct Schedule {
  ScheduleKind kind;
  int64_t stages;        // p: ranks along pp
  int64_t microBatches;  // m
  int64_t virtualStages; // v
  /// Per rank, the actions in the order it runs them.
  llvm::SmallVector<llvm::SmallVector<Action>> ranks;

  /// The global stage of `chunk` on `rank`.
  int64_t getStage(int64_t rank, int64_t chunk) const {
    return chunk * stages + rank;
  }
};

/// Builds the schedule, or explains why the request is impossible (fewer
/// than one stage or micro-batch; virtual stages without interleaving;
/// interleaving with micro-batches not a multiple of the stages).
std::optional<Schedule> buildSchedule(ScheduleKind kind, int64_t stages,
                                      int64_t microBatches,
                                      int64_t virtualStages,
                                      std::string &error);

/// What running a schedule costs, by simulation: each rank runs its actions
/// in order, an action starts once the rank is free and the action it
/// depends on has finished on its neighbour (communication is free). A
/// micro-batch's forward through one chunk takes 1 / v, its backward 2 / v,
/// so a rank's work per micro-batch is 3 whatever v is.
struct ScheduleStats {
  /// Every action ran; false means the orders wait on each other.
  bool completes = false;
  /// When the last action ends.
  double makespan = 0.0;
  /// Idle share of the ranks' time until the makespan.
  double bubble = 0.0;
  /// Per rank, the most micro-batch chunks whose activations are alive
  /// (forward run, backward not yet): the activation slots it needs.
  llvm::SmallVector<int64_t> peakInFlight;
};

ScheduleStats simulate(const Schedule &schedule);

/// The textbook bubble share: (p - 1) / (v m + p - 1) (v = 1 without
/// interleaving), which the simulation reproduces.
double getIdealBubble(const Schedule &schedule);

/// "F3" or "B3" (with ".c" for chunk c when v > 1).
std::string formatAction(const Schedule &schedule, const Action &action);

} // namespace mlir::cleave::pipeline

#endif // CLEAVE_PIPELINE_SCHEDULE_H
