//===- Partition.cpp - Rewrite a sharded function per device --------------===//
//
// Walks the annotated function once, building each op's per-device form in
// front of it, and tracks for every original value its per-device value and
// the sharding that value actually has (which may still be a pending sum
// the annotation does not show: sums stay pending through linear ops until
// a consumer needs them complete). Collectives are built where a consumer
// needs another sharding than the value has; the originals are erased at
// the end.
//
//===----------------------------------------------------------------------===//

#include "cleave/Dialect/Cleave/IR/CleaveOps.h"
#include "cleave/Dialect/Cleave/Transforms/Passes.h"

#include "FunctionLookup.h"
#include "cleave/Analysis/ShardingSupport.h"

#include "mlir/IR/ImplicitLocOpBuilder.h"

namespace mlir::cleave {
#define GEN_PASS_DEF_CLEAVEPARTITION
#include "cleave/Dialect/Cleave/Transforms/Passes.h.inc"
} // namespace mlir::cleave

using namespace mlir;
using namespace mlir::cleave;
using namespace mlir::cleave::sharding;

namespace {

struct LocalValue {
  Value value;
  TensorSharding sharding;
};

RankedTensorType scaleDim(RankedTensorType type, int64_t dim,
                          int64_t numerator, int64_t denominator) {
  SmallVector<int64_t> shape(type.getShape());
  shape[dim] = shape[dim] * numerator / denominator;
  return RankedTensorType::get(shape, type.getElementType());
}

/// The layer an op's replacement belongs to: its own, or for an untagged
/// constraint, its first tagged user's (by `position`, the original ops'
/// order: the block's own order is stale while ops are inserted, and
/// recomputing it for each query made the pass quadratic).
Attribute getLayer(Operation &op,
                   const DenseMap<Operation *, int64_t> &position) {
  StringRef layerName = CleaveDialect::kLayerAttrName;
  if (Attribute layer = op.getAttr(layerName))
    return layer;
  if (!isa<ShardOp>(op))
    return {};
  Operation *first = nullptr;
  for (Operation *user : op.getUsers())
    if (user->hasAttr(layerName) && position.count(user) &&
        (!first || position.lookup(user) < position.lookup(first)))
      first = user;
  return first ? first->getAttr(layerName) : Attribute();
}

/// One collective of a resharding.
struct ReshardStep {
  enum Kind { AllReduce, ReduceScatter, AllGather, AllToAll, LocalSlice };
  Kind kind;
  AxisList axes;
  /// The dimension cut, gathered or (all-to-all) split.
  int64_t dim = 0;
  /// The dimension an all-to-all concatenates.
  int64_t concatDim = 0;
};

/// The collectives that take a value from `current` to `target`. Pending
/// sums first: a reduce-scatter for an axis the target splits next on some
/// dimension, one all-reduce for the rest. Then the dimensions: free local
/// slices first (they shrink what later collectives move), all-to-alls for
/// an axis that changes dimension, all-gathers for axes that must go.
SmallVector<ReshardStep> planReshard(TensorSharding current,
                                     const TensorSharding &target) {
  SmallVector<ReshardStep> steps;
  size_t rank = target.dims.size();
  auto nextAxisIs = [&](size_t d, StringRef axis) {
    const AxisList &have = current.dims[d], &want = target.dims[d];
    return isPrefix(have, want) && want.size() > have.size() &&
           want[have.size()] == axis;
  };

  AxisList reduce;
  for (StringRef axis : AxisList(current.partial)) {
    if (llvm::is_contained(target.partial, axis))
      continue;
    llvm::erase(current.partial, axis);
    auto dims = llvm::seq<size_t>(0, rank);
    auto dim = llvm::find_if(dims, [&](size_t d) { return nextAxisIs(d, axis); });
    if (dim == dims.end()) {
      reduce.push_back(axis);
      continue;
    }
    steps.push_back({ReshardStep::ReduceScatter, {axis}, int64_t(*dim)});
    current.dims[*dim].push_back(axis);
  }
  if (!reduce.empty())
    steps.push_back({ReshardStep::AllReduce, reduce});

  while (current.dims != target.dims) {
    bool progressed = false;
    for (size_t d = 0; d < rank; ++d) {
      const AxisList &have = current.dims[d], &want = target.dims[d];
      if (!isPrefix(have, want) || have.size() == want.size())
        continue;
      AxisList extra(want.begin() + have.size(), want.end());
      if (llvm::any_of(extra, [&](StringRef a) { return current.usesAxis(a); }))
        continue;
      steps.push_back({ReshardStep::LocalSlice, extra, int64_t(d)});
      current.dims[d] = want;
      progressed = true;
    }
    if (progressed)
      continue;
    for (size_t from = 0; from < rank && !progressed; ++from) {
      AxisList &have = current.dims[from];
      if (have.empty() || isPrefix(have, target.dims[from]) ||
          !isPrefix(ArrayRef<StringRef>(have).drop_back(), target.dims[from]))
        continue;
      StringRef axis = have.back();
      for (size_t to = 0; to < rank; ++to) {
        if (to == from || !nextAxisIs(to, axis))
          continue;
        steps.push_back(
            {ReshardStep::AllToAll, {axis}, int64_t(to), int64_t(from)});
        have.pop_back();
        current.dims[to].push_back(axis);
        progressed = true;
        break;
      }
    }
    if (progressed)
      continue;
    for (size_t d = 0; d < rank && !progressed; ++d) {
      AxisList &have = current.dims[d];
      const AxisList &want = target.dims[d];
      if (isPrefix(have, want))
        continue;
      size_t common = 0;
      while (common < want.size() && have[common] == want[common])
        ++common;
      steps.push_back({ReshardStep::AllGather,
                       AxisList(have.begin() + common, have.end()), int64_t(d)});
      have.resize(common);
      progressed = true;
    }
    if (progressed)
      continue;
    // Every dimension is a prefix of its target, but an axis to add still
    // splits another dimension at a deeper position: gather it there.
    for (size_t d = 0; d < rank && !progressed; ++d) {
      const AxisList &have = current.dims[d], &want = target.dims[d];
      for (StringRef axis : ArrayRef<StringRef>(want).drop_front(have.size()))
        for (size_t e = 0; e < rank && !progressed; ++e) {
          auto at = llvm::find(current.dims[e], axis);
          if (e == d || at == current.dims[e].end())
            continue;
          steps.push_back({ReshardStep::AllGather,
                           AxisList(at, current.dims[e].end()), int64_t(e)});
          current.dims[e].erase(at, current.dims[e].end());
          progressed = true;
        }
    }
    // Only a target that keeps a pending sum on an axis it also splits
    // could stop here; the caller rejects such targets.
    if (!progressed)
      break;
  }
  return steps;
}

/// The type after `step`, from the type before it.
RankedTensorType applyStep(RankedTensorType type, const ReshardStep &step,
                           const MeshAxes &mesh) {
  int64_t group = mesh.getSize(step.axes);
  switch (step.kind) {
  case ReshardStep::AllReduce:
    return type;
  case ReshardStep::ReduceScatter:
  case ReshardStep::LocalSlice:
    return scaleDim(type, step.dim, 1, group);
  case ReshardStep::AllGather:
    return scaleDim(type, step.dim, group, 1);
  case ReshardStep::AllToAll:
    return scaleDim(scaleDim(type, step.dim, 1, group), step.concatDim, group, 1);
  }
  llvm_unreachable("unknown resharding step");
}

/// Bytes each device sends for `steps`, as the collectives' cost interface
/// counts them.
double getReshardBytes(RankedTensorType type, ArrayRef<ReshardStep> steps,
                       const MeshAxes &mesh) {
  double bytes = 0;
  for (const ReshardStep &step : steps) {
    RankedTensorType next = applyStep(type, step, mesh);
    int64_t group = mesh.getSize(step.axes);
    double share = static_cast<double>(group - 1) / group;
    switch (step.kind) {
    case ReshardStep::AllReduce:
      bytes += 2 * share * getTotalBytes(type);
      break;
    case ReshardStep::ReduceScatter:
    case ReshardStep::AllToAll:
      bytes += share * getTotalBytes(type);
      break;
    case ReshardStep::AllGather:
      bytes += share * getTotalBytes(next);
      break;
    case ReshardStep::LocalSlice:
      break;
    }
    type = next;
  }
  return bytes;
}

/// Whether `value` is added to (or subtracted from) something: its
/// pending sum is best completed together with the other.
bool isAccumulated(Value value) {
  return llvm::any_of(value.getUsers(), llvm::IsaPred<AddOp, SubOp>);
}

/// How an op is split: its factors' axes, what it needs its operands to
/// be, and what its results come out as.
struct OpPlan {
  FactorAxes factorAxes;
  SmallVector<TensorSharding> operandTargets;
  SmallVector<TensorSharding> resultShardings;
  /// A complete scalar operand scaled by 1 / devices to join a pending
  /// sum, or -1.
  int scaledOperand = -1;
};

class Partitioner {
public:
  Partitioner(func::FuncOp function, MeshOp mesh)
      : function(function), mesh(mesh) {}

