//===- CleaveDialect.cpp - Cleave dialect ---------------------------------===//
//
// Dialect registration, the layer attribute, and verification of the
// dialect's discardable attributes (`cleave.param`, `cleave.input`,
// `cleave.layer`).
//
//===----------------------------------------------------------------------===//

#include "cleave/Dialect/Cleave/IR/CleaveDialect.h"
#include "cleave/Dialect/Cleave/IR/CleaveOps.h"

#include "mlir/IR/DialectImplementation.h"
#include "mlir/Interfaces/FunctionInterfaces.h"
#include "llvm/ADT/StringExtras.h"
#include "llvm/ADT/TypeSwitch.h"

#include <cmath>

using namespace mlir;
using namespace mlir::cleave;

#include "cleave/Dialect/Cleave/IR/CleaveDialect.cpp.inc"
#include "cleave/Dialect/Cleave/IR/CleaveEnums.cpp.inc"

#define GET_ATTRDEF_CLASSES
#include "cleave/Dialect/Cleave/IR/CleaveAttrs.cpp.inc"

void CleaveDialect::initialize() {
  addOperations<
#define GET_OP_LIST
#include "cleave/Dialect/Cleave/IR/CleaveOps.cpp.inc"
      >();
  addAttributes<
#define GET_ATTRDEF_LIST
#include "cleave/Dialect/Cleave/IR/CleaveAttrs.cpp.inc"
      >();
  attachDifferentiableOpModels(*getContext());
  attachShardingRuleModels(*getContext());
}

Operation *CleaveDialect::materializeConstant(OpBuilder &builder,
                                              Attribute value, Type type,
                                              Location loc) {
  auto elements = dyn_cast<ElementsAttr>(value);
  if (!elements || elements.getType() != type)
    return nullptr;
  return ConstantOp::create(builder, loc, type, elements);
}

//===----------------------------------------------------------------------===//
// LayerAttr
//===----------------------------------------------------------------------===//

// #cleave.layer<embed> | #cleave.layer<head> | #cleave.layer<N>
Attribute LayerAttr::parse(AsmParser &parser, Type) {
  if (parser.parseLess())
    return {};
  StringRef keyword;
  LayerAttr result;
  if (succeeded(parser.parseOptionalKeyword(&keyword))) {
    if (keyword == "embed") {
      result = LayerAttr::getEmbed(parser.getContext());
    } else if (keyword == "head") {
      result = LayerAttr::getHead(parser.getContext());
    } else {
      parser.emitError(parser.getCurrentLocation(),
                       "expected 'embed', 'head' or a block index, got '")
          << keyword << "'";
      return {};
    }
  } else {
    SMLoc loc = parser.getCurrentLocation();
    int64_t index = 0;
    if (parser.parseInteger(index))
      return {};
    if (index < 0) {
      parser.emitError(loc, "block index must be non-negative, got ") << index;
      return {};
    }
    result = LayerAttr::get(parser.getContext(), index);
  }
  if (parser.parseGreater())
    return {};
  return result;
}

void LayerAttr::print(AsmPrinter &printer) const {
  printer << '<';
  if (getKind() == LayerKind::Block)
    printer << getIndex();
  else
    printer << stringifyLayerKind(getKind());
  printer << '>';
}

std::optional<unsigned> mlir::cleave::findInputByRole(FunctionOpInterface function,
                                                      InputRole role) {
  for (unsigned i = 0; i < function.getNumArguments(); ++i)
    if (hasInputRole(function, i, role))
      return i;
  return std::nullopt;
}

FailureOr<int64_t> mlir::cleave::getDenseBlockCount(Operation *root) {
  // Sorted rather than hashed: any int64 is a tag, the hash tables' empty
  // keys included.
  SmallVector<int64_t> tags;
  SmallVector<std::pair<Operation *, int64_t>> blocks;
  root->walk([&](Operation *op) {
    auto layer = op->getAttrOfType<LayerAttr>(CleaveDialect::kLayerAttrName);
    if (layer && layer.getKind() == LayerKind::Block) {
      tags.push_back(layer.getIndex());
      blocks.emplace_back(op, layer.getIndex());
    }
  });
  llvm::sort(tags);
  auto count = static_cast<int64_t>(std::unique(tags.begin(), tags.end()) -
                                    tags.begin());
  for (auto [op, index] : blocks)
    if (index < 0 || index >= count)
      return op->emitError("layer tag #cleave.layer<")
             << index << "> is out of range: the " << count
             << " transformer blocks must be tagged 0.." << count - 1
             << " without a gap";
  return count;
}

