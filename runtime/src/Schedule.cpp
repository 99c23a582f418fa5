//===- Schedule.cpp - Learning-rate schedules -----------------------------===//

#include "cleave/runtime/Schedule.h"

#include <cmath>
#include <cstdio>
#include <string>

namespace cleave::rt {

namespace {
/// Formats a flag value as the user would have typed it (std::to_string
/// would print 1e-5 as 0.000010).
std::string formatValue(double value) {
  char text[32];
  std::snprintf(text, sizeof(text), "%g", value);
  return text;
}
} // namespace

double getLearningRate(const LrSchedule &schedule, int64_t step) {
  if (step < 1)
    step = 1;
  if (step <= schedule.warmup)
    return schedule.lr * static_cast<double>(step) /
           static_cast<double>(schedule.warmup);
  if (schedule.kind == LrSchedule::Constant)
    return schedule.lr;
  int64_t decayed = step - schedule.warmup;
  if (schedule.decaySteps <= 0 || decayed >= schedule.decaySteps)
    return schedule.minLr;
  constexpr double kPi = 3.14159265358979323846;
  double progress =
      static_cast<double>(decayed) / static_cast<double>(schedule.decaySteps);
  return schedule.minLr + (schedule.lr - schedule.minLr) * 0.5 *
                              (1.0 + std::cos(kPi * progress));
}

Status validate(const LrSchedule &schedule) {
  if (!std::isfinite(schedule.lr) || schedule.lr <= 0)
    return Status::error("--lr must be a positive finite number, got " +
                         formatValue(schedule.lr));
  // Written so NaN fails too.
  if (!(schedule.minLr >= 0 && schedule.minLr <= schedule.lr))
    return Status::error("--min-lr must be between 0 and --lr (" +
                         formatValue(schedule.lr) + "), got " +
                         formatValue(schedule.minLr));
  if (schedule.warmup < 0)
    return Status::error("--warmup must be a non-negative number of steps, "
                         "got " +
                         std::to_string(schedule.warmup));
  if (schedule.decaySteps < 0)
    return Status::error("--decay-steps must be a non-negative number of "
                         "steps, got " +
                         std::to_string(schedule.decaySteps));
  if (schedule.kind == LrSchedule::Cosine && schedule.decaySteps == 0)
    return Status::error("--decay-steps must be positive for a cosine "
                         "schedule (the steps after --warmup over which the "
                         "rate falls from --lr to --min-lr)");
  return Status::success();
}

} // namespace cleave::rt
