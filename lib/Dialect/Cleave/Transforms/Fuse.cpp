//===- Fuse.cpp - Elementwise fusion into cleave.fused kernels ------------===//

#include "cleave/Dialect/Cleave/IR/CleaveOps.h"
#include "cleave/Dialect/Cleave/Transforms/Passes.h"

#include "mlir/IR/IRMapping.h"

#include "llvm/ADT/SetVector.h"

#include <climits>

namespace mlir::cleave {
#define GEN_PASS_DEF_CLEAVEFUSE
#include "cleave/Dialect/Cleave/Transforms/Passes.h.inc"
} // namespace mlir::cleave

using namespace mlir;
using namespace mlir::cleave;

namespace {

/// Ops that become one kernel, in program order.
struct KernelGroup {
  SmallVector<Operation *> ops;
  /// At least the position of the latest op outside the group that
  /// defines a value its members read (INT64_MAX for a value of another
  /// block): a merge that keeps the group ahead of it needs no scan.
  int64_t latestInput = -1;
  Operation *getFirst() const { return ops.front(); }
};

ArrayRef<int64_t> getShape(Value value) {
  return cast<RankedTensorType>(value.getType()).getShape();
}

/// A value computed before `first` can feed any op of the group, since the
/// fused op is placed where the group's first op was.
bool isAvailableBefore(Value value, Operation *first) {
  Operation *def = value.getDefiningOp();
  if (!def)
    return true;
  return def->getBlock() == first->getBlock() && def->isBeforeInBlock(first);
}

/// Folds into a 16-bit matmul the cast to f32 that is its only use: the
/// GEMM then stores the f32 it accumulates in, instead of rounding to 16
/// bits for the cast to widen again. This is how mixed precision's weight
/// gradients, cast back to their f32 parameters, and the f32 logits of the
/// loss leave their GEMMs. Returns the number of casts folded.
unsigned fuseWideningCasts(func::FuncOp function) {
  SmallVector<CastOp> casts;
  function.walk([&](CastOp cast) { casts.push_back(cast); });
  unsigned folded = 0;
  for (CastOp cast : casts) {
    auto matmul = cast.getInput().getDefiningOp<MatmulOp>();
    if (!matmul || !matmul->hasOneUse())
      continue;
    Type from = matmul.getType().getElementType();
    Type to = cast.getType().getElementType();
    if (!(from.isBF16() || from.isF16()) || !to.isF32())
      continue;
    matmul.getResult().setType(cast.getType());
    cast.replaceAllUsesWith(matmul.getResult());
    cast.erase();
    ++folded;
  }
  return folded;
}

/// The broadcast through which `add` adds an `[N]` bias to each row of
/// `product` (along the last dimension), or null.
BroadcastOp getRowBias(AddOp add, Value product) {
  Value other = add.getLhs() == product ? add.getRhs() : add.getLhs();
  auto broadcast = other.getDefiningOp<BroadcastOp>();
  if (!broadcast)
    return {};
  auto bias = cast<RankedTensorType>(broadcast.getInput().getType());
  auto result = cast<RankedTensorType>(broadcast.getType());
  // A [1] vector broadcasts too; the epilogue needs one value per column.
  if (bias.getRank() != 1 || bias.getDimSize(0) != result.getShape().back() ||
      broadcast.getDims().size() != 1 ||
      broadcast.getDims()[0] != result.getRank() - 1 ||
      bias.getElementType() != result.getElementType())
    return {};
  return broadcast;
}

/// Turns `matmul` + broadcast bias (+ gelu) into cleave.matmul_bias when the
/// add is the product's only use; returns whether it did.
bool fuseBiasEpilogue(MatmulOp matmul) {
  if (!matmul->hasOneUse())
    return false;
  auto add = dyn_cast<AddOp>(*matmul->user_begin());
  if (!add || add.getType() != matmul.getType())
    return false;
  BroadcastOp broadcast = getRowBias(add, matmul.getResult());
  if (!broadcast)
    return false;
  GeluOp gelu;
  for (Operation *user : add->getUsers())
    if (auto candidate = dyn_cast<GeluOp>(user);
        candidate && candidate->getBlock() == add->getBlock()) {
      gelu = candidate;
      break;
    }
  // The sum is a result of its own only while something besides the gelu
  // reads it (the gelu's gradient in a training step).
  bool keepSum = gelu && !add->hasOneUse();

  SmallVector<Location> locations = {matmul.getLoc(), add.getLoc()};
  if (gelu)
    locations.push_back(gelu.getLoc());
  SmallVector<Type> types = {matmul.getType()};
  if (keepSum)
    types.push_back(matmul.getType());
  // At the add: the bias and the product both exist there, and the gelu's
  // users all come after it.
  OpBuilder builder(add);
  auto fused = MatmulBiasOp::create(
      builder, FusedLoc::get(builder.getContext(), locations), types,
      matmul.getLhs(), matmul.getRhs(), broadcast.getInput(),
      matmul.getTransposeLhs(), matmul.getTransposeRhs(),
      /*gelu=*/static_cast<bool>(gelu));
  Attribute layer = matmul->getAttr(CleaveDialect::kLayerAttrName);
  if (layer && add->getAttr(CleaveDialect::kLayerAttrName) == layer)
    fused->setAttr(CleaveDialect::kLayerAttrName, layer);

  if (gelu) {
    gelu.replaceAllUsesWith(fused.getResult());
    gelu.erase();
    if (keepSum)
      add.replaceAllUsesWith(fused.getPreActivation());
  } else {
    add.replaceAllUsesWith(fused.getResult());
  }
  add.erase();
  matmul.erase();
  if (broadcast->use_empty())
    broadcast.erase();
  return true;
}

class FusionPlanner {
public:
  /// Assigns every fusible op of `block` to a group.
  void plan(Block &block) {
    for (Operation &op : block)
      position[&op] = static_cast<int64_t>(position.size());
    for (Operation &op : block) {
      bool isBroadcast = isa<BroadcastOp>(op);
      if (!isBroadcast && !isFusibleElementwise(&op))
        continue;
      std::optional<unsigned> group;
      if (!isBroadcast)
        group = findGroupToJoin(op);
      if (!group) {
        group = groups.size();
        groups.emplace_back();
      }
      groups[*group].ops.push_back(&op);
      groupOf[&op] = *group;
      for (Value operand : op.getOperands())
        if (getGroupOf(operand) != *group)
          groups[*group].latestInput =
              std::max(groups[*group].latestInput, getPosition(operand));
      if (!isBroadcast)
        mergeOperandGroups(op, *group);
    }
  }

