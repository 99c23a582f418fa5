//===- CleavePipeline.cpp - Transfers between pipeline stages -------------===//

#include "cleave/Dialect/Cleave/IR/CleaveOps.h"

using namespace mlir;
using namespace mlir::cleave;

/// Stages and tags are indices.
static LogicalResult verifyTransfer(Operation *op, int64_t peer, int64_t tag) {
  if (peer < 0)
    return op->emitOpError("peer stage must be non-negative, got ") << peer;
  if (tag < 0)
    return op->emitOpError("tag must be non-negative, got ") << tag;
  return success();
}

LogicalResult SendOp::verify() {
  return verifyTransfer(*this, getPeer(), getTag());
}
double SendOp::getFlops() { return 0.0; }
double SendOp::getCommunicatedBytes() {
  return getTotalBytes(getInput().getType());
}

LogicalResult RecvOp::verify() {
  return verifyTransfer(*this, getPeer(), getTag());
}
double RecvOp::getFlops() { return 0.0; }
