//===- KernelEmitter.cpp - Fused elementwise kernels as C++ ---------------===//
//
// A kernel is one parallel loop over the elements of its iteration shape,
// V consecutive elements per iteration (a template parameter: 1, or as many
// as one 128-bit access moves on the GPU). An iteration loads V elements of
// each input read in place, and of each broadcast input that repeats every
// multiple of V elements, with one access; other broadcast inputs are read
// element by element through an index expression with constant divisors.
// It evaluates the body ops on scalars in the compute type, lane by lane,
// and stores V elements of each output at once. Nothing else touches memory.
//
//===----------------------------------------------------------------------===//

#include "EmitterSupport.h"

#include "cleave/Dialect/Cleave/IR/CleaveOps.h"

#include "llvm/ADT/TypeSwitch.h"
#include "llvm/ADT/StringExtras.h"
#include "llvm/Support/Format.h"
#include "llvm/Support/FormatVariadic.h"

#include <cmath>
#include <cstdio>
#include <map>
#include <optional>

using namespace mlir;
using namespace mlir::cleave;

FailureOr<ElementInfo> mlir::cleave::getElementInfo(Type type, Location loc) {
  if (auto tensor = dyn_cast<ShapedType>(type))
    type = tensor.getElementType();
  if (type.isF64())
    return ElementInfo{"double", "double", "F64"};
  if (type.isF32())
    return ElementInfo{"float", "float", "F32"};
  if (type.isBF16())
    return ElementInfo{"cleave::bf16", "float", "BF16"};
  if (type.isF16())
    return ElementInfo{"cleave::f16", "float", "F16"};
  if (type.isInteger(64))
    return ElementInfo{"int64_t", "int64_t", "I64"};
  if (type.isInteger(32))
    return ElementInfo{"int32_t", "int32_t", "I32"};
  if (type.isInteger(1))
    return ElementInfo{"bool", "bool", "Bool"};
  return emitError(loc, "cannot emit element type ") << type;
}

std::string mlir::cleave::getLocationString(Location loc) {
  std::string text;
  loc->walk([&](Location nested) {
    if (auto file = dyn_cast<FileLineColLoc>(nested)) {
      text = (file.getFilename().strref() + ":" + llvm::Twine(file.getLine()) +
              ":" + llvm::Twine(file.getColumn()))
                 .str();
      return WalkResult::interrupt();
    }
    return WalkResult::advance();
  });
  return text;
}

std::string mlir::cleave::getStringLiteral(StringRef text) {
  std::string literal = "\"";
  for (char c : text) {
    if (c == '"' || c == '\\')
      literal += '\\';
    if (static_cast<unsigned char>(c) < 0x20 || c == 0x7f) {
      // Three octal digits: the escape cannot swallow a following digit.
      char escape[5];
      std::snprintf(escape, sizeof(escape), "\\%03o",
                    static_cast<unsigned>(static_cast<unsigned char>(c)));
      literal += escape;
      continue;
    }
    literal += c;
  }
  return literal + "\"";
}

std::string mlir::cleave::getScalarLiteral(double value, StringRef compute) {
  std::string text;
  if (std::isnan(value))
    text = "NAN";
  else if (std::isinf(value))
    text = value > 0 ? "INFINITY" : "-INFINITY";
  else {
    char buffer[32];
    std::snprintf(buffer, sizeof(buffer), "%.17g", value);
    text = buffer;
    // A floating-point literal keeps the sign of -0.0.
    if (text.find_first_of(".e") == std::string::npos)
      text += ".0";
  }
  return ("static_cast<" + compute + ">(" + text + ")").str();
}

std::string mlir::cleave::getIntegerLiteral(const APInt &value,
                                            StringRef compute) {
  if (value.getBitWidth() == 1)
    return value.isZero() ? "false" : "true";
  // INT64_MIN has no literal of its own: spell it as an expression.
  if (value.getBitWidth() == 64 && value.isMinSignedValue())
    return ("static_cast<" + compute + ">(-9223372036854775807LL - 1)").str();
  return ("static_cast<" + compute + ">(" + Twine(value.getSExtValue()) + "LL)")
      .str();
}

