//===- ComputePatterns.cpp - Compute and gradient ops ---------------------===//
//
// Each op the runtime library implements becomes one call on arena
// pointers: GEMMs, attention, norms, losses, embeddings, reductions and data
// movement, forward and backward.
//
//===----------------------------------------------------------------------===//

#include "FunctionEmitter.h"

#include "llvm/ADT/TypeSwitch.h"

using namespace mlir;
using namespace mlir::cleave;

/// The runtime's RopeScaling for `scaling` (none when it is null).
static std::string getRopeScalingLiteral(RopeScalingAttr scaling) {
  if (!scaling)
    return "cleave::rt::RopeScaling{}";
  return "cleave::rt::RopeScaling{" +
         getScalarLiteral(scaling.getFactor().convertToDouble(), "double") +
         ", " +
         getScalarLiteral(scaling.getLowFreqFactor().convertToDouble(),
                          "double") +
         ", " +
         getScalarLiteral(scaling.getHighFreqFactor().convertToDouble(),
                          "double") +
         ", " + std::to_string(scaling.getOriginalMaxPositions()) + ".0}";
}

LogicalResult FunctionEmitter::emitLibraryCall(Operation &op) {
  return llvm::TypeSwitch<Operation *, LogicalResult>(&op)
      .Case([&](MatmulOp matmul) { return emitMatmul(matmul); })
      .Case([&](MatmulBiasOp matmul) { return emitMatmulBias(matmul); })
      .Case([&](AttentionOp attention) { return emitAttention(attention); })
      .Case([&](SoftmaxOp softmax) {
        return emitRowwise("softmax", softmax.getInput(), softmax.getInput(),
                           std::nullopt, softmax.getResult(), op);
      })
      .Case([&](LayerNormOp norm) {
        return emitRowwise("layerNorm", norm.getInput(),
                           {norm.getInput(), norm.getScale(), norm.getBias()},
                           norm.getEpsilon(), norm.getResult(), op);
      })
      .Case([&](RmsNormOp norm) {
        return emitRowwise("rmsNorm", norm.getInput(),
                           {norm.getInput(), norm.getScale()},
                           norm.getEpsilon(), norm.getResult(), op);
      })
      .Case([&](CrossEntropyOp loss) {
        return call(
            "crossEntropy",
            {getDType(loss.getLogits()), getDType(loss.getTargets()),
             std::to_string(getElementCount(getShape(loss.getTargets()))),
             std::to_string(getShape(loss.getLogits()).back()),
             std::to_string(loss.getNumClasses()), get(loss.getLogits()),
             get(loss.getTargets()), get(loss.getResult()), addIndexSite(op)},
            op);
      })
      .Case([&](EmbeddingOp embedding) {
        return emitTableRows("embedding", embedding.getTable(),
                             embedding.getIndices(), embedding.getTable(),
                             {embedding.getTable(), embedding.getIndices()},
                             embedding.getResult(), op);
      })
      .Case([&](RotaryOp rotary) {
        ArrayRef<int64_t> shape = getShape(rotary.getInput());
        int64_t seq = shape[shape.size() - 2], dim = shape.back();
        return call(
            "rotary",
            {getDType(rotary.getInput()),
             std::to_string(getElementCount(shape) / (seq * dim)),
             std::to_string(seq), std::to_string(dim),
             getScalarLiteral(rotary.getBase().convertToDouble(), "double"),
             getRopeScalingLiteral(rotary.getScalingAttr()),
             rotary.getInverse() ? "true" : "false", get(rotary.getInput()),
             get(rotary.getResult())},
            op);
      })
      .Case([&](SoftmaxGradOp grad) {
        return emitRowwise("softmaxGrad", grad.getOutput(),
                           {grad.getOutput(), grad.getOutputGrad()},
                           std::nullopt, grad.getResult(), op);
      })
      .Case([&](CrossEntropyGradOp grad) {
        return call("crossEntropyGrad",
                    {getDType(grad.getLogits()), getDType(grad.getTargets()),
                     getRowsAndColumns(grad.getLogits()),
                     std::to_string(grad.getNumClasses()),
                     get(grad.getLogits()), get(grad.getTargets()),
                     get(grad.getLossGrad()), get(grad.getResult()),
                     addIndexSite(op)},
                    op);
      })
      .Case([&](LayerNormGradOp grad) {
        return emitRowwise(
            "layerNormGrad", grad.getInput(),
            {grad.getInput(), grad.getScale(), grad.getOutputGrad()},
            grad.getEpsilon(),
            {grad.getInputGrad(), grad.getScaleGrad(), grad.getBiasGrad()}, op);
      })
      .Case([&](RmsNormGradOp grad) {
        return emitRowwise(
            "rmsNormGrad", grad.getInput(),
            {grad.getInput(), grad.getScale(), grad.getOutputGrad()},
            grad.getEpsilon(), {grad.getInputGrad(), grad.getScaleGrad()}, op);
      })
      .Case([&](AttentionGradOp grad) { return emitAttentionGrad(grad); })
      .Case([&](ScatterAddOp scatter) {
        return emitTableRows("scatterAdd", scatter.getUpdates(),
                             scatter.getIndices(), scatter.getResult(),
                             {scatter.getIndices(), scatter.getUpdates()},
                             scatter.getResult(), op);
      })
      .Case([&](PadOp pad) {
        return emitBox("pad", pad.getInput(), pad.getOffsets(), pad.getResult(),
                       op);
      })
      .Case([&](ReduceSumOp reduce) {
        return emitReduce(op, "Sum", reduce.getDims());
      })
      .Case([&](ReduceMeanOp reduce) {
        return emitReduce(op, "Mean", reduce.getDims());
      })
      .Case([&](ReduceMaxOp reduce) {
        return emitReduce(op, "Max", reduce.getDims());
      })
      .Case([&](TransposeOp transpose) {
        std::string perm = declareArray("int", transpose.getPerm());
        return call("transpose",
                    {getElementBytes(transpose.getInput()),
                     getShapeLiteral(getShape(transpose.getInput())), perm,
                     get(transpose.getInput()), get(transpose.getResult())},
                    op);
      })
      .Case([&](SliceOp slice) {
        return emitBox("extractSlice", slice.getInput(), slice.getOffsets(),
                       slice.getResult(), op);
      })
      .Case([&](ConcatOp concat) { return emitConcat(concat); })
      .Case([&](IotaOp iota) {
        return call("iota",
                    {getShapeLiteral(getShape(iota.getResult())),
                     std::to_string(iota.getDim()), get(iota.getResult())},
                    op);
      })
      .Case([&](ConstantOp constant) { return emitDenseConstant(constant); })
      .Default([&](Operation *other) {
        return other->emitOpError("cannot be emitted to CUDA C++");
      });
}

