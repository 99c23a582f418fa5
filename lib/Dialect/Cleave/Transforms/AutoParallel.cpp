//===- AutoParallel.cpp - Record the planner's choice in the module -------===//

#include "cleave/Dialect/Cleave/IR/CleaveOps.h"
#include "cleave/Dialect/Cleave/Transforms/Passes.h"
#include "cleave/Planner/Planner.h"

#include "mlir/Dialect/Func/IR/FuncOps.h"

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
    if (module->hasAttr(CleaveDialect::kPlanAttrName) ||
        !module.getOps<MeshOp>().empty()) {
      module.emitError("already has a plan or a mesh: cleave-auto-parallel "
                       "plans an unpartitioned model");
      return signalPassFailure();
    }
    SmallVector<func::FuncOp> candidates;
    for (func::FuncOp candidate : module.getOps<func::FuncOp>())
      if (!candidate.isDeclaration() &&
          (function.empty() || candidate.getSymName() == function))
        candidates.push_back(candidate);
    func::FuncOp forward =
        candidates.size() == 1 ? candidates.front() : func::FuncOp();
    if (!forward) {
      module.emitError(function.empty()
                           ? "needs exactly one function to plan, or "
                             "function=NAME"
                           : "no function '" + function + "' to plan");
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
    FailureOr<planner::SearchResult> result =
        planner::searchPlans(*model, *loaded, options, error);
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
    Builder b(module.getContext());
    SmallVector<Attribute> strategies;
    for (auto [axis, size] : plan.getAxes()) {
      std::string strategy = "none";
      if (axis == "dp" && plan.zeroStage > 0)
        strategy = "zero" + std::to_string(plan.zeroStage);
      else if (axis == "dp" && size > 1)
        strategy = "dp";
      else if (axis == "tp" && size > 1)
        strategy = "search";
      else if (axis == "pp" && size > 1)
        strategy = "pipeline";
      strategies.push_back(b.getStringAttr(strategy));
    }
    module->setAttr(
        CleaveDialect::kPlanAttrName,
        PlanAttr::get(
            module.getContext(), plan.getMesh(), b.getArrayAttr(strategies),
            plan.microBatchSize, plan.microBatches,
            pipeline::getScheduleName(plan.schedule), plan.virtualStages,
            b.getDenseI64ArrayAttr(chosen.cost.layersPerStage), plan.zeroStage, plan.recompute,
            precisionChosen, chosen.cost.paddedVocab, cluster.name,
            b.getF64FloatAttr(chosen.cost.stepTime),
            b.getF64FloatAttr(chosen.cost.peakMemory),
            b.getF64FloatAttr(chosen.cost.mfu)));
    SmallVector<StringRef> axes;
    SmallVector<int64_t> sizes;
    for (auto [axis, size] : plan.getAxes()) {
      axes.push_back(axis);
      sizes.push_back(size);
    }
    OpBuilder builder(module.getContext());
    builder.setInsertionPointToStart(module.getBody());
    MeshOp::create(builder, module.getLoc(), "mesh",
                   builder.getStrArrayAttr(axes),
                   builder.getDenseI64ArrayAttr(sizes));
  }
};

} // namespace
