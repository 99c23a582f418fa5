//===- StepProfile.cpp - What the planner reads off the training step ----===//
//
// The planner prices what the compiler builds from the training step, not
// from the forward alone: which parameters the backward reads (ZeRO-3
// gathers those again), and the collectives of the tensor-sharding
// search's split, which every plan but a sequence-parallel one builds. The
// step is built here, on a copy of the model, once per planning.
//
//===----------------------------------------------------------------------===//

#include "cleave/Dialect/Cleave/Transforms/StepProfile.h"

#include "FunctionLookup.h"
#include "ShardingStrategy.h"
#include "cleave/Analysis/TensorSplitSearch.h"
#include "cleave/Dialect/Cleave/Transforms/Autodiff.h"
#include "cleave/Dialect/Cleave/Transforms/Passes.h"

#include "mlir/IR/Builders.h"
#include "mlir/IR/Diagnostics.h"
#include "mlir/Pass/PassManager.h"
#include "mlir/Transforms/Passes.h"
#include "llvm/ADT/BitVector.h"
#include "llvm/ADT/StringSwitch.h"
#include "llvm/Support/FormatVariadic.h"

#include <map>
#include <set>

using namespace mlir;
using namespace mlir::cleave;

SmallVector<int64_t>
mlir::cleave::getPlannedTpSizes(const planner::ModelProfile &model,
                                const planner::PlannerOptions &options) {
  SmallVector<int64_t> sizes;
  if (options.mesh) {
    if (options.mesh->tp > 1)
      sizes.push_back(options.mesh->tp);
    return sizes;
  }
  for (int64_t tp = 2; tp <= model.heads; ++tp)
    if (model.heads % tp == 0 && options.devices % tp == 0 &&
        (!options.unpaddedVocabulary || model.vocab % tp == 0))
      sizes.push_back(tp);
  return sizes;
}

/// A part's groups (blocks may form several), each with its weight: how
/// many of the part's layers it stands for.
static planner::SearchedPart
getSearchedPart(ArrayRef<std::pair<const LayerGroupSplit *, double>> groups) {
  using Kind = planner::SplitCollectiveCost::Kind;
  planner::SearchedPart part;
  double whole[4] = {}, device[4] = {};
  for (auto [group, times] : groups) {
    for (const SplitCollective &collective : group->collectives) {
      planner::SplitCollectiveCost cost;
      cost.kind = llvm::StringSwitch<Kind>(collective.kind)
                      .Case("reduce-scatter", Kind::ReduceScatter)
                      .Case("all-gather", Kind::AllGather)
                      .Case("all-to-all", Kind::AllToAll)
                      .Default(Kind::AllReduce);
      cost.tensorBytes = collective.tensorBytes;
      cost.communicatedBytes = collective.communicatedBytes;
      cost.scalesWithBatch = collective.scalesWithBatch;
      cost.forward = collective.forward;
      cost.times = times;
      part.collectives.push_back(cost);
    }
    whole[0] += times * group->matmulFlops;
    device[0] += times * group->deviceMatmulFlops;
    whole[1] += times * group->memoryBytes;
    device[1] += times * group->deviceMemoryBytes;
    whole[2] += times * group->activationBytes;
    device[2] += times * group->deviceActivationBytes;
    whole[3] += times * group->parameterBytes;
    device[3] += times * group->deviceParameterBytes;
  }
  auto share = [&](int index) {
    return whole[index] > 0.0 ? device[index] / whole[index] : 1.0;
  };
  part.matmulShare = share(0);
  part.memoryShare = share(1);
  part.activationShare = share(2);
  part.parameterShare = share(3);
  return part;
}

/// The blocks `step` holds, by index.
static std::set<int64_t> getBlocksPresent(func::FuncOp step) {
  std::set<int64_t> present;
  step.walk([&](Operation *op) {
    if (int64_t index = getBlockIndex(op); index >= 0)
      present.insert(index);
  });
  return present;
}

/// The blocks a copy of the model keeps: the first, one that stands for
/// the middle ones, and the last. Blocks are identical (profileModel
/// checks their costs), so the middle one's collectives count for all of
/// them, and the step builds and partitions in time independent of depth.
constexpr int64_t kKeptBlocks = 3;

