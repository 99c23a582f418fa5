//===- CleaveOps.cpp - Cleave operations ----------------------------------===//
//
// Shape functions, verifiers and costs of the cleave ops. Folders and
// canonicalization patterns live in CleaveOpFolders.cpp.
//
//===----------------------------------------------------------------------===//

#include "cleave/Dialect/Cleave/IR/CleaveOps.h"

#include "llvm/ADT/STLExtras.h"
#include "llvm/ADT/SmallBitVector.h"
#include "llvm/Support/MathExtras.h"

#include <cmath>

using namespace mlir;
using namespace mlir::cleave;

#include "cleave/Dialect/Cleave/IR/CleaveInterfaces.cpp.inc"

//===----------------------------------------------------------------------===//
// Helpers
//===----------------------------------------------------------------------===//

double mlir::cleave::getNumElements(Type type) {
  double count = 1.0;
  for (int64_t size : cast<ShapedType>(type).getShape())
    count *= static_cast<double>(size);
  return count;
}

double mlir::cleave::getTotalBytes(Type type) {
  auto shaped = cast<ShapedType>(type);
  unsigned bits = shaped.getElementType().getIntOrFloatBitWidth();
  return getNumElements(type) * static_cast<double>((bits + 7) / 8);
}

double mlir::cleave::getTotalBytes(TypeRange types) {
  double total = 0.0;
  for (Type type : types)
    total += getTotalBytes(type);
  return total;
}

Type mlir::cleave::getBoolTensorType(Type type) {
  auto shaped = cast<ShapedType>(type);
  return RankedTensorType::get(shaped.getShape(),
                               IntegerType::get(type.getContext(), 1));
}

Type mlir::cleave::getAttentionStatisticsType(Type queryType) {
  auto query = cast<RankedTensorType>(queryType);
  Type element = query.getElementType();
  if (!element.isF64())
    element = Float32Type::get(queryType.getContext());
  // A scalar query is an error the verifier reports; its rows are none.
  ArrayRef<int64_t> rows = query.getShape();
  return RankedTensorType::get(rows.empty() ? rows : rows.drop_back(), element);
}

/// Emits "result type T does not match the expected type E" unless equal.
static LogicalResult verifyResultType(Operation *op, Type expected) {
  Type actual = op->getResult(0).getType();
  if (actual == expected)
    return success();
  return op->emitOpError("result type ")
         << actual << " does not match the expected type " << expected;
}

static LogicalResult verifySameElementType(Operation *op, Type lhs, Type rhs,
                                           StringRef lhsName,
                                           StringRef rhsName) {
  Type lhsElement = cast<ShapedType>(lhs).getElementType();
  Type rhsElement = cast<ShapedType>(rhs).getElementType();
  if (lhsElement == rhsElement)
    return success();
  return op->emitOpError() << lhsName << " element type " << lhsElement
                           << " differs from " << rhsName << " element type "
                           << rhsElement;
}

/// Checks a norm's epsilon, and its scale vector against the normalized
/// (last) dimension.
static LogicalResult verifyNorm(Operation *op, RankedTensorType input,
                                RankedTensorType scale, APFloat epsilon) {
  // Written so that NaN fails too.
  if (!(epsilon.convertToDouble() >= 0.0))
    return op->emitOpError("epsilon must be non-negative");
  if (input.getRank() < 1)
    return op->emitOpError("input must have rank >= 1");
  int64_t features = input.getShape().back();
  if (scale.getRank() != 1 || scale.getDimSize(0) != features)
    return op->emitOpError("scale must have shape [")
           << features << "] (the last input dimension), got " << scale;
  return verifySameElementType(op, input, scale, "input", "scale");
}

//===----------------------------------------------------------------------===//
// BroadcastOp
//===----------------------------------------------------------------------===//