/// The `count` dictionaries of `getDictionary`, each changed by `update`.
static SmallVector<DictionaryAttr> getUpdatedDictionaries(
    MLIRContext *context, unsigned count,
    llvm::function_ref<DictionaryAttr(unsigned)> getDictionary,
    llvm::function_ref<void(unsigned, NamedAttrList &)> update) {
  SmallVector<DictionaryAttr> dictionaries;
  dictionaries.reserve(count);
  for (unsigned index = 0; index < count; ++index) {
    NamedAttrList attrs(getDictionary(index));
    update(index, attrs);
    dictionaries.push_back(attrs.getDictionary(context));
  }
  return dictionaries;
}

void mlir::cleave::updateArgAttrs(
    FunctionOpInterface function,
    llvm::function_ref<void(unsigned, NamedAttrList &)> update) {
  function.setAllArgAttrs(getUpdatedDictionaries(
      function->getContext(), function.getNumArguments(),
      [&](unsigned index) { return function.getArgAttrDict(index); }, update));
}

void mlir::cleave::updateResultAttrs(
    FunctionOpInterface function,
    llvm::function_ref<void(unsigned, NamedAttrList &)> update) {
  function.setAllResultAttrs(getUpdatedDictionaries(
      function->getContext(), function.getNumResults(),
      [&](unsigned index) { return function.getResultAttrDict(index); },
      update));
}

bool mlir::cleave::hasInputRole(FunctionOpInterface function, unsigned index,
                                InputRole role) {
  auto found = function.getArgAttrOfType<InputRoleAttr>(
      index, CleaveDialect::kInputRoleAttrName);
  return found && found.getValue() == role;
}

bool mlir::cleave::hasOutputRole(FunctionOpInterface function, unsigned index,
                                 OutputRole role) {
  auto found = function.getResultAttrOfType<OutputRoleAttr>(
      index, CleaveDialect::kOutputRoleAttrName);
  return found && found.getValue() == role;
}

std::optional<unsigned>
mlir::cleave::findResultByRole(FunctionOpInterface function, OutputRole role) {
  for (unsigned i = 0; i < function.getNumResults(); ++i)
    if (hasOutputRole(function, i, role))
      return i;
  return std::nullopt;
}

static constexpr StringLiteral kGradientPrefix = "grad.";

std::string mlir::cleave::getGradientName(StringRef param) {
  return (kGradientPrefix + param).str();
}

StringRef mlir::cleave::getGradientParam(StringRef gradient) {
  return gradient.drop_front(
      gradient.starts_with(kGradientPrefix) ? kGradientPrefix.size() : 0);
}

std::optional<FunctionRole> mlir::cleave::getFunctionRole(Operation *function) {
  if (auto role =
          function->getAttrOfType<FunctionRoleAttr>(CleaveDialect::kRoleAttrName))
    return role.getValue();
  return std::nullopt;
}

void mlir::cleave::setFunctionRole(Operation *function, FunctionRole role) {
  function->setAttr(CleaveDialect::kRoleAttrName,
                    FunctionRoleAttr::get(function->getContext(), role));
}

/// A schedule's name, and that only the interleaved one runs several
/// virtual stages per rank; errors start with `prefix`. (The dialect does
/// not depend on the schedules library, which builds them.)
static LogicalResult
verifyScheduleKind(function_ref<InFlightDiagnostic()> emitError,
                   StringRef prefix, StringRef kind, int64_t virtualStages) {
  if (kind != "gpipe" && kind != "1f1b" && kind != "interleaved")
    return emitError() << prefix << "unknown pipeline schedule '" << kind
                       << "': expected gpipe, 1f1b or interleaved";
  if (virtualStages > 1 && kind != "interleaved")
    return emitError() << prefix
                       << "only the interleaved schedule runs several "
                          "virtual stages per rank";
  return success();
}

LogicalResult InitAttr::verify(function_ref<InFlightDiagnostic()> emitError,
                               InitKind kind, APFloat stddevValue) {
  double stddev = stddevValue.convertToDouble();
  if (kind == InitKind::Normal && !(stddev > 0 && std::isfinite(stddev)))
    return emitError() << "#cleave.init<normal> needs a positive, finite "
                          "standard deviation, not "
                       << stddev;
  if (kind != InitKind::Normal && stddev != 0)
    return emitError() << "#cleave.init<" << stringifyInitKind(kind)
                       << "> takes no standard deviation";
  return success();
}