  SmallVector<KernelGroup> groups;

private:
  /// The latest group among the op's operands that it can legally join.
  std::optional<unsigned> findGroupToJoin(Operation &op) {
    SmallVector<unsigned> candidates;
    for (Value operand : op.getOperands())
      if (Operation *def = operand.getDefiningOp())
        if (auto it = groupOf.find(def); it != groupOf.end())
          candidates.push_back(it->second);
    llvm::sort(candidates, std::greater<unsigned>());
    for (unsigned candidate : candidates) {
      KernelGroup &group = groups[candidate];
      if (getShape(group.getFirst()->getResult(0)) !=
          getShape(op.getResult(0)))
        continue;
      bool legal = llvm::all_of(op.getOperands(), [&](Value operand) {
        auto it = groupOf.find(operand.getDefiningOp());
        if (it != groupOf.end() && it->second == candidate)
          return true;
        return isAvailableBefore(operand, group.getFirst());
      });
      if (legal)
        return candidate;
    }
    return std::nullopt;
  }

  /// After `op` joined `target`, pulls in the other groups that feed it
  /// when the merged kernel can sit where the earlier of the two starts:
  /// every value either group reads from outside must exist by then. Two
  /// chains meeting in one op (m = b1 m + (1 - b1) g) become one kernel.
  void mergeOperandGroups(Operation &op, unsigned target) {
    for (Value operand : op.getOperands()) {
      auto it = groupOf.find(operand.getDefiningOp());
      if (it == groupOf.end() || it->second == target)
        continue;
      unsigned source = it->second;
      KernelGroup &from = groups[source];
      KernelGroup &into = groups[target];
      if (from.ops.empty() || getShape(from.getFirst()->getResult(0)) !=
                                  getShape(into.getFirst()->getResult(0)))
        continue;
      Operation *first = from.getFirst()->isBeforeInBlock(into.getFirst())
                             ? from.getFirst()
                             : into.getFirst();
      int64_t start = position.lookup(first);
      // The bounds usually settle it; otherwise each group is scanned for
      // the latest value it reads from outside the pair, the smaller first,
      // which alone may already rule the merge out (a chain that a late
      // value feeds is never scanned whole for each of its links).
      if (from.latestInput >= start || into.latestInput >= start) {
        auto readsOnlyEarlierValues = [&](const KernelGroup &group) {
          return llvm::all_of(group.ops, [&](Operation *member) {
            return llvm::all_of(member->getOperands(), [&](Value value) {
              std::optional<unsigned> owner = getGroupOf(value);
              return owner == source || owner == target ||
                     getPosition(value) < start;
            });
          });
        };
        KernelGroup *smaller =
            from.ops.size() <= into.ops.size() ? &from : &into;
        KernelGroup *larger = smaller == &from ? &into : &from;
        if (!readsOnlyEarlierValues(*smaller) ||
            (larger->latestInput >= start && !readsOnlyEarlierValues(*larger)))
          continue;
      }
      into.latestInput = std::max(into.latestInput, from.latestInput);
      for (Operation *member : from.ops)
        groupOf[member] = target;
      into.ops.append(from.ops.begin(), from.ops.end());
      llvm::sort(into.ops, [](Operation *a, Operation *b) {
        return a->isBeforeInBlock(b);
      });
      from.ops.clear();
    }
  }

