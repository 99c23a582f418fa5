//===- AssignStages.cpp - Cut the layers into pipeline stages -------------===//
//
// Pipeline stages are contiguous runs of transformer blocks. The cut is a
// linear partition: split the blocks' costs into stages so that the most
// expensive stage is as cheap as possible (FLOPs first, parameter bytes to
// break ties), solved exactly by dynamic programming over (stages, blocks).
//
//===----------------------------------------------------------------------===//

#include "cleave/Dialect/Cleave/IR/CleaveOps.h"
#include "cleave/Dialect/Cleave/Transforms/Passes.h"

#include "llvm/Support/Format.h"

#include <limits>
#include <numeric>

namespace mlir::cleave {
#define GEN_PASS_DEF_CLEAVEASSIGNSTAGES
#include "cleave/Dialect/Cleave/Transforms/Passes.h.inc"
} // namespace mlir::cleave

using namespace mlir;
using namespace mlir::cleave;

namespace {

/// What a block (or a stage) costs.
struct StageCost {
  double flops = 0.0;
  double paramBytes = 0.0;
};

/// The cheapest largest `measure` over cuts of `costs` into `stages`
/// contiguous stages whose stages all pass `allowed`; returns the block
/// counts (empty if no cut is allowed). A bottleneck partition: the best cut
/// of a prefix into k stages extends the best cut into k - 1.
template <typename Measure, typename Allowed>
SmallVector<int64_t> cutStages(ArrayRef<StageCost> costs, int64_t stages,
                               Measure measure, Allowed allowed) {
  int64_t blocks = costs.size();
  auto span = [&](int64_t begin, int64_t end) {
    StageCost total;
    for (int64_t i = begin; i < end; ++i) {
      total.flops += costs[i].flops;
      total.paramBytes += costs[i].paramBytes;
    }
    return total;
  };
  const double kNone = std::numeric_limits<double>::infinity();
  // best[k][i]: the cheapest largest stage over the first i blocks cut into
  // k stages; cut[k][i]: where the last of those stages starts.
  SmallVector<SmallVector<double>> best(stages + 1,
                                        SmallVector<double>(blocks + 1, kNone));
  SmallVector<SmallVector<int64_t>> cut(stages + 1,
                                        SmallVector<int64_t>(blocks + 1, 0));
  best[0][0] = 0.0;
  for (int64_t k = 1; k <= stages; ++k)
    for (int64_t i = k; i <= blocks; ++i)
      for (int64_t j = k - 1; j < i; ++j) {
        StageCost last = span(j, i);
        if (best[k - 1][j] == kNone || !allowed(last))
          continue;
        double candidate = std::max(best[k - 1][j], measure(last));
        if (candidate < best[k][i]) {
          best[k][i] = candidate;
          cut[k][i] = j;
        }
      }
  if (best[stages][blocks] == kNone)
    return {};
  SmallVector<int64_t> counts(stages);
  for (int64_t k = stages, i = blocks; k > 0; --k) {
    counts[k - 1] = i - cut[k][i];
    i = cut[k][i];
  }
  return counts;
}

/// The cut that minimizes the most FLOPs any stage does and, among those,
/// the most parameter bytes any stage holds.
SmallVector<int64_t> balanceStages(ArrayRef<StageCost> costs, int64_t stages) {
  auto flops = [](const StageCost &cost) { return cost.flops; };
  auto bytes = [](const StageCost &cost) { return cost.paramBytes; };
  auto any = [](const StageCost &) { return true; };
  SmallVector<int64_t> fastest = cutStages(costs, stages, flops, any);
  double limit = 0.0;
  int64_t begin = 0;
  for (int64_t count : fastest) {
    double total = 0.0;
    for (int64_t i = begin; i < begin + count; ++i)
      total += costs[i].flops;
    limit = std::max(limit, total);
    begin += count;
  }
  // Sums in another order may round differently: allow for it.
  auto fastEnough = [&](const StageCost &cost) {
    return cost.flops <= limit * (1 + 1e-12);
  };
  SmallVector<int64_t> smallest = cutStages(costs, stages, bytes, fastEnough);
  return smallest.empty() ? fastest : smallest;
}

struct AssignStagesPass
    : public cleave::impl::CleaveAssignStagesBase<AssignStagesPass> {
  using Base::Base;

  /// The function named by the option; else the training step, or a
  /// function without a role (a model written by hand). The model a step
  /// was derived from (role forward), updates and stages stay as they are.
  bool isSelected(func::FuncOp candidate) {
    if (!function.empty())
      return candidate.getSymName() == function;
    std::optional<FunctionRole> role = getFunctionRole(candidate);
    return !role || *role == FunctionRole::Step;
  }

  void runOnOperation() override {
    func::FuncOp function = getOperation();
    if (function.isDeclaration() || !isSelected(function))
      return;
    if (stages < 1 || virtualStages < 1) {
      function.emitError("stages and virtual-stages must be at least 1");
      return signalPassFailure();
    }

    // Every op's layer, and the number of blocks.
    SmallVector<std::pair<Operation *, LayerAttr>> tagged;
    int64_t blocks = 0;
    WalkResult walk = function.walk([&](Operation *op) {
      if (!isa_and_nonnull<CleaveDialect>(op->getDialect()) ||
          op->hasTrait<OpTrait::ConstantLike>() ||
          op->getParentOfType<FusedOp>())
        return WalkResult::advance();
      auto layer = op->getAttrOfType<LayerAttr>(CleaveDialect::kLayerAttrName);
      if (!layer) {
        op->emitError("has no '")
            << CleaveDialect::kLayerAttrName
            << "' tag: pipeline stages follow the layers";
        return WalkResult::interrupt();
      }
      if (layer.getKind() == LayerKind::Block)
        blocks = std::max(blocks, layer.getIndex() + 1);
      tagged.emplace_back(op, layer);
      return WalkResult::advance();
    });
    if (walk.wasInterrupted() || failed(getDenseBlockCount(function)))
      return signalPassFailure();
    // A function of no model layer (a helper, an empty body) has nothing to
    // stage.
    if (tagged.empty())
      return;
    if (blocks == 0) {
      function.emitError("has no transformer blocks to cut into stages");
      return signalPassFailure();
    }
    // The embedding counts with the first block, the head with the last.
    auto blockOf = [&](LayerAttr layer) -> int64_t {
      switch (layer.getKind()) {
      case LayerKind::Embed:
        return 0;
      case LayerKind::Head:
        return blocks - 1;
      default:
        return layer.getIndex();
      }
    };

    SmallVector<StageCost> costs(blocks);
    for (auto [op, layer] : tagged)
      if (auto cost = dyn_cast<CostOpInterface>(op))
        costs[blockOf(layer)].flops += cost.getFlops();
    // A parameter counts on every block that reads it (a tied embedding and
    // head lives on both of their stages).
    for (BlockArgument argument : function.getArguments()) {
      if (!function.getArgAttr(argument.getArgNumber(),
                               CleaveDialect::kParamAttrName))
        continue;
      llvm::SmallDenseSet<int64_t> readers;
      for (Operation *user : argument.getUsers())
        if (auto layer = user->getAttrOfType<LayerAttr>(
                CleaveDialect::kLayerAttrName))
          readers.insert(blockOf(layer));
      for (int64_t block : readers)
        costs[block].paramBytes += getTotalBytes(argument.getType());
    }

    FailureOr<SmallVector<int64_t>> counts = getBlockCounts(function, costs);
    if (failed(counts))
      return signalPassFailure();
    SmallVector<int64_t> blockStages;
    for (auto [stage, count] : llvm::enumerate(*counts))
      blockStages.append(count, stage);

    Builder builder(function.getContext());
    for (auto [op, layer] : tagged)
      op->setAttr(CleaveDialect::kStageAttrName,
                  builder.getI64IntegerAttr(blockStages[blockOf(layer)]));
    function->setAttr(CleaveDialect::kBlockStagesAttrName,
                      builder.getDenseI64ArrayAttr(blockStages));
    if (report)
      printReport(function, costs, *counts);
  }

  /// The blocks of each global stage: as asked, uniform for virtual stages,
  /// else balanced.
  FailureOr<SmallVector<int64_t>>
  getBlockCounts(func::FuncOp function, ArrayRef<StageCost> costs) {
    int64_t blocks = costs.size();
    int64_t total = stages * virtualStages;
    if (total > blocks)
      return function.emitError("cannot cut ")
             << blocks << " transformer blocks into " << total
             << " pipeline stages";
    if (!layersPerStage.empty()) {
      if (virtualStages != 1)
        return function.emitError(
            "layers-per-stage sets whole stages; virtual stages are cut "
            "evenly");
      if (static_cast<int64_t>(layersPerStage.size()) != stages)
        return function.emitError("layers-per-stage lists ")
               << layersPerStage.size() << " stages, but there are " << stages.getValue();
      if (llvm::any_of(layersPerStage, [](int64_t n) { return n < 1; }))
        return function.emitError(
            "every stage needs at least one transformer block");
      int64_t sum = std::accumulate(layersPerStage.begin(),
                                    layersPerStage.end(), int64_t(0));
      if (sum != blocks)
        return function.emitError("layers-per-stage covers ")
               << sum << " transformer blocks, but the model has " << blocks;
      return SmallVector<int64_t>(layersPerStage.begin(), layersPerStage.end());
    }
    if (virtualStages != 1) {
      if (blocks % total != 0)
        return function.emitError("cannot interleave ")
               << blocks << " transformer blocks over " << stages.getValue()
               << " stages x " << virtualStages.getValue()
               << " virtual stages: every chunk needs the same number of "
                  "blocks";
      return SmallVector<int64_t>(total, blocks / total);
    }
    return balanceStages(costs, stages);
  }

  void printReport(func::FuncOp function, ArrayRef<StageCost> costs,
                   ArrayRef<int64_t> counts) {
    double totalFlops = 0.0;
    for (const StageCost &cost : costs)
      totalFlops += cost.flops;
    llvm::raw_ostream &os = llvm::outs();
    os << "pipeline stages of '" << function.getSymName() << "': "
       << counts.size() << " (" << stages.getValue() << " ranks x " << virtualStages.getValue()
       << " virtual)\n";
    int64_t first = 0;
    for (auto [stage, count] : llvm::enumerate(counts)) {
      StageCost cost;
      for (int64_t block = first; block < first + count; ++block) {
        cost.flops += costs[block].flops;
        cost.paramBytes += costs[block].paramBytes;
      }
      os << "stage " << stage << " (rank " << stage % stages << "): blocks "
         << first << "-" << first + count - 1
         << llvm::format(", flops %.4g (%.1f%%), params %.0f bytes\n",
                         cost.flops,
                         totalFlops > 0 ? 100.0 * cost.flops / totalFlops : 0.0,
                         cost.paramBytes);
      first += count;
    }
  }
};

} // namespace
