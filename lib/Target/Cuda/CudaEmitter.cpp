//===- CudaEmitter.cpp - Host code and program descriptors ----------------===//
//
// For each function: its kernels, then a host function that binds the
// arguments, walks the ops in program order (kernel launches and runtime
// calls on arena pointers from the memory plan) and returns result
// pointers, then the Program descriptor the runtime's runner reads.
//
//===----------------------------------------------------------------------===//

#include "cleave/Target/Cuda/CudaEmitter.h"

#include "EmitterSupport.h"

#include "cleave/Dialect/Cleave/IR/CleaveOps.h"

#include "mlir/Dialect/Func/IR/FuncOps.h"
#include "mlir/Tools/mlir-translate/Translation.h"
#include "llvm/ADT/StringExtras.h"
#include "llvm/ADT/StringSet.h"
#include "llvm/ADT/TypeSwitch.h"

#include <cstdio>

using namespace mlir;
using namespace mlir::cleave;

namespace {

constexpr int64_t kMaxRank = 8; // cleave::rt::kMaxRank

ArrayRef<int64_t> getShape(Value value) {
  return cast<RankedTensorType>(value.getType()).getShape();
}

int64_t getElementCount(ArrayRef<int64_t> shape) {
  int64_t count = 1;
  for (int64_t dim : shape)
    count *= dim;
  return count;
}

std::string getShapeLiteral(ArrayRef<int64_t> shape) {
  std::string text = "{" + std::to_string(shape.size()) + ", {";
  for (auto [i, dim] : llvm::enumerate(shape))
    text += (i ? ", " : "") + std::to_string(dim);
  return text + "}}";
}

std::string getArrayLiteral(ArrayRef<int64_t> values) {
  std::string text = "{";
  for (auto [i, value] : llvm::enumerate(values))
    text += (i ? ", " : "") + std::to_string(value);
  return text + "}";
}

/// A C++ identifier for symbol `name`: other characters become '_', and a
/// name that could clash with a keyword, `main` or the runtime's namespace
/// gets a prefix. `taken` keeps identifiers unique within the file.
std::string getIdentifier(StringRef name, llvm::StringSet<> &taken) {
  static const llvm::StringSet<> kReserved = {
      "main",   "cleave", "auto",   "bool",    "break",  "case",   "char",
      "class",  "const",  "default", "delete", "do",     "double", "else",
      "enum",   "float",  "for",    "if",      "int",    "long",   "namespace",
      "new",    "return", "short",  "signed",  "sizeof", "static", "struct",
      "switch", "this",   "template", "typedef", "union", "unsigned", "void",
      "while",  "arena",  "context", "arguments", "results"};
  std::string identifier;
  for (char c : name)
    identifier += llvm::isAlnum(c) ? c : '_';
  if (identifier.empty() || llvm::isDigit(identifier[0]) ||
      kReserved.contains(identifier) || identifier[0] == '_')
    identifier = "fn_" + identifier;
  std::string unique = identifier;
  for (int suffix = 1; !taken.insert(unique).second; ++suffix)
    unique = identifier + "_" + std::to_string(suffix);
  return unique;
}

/// What a stage's forward returns and its backward takes for one stash.
std::string getStashName(IntegerAttr id) {
  return "stash." + std::to_string(id.getInt());
}

/// The mesh of a partitioned module and the axis groups its collectives
/// use, numbered as the emitted calls name them.
struct MeshGroups {
  bool partitioned = false;
  SmallVector<std::string> groups;
  /// The size of the mesh's pp axis: stage s runs on pp index s % size.
  int64_t pipelineRanks = 1;
};

/// Emits one function: kernels first (into `kernels`), host code second.
class FunctionEmitter {
public:
  FunctionEmitter(func::FuncOp function, StringRef name, raw_ostream &kernels,
                  raw_ostream &host, CudaEmitterSummary &summary,
                  MeshGroups &meshGroups)
      : function(function), name(name.str()), kernels(kernels), host(host),
        summary(summary), meshGroups(meshGroups) {}

  LogicalResult emit() {
    auto arenaBytes =
        function->getAttrOfType<IntegerAttr>(CleaveDialect::kArenaBytesAttrName);
    if (!arenaBytes)
      return function.emitError("function '")
             << name << "' has no memory plan: run cleave-plan-memory first";
    if (!function.getBody().hasOneBlock())
      return function.emitError("can only emit single-block functions");
    summary.arenaBytes = arenaBytes.getInt();

    host << "cleave::rt::Status " << name
         << "(cleave::rt::Context &context, void *const *arguments,\n"
         << "    void **results, uint8_t *arena) {\n";
    if (failed(bindArguments()))
      return failure();
    for (Operation &op : function.getBody().front())
      if (failed(emitOp(op)))
        return failure();
    host << "  return cleave::rt::Status::success();\n}\n\n";
    return emitDescriptor(arenaBytes.getInt());
  }

private:
  LogicalResult bindArguments() {
    for (BlockArgument argument : function.getArguments()) {
      auto type = dyn_cast<RankedTensorType>(argument.getType());
      if (!type || !type.hasStaticShape() || type.getRank() > kMaxRank ||
          type.getNumElements() == 0)
        return function.emitError("argument ")
               << argument.getArgNumber()
               << " must be a non-empty static tensor of rank <= " << kMaxRank
               << ", got " << argument.getType();
      FailureOr<ElementInfo> info = getElementInfo(type, function.getLoc());
      if (failed(info))
        return failure();
      std::string pointer = "arg" + std::to_string(argument.getArgNumber());
      host << "  auto *" << pointer << " = static_cast<" << info->storage
           << " *>(arguments[" << argument.getArgNumber() << "]);\n";
      pointers[argument] = pointer;
    }
    return success();
  }

