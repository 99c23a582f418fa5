//===- FunctionEmitter.cpp - The walk over a function's ops ---------------===//
//
// Binds arguments and results to pointers, brackets every op that runs with
// the profiler's begin/end, dispatches each op to its pattern, and launches
// the kernels the kernel emitter writes for fused and elementwise ops.
//
//===----------------------------------------------------------------------===//

#include "FunctionEmitter.h"

#include "cleave/Analysis/BufferLiveness.h"

#include "llvm/ADT/ScopeExit.h"

#include <cstdio>
#include <map>

using namespace mlir;
using namespace mlir::cleave;

/// The emitted program trusts the offsets it is given, so they are checked
/// first (the attribute's verifier gives one non-negative offset per
/// result): each buffer lies inside the arena, and no two buffers live at
/// once share a byte. A sweep in program
/// order keeps the live buffers ordered by offset; when they are disjoint,
/// a new one can only overlap its neighbours, so the check is O(n log n).
static LogicalResult verifyMemoryPlan(Block &block, int64_t arenaBytes) {
  struct Placed {
    int64_t end;
    Operation *op;
    unsigned result;
  };
  BufferLiveness liveness(block);
  std::map<int64_t, Placed> live;
  std::multimap<int64_t, int64_t> releaseAt;
  for (Operation &op : block) {
    int64_t position = liveness.getPosition(&op);
    // Buffers last read here are free for the next op's results.
    auto releaseHere = llvm::make_scope_exit([&] {
      auto [first, last] = releaseAt.equal_range(position);
      for (auto it = first; it != last; ++it)
        live.erase(it->second);
      releaseAt.erase(first, last);
    });
    if (!ownsArenaBuffers(op))
      continue;
    auto offsets = op.getAttrOfType<DenseI64ArrayAttr>(
        CleaveDialect::kArenaOffsetsAttrName);
    if (!offsets)
      return op.emitOpError(
          "has no arena offset: run cleave-plan-memory first");
    for (auto [index, offset] : llvm::enumerate(offsets.asArrayRef())) {
      Value result = op.getResult(index);
      auto type = dyn_cast<RankedTensorType>(result.getType());
      if (!type || !type.hasStaticShape())
        return op.emitOpError("result ") << index << " is not a static tensor";
      std::optional<int64_t> bufferBytes = getBufferBytes(type);
      if (!bufferBytes)
        return op.emitOpError("result ")
               << index << " of " << getTotalBytes(type)
               << " bytes is too large for an arena";
      int64_t bytes = *bufferBytes;
      if (offset < 0 || offset > arenaBytes || bytes > arenaBytes - offset)
        return op.emitOpError("arena offset ")
               << offset << " + " << bytes << " bytes lies outside the "
               << arenaBytes << "-byte arena";
      if (bytes == 0)
        continue;
      int64_t end = offset + bytes;
      auto next = live.lower_bound(offset);
      std::optional<Placed> clash;
      if (next != live.end() && next->first < end)
        clash = next->second;
      else if (next != live.begin() && std::prev(next)->second.end > offset)
        clash = std::prev(next)->second;
      if (clash) {
        InFlightDiagnostic diagnostic =
            op.emitOpError("result ")
            << index << " at arena bytes [" << offset << ", " << end
            << ") overlaps result " << clash->result << " of '"
            << clash->op->getName()
            << "', which is still live: the memory plan is wrong";
        diagnostic.attachNote(clash->op->getLoc()) << "that result is here";
        return diagnostic;
      }
      live[offset] = {end, &op, static_cast<unsigned>(index)};
      releaseAt.emplace(liveness.getLastLive(result), offset);
    }
  }
  return success();
}

LogicalResult FunctionEmitter::emit() {
  auto arenaBytes =
      function->getAttrOfType<IntegerAttr>(CleaveDialect::kArenaBytesAttrName);
  if (!arenaBytes)
    return function.emitError("function '")
           << name << "' has no memory plan: run cleave-plan-memory first";
  if (!function.getBody().hasOneBlock())
    return function.emitError("can only emit single-block functions");
  summary.arenaBytes = arenaBytes.getInt();
  if (failed(verifyMemoryPlan(function.getBody().front(), summary.arenaBytes)))
    return failure();

  host << "cleave::rt::Status " << name
       << "(cleave::rt::Context &context, void *const *arguments,\n"
       << "    void **results, uint8_t *arena) {\n";
  if (failed(bindArguments()))
    return failure();
  Operation *ret = function.getBody().front().getTerminator();
  for (unsigned i = 0; i < function.getNumResults(); ++i)
    if (auto block = function.getResultAttrOfType<ShardingAttr>(
            i, CleaveDialect::kBlockAttrName);
        block && !block.getPartialAxes().empty())
      pendingResults[ret->getOperand(i)].push_back(i);
  if (getFunctionRole(function) == FunctionRole::Update)
    for (BlockArgument argument : function.getArguments())
      if (hasInputRole(function, argument.getArgNumber(), InputRole::Gradient))
        unreadGradients.insert(argument);
  for (Operation &op : function.getBody().front())
    if (failed(emitOp(op)))
      return failure();
  host << "  return cleave::rt::Status::success();\n}\n\n";
  return emitDescriptor(arenaBytes.getInt());
}