LogicalResult FunctionEmitter::emitRowwise(StringRef function, Value rows,
                                           ValueRange inputs,
                                           std::optional<APFloat> epsilon,
                                           ValueRange outputs, Operation &op) {
  SmallVector<std::string> arguments = {getDType(rows),
                                        getRowsAndColumns(rows)};
  for (Value input : inputs)
    arguments.push_back(get(input));
  if (epsilon)
    arguments.push_back(getScalarLiteral(epsilon->convertToDouble(), "double"));
  for (Value output : outputs)
    arguments.push_back(get(output));
  return call(function, arguments, op);
}

LogicalResult FunctionEmitter::emitTableRows(StringRef function, Value rows,
                                             Value indices, Value table,
                                             ValueRange pointers, Value result,
                                             Operation &op) {
  ArrayRef<int64_t> shape = getShape(table);
  SmallVector<std::string> arguments = {
      getDType(rows), getDType(indices),
      std::to_string(getElementCount(getShape(indices))),
      std::to_string(shape[0]), std::to_string(shape[1])};
  for (Value pointer : pointers)
    arguments.push_back(get(pointer));
  arguments.push_back(get(result));
  arguments.push_back(addIndexSite(op));
  return call(function, arguments, op);
}

LogicalResult FunctionEmitter::emitBox(StringRef function, Value input,
                                       ArrayRef<int64_t> offsets, Value result,
                                       Operation &op) {
  std::string array = declareArray("int64_t", offsets);
  return call(function,
              {getElementBytes(input), getShapeLiteral(getShape(input)), array,
               getShapeLiteral(getShape(result)), get(input), get(result)},
              op);
}