LogicalResult
RopeScalingAttr::verify(function_ref<InFlightDiagnostic()> emitError,
                        APFloat factor, APFloat lowFreqFactor,
                        APFloat highFreqFactor, int64_t originalMaxPositions) {
  double low = lowFreqFactor.convertToDouble();
  double high = highFreqFactor.convertToDouble();
  if (!(factor.convertToDouble() > 0.0) ||
      !std::isfinite(factor.convertToDouble()))
    return emitError() << "rope_scaling factor must be positive and finite";
  if (!(low > 0.0) || !(high > low) || !std::isfinite(high))
    return emitError() << "rope_scaling needs 0 < low_freq_factor < "
                          "high_freq_factor, finite";
  if (originalMaxPositions < 1)
    return emitError() << "rope_scaling original_max_positions must be "
                          "positive";
  return success();
}

LogicalResult
ScheduleAttr::verify(function_ref<InFlightDiagnostic()> emitError,
                     StringRef kind, int64_t ranks, int64_t virtualStages,
                     int64_t microBatches) {
  if (ranks < 1 || virtualStages < 1 || microBatches < 1)
    return emitError() << "a schedule's ranks, virtual stages and "
                          "micro-batches must be at least 1";
  return verifyScheduleKind(emitError, "", kind, virtualStages);
}

LogicalResult mlir::cleave::verifyUnplanned(ModuleOp module, StringRef pass) {
  if (!module->hasAttr(CleaveDialect::kPlanAttrName) &&
      module.getOps<MeshOp>().empty())
    return success();
  return module.emitError(pass)
         << ": the module already has a plan or a mesh; a plan is recorded "
            "once, on an unpartitioned model";
}

/// The axes of a plan's mesh; an empty mesh is one device.
static FailureOr<SmallVector<MeshAxisSpec>>
parsePlanMesh(StringRef mesh, std::string &message) {
  if (mesh.empty())
    return SmallVector<MeshAxisSpec>();
  return parseMeshSpec(mesh, message);
}

/// A verified plan's axes, each with its strategy, in mesh order.
static SmallVector<std::pair<MeshAxisSpec, StringRef>>
getAxisStrategies(PlanAttr plan) {
  std::string message;
  FailureOr<SmallVector<MeshAxisSpec>> axes =
      parsePlanMesh(plan.getMesh(), message);
  SmallVector<std::pair<MeshAxisSpec, StringRef>> result;
  if (succeeded(axes))
    for (auto [axis, strategy] : llvm::zip(*axes, plan.getStrategies()))
      result.push_back({axis, cast<StringAttr>(strategy).getValue()});
  return result;
}

int64_t PlanAttr::getAxisSize(StringRef name) const {
  for (const auto &[axis, strategy] : getAxisStrategies(*this))
    if (axis.name == name)
      return axis.size;
  return 1;
}

StringRef PlanAttr::getAxisStrategy(StringRef name) const {
  for (const auto &[axis, strategy] : getAxisStrategies(*this))
    if (axis.name == name)
      return strategy;
  return "none";
}

SmallVector<MeshAxisSpec> PlanAttr::getUsedAxes() const {
  SmallVector<MeshAxisSpec> used;
  for (const auto &[axis, strategy] : getAxisStrategies(*this))
    if (strategy != "none")
      used.push_back(axis);
  return used;
}

SmallVector<std::string> PlanAttr::getShardingStrategies() const {
  SmallVector<std::string> strategies;
  StringRef data = getAxisStrategy("dp");
  StringRef tensor = getAxisStrategy("tp");
  if (data != "none")
    strategies.push_back("dp");
  if (tensor != "none")
    strategies.push_back(tensor.str());
  if (data.starts_with("zero"))
    strategies.push_back(data.str());
  return strategies;
}