LogicalResult FunctionEmitter::bindArguments() {
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

LogicalResult FunctionEmitter::bindResults(Operation &op) {
  auto offsets =
      op.getAttrOfType<DenseI64ArrayAttr>(CleaveDialect::kArenaOffsetsAttrName);
  if (!offsets)
    return op.emitOpError("has no arena offset: run cleave-plan-memory first");
  for (auto [result, offset] :
       llvm::zip(op.getResults(), offsets.asArrayRef())) {
    auto type = cast<RankedTensorType>(result.getType());
    if (type.getRank() > kMaxRank)
      return op.emitOpError("results of rank > ")
             << kMaxRank << " are not supported";
    if (type.getNumElements() == 0)
      return op.emitOpError("cannot emit the empty tensor ") << type;
    FailureOr<ElementInfo> info = getElementInfo(type, op.getLoc());
    if (failed(info))
      return failure();
    std::string pointer = "v" + std::to_string(nextValue++);
    host << "  auto *" << pointer << " = reinterpret_cast<" << info->storage
         << " *>(arena + " << offset << ");\n";
    pointers[result] = pointer;
  }
  return success();
}

std::string FunctionEmitter::getLocation(Operation &op) {
  std::string where = getLocationString(op.getLoc());
  return getStringLiteral(where.empty() ? op.getName().getStringRef().str()
                                        : where);
}

std::string FunctionEmitter::getDType(Value value) {
  return std::string("cleave::rt::DType::") +
         getElementInfo(value.getType(), value.getLoc())->dtype;
}

std::string FunctionEmitter::getOpInfo(Operation &op) {
  std::string layer;
  if (auto tag = op.getAttrOfType<LayerAttr>(CleaveDialect::kLayerAttrName))
    layer = tag.getKind() == LayerKind::Embed  ? "embed"
            : tag.getKind() == LayerKind::Head ? "head"
                                               : std::to_string(tag.getIndex());
  double flops = 0;
  double bytes =
      getTotalBytes(op.getOperandTypes()) + getTotalBytes(op.getResultTypes());
  if (auto cost = dyn_cast<CostOpInterface>(op)) {
    flops = cost.getFlops();
    bytes = cost.getBytesRead() + cost.getBytesWritten();
  }
  // A matmul's operands name its type: a 16-bit GEMM may store f32.
  Type type = op.getNumResults() && !isa<MatmulOp, MatmulBiasOp>(op)
                  ? op.getResult(0).getType()
                  : op.getOperand(0).getType();
  FailureOr<ElementInfo> info = getElementInfo(type, op.getLoc());
  char numbers[64];
  std::snprintf(numbers, sizeof(numbers), "%.17g, %.17g", flops, bytes);
  // Where its results lie in the arena, for CLEAVE_CHECK_FINITE.
  size_t firstResult = opResults.size();
  if (auto offsets = op.getAttrOfType<DenseI64ArrayAttr>(
          CleaveDialect::kArenaOffsetsAttrName))
    for (auto [result, offset] :
         llvm::zip(op.getResults(), offsets.asArrayRef())) {
      auto tensor = cast<RankedTensorType>(result.getType());
      FailureOr<ElementInfo> element = getElementInfo(tensor, op.getLoc());
      if (succeeded(element))
        opResults.push_back("{" + std::to_string(offset) + ", " +
                            std::to_string(tensor.getNumElements()) +
                            ", cleave::rt::DType::" + element->dtype + "}");
    }
  std::string results =
      opResults.size() == firstResult
          ? "nullptr, 0"
          : "k_" + name + "_op_results + " + std::to_string(firstResult) +
                ", " + std::to_string(opResults.size() - firstResult);
  return "{" + getStringLiteral(op.getName().getStringRef()) + ", " +
         getStringLiteral(getLocationString(op.getLoc())) + ", " +
         getStringLiteral(layer) + ", " +
         getStringLiteral(succeeded(info) ? info->dtype : "") + ", " + numbers +
         ", " + results + "}";
}

LogicalResult FunctionEmitter::emitOp(Operation &op) {
  host << "  // " << op.getName();
  if (std::string where = getLocationString(op.getLoc()); !where.empty())
    host << " at " << where;
  host << "\n";
  emitAwaitInputs(op);
  if (isa<func::ReturnOp>(op)) {
    // Pending sums computed by no op (arguments) are ready from the start.
    emitResultsReady(op.getOperands());
    return emitOpBody(op);
  }
  // Moving nothing takes no time: only ops that run are timed.
  if (isa<ReshapeOp>(op)) {
    if (failed(emitOpBody(op)))
      return failure();
    emitResultsReady(op.getResults());
    return success();
  }
  int index = opInfos.size();
  opInfos.push_back(getOpInfo(op));
  host << "  cleave::rt::beginOp(context, " << index << ");\n";
  if (failed(emitOpBody(op)))
    return failure();
  host << "  cleave::rt::endOp(context, " << index << ");\n";
  emitResultsReady(op.getResults());
  return success();
}

void FunctionEmitter::emitResultsReady(ValueRange values) {
  for (Value value : values) {
    auto found = pendingResults.find(value);
    if (found == pendingResults.end())
      continue;
    for (unsigned i : found->second)
      host << "  CLEAVE_RETURN_IF_ERROR(cleave::rt::resultReady(context, " << i
           << ", " << get(value) << "));\n";
    pendingResults.erase(found);
  }
}

void FunctionEmitter::emitAwaitInputs(Operation &op) {
  for (Value operand : op.getOperands())
    if (unreadGradients.erase(operand))
      host << "  CLEAVE_RETURN_IF_ERROR(cleave::rt::awaitInput(context, "
           << get(operand) << "));\n";
}

LogicalResult FunctionEmitter::emitOpBody(Operation &op) {
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
  if (auto wait = dyn_cast<WaitOp>(op)) {
    // The collective's buffer, once its data is there.
    std::string pointer = "v" + std::to_string(nextValue++);
    host << "  auto *" << pointer << " = " << get(wait.getInput()) << ";\n";
    pointers[wait.getResult()] = pointer;
    return call("waitCollective", {pointer}, op);
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
  if (isa<AllReduceOp, AllGatherOp, ReduceScatterOp, AllToAllOp, LocalSliceOp,
          DeviceIndexOp>(op))
    return emitCollective(op);
  return emitLibraryCall(op);
}

std::string FunctionEmitter::getRowsAndColumns(Value value) {
  ArrayRef<int64_t> shape = getShape(value);
  int64_t cols = shape.back();
  return std::to_string(getElementCount(shape) / cols) + ", " +
         std::to_string(cols);
}

std::string FunctionEmitter::getElementBytes(Value value) {
  return std::to_string(
      static_cast<int64_t>(getTotalBytes(value.getType()) /
                           std::max(1.0, getNumElements(value.getType()))));
}

std::string FunctionEmitter::declareArray(StringRef type,
                                          ArrayRef<int64_t> values) {
  if (values.empty())
    return "nullptr";
  std::string array = "c" + std::to_string(nextArray++);
  host << "  static const " << type << " " << array
       << "[] = " << getArrayLiteral(values) << ";\n";
  return array;
}

std::string FunctionEmitter::addIndexSite(Operation &op) {
  std::string where = getLocationString(op.getLoc());
  indexSites.push_back(op.getName().stripDialect().str() +
                       (where.empty() ? "" : " at " + where));
  return std::to_string(indexSites.size());
}

LogicalResult FunctionEmitter::call(StringRef function,
                                    ArrayRef<std::string> arguments,
                                    Operation &op) {
  host << "  CLEAVE_RETURN_IF_ERROR(cleave::rt::" << function << "(context";
  for (const std::string &argument : arguments)
    host << ", " << argument;
  host << ",\n      " << getLocation(op) << "));\n";
  return success();
}

LogicalResult FunctionEmitter::emitKernelLaunch(Operation &op,
                                                const KernelBody &body,
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
       << StringRef(pointers).drop_front(2)
       << "}))\n    CLEAVE_LAUNCH(context, " << kernel << "<" << width << ">, "
       << count << " / " << width << ")(" << count << pointers
       << ");\n  else\n    CLEAVE_LAUNCH(context, " << kernel << "<1>, "
       << count << ")(" << count << pointers
       << ");\n  CLEAVE_RETURN_IF_ERROR(context.checkLaunch("
       << getStringLiteral(kernel) << ", " << getLocation(op) << "));\n";
  return success();
}