namespace {

ArrayRef<int64_t> getShape(Value value) {
  return cast<RankedTensorType>(value.getType()).getShape();
}

/// When a broadcast's input fills the output's trailing dimensions, output
/// element i reads input element i % period: returns the period,
/// numel(input).
std::optional<int64_t> getTrailingPeriod(ArrayRef<int64_t> inputShape,
                                         ArrayRef<int64_t> outputShape,
                                         ArrayRef<int64_t> dims) {
  int64_t rank = outputShape.size();
  int64_t inputRank = inputShape.size();
  int64_t inputElements = 1;
  for (int64_t i = 0; i < inputRank; ++i) {
    if (dims[i] != rank - inputRank + i ||
        inputShape[i] != outputShape[dims[i]])
      return std::nullopt;
    inputElements *= inputShape[i];
  }
  return inputElements;
}

/// The linear index into `input` that output element `index` of a
/// broadcast to `outputShape` reads, with `dims` as in cleave.broadcast.
std::string getBroadcastIndex(ArrayRef<int64_t> inputShape,
                              ArrayRef<int64_t> outputShape,
                              ArrayRef<int64_t> dims, StringRef index) {
  int64_t rank = outputShape.size();
  int64_t inputRank = inputShape.size();
  if (std::optional<int64_t> period =
          getTrailingPeriod(inputShape, outputShape, dims))
    return inputRank == rank
               ? index.str()
               : (index + " % " + Twine(*period)).str();

  SmallVector<int64_t> outputStrides(rank, 1);
  for (int64_t i = rank - 2; i >= 0; --i)
    outputStrides[i] = outputStrides[i + 1] * outputShape[i + 1];
  std::string expression;
  int64_t inputStride = 1;
  for (int64_t i = inputRank - 1; i >= 0; --i) {
    if (inputShape[i] != 1) {
      int64_t d = dims[i];
      std::string coordinate = index.str();
      if (outputStrides[d] != 1)
        coordinate = "(" + coordinate + " / " + std::to_string(outputStrides[d]) + ")";
      if (d != 0)
        coordinate = "(" + coordinate + " % " + std::to_string(outputShape[d]) + ")";
      if (inputStride != 1)
        coordinate += " * " + std::to_string(inputStride);
      expression = expression.empty() ? coordinate : coordinate + " + " + expression;
    }
    inputStride *= inputShape[i];
  }
  return expression.empty() ? "0" : expression;
}

const char *getComparison(ComparePredicate predicate) {
  switch (predicate) {
  case ComparePredicate::eq:
    return "==";
  case ComparePredicate::ne:
    return "!=";
  case ComparePredicate::lt:
    return "<";
  case ComparePredicate::le:
    return "<=";
  case ComparePredicate::gt:
    return ">";
  case ComparePredicate::ge:
    return ">=";
  }
  llvm_unreachable("unknown predicate");
}

/// Emits one kernel: names every scalar and prints one statement per op.
class KernelPrinter {
public:
  KernelPrinter(const KernelBody &body, ArrayRef<int64_t> shape,
                raw_ostream &os)
      : body(body), shape(shape), os(os) {}

