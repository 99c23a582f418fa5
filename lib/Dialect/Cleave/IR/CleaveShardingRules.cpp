//===- CleaveShardingRules.cpp - Factor rules of cleave ops ---------------===//
//
// Each computing op gets ShardingRuleOpInterface through an external model
// built from one function, getRule, so the whole table is in one place. A
// factor that a result does not mention is summed over for that result
// (the row dimensions of a norm's scale gradient, a matmul's k): sharding
// it leaves that result partial. Rules describe the program before fusion.
//
//===----------------------------------------------------------------------===//

#include "cleave/Dialect/Cleave/IR/CleaveOps.h"

#include "llvm/ADT/TypeSwitch.h"

using namespace mlir;
using namespace mlir::cleave;

namespace {

using DimFactors = SmallVector<SmallVector<int64_t>>;

ArrayRef<int64_t> getShape(Value value) {
  return cast<RankedTensorType>(value.getType()).getShape();
}

/// One factor per dimension of `shape`; the last `tail` dimensions get
/// `tailKind`, the others `kind`.
DimFactors addFactors(ShardingRule &rule, ArrayRef<int64_t> shape,
                      FactorKind kind, int64_t tail = 0,
                      FactorKind tailKind = FactorKind::NeedsReplication) {
  DimFactors dims;
  for (auto [i, size] : llvm::enumerate(shape)) {
    bool inTail = static_cast<int64_t>(i) >=
                  static_cast<int64_t>(shape.size()) - tail;
    dims.push_back({rule.addFactor(size, inTail ? tailKind : kind)});
  }
  return dims;
}

/// The trailing `count` dimensions of `dims`.
DimFactors getTail(const DimFactors &dims, int64_t count) {
  return DimFactors(dims.end() - count, dims.end());
}

/// `rule` with each operand's and result's factors given by `mapValue`.
ShardingRule mapValues(Operation *op, ShardingRule rule,
                       llvm::function_ref<DimFactors(Value)> mapValue) {
  for (Value operand : op->getOperands())
    rule.operands.push_back(mapValue(operand));
  for (Value result : op->getResults())
    rule.results.push_back(mapValue(result));
  return rule;
}

/// Every operand and result shares `dims`, except vectors (norm scales and
/// biases), which take the last dimension.
ShardingRule shareAll(Operation *op, ShardingRule rule, const DimFactors &dims) {
  auto mapValue = [&](Value value) {
    int64_t rank = getShape(value).size();
    return rank == static_cast<int64_t>(dims.size()) ? dims
                                                     : getTail(dims, rank);
  };
  return mapValues(op, std::move(rule), mapValue);
}

/// Elementwise ops, fills and constants: every dimension is parallel.
ShardingRule getElementwiseRule(Operation *op) {
  ShardingRule rule;
  DimFactors dims =
      addFactors(rule, getShape(op->getResult(0)), FactorKind::Parallel);
  return shareAll(op, rule, dims);
}

/// Ops that read whole rows of their last `tail` dimensions.
ShardingRule getRowRule(Operation *op, Value shaped, int64_t tail) {
  ShardingRule rule;
  DimFactors dims =
      addFactors(rule, getShape(shaped), FactorKind::Parallel, tail);
  return shareAll(op, rule, dims);
}

ShardingRule getBroadcastRule(BroadcastOp op) {
  ShardingRule rule;
  DimFactors result = addFactors(rule, op.getType().getShape(),
                                 FactorKind::Parallel);
  DimFactors input;
  for (auto [i, dim] : llvm::enumerate(op.getDims()))
    input.push_back(op.getInput().getType().getDimSize(i) ==
                            op.getType().getDimSize(dim)
                        ? result[dim]
                        : SmallVector<int64_t>{});
  rule.operands.push_back(input);
  rule.results.push_back(result);
  return rule;
}

ShardingRule getMatmulRule(MatmulOp op) {
  ShardingRule rule;
  ArrayRef<int64_t> result = op.getType().getShape();
  int64_t batchRank = result.size() - 2;
  DimFactors batch;
  for (int64_t dim = 0; dim < batchRank; ++dim)
    batch.push_back({rule.addFactor(result[dim], FactorKind::Parallel)});
  MatmulOp::Dims dims = op.getDims();
  SmallVector<int64_t> m = {rule.addFactor(dims.m, FactorKind::Parallel)};
  SmallVector<int64_t> n = {rule.addFactor(dims.n, FactorKind::Parallel)};
  SmallVector<int64_t> k = {rule.addFactor(dims.k, FactorKind::Reduction)};
  auto withBatch = [&](Value value, SmallVector<int64_t> a,
                       SmallVector<int64_t> b) {
    DimFactors factors;
    if (static_cast<int64_t>(getShape(value).size()) > 2)
      factors = batch;
    factors.push_back(a);
    factors.push_back(b);
    return factors;
  };
  rule.operands.push_back(op.getTransposeLhs() ? withBatch(op.getLhs(), k, m)
                                               : withBatch(op.getLhs(), m, k));
  rule.operands.push_back(op.getTransposeRhs() ? withBatch(op.getRhs(), n, k)
                                               : withBatch(op.getRhs(), k, n));
  rule.results.push_back(withBatch(op.getResult(), m, n));
  return rule;
}

/// Sums and means over a split dimension leave partial sums; a maximum
/// combines the devices' maxima itself (a collective factor).
ShardingRule getReduceRule(Operation *op, ArrayRef<int64_t> reduced,
                           FactorKind reducedKind = FactorKind::Reduction) {
  ShardingRule rule;
  DimFactors input;
  DimFactors result;
  for (auto [dim, size] : llvm::enumerate(getShape(op->getOperand(0)))) {
    bool isReduced = llvm::is_contained(reduced, static_cast<int64_t>(dim));
    int64_t factor = rule.addFactor(
        size, isReduced ? reducedKind : FactorKind::Parallel);
    input.push_back({factor});
    if (!isReduced)
      result.push_back({factor});
  }
  rule.operands.push_back(input);
  rule.results.push_back(result);
  return rule;
}

ShardingRule getTransposeRule(TransposeOp op) {
  ShardingRule rule;
  DimFactors input = addFactors(rule, op.getInput().getType().getShape(),
                                FactorKind::Parallel);
  DimFactors result;
  for (int64_t dim : op.getPerm())
    result.push_back(input[dim]);
  rule.operands.push_back(input);
  rule.results.push_back(result);
  return rule;
}

/// Matches the two shapes' dimensions by running products: a dimension
/// that splits into several gets their factors ([B, S, H] -> [B, S, h, d]
/// maps H to the factors of h and d). Sizes that do not line up share a
/// factor that needs replication.
ShardingRule getReshapeRule(ReshapeOp op) {
  ShardingRule rule;
  ArrayRef<int64_t> in = op.getInput().getType().getShape();
  ArrayRef<int64_t> out = op.getType().getShape();
  DimFactors input(in.size()), result(out.size());
  size_t i = 0, j = 0;
  while (i < in.size() && j < out.size()) {
    if (in[i] == out[j]) {
      int64_t factor = rule.addFactor(in[i], FactorKind::Parallel);
      input[i++].push_back(factor);
      result[j++].push_back(factor);
      continue;
    }
    // Group dimensions until both sides have the same product.
    size_t i0 = i, j0 = j;
    int64_t left = in[i++], right = out[j++];
    while (left != right && i <= in.size() && j <= out.size()) {
      if (left < right && i < in.size())
        left *= in[i++];
      else if (right < left && j < out.size())
        right *= out[j++];
      else
        break;
    }
    if (i - i0 == 1) {
      // One input dimension splits into several output dimensions.
      for (size_t d = j0; d < j; ++d) {
        int64_t factor = rule.addFactor(out[d], FactorKind::Parallel);
        input[i0].push_back(factor);
        result[d].push_back(factor);
      }
    } else if (j - j0 == 1) {
      // Several input dimensions merge into one.
      for (size_t d = i0; d < i; ++d) {
        int64_t factor = rule.addFactor(in[d], FactorKind::Parallel);
        input[d].push_back(factor);
        result[j0].push_back(factor);
      }
    } else {
      int64_t factor = rule.addFactor(left, FactorKind::NeedsReplication);
      for (size_t d = i0; d < i; ++d)
        input[d].push_back(factor);
      for (size_t d = j0; d < j; ++d)
        result[d].push_back(factor);
    }
  }
  rule.operands.push_back(input);
  rule.results.push_back(result);
  return rule;
}

/// Slices, pads and concats keep dimensions of equal size parallel; a
/// dimension whose size changes must be whole on every device.
ShardingRule getBlockRule(Operation *op) {
  ShardingRule rule;
  ArrayRef<int64_t> result = getShape(op->getResult(0));
  DimFactors shared;
  SmallVector<bool> same(result.size(), true);
  for (Value operand : op->getOperands())
    for (auto [dim, size] : llvm::enumerate(getShape(operand)))
      same[dim] = same[dim] && size == result[dim];
  for (auto [dim, size] : llvm::enumerate(result))
    shared.push_back(same[dim] ? SmallVector<int64_t>{rule.addFactor(
                                     size, FactorKind::Parallel)}
                               : SmallVector<int64_t>{});
  auto mapValue = [&](Value value) {
    DimFactors dims;
    for (auto [dim, size] : llvm::enumerate(getShape(value)))
      dims.push_back(same[dim] ? shared[dim]
                               : SmallVector<int64_t>{rule.addFactor(
                                     size, FactorKind::NeedsReplication)});
    return dims;
  };
  return mapValues(op, std::move(rule), mapValue);
}

/// Attention and its gradient: batch (and head) dimensions are parallel;
/// keys and the head size are read whole, and so are the queries of causal
/// attention, whose mask depends on each query's global position. The
/// logsumexp has the queries' rows. With grouped-query attention the
/// query's heads are [key/value heads, group]: splitting the key/value
/// heads splits all three inputs (Megatron-LM's split when tp divides
/// them); splitting the group reads k and v whole, and leaves their
/// gradients partial sums.
ShardingRule getAttentionRule(Operation *op, Value query, Value key,
                              bool causal) {
  ShardingRule rule;
  ArrayRef<int64_t> q = getShape(query);
  int64_t group = getAttentionGroupSize(cast<RankedTensorType>(query.getType()),
                                        cast<RankedTensorType>(key.getType()));
  DimFactors batch = addFactors(rule, q.drop_back(2), FactorKind::Parallel);
  DimFactors keyBatch = batch;
  if (group > 1) {
    int64_t heads = batch.back().front();
    rule.factorSizes[heads] /= group;
    batch.back().push_back(rule.addFactor(group, FactorKind::Parallel));
  }
  SmallVector<int64_t> s = {rule.addFactor(
      q[q.size() - 2],
      causal ? FactorKind::NeedsReplication : FactorKind::Parallel)};
  SmallVector<int64_t> t = {rule.addFactor(getShape(key).drop_back().back(),
                                           FactorKind::NeedsReplication)};
  SmallVector<int64_t> d = {rule.addFactor(q.back(), FactorKind::NeedsReplication)};
  DimFactors queryLike = batch, keyLike = keyBatch, rows = batch;
  queryLike.append({s, d});
  keyLike.append({t, d});
  rows.push_back(s);
  // By position: q and k have the same type in self-attention.
  enum Kind { Query, Key, Rows };
  auto map = [&](ArrayRef<Kind> kinds, auto &into) {
    for (Kind kind : kinds)
      into.push_back(kind == Query ? queryLike : kind == Key ? keyLike : rows);
  };
  if (isa<AttentionOp>(op)) {
    map({Query, Key, Key}, rule.operands);
    map({Query, Rows}, rule.results);
  } else {
    map({Query, Key, Key, Query, Rows, Query}, rule.operands);
    map({Query, Key, Key}, rule.results);
  }
  return rule;
}

/// Embedding: the index dimensions and the width are parallel. The table's
/// rows are a reduction: with the vocabulary split, each device gathers the
/// rows it holds and zeros elsewhere, and the pieces sum to the result
/// (vocab-parallel embedding; the partition hook offsets the indices).
ShardingRule getEmbeddingRule(EmbeddingOp op) {
  ShardingRule rule;
  DimFactors indices = addFactors(rule, op.getIndices().getType().getShape(),
                                  FactorKind::Parallel);
  ArrayRef<int64_t> table = op.getTable().getType().getShape();
  SmallVector<int64_t> rows = {rule.addFactor(table[0], FactorKind::Reduction)};
  SmallVector<int64_t> width = {rule.addFactor(table[1], FactorKind::Parallel)};
  DimFactors result = indices;
  result.push_back(width);
  rule.operands.push_back({rows, width});
  rule.operands.push_back(indices);
  rule.results.push_back(result);
  return rule;
}

/// The embedding's gradient sums the updates of every index position; a
/// device holding part of the table adds only the updates of its rows.
ShardingRule getScatterAddRule(ScatterAddOp op) {
  ShardingRule rule;
  DimFactors positions = addFactors(rule, op.getIndices().getType().getShape(),
                                    FactorKind::Reduction);
  ArrayRef<int64_t> table = op.getType().getShape();
  SmallVector<int64_t> rows = {rule.addFactor(table[0], FactorKind::Parallel)};
  SmallVector<int64_t> width = {rule.addFactor(table[1], FactorKind::Parallel)};
  DimFactors updates = positions;
  updates.push_back(width);
  rule.operands.push_back(positions);
  rule.operands.push_back(updates);
  rule.results.push_back({rows, width});
  return rule;
}

/// Cross-entropy and its gradient: the positions are parallel. A split
/// vocabulary (vocab-parallel loss) makes the loss combine the devices'
/// maxima and sums itself, so its vocabulary is collective; the gradient
/// keeps the split.
ShardingRule getCrossEntropyRule(Operation *op, Value logits,
                                 FactorKind vocabKind) {
  ShardingRule rule;
  DimFactors dims = addFactors(rule, getShape(logits), FactorKind::Parallel,
                               /*tail=*/1, vocabKind);
  DimFactors positions(dims.begin(), dims.end() - 1);
  auto mapValue = [&](Value value) {
    return getShape(value).size() == dims.size() ? dims : positions;
  };
  return mapValues(op, std::move(rule), mapValue);
}

ShardingRule getRule(Operation *op) {
  return llvm::TypeSwitch<Operation *, ShardingRule>(op)
      .Case([](BroadcastOp op) { return getBroadcastRule(op); })
      .Case([](MatmulOp op) { return getMatmulRule(op); })
      .Case([](ReduceSumOp op) { return getReduceRule(op, op.getDims()); })
      .Case([](ReduceMeanOp op) { return getReduceRule(op, op.getDims()); })
      .Case([](ReduceMaxOp op) {
        return getReduceRule(op, op.getDims(), FactorKind::Collective);
      })
      .Case([](TransposeOp op) { return getTransposeRule(op); })
      .Case([](ReshapeOp op) { return getReshapeRule(op); })
      .Case<SliceOp, PadOp, ConcatOp>(
          [](Operation *op) { return getBlockRule(op); })
      .Case<SoftmaxOp, SoftmaxGradOp, LayerNormOp, RmsNormOp, LayerNormGradOp,
            RmsNormGradOp>(
          [](Operation *op) { return getRowRule(op, op->getOperand(0), 1); })
      .Case([](RotaryOp op) { return getRowRule(op, op.getInput(), 2); })
      .Case([](AttentionOp op) {
        return getAttentionRule(op, op.getQuery(), op.getKey(),
                                op.getCausal());
      })
      .Case([](AttentionGradOp op) {
        return getAttentionRule(op, op.getQuery(), op.getKey(),
                                op.getCausal());
      })
      .Case([](EmbeddingOp op) { return getEmbeddingRule(op); })
      .Case([](ScatterAddOp op) { return getScatterAddRule(op); })
      .Case([](CrossEntropyOp op) {
        return getCrossEntropyRule(op, op.getLogits(), FactorKind::Collective);
      })
      .Case([](CrossEntropyGradOp op) {
        return getCrossEntropyRule(op, op.getLogits(), FactorKind::Parallel);
      })
      .Default([](Operation *op) { return getElementwiseRule(op); });
}

template <typename OpTy>
struct ShardingRuleModel
    : public ShardingRuleOpInterface::ExternalModel<ShardingRuleModel<OpTy>,
                                                    OpTy> {
  ShardingRule getShardingRule(Operation *op) const { return getRule(op); }
  FailureOr<SmallVector<Value>> partition(Operation *op, OpBuilder &builder,
                                          const LocalOpContext &context,
                                          ValueRange operands) const {
    return partitionOp(op, builder, context, operands);
  }
};

template <typename... OpTys>
void attach(MLIRContext &context) {
  (OpTys::template attachInterface<ShardingRuleModel<OpTys>>(context), ...);
}

} // namespace

void mlir::cleave::attachShardingRuleModels(MLIRContext &context) {
  attach<AddOp, SubOp, MulOp, DivOp, MaxOp, MinOp, NegOp, ExpOp, LogOp, TanhOp,
         SqrtOp, RsqrtOp, GeluOp, ReluOp, SiluOp, CastOp, CompareOp, SelectOp,
         FillOp, ConstantOp, BroadcastOp, MatmulOp, ReduceSumOp,
         ReduceMeanOp, ReduceMaxOp, TransposeOp, ReshapeOp, SliceOp, PadOp,
         ConcatOp, SoftmaxOp, SoftmaxGradOp, LayerNormOp, RmsNormOp,
         LayerNormGradOp, RmsNormGradOp, RotaryOp, AttentionOp,
         AttentionGradOp, EmbeddingOp, ScatterAddOp, CrossEntropyOp,
         CrossEntropyGradOp>(context);
}