  LogicalResult run();

private:
  FailureOr<TensorSharding> getAnnotation(Value value);
  bool isCompletedWithAnother(Value result, const TensorSharding &sharding);
  double getSummedTerms(Value result);
  LogicalResult partitionOp(Operation *op);
  OpPlan planOp(Operation *op, const ShardingRule &rule,
                       FactorAxes factorAxes,
                       ArrayRef<const LocalValue *> operandStates);
  FailureOr<Value> reshard(ImplicitLocOpBuilder &b, Value original,
                           const TensorSharding &target);
  Value buildReshard(ImplicitLocOpBuilder &b, Value value,
                     ArrayRef<ReshardStep> steps, bool repeated = false);
  ArrayAttr getAxesAttr(ArrayRef<StringRef> axes) {
    return Builder(function.getContext()).getStrArrayAttr(axes);
  }

  func::FuncOp function;
  MeshAxes mesh;
  DenseMap<Value, LocalValue> locals;
  DenseMap<Operation *, ShardingRule> rules;
  /// What a value was resharded to, per target and per half of the step
  /// (see getReshardKey).
  using ReshardKey = std::tuple<Value, Attribute, unsigned>;
  ReshardKey getReshardKey(Value original, const TensorSharding &target);
  bool isParameter(Value value);
  double getReaderCount(Value value);
  DenseMap<ReshardKey, Value> resharded;
  /// The ops the loss depends on, in a step that returns one.
  DenseSet<Operation *> forwardOps;
  /// The original ops' order, the terminator included.
  DenseMap<Operation *, int64_t> originalPosition;
  /// Per value read, the original positions of its distinct readers,
  /// sorted (for a parameter, apart by half of the step): counting those
  /// still to come is a binary search, not a walk over every user at each
  /// reader, which was quadratic in a value's readers.
  struct ReaderPositions {
    SmallVector<int64_t> forward, backward;
  };
  DenseMap<Value, ReaderPositions> readerPositions;
  /// The op being partitioned, and whether it is past the forward.
  Operation *current = nullptr;
  bool inBackward = false;
  DenseMap<std::pair<Value, Value>, std::pair<Value, Value>> softmaxStatistics;
};

FailureOr<TensorSharding> Partitioner::getAnnotation(Value value) {
  ShardingAttr attr;
  if (auto arg = dyn_cast<BlockArgument>(value)) {
    // Arguments are rewritten first; their sharding is their local state.
    if (auto it = locals.find(arg); it != locals.end())
      return it->second.sharding;
    attr = function.getArgAttrOfType<ShardingAttr>(
        arg.getArgNumber(), CleaveDialect::kShardingAttrName);
  } else {
    Operation *op = value.getDefiningOp();
    auto all = op->getAttrOfType<ArrayAttr>(CleaveDialect::kShardingAttrName);
    if (all)
      attr = dyn_cast<ShardingAttr>(
          all[cast<OpResult>(value).getResultNumber()]);
  }
  if (!attr)
    return emitError(value.getLoc(),
                     "value has no sharding; run cleave-propagate-sharding "
                     "first");
  return TensorSharding::get(attr);
}

/// Whether `result`, coming out as `sharding`, is added to (or subtracted
/// from) a value pending on the same axes: the two sums then complete in
/// one collective, after the add. A value not partitioned yet is judged by
/// its annotation, which shows the sums propagation expects.
bool Partitioner::isCompletedWithAnother(Value result,
                                         const TensorSharding &sharding) {
  if (sharding.partial.empty())
    return false;
  for (OpOperand &use : result.getUses()) {
    if (!isa<AddOp, SubOp>(use.getOwner()))
      continue;
    Value other = use.getOwner()->getOperand(1 - use.getOperandNumber());
    if (other == result)
      return true;
    if (auto it = locals.find(other); it != locals.end()) {
      if (it->second.sharding.partial == sharding.partial)
        return true;
      continue;
    }
    FailureOr<TensorSharding> annotation = getAnnotation(other);
    if (succeeded(annotation) && annotation->partial == sharding.partial)
      return true;
  }
  return false;
}

/// A parameter gathered for the forward is gathered again for the
/// backward, as ZeRO-3 does, so that no device keeps every gathered weight
/// alive from one to the other; other values are resharded once.
Partitioner::ReshardKey
Partitioner::getReshardKey(Value original, const TensorSharding &target) {
  return {original, target.toAttr(function.getContext(), mesh.getName()),
          static_cast<unsigned>(isParameter(original) && inBackward)};
}

/// A parameter argument, a constraint on one, or its cast to the compute
/// precision (what mixed precision's forward and backward read).
bool Partitioner::isParameter(Value value) {
  if (auto cast = value.getDefiningOp<CastOp>())
    value = cast.getInput();
  if (auto shard = value.getDefiningOp<ShardOp>())
    value = shard.getInput();
  auto arg = dyn_cast<BlockArgument>(value);
  return arg &&
         function.getArgAttr(arg.getArgNumber(), CleaveDialect::kParamAttrName);
}

/// The ops not partitioned yet that read `value` (for a parameter, those
/// of the current half of the step): one reshard serves them all, so each
/// plan counts its share of the bytes, and the first reader does not
/// avoid a collective the others then make one by one.
double Partitioner::getReaderCount(Value value) {
  bool halves = isParameter(value) && !forwardOps.empty();
  auto [entry, inserted] = readerPositions.try_emplace(value);
  ReaderPositions &readers = entry->second;
  if (inserted) {
    // The ops created while partitioning are not readers to come: they
    // stand before the current op, outside `originalPosition`.
    for (Operation *user : value.getUsers())
      if (auto at = originalPosition.find(user); at != originalPosition.end())
        (halves && !forwardOps.contains(user) ? readers.backward
                                              : readers.forward)
            .push_back(at->second);
    for (SmallVector<int64_t> *positions :
         {&readers.forward, &readers.backward}) {
      llvm::sort(*positions);
      positions->erase(llvm::unique(*positions), positions->end());
    }
  }
  const SmallVector<int64_t> &positions =
      halves && inBackward ? readers.backward : readers.forward;
  int64_t toCome =
      positions.end() -
      llvm::lower_bound(positions, originalPosition.lookup(current));
  return static_cast<double>(std::max<int64_t>(toCome, 1));
}

/// How many terms that could be pending sums (results of ops that reduce
/// over a factor) the chain of adds and subtracts from `result` sums,
/// `result` included, up to the first term that could not be: a pending
/// sum completed after them is completed once for all, so each shares its
/// cost. The chain is followed a few steps.
double Partitioner::getSummedTerms(Value result) {
  constexpr int kMaxSteps = 16;
  int64_t terms = 1;
  Value sum = result;
  for (int step = 0; step < kMaxSteps; ++step) {
    auto user = llvm::find_if(sum.getUsers(), llvm::IsaPred<AddOp, SubOp>);
    if (user == sum.getUsers().end())
      break;
    Operation *op = *user;
    Value other = op->getOperand(op->getOperand(0) == sum ? 1 : 0);
    Operation *producer = other.getDefiningOp();
    auto rule = producer ? rules.find(producer) : rules.end();
    if (rule == rules.end() ||
        !llvm::is_contained(rule->second.factorKinds, FactorKind::Reduction))
      break;
    ++terms;
    sum = op->getResult(0);
  }
  return static_cast<double>(terms);
}

Value Partitioner::buildReshard(ImplicitLocOpBuilder &b, Value value,
                                ArrayRef<ReshardStep> steps, bool repeated) {
  FlatSymbolRefAttr meshName = mesh.getName();
  // Collectives belong to the layer of the value they move: pipeline
  // stages follow layer tags.
  Operation *producer = value.getDefiningOp();
  Attribute layer =
      producer ? producer->getAttr(CleaveDialect::kLayerAttrName) : Attribute();
  for (const ReshardStep &step : steps) {
    auto type = applyStep(cast<RankedTensorType>(value.getType()), step, mesh);
    ArrayAttr axes = getAxesAttr(step.axes);
    IntegerAttr dim = b.getI64IntegerAttr(step.dim);
    auto sum = b.getAttr<ReductionKindAttr>(ReductionKind::sum);
    switch (step.kind) {
    case ReshardStep::AllReduce:
      value = AllReduceOp::create(b, type, value, meshName, axes, sum);
      break;
    case ReshardStep::ReduceScatter:
      value = ReduceScatterOp::create(b, type, value, meshName, axes, sum, dim);
      break;
    case ReshardStep::AllGather:
      value = AllGatherOp::create(b, type, value, meshName, axes, dim);
      break;
    case ReshardStep::AllToAll:
      value = AllToAllOp::create(b, type, value, meshName, axes, dim,
                                 b.getI64IntegerAttr(step.concatDim));
      break;
    case ReshardStep::LocalSlice:
      value = LocalSliceOp::create(b, type, value, meshName, axes, dim);
      break;
    }
    if (layer)
      value.getDefiningOp()->setAttr(CleaveDialect::kLayerAttrName, layer);
    // A repeat of the forward's gather: CSE must not merge it back.
    if (repeated)
      value.getDefiningOp()->setAttr(CleaveDialect::kRecomputeAttrName,
                                     b.getUnitAttr());
  }
  return value;
}

FailureOr<Value> Partitioner::reshard(ImplicitLocOpBuilder &b, Value original,
                                      const TensorSharding &target) {
  const LocalValue &local = locals.at(original);
  if (local.sharding == target)
    return local.value;
  ReshardKey key = getReshardKey(original, target);
  if (Value cached = resharded.lookup(key))
    return cached;
  if (llvm::any_of(target.partial, [&](StringRef axis) {
        return !llvm::is_contained(local.sharding.partial, axis) ||
               llvm::any_of(target.dims, [&](const AxisList &axes) {
                 return llvm::is_contained(axes, axis);
               });
      }))
    return emitError(original.getLoc(), "cannot reshard a value from ")
           << local.sharding.toAttr(function.getContext(), mesh.getName())
           << " to " << target.toAttr(function.getContext(), mesh.getName());
  Value value = buildReshard(
      b, local.value, planReshard(local.sharding, target), std::get<2>(key));
  resharded[key] = value;
  return value;
}

/// The pending-sum axes an op carries through to its result instead of
/// completing its operands first: it must be linear in the partial
/// operands, and the axes must not split any of its factors.
AxisList getCarriedPartial(Operation *op, ArrayRef<const LocalValue *> operands,
                           const FactorAxes &factorAxes) {
  auto partialOf = [&](unsigned i) -> const AxisList & {
    return operands[i]->sharding.partial;
  };
  AxisList carried;
  if (isa<AddOp, SubOp>(op)) {
    if (!partialOf(0).empty() && partialOf(0) == partialOf(1))
      carried = partialOf(0);
  } else if (isa<NegOp, ReshapeOp, TransposeOp, BroadcastOp, ReduceSumOp>(op)) {
    carried = partialOf(0);
  } else if (isa<MulOp, MatmulOp>(op)) {
    if (partialOf(0).empty() != partialOf(1).empty())
      carried = partialOf(0).empty() ? partialOf(1) : partialOf(0);
  } else if (isa<DivOp>(op)) {
    if (partialOf(1).empty())
      carried = partialOf(0);
  }
  for (const AxisList &axes : factorAxes)
    for (StringRef axis : axes)
      if (llvm::is_contained(carried, axis))
        return {};
  return carried;
}

OpPlan Partitioner::planOp(Operation *op, const ShardingRule &rule,
                           FactorAxes factorAxes,
                           ArrayRef<const LocalValue *> operandStates) {
  OpPlan plan;
  AxisList carried = getCarriedPartial(op, operandStates, factorAxes);
  // A complete float scalar added to (or subtracted from) a pending one
  // that keeps accumulating joins it, scaled by 1 / n: a gradient norm's
  // squares then take one all-reduce, not one each.
  auto resultType = cast<RankedTensorType>(op->getResult(0).getType());
  if (carried.empty() && isa<AddOp, SubOp>(op) && resultType.getRank() == 0 &&
      isa<FloatType>(resultType.getElementType()) &&
      isAccumulated(op->getResult(0))) {
    const AxisList &lhs = operandStates[0]->sharding.partial;
    const AxisList &rhs = operandStates[1]->sharding.partial;
    if (lhs.empty() != rhs.empty()) {
      carried = lhs.empty() ? rhs : lhs;
      plan.scaledOperand = lhs.empty() ? 0 : 1;
    }
  }
  for (auto [index, operand] : llvm::enumerate(op->getOperands())) {
    TensorSharding target = projectOperand(rule, factorAxes, index);
    // A sum already completed for another consumer is not completed again.
    if (resharded.count(getReshardKey(operand, target)))
      carried.clear();
    plan.operandTargets.push_back(std::move(target));
  }
  if (carried.empty())
    plan.scaledOperand = -1;
  for (auto [target, state] : llvm::zip(plan.operandTargets, operandStates))
    if (!carried.empty() && state->sharding.partial == carried)
      target.partial = carried;
  for (unsigned index = 0; index < op->getNumResults(); ++index) {
    TensorSharding sharding = projectResult(rule, factorAxes, index, mesh);
    llvm::append_range(sharding.partial, carried);
    mesh.sort(sharding.partial);
    plan.resultShardings.push_back(std::move(sharding));
  }
  plan.factorAxes = std::move(factorAxes);
  return plan;
}

LogicalResult Partitioner::partitionOp(Operation *op) {
  ImplicitLocOpBuilder b(op->getLoc(), op);
  if (auto shard = dyn_cast<ShardOp>(op)) {
    // The constraint as propagation completed it.
    FailureOr<TensorSharding> target = getAnnotation(shard.getResult());
    if (failed(target))
      return failure();
    target->partial.clear();
    FailureOr<Value> value = reshard(b, shard.getInput(), *target);
    if (failed(value))
      return failure();
    locals[shard.getResult()] = LocalValue{*value, *target};
    return success();
  }

  auto ruleOp = cast<ShardingRuleOpInterface>(op);
  const ShardingRule &rule = rules.at(op);
  SmallVector<TensorSharding> annotations;
  for (Value value : llvm::concat<Value>(op->getOperands(), op->getResults())) {
    FailureOr<TensorSharding> annotation = getAnnotation(value);
    if (failed(annotation))
      return failure();
    annotations.push_back(*annotation);
  }
  SmallVector<const TensorSharding *> known = llvm::map_to_vector(
      annotations, [](const TensorSharding &s) { return &s; });
  SmallVector<const LocalValue *> operandStates;
  for (Value operand : op->getOperands())
    operandStates.push_back(&locals.at(operand));

  // Factor splits read from the operands first or from the results first;
  // the plan that moves fewer bytes wins (the first on a tie).
  unsigned numOperands = op->getNumOperands();
  SmallVector<unsigned> operandsFirst =
      llvm::to_vector(llvm::seq<unsigned>(0, known.size()));
  SmallVector<unsigned> resultsFirst =
      llvm::to_vector(llvm::seq<unsigned>(numOperands, known.size()));
  llvm::append_range(resultsFirst, llvm::seq<unsigned>(0, numOperands));
  // A third candidate keeps operands' pending sums pending: the factors
  // are read without their axes, so a linear op can carry them.
  AxisList pending;
  for (const LocalValue *state : operandStates)
    for (StringRef axis : state->sharding.partial)
      if (!llvm::is_contained(pending, axis))
        pending.push_back(axis);
  SmallVector<TensorSharding> withoutPending(annotations);
  for (TensorSharding &sharding : withoutPending)
    for (AxisList &axes : sharding.dims)
      llvm::erase_if(axes, [&](StringRef axis) {
        return llvm::is_contained(pending, axis);
      });
  SmallVector<const TensorSharding *> knownWithoutPending = llvm::map_to_vector(
      withoutPending, [](const TensorSharding &s) { return &s; });
  SmallVector<FactorAxes> candidates = {
      deriveFactorAxes(rule, known, mesh, nullptr, operandsFirst),
      deriveFactorAxes(rule, known, mesh, nullptr, resultsFirst)};
  if (!pending.empty())
    candidates.push_back(deriveFactorAxes(rule, knownWithoutPending, mesh));

  std::optional<OpPlan> best;
  double bestBytes = 0;
  for (FactorAxes &candidate : candidates) {
    OpPlan plan = planOp(op, rule, std::move(candidate), operandStates);
    double bytes = 0;
    for (auto [operand, state, target] :
         llvm::zip(op->getOperands(), operandStates, plan.operandTargets))
      if (!resharded.count(getReshardKey(operand, target)))
        bytes += getReshardBytes(cast<RankedTensorType>(state->value.getType()),
                                 planReshard(state->sharding, target), mesh) /
                 getReaderCount(operand);
    for (auto [result, sharding, annotation] :
         llvm::zip(op->getResults(), plan.resultShardings,
                   ArrayRef(annotations).drop_front(numOperands))) {
      // A sum accumulated into another pending sum is completed with it,
      // later; anything else a consumer will want resharded costs now.
      if (isCompletedWithAnother(result, sharding))
        continue;
      const TensorSharding &wanted = annotation;
      if (!llvm::all_of(annotation.partial, [&](StringRef axis) {
            return llvm::is_contained(sharding.partial, axis);
          }))
        continue;
      bytes +=
          getReshardBytes(getLocalType(cast<RankedTensorType>(result.getType()),
                                       sharding, mesh),
                          planReshard(sharding, wanted), mesh) /
          (sharding.partial.empty() ? 1.0 : getSummedTerms(result));
    }
    if (!best || bytes < bestBytes) {
      best = std::move(plan);
      bestBytes = bytes;
    }
  }
  const FactorAxes &factorAxes = best->factorAxes;

  SmallVector<Value> operands;
  for (auto [operand, target] :
       llvm::zip(op->getOperands(), best->operandTargets)) {
    FailureOr<Value> local = reshard(b, operand, target);
    if (failed(local))
      return failure();
    operands.push_back(*local);
  }
  if (best->scaledOperand >= 0) {
    Value &scaled = operands[best->scaledOperand];
    int64_t devices = mesh.getSize(best->resultShardings[0].partial);
    scaled = MulOp::create(
        b, scaled,
        FillOp::create(b, scaled.getType(), b.getF64FloatAttr(1.0 / devices)));
  }

  LocalOpContext context;
  context.mesh = mesh.getName();
  context.rule = rule;
  for (const AxisList &axes : factorAxes) {
    context.factorAxes.emplace_back(axes.begin(), axes.end());
    context.factorGroupSizes.push_back(mesh.getSize(axes));
  }
  const SmallVector<TensorSharding> &resultShardings = best->resultShardings;
  for (auto [result, sharding] : llvm::zip(op->getResults(), resultShardings))
    context.resultTypes.push_back(getLocalType(
        cast<RankedTensorType>(result.getType()), sharding, mesh));
  context.softmaxStatistics = &softmaxStatistics;
  FailureOr<SmallVector<Value>> results =
      ruleOp.partition(b, context, operands);
  if (failed(results))
    return failure();
  for (auto [result, local, sharding] :
       llvm::zip(op->getResults(), *results, resultShardings))
    locals[result] = LocalValue{local, sharding};

  // A result propagation wants split where the op leaves a pending sum is
  // reduce-scattered at once, so no device keeps the whole sum around
  // (ZeRO's gradients), unless it is accumulated first (a tied weight's
  // two gradients are added, then scattered once). Other differences wait
  // for the consumers.
  b.setInsertionPoint(op);
  for (auto [result, annotation] :
       llvm::zip(op->getResults(), ArrayRef(annotations).drop_front(numOperands))) {
    if (isAccumulated(result))
      continue;
    const TensorSharding &state = locals.at(result).sharding;
    bool splitsPending = llvm::any_of(state.partial, [&](StringRef axis) {
      return llvm::any_of(annotation.dims, [&](const AxisList &axes) {
        return llvm::is_contained(axes, axis);
      });
    });
    bool keepsPending = llvm::all_of(annotation.partial, [&](StringRef axis) {
      return llvm::is_contained(state.partial, axis);
    });
    if (splitsPending && keepsPending && failed(reshard(b, result, annotation)))
      return failure();
  }
  return success();
}

LogicalResult Partitioner::run() {
  MLIRContext *context = function.getContext();
  Block &body = function.getBody().front();
  auto layerName = CleaveDialect::kLayerAttrName;

  // Rules read global shapes, which arguments lose below.
  for (Operation &op : body.without_terminator())
    if (auto ruleOp = dyn_cast<ShardingRuleOpInterface>(op))
      rules[&op] = ruleOp.getShardingRule();

  SmallVector<Type> argTypes;
  for (BlockArgument arg : function.getArguments()) {
    FailureOr<TensorSharding> sharding = getAnnotation(arg);
    if (failed(sharding))
      return failure();
    auto type = getLocalType(cast<RankedTensorType>(arg.getType()), *sharding,
                             mesh);
    arg.setType(type);
    argTypes.push_back(type);
    locals[arg] = LocalValue{arg, *sharding};
  }
  updateArgAttrs(function, [&](unsigned index, NamedAttrList &attrs) {
    attrs.erase(CleaveDialect::kShardingAttrName);
    attrs.set(CleaveDialect::kBlockAttrName,
              locals[function.getArgument(index)].sharding.toAttr(
                  context, mesh.getName()));
  });

  forwardOps = getLossSlice(lookupOutput(function, OutputRole::Loss));

  for (Operation &op : body)
    originalPosition[&op] = static_cast<int64_t>(originalPosition.size());
  SmallVector<Operation *> originals;
  for (Operation &op : body.without_terminator()) {
    Operation *before = op.getPrevNode();
    current = &op;
    inBackward = !forwardOps.empty() && !forwardOps.contains(&op);
    if (failed(partitionOp(&op)))
      return failure();
    // What replaces the op (and the collectives feeding it) belongs to its
    // layer; a constraint's, to the layer of its first tagged user (a
    // parameter's gathers go with the layer that reads it).
    if (Attribute layer = getLayer(op, originalPosition))
      for (Operation *created = before ? before->getNextNode() : &body.front();
           created != &op; created = created->getNextNode())
        if (!created->hasAttr(layerName))
          created->setAttr(layerName, layer);
    originals.push_back(&op);
  }

  inBackward = false;
  Operation *ret = body.getTerminator();
  ImplicitLocOpBuilder b(ret->getLoc(), ret);
  SmallVector<Type> resultTypes;
  SmallVector<Attribute> resultBlocks;
  for (unsigned i = 0; i < function.getNumResults(); ++i) {
    auto attr = function.getResultAttrOfType<ShardingAttr>(
        i, CleaveDialect::kShardingAttrName);
    if (!attr)
      return function.emitError("result ")
             << i << " has no sharding; run cleave-propagate-sharding first";
    TensorSharding target = TensorSharding::get(attr);
    target.partial.clear();
    FailureOr<Value> value = reshard(b, ret->getOperand(i), target);
    if (failed(value))
      return failure();
    ret->setOperand(i, *value);
    resultTypes.push_back(value->getType());
    resultBlocks.push_back(target.toAttr(context, mesh.getName()));
  }
  updateResultAttrs(function, [&](unsigned index, NamedAttrList &attrs) {
    attrs.erase(CleaveDialect::kShardingAttrName);
    attrs.set(CleaveDialect::kBlockAttrName, resultBlocks[index]);
  });
  function.setType(FunctionType::get(context, argTypes, resultTypes));

  for (Operation *op : llvm::reverse(originals)) {
    op->dropAllUses();
    op->erase();
  }
  return success();
}

/// Checks, before anything is rewritten, that every argument, result and op
/// is annotated, on `mesh`, and that arguments are not pending sums.
LogicalResult checkAnnotations(func::FuncOp function, FlatSymbolRefAttr mesh) {
  auto check = [&](Attribute attr, Location loc,
                   const Twine &what) -> LogicalResult {
    auto sharding = dyn_cast_or_null<ShardingAttr>(attr);
    if (!sharding)
      return emitError(loc) << what << " has no sharding; run "
                                       "cleave-propagate-sharding first";
    if (sharding.getMesh() != mesh)
      return emitError(loc) << what << " is sharded on " << sharding.getMesh()
                            << ", the function on " << mesh;
    return success();
  };
  for (BlockArgument arg : function.getArguments()) {
    std::string what = "argument " + std::to_string(arg.getArgNumber());
    Attribute attr =
        function.getArgAttr(arg.getArgNumber(), CleaveDialect::kShardingAttrName);
    if (failed(check(attr, arg.getLoc(), what)))
      return failure();
    if (!cast<ShardingAttr>(attr).getPartial().empty())
      return emitError(arg.getLoc()) << what << " cannot be a pending sum";
  }
  for (unsigned i = 0; i < function.getNumResults(); ++i)
    if (failed(check(function.getResultAttr(i, CleaveDialect::kShardingAttrName),
                     function.getLoc(), "result " + Twine(i))))
      return failure();
  for (Operation &op : function.getBody().front().without_terminator()) {
    if (!isa<ShardingRuleOpInterface, ShardOp>(op))
      return op.emitError("has no sharding rule to partition it by");
    auto shardings =
        op.getAttrOfType<ArrayAttr>(CleaveDialect::kShardingAttrName);
    if (!shardings)
      return op.emitError("has no sharding; run cleave-propagate-sharding "
                          "first");
    for (Attribute sharding : shardings)
      if (failed(check(sharding, op.getLoc(), "a result")))
        return failure();
    if (auto shard = dyn_cast<ShardOp>(op);
        shard && failed(check(shard.getSharding(), op.getLoc(), "the constraint")))
      return failure();
  }
  return success();
}

struct CleavePartitionPass
    : public cleave::impl::CleavePartitionBase<CleavePartitionPass> {
  void runOnOperation() override {
    func::FuncOp function = getOperation();
    if (function.isDeclaration())
      return;
    ShardingAttr any;
    for (unsigned i = 0; i < function.getNumArguments() && !any; ++i)
      any = function.getArgAttrOfType<ShardingAttr>(
          i, CleaveDialect::kShardingAttrName);
    if (!any)
      return;
    auto mesh = SymbolTable::lookupNearestSymbolFrom<MeshOp>(function,
                                                             any.getMesh());
    if (!mesh) {
      function.emitError("no cleave.mesh named ") << any.getMesh();
      return signalPassFailure();
    }
    if (failed(checkAnnotations(function, any.getMesh())) ||
        failed(Partitioner(function, mesh).run()))
      signalPassFailure();
  }
};

} // namespace