LogicalResult BroadcastOp::verify() {
  auto input = getInput().getType();
  auto result = getResult().getType();
  ArrayRef<int64_t> dims = getDims();
  if (static_cast<int64_t>(dims.size()) != input.getRank())
    return emitOpError("expects one entry in dims per operand dimension: got ")
           << dims.size() << " for an operand of rank " << input.getRank();
  for (auto [i, dim] : llvm::enumerate(dims)) {
    if (dim < 0 || dim >= result.getRank() || (i > 0 && dim <= dims[i - 1]))
      return emitOpError("dims must be strictly increasing and within the "
                         "result rank ")
             << result.getRank();
    int64_t from = input.getDimSize(i), to = result.getDimSize(dim);
    if (from != 1 && from != to)
      return emitOpError("operand dimension ")
             << i << " (size " << from << ") is neither 1 nor the size of "
             << "result dimension " << dim << " (" << to << ")";
  }
  return verifySameElementType(*this, input, result, "operand", "result");
}

double BroadcastOp::getFlops() { return 0.0; }

//===----------------------------------------------------------------------===//
// CompareOp / SelectOp
//===----------------------------------------------------------------------===//

double CompareOp::getFlops() { return getNumElements(getLhs().getType()); }

LogicalResult SelectOp::verify() {
  if (getCondition().getType().getShape() != getType().getShape())
    return emitOpError("condition shape ")
           << getCondition().getType() << " differs from the value shape "
           << getType();
  return success();
}

double SelectOp::getFlops() { return 0.0; }

//===----------------------------------------------------------------------===//
// Reductions
//===----------------------------------------------------------------------===//

RankedTensorType mlir::cleave::inferReduceType(RankedTensorType input,
                                               ArrayRef<int64_t> dims) {
  llvm::SmallBitVector reduced(input.getRank());
  for (int64_t dim : dims)
    reduced.set(dim);
  SmallVector<int64_t> shape;
  for (int64_t i = 0; i < input.getRank(); ++i)
    if (!reduced.test(i))
      shape.push_back(input.getDimSize(i));
  return RankedTensorType::get(shape, input.getElementType());
}

template <typename ReduceOpTy>
static LogicalResult verifyReduce(ReduceOpTy op) {
  auto input = op.getInput().getType();
  llvm::SmallBitVector seen(input.getRank());
  for (int64_t dim : op.getDims()) {
    if (dim < 0 || dim >= input.getRank())
      return op.emitOpError("dimension ")
             << dim << " is out of range for an input of rank "
             << input.getRank();
    if (seen.test(dim))
      return op.emitOpError("dimension ") << dim << " is listed twice";
    seen.set(dim);
  }
  return verifyResultType(op, inferReduceType(input, op.getDims()));
}

LogicalResult ReduceSumOp::verify() { return verifyReduce(*this); }
LogicalResult ReduceMaxOp::verify() { return verifyReduce(*this); }
LogicalResult ReduceMeanOp::verify() {
  if (!isa<FloatType>(getInput().getType().getElementType()))
    return emitOpError("needs a floating-point input, got ")
           << getInput().getType();
  return verifyReduce(*this);
}

double ReduceSumOp::getFlops() { return getNumElements(getInput().getType()); }
double ReduceMaxOp::getFlops() { return getNumElements(getInput().getType()); }
double ReduceMeanOp::getFlops() {
  return getNumElements(getInput().getType()) + getNumElements(getType());
}

//===----------------------------------------------------------------------===//
// TransposeOp / ReshapeOp / SliceOp / ConcatOp / CastOp
//===----------------------------------------------------------------------===//

RankedTensorType mlir::cleave::inferTransposeType(RankedTensorType input,
                                                  ArrayRef<int64_t> perm) {
  SmallVector<int64_t> shape;
  for (int64_t dim : perm)
    shape.push_back(input.getDimSize(dim));
  return RankedTensorType::get(shape, input.getElementType());
}

LogicalResult TransposeOp::verify() {
  auto input = getInput().getType();
  ArrayRef<int64_t> perm = getPerm();
  if (static_cast<int64_t>(perm.size()) != input.getRank())
    return emitOpError("permutation has ")
           << perm.size() << " entries for an input of rank "
           << input.getRank();
  llvm::SmallBitVector seen(input.getRank());
  for (int64_t dim : perm) {
    if (dim < 0 || dim >= input.getRank() || seen.test(dim))
      return emitOpError("perm must be a permutation of [0, ")
             << input.getRank() << ")";
    seen.set(dim);
  }
  return verifyResultType(*this, inferTransposeType(input, perm));
}