LogicalResult PlanAttr::verify(function_ref<InFlightDiagnostic()> emitError,
                               StringRef mesh, ArrayAttr strategies,
                               int64_t microBatchSize, int64_t microBatches,
                               StringRef schedule, int64_t virtualStages,
                               DenseI64ArrayAttr layersPerStageAttr,
                               int64_t zeroStage, bool recompute,
                               DenseI64ArrayAttr recomputeLayersAttr,
                               StringRef precision, int64_t paddedVocab,
                               StringRef cluster, FloatAttr stepTime,
                               FloatAttr peakMemory, FloatAttr mfu) {
  std::string message;
  FailureOr<SmallVector<MeshAxisSpec>> axes = parsePlanMesh(mesh, message);
  if (failed(axes))
    return emitError() << "plan: " << message;
  if (strategies.size() != axes->size())
    return emitError() << "plan: " << strategies.size()
                       << " strategies for the " << axes->size()
                       << " axes of mesh \"" << mesh << "\"";
  int64_t pp = 1;
  bool dataParallel = false, pipelined = false;
  for (auto [axis, attr] : llvm::zip(*axes, strategies)) {
    auto strategy = dyn_cast<StringAttr>(attr);
    SmallVector<StringRef> allowed =
        axis.name == "dp"
            ? SmallVector<StringRef>{"none", "dp", "zero1", "zero2", "zero3"}
        : axis.name == "tp" ? SmallVector<StringRef>{"none", "megatron",
                                                     "megatron-sp", "search"}
        : axis.name == "pp" ? SmallVector<StringRef>{"none", "pipeline"}
                            : SmallVector<StringRef>{};
    if (allowed.empty())
      return emitError() << "plan: mesh axes are dp, tp and pp, got '"
                         << axis.name << "'";
    if (!strategy || !llvm::is_contained(allowed, strategy.getValue()))
      return emitError() << "plan: the " << axis.name << " axis takes "
                         << llvm::join(allowed, ", ") << ", got " << attr;
    if (strategy.getValue() == "none" && axis.size > 1)
      return emitError() << "plan: the " << axis.name << " axis of "
                         << axis.size << " devices needs a strategy";
    if (axis.name == "pp")
      pp = axis.size;
    pipelined |= strategy.getValue() == "pipeline";
    dataParallel |= axis.name == "dp" && strategy.getValue() != "none";
    bool zero = strategy.getValue().starts_with("zero");
    if (axis.name == "dp" &&
        (zero ? strategy.getValue() != ("zero" + Twine(zeroStage)).str()
              : zeroStage != 0))
      return emitError() << "plan: zero_stage " << zeroStage
                         << " disagrees with the dp strategy " << strategy;
  }
  if (zeroStage < 0 || zeroStage > 3)
    return emitError() << "plan: zero_stage must be 0 to 3, got " << zeroStage;
  if (microBatchSize < 0 || microBatches < 1 || virtualStages < 1)
    return emitError() << "plan: micro_batches and virtual_stages must be at "
                          "least 1, micro_batch_size at least 0";
  if (failed(verifyScheduleKind(emitError, "plan: ", schedule, virtualStages)))
    return failure();
  // A list of counts per stage: `what` describes the list it must be.
  auto badCounts = [&](StringRef name, ArrayRef<int64_t> counts,
                       const Twine &what) -> LogicalResult {
    InFlightDiagnostic diag = emitError() << "plan: " << name << " needs "
                                          << what << ", got [";
    llvm::interleaveComma(counts, diag);
    return diag << "]";
  };
  if (layersPerStageAttr) {
    ArrayRef<int64_t> layersPerStage = layersPerStageAttr.asArrayRef();
    if (static_cast<int64_t>(layersPerStage.size()) != pp ||
        llvm::any_of(layersPerStage, [](int64_t n) { return n < 1; }))
      return badCounts("layers_per_stage", layersPerStage,
                       "one count of at least 1 per pp rank (" + Twine(pp) +
                           " here)");
  }
  if (recomputeLayersAttr) {
    ArrayRef<int64_t> recomputeLayers = recomputeLayersAttr.asArrayRef();
    int64_t chunks = pipelined ? pp * virtualStages : 1;
    if (!recompute)
      return emitError() << "plan: recompute_layers needs recompute";
    if ((recomputeLayers.size() != 1 &&
         static_cast<int64_t>(recomputeLayers.size()) != chunks) ||
        llvm::any_of(recomputeLayers, [](int64_t n) { return n < 0; }))
      return badCounts("recompute_layers", recomputeLayers,
                       "one count of at least 0, or one per stage (" +
                           Twine(chunks) + " here)");
  }
  if (zeroStage > 0 && !dataParallel)
    return emitError() << "plan: ZeRO shards over a dp axis, which mesh \""
                       << mesh << "\" lacks";
  if (precision != "f32" && precision != "bf16" && precision != "f16")
    return emitError() << "plan: precision must be f32, bf16 or f16, got '"
                       << precision << "'";
  if (paddedVocab < 0)
    return emitError() << "plan: padded_vocab must be at least 0";
  if ((stepTime || peakMemory || mfu) && cluster.empty())
    return emitError() << "plan: a prediction needs the cluster it was "
                          "priced on";
  if (!pipelined &&
      (schedule != "1f1b" || virtualStages != 1 || layersPerStageAttr))
    return emitError() << "plan: schedule, virtual_stages and "
                          "layers_per_stage need a pp axis with the "
                          "strategy pipeline";
  if (layersPerStageAttr && virtualStages != 1)
    return emitError() << "plan: layers_per_stage sets whole stages; "
                          "virtual stages split the blocks evenly";
  return success();
}