/// Cuts `forward` (identical blocks 0..L-1 in order) to its first
/// kKeptBlocks blocks: what read the last block's results reads the last
/// kept block's instead. Whether it cut: it leaves the function as it was
/// where blocks differ in their ops or do not form a chain.
static bool keepFirstBlocks(func::FuncOp forward) {
  std::map<int64_t, SmallVector<Operation *>> blocks;
  for (Operation &op : forward.getBody().front())
    if (int64_t index = getBlockIndex(&op); index >= 0)
      blocks[index].push_back(&op);
  int64_t count = static_cast<int64_t>(blocks.size());
  if (count <= kKeptBlocks || blocks.rbegin()->first != count - 1)
    return false;
  const SmallVector<Operation *> &last = blocks[count - 1];
  const SmallVector<Operation *> &kept = blocks[kKeptBlocks - 1];
  for (const auto &entry : blocks)
    if (entry.second.size() != last.size())
      return false;
  for (auto [from, to] : llvm::zip(last, kept)) {
    if (from->getName() != to->getName() ||
        from->getNumResults() != to->getNumResults())
      return false;
    for (auto [a, b] : llvm::zip(from->getResults(), to->getResults()))
      if (a.getType() != b.getType())
        return false;
  }
  // Only the cut blocks read the cut blocks' results, but for the last
  // block's, which the last kept block's replace.
  DenseSet<Operation *> cutOps, lastOps(last.begin(), last.end());
  for (int64_t index = kKeptBlocks; index < count; ++index)
    cutOps.insert(blocks[index].begin(), blocks[index].end());
  for (Operation *op : cutOps)
    for (Operation *user : op->getUsers())
      if (!cutOps.contains(user) && !lastOps.contains(op))
        return false;
  for (auto [from, to] : llvm::zip(last, kept))
    for (auto [a, b] : llvm::zip(from->getResults(), to->getResults()))
      a.replaceUsesWithIf(b, [](OpOperand &use) {
        return getBlockIndex(use.getOwner()) < kKeptBlocks;
      });
  for (int64_t index = count - 1; index >= kKeptBlocks; --index)
    for (Operation *op : llvm::reverse(blocks[index]))
      op->erase();
  // The cut blocks' parameters go too.
  llvm::BitVector unused(forward.getNumArguments());
  for (BlockArgument arg : forward.getArguments())
    if (arg.use_empty() &&
        forward.getArgAttr(arg.getArgNumber(), CleaveDialect::kParamAttrName))
      unused.set(arg.getArgNumber());
  (void)forward.eraseArguments(unused);
  return true;
}

/// Sets `field` of each part to the parameter elements its backward ops
/// (those outside the loss's slice) read in `step`: a parameter counts for
/// each layer whose backward reads it, as the partitioner gathers it again
/// for that layer. Blocks count per block.
static void countBackwardReads(func::FuncOp step,
                               double planner::PartCost::*field,
                               planner::ModelProfile &model) {
  Value loss = lookupOutput(step, OutputRole::Loss);
  if (!loss)
    return;
  DenseSet<Operation *> forwardOps = getLossSlice(loss);
  double embed = 0.0, blocks = 0.0, head = 0.0;
  std::set<int64_t> present = getBlocksPresent(step);
  for (BlockArgument arg : step.getArguments()) {
    auto type = dyn_cast<RankedTensorType>(arg.getType());
    if (!type ||
        !step.getArgAttr(arg.getArgNumber(), CleaveDialect::kParamAttrName))
      continue;
    // Its readers, and in mixed precision those of its 16-bit cast.
    SmallVector<Operation *> users(arg.getUsers());
    for (Operation *user : arg.getUsers())
      if (isa<CastOp>(user))
        llvm::append_range(users, user->getUsers());
    DenseSet<Attribute> readers;
    for (Operation *user : users) {
      auto layer =
          user->getAttrOfType<LayerAttr>(CleaveDialect::kLayerAttrName);
      if (forwardOps.contains(user) || !layer || !readers.insert(layer).second)
        continue;
      double elements = static_cast<double>(type.getNumElements());
      switch (layer.getKind()) {
      case LayerKind::Embed:
        embed += elements;
        break;
      case LayerKind::Head:
        head += elements;
        break;
      default:
        blocks += elements;
      }
    }
  }
  model.embed.*field = embed;
  model.block.*field = present.empty() ? 0.0 : blocks / present.size();
  model.head.*field = head;
}

