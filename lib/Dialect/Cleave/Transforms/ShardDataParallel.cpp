//===- ShardDataParallel.cpp - Split the batch over a mesh axis -----------===//

#include "cleave/Dialect/Cleave/Transforms/Passes.h"

#include "FunctionLookup.h"
#include "ShardingStrategy.h"

namespace mlir::cleave {
#define GEN_PASS_DEF_CLEAVESHARDDATAPARALLEL
#include "cleave/Dialect/Cleave/Transforms/Passes.h.inc"
} // namespace mlir::cleave

using namespace mlir;
using namespace mlir::cleave;

namespace {

struct CleaveShardDataParallelPass
    : public cleave::impl::CleaveShardDataParallelBase<CleaveShardDataParallelPass> {
  using Base::Base;

  void runOnOperation() override {
    ModuleOp module = getOperation();
    FailureOr<StrategyTarget> target = findStrategyTarget(
        module, function, axis, "data-parallel", "to split the batch of");
    if (failed(target))
      return signalPassFailure();
    func::FuncOp step = target->function;
    StrategyAxis *split = &target->axis;
    // Every data input leads with the batch; scalars (the learning rate and
    // step number among them) and the gradients an update takes stay whole.
    for (unsigned i = 0; i < step.getNumArguments(); ++i) {
      if (!step.getArgAttr(i, CleaveDialect::kInputAttrName) ||
          cast<RankedTensorType>(step.getArgument(i).getType()).getRank() ==
              0 ||
          hasInputRole(step, i, InputRole::Gradient))
        continue;
      if (failed(constrainArgument(step, i, /*dim=*/0, *split, priority)))
        return signalPassFailure();
    }
  }
};

} // namespace