double TransposeOp::getFlops() { return 0.0; }

/// Element count of a static shape, or nullopt when it exceeds int64.
static std::optional<int64_t> getCheckedNumElements(ArrayRef<int64_t> shape) {
  int64_t count = 1;
  for (int64_t size : shape)
    if (llvm::MulOverflow(count, size, count))
      return std::nullopt;
  return count;
}

LogicalResult ReshapeOp::verify() {
  auto input = getInput().getType();
  auto result = getType();
  std::optional<int64_t> inputCount = getCheckedNumElements(input.getShape());
  std::optional<int64_t> resultCount = getCheckedNumElements(result.getShape());
  if (!inputCount || !resultCount)
    return emitOpError("element count of ")
           << (inputCount ? result : input) << " exceeds 2^63";
  if (*inputCount != *resultCount)
    return emitOpError("cannot reshape ")
           << *inputCount << " elements into " << *resultCount << " ("
           << input << " to " << result << ")";
  return verifySameElementType(*this, input, result, "operand", "result");
}

double ReshapeOp::getFlops() { return 0.0; }
double ReshapeOp::getBytesRead() { return 0.0; }
double ReshapeOp::getBytesWritten() { return 0.0; }

/// Checks that `inner` fits inside `outer` at `offsets` (slice and pad).
static LogicalResult verifyBlock(Operation *op, RankedTensorType outer,
                                 RankedTensorType inner,
                                 ArrayRef<int64_t> offsets) {
  if (inner.getRank() != outer.getRank())
    return op->emitOpError("result rank ")
           << cast<RankedTensorType>(op->getResult(0).getType()).getRank()
           << " differs from input rank "
           << cast<RankedTensorType>(op->getOperand(0).getType()).getRank();
  if (static_cast<int64_t>(offsets.size()) != outer.getRank())
    return op->emitOpError("expects one offset per dimension: got ")
           << offsets.size() << " for rank " << outer.getRank();
  for (auto [dim, offset] : llvm::enumerate(offsets)) {
    int64_t size = inner.getDimSize(dim);
    if (offset < 0 || offset > outer.getDimSize(dim) - size) {
      // The end is only printed; AddOverflow wraps it without undefined
      // behaviour for offsets near 2^63.
      int64_t end;
      llvm::AddOverflow(offset, size, end);
      return op->emitOpError("slice [")
             << offset << ", " << end << ") of dimension " << dim
             << " is outside [0, " << outer.getDimSize(dim) << ")";
    }
  }
  return verifySameElementType(op, outer, inner, "operand", "result");
}

LogicalResult SliceOp::verify() {
  return verifyBlock(*this, getInput().getType(), getType(), getOffsets());
}

double SliceOp::getFlops() { return 0.0; }

LogicalResult ConcatOp::verify() {
  if (getInputs().empty())
    return emitOpError("needs at least one operand");
  auto first = cast<RankedTensorType>(getInputs().front().getType());
  int64_t rank = first.getRank();
  int64_t dim = getDim();
  if (dim < 0 || dim >= rank)
    return emitOpError("dimension ")
           << dim << " is out of range for operands of rank " << rank;
  SmallVector<int64_t> shape(first.getShape());
  shape[dim] = 0;
  for (auto [index, value] : llvm::enumerate(getInputs())) {
    auto type = cast<RankedTensorType>(value.getType());
    if (type.getElementType() != first.getElementType() ||
        type.getRank() != rank)
      return emitOpError("operand ")
             << index << " has type " << type
             << ", incompatible with operand 0 of type " << first;
    for (int64_t d = 0; d < rank; ++d)
      if (d != dim && type.getDimSize(d) != first.getDimSize(d))
        return emitOpError("operand ")
               << index << " differs from operand 0 in dimension " << d
               << " (" << type.getDimSize(d) << " vs " << first.getDimSize(d)
               << ")";
    if (llvm::AddOverflow(shape[dim], type.getDimSize(dim), shape[dim]))
      return emitOpError("concatenated dimension ")
             << dim << " exceeds 2^63 elements";
  }
  return verifyResultType(
      *this, RankedTensorType::get(shape, first.getElementType()));
}

