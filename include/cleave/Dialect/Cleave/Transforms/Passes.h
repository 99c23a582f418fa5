//===- Passes.h - Cleave passes ---------------------------------*- C++ -*-===//

#ifndef CLEAVE_DIALECT_CLEAVE_TRANSFORMS_PASSES_H
#define CLEAVE_DIALECT_CLEAVE_TRANSFORMS_PASSES_H

#include "cleave/Dialect/Cleave/IR/CleaveDialect.h"
#include "cleave/Pipeline/Schedule.h"
#include "mlir/Dialect/Func/IR/FuncOps.h"
#include "mlir/IR/BuiltinOps.h"
#include "mlir/Pass/Pass.h"

namespace mlir::cleave {

/// cleave-optimizer's update rule.
enum class OptimizerKind { AdamW, Sgd };

/// The compute precision of cleave-mixed-precision.
enum class ComputePrecision { BF16, F16 };

/// What cleave-auto-parallel minimizes.
enum class PlanObjective { Time, Memory };

#define GEN_PASS_DECL
#include "cleave/Dialect/Cleave/Transforms/Passes.h.inc"

#define GEN_PASS_REGISTRATION
#include "cleave/Dialect/Cleave/Transforms/Passes.h.inc"

} // namespace mlir::cleave

#endif // CLEAVE_DIALECT_CLEAVE_TRANSFORMS_PASSES_H
