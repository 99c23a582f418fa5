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
  if (failed(splits) ||
      failed(constrainToSplits(target->function, *splits, split, priority)))
    return signalPassFailure();
  if (report)
    printTensorSplits(*splits, llvm::outs());
}

} // namespace