std::string FunctionEmitter::declareGemmArgs(Value lhs, Value rhs, Value result,
                                             bool transposeLhs,
                                             bool transposeRhs) {
  ArrayRef<int64_t> lhsShape = getShape(lhs);
  ArrayRef<int64_t> rhsShape = getShape(rhs);
  ArrayRef<int64_t> resultShape = getShape(result);
  int64_t m = resultShape[resultShape.size() - 2], n = resultShape.back();
  int64_t k = transposeLhs ? lhsShape[lhsShape.size() - 2] : lhsShape.back();
  int64_t batch = getElementCount(resultShape) / (m * n);
  std::string args = "g" + std::to_string(nextArray++);
  host << "  cleave::rt::GemmArgs " << args << ";\n  " << args
       << ".batch = " << batch << ";\n  " << args << ".m = " << m << ";\n  "
       << args << ".n = " << n << ";\n  " << args << ".k = " << k << ";\n  "
       << args << ".transposeA = " << (transposeLhs ? "true" : "false")
       << ";\n  " << args
       << ".transposeB = " << (transposeRhs ? "true" : "false") << ";\n  "
       << args << ".a = " << get(lhs) << ";\n  " << args << ".b = " << get(rhs)
       << ";\n  " << args << ".c = " << get(result) << ";\n  " << args
       << ".strideA = " << (lhsShape.size() > 2 ? m * k : 0) << ";\n  " << args
       << ".strideB = " << (rhsShape.size() > 2 ? k * n : 0) << ";\n  " << args
       << ".strideC = " << m * n << ";\n";
  // An f32 result of 16-bit operands is the GEMM's f32 output.
  if (cast<RankedTensorType>(lhs.getType()).getElementType() !=
      cast<RankedTensorType>(result.getType()).getElementType())
    host << "  " << args << ".wideOutput = true;\n";
  return args;
}

// The operands' type names the GEMM; the result may be wider.
LogicalResult FunctionEmitter::emitMatmul(MatmulOp matmul) {
  std::string args =
      declareGemmArgs(matmul.getLhs(), matmul.getRhs(), matmul.getResult(),
                      matmul.getTransposeLhs(), matmul.getTransposeRhs());
  return call("gemm", {getDType(matmul.getLhs()), args},
              *matmul.getOperation());
}

LogicalResult FunctionEmitter::emitMatmulBias(MatmulBiasOp matmul) {
  std::string args =
      declareGemmArgs(matmul.getLhs(), matmul.getRhs(), matmul.getResult(),
                      matmul.getTransposeLhs(), matmul.getTransposeRhs());
  host << "  " << args << ".epilogue = cleave::rt::GemmEpilogue::"
       << (matmul.getGelu() ? "BiasGelu" : "Bias") << ";\n  " << args
       << ".bias = " << get(matmul.getBias()) << ";\n";
  if (Value preActivation = matmul.getPreActivation())
    host << "  " << args << ".preActivation = " << get(preActivation) << ";\n";
  return call("gemm", {getDType(matmul.getLhs()), args},
              *matmul.getOperation());
}

std::string FunctionEmitter::declareAttentionArgs(Value query, Value key,
                                                  Value value, bool causal,
                                                  double scale) {
  ArrayRef<int64_t> q = getShape(query);
  ArrayRef<int64_t> k = getShape(key);
  int64_t s = q[q.size() - 2], d = q.back(), t = k[k.size() - 2];
  std::string args = "g" + std::to_string(nextArray++);
  host << "  cleave::rt::AttentionArgs " << args << ";\n  " << args
       << ".batch = " << getElementCount(q) / (s * d) << ";\n  " << args
       << ".s = " << s << ";\n  " << args << ".t = " << t << ";\n  " << args
       << ".d = " << d << ";\n  " << args
       << ".causal = " << (causal ? "true" : "false") << ";\n  " << args
       << ".scale = " << getScalarLiteral(scale, "double") << ";\n  " << args
       << ".q = " << get(query) << ";\n  " << args << ".k = " << get(key)
       << ";\n  " << args << ".v = " << get(value) << ";\n";
  int64_t groups =
      getAttentionGroupSize(cast<RankedTensorType>(query.getType()),
                            cast<RankedTensorType>(key.getType()));
  if (groups > 1)
    host << "  " << args << ".groups = " << groups << ";\n";
  return args;
}