  /// Declares the arena pointer of each result of `op`.
  LogicalResult bindResults(Operation &op) {
    auto offsets =
        op.getAttrOfType<DenseI64ArrayAttr>(CleaveDialect::kArenaOffsetsAttrName);
    if (!offsets)
      return op.emitOpError("has no arena offset: run cleave-plan-memory first");
    for (auto [result, offset] : llvm::zip(op.getResults(), offsets.asArrayRef())) {
      auto type = cast<RankedTensorType>(result.getType());
      if (type.getRank() > kMaxRank)
        return op.emitOpError("results of rank > ") << kMaxRank
                                                    << " are not supported";
      if (type.getNumElements() == 0)
        return op.emitOpError("cannot emit the empty tensor ") << type;
      FailureOr<ElementInfo> info = getElementInfo(type, op.getLoc());
      if (failed(info))
        return failure();
      int64_t bytes = static_cast<int64_t>(getTotalBytes(type));
      if (offset + bytes > summary.arenaBytes)
        return op.emitOpError("arena offset ")
               << offset << " + " << bytes << " bytes lies outside the "
               << summary.arenaBytes << "-byte arena";
      std::string pointer = "v" + std::to_string(nextValue++);
      host << "  auto *" << pointer << " = reinterpret_cast<" << info->storage
           << " *>(arena + " << offset << ");\n";
      pointers[result] = pointer;
    }
    return success();
  }

  std::string get(Value value) { return pointers.lookup(value); }

  std::string getLocation(Operation &op) {
    std::string where = getLocationString(op.getLoc());
    return getStringLiteral(where.empty() ? op.getName().getStringRef().str()
                                          : where);
  }

  std::string getDType(Value value) {
    return std::string("cleave::rt::DType::") +
           getElementInfo(value.getType(), value.getLoc())->dtype;
  }

  /// The op's entry in the program's op table: what the profiler reports.
  std::string getOpInfo(Operation &op) {
    std::string layer;
    if (auto tag = op.getAttrOfType<LayerAttr>(CleaveDialect::kLayerAttrName))
      layer = tag.getKind() == LayerKind::Embed  ? "embed"
              : tag.getKind() == LayerKind::Head ? "head"
                                                 : std::to_string(tag.getIndex());
    double flops = 0;
    double bytes = getTotalBytes(op.getOperandTypes()) +
                   getTotalBytes(op.getResultTypes());
    if (auto cost = dyn_cast<CostOpInterface>(op)) {
      flops = cost.getFlops();
      bytes = cost.getBytesRead() + cost.getBytesWritten();
    }
    Type type = op.getNumResults() ? op.getResult(0).getType()
                                   : op.getOperand(0).getType();
    FailureOr<ElementInfo> info = getElementInfo(type, op.getLoc());
    char numbers[64];
    std::snprintf(numbers, sizeof(numbers), "%.17g, %.17g", flops, bytes);
    return "{" + getStringLiteral(op.getName().getStringRef()) + ", " +
           getStringLiteral(getLocationString(op.getLoc())) + ", " +
           getStringLiteral(layer) + ", " +
           getStringLiteral(succeeded(info) ? info->dtype : "") + ", " +
           numbers + "}";
  }

  LogicalResult emitOp(Operation &op) {
    host << "  // " << op.getName();
    if (std::string where = getLocationString(op.getLoc()); !where.empty())
      host << " at " << where;
    host << "\n";
    // Moving nothing takes no time: only ops that run are timed.
    if (isa<func::ReturnOp, ReshapeOp>(op))
      return emitOpBody(op);
    int index = opInfos.size();
    opInfos.push_back(getOpInfo(op));
    host << "  cleave::rt::beginOp(context, " << index << ");\n";
    if (failed(emitOpBody(op)))
      return failure();
    host << "  cleave::rt::endOp(context, " << index << ");\n";
    return success();
  }

