//===- PlanMemory.cpp - Static arena offsets with liveness-based reuse ----===//

#include "cleave/Analysis/BufferLiveness.h"
#include "cleave/Dialect/Cleave/IR/CleaveOps.h"
#include "cleave/Dialect/Cleave/Transforms/Passes.h"

#include "llvm/Support/raw_ostream.h"

#include <climits>
#include <map>
#include <set>

namespace mlir::cleave {
#define GEN_PASS_DEF_CLEAVEPLANMEMORY
#include "cleave/Dialect/Cleave/Transforms/Passes.h.inc"
} // namespace mlir::cleave

using namespace mlir;
using namespace mlir::cleave;

namespace {

constexpr int64_t kArenaAlignment = 256;

/// Offsets in one arena: gaps left by freed buffers are reused best-fit
/// (the smallest gap that fits, the lowest such on a tie), else the buffer
/// goes after the last live one. The gaps are kept ordered by size, so a
/// step costs O(log n), not a scan of every live buffer.
class ArenaAllocator {
public:
  int64_t allocate(int64_t bytes) {
    int64_t offset = getEnd();
    auto gap = gaps.lower_bound({bytes, INT64_MIN});
    if (gap != gaps.end()) {
      auto [size, start] = *gap;
      gaps.erase(gap);
      offset = start;
      if (size > bytes)
        gaps.insert({size - bytes, start + bytes});
    }
    live[offset] = bytes;
    peak = std::max(peak, offset + bytes);
    return offset;
  }

  void release(int64_t offset) {
    auto block = live.find(offset);
    if (block == live.end())
      return;
    int64_t before = 0;
    if (block != live.begin())
      before = std::prev(block)->first + std::prev(block)->second;
    auto next = std::next(block);
    int64_t blockEnd = offset + block->second;
    // The gaps on either side merge with the freed block.
    if (offset > before)
      gaps.erase({offset - before, before});
    if (next != live.end()) {
      if (next->first > blockEnd)
        gaps.erase({next->first - blockEnd, blockEnd});
      gaps.insert({next->first - before, before});
    }
    live.erase(block);
  }

  int64_t getPeak() const { return peak; }

private:
  /// Where the last live buffer ends.
  int64_t getEnd() const {
    return live.empty() ? 0 : live.rbegin()->first + live.rbegin()->second;
  }

  /// Live buffers by offset, and the gaps between them as (size, offset).
  std::map<int64_t, int64_t> live;
  std::set<std::pair<int64_t, int64_t>> gaps;
  int64_t peak = 0;
};

struct PlanMemoryPass
    : public mlir::cleave::impl::CleavePlanMemoryBase<PlanMemoryPass> {
  using Base::Base;

  void runOnOperation() override {
    func::FuncOp function = getOperation();
    if (function.isDeclaration())
      return;
    if (!function.getBody().hasOneBlock()) {
      function.emitError("cleave-plan-memory needs a single-block function");
      return signalPassFailure();
    }
    Block &block = function.getBody().front();

    BufferLiveness liveness(block);

    ArenaAllocator arena;
    DenseMap<Value, int64_t> offsetOf;
    std::multimap<int64_t, Value> releaseAt;
    int64_t buffers = 0;
    Builder builder(&getContext());
    for (Operation &op : block) {
      int64_t position = liveness.getPosition(&op);
      if (ownsArenaBuffers(op)) {
        SmallVector<int64_t> offsets;
        for (Value result : op.getResults()) {
          auto type = dyn_cast<RankedTensorType>(result.getType());
          if (!type || !type.hasStaticShape()) {
            op.emitError("cleave-plan-memory needs statically shaped tensor "
                         "results, got ")
                << result.getType();
            return signalPassFailure();
          }
          std::optional<int64_t> bufferBytes = getBufferBytes(type);
          if (!bufferBytes) {
            op.emitError("cleave-plan-memory: a result of ")
                << getTotalBytes(type) << " bytes is too large for an arena";
            return signalPassFailure();
          }
          int64_t bytes = *bufferBytes;
          bytes = (bytes + kArenaAlignment - 1) / kArenaAlignment *
                  kArenaAlignment;
          int64_t offset = arena.allocate(std::max(bytes, kArenaAlignment));
          offsets.push_back(offset);
          offsetOf[result] = offset;
          ++buffers;
          // A result nobody reads is freed right after its op.
          releaseAt.emplace(liveness.getLastLive(result), result);
        }
        op.setAttr(CleaveDialect::kArenaOffsetsAttrName,
                   builder.getDenseI64ArrayAttr(offsets));
      }
      // Buffers whose last reader is this op (a reshape too) are free once
      // it has written its results, which were placed above: an op never
      // overwrites its own operands.
      auto [first, last] = releaseAt.equal_range(position);
      for (auto it = first; it != last; ++it)
        arena.release(offsetOf[it->second]);
      releaseAt.erase(first, last);
    }
    function->setAttr(CleaveDialect::kArenaBytesAttrName,
                      builder.getI64IntegerAttr(arena.getPeak()));
    if (report)
      llvm::outs() << "arena: " << function.getSymName() << ": "
                   << arena.getPeak() << " bytes, " << buffers << " buffers\n";
  }
};

} // namespace
