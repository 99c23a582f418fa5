//===- ScheduleReport.cpp - `cleavec schedule` ----------------------------===//

#include "cleave/Driver/ScheduleReport.h"

#include "cleave/Driver/Driver.h"

#include "llvm/Support/Format.h"

using namespace mlir;
using namespace mlir::cleave;
using namespace mlir::cleave::pipeline;

LogicalResult mlir::cleave::printScheduleReport(const Schedule &schedule,
                                                llvm::raw_ostream &os) {
  ScheduleStats stats = simulate(schedule);
  if (!stats.completes)
    return failure();
  os << "cleavec: schedule " << getScheduleName(schedule.kind) << ": "
     << schedule.stages << " stages, " << schedule.microBatches
     << " micro-batches, " << schedule.virtualStages
     << (schedule.virtualStages == 1 ? " virtual stage" : " virtual stages")
     << " per rank\n";
  for (auto [rank, actions] : llvm::enumerate(schedule.ranks)) {
    os << "rank " << rank << ":";
    for (const Action &action : actions)
      os << " " << formatAction(schedule, action);
    os << "\n";
  }
  os << "cleavec: activation slots (micro-batch chunks in flight) per rank:";
  for (int64_t peak : stats.peakInFlight)
    os << " " << peak;
  os << "\ncleavec: bubble " << llvm::format("%.4f", stats.bubble)
     << " simulated (forward 1, backward 2, free communication); "
        "(p-1)/(v*m+p-1) = "
     << llvm::format("%.4f", getIdealBubble(schedule)) << "\n";
  return success();
}

LogicalResult mlir::cleave::printSchedule(StringRef kind, int64_t ranks,
                                          int64_t microBatches,
                                          int64_t virtualStages,
                                          llvm::raw_ostream &os) {
  std::optional<pipeline::ScheduleKind> parsed = pipeline::parseScheduleKind(kind);
  if (!parsed) {
    driver::error() << "--schedule must be gpipe, 1f1b or interleaved, got '"
                    << kind << "'\n";
    return failure();
  }
  std::string message;
  std::optional<pipeline::Schedule> schedule = pipeline::buildSchedule(
      *parsed, ranks, microBatches, virtualStages, message);
  if (!schedule) {
    driver::error() << message << "\n";
    return failure();
  }
  if (failed(printScheduleReport(*schedule, os))) {
    driver::error() << "the " << kind << " schedule cannot complete\n";
    return failure();
  }
  return success();
}