  LogicalResult emitOpBody(Operation &op) {
    if (auto ret = dyn_cast<func::ReturnOp>(op)) {
      for (auto [i, value] : llvm::enumerate(ret.getOperands()))
        host << "  results[" << i << "] = " << get(value) << ";\n";
      return success();
    }
    if (auto reshape = dyn_cast<ReshapeOp>(op)) {
      // Same bytes, new shape: an alias.
      std::string pointer = "v" + std::to_string(nextValue++);
      host << "  auto *" << pointer << " = " << get(reshape.getInput()) << ";\n";
      pointers[reshape.getResult()] = pointer;
      return success();
    }
    if (auto send = dyn_cast<SendOp>(op))
      return emitTransfer(op, send.getInput(), send.getPeer(), send.getTag());
    if (failed(bindResults(op)))
      return failure();
    if (auto recv = dyn_cast<RecvOp>(op))
      return emitTransfer(op, recv.getResult(), recv.getPeer(), recv.getTag());
    if (auto fused = dyn_cast<FusedOp>(op)) {
      KernelBody body;
      Block &block = fused.getBody().front();
      body.inputs.assign(block.args_begin(), block.args_end());
      for (Operation &inner : block.without_terminator())
        body.ops.push_back(&inner);
      body.outputs.assign(block.getTerminator()->operand_begin(),
                          block.getTerminator()->operand_end());
      return emitKernelLaunch(op, body, fused.getInputs());
    }
    if (isFusibleElementwise(&op) || isa<BroadcastOp>(op) ||
        (isa<ConstantOp>(op) &&
         isa<SplatElementsAttr>(cast<ConstantOp>(op).getValue()))) {
      KernelBody body;
      body.inputs.assign(op.operand_begin(), op.operand_end());
      body.ops.push_back(&op);
      body.outputs.assign(op.result_begin(), op.result_end());
      return emitKernelLaunch(op, body, op.getOperands());
    }
    ++summary.libraryCalls;
    return llvm::TypeSwitch<Operation *, LogicalResult>(&op)
        .Case([&](MatmulOp matmul) { return emitMatmul(matmul); })
        .Case([&](AttentionOp attention) { return emitAttention(attention); })
        .Case([&](SoftmaxOp softmax) {
          Value input = softmax.getInput();
          return call("softmax", {getDType(input), getRowsAndColumns(input),
                                  get(input), get(softmax.getResult())}, op);
        })
        .Case([&](LayerNormOp norm) {
          Value input = norm.getInput();
          return call("layerNorm",
                      {getDType(input), getRowsAndColumns(input), get(input),
                       get(norm.getScale()), get(norm.getBias()),
                       getScalarLiteral(norm.getEpsilon().convertToDouble(), "double"),
                       get(norm.getResult())}, op);
        })
        .Case([&](RmsNormOp norm) {
          Value input = norm.getInput();
          return call("rmsNorm",
                      {getDType(input), getRowsAndColumns(input), get(input),
                       get(norm.getScale()),
                       getScalarLiteral(norm.getEpsilon().convertToDouble(), "double"),
                       get(norm.getResult())}, op);
        })
        .Case([&](CrossEntropyOp loss) {
          return call("crossEntropy",
                      {getDType(loss.getLogits()), getDType(loss.getTargets()),
                       std::to_string(getElementCount(getShape(loss.getTargets()))),
                       std::to_string(getShape(loss.getLogits()).back()),
                       get(loss.getLogits()), get(loss.getTargets()),
                       get(loss.getResult()), addIndexSite(op)}, op);
        })
        .Case([&](EmbeddingOp embedding) {
          ArrayRef<int64_t> table = getShape(embedding.getTable());
          return call("embedding",
                      {getDType(embedding.getTable()), getDType(embedding.getIndices()),
                       std::to_string(getElementCount(getShape(embedding.getIndices()))),
                       std::to_string(table[0]), std::to_string(table[1]),
                       get(embedding.getTable()), get(embedding.getIndices()),
                       get(embedding.getResult()), addIndexSite(op)}, op);
        })
        .Case([&](RotaryOp rotary) {
          ArrayRef<int64_t> shape = getShape(rotary.getInput());
          int64_t seq = shape[shape.size() - 2], dim = shape.back();
          return call("rotary",
                      {getDType(rotary.getInput()),
                       std::to_string(getElementCount(shape) / (seq * dim)),
                       std::to_string(seq), std::to_string(dim),
                       getScalarLiteral(rotary.getBase().convertToDouble(), "double"),
                       rotary.getInverse() ? "true" : "false",
                       get(rotary.getInput()), get(rotary.getResult())}, op);
        })
        .Case([&](SoftmaxGradOp grad) {
          Value output = grad.getOutput();
          return call("softmaxGrad",
                      {getDType(output), getRowsAndColumns(output), get(output),
                       get(grad.getOutputGrad()), get(grad.getResult())}, op);
        })
        .Case([&](CrossEntropyGradOp grad) {
          return call("crossEntropyGrad",
                      {getDType(grad.getLogits()), getDType(grad.getTargets()),
                       getRowsAndColumns(grad.getLogits()), get(grad.getLogits()),
                       get(grad.getTargets()), get(grad.getLossGrad()),
                       get(grad.getResult()), addIndexSite(op)}, op);
        })
        .Case([&](LayerNormGradOp grad) {
          Value input = grad.getInput();
          return call("layerNormGrad",
                      {getDType(input), getRowsAndColumns(input), get(input),
                       get(grad.getScale()), get(grad.getOutputGrad()),
                       getScalarLiteral(grad.getEpsilon().convertToDouble(), "double"),
                       get(grad.getInputGrad()), get(grad.getScaleGrad()),
                       get(grad.getBiasGrad())}, op);
        })
        .Case([&](RmsNormGradOp grad) {
          Value input = grad.getInput();
          return call("rmsNormGrad",
                      {getDType(input), getRowsAndColumns(input), get(input),
                       get(grad.getScale()), get(grad.getOutputGrad()),
                       getScalarLiteral(grad.getEpsilon().convertToDouble(), "double"),
                       get(grad.getInputGrad()), get(grad.getScaleGrad())}, op);
        })
        .Case([&](AttentionGradOp grad) { return emitAttentionGrad(grad); })
        .Case([&](ScatterAddOp scatter) {
          ArrayRef<int64_t> table = getShape(scatter.getResult());
          return call("scatterAdd",
                      {getDType(scatter.getUpdates()), getDType(scatter.getIndices()),
                       std::to_string(getElementCount(getShape(scatter.getIndices()))),
                       std::to_string(table[0]), std::to_string(table[1]),
                       get(scatter.getIndices()), get(scatter.getUpdates()),
                       get(scatter.getResult()), addIndexSite(op)}, op);
        })
        .Case([&](PadOp padOp) {
          std::string offsets = declareArray("int64_t", padOp.getOffsets());
          return call("pad",
                      {getElementBytes(padOp.getInput()),
                       getShapeLiteral(getShape(padOp.getInput())), offsets,
                       getShapeLiteral(getShape(padOp.getResult())),
                       get(padOp.getInput()), get(padOp.getResult())}, op);
        })
        .Case([&](ReduceSumOp reduce) { return emitReduce(op, "Sum", reduce.getDims()); })
        .Case([&](ReduceMeanOp reduce) { return emitReduce(op, "Mean", reduce.getDims()); })
        .Case([&](ReduceMaxOp reduce) { return emitReduce(op, "Max", reduce.getDims()); })
        .Case([&](TransposeOp transpose) {
          std::string perm = declareArray("int", transpose.getPerm());
          return call("transpose",
                      {getElementBytes(transpose.getInput()),
                       getShapeLiteral(getShape(transpose.getInput())), perm,
                       get(transpose.getInput()), get(transpose.getResult())}, op);
        })
        .Case([&](SliceOp slice) {
          std::string offsets = declareArray("int64_t", slice.getOffsets());
          return call("extractSlice",
                      {getElementBytes(slice.getInput()),
                       getShapeLiteral(getShape(slice.getInput())), offsets,
                       getShapeLiteral(getShape(slice.getResult())),
                       get(slice.getInput()), get(slice.getResult())}, op);
        })
        .Case([&](ConcatOp concat) { return emitConcat(concat); })
        .Case([&](IotaOp iota) {
          return call("iota", {getShapeLiteral(getShape(iota.getResult())),
                               std::to_string(iota.getDim()),
                               get(iota.getResult())}, op);
        })
        .Case<AllReduceOp, AllGatherOp, ReduceScatterOp, AllToAllOp,
              LocalSliceOp, DeviceIndexOp>(
            [&](Operation *collective) { return emitCollective(*collective); })
        .Case([&](ConstantOp constant) { return emitDenseConstant(constant); })
        .Default([&](Operation *other) {
          return other->emitOpError("cannot be emitted to CUDA C++");
        });
  }