  LogicalResult print(StringRef name, std::string &widestStorage) {
    // The widest element sets the GPU's V: one 128-bit access of it.
    int64_t widestBytes = 0;
    for (Value value : llvm::concat<const Value>(body.inputs, body.outputs)) {
      FailureOr<ElementInfo> info = getElementInfo(value.getType(), value.getLoc());
      if (failed(info))
        return failure();
      int64_t bytes = static_cast<int64_t>(
          getTotalBytes(value.getType()) /
          std::max(1.0, getNumElements(value.getType())));
      if (bytes > widestBytes) {
        widestBytes = bytes;
        widestStorage = info->storage;
      }
    }
    gpuWidth = std::max<int64_t>(1, 16 / std::max<int64_t>(1, widestBytes));

    os << "template <int V>\nCLEAVE_KERNEL void " << name << "(int64_t count";
    for (auto [i, input] : llvm::enumerate(body.inputs)) {
      FailureOr<ElementInfo> info = getElementInfo(input.getType(), input.getLoc());
      os << ",\n    const " << info->storage << " *CLEAVE_RESTRICT in" << i;
      inputIndex[input] = i;
    }
    for (auto [i, output] : llvm::enumerate(body.outputs)) {
      FailureOr<ElementInfo> info = getElementInfo(output.getType(), output.getLoc());
      os << ",\n    " << info->storage << " *CLEAVE_RESTRICT out" << i;
    }
    os << ") {\n  CLEAVE_PARALLEL_FOR(chunk, count / V) {\n"
       << "    const int64_t first = chunk * V;\n";
    // The lane loop's statements go to `lane`: the vector loads they ask
    // for must come first.
    std::string laneText;
    llvm::raw_string_ostream lane(laneText);
    statements = &lane;
    for (Operation *op : body.ops)
      if (failed(printOp(op)))
        return failure();
    for (auto [i, output] : llvm::enumerate(body.outputs)) {
      FailureOr<ElementInfo> info = getElementInfo(output.getType(), output.getLoc());
      FailureOr<std::string> value = getScalar(output);
      if (failed(value))
        return failure();
      lane << "      y" << i << "[lane] = cleave::store<" << info->storage
           << ">(" << *value << ");\n";
    }
    os << loads;
    for (auto [i, output] : llvm::enumerate(body.outputs))
      os << "    cleave::Vector<"
         << getElementInfo(output.getType(), output.getLoc())->storage
         << ", V> y" << i << ";\n";
    os << "    for (int lane = 0; lane < V; ++lane) {\n";
    if (usesIndex)
      os << "      const int64_t i = first + lane;\n";
    os << laneText << "    }\n";
    for (auto [i, output] : llvm::enumerate(body.outputs))
      os << "    cleave::storeVector(out" << i << " + first, y" << i << ");\n";
    os << "  }\n}\n";
    return success();
  }

private:
  /// The lane's element of input `index`, read V at a time from `offset`
  /// (elements past in<index>; a multiple of V): declares the vector once.
  std::string getVectorLane(unsigned index, const std::string &offset) {
    std::string &name = vectors[{index, offset}];
    if (name.empty()) {
      name = "x" + std::to_string(vectors.size() - 1);
      FailureOr<ElementInfo> info = getElementInfo(
          body.inputs[index].getType(), body.inputs[index].getLoc());
      loads += "    const cleave::Vector<" + std::string(info->storage) +
               ", V> " + name + " = cleave::loadVector<V>(in" +
               std::to_string(index) + " + " + offset + ");\n";
    }
    return "cleave::toCompute(" + name + "[lane])";
  }

  /// The scalar holding `value` at element i, loading an input on first use.
  FailureOr<std::string> getScalar(Value value) {
    if (auto it = scalars.find(value); it != scalars.end())
      return it->second;
    auto input = inputIndex.find(value);
    if (input == inputIndex.end())
      return emitError(value.getLoc(), "kernel value is neither an input nor "
                                       "computed by the kernel");
    if (getShape(value) != shape)
      return emitError(value.getLoc(), "kernel input of type ")
             << value.getType() << " is read without a broadcast";
    return define(value, getVectorLane(input->second, "first"));
  }

  FailureOr<std::string> define(Value value, const std::string &expression) {
    FailureOr<ElementInfo> info = getElementInfo(value.getType(), value.getLoc());
    if (failed(info))
      return failure();
    std::string name = "s" + std::to_string(nextScalar++);
    *statements << "      const " << info->compute << " " << name << " = "
                << expression << ";\n";
    scalars[value] = name;
    return name;
  }

