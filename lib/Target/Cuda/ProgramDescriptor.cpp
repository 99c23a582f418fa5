//===- ProgramDescriptor.cpp - What the runtime reads ---------------------===//
//
// The Program descriptor of a function: its arguments (kind, split,
// initialization, role), results (what they update, role), index-error
// sites and the profiler's op table.
//
//===----------------------------------------------------------------------===//

#include "FunctionEmitter.h"

#include "llvm/ADT/SetVector.h"
#include "llvm/ADT/StringExtras.h"

#include <cstdio>

using namespace mlir;
using namespace mlir::cleave;

FailureOr<std::string> FunctionEmitter::getSplit(DictionaryAttr attrs,
                                                 Location loc,
                                                 bool mayBePending) {
  if (!meshGroups.partitioned)
    return std::string("nullptr");
  auto block = attrs ? attrs.getAs<ShardingAttr>(CleaveDialect::kBlockAttrName)
                     : ShardingAttr();
  if (!block)
    return std::string("\"\"");
  if (!block.getPartialAxes().empty() && !mayBePending)
    return emitError(loc, "a pending sum (partial) cannot cross the "
                          "program's boundary: the runtime passes complete "
                          "values only, and completes only the results of a "
                          "pipeline stage's programs");
  std::string split;
  for (unsigned dim = 0; dim < block.getDims().size(); ++dim) {
    if (dim)
      split += ";";
    split += llvm::join(block.getDimAxes(dim), ",");
  }
  return getStringLiteral(split);
}

std::string FunctionEmitter::getEnumeratorName(StringRef irName) {
  std::string name;
  for (StringRef word : llvm::split(irName, '_'))
    if (!word.empty()) {
      name += llvm::toUpper(word.front());
      name += word.drop_front();
    }
  return name;
}

std::string FunctionEmitter::getInitLiteral(InitAttr init) {
  if (!init)
    return "{}";
  char stddev[32];
  std::snprintf(stddev, sizeof(stddev), "%.17g", init.getStandardDeviation());
  return "{cleave::rt::InitRule::Kind::" +
         getEnumeratorName(stringifyInitKind(init.getKind())) + ", " + stddev +
         "}";
}

/// The value `value` is a cast of: through cleave.cast, and through the
/// fused kernel that a cast of a kernel input became, else `value`.
static Value getUncastSource(Value value) {
  while (true) {
    if (auto cast = value.getDefiningOp<CastOp>()) {
      value = cast.getInput();
      continue;
    }
    auto fused = value.getDefiningOp<FusedOp>();
    if (!fused)
      return value;
    Block &body = fused.getBody().front();
    Value yielded = body.getTerminator()->getOperand(
        cast<OpResult>(value).getResultNumber());
    auto inner = yielded.getDefiningOp<CastOp>();
    auto input = inner ? dyn_cast<BlockArgument>(inner.getInput()) : nullptr;
    if (!input || input.getOwner() != &body)
      return value;
    value = fused.getInputs()[input.getArgNumber()];
  }
}

std::optional<unsigned> FunctionEmitter::getIndexedTable(BlockArgument tokens) {
  // The values computed from the token ids: a vocabulary-parallel embedding
  // reads them shifted and masked to its rows.
  SetVector<Value> derived;
  derived.insert(tokens);
  for (size_t i = 0; i < derived.size(); ++i)
    for (Operation *user : derived[i].getUsers())
      if (!isa<EmbeddingOp>(user))
        derived.insert(user->result_begin(), user->result_end());
  for (Value value : derived)
    for (Operation *user : value.getUsers()) {
      auto embedding = dyn_cast<EmbeddingOp>(user);
      if (!embedding || embedding.getIndices() != value)
        continue;
      Value table = getUncastSource(embedding.getTable());
      if (auto argument = dyn_cast<BlockArgument>(table);
          argument && argument.getOwner() == tokens.getOwner())
        return argument.getArgNumber();
    }
  return std::nullopt;
}

/// The name the runtime knows an argument or result by: its parameter,
/// input, state or output name, its stash, else `fallback`.
static std::string getTensorName(DictionaryAttr attrs, std::string fallback) {
  if (!attrs)
    return fallback;
  for (StringRef attrName :
       {CleaveDialect::kParamAttrName, CleaveDialect::kInputAttrName,
        CleaveDialect::kStateAttrName, CleaveDialect::kOutputAttrName})
    if (auto name = attrs.getAs<StringAttr>(attrName))
      return name.str();
  if (auto stash = attrs.getAs<IntegerAttr>(CleaveDialect::kStashAttrName))
    return getStashName(stash);
  return fallback;
}

