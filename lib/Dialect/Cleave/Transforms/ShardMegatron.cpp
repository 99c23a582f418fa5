//===- ShardMegatron.cpp - Megatron-LM tensor parallelism -----------------===//
//
// Column splits for the projections into heads and into the MLP, row splits
// for the projections back, vocabulary splits for the embedding and output
// head: read off the step's products and their sharding rules.
//
//===----------------------------------------------------------------------===//

#include "cleave/Dialect/Cleave/Transforms/Passes.h"

#include "FunctionLookup.h"
#include "ShardingStrategy.h"

#include "cleave/Dialect/Cleave/IR/CleaveOps.h"

#include "mlir/Analysis/SliceAnalysis.h"
#include "llvm/ADT/SetVector.h"

namespace mlir::cleave {
#define GEN_PASS_DEF_CLEAVESHARDMEGATRON
#include "cleave/Dialect/Cleave/Transforms/Passes.h.inc"
} // namespace mlir::cleave

using namespace mlir;
using namespace mlir::cleave;

namespace {

/// The dimensions of operand `index` of `op` whose factors in the op's
/// sharding rule have kind `kind`.
SmallVector<int64_t> getDimsOfKind(Operation *op, unsigned index,
                                   FactorKind kind) {
  SmallVector<int64_t> dims;
  auto ruleOp = dyn_cast<ShardingRuleOpInterface>(op);
  if (!ruleOp)
    return dims;
  ShardingRule rule = ruleOp.getShardingRule();
  for (auto [dim, factors] : llvm::enumerate(rule.operands[index]))
    if (factors.size() == 1 && rule.factorKinds[factors.front()] == kind)
      dims.push_back(dim);
  return dims;
}

/// The ops the step's loss depends on (its forward), or every op of a
/// function that returns no loss.
DenseSet<Operation *> getForwardOps(func::FuncOp step) {
  DenseSet<Operation *> forward;
  Value loss = lookupOutput(step, OutputRole::Loss);
  if (!loss) {
    step.walk([&](Operation *op) { forward.insert(op); });
    return forward;
  }
  return getLossSlice(loss);
}

/// Megatron's splits, read off the step's structure: within a transformer
/// block, a product of an activation and a weight whose activation comes
/// (after the block's last normalization) from other such products is a
/// row-parallel projection: its weight splits along its contraction. The
/// products it reads from are column-parallel: their weights split along
/// the output factor, and so do the biases added to them. The output head's
/// weight splits along the vocabulary, its output factor, and an embedding
/// table along its rows, the vocabulary.
class MegatronSplits {
public:
  MegatronSplits(func::FuncOp step, int64_t ways)
      : step(step), forward(getForwardOps(step)), ways(ways) {}

  /// Per parameter argument, the dimension to split.
  DenseMap<unsigned, int64_t> find() {
    step.walk([&](Operation *op) {
      if (!forward.contains(op))
        return;
      if (auto embedding = dyn_cast<EmbeddingOp>(op))
        addWeightSplit(op, 0, FactorKind::Reduction);
      auto product = dyn_cast<MatmulOp>(op);
      if (!product || !getParameter(product.getRhs()))
        return;
      LayerKind kind = getLayerKind(op);
      if (kind == LayerKind::Head) {
        addWeightSplit(op, 1, FactorKind::Parallel);
        return;
      }
      SmallVector<MatmulOp> columns = findColumnProducts(product);
      if (kind != LayerKind::Block || columns.empty())
        return;
      addWeightSplit(op, 1, FactorKind::Reduction);
      for (MatmulOp column : columns) {
        if (projectsUnsplitKeys(column))
          continue;
        addWeightSplit(column, 1, FactorKind::Parallel);
        addBiasSplits(column);
      }
    });
    return splits;
  }

private:
  /// The parameter argument `value` is, if it is one, possibly cast to the
  /// compute precision (cleave-mixed-precision).
  std::optional<unsigned> getParameter(Value value) {
    while (auto cast = value.getDefiningOp<CastOp>())
      value = cast.getInput();
    auto argument = dyn_cast<BlockArgument>(value);
    if (!argument || argument.getOwner() != &step.getBody().front() ||
        !step.getArgAttr(argument.getArgNumber(),
                         CleaveDialect::kParamAttrName))
      return std::nullopt;
    return argument.getArgNumber();
  }

  static LayerKind getLayerKind(Operation *op) {
    auto layer = op->getAttrOfType<LayerAttr>(CleaveDialect::kLayerAttrName);
    return layer ? layer.getKind() : LayerKind::Embed;
  }

  /// The products with a parameter weight that `product`'s activation
  /// comes from within its layer, after the layer's normalizations.
  SmallVector<MatmulOp> findColumnProducts(MatmulOp product) {
    Attribute layer = product->getAttr(CleaveDialect::kLayerAttrName);
    SmallVector<MatmulOp> columns;
    SmallVector<Value> worklist = {product.getLhs()};
    DenseSet<Operation *> seen;
    while (!worklist.empty()) {
      Operation *op = worklist.pop_back_val().getDefiningOp();
      if (!op || !seen.insert(op).second ||
          op->getAttr(CleaveDialect::kLayerAttrName) != layer ||
          isa<LayerNormOp, RmsNormOp>(op))
        continue;
      if (auto column = dyn_cast<MatmulOp>(op);
          column && getParameter(column.getRhs())) {
        columns.push_back(column);
        continue;
      }
      llvm::append_range(worklist, op->getOperands());
    }
    return columns;
  }