double ConcatOp::getFlops() { return 0.0; }

LogicalResult CastOp::verify() {
  if (getInput().getType().getShape() != getType().getShape())
    return emitOpError("cannot change the shape: ")
           << getInput().getType() << " to " << getType();
  return success();
}

double CastOp::getFlops() { return 0.0; }
double ConstantOp::getFlops() { return 0.0; }
double FillOp::getFlops() { return 0.0; }

//===----------------------------------------------------------------------===//
// MatmulOp
//===----------------------------------------------------------------------===//

FailureOr<RankedTensorType>
mlir::cleave::inferMatmulType(RankedTensorType lhs, RankedTensorType rhs,
                              bool transposeLhs, bool transposeRhs,
                              EmitErrorFn emitError) {
  auto fail = [&]() -> InFlightDiagnostic {
    if (emitError)
      return emitError();
    return InFlightDiagnostic();
  };
  if (lhs.getRank() < 2 || rhs.getRank() < 2) {
    fail() << "operands must have rank >= 2, got " << lhs << " and " << rhs;
    return failure();
  }
  if (lhs.getElementType() != rhs.getElementType()) {
    fail() << "operand element types differ: " << lhs.getElementType()
           << " vs " << rhs.getElementType();
    return failure();
  }
  ArrayRef<int64_t> lhsShape = lhs.getShape(), rhsShape = rhs.getShape();
  ArrayRef<int64_t> batch = lhsShape.drop_back(2);
  if (rhs.getRank() != 2 && rhsShape.drop_back(2) != batch) {
    fail() << "rhs batch dimensions must equal the lhs batch dimensions or "
              "be absent (rank-2 rhs), got "
           << lhs << " and " << rhs;
    return failure();
  }
  int64_t m = lhsShape[lhs.getRank() - (transposeLhs ? 1 : 2)];
  int64_t lhsK = lhsShape[lhs.getRank() - (transposeLhs ? 2 : 1)];
  int64_t rhsK = rhsShape[rhs.getRank() - (transposeRhs ? 1 : 2)];
  int64_t n = rhsShape[rhs.getRank() - (transposeRhs ? 2 : 1)];
  if (lhsK != rhsK) {
    fail() << "contracting dimensions differ: lhs has " << lhsK
           << ", rhs has " << rhsK;
    return failure();
  }
  SmallVector<int64_t> shape(batch);
  shape.push_back(m);
  shape.push_back(n);
  return RankedTensorType::get(shape, lhs.getElementType());
}

/// Checks the product `result` of a matmul or matmul_bias.
static LogicalResult verifyMatmulResult(Operation *op, Value lhs, Value rhs,
                                        bool transposeLhs, bool transposeRhs,
                                        RankedTensorType result) {
  FailureOr<RankedTensorType> expected =
      inferMatmulType(cast<RankedTensorType>(lhs.getType()),
                      cast<RankedTensorType>(rhs.getType()), transposeLhs,
                      transposeRhs, [&] { return op->emitOpError(); });
  if (failed(expected))
    return failure();
  // A 16-bit product may be stored as the f32 it accumulates in.
  Type element = expected->getElementType();
  if (result.getElementType().isF32() && (element.isBF16() || element.isF16()))
    return verifyResultType(op, expected->clone(result.getElementType()));
  return verifyResultType(op, *expected);
}

/// The batch, M, N and K of a product.
static MatmulOp::Dims getMatmulDims(RankedTensorType lhs,
                                    RankedTensorType result,
                                    bool transposeLhs) {
  int64_t rank = result.getRank();
  int64_t batch = 1;
  for (int64_t size : result.getShape().drop_back(2))
    batch *= size;
  int64_t k = lhs.getDimSize(lhs.getRank() - (transposeLhs ? 2 : 1));
  return {batch, result.getDimSize(rank - 2), result.getDimSize(rank - 1), k};
}