//===----------------------------------------------------------------------===//
// Attribute verification
//===----------------------------------------------------------------------===//

LogicalResult CleaveDialect::verifyOperationAttribute(Operation *op,
                                                      NamedAttribute attr) {
  if (attr.getName() == kLayerAttrName) {
    if (!isa<LayerAttr>(attr.getValue()))
      return op->emitError("'")
             << kLayerAttrName << "' must be a #cleave.layer attribute, got "
             << attr.getValue();
    return success();
  }
  if (attr.getName() == kArenaOffsetsAttrName) {
    auto offsets = dyn_cast<DenseI64ArrayAttr>(attr.getValue());
    if (!offsets || offsets.size() != static_cast<int64_t>(op->getNumResults()))
      return op->emitError("'")
             << kArenaOffsetsAttrName
             << "' must be an i64 array with one offset per result";
    if (llvm::any_of(offsets.asArrayRef(), [](int64_t v) { return v < 0; }))
      return op->emitError("'") << kArenaOffsetsAttrName
                                << "' offsets must not be negative";
    return success();
  }
  if (attr.getName() == kShardingAttrName) {
    auto shardings = dyn_cast<ArrayAttr>(attr.getValue());
    if (!shardings || shardings.size() != op->getNumResults() ||
        !llvm::all_of(shardings, llvm::IsaPred<ShardingAttr>))
      return op->emitError("'") << kShardingAttrName
                                << "' on an op must be an array with one "
                                   "#cleave.sharding per result";
    for (auto [sharding, result] : llvm::zip(shardings, op->getResults()))
      if (failed(verifySharding(op, cast<ShardingAttr>(sharding),
                                result.getType(), nullptr)))
        return failure();
    return success();
  }
  if (attr.getName() == kRecomputeAttrName) {
    if (!isa<UnitAttr>(attr.getValue()))
      return op->emitError("'") << kRecomputeAttrName << "' is a unit attribute";
    return success();
  }
  if (attr.getName() == kArenaBytesAttrName) {
    auto bytes = dyn_cast<IntegerAttr>(attr.getValue());
    if (!bytes || bytes.getValue().isNegative())
      return op->emitError("'")
             << kArenaBytesAttrName << "' must be a non-negative integer";
    return success();
  }
  if (attr.getName() == kStageAttrName) {
    auto stage = dyn_cast<IntegerAttr>(attr.getValue());
    if (!stage || stage.getValue().isNegative())
      return op->emitError("'")
             << kStageAttrName << "' must be a non-negative integer";
    return success();
  }
  if (attr.getName() == kBlockStagesAttrName) {
    auto stages = dyn_cast<DenseI64ArrayAttr>(attr.getValue());
    if (!stages || !isa<FunctionOpInterface>(op) ||
        !llvm::is_sorted(stages.asArrayRef()) ||
        llvm::any_of(stages.asArrayRef(), [](int64_t s) { return s < 0; }))
      return op->emitError("'") << kBlockStagesAttrName
                                << "' must be a function's non-decreasing "
                                   "array of non-negative stages";
    return success();
  }
  if (attr.getName() == kPlanAttrName) {
    if (!isa<PlanAttr>(attr.getValue()) || !isa<ModuleOp>(op))
      return op->emitError("'") << kPlanAttrName
                                << "' must be a module's #cleave.plan";
    return success();
  }
  if (attr.getName() == kRoleAttrName) {
    if (!isa<FunctionRoleAttr>(attr.getValue()) || !isa<FunctionOpInterface>(op))
      return op->emitError("'") << kRoleAttrName
                                << "' must be a function's #cleave.role";
    return success();
  }
  if (attr.getName() == kScheduleAttrName) {
    if (!isa<ScheduleAttr>(attr.getValue()) || !isa<ModuleOp>(op))
      return op->emitError("'") << kScheduleAttrName
                                << "' must be a module's #cleave.schedule";
    return success();
  }
  if (attr.getName() == kMicroBatchesAttrName) {
    auto count = dyn_cast<IntegerAttr>(attr.getValue());
    if (!count || count.getValue().sle(1) || !isa<FunctionOpInterface>(op))
      return op->emitError("'") << kMicroBatchesAttrName
                                << "' must be a function's micro-batch count "
                                   "(more than 1)";
    return success();
  }
  if (attr.getName() == kPipelineRankAttrName) {
    auto rank = dyn_cast<IntegerAttr>(attr.getValue());
    if (!rank || rank.getValue().isNegative() || !isa<FunctionOpInterface>(op))
      return op->emitError("'") << kPipelineRankAttrName
                                << "' must be a function's non-negative rank";
    return success();
  }
  return op->emitError("unknown cleave attribute '")
         << attr.getName().strref() << "'";
}

