//===- DeferGradientReduction.cpp - Reduce dp gradients once per step -----===//
//
// A pipeline stage's backward runs once per micro-batch. Partitioning puts
// the data-parallel sum of each gradient inside it, so a step of m
// micro-batches moved m times the gradient bytes. This pass returns each
// gradient (and the loss) as a pending sum over the dp axis instead: the
// training loop accumulates the micro-batches' addends locally and reduces
// them once per step, in buckets started as the last micro-batch's backward
// finishes each gradient (docs/overlap.md). An update that reads only its
// dp block of a gradient (ZeRO-1) takes that block as its argument, and the
// runtime reduce-scatters into it.
//
//===----------------------------------------------------------------------===//

#include "cleave/Dialect/Cleave/IR/CleaveOps.h"
#include "cleave/Dialect/Cleave/Transforms/Passes.h"

#include "mlir/Dialect/Func/IR/FuncOps.h"

namespace mlir::cleave {
#define GEN_PASS_DEF_CLEAVEDEFERGRADIENTREDUCTION
#include "cleave/Dialect/Cleave/Transforms/Passes.h.inc"
} // namespace mlir::cleave

using namespace mlir;
using namespace mlir::cleave;

namespace {

StringRef getOutputName(func::FuncOp function, unsigned i) {
  auto name = function.getResultAttrOfType<StringAttr>(
      i, CleaveDialect::kOutputAttrName);
  return name ? name.getValue() : StringRef();
}

/// The sum over `axis` that completes result `i` of `function`: an
/// all_reduce that only casts, and gathers over other axes (a sum commutes
/// with both), separate from the return; or null.
AllReduceOp findCompletingSum(func::FuncOp function, unsigned i,
                              StringRef axis) {
  Operation *ret = function.getBody().front().getTerminator();
  Value value = ret->getOperand(i);
  for (Operation *op = value.getDefiningOp();
       op && isa<CastOp, AllGatherOp>(op); op = value.getDefiningOp()) {
    auto gather = dyn_cast<AllGatherOp>(op);
    if (!op->hasOneUse() ||
        (gather && llvm::is_contained(
                       gather.getAxes().getAsValueRange<StringAttr>(), axis)))
      return {};
    value = op->getOperand(0);
  }
  auto sum = value.getDefiningOp<AllReduceOp>();
  if (!sum || sum.getKind() != ReductionKind::sum || !sum->hasOneUse() ||
      !llvm::is_contained(sum.getAxes().getAsValueRange<StringAttr>(), axis))
    return {};
  return sum;
}

/// The dimension every user of `argument` takes its `axis` block of (a
/// local_slice on exactly that axis), or nullopt.
std::optional<int64_t> getSlicedDim(BlockArgument argument, StringRef axis) {
  std::optional<int64_t> dim;
  for (Operation *user : argument.getUsers()) {
    auto slice = dyn_cast<LocalSliceOp>(user);
    if (!slice || slice.getAxes().size() != 1 ||
        cast<StringAttr>(slice.getAxes()[0]).getValue() != axis ||
        (dim && *dim != static_cast<int64_t>(slice.getDim())))
      return std::nullopt;
    dim = slice.getDim();
  }
  return dim;
}

/// `sharding` with `axis` appended to the split of dimension `dim`.
ShardingAttr addSplit(ShardingAttr sharding, int64_t dim, StringRef axis) {
  Builder b(sharding.getContext());
  SmallVector<Attribute> dims;
  for (unsigned d = 0; d < sharding.getDims().size(); ++d) {
    auto axes = llvm::to_vector(sharding.getDimAxes(d));
    if (static_cast<int64_t>(d) == dim)
      axes.push_back(axis);
    dims.push_back(b.getStrArrayAttr(axes));
  }
  return ShardingAttr::get(sharding.getContext(), sharding.getMesh(),
                           b.getArrayAttr(dims), sharding.getPartial());
}

ShardingAttr addPartial(ShardingAttr sharding, StringRef axis) {
  Builder b(sharding.getContext());
  auto partial = llvm::to_vector(sharding.getPartialAxes());
  partial.push_back(axis);
  return ShardingAttr::get(sharding.getContext(), sharding.getMesh(),
                           sharding.getDims(), b.getStrArrayAttr(partial));
}

struct DeferGradientReductionPass
    : public mlir::cleave::impl::CleaveDeferGradientReductionBase<
          DeferGradientReductionPass> {
  using Base::Base;

  void runOnOperation() override {
    ModuleOp module = getOperation();
    // A gradient that several stages compute parts of (a tied table's):
    // the runtime sums each rank's part over dp, then the parts over pp,
    // whole on the rank that applies it.
    llvm::StringMap<int> producers;
    for (auto function : module.getOps<func::FuncOp>())
      if (getFunctionRole(function) == FunctionRole::StageBackward &&
          !function.isExternal())
        for (unsigned i = 0; i < function.getNumResults(); ++i)
          if (hasOutputRole(function, i, OutputRole::Gradient))
            ++producers[getOutputName(function, i)];

    // Update arguments by gradient name.
    llvm::StringMap<std::pair<func::FuncOp, unsigned>> updateArguments;
    for (auto function : module.getOps<func::FuncOp>()) {
      if (getFunctionRole(function) != FunctionRole::Update ||
          function.isExternal())
        continue;
      for (unsigned i = 0; i < function.getNumArguments(); ++i)
        if (auto name = function.getArgAttrOfType<StringAttr>(
                i, CleaveDialect::kInputAttrName))
          updateArguments[name.getValue()] = {function, i};
    }

    llvm::StringMap<int64_t> scatteredDims;
    for (auto function : module.getOps<func::FuncOp>()) {
      std::optional<FunctionRole> role = getFunctionRole(function);
      if ((role != FunctionRole::StageBackward &&
           role != FunctionRole::StageForward) ||
          function.isExternal())
        continue;
      for (unsigned i = 0; i < function.getNumResults(); ++i) {
        StringRef name = getOutputName(function, i);
        bool isGradient = hasOutputRole(function, i, OutputRole::Gradient) &&
                          role == FunctionRole::StageBackward &&
                          updateArguments.count(name);
        bool isLoss = hasOutputRole(function, i, OutputRole::Loss);
        if (!isGradient && !isLoss)
          continue;
        auto block = function.getResultAttrOfType<ShardingAttr>(
            i, CleaveDialect::kBlockAttrName);
        AllReduceOp sum = findCompletingSum(function, i, axis);
        if (!block || !sum)
          continue;
        deferSum(sum);
        function.setResultAttr(i, CleaveDialect::kBlockAttrName,
                               addPartial(block, axis));
        if (!isGradient)
          continue;
        auto [update, index] = updateArguments[name];
        if (std::optional<int64_t> dim =
                getSlicedDim(update.getArgument(index), axis);
            dim && producers[name] == 1 &&
            update.getArgAttrOfType<ShardingAttr>(
                index, CleaveDialect::kBlockAttrName)) {
          takeBlock(update, index, *dim);
          scatteredDims[name] = *dim;
        }
      }
    }
    // The runtime reduce-scatters what the update takes a block of.
    for (auto function : module.getOps<func::FuncOp>())
      if (getFunctionRole(function) == FunctionRole::StageBackward &&
          !function.isExternal())
        for (unsigned i = 0; i < function.getNumResults(); ++i)
          if (auto found = scatteredDims.find(getOutputName(function, i));
              found != scatteredDims.end())
            function.setResultAttr(
                i, CleaveDialect::kScatterDimAttrName,
                Builder(module.getContext()).getI64IntegerAttr(found->second));
  }

  /// Drops `axis` from `sum` (the op itself when it is its only axis).
  void deferSum(AllReduceOp sum) {
    SmallVector<StringRef> rest;
    for (StringRef name : sum.getAxes().getAsValueRange<StringAttr>())
      if (name != axis)
        rest.push_back(name);
    if (rest.empty()) {
      sum.getResult().replaceAllUsesWith(sum.getInput());
      sum.erase();
      return;
    }
    OpBuilder b(sum);
    sum.setAxesAttr(b.getStrArrayAttr(rest));
  }

  /// The update takes its `axis` block along `dim` of argument `index`,
  /// which its local slices took before.
  void takeBlock(func::FuncOp update, unsigned index, int64_t dim) {
    BlockArgument argument = update.getArgument(index);
    Type blockType;
    for (Operation *user : llvm::make_early_inc_range(argument.getUsers())) {
      auto slice = cast<LocalSliceOp>(user);
      blockType = slice.getType();
      slice.getResult().replaceAllUsesWith(argument);
      slice.erase();
    }
    argument.setType(blockType);
    auto block = update.getArgAttrOfType<ShardingAttr>(
        index, CleaveDialect::kBlockAttrName);
    update.setArgAttr(index, CleaveDialect::kBlockAttrName,
                      addSplit(block, dim, axis));
    update.setType(FunctionType::get(
        update.getContext(), update.getBody().front().getArgumentTypes(),
        update.getResultTypes()));
  }
};

} // namespace
