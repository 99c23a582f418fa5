//===- SearchedSplits.h - Pricing the searched split -----------*- C++ -*-===//
//
// Fills a model profile with the collectives of the tensor-parallel split
// cleave-search-tensor-sharding would build, so the planner prices plans
// with the split the compiler applies.
//
//===----------------------------------------------------------------------===//

#ifndef CLEAVE_DIALECT_CLEAVE_TRANSFORMS_SEARCHEDSPLITS_H
#define CLEAVE_DIALECT_CLEAVE_TRANSFORMS_SEARCHEDSPLITS_H

#include "cleave/Planner/Planner.h"

namespace mlir::cleave {

/// The tp sizes the planner considers for `devices` devices and `model`
/// (divisors of both the device count and the heads), above 1; only
/// `fixed` when a mesh fixes it.
SmallVector<int64_t> getPlannedTpSizes(const planner::ModelProfile &model,
                                       int64_t devices,
                                       std::optional<int64_t> fixed);

/// Searches the split of `forward`'s training step (built on a copy of its
/// module) at each of `sizes` on `cluster`, and records each answer's
/// collectives in `model.searchedSplits`. Reports errors on `forward`.
LogicalResult addSearchedSplits(func::FuncOp forward,
                                const planner::Cluster &cluster,
                                ArrayRef<int64_t> sizes,
                                planner::ModelProfile &model);

} // namespace mlir::cleave

#endif // CLEAVE_DIALECT_CLEAVE_TRANSFORMS_SEARCHEDSPLITS_H