/// A `cleave.block` sharding must fit the global tensor its per-device
/// `type` is a block of.
static LogicalResult verifyBlock(Operation *op, Attribute attr, Type type) {
  auto sharding = dyn_cast<ShardingAttr>(attr);
  auto tensor = dyn_cast<RankedTensorType>(type);
  if (!sharding || !tensor ||
      sharding.getDims().size() != static_cast<size_t>(tensor.getRank()))
    return op->emitError("'") << CleaveDialect::kBlockAttrName
                              << "' must be a #cleave.sharding of the value's rank";
  auto mesh = SymbolTable::lookupNearestSymbolFrom<MeshOp>(op, sharding.getMesh());
  if (!mesh)
    return op->emitError("'") << CleaveDialect::kBlockAttrName
                              << "' names an unknown mesh " << sharding.getMesh();
  SmallVector<int64_t> shape(tensor.getShape());
  for (auto [dim, size] : llvm::enumerate(shape))
    for (StringRef axis : sharding.getDimAxes(dim))
      size *= mesh.getAxisSize(axis).value_or(1);
  return verifySharding(op, sharding,
                        RankedTensorType::get(shape, tensor.getElementType()),
                        nullptr);
}

/// A stash id on a function argument or result.
static LogicalResult verifyStash(Operation *op, NamedAttribute attr) {
  auto id = dyn_cast<IntegerAttr>(attr.getValue());
  if (!isa<FunctionOpInterface>(op) || !id || id.getValue().isNegative())
    return op->emitError("'") << CleaveDialect::kStashAttrName
                              << "' must be a non-negative integer on a "
                                 "function argument or result";
  return success();
}

/// The name a parameter, input or optimizer state argument carries.
static StringAttr getTensorName(FunctionOpInterface function, unsigned index) {
  for (StringRef attr :
       {CleaveDialect::kParamAttrName, CleaveDialect::kInputAttrName,
        CleaveDialect::kStateAttrName})
    if (auto name = function.getArgAttrOfType<StringAttr>(index, attr))
      return name;
  return {};
}

/// Parameter, input and state names share one namespace (they name the
/// tensors of checkpoint and data files), and each input role but
/// `gradient` marks one argument: a clash is reported at its second
/// occurrence.
static LogicalResult verifyUniqueNames(FunctionOpInterface function) {
  llvm::DenseMap<StringAttr, unsigned> names;
  llvm::DenseMap<unsigned, unsigned> roles;
  for (unsigned index = 0, e = function.getNumArguments(); index < e; ++index) {
    if (StringAttr name = getTensorName(function, index)) {
      auto [first, added] = names.try_emplace(name, index);
      if (!added)
        return function->emitError("tensor name '")
               << name.getValue() << "' of argument " << index
               << " is already used by argument " << first->second;
    }
    auto role = function.getArgAttrOfType<InputRoleAttr>(
        index, CleaveDialect::kInputRoleAttrName);
    if (!role || role.getValue() == InputRole::Gradient)
      continue;
    auto [first, added] =
        roles.try_emplace(static_cast<unsigned>(role.getValue()), index);
    if (!added)
      return function->emitError("argument ")
             << index << " has input role '"
             << stringifyInputRole(role.getValue()) << "', as argument "
             << first->second << " does";
  }
  return success();
}