LogicalResult FunctionEmitter::emitDescriptor(int64_t arenaBytes) {
  std::string prefix = "k_" + name;
  host << "const cleave::rt::ArgumentSpec " << prefix << "_arguments[] = {\n";
  for (BlockArgument argument : function.getArguments()) {
    unsigned index = argument.getArgNumber();
    DictionaryAttr attrs = function.getArgAttrDict(index);
    std::string tensorName =
        getTensorName(attrs, "arg" + std::to_string(index));
    auto has = [&](StringRef attrName) {
      return attrs && attrs.contains(attrName);
    };
    FailureOr<std::string> split = getSplit(attrs, function.getLoc());
    if (failed(split))
      return failure();
    host << "    {{" << getStringLiteral(tensorName) << ", "
         << getDType(argument) << ", " << getShapeLiteral(getShape(argument))
         << "}, cleave::rt::ArgumentKind::"
         << (has(CleaveDialect::kParamAttrName)   ? "Param"
             : has(CleaveDialect::kStateAttrName) ? "State"
             : has(CleaveDialect::kStashAttrName) ? "Stash"
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
      // Only token ids index a table; the walk is over everything derived
      // from the input, so it runs for them alone.
      if (role.getValue() == InputRole::Tokens)
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
             << i
             << " must be a non-empty static tensor of rank <= " << kMaxRank;
    auto updates = function.getResultAttrOfType<IntegerAttr>(
        i, CleaveDialect::kUpdatesAttrName);
    std::string resultName = getTensorName(function.getResultAttrDict(i),
                                           "output" + std::to_string(i));
    // The training loop completes a stage's pending sums (the deferred
    // data-parallel reduction).
    std::optional<FunctionRole> role = getFunctionRole(function);
    bool isStage = role == FunctionRole::StageForward ||
                   role == FunctionRole::StageBackward;
    FailureOr<std::string> split =
        getSplit(function.getResultAttrDict(i), function.getLoc(), isStage);
    if (failed(split))
      return failure();
    auto block = function.getResultAttrOfType<ShardingAttr>(
        i, CleaveDialect::kBlockAttrName);
    std::string pendingGroup = "-1";
    if (block && !block.getPartialAxes().empty())
      pendingGroup = getGroup(block.getPartial());
    auto scatterDim = function.getResultAttrOfType<IntegerAttr>(
        i, CleaveDialect::kScatterDimAttrName);
    host << "    {{" << getStringLiteral(resultName) << ", cleave::rt::DType::"
         << getElementInfo(tensor, function.getLoc())->dtype << ", "
         << getShapeLiteral(tensor.getShape()) << "}, "
         << (updates ? updates.getInt() : -1) << ", " << *split;
    auto outputRole = function.getResultAttrOfType<OutputRoleAttr>(
        i, CleaveDialect::kOutputRoleAttrName);
    if (outputRole || pendingGroup != "-1")
      host << ", cleave::rt::OutputRole::"
           << (outputRole ? getEnumeratorName(
                                stringifyOutputRole(outputRole.getValue()))
                          : std::string("None"));
    if (pendingGroup != "-1")
      host << ", " << pendingGroup << ", "
           << (scatterDim ? scatterDim.getInt() : -1);
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
  if (!opResults.empty()) {
    host << "const cleave::rt::OpResult " << prefix << "_op_results[] = {\n";
    for (const std::string &result : opResults)
      host << "    " << result << ",\n";
    host << "};\n";
  }
  host << "const cleave::rt::OpInfo " << prefix << "_ops[] = {\n";
  for (const std::string &info : opInfos)
    host << "    " << info << ",\n";
  if (opInfos.empty())
    host << "    {\"\", \"\", \"\", \"\", 0, 0, nullptr, 0},\n";
  host << "};\n";

  if (!receives.empty()) {
    host << "const cleave::rt::TransferSpec " << prefix << "_receives[] = {\n";
    for (const std::string &receive : receives)
      host << "    " << receive << ",\n";
    host << "};\n";
  }

  host << "const cleave::rt::Program " << prefix << "_program = {\n    "
       << getStringLiteral(function.getSymName()) << ", " << prefix
       << "_arguments, " << function.getNumArguments() << ", " << prefix
       << "_results, " << function.getNumResults() << ", " << arenaBytes
       << ", &" << name << ", " << prefix << "_index_sites, "
       << indexSites.size() << ", "
       << (meshGroups.partitioned ? "&k_mesh" : "nullptr") << ", " << prefix
       << "_ops, " << opInfos.size();
  // A micro-batch's step says how many make a step; a program that starts
  // collectives says so (--overlap applies to them).
  auto microBatches = function->getAttrOfType<IntegerAttr>(
      CleaveDialect::kMicroBatchesAttrName);
  bool starts =
      llvm::any_of(function.getOps<WaitOp>(), [](WaitOp) { return true; });
  if (microBatches || starts || !receives.empty())
    host << ", " << (microBatches ? microBatches.getInt() : 1);
  if (starts || !receives.empty())
    host << ", " << (starts ? "true" : "false");
  if (!receives.empty())
    host << ", " << prefix << "_receives, " << receives.size();
  host << "};\n\n";
  return success();
}
