//===- MixedPrecision.cpp - 16-bit compute with f32 master weights --------===//

#include "cleave/Dialect/Cleave/IR/CleaveOps.h"
#include "cleave/Dialect/Cleave/Transforms/Passes.h"

#include "FunctionLookup.h"

#include "mlir/IR/Verifier.h"

namespace mlir::cleave {
#define GEN_PASS_DEF_CLEAVEMIXEDPRECISION
#include "cleave/Dialect/Cleave/Transforms/Passes.h.inc"
} // namespace mlir::cleave

using namespace mlir;
using namespace mlir::cleave;

namespace {

RankedTensorType withElement(Type type, Type element) {
  return RankedTensorType::get(cast<RankedTensorType>(type).getShape(),
                               element);
}

bool isF32Tensor(Type type) {
  auto tensor = dyn_cast<RankedTensorType>(type);
  return tensor && tensor.getElementType().isF32();
}

/// Ops that keep f32: reductions (and with them the loss) and the loss itself.
bool staysF32(Operation *op) {
  return isa<CrossEntropyOp, ReduceSumOp, ReduceMeanOp, ReduceMaxOp>(op);
}

/// Softmax statistics stay f32: the 16-bit attention's logsumexp.
bool isStatistics(Value result) {
  auto attention = result.getDefiningOp<AttentionOp>();
  return attention && result == attention.getLogsumexp();
}

struct MixedPrecisionPass
    : public mlir::cleave::impl::CleaveMixedPrecisionBase<MixedPrecisionPass> {
  using Base::Base;

  void runOnOperation() override {
    ModuleOp module = getOperation();
    func::FuncOp forward = lookupFunctionWithBody(
        module, function, {FunctionRole::Forward}, "to convert");
    if (!forward)
      return signalPassFailure();
    Type low = precision == ComputePrecision::BF16
                   ? Type(BFloat16Type::get(&getContext()))
                   : Type(Float16Type::get(&getContext()));
    Type f32 = Float32Type::get(&getContext());
    Block &body = forward.getBody().front();
    OpBuilder builder(&getContext());
    DenseSet<Operation *> inserted;
    // Casts `value` to `element` before `user`.
    auto castBefore = [&](Operation *user, Value value, Type element) {
      builder.setInsertionPoint(user);
      auto cast = CastOp::create(builder, value.getLoc(),
                                 withElement(value.getType(), element), value);
      inserted.insert(cast);
      if (Attribute layer = user->getAttr(CleaveDialect::kLayerAttrName))
        cast->setAttr(CleaveDialect::kLayerAttrName, layer);
      return cast.getResult();
    };

    SmallVector<Operation *> ops;
    for (Operation &op : body.without_terminator())
      ops.push_back(&op);
    for (Operation *op : ops) {
      if (staysF32(op)) {
        // f32 in and out: the logits of the loss, the sums of reductions.
        for (OpOperand &operand : op->getOpOperands())
          if (auto tensor = dyn_cast<RankedTensorType>(operand.get().getType());
              tensor && tensor.getElementType() == low)
            operand.set(castBefore(op, operand.get(), f32));
        continue;
      }
      // An explicit cast keeps its operand and target type; a constant keeps
      // its value (its readers cast it).
      if (isa<CastOp, ConstantOp>(op))
        continue;
      // Everything else computes in 16 bits: f32 operands (parameters,
      // inputs, reduction results, constants) are cast where they are read.
      for (OpOperand &operand : op->getOpOperands())
        if (isF32Tensor(operand.get().getType()))
          operand.set(castBefore(op, operand.get(), low));
      for (Value result : op->getResults())
        if (isF32Tensor(result.getType()) && !isStatistics(result))
          result.setType(withElement(result.getType(), low));
    }
    // The function returns what it returned: f32 results stay f32.
    Operation *ret = body.getTerminator();
    for (auto [operand, type] :
         llvm::zip(ret->getOpOperands(), forward.getResultTypes()))
      if (operand.get().getType() != type)
        operand.set(castBefore(ret, operand.get(),
                               cast<RankedTensorType>(type).getElementType()));
    if (failed(verify(forward)))
      return signalPassFailure();
  }
};

} // namespace
