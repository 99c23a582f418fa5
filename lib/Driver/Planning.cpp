//===- Planning.cpp - Plan a model; run the chosen plan -------------------===//

#include "cleave/Driver/Planning.h"

#include "cleave/Dialect/Cleave/IR/CleaveOps.h"
#include "cleave/Dialect/Cleave/Transforms/Passes.h"
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
  if (request.devices < 1 || request.cluster.empty()) {
    error() << "planning needs --gpus N (at least 1) and --cluster NAME\n";
    return failure();
  }
  std::string message;
  FailureOr<planner::Cluster> cluster =
      planner::loadCluster(request.cluster, message);
  if (failed(cluster)) {
    error() << message << "\n";
    return failure();
  }
  planner::PlannerOptions options;
  options.devices = request.devices;
  options.globalBatch = request.globalBatch;
  options.memoryLimit = request.memoryLimitGiB * 1024.0 * 1024.0 * 1024.0;
  options.unpaddedVocabulary = request.forTraining;
  options.precision = request.precision.value_or(
      request.forTraining ? std::string("f32")
                          : cluster->getDefaultPrecision());
  if (options.precision != "bf16" && options.precision != "f16" &&
      options.precision != "f32") {
    error() << "--precision must be bf16, f16 or f32, got '"
            << options.precision << "'\n";
    return failure();
  }
  if (!cluster->getPeakFlops(options.precision)) {
    error() << "cluster '" << cluster->name << "' gives no peak for "
            << options.precision << "\n";
    return failure();
  }
  if (request.globalBatch < 0 || request.memoryLimitGiB < 0 ||
      request.microBatchSize.value_or(0) < 0 ||
      request.zeroStage.value_or(0) < 0 || request.zeroStage.value_or(0) > 3) {
    error() << "--global-batch, --memory-limit and --micro-batch-size must "
               "not be negative, --zero-stage is 0 to 3\n";
    return failure();
  }
  FailureOr<SmallVector<MeshAxisSpec>> mesh =
      request.mesh.empty() ? SmallVector<MeshAxisSpec>()
                           : parseMeshSpec(request.mesh, message);
  if (failed(mesh)) {
    error() << "--mesh: " << message << "\n";
    return failure();
  }
  if (!mesh->empty()) {
    planner::Plan fixed;
    for (const auto &[name, size] : *mesh) {
      if (name == "dp")
        fixed.dp = size;
      else if (name == "tp")
        fixed.tp = size;
      else if (name == "pp")
        fixed.pp = size;
      else {
        error() << "plan: --mesh axes are dp, tp and pp, got '" << name
                << "'\n";
        return failure();
      }
    }
    if (fixed.getDevices() != request.devices) {
      error() << "--mesh " << request.mesh << " has " << fixed.getDevices()
              << " devices, not the " << request.devices << " of --gpus\n";
      return failure();
    }
    options.mesh = fixed;
  }
  if (request.microBatchSize.value_or(0) > 0)
    options.microBatchSize = *request.microBatchSize;
  options.zeroStage = request.zeroStage;
  if (request.schedule) {
    options.schedule = pipeline::parseScheduleKind(*request.schedule);
    if (!options.schedule) {
      error() << "--schedule must be gpipe, 1f1b or interleaved, got '"
              << *request.schedule << "'\n";
      return failure();
    }
  }
  options.recompute = request.recompute;

  ParsedModel parsed(context, modelPath);
  OwningOpRef<ModuleOp> &module = parsed.module;
  if (!module)
    return failure();
  func::FuncOp forward;
  for (func::FuncOp function : module->getOps<func::FuncOp>())
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
  FailureOr<planner::ModelProfile> model = planner::profileModel(forward);
  if (failed(model))
    return failure();
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
mlir::cleave::driver::applyChosenPlan(const Planned &planned,
                                      TrainingPipelineOptions &options,
                                      llvm::raw_ostream &log) {
  const planner::Plan &chosen = planned.result.plans.front().plan;
  bool pipelined =
      chosen.pp > 1 || (chosen.microBatches > 1 && chosen.dp * chosen.tp > 1);
  SmallVector<MeshAxisSpec> axes;
  for (auto [name, size] : chosen.getAxes())
    if (size > 1 || (name == "pp" && pipelined))
      axes.push_back({name.str(), size});
  // Tensor parallelism by the cost-driven search, priced on the cluster
  // the plan was made for; a data-parallel mesh alone keeps the canonical
  // strategy of its axis.
  std::string strategies;
  if (chosen.zeroStage > 0 || chosen.tp > 1)
    strategies = llvm::join(chosen.getStrategies(), ",");
  std::string stagedStrategies;
  for (const MeshAxisSpec &axis : axes)
    if (axis.name != "pp")
      stagedStrategies += (stagedStrategies.empty() ? "" : ",") +
                          std::string(axis.name == "dp" ? "dp" : "search");
  std::string mesh = formatMeshSpec(axes);
  options.mesh = mesh;
  options.strategy = pipelined ? stagedStrategies : strategies;
  options.microBatches = chosen.microBatches;
  options.schedule = pipeline::getScheduleName(chosen.schedule).str();
  options.virtualStages = chosen.virtualStages;
  options.recompute = chosen.recompute;
  const planner::PlanCost &cost = planned.result.plans.front().cost;
  // The stage DP's cut (an interleaved plan's chunks split evenly).
  options.layersPerStage.clear();
  if (chosen.pp > 1 && chosen.virtualStages == 1)
    for (int64_t blocks : cost.layersPerStage)
      options.layersPerStage.push_back(blocks);
  log << "cleavec: auto: mesh " << (mesh.empty() ? "none" : mesh)
      << (strategies.empty() ? "" : ", strategies " + strategies)
      << ", micro-batches " << chosen.microBatchSize << " x "
      << chosen.microBatches << ", schedule " << options.schedule
      << (chosen.virtualStages > 1
              ? " v=" + std::to_string(chosen.virtualStages)
              : "")
      << ", recompute " << (chosen.recompute ? "full" : "none")
      << "; predicted step " << llvm::format("%.4f", cost.stepTime) << " s on "
      << planned.cluster.name << "\n";
  std::string message;
  if (failed(verifyTrainingPipelineOptions(options, message))) {
    error() << message << "\n";
    return failure();
  }
  return success();
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

LogicalResult mlir::cleave::driver::reportPlan(
    MLIRContext &context, StringRef modelPath, const Planned &planned,
    bool json, bool explain, StringRef cluster, llvm::raw_ostream &log) {
  PlanReportOptions report;
  report.explain = explain;
  (json ? printPlanJson : printPlanReport)(planned.model, planned.cluster,
                                           planned.options, planned.result,
                                           report, log);
  int64_t tp = planned.result.plans.front().plan.tp;
  if (!explain || json || tp <= 1)
    return success();
  return explainTensorSplits(context, modelPath, planned.forwardName, tp,
                             cluster, log);
}
