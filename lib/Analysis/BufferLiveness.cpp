//===- BufferLiveness.cpp - When each arena buffer is live ----------------===//

#include "cleave/Analysis/BufferLiveness.h"

#include "cleave/Dialect/Cleave/IR/CleaveOps.h"

#include "mlir/Dialect/Func/IR/FuncOps.h"

using namespace mlir;
using namespace mlir::cleave;

Value mlir::cleave::getStorageRoot(Value value) {
  while (Operation *op = value.getDefiningOp()) {
    if (!isa<ReshapeOp, WaitOp>(op))
      break;
    value = op->getOperand(0);
  }
  return value;
}

bool mlir::cleave::ownsArenaBuffers(Operation &op) {
  return !isa<ReshapeOp, WaitOp>(op) && op.getNumResults() != 0;
}

std::optional<int64_t> mlir::cleave::getBufferBytes(RankedTensorType type) {
  double bytes = getTotalBytes(type);
  if (!(bytes < 0x1p62))
    return std::nullopt;
  return static_cast<int64_t>(bytes);
}

BufferLiveness::BufferLiveness(Block &block) {
  int64_t end = 0;
  for (Operation &op : block)
    position[&op] = end++;
  for (Operation &op : block) {
    for (Value operand : op.getOperands()) {
      Value root = getStorageRoot(operand);
      int64_t use = isa<func::ReturnOp>(op) ? end : position[&op];
      lastUse[root] = std::max(lastUse.lookup(root), use);
    }
    // A collective that runs until its wait reads its input until then.
    if (auto wait = dyn_cast<WaitOp>(op))
      if (Operation *started = wait.getInput().getDefiningOp())
        for (Value operand : started->getOperands()) {
          Value root = getStorageRoot(operand);
          lastUse[root] = std::max(lastUse.lookup(root), position[&op]);
        }
  }
}

int64_t BufferLiveness::getLastLive(Value buffer) const {
  return std::max(lastUse.lookup(buffer),
                  position.lookup(buffer.getDefiningOp()));
}
