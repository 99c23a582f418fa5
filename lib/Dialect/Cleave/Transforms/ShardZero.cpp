//===- ShardZero.cpp - ZeRO: split optimizer state, then parameters -------===//

#include "cleave/Dialect/Cleave/Transforms/Passes.h"

#include "FunctionLookup.h"
#include "ShardingStrategy.h"

namespace mlir::cleave {
#define GEN_PASS_DEF_CLEAVESHARDZERO
#include "cleave/Dialect/Cleave/Transforms/Passes.h.inc"
} // namespace mlir::cleave

using namespace mlir;
using namespace mlir::cleave;

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
    func::FuncOp step =
        lookupFunctionWithBody(module, function, "to split optimizer state of");
    if (!step)
      return signalPassFailure();
    FailureOr<StrategyAxis> split = findStrategyAxis(module, axis, "ZeRO");
    if (failed(split))
      return signalPassFailure();

    auto isState = [&](unsigned arg) {
      return static_cast<bool>(step.getArgAttr(arg, CleaveDialect::kStateAttrName));
    };
    auto isParam = [&](unsigned arg) {
      return static_cast<bool>(step.getArgAttr(arg, CleaveDialect::kParamAttrName));
    };
    auto isSplit = [&](unsigned arg) {
      return isState(arg) || (stage == 3 && isParam(arg));
    };
    bool anyState = false;
    for (unsigned i = 0; i < step.getNumArguments(); ++i) {
      anyState |= isState(i);
      if (!isSplit(i))
        continue;
      int64_t dim = pickDim(step, i, split->size);
      if (failed(constrainArgument(step, i, dim, *split, priority)))
        return signalPassFailure();
    }
    if (!anyState) {
      step.emitError("has no optimizer state to split; run cleave-optimizer "
                     "first");
      return signalPassFailure();
    }
  }
};

} // namespace
