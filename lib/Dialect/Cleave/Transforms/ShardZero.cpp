//===- ShardZero.cpp - ZeRO: split optimizer state, then parameters -------===//

#include "cleave/Dialect/Cleave/Transforms/Passes.h"

#include "FunctionLookup.h"
#include "ShardingStrategy.h"
#include "cleave/Analysis/ShardingSupport.h"

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
    bool hasState =
        llvm::any_of(llvm::seq(step.getNumArguments()), [&](unsigned arg) {
          return hasAttr(arg, CleaveDialect::kStateAttrName);
        });
    // A step whose update is built apart (pipeline stages, micro-batches)
    // returns gradients instead: those are split here, the state there.
    SmallVector<std::pair<unsigned, unsigned>> gradients; // (param, result)
    if (!hasState) {
      llvm::StringMap<unsigned> results = getGradientResults(step);
      for (unsigned i = 0; i < step.getNumArguments(); ++i)
        if (auto name = step.getArgAttrOfType<StringAttr>(
                i, CleaveDialect::kParamAttrName))
          if (auto result = results.find(name.getValue());
              result != results.end())
            gradients.push_back({i, result->second});
    }
    if (!hasState && gradients.empty()) {
      step.emitError("has neither optimizer state nor gradients to split; "
                     "run cleave-autodiff and cleave-optimizer first");
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
    // Picked before any constraint of this pass lands on the parameters.
    SmallVector<int64_t> gradientDims;
    for (auto [param, result] : gradients)
      gradientDims.push_back(pickDim(step, param, split->size));
    for (unsigned i = 0; i < step.getNumArguments(); ++i) {
      if (!isSplit(i))
        continue;
      int64_t dim = pickDim(step, i, split->size);
      if (failed(constrainArgument(step, i, dim, *split, priority)))
        return signalPassFailure();
    }
    // ZeRO-1 keeps whole gradients for the update to slice; ZeRO-2 and 3
    // reduce-scatter them where they are complete.
    if (stage >= 2)
      for (auto [gradient, dim] : llvm::zip(gradients, gradientDims))
        if (failed(
                constrainResult(step, gradient.second, dim, *split, priority)))
          return signalPassFailure();
  }
};

} // namespace
