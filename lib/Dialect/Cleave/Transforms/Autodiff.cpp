//===- Autodiff.cpp - Reverse-mode differentiation of a forward function --===//

#include "cleave/Dialect/Cleave/Transforms/Autodiff.h"

#include "cleave/Dialect/Cleave/IR/CleaveOps.h"
#include "cleave/Dialect/Cleave/Transforms/Passes.h"

#include "FunctionLookup.h"

#include "mlir/IR/Builders.h"

namespace mlir::cleave {
#define GEN_PASS_DEF_CLEAVEAUTODIFF
#include "cleave/Dialect/Cleave/Transforms/Passes.h.inc"
} // namespace mlir::cleave

using namespace mlir;
using namespace mlir::cleave;

namespace {

/// Copies the layer tag of the op being differentiated onto every op its
/// gradient rule creates.
struct LayerTagger : public OpBuilder::Listener {
  void notifyOperationInserted(Operation *op,
                               OpBuilder::InsertPoint) override {
    if (layer)
      op->setAttr(CleaveDialect::kLayerAttrName, layer);
  }
  Attribute layer;
};

class GradientBuilder {
public:
  explicit GradientBuilder(func::ReturnOp ret) : builder(ret) {
    builder.setListener(&tagger);
  }

  /// Adds `grad` to the gradient of `value`.
  LogicalResult accumulate(Value value, Value grad, Operation *origin) {
    if (grad.getType() != value.getType())
      return origin->emitOpError("gradient rule produced ")
             << grad.getType() << " for an operand of type "
             << value.getType();
    Value &total = grads[value];
    total = total ? Value(AddOp::create(builder, origin->getLoc(), total, grad))
                  : grad;
    return success();
  }

  /// Tags the ops created from now on with `layer` (may be null).
  void setLayer(Attribute layer) { tagger.layer = layer; }

  /// Differentiates `op` if any of its results has a gradient.
  LogicalResult differentiate(Operation *op) {
    if (llvm::none_of(op->getResults(),
                      [&](Value result) { return grads.count(result); }))
      return success();
    auto differentiable = dyn_cast<DifferentiableOpInterface>(op);
    if (!differentiable)
      return op->emitOpError("cannot be differentiated: it has no gradient "
                             "rule");
    tagger.layer = op->getAttr(CleaveDialect::kLayerAttrName);
    SmallVector<Value> resultGrads;
    for (Value result : op->getResults()) {
      Value grad = grads.lookup(result);
      if (!grad)
        grad = FillOp::create(builder, op->getLoc(), result.getType(),
                              builder.getF64FloatAttr(0.0));
      resultGrads.push_back(grad);
    }
    SmallVector<Value> operandGrads;
    if (failed(differentiable.buildVjp(builder, resultGrads, operandGrads)))
      return failure();
    for (auto [operand, grad] : llvm::zip(op->getOperands(), operandGrads))
      if (grad && failed(accumulate(operand, grad, op)))
        return failure();
    tagger.layer = nullptr;
    return success();
  }

  Value lookup(Value value) const { return grads.lookup(value); }
  OpBuilder &getBuilder() { return builder; }

private:
  OpBuilder builder;
  LayerTagger tagger;
  DenseMap<Value, Value> grads;
};

/// Appends the backward to `step` (a copy of the forward) and returns the
/// loss and every parameter's gradient.
LogicalResult buildStep(func::FuncOp step) {
  Block &body = step.getBody().front();
  auto ret = cast<func::ReturnOp>(body.getTerminator());
  Value loss = ret.getOperand(0);
  SmallVector<Operation *> forwardOps;
  for (Operation &op : body.without_terminator())
    forwardOps.push_back(&op);

  GradientBuilder gradients(ret);
  OpBuilder &builder = gradients.getBuilder();
  Location loc = ret.getLoc();
  if (Operation *lossOp = loss.getDefiningOp())
    gradients.setLayer(lossOp->getAttr(CleaveDialect::kLayerAttrName));
  Value seed = FillOp::create(builder, loc, loss.getType(),
                              builder.getF64FloatAttr(1.0));
  if (failed(gradients.accumulate(loss, seed, ret)))
    return failure();
  for (Operation *op : llvm::reverse(forwardOps))
    if (failed(gradients.differentiate(op)))
      return failure();

  SmallVector<Value> results = {loss};
  auto outputAttrs = [&](StringRef name, OutputRole role) {
    return builder.getDictionaryAttr(
        {builder.getNamedAttr(CleaveDialect::kOutputAttrName,
                              builder.getStringAttr(name)),
         builder.getNamedAttr(
             CleaveDialect::kOutputRoleAttrName,
             OutputRoleAttr::get(builder.getContext(), role))});
  };
  SmallVector<Attribute> resultAttrs = {
      outputAttrs(stringifyOutputRole(OutputRole::Loss), OutputRole::Loss)};
  for (BlockArgument arg : step.getArguments()) {
    auto name = step.getArgAttrOfType<StringAttr>(
        arg.getArgNumber(), CleaveDialect::kParamAttrName);
    if (!name)
      continue;
    Value grad = gradients.lookup(arg);
    if (!grad)
      grad = FillOp::create(builder, loc, arg.getType(),
                            builder.getF64FloatAttr(0.0));
    results.push_back(grad);
    resultAttrs.push_back(
        outputAttrs(getGradientName(name.getValue()), OutputRole::Gradient));
  }
  builder.setInsertionPoint(ret);
  func::ReturnOp::create(builder, loc, results);
  ret.erase();
  step.setType(builder.getFunctionType(step.getArgumentTypes(),
                                       ValueRange(results).getTypes()));
  step.setAllResultAttrs(resultAttrs);
  return success();
}

struct AutodiffPass
    : public mlir::cleave::impl::CleaveAutodiffBase<AutodiffPass> {
  using Base::Base;

  void runOnOperation() override {
    func::FuncOp forward = lookupFunctionWithBody(
        getOperation(), function, {FunctionRole::Forward}, "to differentiate");
    if (!forward || failed(createTrainingStep(forward, stepName)))
      return signalPassFailure();
  }
};

} // namespace

FailureOr<func::FuncOp> mlir::cleave::createTrainingStep(func::FuncOp forward,
                                                         StringRef stepName) {
  auto module = forward->getParentOfType<ModuleOp>();
  if (module.lookupSymbol(stepName))
    return forward.emitError("cannot create '")
           << stepName << "': the module already has that symbol";
  auto lossType = forward.getNumResults() == 1
                      ? dyn_cast<RankedTensorType>(forward.getResultTypes()[0])
                      : RankedTensorType();
  if (!lossType || lossType.getRank() != 0 ||
      !isa<FloatType>(lossType.getElementType()) ||
      !forward.getBody().hasOneBlock())
    return forward.emitError("can only differentiate a single-block function "
                             "returning one scalar float loss");

  func::FuncOp step = forward.clone();
  step.setSymName(stepName);
  setFunctionRole(step, FunctionRole::Step);
  module.insert(std::next(Block::iterator(forward)), step);
  if (failed(buildStep(step)))
    return failure();
  return step;
}