/// Partitions `module`'s step `stepName` over its tp mesh (after
/// `strategy`, if any, constrains it) as cleave-parallelize does.
static LogicalResult partitionStep(ModuleOp module, StringRef stepName,
                                   std::unique_ptr<Pass> strategy) {
  PassManager pm(module.getContext());
  if (strategy)
    pm.addPass(std::move(strategy));
  pm.addNestedPass<func::FuncOp>(createCleavePropagateSharding());
  pm.addNestedPass<func::FuncOp>(createCleavePartition());
  return pm.run(module);
}

/// The parameter argument whose update an untagged collective moves: the
/// first one reached through its operands' producers.
static std::optional<BlockArgument> getUpdatedParameter(Operation *op) {
  auto step = op->getParentOfType<func::FuncOp>();
  SmallVector<Value> work(op->getOperands());
  DenseSet<Value> seen;
  for (unsigned i = 0; i < work.size() && i < 256; ++i) {
    Value value = work[i];
    if (!seen.insert(value).second)
      continue;
    if (auto arg = dyn_cast<BlockArgument>(value)) {
      if (step.getArgAttr(arg.getArgNumber(), CleaveDialect::kParamAttrName) &&
          !arg.use_empty())
        return arg;
      continue;
    }
    llvm::append_range(work, value.getDefiningOp()->getOperands());
  }
  return std::nullopt;
}

/// The collectives partitioning built into `step`, by part (embedding,
/// one block on average, head), as the planner prices them: the whole
/// tensor each moves, the bytes each device sends as cleave-print-cost
/// counts them, whether it is an activation's (it grows with the batch:
/// its leading dimension is the batch, or batch and sequence flattened)
/// and whether the forward makes it. An untagged collective (a gather of
/// a weight for its cast to 16 bits) counts for the layer of the first
/// tagged op its value reaches, or else to the update; scalars (the
/// gradient norm's, the loss's) are the planner's own terms. `cut`: the
/// step is of the model cut to its first kKeptBlocks blocks.
static void setBuiltCollectives(func::FuncOp step,
                                const planner::ModelProfile &model, bool cut,
                                planner::SearchedSplit &split) {
  using Kind = planner::SplitCollectiveCost::Kind;
  for (planner::SearchedPart *part : {&split.embed, &split.block, &split.head})
    part->collectives.clear();
  split.update.clear();
  DenseSet<Operation *> forwardOps =
      getLossSlice(lookupOutput(step, OutputRole::Loss));
  std::set<int64_t> present = getBlocksPresent(step);
  // How many of the model's blocks a block of the step stands for: of a
  // model cut to its first blocks, the middle one stands for all but the
  // first and the last.
  double layers = static_cast<double>(model.layers);
  auto getMultiplicity = [&](int64_t index) {
    if (cut && index > 0 && index < kKeptBlocks - 1)
      return (layers - 2.0) / (kKeptBlocks - 2);
    return cut ? 1.0 : layers / std::max<double>(1.0, present.size());
  };
  auto getBytes = [](Value value) {
    auto type = cast<RankedTensorType>(value.getType());
    return static_cast<double>(type.getNumElements()) *
           type.getElementTypeBitWidth() / 8.0;
  };
  auto getLayer = [](Operation *op) {
    SmallVector<Operation *> work = {op};
    for (unsigned i = 0; i < work.size() && i < 64; ++i) {
      if (auto layer =
              work[i]->getAttrOfType<LayerAttr>(CleaveDialect::kLayerAttrName))
        return layer;
      llvm::append_range(work, work[i]->getUsers());
    }
    return LayerAttr();
  };
  step.walk([&](Operation *op) {
    auto cost = dyn_cast<CostOpInterface>(op);
    if (!cost || op->getNumOperands() != 1 || op->getNumResults() != 1)
      return;
    auto input = cast<RankedTensorType>(op->getOperand(0).getType());
    if (input.getRank() == 0)
      return;
    planner::SplitCollectiveCost collective;
    if (isa<AllReduceOp>(op)) {
      collective.kind = Kind::AllReduce;
      collective.tensorBytes = getBytes(op->getOperand(0));
    } else if (isa<ReduceScatterOp>(op)) {
      collective.kind = Kind::ReduceScatter;
      collective.tensorBytes = getBytes(op->getOperand(0));
    } else if (isa<AllGatherOp>(op)) {
      collective.kind = Kind::AllGather;
      collective.tensorBytes = getBytes(op->getResult(0));
    } else if (auto allToAll = dyn_cast<AllToAllOp>(op)) {
      // The whole tensor the axis's blocks make up.
      collective.kind = Kind::AllToAll;
      collective.tensorBytes =
          getBytes(op->getOperand(0)) *
          static_cast<double>(input.getDimSize(allToAll.getSplitDim())) /
          cast<RankedTensorType>(op->getResult(0).getType())
              .getDimSize(allToAll.getSplitDim());
    } else {
      return;
    }
    collective.communicatedBytes = cost.getCommunicatedBytes();
    int64_t leading = input.getDimSize(0);
    collective.scalesWithBatch =
        input.getRank() >= 2 &&
        (leading == model.batch * model.seq ||
         (leading == model.batch &&
          (input.getRank() >= 3 || input.getDimSize(1) == model.seq)));
    collective.forward = forwardOps.contains(op);
    LayerAttr layer = getLayer(op);
    if (!layer) {
      // The update's, once per step: for as many blocks as the block of
      // the parameter it moves stands for.
      collective.scalesWithBatch = false;
      if (auto param = getUpdatedParameter(op))
        if (Operation *reader = getFirstReader(*param))
          if (LayerAttr owner = getLayer(reader);
              owner && owner.getKind() == LayerKind::Block)
            collective.times = getMultiplicity(owner.getIndex());
      split.update.push_back(collective);
    } else if (layer.getKind() == LayerKind::Embed) {
      split.embed.collectives.push_back(collective);
    } else if (layer.getKind() == LayerKind::Head) {
      split.head.collectives.push_back(collective);
    } else {
      collective.times = getMultiplicity(layer.getIndex()) / layers;
      split.block.collectives.push_back(collective);
    }
  });
}

