//===- OverlapCollectives.cpp - Start dp collectives early, wait late -----===//
//
// ZeRO-3's parameter gathers start one layer ahead of their readers, and
// gradient sums over dp run behind the rest of the backward. Layers are
// segments: maximal runs of one layer tag in program order. A started
// collective is read through a cleave.wait; the memory plan keeps its input
// alive until then.
//
//===----------------------------------------------------------------------===//

#include "cleave/Dialect/Cleave/IR/CleaveOps.h"
#include "cleave/Dialect/Cleave/Transforms/Passes.h"

#include "mlir/Dialect/Func/IR/FuncOps.h"
#include "mlir/IR/TypeUtilities.h"
#include "mlir/Interfaces/SideEffectInterfaces.h"
#include "llvm/ADT/MapVector.h"

namespace mlir::cleave {
#define GEN_PASS_DEF_CLEAVEOVERLAPCOLLECTIVES
#include "cleave/Dialect/Cleave/Transforms/Passes.h.inc"
} // namespace mlir::cleave

using namespace mlir;
using namespace mlir::cleave;

namespace {

bool isOverDataParallel(ArrayAttr axes) {
  return llvm::any_of(axes, [](Attribute axis) {
    return cast<StringAttr>(axis).getValue() == "dp";
  });
}

/// Whether `op` only casts: a cast, or a kernel of one cast.
bool isCast(Operation *op) {
  if (isa<CastOp>(op))
    return true;
  auto fused = dyn_cast<FusedOp>(op);
  if (!fused)
    return false;
  Block &body = fused.getBody().front();
  return body.getOperations().size() == 2 && isa<CastOp>(body.front());
}

/// The cast of a function argument a parameter gather reads (mixed
/// precision gathers each parameter's 16-bit copy, fused into a kernel by
/// then), or null.
Operation *getParameterProducer(AllGatherOp gather) {
  Operation *producer = gather.getInput().getDefiningOp();
  if (!producer || !isCast(producer) || producer->getNumOperands() != 1 ||
      !isa<BlockArgument>(producer->getOperand(0)))
    return nullptr;
  return producer;
}

/// A gather of a function argument (or of its cast) over dp: ZeRO-3's
/// parameter gathers, and inputs split over dp.
bool isPrefetchable(Operation &op) {
  auto gather = dyn_cast<AllGatherOp>(op);
  return gather && !isStartedCollective(&op) &&
         isOverDataParallel(gather.getAxes()) &&
         hasContiguousBlocks(gather.getInput().getType(), gather.getDim()) &&
         (isa<BlockArgument>(gather.getInput()) ||
          getParameterProducer(gather));
}

/// A sum over dp whose blocks are contiguous.
bool isDeferrableSum(Operation &op) {
  if (isStartedCollective(&op))
    return false;
  if (auto reduce = dyn_cast<AllReduceOp>(op))
    return reduce.getKind() == ReductionKind::sum &&
           isOverDataParallel(reduce.getAxes());
  if (auto scatter = dyn_cast<ReduceScatterOp>(op))
    return scatter.getKind() == ReductionKind::sum &&
           isOverDataParallel(scatter.getAxes()) &&
           hasContiguousBlocks(scatter.getInput().getType(), scatter.getDim());
  return false;
}

/// The earliest reader of `op`'s result in its block.
Operation *getFirstReader(Operation *op) {
  Operation *first = nullptr;
  for (Operation *user : op->getUsers()) {
    Operation *inBlock = op->getBlock()->findAncestorOpInBlock(*user);
    if (inBlock && (!first || inBlock->isBeforeInBlock(first)))
      first = inBlock;
  }
  return first;
}

/// What collectives of one bucket share: the op, its axes, the type moved.
using BucketKey = std::tuple<int64_t, OperationName, Attribute, Type>;

BucketKey getBucketKey(int64_t segment, Operation *op) {
  return {segment, op->getName(), op->getAttr("axes"),
          getElementTypeOrSelf(op->getOperand(0).getType())};
}

/// Splits `ops` (program order, one key) into runs of up to `capBytes`.
SmallVector<SmallVector<Operation *>> fillBuckets(ArrayRef<Operation *> ops,
                                                  double capBytes) {
  SmallVector<SmallVector<Operation *>> buckets;
  double filled = 0;
  for (Operation *op : ops) {
    double bytes = std::max(getTotalBytes(op->getOperand(0).getType()),
                            getTotalBytes(op->getResult(0).getType()));
    if (buckets.empty() || filled >= capBytes) {
      buckets.emplace_back();
      filled = 0;
    }
    buckets.back().push_back(op);
    filled += bytes;
  }
  return buckets;
}

struct OverlapCollectivesPass
    : public mlir::cleave::impl::CleaveOverlapCollectivesBase<
          OverlapCollectivesPass> {
  using Base::Base;

  void runOnOperation() override {
    func::FuncOp function = getOperation();
    if (function.isDeclaration() || !function.getBody().hasOneBlock())
      return;
    if (!(bucketMegabytes > 0)) {
      function.emitError("cleave-overlap-collectives: bucket-mb must be "
                         "positive, got ")
          << bucketMegabytes;
      return signalPassFailure();
    }
    double capBytes = bucketMegabytes * 1024.0 * 1024.0;
    Block &block = function.getBody().front();

    // Sums start as soon as their input is computed (partitioning puts a
    // gradient's sum next to the update that reads it).
    SmallVector<Operation *> sums;
    for (Operation &op : block)
      if (isDeferrableSum(op))
        sums.push_back(&op);
    for (Operation *sum : sums)
      if (Operation *producer = sum->getOperand(0).getDefiningOp())
        if (producer->getBlock() == &block)
          sum->moveAfter(producer);
    // A sum's only reader that reads nothing else and has no side effects
    // (mixed precision's cast to f32) moves down to its own first reader,
    // so that it does not pin the sum's wait in place.
    for (Operation *sum : sums) {
      if (!sum->getResult(0).hasOneUse())
        continue;
      Operation *reader = *sum->getResult(0).getUsers().begin();
      if (reader->getBlock() != &block || reader->getNumOperands() != 1 ||
          !isMemoryEffectFree(reader))
        continue;
      if (Operation *next = getFirstReader(reader))
        reader->moveBefore(next);
    }

    // Gathers about to move (to prefetch), and those an earlier run of this
    // pass moved (started already), with the casts they read and the
    // waits, do not mark where segments begin.
    SmallVector<Operation *> gathers;
    DenseSet<Operation *> moving;
    for (Operation &op : block) {
      bool prefetch = isPrefetchable(op) && getFirstReader(&op);
      if (prefetch)
        gathers.push_back(&op);
      auto gather = dyn_cast<AllGatherOp>(op);
      if (!prefetch && !isa<WaitOp>(op) &&
          !(gather && isStartedCollective(&op)))
        continue;
      moving.insert(&op);
      if (gather)
        if (Operation *producer = getParameterProducer(gather))
          moving.insert(producer);
    }

    // Segments: runs of one layer tag; untagged ops (constants) continue
    // the current one.
    SmallVector<Operation *> segmentStarts;
    DenseMap<Operation *, int64_t> segmentOf;
    Attribute currentTag;
    for (Operation &op : block) {
      if (moving.contains(&op))
        continue;
      Attribute tag = op.getAttr(CleaveDialect::kLayerAttrName);
      if (segmentStarts.empty() || (tag && tag != currentTag)) {
        segmentStarts.push_back(&op);
        currentTag = tag ? tag : currentTag;
      }
      segmentOf[&op] = segmentStarts.size() - 1;
    }
    auto getSegment = [&](Operation *op) { return segmentOf.lookup(op); };

    // Prefetch: each gather starts with the segment before its reader's.
    llvm::MapVector<BucketKey, SmallVector<Operation *>> gatherGroups;
    for (Operation *gather : gathers) {
      int64_t segment = getSegment(getFirstReader(gather));
      if (segment > 0)
        gatherGroups[getBucketKey(segment, gather)].push_back(gather);
    }
    SmallVector<Operation *> started;
    for (auto &[key, group] : gatherGroups) {
      // The casts first, then the gathers: gathers that stand together
      // start as one group.
      Operation *target = segmentStarts[std::get<0>(key) - 1];
      for (Operation *gather : group)
        if (Operation *producer =
                getParameterProducer(cast<AllGatherOp>(gather)))
          if (target->isBeforeInBlock(producer))
            producer->moveBefore(target);
      for (Operation *gather : group) {
        if (target->isBeforeInBlock(gather))
          gather->moveBefore(target);
        started.push_back(gather);
      }
    }

    // Sums first read in a later segment start together once the last of
    // their bucket is computed.
    llvm::MapVector<BucketKey, SmallVector<Operation *>> sumGroups;
    for (Operation &op : block) {
      if (!isDeferrableSum(op))
        continue;
      Operation *reader = getFirstReader(&op);
      if (reader && getSegment(reader) > getSegment(&op))
        sumGroups[getBucketKey(getSegment(&op), &op)].push_back(&op);
    }
    DenseMap<Operation *, Operation *> latestWait;
    for (auto &[key, group] : sumGroups) {
      int64_t segment = std::get<0>(key);
      Operation *latest =
          segment + 2 < static_cast<int64_t>(segmentStarts.size())
              ? segmentStarts[segment + 2]
              : nullptr;
      for (ArrayRef<Operation *> bucket : fillBuckets(group, capBytes)) {
        Operation *last = bucket.back();
        for (Operation *sum : bucket.drop_back())
          sum->moveBefore(last);
        for (Operation *sum : bucket) {
          started.push_back(sum);
          if (latest)
            latestWait[sum] = latest;
        }
      }
    }

    // Each started collective is read through a wait before its first
    // reader (for a sum, no later than two segments on).
    for (Operation *collective : started) {
      Operation *reader = getFirstReader(collective);
      Operation *where = reader;
      if (Operation *latest = latestWait.lookup(collective))
        if (latest->isBeforeInBlock(where) &&
            collective->isBeforeInBlock(latest))
          where = latest;
      OpBuilder builder(where);
      Value result = collective->getResult(0);
      auto wait = WaitOp::create(builder, collective->getLoc(), result);
      if (Attribute tag = collective->getAttr(CleaveDialect::kLayerAttrName))
        wait->setAttr(CleaveDialect::kLayerAttrName, tag);
      result.replaceAllUsesExcept(wait.getResult(), wait);
    }
  }
};

} // namespace
