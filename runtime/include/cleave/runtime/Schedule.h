//===- Schedule.h - Learning-rate schedules ---------------------*- C++ -*-===//
//
// The learning rate of a step depends on the schedule's own fields only,
// never on how many steps a run was asked for: a run extended or resumed
// with a different --steps keeps the rates the original run used.
//
//===----------------------------------------------------------------------===//

#ifndef CLEAVE_RUNTIME_SCHEDULE_H
#define CLEAVE_RUNTIME_SCHEDULE_H

#include "cleave/runtime/Status.h"

#include <cstdint>

namespace cleave::rt {

struct LrSchedule {
  enum Kind { Constant, Cosine };
  Kind kind = Constant;
  /// The peak rate, reached at the end of warmup.
  double lr = 0;
  /// The rate cosine decay ends at.
  double minLr = 0;
  /// Steps of linear warmup: step s <= warmup uses lr * s / warmup.
  int64_t warmup = 0;
  /// Cosine: steps after warmup over which the rate falls from lr to minLr.
  int64_t decaySteps = 0;
};

/// The rate for optimizer step `step` (counted from 1; earlier steps are
/// treated as step 1). Constant: lr after warmup. Cosine: after warmup,
/// minLr + (lr - minLr) * (1 + cos(pi * t / decaySteps)) / 2 with
/// t = step - warmup, and minLr once t >= decaySteps.
double getLearningRate(const LrSchedule &schedule, int64_t step);

/// Rejects schedules getLearningRate cannot follow; the message names the
/// command-line flag (--lr, --min-lr, --warmup, --decay-steps).
Status validate(const LrSchedule &schedule);

} // namespace cleave::rt

#endif // CLEAVE_RUNTIME_SCHEDULE_H
