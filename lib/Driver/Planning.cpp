//===- Planning.cpp - Plan a model; run the chosen plan -------------------===//

#include "cleave/Driver/Planning.h"

#include "cleave/Dialect/Cleave/IR/CleaveOps.h"
#include "cleave/Dialect/Cleave/Transforms/Passes.h"
#include "cleave/Dialect/Cleave/Transforms/StepProfile.h"
#include "cleave/Driver/Driver.h"
#include "cleave/Driver/PlanReport.h"
#include "cleave/Pipeline/Schedule.h"

#include "mlir/Dialect/Func/IR/FuncOps.h"
#include "mlir/Pass/PassManager.h"
#include "llvm/ADT/StringExtras.h"
#include "llvm/Support/Format.h"
#include "llvm/Support/SourceMgr.h"

using namespace mlir;
using namespace mlir::cleave;
using namespace mlir::cleave::driver;

FailureOr<Planned> mlir::cleave::driver::planModel(MLIRContext &context,
                                                   StringRef modelPath,
                                                   const PlanRequest &request) {
  ParsedModel parsed(context, modelPath);
  if (!parsed.module || failed(checkPlanRequest(request)))
    return failure();
  func::FuncOp forward;
  for (func::FuncOp function : parsed.module->getOps<func::FuncOp>())
    if (!function.isDeclaration() &&
        (request.entry.empty() ? !forward
                               : function.getSymName() == request.entry))
      forward = function;
  if (!forward) {
    error() << "no function to plan"
            << (request.entry.empty() ? std::string()
                                      : " named '" + request.entry + "'")
            << "\n";
    return failure();
  }
  std::string message;
  FailureOr<planner::Cluster> cluster =
      planner::loadCluster(request.cluster, message);
  if (failed(cluster)) {
    error() << message << "\n";
    return failure();
  }
  if (request.bucketMegabytes > 0)
    cluster->overlap.bucketBytes = request.bucketMegabytes * 1024.0 * 1024.0;
  planner::PlannerOptions options;
  options.devices = request.devices;
  options.globalBatch = request.globalBatch;
  options.memoryLimit = request.memoryLimitGiB * 1024.0 * 1024.0 * 1024.0;
  options.unpaddedVocabulary = request.forTraining;
  options.precision = request.precision.value_or(
      request.forTraining ? std::string("f32")
                          : cluster->getDefaultPrecision());
  if (request.microBatchSize.value_or(0) > 0)
    options.microBatchSize = *request.microBatchSize;
  options.zeroStage = request.zeroStage;
  options.recompute = request.recompute;
  options.recomputeLayers = request.recomputeLayers;
  if (failed(planner::setPlannerChoices(options, *cluster, request.mesh,
                                        request.schedule.value_or(""),
                                        message))) {
    error() << message << "\n";
    return failure();
  }

  FailureOr<planner::ModelProfile> model = planner::profileModel(forward);
  if (failed(model))
    return failure();
  // Tensor parallelism priced as the split the compiler will build.
  SmallVector<std::string> skipped;
  addStepProfile(forward, *cluster, options, *model, skipped);
  for (const std::string &why : skipped)
    llvm::errs() << "cleavec: warning: the tensor-sharding search could not "
                    "price "
                 << why << "; priced as Megatron-LM's split\n";
  FailureOr<planner::SearchResult> result =
      planner::searchPlans(*model, *cluster, options, message);
  if (failed(result)) {
    error() << message << "\n";
    return failure();
  }
  return Planned{*cluster, *model, options, std::move(*result),
                 forward.getSymName().str()};
}

LogicalResult
mlir::cleave::driver::checkPlanRequest(const PlanRequest &request) {
  if (request.devices >= 1 && !request.cluster.empty())
    return success();
  error() << "planning needs --gpus N (at least 1) and --cluster NAME\n";
  return failure();
}

void mlir::cleave::driver::addAutoParallel(OpPassManager &pm,
                                           const PlanRequest &request,
                                           StringRef forward) {
  CleaveAutoParallelOptions plan;
  plan.function = forward.str();
  plan.devices = request.devices;
  plan.cluster = request.cluster;
  plan.globalBatch = request.globalBatch;
  plan.memoryLimit = request.memoryLimitGiB;
  plan.precision = request.precision.value_or(
      request.forTraining ? std::string("f32") : std::string());
  plan.mesh = request.mesh;
  plan.schedule = request.schedule.value_or("");
  plan.microBatchSize = request.microBatchSize.value_or(0);
  plan.zeroStage = request.zeroStage.value_or(-1);
  plan.training = request.forTraining;
  pm.addPass(createCleaveAutoParallel(plan));
}

