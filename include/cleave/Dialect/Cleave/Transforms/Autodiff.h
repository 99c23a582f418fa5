//===- Autodiff.h - The training step of a forward function -----*- C++ -*-===//
//
// What cleave-autodiff does, for code that needs a training step without
// running the pass (the planner pricing the split the compiler builds).
//
//===----------------------------------------------------------------------===//

#ifndef CLEAVE_DIALECT_CLEAVE_TRANSFORMS_AUTODIFF_H
#define CLEAVE_DIALECT_CLEAVE_TRANSFORMS_AUTODIFF_H

#include "mlir/Dialect/Func/IR/FuncOps.h"

namespace mlir::cleave {

/// Adds, next to `forward` (a single-block function returning one scalar
/// float loss), the function `stepName` that returns the loss and the
/// gradient of every parameter. Reports errors on `forward`.
FailureOr<func::FuncOp> createTrainingStep(func::FuncOp forward,
                                           StringRef stepName);

} // namespace mlir::cleave

#endif // CLEAVE_DIALECT_CLEAVE_TRANSFORMS_AUTODIFF_H
