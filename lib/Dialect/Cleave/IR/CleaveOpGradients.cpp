//===- CleaveOpGradients.cpp - Vector-Jacobian products of cleave ops -----===//
//
// Each differentiable op gets DifferentiableOpInterface through an external
// model defined here, so the rules of differentiation sit in one place and
// cleave-autodiff stays generic. Gradients are built from ordinary cleave
// ops (and the gradient ops where a composition would be slow or would keep
// large activations alive); elementwise chains become single kernels after
// cleave-fuse.
//
//===----------------------------------------------------------------------===//

#include "cleave/Dialect/Cleave/IR/CleaveDialect.h"
#include "cleave/Dialect/Cleave/IR/CleaveOps.h"

#include "mlir/IR/ImplicitLocOpBuilder.h"

using namespace mlir;
using namespace mlir::cleave;

namespace {

using Grads = SmallVectorImpl<Value>;

RankedTensorType getTensorType(Value value) {
  return cast<RankedTensorType>(value.getType());
}

bool isFloatTensor(Value value) {
  return isa<FloatType>(getTensorType(value).getElementType());
}

/// A tensor of `type` filled with `value`.
Value fill(ImplicitLocOpBuilder &b, Type type, double value) {
  return FillOp::create(b, type, b.getF64FloatAttr(value));
}

/// Whether `value` is a fill with zero: what autodiff passes for a result
/// nothing uses.
bool isZeroFill(Value value) {
  auto filled = value.getDefiningOp<FillOp>();
  return filled && filled.getValue().isZero();
}

Value add(ImplicitLocOpBuilder &b, Value lhs, Value rhs) {
  return AddOp::create(b, lhs, rhs);
}
Value sub(ImplicitLocOpBuilder &b, Value lhs, Value rhs) {
  return SubOp::create(b, lhs, rhs);
}
Value mul(ImplicitLocOpBuilder &b, Value lhs, Value rhs) {
  return MulOp::create(b, lhs, rhs);
}
Value div(ImplicitLocOpBuilder &b, Value lhs, Value rhs) {
  return DivOp::create(b, lhs, rhs);
}
/// `value * constant`, elementwise.
Value scale(ImplicitLocOpBuilder &b, Value value, double constant) {
  return mul(b, value, fill(b, value.getType(), constant));
}
/// 1 / (1 + exp(-x)).
Value sigmoid(ImplicitLocOpBuilder &b, Value x) {
  Value one = fill(b, x.getType(), 1.0);
  return div(b, one, add(b, one, ExpOp::create(b, NegOp::create(b, x))));
}
/// `grad` where `condition` holds, 0 elsewhere.
Value mask(ImplicitLocOpBuilder &b, Value condition, Value grad) {
  return SelectOp::create(b, condition, grad, fill(b, grad.getType(), 0.0));
}

/// Sums `grad` (of a broadcast's result type) back to the broadcast's input
/// shape: over the new dimensions and over the repeated size-1 dimensions.
Value unbroadcast(ImplicitLocOpBuilder &b, Value grad, RankedTensorType input,
                  ArrayRef<int64_t> dims) {
  RankedTensorType result = getTensorType(grad);
  SmallVector<bool> kept(result.getRank(), false);
  for (auto [i, dim] : llvm::enumerate(dims))
    kept[dim] = input.getDimSize(i) == result.getDimSize(dim);
  SmallVector<int64_t> reduced;
  for (int64_t dim = 0; dim < result.getRank(); ++dim)
    if (!kept[dim])
      reduced.push_back(dim);
  Value sum = reduced.empty() ? grad : ReduceSumOp::create(b, grad, reduced);
  if (getTensorType(sum) != input)
    sum = ReshapeOp::create(b, input, sum);
  return sum;
}

//===----------------------------------------------------------------------===//
// Rules, one overload per op
//===----------------------------------------------------------------------===//

LogicalResult vjp(AddOp, ImplicitLocOpBuilder &, ValueRange dy, Grads &dx) {
  dx.assign({dy[0], dy[0]});
  return success();
}

LogicalResult vjp(SubOp, ImplicitLocOpBuilder &b, ValueRange dy, Grads &dx) {
  dx.assign({dy[0], NegOp::create(b, dy[0])});
  return success();
}

LogicalResult vjp(MulOp op, ImplicitLocOpBuilder &b, ValueRange dy, Grads &dx) {
  dx.assign({mul(b, dy[0], op.getRhs()), mul(b, dy[0], op.getLhs())});
  return success();
}

LogicalResult vjp(DivOp op, ImplicitLocOpBuilder &b, ValueRange dy, Grads &dx) {
  // d(a/b) = da / b - a db / b^2 = (dy / b) and -(dy / b) * (a / b).
  Value scaled = div(b, dy[0], op.getRhs());
  dx.assign({scaled, NegOp::create(b, mul(b, scaled, op.getResult()))});
  return success();
}

/// max and min route the gradient to the operand that was chosen (the lhs
/// on ties).
template <typename OpTy>
LogicalResult vjpChoice(OpTy op, ImplicitLocOpBuilder &b, ValueRange dy,
                        Grads &dx, ComparePredicate lhsWins) {
  Value lhsChosen = CompareOp::create(b, lhsWins, op.getLhs(), op.getRhs());
  Value zero = fill(b, dy[0].getType(), 0.0);
  dx.assign({SelectOp::create(b, lhsChosen, dy[0], zero),
        SelectOp::create(b, lhsChosen, zero, dy[0])});
  return success();
}
LogicalResult vjp(MaxOp op, ImplicitLocOpBuilder &b, ValueRange dy, Grads &dx) {
  return vjpChoice(op, b, dy, dx, ComparePredicate::ge);
}
LogicalResult vjp(MinOp op, ImplicitLocOpBuilder &b, ValueRange dy, Grads &dx) {
  return vjpChoice(op, b, dy, dx, ComparePredicate::le);
}

LogicalResult vjp(NegOp, ImplicitLocOpBuilder &b, ValueRange dy, Grads &dx) {
  dx.assign({NegOp::create(b, dy[0])});
  return success();
}

LogicalResult vjp(ExpOp op, ImplicitLocOpBuilder &b, ValueRange dy, Grads &dx) {
  dx.assign({mul(b, dy[0], op.getResult())});
  return success();
}

LogicalResult vjp(LogOp op, ImplicitLocOpBuilder &b, ValueRange dy, Grads &dx) {
  dx.assign({div(b, dy[0], op.getInput())});
  return success();
}

LogicalResult vjp(TanhOp op, ImplicitLocOpBuilder &b, ValueRange dy,
                  Grads &dx) {
  Value y = op.getResult();
  dx.assign({mul(b, dy[0], sub(b, fill(b, y.getType(), 1.0), mul(b, y, y)))});
  return success();
}

LogicalResult vjp(SqrtOp op, ImplicitLocOpBuilder &b, ValueRange dy,
                  Grads &dx) {
  dx.assign({div(b, scale(b, dy[0], 0.5), op.getResult())});
  return success();
}

LogicalResult vjp(RsqrtOp op, ImplicitLocOpBuilder &b, ValueRange dy,
                  Grads &dx) {
  // y = x^(-1/2): dy/dx = -y^3 / 2.
  Value y = op.getResult();
  dx.assign({mul(b, dy[0], scale(b, mul(b, y, mul(b, y, y)), -0.5))});
  return success();
}

LogicalResult vjp(GeluOp op, ImplicitLocOpBuilder &b, ValueRange dy,
                  Grads &dx) {
  // gelu(x) = x s with s = sigmoid(2u), u = c (x + a x^3):
  // gelu'(x) = s + x s (1 - s) 2c (1 + 3a x^2).
  constexpr double kTwoC = 1.5957691216057308, kA = 0.044715;
  Value x = op.getInput();
  Type type = x.getType();
  Value x2 = mul(b, x, x);
  Value u2 = scale(b, mul(b, x, add(b, fill(b, type, 1.0), scale(b, x2, kA))), kTwoC);
  Value s = sigmoid(b, u2);
  Value slope = scale(b, add(b, fill(b, type, 1.0), scale(b, x2, 3.0 * kA)), kTwoC);
  Value ds = mul(b, mul(b, s, sub(b, fill(b, type, 1.0), s)), slope);
  dx.assign({mul(b, dy[0], add(b, s, mul(b, x, ds)))});
  return success();
}

LogicalResult vjp(ReluOp op, ImplicitLocOpBuilder &b, ValueRange dy,
                  Grads &dx) {
  Value x = op.getInput();
  Value positive = CompareOp::create(b, ComparePredicate::gt, x,
                                     fill(b, x.getType(), 0.0));
  dx.assign({mask(b, positive, dy[0])});
  return success();
}

LogicalResult vjp(SiluOp op, ImplicitLocOpBuilder &b, ValueRange dy,
                  Grads &dx) {
  // silu(x) = x s(x): silu'(x) = s (1 + x (1 - s)).
  Value x = op.getInput();
  Value s = sigmoid(b, x);
  Value one = fill(b, x.getType(), 1.0);
  dx.assign({mul(b, dy[0], mul(b, s, add(b, one, mul(b, x, sub(b, one, s)))))});
  return success();
}

LogicalResult vjp(CastOp op, ImplicitLocOpBuilder &b, ValueRange dy,
                  Grads &dx) {
  dx.assign({isFloatTensor(op.getInput()) && isFloatTensor(op.getResult())
            ? Value(CastOp::create(b, op.getInput().getType(), dy[0]))
            : Value()});
  return success();
}

LogicalResult vjp(SelectOp op, ImplicitLocOpBuilder &b, ValueRange dy,
                  Grads &dx) {
  Value zero = fill(b, dy[0].getType(), 0.0);
  dx.assign({Value(), SelectOp::create(b, op.getCondition(), dy[0], zero),
        SelectOp::create(b, op.getCondition(), zero, dy[0])});
  return success();
}

LogicalResult vjp(BroadcastOp op, ImplicitLocOpBuilder &b, ValueRange dy,
                  Grads &dx) {
  dx.assign({unbroadcast(b, dy[0], op.getInput().getType(), op.getDims())});
  return success();
}

/// The kept dimensions of a reduction, in order: where its result's
/// dimensions sit in its input.
SmallVector<int64_t> getKeptDims(int64_t rank, ArrayRef<int64_t> reduced) {
  SmallVector<int64_t> kept;
  for (int64_t dim = 0; dim < rank; ++dim)
    if (!llvm::is_contained(reduced, dim))
      kept.push_back(dim);
  return kept;
}

/// `grad` of a reduction's result, broadcast back over the reduced dims.
Value spread(ImplicitLocOpBuilder &b, Value grad, Value input,
             ArrayRef<int64_t> reduced) {
  RankedTensorType type = getTensorType(input);
  return BroadcastOp::create(b, type, grad,
                             getKeptDims(type.getRank(), reduced));
}

LogicalResult vjp(ReduceSumOp op, ImplicitLocOpBuilder &b, ValueRange dy,
                  Grads &dx) {
  dx.assign({spread(b, dy[0], op.getInput(), op.getDims())});
  return success();
}

LogicalResult vjp(ReduceMeanOp op, ImplicitLocOpBuilder &b, ValueRange dy,
                  Grads &dx) {
  double count = 1;
  for (int64_t dim : op.getDims())
    count *= static_cast<double>(getTensorType(op.getInput()).getDimSize(dim));
  dx.assign({scale(b, spread(b, dy[0], op.getInput(), op.getDims()), 1.0 / count)});
  return success();
}

LogicalResult vjp(ReduceMaxOp op, ImplicitLocOpBuilder &b, ValueRange dy,
                  Grads &dx) {
  // Elements equal to the maximum share the gradient equally, so that it
  // sums to dy however many tie.
  Value input = op.getInput();
  Type type = input.getType();
  Value largest = spread(b, op.getResult(), input, op.getDims());
  Value chosen = CompareOp::create(b, ComparePredicate::eq, input, largest);
  Value ones = SelectOp::create(b, chosen, fill(b, type, 1.0), fill(b, type, 0.0));
  Value ties = spread(b, ReduceSumOp::create(b, ones, op.getDims()), input,
                      op.getDims());
  Value share = div(b, spread(b, dy[0], input, op.getDims()), ties);
  dx.assign({mask(b, chosen, share)});
  return success();
}

LogicalResult vjp(ReshapeOp op, ImplicitLocOpBuilder &b, ValueRange dy,
                  Grads &dx) {
  dx.assign({ReshapeOp::create(b, op.getInput().getType(), dy[0])});
  return success();
}

LogicalResult vjp(TransposeOp op, ImplicitLocOpBuilder &b, ValueRange dy,
                  Grads &dx) {
  ArrayRef<int64_t> perm = op.getPerm();
  SmallVector<int64_t> inverse(perm.size());
  for (auto [i, dim] : llvm::enumerate(perm))
    inverse[dim] = i;
  dx.assign({TransposeOp::create(b, dy[0], inverse)});
  return success();
}

LogicalResult vjp(SliceOp op, ImplicitLocOpBuilder &b, ValueRange dy,
                  Grads &dx) {
  dx.assign({PadOp::create(b, op.getInput().getType(), dy[0], op.getOffsets())});
  return success();
}

LogicalResult vjp(ConcatOp op, ImplicitLocOpBuilder &b, ValueRange dy,
                  Grads &dx) {
  SmallVector<int64_t> offsets(getTensorType(dy[0]).getRank(), 0);
  dx.clear();
  for (Value input : op.getInputs()) {
    dx.push_back(SliceOp::create(b, input.getType(), dy[0], offsets));
    offsets[op.getDim()] += getTensorType(input).getDimSize(op.getDim());
  }
  return success();
}

LogicalResult vjp(MatmulOp op, ImplicitLocOpBuilder &b, ValueRange dy,
                  Grads &dx) {
  Value lhs = op.getLhs(), rhs = op.getRhs(), grad = dy[0];
  bool tl = op.getTransposeLhs(), tr = op.getTransposeRhs();
  RankedTensorType lhsType = getTensorType(lhs), rhsType = getTensorType(rhs);
  // Y = op(A) op(B):  dA = dY op(B)^T and dB = op(A)^T dY, each written back
  // in its operand's stored orientation.
  Value dLhs;
  if (!tl) {
    dLhs = MatmulOp::create(b, grad, rhs, false, !tr);
  } else if (rhsType.getRank() == 2 && lhsType.getRank() > 2) {
    // A rank-2 rhs cannot be the lhs of a batched product: compute
    // dY op(B)^T and transpose its last two dimensions instead.
    Value product = MatmulOp::create(b, grad, rhs, false, !tr);
    SmallVector<int64_t> perm;
    for (int64_t dim = 0; dim < lhsType.getRank(); ++dim)
      perm.push_back(dim);
    std::swap(perm[perm.size() - 1], perm[perm.size() - 2]);
    dLhs = TransposeOp::create(b, product, perm);
  } else {
    dLhs = MatmulOp::create(b, rhs, grad, tr, true);
  }
  Value dRhs;
  if (rhsType.getRank() == 2 && lhsType.getRank() > 2 && !tl) {
    // A rank-2 rhs is shared by every batch element: fold the batch into the
    // rows of one product, which also sums over it.
    int64_t k = lhsType.getShape().back();
    int64_t n = getTensorType(grad).getShape().back();
    int64_t rows = lhsType.getNumElements() / k;
    Value lhs2 = ReshapeOp::create(
        b, RankedTensorType::get({rows, k}, lhsType.getElementType()), lhs);
    Value grad2 = ReshapeOp::create(
        b, RankedTensorType::get({rows, n}, lhsType.getElementType()), grad);
    dRhs = tr ? MatmulOp::create(b, grad2, lhs2, true, false)
              : MatmulOp::create(b, lhs2, grad2, true, false);
  } else {
    dRhs = tr ? MatmulOp::create(b, grad, lhs, true, tl)
              : MatmulOp::create(b, lhs, grad, !tl, false);
    if (rhsType.getRank() == 2 && lhsType.getRank() > 2) {
      // Batched products of a shared rhs: sum over the batch dimensions.
      SmallVector<int64_t> batch;
      for (int64_t dim = 0; dim < lhsType.getRank() - 2; ++dim)
        batch.push_back(dim);
      dRhs = ReduceSumOp::create(b, dRhs, batch);
    }
  }
  dx.assign({dLhs, dRhs});
  return success();
}

LogicalResult vjp(SoftmaxOp op, ImplicitLocOpBuilder &b, ValueRange dy,
                  Grads &dx) {
  dx.assign({SoftmaxGradOp::create(b, op.getResult(), dy[0])});
  return success();
}

LogicalResult vjp(LayerNormOp op, ImplicitLocOpBuilder &b, ValueRange dy,
                  Grads &dx) {
  auto grad = LayerNormGradOp::create(b, op.getInput(), op.getScale(), dy[0],
                                      op.getEpsilonAttr());
  dx.assign({grad.getInputGrad(), grad.getScaleGrad(), grad.getBiasGrad()});
  return success();
}

LogicalResult vjp(RmsNormOp op, ImplicitLocOpBuilder &b, ValueRange dy,
                  Grads &dx) {
  auto grad = RmsNormGradOp::create(b, op.getInput(), op.getScale(), dy[0],
                                    op.getEpsilonAttr());
  dx.assign({grad.getInputGrad(), grad.getScaleGrad()});
  return success();
}

LogicalResult vjp(EmbeddingOp op, ImplicitLocOpBuilder &b, ValueRange dy,
                  Grads &dx) {
  dx.assign({ScatterAddOp::create(b, op.getTable().getType(), op.getIndices(), dy[0]),
        Value()});
  return success();
}

LogicalResult vjp(RotaryOp op, ImplicitLocOpBuilder &b, ValueRange dy,
                  Grads &dx) {
  // A rotation's transpose is the rotation by the opposite angle.
  dx.assign({RotaryOp::create(b, op.getType(), dy[0], op.getBaseAttr(),
                              op.getInverse() ? UnitAttr() : b.getUnitAttr(),
                              op.getScalingAttr())});
  return success();
}

LogicalResult vjp(AttentionOp op, ImplicitLocOpBuilder &b, ValueRange dy,
                  Grads &dx) {
  // The statistics are for the backward pass, not a value of the model.
  if (!isZeroFill(dy[1]))
    return op.emitOpError("cannot be differentiated through its logsumexp");
  auto grad = AttentionGradOp::create(
      b, op.getQuery(), op.getKey(), op.getValue(), op.getResult(),
      op.getLogsumexp(), dy[0], op.getCausalAttr(), op.getScaleAttr());
  dx.assign({grad.getQueryGrad(), grad.getKeyGrad(), grad.getValueGrad()});
  return success();
}

LogicalResult vjp(CrossEntropyOp op, ImplicitLocOpBuilder &b, ValueRange dy,
                  Grads &dx) {
  dx.assign(
      {CrossEntropyGradOp::create(b, op.getLogits().getType(), op.getLogits(),
                                  op.getTargets(), dy[0], op.getClassesAttr()),
       Value()});
  return success();
}

/// No operand depends differentiably on these: comparisons give masks,
/// constants and fills have no operands.
template <typename OpTy>
LogicalResult vjpNone(OpTy op, Grads &dx) {
  dx.assign(op->getNumOperands(), Value());
  return success();
}

template <typename OpTy>
struct DifferentiableModel
    : public DifferentiableOpInterface::ExternalModel<DifferentiableModel<OpTy>,
                                                      OpTy> {
  LogicalResult buildVjp(Operation *op, OpBuilder &builder,
                         ValueRange resultGrads, Grads &operandGrads) const {
    ImplicitLocOpBuilder b(op->getLoc(), builder);
    operandGrads.clear();
    if (failed(vjp(cast<OpTy>(op), b, resultGrads, operandGrads)))
      return failure();
    assert(operandGrads.size() == op->getNumOperands() &&
           "a rule must give one entry per operand");
    return success();
  }
};

template <typename OpTy>
struct NonDifferentiableModel
    : public DifferentiableOpInterface::ExternalModel<
          NonDifferentiableModel<OpTy>, OpTy> {
  LogicalResult buildVjp(Operation *op, OpBuilder &, ValueRange,
                         Grads &operandGrads) const {
    return vjpNone(cast<OpTy>(op), operandGrads);
  }
};

template <typename... OpTys>
void attachDifferentiable(MLIRContext &context) {
  (OpTys::template attachInterface<DifferentiableModel<OpTys>>(context), ...);
}

template <typename... OpTys>
void attachNonDifferentiable(MLIRContext &context) {
  (OpTys::template attachInterface<NonDifferentiableModel<OpTys>>(context),
   ...);
}

} // namespace

void mlir::cleave::attachDifferentiableOpModels(MLIRContext &context) {
  attachDifferentiable<AddOp, SubOp, MulOp, DivOp, MaxOp, MinOp, NegOp, ExpOp,
                       LogOp, TanhOp, SqrtOp, RsqrtOp, GeluOp, ReluOp, SiluOp,
                       CastOp, SelectOp, BroadcastOp, ReduceSumOp, ReduceMeanOp,
                       ReduceMaxOp, ReshapeOp, TransposeOp, SliceOp, ConcatOp,
                       MatmulOp, SoftmaxOp, LayerNormOp, RmsNormOp, EmbeddingOp,
                       RotaryOp, AttentionOp, CrossEntropyOp>(context);
  attachNonDifferentiable<CompareOp, ConstantOp, FillOp>(context);
}