LogicalResult CleaveDialect::verifyRegionArgAttribute(Operation *op,
                                                      unsigned regionIndex,
                                                      unsigned argIndex,
                                                      NamedAttribute attr) {
  StringRef attrName = attr.getName().strref();
  if (attrName == kBlockAttrName) {
    auto function = dyn_cast<FunctionOpInterface>(op);
    if (!function || regionIndex != 0)
      return op->emitError("'") << kBlockAttrName
                                << "' is only valid on function arguments";
    return verifyBlock(op, attr.getValue(),
                       function.getArgumentTypes()[argIndex]);
  }
  if (attrName == kShardingAttrName) {
    auto function = dyn_cast<FunctionOpInterface>(op);
    auto sharding = dyn_cast<ShardingAttr>(attr.getValue());
    if (!function || regionIndex != 0 || !sharding)
      return op->emitError("'") << kShardingAttrName
                                << "' must be a #cleave.sharding on a "
                                   "function argument";
    return verifySharding(op, sharding, function.getArgumentTypes()[argIndex],
                          nullptr);
  }
  if (attrName == kStashAttrName)
    return verifyStash(op, attr);
  if (attrName == kInputRoleAttrName) {
    auto function = dyn_cast<FunctionOpInterface>(op);
    if (!function || regionIndex != 0 ||
        !isa<InputRoleAttr>(attr.getValue()) ||
        !function.getArgAttr(argIndex, kInputAttrName))
      return op->emitError("'") << kInputRoleAttrName
                                << "' must be a #cleave.input_role on an "
                                   "argument with 'cleave.input'";
    auto role = cast<InputRoleAttr>(attr.getValue()).getValue();
    auto type = dyn_cast<RankedTensorType>(function.getArgumentTypes()[argIndex]);
    bool isIndex = role == InputRole::Tokens || role == InputRole::Targets;
    bool isScalar =
        role == InputRole::LearningRate || role == InputRole::StepNumber;
    if (isIndex && (!type || !isa<IntegerType>(type.getElementType())))
      return op->emitError("argument ")
             << argIndex << " with input role '" << stringifyInputRole(role)
             << "' must be an integer tensor";
    if (isScalar && (!type || type.getRank() != 0 ||
                     !isa<FloatType>(type.getElementType())))
      return op->emitError("argument ")
             << argIndex << " with input role '" << stringifyInputRole(role)
             << "' must be a rank-0 float tensor";
    if (role == InputRole::Gradient &&
        (!type || !isa<FloatType>(type.getElementType())))
      return op->emitError("argument ")
             << argIndex << " with input role 'gradient' must be a float "
             << "tensor";
    // Unique roles are checked with the names (verifyUniqueNames).
    return success();
  }
  if (attrName == kInitAttrName) {
    auto function = dyn_cast<FunctionOpInterface>(op);
    if (!function || regionIndex != 0 || !isa<InitAttr>(attr.getValue()) ||
        !function.getArgAttr(argIndex, kParamAttrName))
      return op->emitError("'") << kInitAttrName
                                << "' must be a #cleave.init on an argument "
                                   "with 'cleave.param'";
    return success();
  }
  if (attrName != kParamAttrName && attrName != kInputAttrName &&
      attrName != kStateAttrName)
    return op->emitError("unknown cleave argument attribute '")
           << attrName << "'";

  auto function = dyn_cast<FunctionOpInterface>(op);
  if (!function || regionIndex != 0)
    return op->emitError("'") << attrName
                              << "' is only valid on function arguments";
  auto name = dyn_cast<StringAttr>(attr.getValue());
  if (!name || name.getValue().empty())
    return op->emitError("'")
           << attrName << "' of argument " << argIndex
           << " must be a non-empty string naming the tensor";

  Type argType = function.getArgumentTypes()[argIndex];
  auto tensor = dyn_cast<RankedTensorType>(argType);
  if (!tensor || !tensor.hasStaticShape())
    return op->emitError("tensor '")
           << name.getValue() << "' (argument " << argIndex
           << ") must be a statically shaped tensor, got " << argType;
  if (attrName != kInputAttrName) {
    Type element = tensor.getElementType();
    if (!element.isF64() && !element.isF32() && !element.isBF16() &&
        !element.isF16())
      return op->emitError(attrName == kParamAttrName ? "parameter '"
                                                      : "optimizer state '")
             << name.getValue() << "' (argument " << argIndex
             << ") must have f64, f32, bf16 or f16 elements, got " << argType;
  }
  int roles = 0;
  for (StringRef role : {kParamAttrName, kInputAttrName, kStateAttrName})
    roles += function.getArgAttr(argIndex, role) ? 1 : 0;
  if (roles > 1)
    return op->emitError("argument ")
           << argIndex
           << " can only be one of a parameter, an input and optimizer state";

  // The whole function's names and roles once, with its first named
  // argument: per argument, the check would be quadratic.
  for (unsigned other = argIndex; other-- > 0;)
    if (getTensorName(function, other))
      return success();
  return verifyUniqueNames(function);
}

