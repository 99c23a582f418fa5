//===- BufferLiveness.h - When each arena buffer is live --------*- C++ -*-===//
//
// The memory plan (cleave-plan-memory) and the emitter's check of it share
// one notion of liveness. Ops are numbered in block order; an op's results
// own arena buffers, except a reshape's or a wait's, which share their
// operand's storage. A buffer is live from its op through its last reader
// (the return reads after the last op; a collective read only by a wait
// reads its input until the wait), both ends included: an op's results are
// placed while its operands are still live, so they never alias them.
//
//===----------------------------------------------------------------------===//

#ifndef CLEAVE_ANALYSIS_BUFFERLIVENESS_H
#define CLEAVE_ANALYSIS_BUFFERLIVENESS_H

#include "mlir/IR/Block.h"
#include "mlir/IR/BuiltinTypes.h"
#include "mlir/IR/Value.h"
#include "llvm/ADT/DenseMap.h"

#include <optional>

namespace mlir::cleave {

/// The value whose buffer `value`'s data lives in.
Value getStorageRoot(Value value);

/// Whether `op`'s results own arena buffers.
bool ownsArenaBuffers(Operation &op);

/// The bytes of a buffer of `type`, or none past 2^62 (far past any
/// device, where converting the count would overflow).
std::optional<int64_t> getBufferBytes(RankedTensorType type);

class BufferLiveness {
public:
  explicit BufferLiveness(Block &block);

  int64_t getPosition(Operation *op) const { return position.lookup(op); }
  /// The last position at which `buffer`, a result of an op that owns its
  /// buffers, is live (its own op's, if nothing reads it).
  int64_t getLastLive(Value buffer) const;

private:
  DenseMap<Operation *, int64_t> position;
  DenseMap<Value, int64_t> lastUse;
};

} // namespace mlir::cleave

#endif // CLEAVE_ANALYSIS_BUFFERLIVENESS_H
