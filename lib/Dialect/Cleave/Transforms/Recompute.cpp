//===- Recompute.cpp - Per-layer activation recompute ---------------------===//

#include "cleave/Dialect/Cleave/IR/CleaveOps.h"
#include "cleave/Dialect/Cleave/Transforms/Passes.h"

#include "FunctionLookup.h"

#include "mlir/Analysis/SliceAnalysis.h"
#include "mlir/IR/IRMapping.h"
#include "llvm/ADT/SetVector.h"

#include <map>
#include <optional>

namespace mlir::cleave {
#define GEN_PASS_DEF_CLEAVERECOMPUTE
#include "cleave/Dialect/Cleave/Transforms/Passes.h.inc"
} // namespace mlir::cleave

using namespace mlir;
using namespace mlir::cleave;

namespace {

struct RecomputePass
    : public mlir::cleave::impl::CleaveRecomputeBase<RecomputePass> {
  using Base::Base;

  void runOnOperation() override {
    ModuleOp module = getOperation();
    func::FuncOp step =
        lookupFunctionWithBody(module, function, {FunctionRole::Step},
                               "to recompute in: run cleave-autodiff first");
    if (!step)
      return signalPassFailure();
    Block &body = step.getBody().front();
    Value loss = lookupOutput(step, OutputRole::Loss);
    if (!loss) {
      step.emitError("training step returns no loss (cleave.output_role loss)");
      return signalPassFailure();
    }

    // The forward ops: everything the loss depends on.
    DenseSet<Operation *> forward = getLossSlice(loss);

    // Per block: its forward ops in order, and the backward uses of values
    // that are internal to it (not read by any other layer's forward ops).
    std::map<int64_t, SmallVector<Operation *>> blockOps;
    for (Operation &op : body)
      if (forward.contains(&op) && getBlockIndex(&op) >= 0)
        blockOps[getBlockIndex(&op)].push_back(&op);

    std::optional<DenseSet<int64_t>> chosen = chooseBlocks(step, blockOps);
    if (!chosen)
      return signalPassFailure();
    for (auto &[index, ops] : blockOps)
      if (chosen->contains(index))
        recomputeBlock(body, forward, index, ops);
  }

  /// The blocks to recompute: every block, or the first `layers` of each
  /// stage (`cleave.block_stages` of the step, one stage without it).
  std::optional<DenseSet<int64_t>>
  chooseBlocks(func::FuncOp step,
               const std::map<int64_t, SmallVector<Operation *>> &blockOps) {
    DenseSet<int64_t> chosen;
    if (layers.empty()) {
      for (const auto &entry : blockOps)
        chosen.insert(entry.first);
      return chosen;
    }
    auto stagesAttr = step->getAttrOfType<DenseI64ArrayAttr>(
        CleaveDialect::kBlockStagesAttrName);
    ArrayRef<int64_t> blockStages =
        stagesAttr ? stagesAttr.asArrayRef() : ArrayRef<int64_t>();
    std::map<int64_t, SmallVector<int64_t>> stageBlocks;
    for (const auto &entry : blockOps) {
      int64_t block = entry.first;
      int64_t stage = stagesAttr ? -1 : 0;
      if (block < static_cast<int64_t>(blockStages.size()))
        stage = blockStages[block];
      if (stage < 0) {
        step.emitError("block ") << block << " has no stage in "
                                 << CleaveDialect::kBlockStagesAttrName;
        return std::nullopt;
      }
      stageBlocks[stage].push_back(block);
    }
    int64_t stages = stageBlocks.empty() ? 0 : stageBlocks.rbegin()->first + 1;
    if (layers.size() != 1 && static_cast<int64_t>(layers.size()) != stages) {
      step.emitError("layers gives ")
          << layers.size() << " counts for " << stages
          << " stages: give one for all or one per stage";
      return std::nullopt;
    }
    if (llvm::any_of(layers, [](int64_t n) { return n < 0; })) {
      step.emitError("layers must not be negative");
      return std::nullopt;
    }
    for (auto &[stage, blocks] : stageBlocks) {
      int64_t count = layers.size() == 1 ? layers[0] : layers[stage];
      for (int64_t block : ArrayRef(blocks).take_front(count))
        chosen.insert(block);
    }
    return chosen;
  }

  /// True when `value` (computed in block `index`) is read by a forward op
  /// of another layer or returned: a boundary that stays alive.
  static bool isBoundary(Value value, int64_t index,
                         const DenseSet<Operation *> &forward) {
    return llvm::any_of(value.getUsers(), [&](Operation *user) {
      return isa<func::ReturnOp>(user) ||
             (forward.contains(user) && getBlockIndex(user) != index);
    });
  }

  void recomputeBlock(Block &body, const DenseSet<Operation *> &forward,
                      int64_t index, ArrayRef<Operation *> ops) {
    DenseSet<Operation *> inBlock(ops.begin(), ops.end());
    // Backward uses of the block's internal values.
    SmallVector<OpOperand *> uses;
    Operation *firstUser = nullptr;
    for (Operation *op : ops) {
      for (Value result : op->getResults()) {
        if (isBoundary(result, index, forward))
          continue;
        for (OpOperand &use : result.getUses()) {
          Operation *user = use.getOwner();
          if (forward.contains(user))
            continue;
          uses.push_back(&use);
          if (!firstUser || user->isBeforeInBlock(firstUser))
            firstUser = user;
        }
      }
    }
    if (uses.empty())
      return;

    // Clone the block's forward ops the backward needs, in order, reading
    // boundaries (kept) and recomputed values.
    llvm::SetVector<Operation *> needed;
    SmallVector<Operation *> pending;
    for (OpOperand *use : uses)
      pending.push_back(use->get().getDefiningOp());
    while (!pending.empty()) {
      Operation *op = pending.pop_back_val();
      if (!op || !inBlock.contains(op) || !needed.insert(op))
        continue;
      for (Value operand : op->getOperands()) {
        Operation *def = operand.getDefiningOp();
        if (def && inBlock.contains(def) &&
            !isBoundary(operand, index, forward))
          pending.push_back(def);
      }
    }
    OpBuilder builder(firstUser);
    IRMapping mapping;
    for (Operation *op : ops) {
      if (!needed.contains(op))
        continue;
      Operation *clone = builder.clone(*op, mapping);
      clone->setAttr(CleaveDialect::kRecomputeAttrName, builder.getUnitAttr());
      ++numRecomputed;
    }
    for (OpOperand *use : uses)
      if (Value clone = mapping.lookupOrNull(use->get()))
        use->set(clone);
  }
};

} // namespace
