//===- ShardZero.cpp - ZeRO: split optimizer state, then parameters -------===//

#include "cleave/Dialect/Cleave/Transforms/Passes.h"

#include "FunctionLookup.h"
#include "ShardingStrategy.h"
#include "ShardingSupport.h"

namespace mlir::cleave {
#define GEN_PASS_DEF_CLEAVESHARDZERO
#include "cleave/Dialect/Cleave/Transforms/Passes.h.inc"
} // namespace mlir::cleave

using namespace mlir;
using namespace mlir::cleave;
using sharding::TensorSharding;

namespace {

/// The dimension to split argument `index` on: the first one that divides
/// and that a constraint already on the argument (Megatron's) leaves whole.
int64_t pickDim(func::FuncOp step, unsigned index, int64_t size) {
  BlockArgument arg = step.getArgument(index);
  auto type = cast<RankedTensorType>(arg.getType());
  ShardOp existing;
  if (arg.hasOneUse())
    existing = dyn_cast<ShardOp>(*arg.getUsers().begin());
  for (int64_t dim = 0; dim < type.getRank(); ++dim)
    if (type.getDimSize(dim) % size == 0 &&
        (!existing || existing.getSharding().getDimAxes(dim).empty()))
      return dim;
  return -1;
}

struct CleaveShardZeroPass
    : public cleave::impl::CleaveShardZeroBase<CleaveShardZeroPass> {
  using Base::Base;

  void runOnOperation() override {
    ModuleOp module = getOperation();
    if (stage < 1 || stage > 3) {
      module.emitError("ZeRO stage must be 1, 2 or 3, got ") << stage.getValue();
      return signalPassFailure();
    }
    FailureOr<StrategyTarget> target = findStrategyTarget(
        module, function, axis, "ZeRO", "to split optimizer state of");
    if (failed(target))
      return signalPassFailure();
    func::FuncOp step = target->function;
    StrategyAxis *split = &target->axis;

    auto hasAttr = [&](unsigned arg, StringRef name) {
      return static_cast<bool>(step.getArgAttr(arg, name));
    };
    auto isSplit = [&](unsigned arg) {
      return hasAttr(arg, CleaveDialect::kStateAttrName) ||
             (stage == 3 && hasAttr(arg, CleaveDialect::kParamAttrName));
    };
    if (llvm::none_of(llvm::seq(step.getNumArguments()), [&](unsigned arg) {
          return hasAttr(arg, CleaveDialect::kStateAttrName);
        })) {
      step.emitError("has no optimizer state to split; run cleave-optimizer "
                     "first");
      return signalPassFailure();
    }
    // The batch must hold the axis first, or the split gradients would
    // pull it onto activations.
    bool batchSplit = false;
    step.walk([&](ShardOp shard) {
      batchSplit |= static_cast<int64_t>(shard.getPriority()) < priority &&
                    TensorSharding::get(shard.getSharding()).usesAxis(axis);
    });
    if (!batchSplit) {
      step.emitError("ZeRO splits optimizer state over '")
          << axis << "', which needs the batch split over it at a higher "
          << "priority first: run cleave-shard-data-parallel (strategy=dp,zero"
          << stage.getValue() << ")";
      return signalPassFailure();
    }
    for (unsigned i = 0; i < step.getNumArguments(); ++i) {
      if (!isSplit(i))
        continue;
      int64_t dim = pickDim(step, i, split->size);
      if (failed(constrainArgument(step, i, dim, *split, priority)))
        return signalPassFailure();
    }
  }
};

} // namespace