LogicalResult CleaveDialect::verifyRegionResultAttribute(Operation *op,
                                                        unsigned regionIndex,
                                                        unsigned resultIndex,
                                                        NamedAttribute attr) {
  auto function = dyn_cast<FunctionOpInterface>(op);
  if (!function || regionIndex != 0)
    return op->emitError("'") << attr.getName().strref()
                              << "' is only valid on function results";
  if (attr.getName() == kShardingAttrName) {
    auto sharding = dyn_cast<ShardingAttr>(attr.getValue());
    if (!sharding)
      return op->emitError("'") << kShardingAttrName
                                << "' must be a #cleave.sharding";
    return verifySharding(op, sharding, function.getResultTypes()[resultIndex],
                          nullptr);
  }
  if (attr.getName() == kBlockAttrName)
    return verifyBlock(op, attr.getValue(),
                       function.getResultTypes()[resultIndex]);
  if (attr.getName() == kStashAttrName)
    return verifyStash(op, attr);
  if (attr.getName() == kOutputAttrName) {
    auto name = dyn_cast<StringAttr>(attr.getValue());
    if (!name || name.getValue().empty())
      return op->emitError("'") << kOutputAttrName << "' of result "
                                << resultIndex << " must be a non-empty string";
    return success();
  }
  if (attr.getName() == kOutputRoleAttrName) {
    auto role = dyn_cast<OutputRoleAttr>(attr.getValue());
    if (!role || !function.getResultAttr(resultIndex, kOutputAttrName))
      return op->emitError("'") << kOutputRoleAttrName
                                << "' must be a #cleave.output_role on a "
                                   "result with 'cleave.output'";
    auto type =
        dyn_cast<RankedTensorType>(function.getResultTypes()[resultIndex]);
    if (role.getValue() == OutputRole::Gradient) {
      if (!type || !isa<FloatType>(type.getElementType()))
        return op->emitError("result ")
               << resultIndex << " with output role 'gradient' must be a "
               << "float tensor";
      return success();
    }
    if (!type || type.getRank() != 0 || !isa<FloatType>(type.getElementType()))
      return op->emitError("result ") << resultIndex << " with output role '"
                                      << stringifyOutputRole(role.getValue())
                                      << "' must be a rank-0 float tensor";
    for (unsigned other = 0; other < resultIndex; ++other)
      if (hasOutputRole(function, other, role.getValue()))
        return op->emitError("result ") << resultIndex << " has output role '"
                                        << stringifyOutputRole(role.getValue())
                                        << "', as result " << other << " does";
    return success();
  }
  if (attr.getName() == kScatterDimAttrName) {
    auto dim = dyn_cast<IntegerAttr>(attr.getValue());
    auto type =
        dyn_cast<RankedTensorType>(function.getResultTypes()[resultIndex]);
    auto block =
        function.getResultAttrOfType<ShardingAttr>(resultIndex, kBlockAttrName);
    if (!dim || !type || dim.getValue().isNegative() ||
        dim.getValue().sge(type.getRank()))
      return op->emitError("'")
             << kScatterDimAttrName << "' of result " << resultIndex
             << " must be a dimension of the result";
    if (!block || block.getPartialAxes().empty())
      return op->emitError("'")
             << kScatterDimAttrName << "' of result " << resultIndex
             << " needs a pending sum to scatter (a cleave.block with "
                "partial axes)";
    return success();
  }
  if (attr.getName() == kUpdatesAttrName) {
    auto index = dyn_cast<IntegerAttr>(attr.getValue());
    unsigned numArgs = function.getNumArguments();
    if (!index || index.getValue().isNegative() ||
        index.getValue().uge(numArgs))
      return op->emitError("'")
             << kUpdatesAttrName << "' of result " << resultIndex
             << " must be the index of an argument (< " << numArgs << ")";
    unsigned arg = index.getInt();
    if (function.getArgumentTypes()[arg] !=
        function.getResultTypes()[resultIndex])
      return op->emitError("result ")
             << resultIndex << " updates argument " << arg
             << " but their types differ";
    if (!function.getArgAttr(arg, kParamAttrName) &&
        !function.getArgAttr(arg, kStateAttrName))
      return op->emitError("result ")
             << resultIndex << " updates argument " << arg
             << ", which is neither a parameter nor optimizer state";
    return success();
  }
  return op->emitError("cleave attribute '")
         << attr.getName().strref() << "' is not valid on result "
         << resultIndex;
}
