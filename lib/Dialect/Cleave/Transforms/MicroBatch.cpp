//===- MicroBatch.cpp - Shrink a forward function to one micro-batch ------===//

#include "cleave/Dialect/Cleave/IR/CleaveOps.h"
#include "cleave/Dialect/Cleave/Transforms/Passes.h"

#include "FunctionLookup.h"

#include "mlir/IR/Verifier.h"

namespace mlir::cleave {
#define GEN_PASS_DEF_CLEAVEMICROBATCH
#include "cleave/Dialect/Cleave/Transforms/Passes.h.inc"
} // namespace mlir::cleave

using namespace mlir;
using namespace mlir::cleave;

namespace {

/// `type` with dimension 0 set to `size`.
RankedTensorType withBatch(Type type, int64_t size) {
  auto tensor = cast<RankedTensorType>(type);
  SmallVector<int64_t> shape(tensor.getShape());
  shape[0] = size;
  return RankedTensorType::get(shape, tensor.getElementType());
}

bool reducesBatch(Operation *op) {
  ArrayRef<int64_t> dims;
  if (auto sum = dyn_cast<ReduceSumOp>(op))
    dims = sum.getDims();
  else if (auto mean = dyn_cast<ReduceMeanOp>(op))
    dims = mean.getDims();
  else if (auto max = dyn_cast<ReduceMaxOp>(op))
    dims = max.getDims();
  return llvm::is_contained(dims, 0);
}

/// Ops that combine elements along their last (or second to last)
/// dimension must not find the batch there: micro-batches would split rows.
LogicalResult checkRowsStayWithin(Operation *op,
                                  const DenseSet<Value> &batched) {
  int64_t window = isa<RotaryOp, AttentionOp>(op) ? 2
                   : isa<SoftmaxOp, LayerNormOp, RmsNormOp, CrossEntropyOp>(op)
                       ? 1
                       : 0;
  for (Value operand : op->getOperands()) {
    auto type = dyn_cast<RankedTensorType>(operand.getType());
    if (window && batched.contains(operand) && type &&
        type.getRank() <= window)
      return op->emitOpError("combines elements across the batch dimension; "
                             "cannot split it into micro-batches");
  }
  return success();
}

struct MicroBatchPass
    : public mlir::cleave::impl::CleaveMicroBatchBase<MicroBatchPass> {
  using Base::Base;

  void runOnOperation() override {
    if (factor == 1)
      return;
    ModuleOp module = getOperation();
    func::FuncOp forward = lookupFunctionWithBody(
        module, function, {FunctionRole::Forward}, "to split");
    if (!forward)
      return signalPassFailure();
    if (auto split = forward->getAttrOfType<IntegerAttr>(
            CleaveDialect::kMicroBatchesAttrName)) {
      forward.emitError("is already one of ")
          << split.getInt() << " micro-batches";
      return signalPassFailure();
    }
    if (factor < 1) {
      forward.emitError("the number of micro-batches must be positive, got ")
          << int64_t(factor);
      return signalPassFailure();
    }
    if (failed(shrink(forward)))
      return signalPassFailure();
    // The step autodiff derives keeps it: the training loop runs it this
    // many times per update.
    forward->setAttr(CleaveDialect::kMicroBatchesAttrName,
                     Builder(module.getContext()).getI64IntegerAttr(factor));
  }

  LogicalResult shrink(func::FuncOp forward) {
    // The batch is dimension 0 of the inputs, which must agree.
    int64_t batch = -1;
    DenseSet<Value> batched;
    for (BlockArgument arg : forward.getArguments()) {
      if (!forward.getArgAttr(arg.getArgNumber(), CleaveDialect::kInputAttrName))
        continue;
      auto type = cast<RankedTensorType>(arg.getType());
      if (type.getRank() == 0)
        continue;
      if (batch >= 0 && type.getDimSize(0) != batch)
        return forward.emitError("inputs disagree on the batch size: ")
               << batch << " and " << type.getDimSize(0);
      batch = type.getDimSize(0);
      batched.insert(arg);
    }
    if (batch < 0)
      return forward.emitError("has no batched input to split");
    if (batch % factor != 0)
      return forward.emitError("the batch (")
             << batch << ") does not split into " << int64_t(factor)
             << " equal micro-batches";
    int64_t micro = batch / factor;

    for (BlockArgument arg : forward.getArguments())
      if (batched.contains(arg))
        arg.setType(withBatch(arg.getType(), micro));

    for (Operation &op : forward.getBody().front().without_terminator()) {
      bool fromBatch = llvm::any_of(op.getOperands(), [&](Value operand) {
        return batched.contains(operand);
      });
      // A broadcast may introduce the batch dimension (positions): as a new
      // leading dimension, or by repeating a leading dimension of size 1.
      if (auto broadcast = dyn_cast<BroadcastOp>(op)) {
        ArrayRef<int64_t> dims = broadcast.getDims();
        auto result = broadcast.getType();
        bool leadingIsNew = !llvm::is_contained(dims, 0) ||
                            broadcast.getInput().getType().getDimSize(0) == 1;
        fromBatch |= leadingIsNew && result.getRank() > 0 &&
                     result.getDimSize(0) == batch;
      }
      if (!fromBatch)
        continue;
      if (failed(checkRowsStayWithin(&op, batched)))
        return failure();
      if (reducesBatch(&op))
        continue;
      for (Value result : op.getResults()) {
        auto type = cast<RankedTensorType>(result.getType());
        if (type.getRank() == 0 || type.getDimSize(0) != batch)
          return op.emitOpError("mixes the batch dimension into others; "
                                "cannot split it into micro-batches");
        result.setType(withBatch(type, micro));
        batched.insert(result);
      }
    }
    // Averaging micro-batch losses and gradients is right for a mean.
    Operation *ret = forward.getBody().front().getTerminator();
    Value loss = ret->getNumOperands() == 1 ? ret->getOperand(0) : Value();
    if (!loss || !loss.getDefiningOp<ReduceMeanOp>() ||
        !reducesBatch(loss.getDefiningOp()))
      return forward.emitError("micro-batches need a loss that is the mean "
                               "over the batch (a reduce_mean over dimension "
                               "0)");
    forward.setType(FunctionType::get(
        forward.getContext(), forward.getBody().front().getArgumentTypes(),
        forward.getResultTypes()));
    // Attributes that name sizes along the batch (slices, concats) no
    // longer fit: the verifier says where.
    if (failed(verify(forward)))
      return forward.emitError("cannot split into ")
             << int64_t(factor) << " micro-batches";
    return success();
  }
};

} // namespace