  /// The index of the axis group `axes` in the module's group table.
  std::string getGroup(ArrayAttr axes) {
    std::string key;
    for (Attribute axis : axes)
      key += (key.empty() ? "" : ",") + cast<StringAttr>(axis).str();
    auto *it = llvm::find(meshGroups.groups, key);
    if (it == meshGroups.groups.end()) {
      meshGroups.groups.push_back(key);
      it = std::prev(meshGroups.groups.end());
    }
    return std::to_string(it - meshGroups.groups.begin());
  }

  /// cleave.send / cleave.recv of `value` with the rank of stage `peer`
  /// along the pp axis.
  LogicalResult emitTransfer(Operation &op, Value value, int64_t peer,
                             int64_t tag) {
    Builder builder(op.getContext());
    std::string group = getGroup(builder.getStrArrayAttr({"pp"}));
    return call(isa<SendOp>(op) ? "sendTo" : "receiveFrom",
                {group, std::to_string(peer % meshGroups.pipelineRanks),
                 std::to_string(tag),
                 std::to_string(static_cast<int64_t>(getTotalBytes(value.getType()))),
                 get(value)},
                op);
  }

  /// A collective or device_index: a runtime call on the rank's
  /// sub-communicator of the op's axes.
  LogicalResult emitCollective(Operation &op) {
    auto reduction = [](ReductionKind kind) {
      return std::string(kind == ReductionKind::max ? "cleave::rt::ReduceKind::Max"
                                                    : "cleave::rt::ReduceKind::Sum");
    };
    if (auto index = dyn_cast<DeviceIndexOp>(op))
      return call("deviceIndex", {getGroup(index.getAxes()), get(index.getResult())},
                  op);
    Value input = op.getOperand(0), result = op.getResult(0);
    std::string shape = getShapeLiteral(getShape(input));
    return llvm::TypeSwitch<Operation *, LogicalResult>(&op)
        .Case([&](AllReduceOp reduce) {
          return call("allReduce",
                      {getGroup(reduce.getAxes()), getDType(input),
                       std::to_string(getElementCount(getShape(input))),
                       reduction(reduce.getKind()), get(input), get(result)}, op);
        })
        .Case([&](AllGatherOp gather) {
          return call("allGather",
                      {getGroup(gather.getAxes()), getElementBytes(input), shape,
                       std::to_string(gather.getDim()), get(input), get(result)},
                      op);
        })
        .Case([&](ReduceScatterOp scatter) {
          return call("reduceScatter",
                      {getGroup(scatter.getAxes()), getDType(input), shape,
                       std::to_string(scatter.getDim()),
                       reduction(scatter.getKind()), get(input), get(result)}, op);
        })
        .Case([&](AllToAllOp exchange) {
          return call("allToAll",
                      {getGroup(exchange.getAxes()), getElementBytes(input), shape,
                       std::to_string(exchange.getSplitDim()),
                       std::to_string(exchange.getConcatDim()), get(input),
                       get(result)}, op);
        })
        .Case([&](LocalSliceOp slice) {
          return call("localSlice",
                      {getGroup(slice.getAxes()), getElementBytes(input), shape,
                       std::to_string(slice.getDim()), get(input), get(result)},
                      op);
        })
        .Default([](Operation *other) {
          return other->emitOpError("is not a collective");
        });
  }

  /// The per-rank split of the argument or result with attributes `attrs`,
  /// as the runtime reads it ("dp;" for [[dp], []]), "nullptr" when the
  /// function is not partitioned.
  FailureOr<std::string> getSplit(DictionaryAttr attrs, Location loc) {
    if (!meshGroups.partitioned)
      return std::string("nullptr");
    auto block = attrs ? attrs.getAs<ShardingAttr>(CleaveDialect::kBlockAttrName)
                       : ShardingAttr();
    if (!block)
      return std::string("\"\"");
    if (!block.getPartialAxes().empty())
      return emitError(loc, "a pending sum (partial) cannot cross the "
                            "program's boundary: the runtime passes complete "
                            "values only");
    std::string split;
    for (unsigned dim = 0; dim < block.getDims().size(); ++dim) {
      if (dim)
        split += ";";
      split += llvm::join(block.getDimAxes(dim), ",");
    }
    return getStringLiteral(split);
  }

  /// "rows, cols" of a row-wise op over the last dimension of `value`.
  std::string getRowsAndColumns(Value value) {
    ArrayRef<int64_t> shape = getShape(value);
    int64_t cols = shape.back();
    return std::to_string(getElementCount(shape) / cols) + ", " +
           std::to_string(cols);
  }

  std::string getElementBytes(Value value) {
    return std::to_string(static_cast<int64_t>(
        getTotalBytes(value.getType()) / std::max(1.0, getNumElements(value.getType()))));
  }

  /// A named constant array in the host code; returns its name.
  std::string declareArray(StringRef type, ArrayRef<int64_t> values) {
    if (values.empty())
      return "nullptr";
    std::string array = "c" + std::to_string(nextArray++);
    host << "  static const " << type << " " << array << "[] = "
         << getArrayLiteral(values) << ";\n";
    return array;
  }

