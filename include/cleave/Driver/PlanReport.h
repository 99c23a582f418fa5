//===- PlanReport.h - `cleavec plan` ----------------------------*- C++ -*-===//

#ifndef CLEAVE_DRIVER_PLANREPORT_H
#define CLEAVE_DRIVER_PLANREPORT_H

#include "cleave/Planner/Planner.h"

#include "llvm/Support/raw_ostream.h"

namespace mlir::cleave {

struct PlanReportOptions {
  /// Alternatives listed after the chosen plan.
  int64_t alternatives = 8;
  bool explain = false;
};

/// What the report says about `precision` on `cluster`: where its devices
/// have a bf16 peak, that bf16 is recommended there (and, if `precision` is
/// f32, how much faster bf16 computes); empty on f32-only devices.
std::string getPrecisionAdvice(const planner::Cluster &cluster,
                               llvm::StringRef precision);

/// The chosen plan, why, and the best alternatives, as a table.
void printPlanReport(const planner::ModelProfile &model,
                     const planner::Cluster &cluster,
                     const planner::PlannerOptions &options,
                     const planner::SearchResult &result,
                     const PlanReportOptions &report, llvm::raw_ostream &os);

/// The same as a JSON object: mesh {dp, tp, pp}, micro_batch_size,
/// micro_batches, schedule, zero_stage, recompute, predicted {...} and
/// alternatives (the same fields).
void printPlanJson(const planner::ModelProfile &model,
                   const planner::Cluster &cluster,
                   const planner::PlannerOptions &options,
                   const planner::SearchResult &result,
                   const PlanReportOptions &report, llvm::raw_ostream &os);

} // namespace mlir::cleave

#endif // CLEAVE_DRIVER_PLANREPORT_H
