//===- Planning.h - Plan a model; run the chosen plan -----------*- C++ -*-===//
//
// `cleavec plan` and `--auto`: profile the model and search the plans on a
// cluster (a report), or record the chosen plan with cleave-auto-parallel
// as the training pipeline's planned phase.
//
//===----------------------------------------------------------------------===//

#ifndef CLEAVE_DRIVER_PLANNING_H
#define CLEAVE_DRIVER_PLANNING_H

#include "cleave/Dialect/Cleave/IR/CleaveOps.h"
#include "cleave/Driver/PlanReport.h"
#include "cleave/Pipelines/Pipelines.h"
#include "cleave/Planner/Planner.h"

#include "mlir/IR/MLIRContext.h"
#include "mlir/Pass/PassManager.h"
#include "llvm/Support/raw_ostream.h"

#include <optional>
#include <string>

namespace mlir::cleave::driver {

/// What to plan for, as `cleavec plan` is asked; unset fields leave the
/// choice to the search.
struct PlanRequest {
  int64_t devices = 0;
  /// A shipped cluster's name or a cluster file.
  std::string cluster;
  /// The function to plan (default: the module's first).
  std::string entry;
  /// Samples per optimizer step (0: the model's batch).
  int64_t globalBatch = 0;
  /// GiB a device may use (0: its memory).
  double memoryLimitGiB = 0;
  /// The training loop's gradient bucket cap in MiB (0: its default).
  double bucketMegabytes = 0;
  /// f32, bf16 or f16 (default: the cluster's).
  std::optional<std::string> precision;
  /// A fixed mesh, `dp=2,tp=2,pp=2` (empty: searched).
  std::string mesh;
  std::optional<int64_t> microBatchSize, zeroStage;
  std::optional<std::string> schedule;
  std::optional<bool> recompute;
  /// Recompute only the first K blocks of each stage.
  std::optional<int64_t> recomputeLayers;
  /// Only plans that train the model as it is (its batch and vocabulary),
  /// in `precision` (default f32): what --auto runs.
  bool forTraining = false;
};

/// What planning a model found.
struct Planned {
  planner::Cluster cluster;
  planner::ModelProfile model;
  planner::PlannerOptions options;
  planner::SearchResult result;
  /// The function planned.
  std::string forwardName;
};

/// Plans the model at `modelPath`; reports errors.
FailureOr<Planned> planModel(MLIRContext &context, StringRef modelPath,
                             const PlanRequest &request);

/// Checks what every plan request needs (devices and a cluster); reports
/// errors.
LogicalResult checkPlanRequest(const PlanRequest &request);

/// `--auto`'s planned phase: cleave-auto-parallel for `request`, on the
/// function `forward` (empty: the one with cleave.role forward).
void addAutoParallel(OpPassManager &pm, const PlanRequest &request,
                     StringRef forward);

/// The line `cleavec: auto: ...` that says what `plan` chose.
void describePlan(PlanAttr plan, llvm::raw_ostream &log);

/// `cleavec plan`: prints the plans (as JSON with `json`) and, with
/// `report.explain`, the sharding decisions and the chosen plan's tensor
/// splits.
LogicalResult reportPlan(MLIRContext &context, StringRef modelPath,
                         const Planned &planned, bool json,
                         const PlanReportOptions &report, StringRef cluster,
                         llvm::raw_ostream &log);

/// `cleavec plan --explain`: the splits cleave-search-tensor-sharding
/// chooses per layer for `tp` devices on `cluster`.
LogicalResult explainTensorSplits(MLIRContext &context, StringRef modelPath,
                                  StringRef forwardName, int64_t tp,
                                  StringRef cluster, llvm::raw_ostream &log);

} // namespace mlir::cleave::driver

#endif // CLEAVE_DRIVER_PLANNING_H