static double getMatmulFlops(MatmulOp::Dims dims) {
  return 2.0 * static_cast<double>(dims.batch) * static_cast<double>(dims.m) *
         static_cast<double>(dims.n) * static_cast<double>(dims.k);
}

LogicalResult MatmulOp::verify() {
  return verifyMatmulResult(*this, getLhs(), getRhs(), getTransposeLhs(),
                            getTransposeRhs(), getType());
}

MatmulOp::Dims MatmulOp::getDims() {
  return getMatmulDims(getLhs().getType(), getType(), getTransposeLhs());
}

double MatmulOp::getMatmulFlops() { return ::getMatmulFlops(getDims()); }

double MatmulOp::getFlops() { return getMatmulFlops(); }

//===----------------------------------------------------------------------===//
// MatmulBiasOp
//===----------------------------------------------------------------------===//

LogicalResult MatmulBiasOp::verify() {
  auto result = cast<RankedTensorType>(getResult().getType());
  if (failed(verifyMatmulResult(*this, getLhs(), getRhs(), getTransposeLhs(),
                                getTransposeRhs(), result)))
    return failure();
  auto bias = cast<RankedTensorType>(getBias().getType());
  auto expectedBias = RankedTensorType::get({result.getShape().back()},
                                            result.getElementType());
  if (bias != expectedBias)
    return emitOpError("bias must be ")
           << expectedBias << " (one value per result column), got " << bias;
  if (Value preActivation = getPreActivation()) {
    if (!getGelu())
      return emitOpError("has a pre_activation result without gelu");
    if (preActivation.getType() != result)
      return emitOpError("pre_activation must have the result type ")
             << result << ", got " << preActivation.getType();
  }
  return success();
}

double MatmulBiasOp::getMatmulFlops() {
  return ::getMatmulFlops(getMatmulDims(
      cast<RankedTensorType>(getLhs().getType()),
      cast<RankedTensorType>(getResult().getType()), getTransposeLhs()));
}

// The product, then an add per element and gelu's 8 FLOPs (GeluOp's cost).
double MatmulBiasOp::getFlops() {
  double perElement = getGelu() ? 9.0 : 1.0;
  return getMatmulFlops() + perElement * getNumElements(getResult().getType());
}

//===----------------------------------------------------------------------===//
// Normalization, softmax, embedding, rotary
//===----------------------------------------------------------------------===//

LogicalResult SoftmaxOp::verify() {
  if (getType().getRank() < 1)
    return emitOpError("input must have rank >= 1");
  return success();
}

// max, subtract, exp, sum, divide.
double SoftmaxOp::getFlops() { return 5.0 * getNumElements(getType()); }

LogicalResult LayerNormOp::verify() {
  return verifyNorm(*this, getInput().getType(), getScale().getType(),
                    getEpsilon());
}

// mean, centre, square, sum, scale by rstd, scale, shift (+ rounding).
double LayerNormOp::getFlops() { return 8.0 * getNumElements(getType()); }

LogicalResult RmsNormOp::verify() {
  return verifyNorm(*this, getInput().getType(), getScale().getType(),
                    getEpsilon());
}

// square, sum, scale by rstd, scale.
double RmsNormOp::getFlops() { return 4.0 * getNumElements(getType()); }

LogicalResult EmbeddingOp::verify() {
  auto table = getTable().getType();
  if (table.getRank() != 2)
    return emitOpError("table must have rank 2, got ") << table;
  SmallVector<int64_t> shape(getIndices().getType().getShape());
  shape.push_back(table.getDimSize(1));
  return verifyResultType(
      *this, RankedTensorType::get(shape, table.getElementType()));
}

double EmbeddingOp::getFlops() { return 0.0; }

LogicalResult RotaryOp::verify() {
  auto type = getType();
  if (type.getRank() < 2)
    return emitOpError("input must have rank >= 2 ([..., positions, dim]), "
                       "got ")
           << type;
  if (type.getShape().back() % 2 != 0)
    return emitOpError("last dimension must be even, got ")
           << type.getShape().back();
  if (!(getBase().convertToDouble() > 0.0))
    return emitOpError("base must be positive");
  return success();
}