void mlir::cleave::driver::describePlan(PlanAttr plan, llvm::raw_ostream &log) {
  std::string mesh = formatMeshSpec(plan.getUsedAxes());
  std::string strategies;
  if (plan.getZeroStage() > 0 || plan.getAxisSize("tp") > 1)
    strategies = llvm::join(plan.getShardingStrategies(), ",");
  log << "cleavec: auto: mesh " << (mesh.empty() ? "none" : mesh)
      << (strategies.empty() ? "" : ", strategies " + strategies)
      << ", micro-batches " << plan.getMicroBatchSize() << " x "
      << plan.getMicroBatches() << ", schedule " << plan.getSchedule()
      << (plan.getVirtualStages() > 1
              ? " v=" + std::to_string(plan.getVirtualStages())
              : "")
      << ", recompute ";
  if (DenseI64ArrayAttr layers = plan.getRecomputeLayers()) {
    llvm::interleave(layers.asArrayRef(), log, ",");
    log << " blocks per stage (the first of each)";
  } else {
    log << (plan.getRecompute() ? "full" : "none");
  }
  if (FloatAttr stepTime = plan.getStepTimeS())
    log << "; predicted step "
        << llvm::format("%.4f", stepTime.getValueAsDouble()) << " s on "
        << plan.getCluster();
  log << "\n";
  // The cluster loaded when the plan was made; a failure now has nothing
  // new to say.
  std::string message;
  if (FailureOr<planner::Cluster> cluster =
          planner::loadCluster(plan.getCluster(), message);
      succeeded(cluster))
    log << getPrecisionAdvice(*cluster, plan.getPrecision());
}

/// --explain: the splits cleave-search-tensor-sharding chooses per layer
/// for the plan's tp (on the model as built, at its own batch).
LogicalResult mlir::cleave::driver::explainTensorSplits(
    MLIRContext &context, StringRef modelPath, StringRef forwardName,
    int64_t tp, StringRef cluster, llvm::raw_ostream &log) {
  ParsedModel parsed(context, modelPath);
  OwningOpRef<ModuleOp> &module = parsed.module;
  if (!module)
    return failure();
  OpBuilder builder(&context);
  builder.setInsertionPointToStart(module->getBody());
  MeshOp::create(builder, module->getLoc(), "mesh",
                 builder.getStrArrayAttr({"tp"}),
                 builder.getDenseI64ArrayAttr({tp}));
  PassManager pm(&context);
  CleaveAutodiffOptions autodiff;
  autodiff.function = forwardName.str();
  pm.addPass(createCleaveAutodiff(autodiff));
  CleaveSearchTensorShardingOptions search;
  search.cluster = cluster.str();
  search.report = true;
  pm.addPass(createCleaveSearchTensorSharding(search));
  log << "cleavec: tensor-parallel splits at tp=" << tp
      << " (cleave-search-tensor-sharding on the model as built; "
         "per layer group, dims of [in, out] weights: 1 column, 0 "
         "row):\n";
  return pm.run(*module);
}

LogicalResult
mlir::cleave::driver::reportPlan(MLIRContext &context, StringRef modelPath,
                                 const Planned &planned, bool json,
                                 const PlanReportOptions &report,
                                 StringRef cluster, llvm::raw_ostream &log) {
  (json ? printPlanJson : printPlanReport)(planned.model, planned.cluster,
                                           planned.options, planned.result,
                                           report, log);
  const planner::Plan &chosen = planned.result.plans.front().plan;
  int64_t tp = chosen.tp;
  if (!report.explain || json || tp <= 1)
    return success();
  // Sequence parallelism builds Megatron's splits, not the search's.
  if (chosen.sequenceParallel) {
    log << "cleavec: tensor-parallel splits at tp=" << tp
        << ": Megatron's (megatron-sp), with the residual stream split on "
           "the sequence\n";
    return success();
  }
  return explainTensorSplits(context, modelPath, planned.forwardName, tp,
                             cluster, log);
}
