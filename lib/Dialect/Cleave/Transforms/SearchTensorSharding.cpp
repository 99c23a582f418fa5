//===- SearchTensorSharding.cpp - Tensor parallelism by exact search ------===//
//
// Applies the tensor-sharding search (cleave/Analysis/TensorSplitSearch.h,
// which the planner prices plans with): constrains the parameters of every
// layer as the solution of its group splits them.
//
//===----------------------------------------------------------------------===//

#include "cleave/Dialect/Cleave/Transforms/Passes.h"

#include "cleave/Analysis/TensorSplitSearch.h"

#include "ShardingStrategy.h"

namespace mlir::cleave {
#define GEN_PASS_DEF_CLEAVESEARCHTENSORSHARDING
#include "cleave/Dialect/Cleave/Transforms/Passes.h.inc"
} // namespace mlir::cleave

using namespace mlir;
using namespace mlir::cleave;

namespace {

struct CleaveSearchTensorShardingPass
    : public cleave::impl::CleaveSearchTensorShardingBase<
          CleaveSearchTensorShardingPass> {
  using Base::Base;

  void runOnOperation() override;
};

void CleaveSearchTensorShardingPass::runOnOperation() {
  ModuleOp module = getOperation();
  FailureOr<StrategyTarget> target = findStrategyTarget(
      module, function, axis, "search", "to search tensor shardings of");
  if (failed(target))
    return signalPassFailure();
  std::string error;
  FailureOr<planner::Cluster> machine = planner::loadCluster(cluster, error);
  if (failed(machine)) {
    module.emitError("cleave-search-tensor-sharding: ") << error;
    return signalPassFailure();
  }
  const StrategyAxis &split = target->axis;
  FailureOr<TensorSplits> splits = searchTensorSplits(
      target->function, split.mesh, split.axis, split.size, *machine);
  if (failed(splits))
    return signalPassFailure();
  // One priority level per parameter, in order of first use: where two
  // splits meet at an op (a column split's heads and a split of the next
  // weight), the earlier wins and partitioning reshards the later, instead
  // of the two conflicting.
  for (const ParameterSplit &param : splits->parameters)
    if (param.dim >= 0 && failed(constrainArgument(
                              target->function, param.parameter.getArgNumber(),
                              param.dim, split, priority + param.order)))
      return signalPassFailure();
  // The activations as the solution splits them (propagation alone may
  // resolve a meeting of two parameters' splits otherwise than the
  // solution prices it), after every parameter: where one meets a
  // parameter's split, the parameter wins.
  int64_t valuePriority = priority;
  for (const ParameterSplit &param : splits->parameters)
    valuePriority =
        std::max<int64_t>(valuePriority, priority + param.order + 1);
  for (const ValueSplit &value : splits->values)
    if (failed(constrainValue(target->function, value.value, value.dim, split,
                              valuePriority + value.order)))
      return signalPassFailure();
  if (report)
    printTensorSplits(*splits, llvm::outs());
}

} // namespace