// Two multiplies and one add per element.
double RotaryOp::getFlops() { return 3.0 * getNumElements(getType()); }

//===----------------------------------------------------------------------===//
// AttentionOp
//===----------------------------------------------------------------------===//

/// Checks the shapes attention and its gradient share: q [batch..., S, D]
/// and k, v [batch..., T, D]; from rank 4 on, q [batch..., H, S, D] and
/// k, v [batch..., Hkv, T, D] with Hkv dividing H (grouped-query attention:
/// query head h reads key/value head h / (H / Hkv)).
static LogicalResult verifyAttentionShapes(Operation *op,
                                           RankedTensorType query,
                                           RankedTensorType key, bool causal,
                                           std::optional<APFloat> scale) {
  if (query.getRank() < 2)
    return op->emitOpError("query must have rank >= 2 ([batch..., S, D]), got ")
           << query;
  if (key.getRank() != query.getRank())
    return op->emitOpError("key rank ")
           << key.getRank() << " differs from query rank " << query.getRank();
  int64_t rank = query.getRank();
  ArrayRef<int64_t> queryBatch = query.getShape().drop_back(2);
  ArrayRef<int64_t> keyBatch = key.getShape().drop_back(2);
  // Only a heads dimension (rank >= 4) may have fewer key/value entries.
  bool grouped = rank >= 4 && queryBatch.drop_back() == keyBatch.drop_back() &&
                 queryBatch != keyBatch;
  if (grouped) {
    int64_t heads = queryBatch.back(), kvHeads = keyBatch.back();
    if (kvHeads == 0 || heads % kvHeads != 0)
      return op->emitOpError("the key's ")
             << kvHeads << " heads must divide the query's " << heads
             << " (grouped-query attention)";
  } else if (queryBatch != keyBatch) {
    return op->emitOpError("batch dimensions of query ")
           << query << " and key " << key << " differ";
  }
  if (query.getDimSize(rank - 1) != key.getDimSize(rank - 1))
    return op->emitOpError("head dimension differs: query has ")
           << query.getDimSize(rank - 1) << ", key has "
           << key.getDimSize(rank - 1);
  if (causal && key.getDimSize(rank - 2) < query.getDimSize(rank - 2))
    return op->emitOpError("causal attention needs at least as many keys (")
           << key.getDimSize(rank - 2) << ") as queries ("
           << query.getDimSize(rank - 2) << ")";
  if (scale && !(scale->convertToDouble() > 0.0))
    return op->emitOpError("scale must be positive");
  return verifySameElementType(op, query, key, "query", "key");
}

int64_t mlir::cleave::getAttentionGroupSize(RankedTensorType query,
                                            RankedTensorType key) {
  int64_t rank = query.getRank();
  if (rank < 4 || key.getRank() != rank || key.getDimSize(rank - 3) == 0)
    return 1;
  return query.getDimSize(rank - 3) / key.getDimSize(rank - 3);
}

LogicalResult AttentionOp::verify() {
  return verifyAttentionShapes(*this, getQuery().getType(), getKey().getType(),
                               getCausal(), getScale());
}

double AttentionOp::getEffectiveScale() {
  if (std::optional<APFloat> scale = getScale())
    return scale->convertToDouble();
  return 1.0 / std::sqrt(static_cast<double>(getQuery().getType().getShape().back()));
}

/// Number of attention scores: batch * S * T.
static double getNumScores(AttentionOp op) {
  auto query = op.getQuery().getType();
  int64_t rank = query.getRank();
  double scores = getNumElements(query.clone(query.getShape().drop_back()));
  return scores * op.getKey().getType().getDimSize(rank - 2);
}

// q k^T and p v each cost 2 * S * T * D per batch entry.
double AttentionOp::getMatmulFlops() {
  return 4.0 * getNumScores(*this) * getQuery().getType().getShape().back();
}

// Scaling the scores and the softmax over them.
double AttentionOp::getFlops() {
  return getMatmulFlops() + 6.0 * getNumScores(*this);
}

