//===- ShardingStrategy.h - What strategy passes share ----------*- C++ -*-===//
//
// Strategies only place cleave.shard constraints on a function's
// arguments; propagation and partitioning do the rest.
//
//===----------------------------------------------------------------------===//

#ifndef CLEAVE_LIB_DIALECT_CLEAVE_TRANSFORMS_SHARDINGSTRATEGY_H
#define CLEAVE_LIB_DIALECT_CLEAVE_TRANSFORMS_SHARDINGSTRATEGY_H

#include "cleave/Analysis/TensorSplitSearch.h"
#include "cleave/Dialect/Cleave/IR/CleaveOps.h"

#include "mlir/Dialect/Func/IR/FuncOps.h"
#include "mlir/IR/BuiltinOps.h"

namespace mlir::cleave {

/// Where a strategy splits: a mesh and one of its axes.
struct StrategyAxis {
  MeshOp mesh;
  StringRef axis;
  int64_t size;
};

/// The one mesh of `module` that has `axis`; reports an error otherwise.
FailureOr<StrategyAxis> findStrategyAxis(ModuleOp module, StringRef axis,
                                         StringRef strategy);

/// What a strategy pass splits: a function and a mesh axis.
struct StrategyTarget {
  func::FuncOp function;
  StrategyAxis axis;
};

/// The function named `function` of `module` (by default its training step,
/// else its forward) and the axis `axis` of its one mesh that has it;
/// reports which is missing ("no function ... <what>", or no such mesh for
/// `strategy`).
FailureOr<StrategyTarget> findStrategyTarget(ModuleOp module,
                                             StringRef function, StringRef axis,
                                             StringRef strategy,
                                             const Twine &what);

/// The name a value goes by in errors: its parameter, input or state name.
std::string describeArgument(func::FuncOp function, unsigned index);

/// Constrains argument `index` of `function` to be split on `dim` along
/// `axis` (replicated when `dim` is negative), by a cleave.shard at the
/// top of the body that all other uses go through. Fails, with a located
/// error suggesting padding, when the dimension does not divide.
LogicalResult constrainArgument(func::FuncOp function, unsigned index,
                                int64_t dim, const StrategyAxis &axis,
                                int64_t priority);

/// Constrains `value`, computed in `function`, the same way: a cleave.shard
/// right after its definition that all its other uses go through, whose
/// result is returned.
FailureOr<Value> constrainValue(func::FuncOp function, Value value, int64_t dim,
                                const StrategyAxis &axis, int64_t priority);

/// Constrains result `index` of `function` the same way, by a cleave.shard
/// on the returned value.
LogicalResult constrainResult(func::FuncOp function, unsigned index,
                              int64_t dim, const StrategyAxis &axis,
                              int64_t priority);

/// Constrains `function`'s parameters and the results the search splits
/// to the search's answer, from `priority` on: one level per parameter in
/// order of first use (where two splits meet, the earlier wins and
/// partitioning reshards the later), then the results, after every
/// parameter (propagation alone may resolve a meeting of two parameters'
/// splits otherwise than the solution prices it).
LogicalResult constrainToSplits(func::FuncOp function,
                                const TensorSplits &splits,
                                const StrategyAxis &axis, int64_t priority);

} // namespace mlir::cleave

#endif // CLEAVE_LIB_DIALECT_CLEAVE_TRANSFORMS_SHARDINGSTRATEGY_H