  std::string addIndexSite(Operation &op) {
    std::string where = getLocationString(op.getLoc());
    indexSites.push_back(op.getName().stripDialect().str() +
                         (where.empty() ? "" : " at " + where));
    return std::to_string(indexSites.size());
  }

  LogicalResult call(StringRef function, ArrayRef<std::string> arguments,
                     Operation &op) {
    host << "  CLEAVE_RETURN_IF_ERROR(cleave::rt::" << function << "(context";
    for (const std::string &argument : arguments)
      host << ", " << argument;
    host << ",\n      " << getLocation(op) << "));\n";
    return success();
  }

  LogicalResult emitKernelLaunch(Operation &op, const KernelBody &body,
                                 ValueRange operands) {
    std::string kernel = name + "_k" + std::to_string(summary.kernels++);
    int named = 0;
    for (Operation *inner : body.ops) {
      if (isa<BroadcastOp>(inner) || named == 3)
        continue;
      kernel += "_" + inner->getName().stripDialect().str();
      ++named;
    }
    ArrayRef<int64_t> shape = getShape(body.outputs.front());
    kernels << "// " << op.getName();
    if (std::string where = getLocationString(op.getLoc()); !where.empty())
      kernels << " at " << where;
    kernels << "\n";
    std::string widest;
    if (failed(emitKernel(kernel, body, shape, kernels, widest)))
      return failure();
    kernels << "\n";
    int64_t count = getElementCount(shape);
    std::string pointers;
    for (Value operand : operands)
      pointers += ", " + get(operand);
    for (Value result : op.getResults())
      pointers += ", " + get(result);
    // V elements per iteration where every buffer allows 128-bit accesses
    // (never on the CPU, where the width is 1), else one.
    std::string width = "cleave::kVectorWidth<" + widest + ">";
    host << "  if (cleave::canUseVectors<" << widest << ">(" << count << ", {"
         << StringRef(pointers).drop_front(2) << "}))\n    CLEAVE_LAUNCH(context, "
         << kernel << "<" << width << ">, " << count << " / " << width
         << ")(" << count << pointers << ");\n  else\n    CLEAVE_LAUNCH(context, "
         << kernel << "<1>, " << count << ")(" << count << pointers
         << ");\n  CLEAVE_RETURN_IF_ERROR(context.checkLaunch("
         << getStringLiteral(kernel) << ", " << getLocation(op) << "));\n";
    return success();
  }

  LogicalResult emitMatmul(MatmulOp matmul) {
    ArrayRef<int64_t> lhs = getShape(matmul.getLhs());
    ArrayRef<int64_t> rhs = getShape(matmul.getRhs());
    ArrayRef<int64_t> result = getShape(matmul.getResult());
    int64_t m = result[result.size() - 2], n = result.back();
    int64_t k = matmul.getTransposeLhs() ? lhs[lhs.size() - 2] : lhs.back();
    int64_t batch = getElementCount(result) / (m * n);
    std::string args = "g" + std::to_string(nextArray++);
    host << "  cleave::rt::GemmArgs " << args << ";\n  " << args
         << ".batch = " << batch << ";\n  " << args << ".m = " << m << ";\n  "
         << args << ".n = " << n << ";\n  " << args << ".k = " << k << ";\n  "
         << args << ".transposeA = " << (matmul.getTransposeLhs() ? "true" : "false")
         << ";\n  " << args << ".transposeB = "
         << (matmul.getTransposeRhs() ? "true" : "false") << ";\n  " << args
         << ".a = " << get(matmul.getLhs()) << ";\n  " << args
         << ".b = " << get(matmul.getRhs()) << ";\n  " << args
         << ".c = " << get(matmul.getResult()) << ";\n  " << args
         << ".strideA = " << (lhs.size() > 2 ? m * k : 0) << ";\n  " << args
         << ".strideB = " << (rhs.size() > 2 ? k * n : 0) << ";\n  " << args
         << ".strideC = " << m * n << ";\n";
    return call("gemm", {getDType(matmul.getResult()), args},
                *matmul.getOperation());
  }

  /// Declares a cleave::rt::AttentionArgs for q, k, v; returns its name.
  std::string declareAttentionArgs(Value query, Value key, Value value,
                                   bool causal, double scale) {
    ArrayRef<int64_t> q = getShape(query);
    ArrayRef<int64_t> k = getShape(key);
    int64_t s = q[q.size() - 2], d = q.back(), t = k[k.size() - 2];
    std::string args = "g" + std::to_string(nextArray++);
    host << "  cleave::rt::AttentionArgs " << args << ";\n  " << args
         << ".batch = " << getElementCount(q) / (s * d) << ";\n  " << args
         << ".s = " << s << ";\n  " << args << ".t = " << t << ";\n  " << args
         << ".d = " << d << ";\n  " << args << ".causal = "
         << (causal ? "true" : "false") << ";\n  " << args
         << ".scale = " << getScalarLiteral(scale, "double") << ";\n  " << args
         << ".q = " << get(query) << ";\n  " << args << ".k = " << get(key)
         << ";\n  " << args << ".v = " << get(value) << ";\n";
    return args;
  }

  LogicalResult emitAttention(AttentionOp attention) {
    std::string args = declareAttentionArgs(
        attention.getQuery(), attention.getKey(), attention.getValue(),
        attention.getCausal(), attention.getEffectiveScale());
    host << "  " << args << ".output = " << get(attention.getResult()) << ";\n";
    return call("attention", {getDType(attention.getResult()), args},
                *attention.getOperation());
  }

