//===- CleavePartition.cpp - Per-device forms of cleave ops ---------------===//
//
// ShardingRuleOpInterface::partition for every op with a rule: most ops
// become a copy of themselves on per-device types. The hooks below cover
// ops whose split form computes something else: a mean or maximum over a
// split dimension, an embedding or its gradient on part of the vocabulary,
// and cross-entropy on part of the vocabulary (Megatron's vocab-parallel
// loss).
//
//===----------------------------------------------------------------------===//

#include "cleave/Dialect/Cleave/IR/CleaveOps.h"

#include "mlir/IR/ImplicitLocOpBuilder.h"
#include "llvm/ADT/TypeSwitch.h"

#include <cmath>

using namespace mlir;
using namespace mlir::cleave;

namespace {

RankedTensorType getTensorType(Value value) {
  return cast<RankedTensorType>(value.getType());
}

/// The op with per-device operands and result types, attributes kept.
SmallVector<Value> cloneLocally(Operation *op, OpBuilder &builder,
                                const LocalOpContext &context,
                                ValueRange operands) {
  OperationState state(op->getLoc(), op->getName());
  state.addOperands(operands);
  state.addTypes(context.resultTypes);
  // The op's sharding annotation describes the global program only.
  for (NamedAttribute attr : op->getAttrs())
    if (attr.getName() != CleaveDialect::kShardingAttrName)
      state.addAttribute(attr.getName(), attr.getValue());
  return builder.create(state)->getResults();
}

/// A splat constant takes the per-device shape; any other is built whole
/// and each device keeps its block (a free local slice).
FailureOr<SmallVector<Value>> partitionConstant(ConstantOp op,
                                                OpBuilder &builder,
                                                const LocalOpContext &context) {
  auto localType = cast<RankedTensorType>(context.resultTypes[0]);
  if (auto splat = dyn_cast<SplatElementsAttr>(op.getValue()))
    return SmallVector<Value>{ConstantOp::create(
        builder, op.getLoc(), localType, splat.resizeSplat(localType))};
  Value value = ConstantOp::create(builder, op.getLoc(), op.getType(),
                                   op.getValue());
  for (auto [dim, factors] : llvm::enumerate(context.rule.results[0])) {
    SmallVector<StringRef> axes;
    for (int64_t factor : factors)
      llvm::append_range(axes, context.factorAxes[factor]);
    if (axes.empty())
      continue;
    auto type = getTensorType(value);
    SmallVector<int64_t> shape(type.getShape());
    shape[dim] = localType.getDimSize(dim);
    value = LocalSliceOp::create(
        builder, op.getLoc(), RankedTensorType::get(shape, type.getElementType()),
        value, context.mesh, builder.getStrArrayAttr(axes),
        builder.getI64IntegerAttr(dim));
  }
  return SmallVector<Value>{value};
}

/// A device's local mean is scaled by 1 / (devices sharing the reduced
/// dimensions), so the pieces sum to the global mean.
FailureOr<SmallVector<Value>> partitionMean(ReduceMeanOp op, OpBuilder &builder,
                                            const LocalOpContext &context,
                                            ValueRange operands) {
  int64_t group = 1;
  for (int64_t dim : op.getDims())
    for (int64_t factor : context.rule.operands[0][dim])
      group *= context.factorGroupSizes[factor];
  SmallVector<Value> results = cloneLocally(op, builder, context, operands);
  if (group == 1)
    return results;
  ImplicitLocOpBuilder b(op.getLoc(), builder);
  Type type = results[0].getType();
  Value scale = FillOp::create(b, type, b.getF64FloatAttr(1.0 / group));
  return SmallVector<Value>{MulOp::create(b, results[0], scale)};
}

/// A maximum over a split dimension: the local maximum, then the maximum
/// across the devices holding the pieces.
FailureOr<SmallVector<Value>> partitionMax(ReduceMaxOp op, OpBuilder &builder,
                                           const LocalOpContext &context,
                                           ValueRange operands) {
  SmallVector<StringRef> axes;
  for (int64_t dim : op.getDims())
    for (int64_t factor : context.rule.operands[0][dim])
      llvm::append_range(axes, context.factorAxes[factor]);
  SmallVector<Value> results = cloneLocally(op, builder, context, operands);
  if (axes.empty())
    return results;
  ImplicitLocOpBuilder b(op.getLoc(), builder);
  return SmallVector<Value>{AllReduceOp::create(
      b, results[0].getType(), results[0], context.mesh,
      b.getStrArrayAttr(axes), b.getAttr<ReductionKindAttr>(ReductionKind::max))};
}

/// The vocabulary a device holds, for a factor split on `axes`: its first
/// global row, and the rows it holds.
struct VocabularyBlock {
  Value first;
  int64_t rows;
};

VocabularyBlock getVocabularyBlock(ImplicitLocOpBuilder &b,
                                   const LocalOpContext &context,
                                   int64_t factor, Type indexElement) {
  int64_t rows = context.rule.factorSizes[factor] /
                 context.factorGroupSizes[factor];
  auto scalar = RankedTensorType::get({}, b.getI32Type());
  Value index = DeviceIndexOp::create(
      b, scalar, context.mesh, b.getStrArrayAttr(context.factorAxes[factor]));
  Value first = MulOp::create(
      b, index, FillOp::create(b, scalar, b.getF64FloatAttr(rows)));
  auto indexScalar = RankedTensorType::get({}, indexElement);
  if (indexElement != b.getI32Type())
    first = CastOp::create(b, indexScalar, first);
  return {first, rows};
}

/// Indices relative to a vocabulary block: `local` is safe to index the
/// block with (0 outside it) and `inside` says which indices fall in it.
struct LocalIndices {
  Value local;
  Value inside;
};

LocalIndices localizeIndices(ImplicitLocOpBuilder &b, Value indices,
                             const VocabularyBlock &block) {
  auto type = getTensorType(indices);
  auto boolType = RankedTensorType::get(type.getShape(), b.getI1Type());
  Value first = BroadcastOp::create(b, type, block.first, ArrayRef<int64_t>{});
  Value relative = SubOp::create(b, indices, first);
  Value zero = FillOp::create(b, type, b.getF64FloatAttr(0));
  Value end = FillOp::create(b, type, b.getF64FloatAttr(block.rows));
  Value aboveStart =
      CompareOp::create(b, boolType, ComparePredicate::ge, relative, zero);
  Value belowEnd =
      CompareOp::create(b, boolType, ComparePredicate::lt, relative, end);
  Value no = FillOp::create(b, boolType, b.getF64FloatAttr(0));
  Value inside = SelectOp::create(b, aboveStart, belowEnd, no);
  Value local = SelectOp::create(b, inside, relative, zero);
  return {local, inside};
}

/// `value` where `inside` (broadcast over its trailing width), else 0.
Value maskRows(ImplicitLocOpBuilder &b, Value value, Value inside) {
  auto type = getTensorType(value);
  auto insideType = getTensorType(inside);
  SmallVector<int64_t> dims =
      llvm::to_vector(llvm::seq<int64_t>(0, insideType.getRank()));
  Value mask = BroadcastOp::create(
      b, RankedTensorType::get(type.getShape(), b.getI1Type()), inside, dims);
  Value zero = FillOp::create(b, type, b.getF64FloatAttr(0));
  return SelectOp::create(b, mask, value, zero);
}

/// `indices` relative to the block of rows this device holds of a table
/// whose rows are factor `rowsFactor`.
LocalIndices localizeRows(ImplicitLocOpBuilder &b, const LocalOpContext &context,
                          int64_t rowsFactor, Value indices) {
  VocabularyBlock block = getVocabularyBlock(
      b, context, rowsFactor, getTensorType(indices).getElementType());
  return localizeIndices(b, indices, block);
}

/// Vocab-parallel embedding: each device gathers the rows it holds and
/// zeros for the others; the result is a partial sum over the split.
FailureOr<SmallVector<Value>> partitionEmbedding(EmbeddingOp op,
                                                 OpBuilder &builder,
                                                 const LocalOpContext &context,
                                                 ValueRange operands) {
  int64_t rowsFactor = context.rule.operands[0][0][0];
  if (context.factorAxes[rowsFactor].empty())
    return cloneLocally(op, builder, context, operands);
  ImplicitLocOpBuilder b(op.getLoc(), builder);
  LocalIndices local = localizeRows(b, context, rowsFactor, operands[1]);
  Value rows = EmbeddingOp::create(b, context.resultTypes[0], operands[0],
                                   local.local);
  return SmallVector<Value>{maskRows(b, rows, local.inside)};
}

/// The embedding's gradient on part of the table adds only the updates of
/// the rows the device holds.
FailureOr<SmallVector<Value>> partitionScatterAdd(ScatterAddOp op,
                                                  OpBuilder &builder,
                                                  const LocalOpContext &context,
                                                  ValueRange operands) {
  int64_t rowsFactor = context.rule.results[0][0][0];
  if (context.factorAxes[rowsFactor].empty())
    return cloneLocally(op, builder, context, operands);
  ImplicitLocOpBuilder b(op.getLoc(), builder);
  LocalIndices local = localizeRows(b, context, rowsFactor, operands[0]);
  Value kept = maskRows(b, operands[1], local.inside);
  return SmallVector<Value>{ScatterAddOp::create(b, context.resultTypes[0],
                                                 local.local, kept)};
}

/// The pieces of a loss over a split vocabulary, per position: the global
/// maximum logit and the global sum of exp(logit - max).
struct SoftmaxStatistics {
  Value max;
  Value sum;
};

Value broadcastRows(ImplicitLocOpBuilder &b, Value rows, RankedTensorType type) {
  SmallVector<int64_t> dims =
      llvm::to_vector(llvm::seq<int64_t>(0, type.getRank() - 1));
  return BroadcastOp::create(b, type, rows, dims);
}

/// The statistics of `classLogits` (the logits, padded classes masked),
/// cached by the logits and targets the loss and its gradient share.
SoftmaxStatistics getSoftmaxStatistics(ImplicitLocOpBuilder &b,
                                       const LocalOpContext &context,
                                       Value logits, Value classLogits,
                                       Value targets, ArrayAttr axes) {
  if (context.softmaxStatistics) {
    auto it = context.softmaxStatistics->find({logits, targets});
    if (it != context.softmaxStatistics->end())
      return {it->second.first, it->second.second};
  }
  auto type = getTensorType(logits);
  int64_t last = type.getRank() - 1;
  Value localMax = ReduceMaxOp::create(b, classLogits, ArrayRef<int64_t>{last});
  Value max = AllReduceOp::create(b, localMax.getType(), localMax, context.mesh, axes,
                                  b.getAttr<ReductionKindAttr>(ReductionKind::max));
  Value shifted = SubOp::create(b, classLogits, broadcastRows(b, max, type));
  Value localSum = ReduceSumOp::create(b, ExpOp::create(b, shifted),
                                       ArrayRef<int64_t>{last});
  Value sum = AllReduceOp::create(b, localSum.getType(), localSum, context.mesh, axes,
                                  b.getAttr<ReductionKindAttr>(ReductionKind::sum));
  if (context.softmaxStatistics)
    (*context.softmaxStatistics)[{logits, targets}] = {max, sum};
  return {max, sum};
}

/// The global vocabulary index of each of this device's logits, in the
/// targets' element type.
Value getGlobalColumns(ImplicitLocOpBuilder &b, const LocalOpContext &context,
                       int64_t vocabFactor, RankedTensorType logitsType,
                       Value targets) {
  Type indexElement = getTensorType(targets).getElementType();
  VocabularyBlock block =
      getVocabularyBlock(b, context, vocabFactor, indexElement);
  auto idsType = RankedTensorType::get(logitsType.getShape(), indexElement);
  Value ids = IotaOp::create(b, idsType, logitsType.getRank() - 1);
  return AddOp::create(
      b, ids,
      BroadcastOp::create(b, idsType, block.first, ArrayRef<int64_t>{}));
}

/// Where each row's target falls among this device's columns (`globalIds`).
Value getTargetMask(ImplicitLocOpBuilder &b, Value globalIds, Value targets) {
  auto idsType = getTensorType(globalIds);
  Value wanted = broadcastRows(b, targets, idsType);
  return CompareOp::create(
      b, RankedTensorType::get(idsType.getShape(), b.getI1Type()),
      ComparePredicate::eq, globalIds, wanted);
}

/// The logits with a padded vocabulary's masked classes (global index
/// `classes` and up, among `globalIds`) at -inf, so that they take no
/// probability; `logits` itself when all `vocab` columns are classes.
Value maskPaddedClasses(ImplicitLocOpBuilder &b, Value globalIds, Value logits,
                        std::optional<uint64_t> classes, int64_t vocab) {
  if (!classes || static_cast<int64_t>(*classes) == vocab)
    return logits;
  auto type = getTensorType(logits);
  Value limit = FillOp::create(
      b, globalIds.getType(), b.getF64FloatAttr(static_cast<double>(*classes)));
  Value isClass = CompareOp::create(
      b, RankedTensorType::get(type.getShape(), b.getI1Type()),
      ComparePredicate::lt, globalIds, limit);
  Value masked = FillOp::create(b, type, b.getF64FloatAttr(-INFINITY));
  return SelectOp::create(b, isClass, logits, masked);
}

/// Vocab-parallel cross-entropy: loss = log(sum) + max - target logit, with
/// the max, the sum of exponentials and the target logit each combined
/// across the vocabulary's devices (three all-reduces of one value per
/// position, as Megatron does).
FailureOr<SmallVector<Value>> partitionCrossEntropy(
    CrossEntropyOp op, OpBuilder &builder, const LocalOpContext &context,
    ValueRange operands) {
  int64_t vocabFactor = context.rule.operands[0].back()[0];
  if (context.factorAxes[vocabFactor].empty())
    return cloneLocally(op, builder, context, operands);
  ImplicitLocOpBuilder b(op.getLoc(), builder);
  Value logits = operands[0], targets = operands[1];
  auto type = getTensorType(logits);
  ArrayAttr axes = b.getStrArrayAttr(context.factorAxes[vocabFactor]);
  Value globalIds = getGlobalColumns(b, context, vocabFactor, type, targets);
  Value classLogits = maskPaddedClasses(b, globalIds, logits, op.getClasses(),
                                        context.rule.factorSizes[vocabFactor]);
  SoftmaxStatistics stats =
      getSoftmaxStatistics(b, context, logits, classLogits, targets, axes);
  Value mask = getTargetMask(b, globalIds, targets);
  Value zero = FillOp::create(b, type, b.getF64FloatAttr(0));
  Value picked = ReduceSumOp::create(b, SelectOp::create(b, mask, logits, zero),
                                     ArrayRef<int64_t>{type.getRank() - 1});
  Value target = AllReduceOp::create(b, picked.getType(), picked, context.mesh, axes,
                                     b.getAttr<ReductionKindAttr>(ReductionKind::sum));
  Value loss = SubOp::create(
      b, AddOp::create(b, LogOp::create(b, stats.sum), stats.max), target);
  return SmallVector<Value>{loss};
}

/// Its gradient: (softmax - one-hot(target)) * upstream, on this device's
/// block of the vocabulary, reusing the forward's statistics when the same
/// logits were partitioned already.
FailureOr<SmallVector<Value>> partitionCrossEntropyGrad(
    CrossEntropyGradOp op, OpBuilder &builder, const LocalOpContext &context,
    ValueRange operands) {
  int64_t vocabFactor = context.rule.operands[0].back()[0];
  if (context.factorAxes[vocabFactor].empty())
    return cloneLocally(op, builder, context, operands);
  ImplicitLocOpBuilder b(op.getLoc(), builder);
  Value logits = operands[0], targets = operands[1], upstream = operands[2];
  auto type = getTensorType(logits);
  ArrayAttr axes = b.getStrArrayAttr(context.factorAxes[vocabFactor]);
  // Masked classes: exp(-inf - max) = 0, so no probability and no gradient.
  Value globalIds = getGlobalColumns(b, context, vocabFactor, type, targets);
  Value classLogits = maskPaddedClasses(b, globalIds, logits, op.getClasses(),
                                        context.rule.factorSizes[vocabFactor]);
  SoftmaxStatistics stats =
      getSoftmaxStatistics(b, context, logits, classLogits, targets, axes);
  Value shifted =
      SubOp::create(b, classLogits, broadcastRows(b, stats.max, type));
  Value probabilities = DivOp::create(b, ExpOp::create(b, shifted),
                                      broadcastRows(b, stats.sum, type));
  Value mask = getTargetMask(b, globalIds, targets);
  Value oneHot = SelectOp::create(b, mask,
                                  FillOp::create(b, type, b.getF64FloatAttr(1)),
                                  FillOp::create(b, type, b.getF64FloatAttr(0)));
  Value difference = SubOp::create(b, probabilities, oneHot);
  return SmallVector<Value>{
      MulOp::create(b, difference, broadcastRows(b, upstream, type))};
}

} // namespace

FailureOr<SmallVector<Value>>
mlir::cleave::partitionOp(Operation *op, OpBuilder &builder,
                          const LocalOpContext &context, ValueRange operands) {
  return llvm::TypeSwitch<Operation *, FailureOr<SmallVector<Value>>>(op)
      .Case([&](ConstantOp op) {
        return partitionConstant(op, builder, context);
      })
      .Case([&](ReduceMeanOp op) {
        return partitionMean(op, builder, context, operands);
      })
      .Case([&](ReduceMaxOp op) {
        return partitionMax(op, builder, context, operands);
      })
      .Case([&](EmbeddingOp op) {
        return partitionEmbedding(op, builder, context, operands);
      })
      .Case([&](ScatterAddOp op) {
        return partitionScatterAdd(op, builder, context, operands);
      })
      .Case([&](CrossEntropyOp op) {
        return partitionCrossEntropy(op, builder, context, operands);
      })
      .Case([&](CrossEntropyGradOp op) {
        return partitionCrossEntropyGrad(op, builder, context, operands);
      })
      .Default([&](Operation *op) -> FailureOr<SmallVector<Value>> {
        return cloneLocally(op, builder, context, operands);
      });
}