//===----------------------------------------------------------------------===//
// CrossEntropyOp
//===----------------------------------------------------------------------===//

/// `classes`, when set, counts at least one and at most every column.
static LogicalResult verifyClasses(Operation *op,
                                   std::optional<uint64_t> classes,
                                   RankedTensorType logits) {
  if (!classes || logits.getRank() < 1)
    return success();
  int64_t columns = logits.getShape().back();
  auto count = static_cast<int64_t>(*classes);
  if (count >= 1 && count <= columns)
    return success();
  return op->emitOpError("classes must be in [1, ")
         << columns << "] (the logits' last dimension), got " << count;
}

static int64_t getNumClasses(std::optional<uint64_t> classes,
                             RankedTensorType logits) {
  return classes ? static_cast<int64_t>(*classes) : logits.getShape().back();
}

LogicalResult CrossEntropyOp::verify() {
  auto logits = getLogits().getType();
  auto targets = getTargets().getType();
  if (logits.getRank() < 1)
    return emitOpError("logits must have rank >= 1");
  if (logits.getShape().drop_back() != targets.getShape())
    return emitOpError("targets shape ")
           << targets << " must be the logits shape " << logits
           << " without its last (class) dimension";
  if (failed(verifyClasses(*this, getClasses(), logits)))
    return failure();
  return verifyResultType(
      *this, RankedTensorType::get(targets.getShape(), logits.getElementType()));
}

int64_t CrossEntropyOp::getNumClasses() {
  return ::getNumClasses(getClasses(), getLogits().getType());
}

// Per row of V classes: max, subtract, exp and sum over V, then log and pick.
double CrossEntropyOp::getFlops() {
  return 4.0 * getNumElements(getLogits().getType()) +
         2.0 * getNumElements(getType());
}

#define GET_OP_CLASSES
#include "cleave/Dialect/Cleave/IR/CleaveOps.cpp.inc"

//===----------------------------------------------------------------------===//
// FusedOp
//===----------------------------------------------------------------------===//

bool mlir::cleave::isFusibleElementwise(Operation *op) {
  return op->hasTrait<OpTrait::Elementwise>() ||
         isa<CompareOp, SelectOp, CastOp, FillOp>(op);
}

LogicalResult FusedOp::verify() {
  if (getResults().empty())
    return emitOpError("must have at least one result");
  ArrayRef<int64_t> shape = getIterationShape();
  for (Type type : getResultTypes())
    if (cast<RankedTensorType>(type).getShape() != shape)
      return emitOpError("results must share one shape, got ")
             << getResult(0).getType() << " and " << type;

  Block &body = getBody().front();
  if (body.getArgumentTypes() != getInputs().getTypes())
    return emitOpError("block arguments must have the operand types");
  for (Operation &op : body.without_terminator()) {
    if (auto broadcast = dyn_cast<BroadcastOp>(op)) {
      if (!isa<BlockArgument>(broadcast.getInput()))
        return op.emitOpError("inside a fused kernel must broadcast a kernel "
                              "input");
    } else if (!isFusibleElementwise(&op)) {
      return op.emitOpError("cannot be part of a fused kernel");
    } else {
      // A direct use reads the same element of the iteration space.
      for (Value operand : op.getOperands())
        if (cast<RankedTensorType>(operand.getType()).getShape() != shape)
          return op.emitOpError("operand of type ")
                 << operand.getType()
                 << " does not match the kernel's iteration shape";
    }
    if (cast<RankedTensorType>(op.getResult(0).getType()).getShape() != shape)
      return op.emitOpError("result does not have the kernel's iteration shape");
  }
  auto yield = cast<YieldOp>(body.getTerminator());
  if (yield.getValues().getTypes() != getResultTypes())
    return yield.emitOpError("must yield the kernel's result types");
  return success();
}

double FusedOp::getFlops() {
  double flops = 0;
  for (Operation &op : getBody().front())
    if (auto cost = dyn_cast<CostOpInterface>(op))
      flops += cost.getFlops();
  return flops;
}