/// Where a value sits in a step, the same in the whole step and in the
/// one cut to its first blocks: its op's layer kind and index (the whole
/// step's last block stands where the cut one's last is), the op's place
/// among that layer's ops, and its result number. None for a block the cut
/// step does not have, or an untagged op.
using Place = std::tuple<int, int64_t, unsigned, unsigned>;

static std::map<Place, Value> getPlaces(func::FuncOp step, int64_t layers,
                                        bool whole, bool cut) {
  std::map<Place, Value> places;
  std::map<std::pair<int, int64_t>, unsigned> counts;
  step.walk([&](Operation *op) {
    auto layer = op->getAttrOfType<LayerAttr>(CleaveDialect::kLayerAttrName);
    // An untagged op (a parameter's cast to 16 bits) sits with the layer of
    // its first reader, counted apart from that layer's own ops.
    bool inherited = false;
    if (!layer) {
      Operation *first = nullptr;
      for (Value result : op->getResults())
        if (Operation *reader = getFirstReader(result);
            reader && (!first || reader->isBeforeInBlock(first)))
          first = reader;
      layer =
          first ? first->getAttrOfType<LayerAttr>(CleaveDialect::kLayerAttrName)
                : LayerAttr();
      inherited = true;
    }
    if (!layer)
      return;
    int kind = static_cast<int>(layer.getKind()) * 2 + (inherited ? 1 : 0);
    int64_t index = layer.getKind() == LayerKind::Block ? layer.getIndex() : 0;
    unsigned position = counts[{kind, index}]++;
    if (whole && cut && layer.getKind() == LayerKind::Block) {
      if (index == layers - 1)
        index = kKeptBlocks - 1;
      else if (index >= kKeptBlocks - 1)
        return;
    }
    for (OpResult result : op->getResults())
      places[{kind, index, position, result.getResultNumber()}] = result;
  });
  return places;
}

/// The search's answer for the whole step, carried to the cut one: each
/// parameter by its place among its first reader layer's parameters, each
/// split value by its place. None where the two steps do not match.
static std::optional<TensorSplits> carrySplits(const TensorSplits &splits,
                                               func::FuncOp whole,
                                               func::FuncOp cut, int64_t layers,
                                               bool isCut) {
  std::map<Place, Value> from = getPlaces(whole, layers, true, isCut);
  std::map<Place, Value> to = getPlaces(cut, layers, false, isCut);
  DenseMap<Value, Place> placeOf;
  for (auto &[place, value] : from)
    placeOf[value] = place;
  TensorSplits carried;
  for (const ValueSplit &split : splits.values) {
    auto place = placeOf.find(split.value);
    if (place == placeOf.end())
      continue; // A block the cut step does not have.
    auto value = to.find(place->second);
    if (value == to.end())
      return std::nullopt;
    carried.values.push_back({value->second, split.dim, split.order});
  }
  // A parameter: the first op that reads it, and which of that op's
  // operands it is.
  for (const ParameterSplit &split : splits.parameters) {
    Operation *op = getFirstReader(split.parameter);
    if (!op)
      continue;
    unsigned operand = llvm::find(op->getOperands(), split.parameter) -
                       op->getOperands().begin();
    if (op->getNumResults() == 0)
      return std::nullopt;
    auto place = placeOf.find(op->getResult(0));
    if (place == placeOf.end())
      continue;
    auto value = to.find(place->second);
    if (value == to.end())
      return std::nullopt;
    Operation *cutOp = value->second.getDefiningOp();
    if (cutOp->getName() != op->getName() ||
        cutOp->getNumOperands() != op->getNumOperands())
      return std::nullopt;
    auto arg = dyn_cast<BlockArgument>(cutOp->getOperand(operand));
    if (!arg || arg.getOwner() != &cut.getBody().front())
      return std::nullopt;
    carried.parameters.push_back({arg, split.dim, split.order});
  }
  return carried;
}

