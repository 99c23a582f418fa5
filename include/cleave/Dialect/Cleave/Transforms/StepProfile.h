//===- StepProfile.h - What the planner reads off the step -----*- C++ -*-===//
//
// Fills a model profile with what the training step tells and the forward
// does not: the parameters the backward reads, and the collectives of the
// tensor-parallel split cleave-search-tensor-sharding would build, so the
// planner prices what the compiler applies.
//
//===----------------------------------------------------------------------===//

#ifndef CLEAVE_DIALECT_CLEAVE_TRANSFORMS_STEPPROFILE_H
#define CLEAVE_DIALECT_CLEAVE_TRANSFORMS_STEPPROFILE_H

#include "cleave/Planner/Planner.h"

namespace mlir::cleave {

/// The tp sizes a plan under `options` may use, above 1: the mesh's fixed
/// tp, else the divisors of both the device count and the heads (and of
/// the vocabulary when it is not to be padded).
SmallVector<int64_t> getPlannedTpSizes(const planner::ModelProfile &model,
                                       const planner::PlannerOptions &options);

/// Builds `forward`'s training step on a copy of its module and records in
/// `model` the parameters each part's backward reads, without and with
/// recompute, and the search's split of the step at each tp size a plan
/// under `options` may use, on `cluster` in the options' precision
/// (`model.searchedSplits`). A size the search cannot price is left out, so
/// the planner prices it as Megatron-LM's split; why is added to `skipped`.
void addStepProfile(func::FuncOp forward, const planner::Cluster &cluster,
                    const planner::PlannerOptions &options,
                    planner::ModelProfile &model,
                    SmallVectorImpl<std::string> &skipped);

} // namespace mlir::cleave

#endif // CLEAVE_DIALECT_CLEAVE_TRANSFORMS_STEPPROFILE_H