  /// Whether `column` projects the keys or values of grouped-query
  /// attention whose key/value heads the split does not divide: Megatron-LM
  /// then keeps those projections whole on every rank.
  bool projectsUnsplitKeys(MatmulOp column) {
    Attribute layer = column->getAttr(CleaveDialect::kLayerAttrName);
    SmallVector<Value> worklist = {column.getResult()};
    DenseSet<Operation *> seen;
    while (!worklist.empty()) {
      for (OpOperand &use : worklist.pop_back_val().getUses()) {
        Operation *user = use.getOwner();
        if (auto attention = dyn_cast<AttentionOp>(user)) {
          auto key = attention.getKey().getType();
          if (use.getOperandNumber() != 0 && key.getRank() >= 4 &&
              key.getDimSize(key.getRank() - 3) % ways != 0)
            return true;
          continue;
        }
        if (isa<MatmulOp>(user) || !seen.insert(user).second ||
            user->getAttr(CleaveDialect::kLayerAttrName) != layer)
          continue;
        llvm::append_range(worklist, user->getResults());
      }
    }
    return false;
  }

  /// Splits the weight operand `index` of `op` along its factor of `kind`.
  void addWeightSplit(Operation *op, unsigned index, FactorKind kind) {
    std::optional<unsigned> argument = getParameter(op->getOperand(index));
    SmallVector<int64_t> dims = getDimsOfKind(op, index, kind);
    if (argument && dims.size() == 1)
      splits.try_emplace(*argument, dims.front());
  }

  /// A bias added to a column-parallel product splits with its output.
  void addBiasSplits(MatmulOp column) {
    for (Operation *user : column->getUsers()) {
      if (!isa<AddOp>(user))
        continue;
      for (Value operand : user->getOperands()) {
        auto broadcast = operand.getDefiningOp<BroadcastOp>();
        std::optional<unsigned> bias =
            broadcast ? getParameter(broadcast.getInput()) : std::nullopt;
        if (bias &&
            cast<RankedTensorType>(broadcast.getInput().getType()).getRank() ==
                1)
          splits.try_emplace(*bias, 0);
      }
    }
  }

  func::FuncOp step;
  DenseSet<Operation *> forward;
  /// The size of the tensor-parallel axis.
  int64_t ways;
  DenseMap<unsigned, int64_t> splits;
};

struct CleaveShardMegatronPass
    : public cleave::impl::CleaveShardMegatronBase<CleaveShardMegatronPass> {
  using Base::Base;

  void runOnOperation() override {
    ModuleOp module = getOperation();
    FailureOr<StrategyTarget> target = findStrategyTarget(
        module, function, axis, "Megatron", "to split over tensor parallelism");
    if (failed(target))
      return signalPassFailure();
    func::FuncOp step = target->function;
    StrategyAxis *split = &target->axis;
    // Heads are the unit of an attention split.
    WalkResult heads = step.walk([&](AttentionOp attention) {
      auto query = attention.getQuery().getType();
      if (query.getRank() < 4 || query.getDimSize(1) % split->size == 0)
        return WalkResult::advance();
      attention.emitError() << query.getDimSize(1) << " attention heads do not "
                            << "split over " << axis << "=" << split->size;
      return WalkResult::interrupt();
    });
    if (heads.wasInterrupted())
      return signalPassFailure();
    DenseMap<unsigned, int64_t> splits =
        MegatronSplits(step, split->size).find();
    if (splits.empty()) {
      step.emitError("found nothing the Megatron strategy splits: no "
                     "embedding, output head, or pair of column- and "
                     "row-parallel products in a transformer block");
      return signalPassFailure();
    }
    // In argument order, so that constraint priorities follow it.
    for (unsigned i = 0; i < step.getNumArguments(); ++i)
      if (auto found = splits.find(i);
          found != splits.end() &&
          failed(constrainArgument(step, i, found->second, *split, priority)))
        return signalPassFailure();
    if (sequenceParallel && failed(splitSequence(step, *split)))
      return signalPassFailure();
  }

  /// Sequence parallelism: the forward's normalizations take and give the
  /// residual stream split on the sequence, below the weights' priority.
  LogicalResult splitSequence(func::FuncOp step, const StrategyAxis &split) {
    DenseSet<Operation *> forward = getForwardOps(step);
    SmallVector<Operation *> norms;
    step.walk([&](Operation *op) {
      if (isa<LayerNormOp, RmsNormOp>(op) && forward.contains(op) &&
          cast<RankedTensorType>(op->getResult(0).getType()).getRank() >= 3)
        norms.push_back(op);
    });
    if (norms.empty())
      return step.emitError("sequence parallelism splits the residual stream "
                            "at the normalizations, and the step has none");
    int64_t level = priority + 1;
    DenseSet<Value> inputs;
    for (Operation *norm : norms) {
      Value input = norm->getOperand(0), output = norm->getResult(0);
      int64_t sequence = cast<RankedTensorType>(output.getType()).getRank() - 2;
      if (inputs.insert(input).second &&
          failed(constrainValue(step, input, sequence, split, level)))
        return failure();
      if (failed(constrainValue(step, output, sequence, split, level)))
        return failure();
    }
    return success();
  }
};

} // namespace
