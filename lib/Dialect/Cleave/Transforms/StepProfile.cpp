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
#include "cleave/Analysis/TensorSplitSearch.h"
#include "cleave/Dialect/Cleave/Transforms/Autodiff.h"
#include "cleave/Dialect/Cleave/Transforms/Passes.h"

#include "mlir/Analysis/SliceAnalysis.h"
#include "mlir/IR/Builders.h"
#include "mlir/IR/Diagnostics.h"
#include "mlir/Pass/PassManager.h"
#include "llvm/ADT/SetVector.h"
#include "llvm/ADT/StringSwitch.h"
#include "llvm/Support/FormatVariadic.h"

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

/// Sets `field` of each part to the parameter elements its backward ops
/// (those outside the loss's slice) read in `step`: a parameter counts for
/// each layer whose backward reads it, as the partitioner gathers it again
/// for that layer. Blocks count per block.
static void countBackwardReads(func::FuncOp step,
                               double planner::PartCost::*field,
                               planner::ModelProfile &model) {
  Value loss = lookupOutput(step, OutputRole::Loss);
  if (!loss || model.layers <= 0)
    return;
  SetVector<Operation *> slice;
  BackwardSliceOptions options;
  options.inclusive = true;
  options.omitBlockArguments = true;
  (void)getBackwardSlice(loss, &slice, options);
  DenseSet<Operation *> forwardOps(slice.begin(), slice.end());
  double embed = 0.0, blocks = 0.0, head = 0.0;
  for (BlockArgument arg : step.getArguments()) {
    auto type = dyn_cast<RankedTensorType>(arg.getType());
    if (!type ||
        !step.getArgAttr(arg.getArgNumber(), CleaveDialect::kParamAttrName))
      continue;
    DenseSet<Attribute> readers;
    for (Operation *user : arg.getUsers()) {
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
  model.block.*field = blocks / model.layers;
  model.head.*field = head;
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
  OwningOpRef<ModuleOp> copy = module.clone();
  auto copiedForward = copy->lookupSymbol<func::FuncOp>(forward.getSymName());
  // A name no model uses for the step.
  std::string stepName = (forward.getSymName() + "_planned_step").str();
  FailureOr<func::FuncOp> step =
      copiedForward ? createTrainingStep(copiedForward, stepName)
                    : FailureOr<func::FuncOp>(failure());
  if (failed(step))
    return skipAll(reason.empty() ? "no training step" : reason);
  countBackwardReads(*step, &planner::PartCost::backwardParams, model);
  // The same with every block recomputed, on another copy.
  {
    OwningOpRef<ModuleOp> recomputed = copy->clone();
    PassManager pm(recomputed->getContext());
    CleaveRecomputeOptions recompute;
    recompute.function = stepName;
    pm.addPass(createCleaveRecompute(recompute));
    auto recomputedStep = recomputed->lookupSymbol<func::FuncOp>(stepName);
    if (recomputedStep && succeeded(pm.run(*recomputed)))
      countBackwardReads(recomputedStep,
                         &planner::PartCost::recomputedBackwardParams, model);
  }
  OpBuilder builder(copy->getContext());
  builder.setInsertionPointToStart(copy->getBody());
  for (int64_t size : sizes) {
    auto mesh = MeshOp::create(
        builder, forward.getLoc(), "planned_tp" + std::to_string(size),
        builder.getStrArrayAttr({"tp"}), builder.getDenseI64ArrayAttr({size}));
    reason.clear();
    FailureOr<TensorSplits> splits =
        searchTensorSplits(*step, mesh, "tp", size, cluster, options.precision);
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
    model.searchedSplits[size] = {
        getSearchedPart(embed), getSearchedPart(block), getSearchedPart(head)};
  }
}