LogicalResult FunctionEmitter::emitAttention(AttentionOp attention) {
  std::string args = declareAttentionArgs(
      attention.getQuery(), attention.getKey(), attention.getValue(),
      attention.getCausal(), attention.getEffectiveScale());
  host << "  " << args << ".output = " << get(attention.getResult()) << ";\n  "
       << args << ".statistics = " << get(attention.getLogsumexp()) << ";\n";
  return call("attention", {getDType(attention.getResult()), args},
              *attention.getOperation());
}

LogicalResult FunctionEmitter::emitAttentionGrad(AttentionGradOp grad) {
  std::string forward =
      declareAttentionArgs(grad.getQuery(), grad.getKey(), grad.getValue(),
                           grad.getCausal(), grad.getEffectiveScale());
  host << "  " << forward << ".output = " << get(grad.getOutput()) << ";\n  "
       << forward << ".statistics = " << get(grad.getLogsumexp()) << ";\n";
  std::string args = "g" + std::to_string(nextArray++);
  host << "  cleave::rt::AttentionGradArgs " << args << ";\n  " << args
       << ".forward = " << forward << ";\n  " << args
       << ".outputGrad = " << get(grad.getOutputGrad()) << ";\n  " << args
       << ".queryGrad = " << get(grad.getQueryGrad()) << ";\n  " << args
       << ".keyGrad = " << get(grad.getKeyGrad()) << ";\n  " << args
       << ".valueGrad = " << get(grad.getValueGrad()) << ";\n";
  return call("attentionGrad", {getDType(grad.getQuery()), args},
              *grad.getOperation());
}

LogicalResult FunctionEmitter::emitReduce(Operation &op, StringRef kind,
                                          ArrayRef<int64_t> dims) {
  uint32_t mask = 0;
  for (int64_t dim : dims)
    mask |= 1u << dim;
  Value input = op.getOperand(0);
  return call("reduce",
              {getDType(input), ("cleave::rt::ReduceKind::" + kind).str(),
               getShapeLiteral(getShape(input)), std::to_string(mask) + "u",
               get(input), get(op.getResult(0))},
              op);
}

LogicalResult FunctionEmitter::emitConcat(ConcatOp concat) {
  SmallVector<int64_t> offsets(getShape(concat.getResult()).size(), 0);
  for (Value input : concat.getInputs()) {
    std::string array = declareArray("int64_t", offsets);
    if (failed(call("insertSlice",
                    {getElementBytes(input), getShapeLiteral(getShape(input)),
                     array, getShapeLiteral(getShape(concat.getResult())),
                     get(input), get(concat.getResult())},
                    *concat.getOperation())))
      return failure();
    offsets[concat.getDim()] += getShape(input)[concat.getDim()];
  }
  return success();
}

LogicalResult FunctionEmitter::emitDenseConstant(ConstantOp constant) {
  auto elements = dyn_cast<DenseElementsAttr>(constant.getValue());
  if (!elements)
    return constant.emitOpError("only dense constants can be emitted");
  FailureOr<ElementInfo> info =
      getElementInfo(elements.getType(), constant.getLoc());
  if (failed(info))
    return failure();
  std::string array = "c" + std::to_string(nextArray++);
  std::string storage = info->storage;
  host << "  static const " << storage << " " << array << "[] = {";
  int64_t index = 0;
  auto separator = [&]() { return index++ % 8 == 0 ? "\n      " : " "; };
  Type elementType = elements.getElementType();
  if (isa<FloatType>(elementType)) {
    for (APFloat value : elements.getValues<APFloat>())
      host << separator() << "cleave::store<" << storage << ">("
           << getScalarLiteral(value.convertToDouble(), info->compute) << "),";
  } else {
    for (APInt value : elements.getValues<APInt>())
      host << separator()
           << (elementType.isInteger(1) ? std::to_string(value.getZExtValue())
                                        : std::to_string(value.getSExtValue()))
           << ",";
  }
  host << "};\n";
  host << "  CLEAVE_RETURN_IF_ERROR(context.copyToDevice("
       << get(constant.getResult()) << ", " << array << ", sizeof(" << array
       << ")));\n";
  return success();
}
