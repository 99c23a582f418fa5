//===- AutoParallel.cpp - Record the planner's choice in the module -------===//

#include "cleave/Dialect/Cleave/IR/CleaveOps.h"
#include "cleave/Dialect/Cleave/Transforms/Passes.h"
#include "cleave/Dialect/Cleave/Transforms/StepProfile.h"
#include "cleave/Planner/Planner.h"

#include "mlir/Dialect/Func/IR/FuncOps.h"

#include <cmath>

namespace mlir::cleave {
#define GEN_PASS_DEF_CLEAVEAUTOPARALLEL
#include "cleave/Dialect/Cleave/Transforms/Passes.h.inc"
} // namespace mlir::cleave

using namespace mlir;
using namespace mlir::cleave;

namespace {

struct AutoParallelPass
    : public cleave::impl::CleaveAutoParallelBase<AutoParallelPass> {
  using Base::Base;

  void runOnOperation() override {
    ModuleOp module = getOperation();
    if (failed(verifyUnplanned(module, getArgument())))
      return signalPassFailure();
    // The named function, else the one with cleave.role forward, else the
    // only one.
    SmallVector<func::FuncOp> candidates;
    for (func::FuncOp candidate : module.getOps<func::FuncOp>())
      if (!candidate.isDeclaration() &&
          (function.empty() || candidate.getSymName() == function))
        candidates.push_back(candidate);
    auto roleForward = llvm::find_if(candidates, [](func::FuncOp candidate) {
      return getFunctionRole(candidate) == FunctionRole::Forward;
    });
    if (function.empty() && roleForward != candidates.end())
      candidates = {*roleForward};
    func::FuncOp forward =
        candidates.size() == 1 ? candidates.front() : func::FuncOp();
    if (!forward) {
      module.emitError(
          function.empty()
              ? "needs a function with cleave.role forward, exactly one "
                "function, or function=NAME"
              : "no function '" + function + "' to plan");
      return signalPassFailure();
    }
    // The planner checks the other options; these it would take as given.
    if (!(memoryLimit >= 0) || std::isinf(memoryLimit) || devices < 1) {
      module.emitError("cleave-auto-parallel needs devices >= 1 and a finite "
                       "memory-limit >= 0");
      return signalPassFailure();
    }
    std::string error;
    FailureOr<planner::Cluster> loaded = planner::loadCluster(cluster, error);
    if (failed(loaded)) {
      module.emitError(error);
      return signalPassFailure();
    }
    FailureOr<planner::ModelProfile> model = planner::profileModel(forward);
    if (failed(model))
      return signalPassFailure();
    planner::PlannerOptions options;
    options.devices = devices;
    options.globalBatch = globalBatch;
    options.memoryLimit = memoryLimit * 1024.0 * 1024.0 * 1024.0;
    options.precision =
        precision.empty() ? loaded->getDefaultPrecision() : precision;
    options.unpaddedVocabulary = training;
    if (microBatchSize > 0)
      options.microBatchSize = microBatchSize;
    if (zeroStage != -1)
      options.zeroStage = zeroStage;
    FailureOr<planner::SearchResult> result = failure();
    if (succeeded(planner::setPlannerChoices(options, *loaded, mesh, schedule,
                                             error))) {
      // Tensor parallelism priced as the split the compiler will build.
      SmallVector<std::string> skipped;
      addStepProfile(forward, *loaded, options, *model, skipped);
      for (const std::string &why : skipped)
        forward.emitWarning("the tensor-sharding search could not price ")
            << why << "; priced as Megatron-LM's split";
      result = planner::searchPlans(*model, *loaded, options, error);
    }
    if (failed(result)) {
      module.emitError(error);
      return signalPassFailure();
    }
    const planner::RankedPlan *chosen = &result->plans.front();
    if (objective == PlanObjective::Memory)
      for (const planner::RankedPlan &candidate : result->plans)
        if (candidate.cost.peakMemory < chosen->cost.peakMemory)
          chosen = &candidate;
    annotate(module, *loaded, *chosen, options.precision);
  }

  void annotate(ModuleOp module, const planner::Cluster &cluster,
                const planner::RankedPlan &chosen, StringRef precisionChosen) {
    const planner::Plan &plan = chosen.plan;
    // Micro-batches on a sharded mesh run through the pipeline passes, over
    // a pp axis of one stage.
    bool pipelined =
        plan.pp > 1 || (plan.microBatches > 1 && plan.dp * plan.tp > 1);
    Builder b(module.getContext());
    SmallVector<Attribute> strategies;
    for (auto [axis, size] : plan.getAxes()) {
      std::string strategy = "none";
      if (axis == "dp" && plan.zeroStage > 0)
        strategy = "zero" + std::to_string(plan.zeroStage);
      else if (axis == "dp" && size > 1)
        strategy = "dp";
      else if (axis == "tp" && size > 1)
        strategy = plan.sequenceParallel ? "megatron-sp" : "search";
      else if (axis == "pp" && pipelined)
        strategy = "pipeline";
      strategies.push_back(b.getStringAttr(strategy));
    }
    // The stage DP's cut; an interleaved plan's chunks split evenly.
    DenseI64ArrayAttr layersPerStage;
    if (plan.pp > 1 && plan.virtualStages == 1)
      layersPerStage = b.getDenseI64ArrayAttr(chosen.cost.layersPerStage);
    // Recompute of some blocks only: the planner's count per stage.
    DenseI64ArrayAttr recomputeLayers;
    if (plan.recompute && !chosen.cost.recomputeLayers.empty())
      recomputeLayers = b.getDenseI64ArrayAttr(chosen.cost.recomputeLayers);
    module->setAttr(
        CleaveDialect::kPlanAttrName,
        PlanAttr::get(
            module.getContext(), plan.getMesh(), b.getArrayAttr(strategies),
            plan.microBatchSize, plan.microBatches,
            pipeline::getScheduleName(plan.schedule), plan.virtualStages,
            layersPerStage, plan.zeroStage, plan.recompute, recomputeLayers,
            precisionChosen, chosen.cost.paddedVocab, cluster.name,
            b.getF64FloatAttr(chosen.cost.stepTime),
            b.getF64FloatAttr(chosen.cost.peakMemory),
            b.getF64FloatAttr(chosen.cost.mfu)));
  }
};

} // namespace