  LogicalResult printOp(Operation *op) {
    SmallVector<std::string> operands;
    if (!isa<BroadcastOp>(op)) {
      for (Value operand : op->getOperands()) {
        FailureOr<std::string> scalar = getScalar(operand);
        if (failed(scalar))
          return failure();
        operands.push_back(*scalar);
      }
    }
    FailureOr<ElementInfo> info =
        getElementInfo(op->getResult(0).getType(), op->getLoc());
    if (failed(info))
      return failure();
    std::string compute = info->compute;
    auto call = [&](StringRef function) {
      return (function + "(" + llvm::join(operands, ", ") + ")").str();
    };
    auto binary = [&](StringRef symbol) {
      return operands[0] + " " + symbol.str() + " " + operands[1];
    };

    FailureOr<std::string> expression =
        llvm::TypeSwitch<Operation *, FailureOr<std::string>>(op)
            .Case([&](AddOp) { return binary("+"); })
            .Case([&](SubOp) { return binary("-"); })
            .Case([&](MulOp) { return binary("*"); })
            .Case([&](DivOp) { return call("cleave::divide"); })
            .Case([&](MaxOp) { return call("cleave::max"); })
            .Case([&](MinOp) { return call("cleave::min"); })
            .Case([&](NegOp) { return "-" + operands[0]; })
            .Case([&](ExpOp) { return call("cleave::exp"); })
            .Case([&](LogOp) { return call("cleave::log"); })
            .Case([&](TanhOp) { return call("cleave::tanh"); })
            .Case([&](SqrtOp) { return call("cleave::sqrt"); })
            .Case([&](RsqrtOp) { return call("cleave::rsqrt"); })
            .Case([&](GeluOp) { return call("cleave::gelu"); })
            .Case([&](ReluOp) { return call("cleave::relu"); })
            .Case([&](SiluOp) { return call("cleave::silu"); })
            .Case([&](CompareOp compare) {
              return binary(getComparison(compare.getPredicate()));
            })
            .Case([&](SelectOp) {
              return operands[0] + " ? " + operands[1] + " : " + operands[2];
            })
            .Case([&](CastOp) {
              // Convert to the result's storage type, then widen again, so
              // later ops see exactly the stored value.
              return "cleave::toCompute(cleave::convert<" +
                     std::string(info->storage) + ">(" + operands[0] + "))";
            })
            .Case([&](FillOp fill) {
              return "cleave::toCompute(cleave::convert<" +
                     std::string(info->storage) + ">(" +
                     getScalarLiteral(fill.getValue().convertToDouble(), "double") +
                     "))";
            })
            .Case([&](ConstantOp constant) -> FailureOr<std::string> {
              auto splat = dyn_cast<SplatElementsAttr>(constant.getValue());
              if (!splat)
                return constant.emitOpError("only splat constants can be part "
                                            "of a kernel");
              Attribute element = splat.getSplatValue<Attribute>();
              std::string literal =
                  isa<FloatAttr>(element)
                      ? getScalarLiteral(
                            cast<FloatAttr>(element).getValueAsDouble(), compute)
                      : getIntegerLiteral(cast<IntegerAttr>(element).getValue(),
                                          compute);
              return "cleave::toCompute(cleave::convert<" +
                     std::string(info->storage) + ">(" + literal + "))";
            })
            .Case([&](BroadcastOp broadcast) -> FailureOr<std::string> {
              auto input = inputIndex.find(broadcast.getInput());
              if (input == inputIndex.end())
                return broadcast.emitOpError("inside a kernel must broadcast a "
                                             "kernel input");
              // Repeating every multiple of V elements, V consecutive
              // elements are consecutive in the input too.
              ArrayRef<int64_t> inputShape = getShape(broadcast.getInput());
              std::optional<int64_t> period = getTrailingPeriod(
                  inputShape, shape, broadcast.getDims());
              if (period && *period % gpuWidth == 0)
                return getVectorLane(input->second,
                                     "first % " + std::to_string(*period));
              usesIndex = true;
              return "cleave::toCompute(in" + std::to_string(input->second) +
                     "[" +
                     getBroadcastIndex(inputShape, shape, broadcast.getDims(),
                                       "i") +
                     "])";
            })
            .Default([&](Operation *other) -> FailureOr<std::string> {
              return other->emitOpError("cannot be emitted as part of a kernel");
            });
    if (failed(expression))
      return failure();
    *statements << "      // " << op->getName();
    if (std::string where = getLocationString(op->getLoc()); !where.empty())
      *statements << " at " << where;
    *statements << "\n";
    return success(succeeded(define(op->getResult(0), *expression)));
  }

  const KernelBody &body;
  ArrayRef<int64_t> shape;
  raw_ostream &os;
  /// Where the lane loop's statements go.
  raw_ostream *statements = nullptr;
  /// The vector loads before the lane loop, and their names by (input,
  /// offset).
  std::string loads;
  std::map<std::pair<unsigned, std::string>, std::string> vectors;
  /// V on the GPU: a 128-bit access of the widest element.
  int64_t gpuWidth = 1;
  /// Whether a lane reads an input element by element through its index.
  bool usesIndex = false;
  DenseMap<Value, unsigned> inputIndex;
  DenseMap<Value, std::string> scalars;
  unsigned nextScalar = 0;
};

} // namespace

LogicalResult mlir::cleave::emitKernel(StringRef name, const KernelBody &body,
                                       ArrayRef<int64_t> shape,
                                       raw_ostream &os,
                                       std::string &widestStorage) {
  return KernelPrinter(body, shape, os).print(name, widestStorage);
}