  /// The group of the op defining `value`, if any.
  std::optional<unsigned> getGroupOf(Value value) const {
    auto it = groupOf.find(value.getDefiningOp());
    if (it == groupOf.end())
      return std::nullopt;
    return it->second;
  }

  /// The position of the op defining `value`: -1 for a block argument
  /// (available everywhere), INT64_MAX for an op of another block (never
  /// available before a group).
  int64_t getPosition(Value value) const {
    Operation *def = value.getDefiningOp();
    if (!def)
      return -1;
    auto it = position.find(def);
    return it == position.end() ? INT64_MAX : it->second;
  }

  DenseMap<Operation *, unsigned> groupOf;
  DenseMap<Operation *, int64_t> position;
};

/// Replaces the ops of `group` with one cleave.fused op; returns false when
/// the group was dead and only erased.
bool materialize(const KernelGroup &group) {
  llvm::SmallPtrSet<Operation *, 8> members(group.ops.begin(), group.ops.end());
  llvm::SetVector<Value> inputs;
  SmallVector<Value> outputs;
  for (Operation *op : group.ops) {
    for (Value operand : op->getOperands())
      if (!members.contains(operand.getDefiningOp()))
        inputs.insert(operand);
    for (Value result : op->getResults())
      if (llvm::any_of(result.getUsers(), [&](Operation *user) {
            return !members.contains(user);
          }))
        outputs.push_back(result);
  }
  // Nothing outside reads the group: it is dead code.
  if (outputs.empty()) {
    for (Operation *op : llvm::reverse(group.ops))
      op->erase();
    return false;
  }

  SmallVector<Location> locations;
  for (Operation *op : group.ops)
    locations.push_back(op->getLoc());
  OpBuilder builder(group.getFirst());
  MLIRContext *context = builder.getContext();
  auto fused = FusedOp::create(builder, FusedLoc::get(context, locations),
                               ValueRange(outputs).getTypes(),
                               inputs.getArrayRef());
  Attribute layer = group.getFirst()->getAttr(CleaveDialect::kLayerAttrName);
  if (layer && llvm::all_of(group.ops, [&](Operation *op) {
        return op->getAttr(CleaveDialect::kLayerAttrName) == layer;
      }))
    fused->setAttr(CleaveDialect::kLayerAttrName, layer);

  Block *body = builder.createBlock(&fused.getBody());
  IRMapping mapping;
  for (Value input : inputs)
    mapping.map(input, body->addArgument(input.getType(), input.getLoc()));
  for (Operation *op : group.ops)
    builder.clone(*op, mapping);
  SmallVector<Value> yielded;
  for (Value output : outputs)
    yielded.push_back(mapping.lookup(output));
  YieldOp::create(builder, fused.getLoc(), yielded);

  for (auto [output, result] : llvm::zip(outputs, fused.getResults()))
    output.replaceUsesWithIf(result, [&](OpOperand &use) {
      return !members.contains(use.getOwner());
    });
  for (Operation *op : llvm::reverse(group.ops))
    op->erase();
  return true;
}

struct FusePass : public mlir::cleave::impl::CleaveFuseBase<FusePass> {
  using Base::Base;

  void runOnOperation() override {
    numWideningCasts += fuseWideningCasts(getOperation());
    if (epilogues) {
      SmallVector<MatmulOp> matmuls;
      getOperation().walk([&](MatmulOp matmul) { matmuls.push_back(matmul); });
      for (MatmulOp matmul : matmuls)
        numBiasEpilogues += fuseBiasEpilogue(matmul);
    }
    for (Block &block : getOperation().getBody()) {
      FusionPlanner planner;
      planner.plan(block);
      for (const KernelGroup &group : planner.groups) {
        if (group.ops.empty() || !materialize(group))
          continue;
        numFusedOps += group.ops.size();
        ++numKernels;
      }
    }
  }
};

} // namespace