void mlir::cleave::addStepProfile(func::FuncOp forward,
                                  const planner::Cluster &cluster,
                                  const planner::PlannerOptions &options,
                                  planner::ModelProfile &model,
                                  SmallVectorImpl<std::string> &skipped) {
  SmallVector<int64_t> sizes = getPlannedTpSizes(model, options);
  auto module = forward->getParentOfType<ModuleOp>();
  if (!module)
    return;
  // What the search says when it cannot price a size becomes the reason
  // the planner prices it as Megatron's split, not an error of planning.
  std::string reason;
  ScopedDiagnosticHandler capture(forward.getContext(), [&](Diagnostic &diag) {
    if (diag.getSeverity() == DiagnosticSeverity::Error && reason.empty())
      reason = diag.str();
    return success();
  });
  auto skipAll = [&](StringRef why) {
    for (int64_t size : sizes)
      skipped.push_back(llvm::formatv("tp={0}: {1}", size, why).str());
  };
  // The step as cleavec builds it (simplified before and after autodiff,
  // in the plan's mixed precision, so that the search and partitioning see
  // the compiler's ops), of the whole model and of one cut to its first
  // blocks. The search runs on the whole step; partitioning, which takes
  // time with the model's depth, on the cut one.
  std::string stepName = (forward.getSymName() + "_planned_step").str();
  bool mixed = options.precision != "f32" && model.elementBytes == 4;
  bool isCut = false;
  auto buildStep = [&](bool cut) -> OwningOpRef<ModuleOp> {
    OwningOpRef<ModuleOp> copy = module.clone();
    auto copiedForward = copy->lookupSymbol<func::FuncOp>(forward.getSymName());
    if (!copiedForward)
      return {};
    if (cut)
      isCut = keepFirstBlocks(copiedForward);
    PassManager pm(copy->getContext());
    pm.addPass(createCanonicalizerPass());
    pm.addPass(createCSEPass());
    if (mixed) {
      CleaveMixedPrecisionOptions precision;
      precision.function = forward.getSymName().str();
      precision.precision = options.precision == "f16" ? ComputePrecision::F16
                                                       : ComputePrecision::BF16;
      pm.addPass(createCleaveMixedPrecision(precision));
    }
    if (failed(pm.run(*copy)) ||
        failed(createTrainingStep(copiedForward, stepName)))
      return {};
    PassManager simplify(copy->getContext());
    simplify.addPass(createCanonicalizerPass());
    simplify.addPass(createCSEPass());
    if (failed(simplify.run(*copy)))
      return {};
    return copy;
  };
  OwningOpRef<ModuleOp> copy = buildStep(/*cut=*/false);
  OwningOpRef<ModuleOp> cut = copy ? buildStep(/*cut=*/true) : nullptr;
  if (!copy || !cut)
    return skipAll(reason.empty() ? "no training step" : reason);
  // What the backward reads, per block alike in every block.
  auto step = cut->lookupSymbol<func::FuncOp>(stepName);
  countBackwardReads(step, &planner::PartCost::backwardParams, model);
  // The same with every block recomputed, on another copy.
  {
    OwningOpRef<ModuleOp> recomputed = cut->clone();
    PassManager pm(recomputed->getContext());
    CleaveRecomputeOptions recompute;
    recompute.function = stepName;
    pm.addPass(createCleaveRecompute(recompute));
    auto recomputedStep = recomputed->lookupSymbol<func::FuncOp>(stepName);
    if (recomputedStep && succeeded(pm.run(*recomputed)))
      countBackwardReads(recomputedStep,
                         &planner::PartCost::recomputedBackwardParams, model);
  }
  // Each size on copies of their own, with a tp mesh; the search, as
  // cleavec runs it, on the step with its update joined (one micro-batch,
  // no pipeline stages: the update's reads of the f32 master weights
  // change its answer in mixed precision).
  auto makeTrial = [&](ModuleOp from, int64_t size,
                       bool withUpdate) -> OwningOpRef<ModuleOp> {
    OwningOpRef<ModuleOp> trial = from.clone();
    OpBuilder builder(trial->getContext());
    builder.setInsertionPointToStart(trial->getBody());
    MeshOp::create(
        builder, forward.getLoc(), "planned_tp" + std::to_string(size),
        builder.getStrArrayAttr({"tp"}), builder.getDenseI64ArrayAttr({size}));
    if (!withUpdate)
      return trial;
    PassManager pm(trial->getContext());
    CleaveOptimizerOptions update;
    update.function = stepName;
    pm.addPass(createCleaveOptimizer(update));
    pm.addPass(createCanonicalizerPass());
    pm.addPass(createCSEPass());
    if (failed(pm.run(*trial)))
      return {};
    return trial;
  };
  for (int64_t size : sizes) {
    // A plan that pads the vocabulary is priced as Megatron-LM's split: the
    // padded model is not this one.
    if (planner::getPaddedVocab(model.vocab, size, options) != model.vocab)
      continue;
    // Sequence parallelism builds Megatron-LM's split; priced as built.
    if (model.seq % size == 0) {
      OwningOpRef<ModuleOp> trial = makeTrial(*cut, size, false);
      CleaveShardMegatronOptions megatron;
      megatron.function = stepName;
      megatron.sequenceParallel = true;
      reason.clear();
      if (succeeded(partitionStep(*trial, stepName,
                                  createCleaveShardMegatron(megatron)))) {
        planner::SearchedSplit &built = model.sequenceParallelSplits[size];
        setBuiltCollectives(trial->lookupSymbol<func::FuncOp>(stepName), model,
                            isCut, built);
        built.builtInPrecision = true;
      }
    }
    reason.clear();
    OwningOpRef<ModuleOp> whole = makeTrial(*copy, size, true);
    OwningOpRef<ModuleOp> part = whole ? makeTrial(*cut, size, true) : nullptr;
    if (!whole || !part) {
      skipped.push_back(
          llvm::formatv("tp={0}: the step's update: {1}", size, reason).str());
      continue;
    }
    auto wholeStep = whole->lookupSymbol<func::FuncOp>(stepName);
    FailureOr<TensorSplits> splits =
        searchTensorSplits(wholeStep, *whole->getOps<MeshOp>().begin(), "tp",
                           size, cluster, options.precision);
    if (failed(splits)) {
      skipped.push_back(llvm::formatv("tp={0}: {1}", size, reason).str());
      continue;
    }
    SmallVector<std::pair<const LayerGroupSplit *, double>> embed, block, head;
    for (const LayerGroupSplit &group : splits->groups) {
      // Blocks of several groups count by their share of the blocks.
      double blocks = 0.0;
      for (Attribute layer : group.layers) {
        auto tag = dyn_cast<LayerAttr>(layer);
        if (!tag)
          continue;
        if (tag.getKind() == LayerKind::Embed)
          embed.push_back({&group, 1.0});
        else if (tag.getKind() == LayerKind::Head)
          head.push_back({&group, 1.0});
        else
          ++blocks;
      }
      if (blocks > 0 && model.layers > 0)
        block.push_back({&group, blocks / model.layers});
    }
    planner::SearchedSplit &searched = model.searchedSplits[size];
    searched = {getSearchedPart(embed), getSearchedPart(block),
                getSearchedPart(head)};
    // The collectives partitioning builds from the search's answer, rather
    // than the search's model of them: the answer carried to the cut step.
    auto partStep = part->lookupSymbol<func::FuncOp>(stepName);
    MeshOp mesh = *part->getOps<MeshOp>().begin();
    std::optional<TensorSplits> carried =
        carrySplits(*splits, wholeStep, partStep, model.layers, isCut);
    if (carried &&
        succeeded(constrainToSplits(partStep, *carried, {mesh, "tp", size},
                                    /*priority=*/0)) &&
        succeeded(partitionStep(*part, stepName, nullptr))) {
      setBuiltCollectives(partStep, model, isCut, searched);
      searched.builtInPrecision = true;
    }
  }
}
