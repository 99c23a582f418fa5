//===- CostSummary.h - Whole-function cost totals ---------------*- C++ -*-===//
//
// Sums the cost interface of every op in a function: what the cost report
// prints and what the planner starts from.
//
//===----------------------------------------------------------------------===//

#ifndef CLEAVE_ANALYSIS_COSTSUMMARY_H
#define CLEAVE_ANALYSIS_COSTSUMMARY_H

#include "mlir/Interfaces/FunctionInterfaces.h"
#include "llvm/ADT/MapVector.h"
#include "llvm/ADT/StringRef.h"

namespace mlir::cleave {

struct OpKindCost {
  int64_t count = 0;
  double flops = 0.0;
  double matmulFlops = 0.0;
};

struct CostSummary {
  /// Elements of all arguments marked `cleave.param` (double, like every
  /// total: it can exceed int64 for synthetic shapes).
  double params = 0.0;
  double flops = 0.0;
  double matmulFlops = 0.0;
  double bytesRead = 0.0;
  /// Bytes of every tensor produced by an op (the sum of getBytesWritten).
  double activationBytes = 0.0;
  /// Bytes each device sends in collectives (getCommunicatedBytes).
  double communicatedBytes = 0.0;
  /// Per op name, in order of first appearance.
  llvm::MapVector<llvm::StringRef, OpKindCost> byOp;
};

/// Totals over every op of `function` that implements CostOpInterface. Ops
/// without it (e.g. `func.return`) do no work and are skipped.
CostSummary computeCostSummary(FunctionOpInterface function);

} // namespace mlir::cleave

#endif // CLEAVE_ANALYSIS_COSTSUMMARY_H