  LogicalResult emitAttentionGrad(AttentionGradOp grad) {
    std::string forward = declareAttentionArgs(
        grad.getQuery(), grad.getKey(), grad.getValue(), grad.getCausal(),
        grad.getEffectiveScale());
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

  LogicalResult emitReduce(Operation &op, StringRef kind, ArrayRef<int64_t> dims) {
    uint32_t mask = 0;
    for (int64_t dim : dims)
      mask |= 1u << dim;
    Value input = op.getOperand(0);
    return call("reduce",
                {getDType(input), ("cleave::rt::ReduceKind::" + kind).str(),
                 getShapeLiteral(getShape(input)), std::to_string(mask) + "u",
                 get(input), get(op.getResult(0))}, op);
  }

  LogicalResult emitConcat(ConcatOp concat) {
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

  /// A non-splat constant: host data copied into the arena when reached.
  LogicalResult emitDenseConstant(ConstantOp constant) {
    auto elements = dyn_cast<DenseElementsAttr>(constant.getValue());
    if (!elements)
      return constant.emitOpError("only dense constants can be emitted");
    FailureOr<ElementInfo> info = getElementInfo(elements.getType(), constant.getLoc());
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

  /// `learning_rate` -> `LearningRate`: the runtime's enumerator.
  static std::string getEnumeratorName(StringRef irName) {
    std::string name;
    for (StringRef word : llvm::split(irName, '_'))
      if (!word.empty()) {
        name += llvm::toUpper(word.front());
        name += word.drop_front();
      }
    return name;
  }

  /// A parameter's `cleave.init` as the runtime's InitRule initializer.
  static std::string getInitLiteral(InitAttr init) {
    if (!init)
      return "{}";
    char stddev[32];
    std::snprintf(stddev, sizeof(stddev), "%.17g", init.getStandardDeviation());
    return "{cleave::rt::InitRule::Kind::" +
           getEnumeratorName(stringifyInitKind(init.getKind())) + ", " +
           stddev + "}";
  }

  /// The argument whose rows the token ids `tokens` index: the table of an
  /// embedding that reads them (through casts), if any.
  std::optional<unsigned> getIndexedTable(BlockArgument tokens) {
    for (Operation *user : tokens.getUsers()) {
      auto embedding = dyn_cast<EmbeddingOp>(user);
      if (!embedding || embedding.getIndices() != tokens)
        continue;
      Value table = embedding.getTable();
      while (auto cast = table.getDefiningOp<CastOp>())
        table = cast.getInput();
      if (auto argument = dyn_cast<BlockArgument>(table);
          argument && argument.getOwner() == tokens.getOwner())
        return argument.getArgNumber();
    }
    return std::nullopt;
  }

  LogicalResult emitDescriptor(int64_t arenaBytes) {
    std::string prefix = "k_" + name;
    host << "const cleave::rt::ArgumentSpec " << prefix << "_arguments[] = {\n";
    for (BlockArgument argument : function.getArguments()) {
      unsigned index = argument.getArgNumber();
      auto param = function.getArgAttrOfType<StringAttr>(index, CleaveDialect::kParamAttrName);
      auto input = function.getArgAttrOfType<StringAttr>(index, CleaveDialect::kInputAttrName);
      auto state = function.getArgAttrOfType<StringAttr>(index, CleaveDialect::kStateAttrName);
      auto stash = function.getArgAttrOfType<IntegerAttr>(index, CleaveDialect::kStashAttrName);
      std::string tensorName = param   ? param.str()
                               : input ? input.str()
                               : state ? state.str()
                               : stash ? getStashName(stash)
                                       : "arg" + std::to_string(index);
      FailureOr<std::string> split =
          getSplit(function.getArgAttrDict(index), function.getLoc());
      if (failed(split))
        return failure();
      host << "    {{" << getStringLiteral(tensorName) << ", " << getDType(argument)
           << ", " << getShapeLiteral(getShape(argument)) << "}, cleave::rt::ArgumentKind::"
           << (param   ? "Param"
               : state ? "State"
               : stash ? "Stash"
                       : "Input")
           << ", " << *split;
      // Parameters say how they start, inputs what the training loop feeds
      // them, and token ids which table they index.
      auto init = function.getArgAttrOfType<InitAttr>(
          index, CleaveDialect::kInitAttrName);
      auto role = function.getArgAttrOfType<InputRoleAttr>(
          index, CleaveDialect::kInputRoleAttrName);
      if (init || role)
        host << ", " << getInitLiteral(init);
      if (role) {
        host << ", cleave::rt::InputRole::"
             << getEnumeratorName(stringifyInputRole(role.getValue()));
        if (std::optional<unsigned> table = getIndexedTable(argument))
          host << ", " << *table;
      }
      host << "},\n";
    }
    if (function.getNumArguments() == 0)
      host << "    {{\"\", cleave::rt::DType::F32, {0, {}}}, "
              "cleave::rt::ArgumentKind::Input, nullptr},\n";
    host << "};\n";

    host << "const cleave::rt::ResultSpec " << prefix << "_results[] = {\n";
    for (auto [i, type] : llvm::enumerate(function.getResultTypes())) {
      auto tensor = dyn_cast<RankedTensorType>(type);
      if (!tensor || !tensor.hasStaticShape() || tensor.getRank() > kMaxRank ||
          tensor.getNumElements() == 0)
        return function.emitError("result ")
               << i << " must be a non-empty static tensor of rank <= "
               << kMaxRank;
      auto output = function.getResultAttrOfType<StringAttr>(
          i, CleaveDialect::kOutputAttrName);
      auto updates = function.getResultAttrOfType<IntegerAttr>(
          i, CleaveDialect::kUpdatesAttrName);
      auto stash = function.getResultAttrOfType<IntegerAttr>(
          i, CleaveDialect::kStashAttrName);
      std::string resultName = output ? output.str()
                               : stash ? getStashName(stash)
                                       : "output" + std::to_string(i);
      FailureOr<std::string> split =
          getSplit(function.getResultAttrDict(i), function.getLoc());
      if (failed(split))
        return failure();
      host << "    {{" << getStringLiteral(resultName)
           << ", cleave::rt::DType::"
           << getElementInfo(tensor, function.getLoc())->dtype << ", "
           << getShapeLiteral(tensor.getShape()) << "}, "
           << (updates ? updates.getInt() : -1) << ", " << *split;
      if (auto role = function.getResultAttrOfType<OutputRoleAttr>(
              i, CleaveDialect::kOutputRoleAttrName))
        host << ", cleave::rt::OutputRole::"
             << getEnumeratorName(stringifyOutputRole(role.getValue()));
      host << "},\n";
    }
    if (function.getNumResults() == 0)
      host << "    {{\"\", cleave::rt::DType::F32, {0, {}}}, -1, nullptr},\n";
    host << "};\n";

    host << "const char *const " << prefix << "_index_sites[] = {\n";
    for (const std::string &site : indexSites)
      host << "    " << getStringLiteral(site) << ",\n";
    if (indexSites.empty())
      host << "    \"\",\n";
    host << "};\n";

    // (name, location, layer, dtype, FLOPs, bytes) per timed op.
    host << "const cleave::rt::OpInfo " << prefix << "_ops[] = {\n";
    for (const std::string &info : opInfos)
      host << "    " << info << ",\n";
    if (opInfos.empty())
      host << "    {\"\", \"\", \"\", \"\", 0, 0},\n";
    host << "};\n";

    host << "const cleave::rt::Program " << prefix << "_program = {\n    "
         << getStringLiteral(function.getSymName()) << ", " << prefix << "_arguments, "
         << function.getNumArguments() << ", " << prefix << "_results, "
         << function.getNumResults() << ", " << arenaBytes << ", &" << name
         << ", " << prefix << "_index_sites, " << indexSites.size() << ", "
         << (meshGroups.partitioned ? "&k_mesh" : "nullptr") << ", " << prefix
         << "_ops, " << opInfos.size() << "};\n\n";
    return success();
  }

  func::FuncOp function;
  /// The function's C++ identifier.
  std::string name;
  raw_ostream &kernels;
  raw_ostream &host;
  CudaEmitterSummary &summary;
  MeshGroups &meshGroups;
  DenseMap<Value, std::string> pointers;
  SmallVector<std::string> indexSites;
  /// The op table's initializers, by op number.
  SmallVector<std::string> opInfos;
  int64_t nextValue = 0;
  int64_t nextArray = 0;
};

/// The function main runs: `entry`, else the step (`cleave.role` step), else
/// the model (`forward`), else the module's only function.
FailureOr<func::FuncOp> findEntry(ModuleOp module, StringRef entry) {
  SmallVector<func::FuncOp> functions(module.getOps<func::FuncOp>());
  llvm::erase_if(functions, [](func::FuncOp f) { return f.isDeclaration(); });
  if (functions.empty())
    return module.emitError("module has no function body to emit");
  if (!entry.empty()) {
    for (func::FuncOp function : functions)
      if (function.getSymName() == entry)
        return function;
    return module.emitError("no entry function '")
           << entry << "'; choose one with --cleave-entry";
  }
  for (FunctionRole role : {FunctionRole::Step, FunctionRole::Forward})
    for (func::FuncOp function : functions)
      if (getFunctionRole(function) == role)
        return function;
  if (functions.size() > 1)
    return module.emitError("no function has cleave.role step or forward; "
                            "choose the entry with --cleave-entry");
  return functions.front();
}

} // namespace

LogicalResult mlir::cleave::translateToCuda(ModuleOp module, raw_ostream &os,
                                            const CudaEmitterOptions &options,
                                            CudaEmitterSummary *summary) {
  CudaEmitterSummary local;
  CudaEmitterSummary &totals = summary ? *summary : local;
  // A pipeline's stages stand in for the training step: the first stage's
  // forward is the entry the summary reports.
  auto schedule =
      module->getAttrOfType<ScheduleAttr>(CleaveDialect::kScheduleAttrName);
  bool isPipeline = static_cast<bool>(schedule);
  func::FuncOp firstStage;
  for (func::FuncOp function : module.getOps<func::FuncOp>()) {
    auto stage =
        function->getAttrOfType<IntegerAttr>(CleaveDialect::kStageAttrName);
    if (stage && !isPipeline)
      return function.emitError("pipeline stages need the module's "
                                "cleave.schedule (cleave-pipeline-split)");
    if (stage && stage.getInt() == 0 &&
        getFunctionRole(function) == FunctionRole::StageForward)
      firstStage = function;
  }
  FailureOr<func::FuncOp> entry =
      isPipeline && firstStage ? FailureOr<func::FuncOp>(firstStage)
                               : findEntry(module, options.entry);
  if (failed(entry))
    return failure();
  totals.entry = entry->getSymName().str();

  // A module partitioned by cleave-partition runs one process per device of
  // its mesh.
  MeshGroups meshGroups;
  SmallVector<MeshOp> meshes(module.getOps<MeshOp>());
  module.walk([&](Operation *op) {
    if (isa<AllReduceOp, AllGatherOp, ReduceScatterOp, AllToAllOp, LocalSliceOp,
            DeviceIndexOp, SendOp, RecvOp>(op))
      meshGroups.partitioned = true;
    if (auto function = dyn_cast<func::FuncOp>(op))
      for (unsigned i = 0; i < function.getNumArguments(); ++i)
        if (function.getArgAttr(i, CleaveDialect::kBlockAttrName))
          meshGroups.partitioned = true;
  });
  if ((meshGroups.partitioned || isPipeline) && meshes.size() != 1)
    return module.emitError("a partitioned module needs exactly one "
                            "cleave.mesh, found ")
           << meshes.size();
  if (isPipeline) {
    std::optional<int64_t> ranks = meshes.front().getAxisSize("pp");
    if (ranks != schedule.getRanks())
      return meshes.front().emitError("a pipeline over ")
             << schedule.getRanks()
             << " ranks needs a mesh with an axis pp of that size";
    meshGroups.partitioned = true;
    meshGroups.pipelineRanks = *ranks;
  }

  std::string kernels, host, entryIdentifier;
  llvm::raw_string_ostream kernelStream(kernels), hostStream(host);
  llvm::StringSet<> identifiers;
  DenseMap<Operation *, std::string> identifierOf;
  int64_t entryArena = 0;
  for (func::FuncOp function : module.getOps<func::FuncOp>()) {
    if (function.isDeclaration())
      continue;
    std::string identifier = getIdentifier(function.getSymName(), identifiers);
    if (failed(FunctionEmitter(function, identifier, kernelStream, hostStream,
                               totals, meshGroups)
                   .emit()))
      return failure();
    identifierOf[function] = identifier;
    if (function == *entry) {
      entryArena = totals.arenaBytes;
      entryIdentifier = identifier;
    }
  }
  totals.arenaBytes = entryArena;
  std::string pipelineTable;
  if (isPipeline) {
    FailureOr<std::string> table =
        emitPipelineTable(module, identifierOf, schedule);
    if (failed(table))
      return failure();
    pipelineTable = std::move(*table);
  }
  // A function that updates its own arguments is a training step, and so
  // is a gradient step next to an update that does: their main runs the
  // training loop.
  auto updatesArguments = [](func::FuncOp function) {
    for (unsigned i = 0; i < function.getNumResults(); ++i)
      if (function.getResultAttr(i, CleaveDialect::kUpdatesAttrName))
        return true;
    return false;
  };
  bool isTrainingStep = updatesArguments(*entry);
  std::string applyProgram = "nullptr";
  func::FuncOp apply;
  for (func::FuncOp function : module.getOps<func::FuncOp>())
    if (getFunctionRole(function) == FunctionRole::Update &&
        !function->hasAttr(CleaveDialect::kPipelineRankAttrName)) {
      if (apply)
        return function.emitError("a second update next to ")
               << apply.getSymNameAttr();
      apply = function;
    }
  if (!isTrainingStep && apply && apply != *entry && updatesArguments(apply)) {
    isTrainingStep = true;
    applyProgram = "&k_" + identifierOf[apply] + "_program";
  }

  os << "// Generated by cleave-translate --cleave-to-cpp; do not edit.\n"
     << "// One source for both targets: nvcc builds it for NVIDIA GPUs, a\n"
     << "// host C++ compiler with OpenMP for the CPU (see the runtime's\n"
     << "// cleave/runtime/Portability.h). Comments name the source ops.\n\n"
     << "#include \"cleave/runtime/Communicator.h\"\n"
     << "#include \"cleave/runtime/Portability.h\"\n"
     << "#include \"cleave/runtime/Program.h\"\n\n"
     << "namespace {\n\n"
     << kernels;
  if (meshGroups.partitioned) {
    MeshOp mesh = meshes.front();
    os << "// The mesh the program was partitioned for: one process per "
          "device.\n"
       << "const char *const k_mesh_axes[] = {";
    for (Attribute axis : mesh.getAxes())
      os << getStringLiteral(cast<StringAttr>(axis).getValue()) << ", ";
    os << "};\nconst int64_t k_mesh_sizes[] = "
       << getArrayLiteral(mesh.getSizes()) << ";\n"
       << "const char *const k_mesh_groups[] = {";
    for (const std::string &group : meshGroups.groups)
      os << getStringLiteral(group) << ", ";
    if (meshGroups.groups.empty())
      os << "\"\"";
    os << "};\nconst cleave::rt::MeshSpec k_mesh = {k_mesh_axes, k_mesh_sizes, "
       << mesh.getAxes().size() << ", k_mesh_groups, " << meshGroups.groups.size()
       << "};\n\n";
  }
  os << host << pipelineTable << "} // namespace\n";
  if (options.emitMain && isPipeline)
    os << "\nint main(int argc, char **argv) {\n"
       << "  return cleave::rt::runPipelineTrainingMain(k_pipeline, argc, "
          "argv);\n}\n";
  else if (options.emitMain)
    os << "\nint main(int argc, char **argv) {\n"
       << "  return cleave::rt::"
       << (isTrainingStep ? "runTrainingMain" : "runProgramMain") << "(k_"
       << entryIdentifier << "_program, "
       << (isTrainingStep ? applyProgram + ", " : std::string())
       << "argc, argv);\n}\n";
  return success();
}

void mlir::cleave::registerToCudaTranslation() {
  static llvm::cl::opt<std::string> entry(
      "cleave-entry",
      llvm::cl::desc("Function the generated main runs (default: the only "
                     "function, or 'forward')"),
      llvm::cl::init(""));
  static llvm::cl::opt<bool> noMain(
      "cleave-no-main",
      llvm::cl::desc("Do not emit main(); link the program into your own"),
      llvm::cl::init(false));
  auto translate = [](Operation *op, raw_ostream &os) -> LogicalResult {
    auto module = dyn_cast<ModuleOp>(op);
    if (!module)
      return op->emitError("expected a builtin.module");
    CudaEmitterOptions options;
    options.entry = entry;
    options.emitMain = !noMain;
    return translateToCuda(module, os, options);
  };
  auto dialects = [](DialectRegistry &registry) {
    registry.insert<CleaveDialect, func::FuncDialect>();
  };
  // One source serves both targets: nvcc builds it for GPUs, a host
  // compiler for the CPU.
  TranslateFromMLIRRegistration cpp(
      "cleave-to-cpp",
      "Emit C++ that builds for the CPU and, with nvcc, for NVIDIA GPUs, "
      "from a fused, memory-planned cleave module",
      translate, dialects);
  TranslateFromMLIRRegistration cuda(
      "cleave-to-cuda", "The same as --cleave-to-cpp", translate, dialects);
}