//===----------------------------------------------------------------------===//
// Gradient ops
//===----------------------------------------------------------------------===//

LogicalResult SoftmaxGradOp::verify() {
  if (getType().getRank() < 1)
    return emitOpError("input must have rank >= 1");
  return success();
}

// Product, row sum, subtract, multiply.
double SoftmaxGradOp::getFlops() { return 4.0 * getNumElements(getType()); }

LogicalResult CrossEntropyGradOp::verify() {
  auto logits = getLogits().getType();
  auto targets = getTargets().getType();
  auto lossGrad = getLossGrad().getType();
  if (logits.getRank() < 1 || logits.getShape().drop_back() != targets.getShape())
    return emitOpError("targets ")
           << targets << " must have the shape of logits " << logits
           << " without its last dimension";
  if (lossGrad.getShape() != targets.getShape())
    return emitOpError("loss gradient ")
           << lossGrad << " must have the targets' shape " << targets;
  if (failed(verifyClasses(*this, getClasses(), logits)))
    return failure();
  return verifySameElementType(*this, logits, lossGrad, "logits",
                               "loss gradient");
}

int64_t CrossEntropyGradOp::getNumClasses() {
  return ::getNumClasses(getClasses(), getLogits().getType());
}

// Softmax (5 per logit) and the scaled difference.
double CrossEntropyGradOp::getFlops() {
  return 6.0 * getNumElements(getLogits().getType());
}

LogicalResult LayerNormGradOp::verify() {
  return verifyNorm(*this, getInput().getType(), getScale().getType(),
                    getEpsilon());
}

// Recomputed statistics (4), the input gradient (8), two row sums (4).
double LayerNormGradOp::getFlops() {
  return 16.0 * getNumElements(getInput().getType());
}

LogicalResult RmsNormGradOp::verify() {
  return verifyNorm(*this, getInput().getType(), getScale().getType(),
                    getEpsilon());
}

double RmsNormGradOp::getFlops() {
  return 10.0 * getNumElements(getInput().getType());
}

LogicalResult AttentionGradOp::verify() {
  return verifyAttentionShapes(*this, getQuery().getType(), getKey().getType(),
                               getCausal(), getScale());
}

double AttentionGradOp::getEffectiveScale() {
  if (std::optional<APFloat> scale = getScale())
    return scale->convertToDouble();
  return 1.0 / std::sqrt(static_cast<double>(getQuery().getType().getShape().back()));
}

/// batch * S * T: one per attention score.
static double getScoreCount(RankedTensorType query, RankedTensorType key) {
  return getNumElements(query) / static_cast<double>(query.getShape().back()) *
         static_cast<double>(key.getShape().drop_back().back());
}

// Recomputed scores, then dV, dP, dQ and dK: five products of 2*D per score.
double AttentionGradOp::getMatmulFlops() {
  return 10.0 * getScoreCount(getQuery().getType(), getKey().getType()) *
         static_cast<double>(getQuery().getType().getShape().back());
}

// Softmax recompute (5) and its gradient (4) per score.
double AttentionGradOp::getFlops() {
  return getMatmulFlops() +
         9.0 * getScoreCount(getQuery().getType(), getKey().getType());
}

LogicalResult ScatterAddOp::verify() {
  auto indices = getIndices().getType();
  auto updates = getUpdates().getType();
  auto result = getType();
  if (result.getRank() != 2)
    return emitOpError("result must have rank 2 ([V, H]), got ") << result;
  SmallVector<int64_t> expected(indices.getShape());
  expected.push_back(result.getDimSize(1));
  if (updates.getShape() != ArrayRef<int64_t>(expected))
    return emitOpError("updates ")
           << updates << " must have the indices' shape followed by "
           << result.getDimSize(1);
  return verifySameElementType(*this, updates, result, "updates", "result");
}

double ScatterAddOp::getFlops() { return getNumElements(getUpdates().getType()); }

LogicalResult PadOp::verify() {
  return verifyBlock(*this, getType(), getInput().getType(), getOffsets());
}

double PadOp::getFlops() { return 0.0; }
