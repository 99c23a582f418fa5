//===- TrainingPipeline.cpp - The pass pipeline from model to kernels -----===//
//
// The order, and why:
//
//  planned  the plan is recorded first, on the model as written, because
//           it decides everything after it: cleave-set-plan records what
//           the options ask for, cleave-auto-parallel (cleavec --auto)
//           what the planner chose. Later phases are built from the
//           recorded plan (setPlanOptions) and the partitioning passes read
//           it from the module.
//  model    canonicalize and CSE first, so every later pass sees folded IR.
//           Mixed precision rewrites the forward function before autodiff,
//           so the backward is derived in the compute precision; the
//           micro-batch split shrinks the forward's batch before autodiff,
//           so the step's activations are one micro-batch's.
//  step     cleave-autodiff derives the gradient step; cleave-recompute
//           then copies each layer's forward into its backward (with
//           pipeline stages it runs once they are cut, since it may
//           recompute only the first blocks of each stage). Without
//           pipeline stages the optimizer joins the step here, before
//           partitioning, so that ZeRO can shard its state.
//  sharded  cleave-parallelize partitions the whole step over the dp and tp
//           axes. With a pp axis it runs before the stages are cut, so the
//           stages' transfers move per-device blocks.
//  staged   cleave-assign-stages and cleave-pipeline-split cut the step into
//           per-stage forward and backward programs and record the
//           schedule; the optimizer then gives each pp rank its update (a
//           split needs a step that does not yet update its parameters).
//           With a dp axis, the dp sums of the gradients then leave the
//           backward (which runs per micro-batch) for the training loop,
//           which reduces them once per step.
//  kernels  cleave-fuse groups elementwise ops into kernels and
//           cleave-plan-memory lays out each function's arena: the form the
//           emitter prints.
//
//===----------------------------------------------------------------------===//

#include "cleave/Pipelines/Pipelines.h"

#include "cleave/Dialect/Cleave/IR/CleaveOps.h"
#include "cleave/Dialect/Cleave/Transforms/Passes.h"
#include "cleave/Pipeline/Schedule.h"

#include "mlir/Dialect/Func/IR/FuncOps.h"
#include "mlir/Pass/PassManager.h"
#include "mlir/Pass/PassRegistry.h"
#include "mlir/Transforms/Passes.h"

using namespace mlir;
using namespace mlir::cleave;

/// The phases in order, by name.
static constexpr std::pair<CompilePhase, StringLiteral> kPhaseNames[] = {
    {CompilePhase::Planned, "planned"}, {CompilePhase::Model, "model"},
    {CompilePhase::Step, "step"},       {CompilePhase::Sharded, "sharded"},
    {CompilePhase::Staged, "staged"},   {CompilePhase::Kernels, "kernels"}};

std::optional<CompilePhase> mlir::cleave::parseCompilePhase(StringRef name) {
  for (auto [phase, phaseName] : kPhaseNames)
    if (phaseName == name)
      return phase;
  return std::nullopt;
}

StringRef mlir::cleave::getCompilePhaseName(CompilePhase phase) {
  return kPhaseNames[static_cast<int>(phase)].second;
}

/// The mesh of `options`; empty when it has none or it does not parse
/// (verifyTrainingPipelineOptions reports that).
static SmallVector<MeshAxisSpec>
getMeshAxes(const TrainingPipelineOptions &options) {
  std::string message;
  FailureOr<SmallVector<MeshAxisSpec>> axes =
      options.mesh.empty() ? SmallVector<MeshAxisSpec>()
                           : parseMeshSpec(options.mesh, message);
  return succeeded(axes) ? *axes : SmallVector<MeshAxisSpec>();
}

int64_t TrainingPipelineOptions::getPipelineRanks() const {
  for (const MeshAxisSpec &axis : getMeshAxes(*this))
    if (axis.name == "pp")
      return axis.size;
  return 0;
}

LogicalResult mlir::cleave::verifyTrainingPipelineOptions(
    const TrainingPipelineOptions &options, std::string &message) {
  auto fail = [&](const Twine &text) {
    message = text.str();
    return failure();
  };
  if (!options.mesh.empty() && failed(parseMeshSpec(options.mesh, message)))
    return failure();
  if (!(options.bucketMegabytes > 0 && options.bucketMegabytes <= 1e6))
    return fail("bucket-mb must be a positive size up to 1e6 MiB");
  if (options.precision != "f32" && options.precision != "bf16" &&
      options.precision != "f16")
    return fail("precision must be f32, bf16 or f16, got '" +
                options.precision + "'");
  // f16's narrow exponent lets small gradients flush to zero unless the
  // loss is scaled; training without scaling would silently lose them.
  if (options.precision == "f16")
    return fail("f16 training needs dynamic loss scaling, which is not "
                "supported yet: use bf16 (16-bit compute with f32's "
                "exponent range)");
  if (options.optimizer != "adamw" && options.optimizer != "sgd")
    return fail("optimizer must be adamw or sgd, got '" + options.optimizer +
                "'");
  if (options.microBatches < 1 || options.virtualStages < 1)
    return fail("micro-batches and virtual-stages must be at least 1");
  bool training = options.mode == CompileMode::Train;
  if (!training && (options.precision != "f32" || options.microBatches != 1))
    return fail("precision and micro-batches are options of mode=train");
  if (options.mode == CompileMode::Forward && options.recompute)
    return fail("recompute needs a backward: mode=gradients or train");
  if (!options.recomputeLayers.empty() && !options.recompute)
    return fail("recompute-layers needs recompute");
  if (llvm::any_of(options.recomputeLayers, [](int64_t n) { return n < 0; }))
    return fail("recompute-layers must not be negative");
  int64_t ranks = options.getPipelineRanks();
  if (!ranks) {
    if (options.schedule != "1f1b" || options.virtualStages != 1 ||
        !options.layersPerStage.empty())
      return fail("schedule, virtual-stages and layers-per-stage need a pp "
                  "axis in the mesh");
    if (training && !options.mesh.empty() && options.microBatches != 1)
      return fail("micro-batches on a mesh run through the pipeline passes: "
                  "add a pp axis (pp=1 for one stage)");
    return success();
  }
  if (!training)
    return fail("a pp axis pipelines a training step: mode=train");
  for (const MeshAxisSpec &axis : getMeshAxes(options))
    if (axis.name != "pp" && axis.name != "dp" && axis.name != "tp")
      return fail("next to pp, only dp (data parallel) and tp (tensor "
                  "parallel) axes are supported yet, got '" +
                  axis.name + "'");
  std::optional<pipeline::ScheduleKind> kind =
      pipeline::parseScheduleKind(options.schedule);
  if (!kind)
    return fail("schedule must be gpipe, 1f1b or interleaved, got '" +
                options.schedule + "'");
  // One rank runs its chunks one after another: nothing to interleave,
  // and its stages would send to themselves.
  if (*kind == pipeline::ScheduleKind::Interleaved && ranks < 2)
    return fail("the interleaved schedule needs at least 2 pp ranks, got " +
                std::to_string(ranks) + " (use 1f1b)");
  if (!pipeline::buildSchedule(*kind, ranks, options.microBatches,
                               options.virtualStages, message))
    return failure();
  return success();
}

void mlir::cleave::addPipelineAxisForMicroBatches(
    TrainingPipelineOptions &options) {
  SmallVector<MeshAxisSpec> axes = getMeshAxes(options);
  if (options.mode == CompileMode::Train && options.microBatches != 1 &&
      !axes.empty() && !options.getPipelineRanks())
    options.mesh = options.mesh + ",pp=1";
}

void mlir::cleave::setPlanOptions(PlanAttr plan,
                                  TrainingPipelineOptions &options) {
  options.mesh = formatMeshSpec(plan.getUsedAxes());
  options.strategy = "";
  options.cluster = plan.getCluster().str();
  options.precision = plan.getPrecision().str();
  options.microBatches = plan.getMicroBatches();
  options.recompute = plan.getRecompute();
  options.recomputeLayers.clear();
  if (DenseI64ArrayAttr layers = plan.getRecomputeLayers())
    for (int64_t blocks : layers.asArrayRef())
      options.recomputeLayers.push_back(blocks);
  options.schedule = plan.getSchedule().str();
  options.virtualStages = plan.getVirtualStages();
  options.layersPerStage.clear();
  if (DenseI64ArrayAttr layers = plan.getLayersPerStage())
    for (int64_t blocks : layers.asArrayRef())
      options.layersPerStage.push_back(blocks);
}

void mlir::cleave::buildPlanningPipeline(
    OpPassManager &pm, const TrainingPipelineOptions &options) {
  CleaveSetPlanOptions plan;
  plan.mesh = options.mesh;
  SmallVector<StringRef> strategies;
  StringRef(options.strategy).split(strategies, ',', -1, /*KeepEmpty=*/false);
  for (StringRef name : strategies)
    plan.strategy.push_back(name.str());
  plan.microBatches = options.microBatches;
  plan.schedule = options.schedule;
  plan.virtualStages = options.virtualStages;
  plan.layersPerStage.assign(options.layersPerStage.begin(),
                             options.layersPerStage.end());
  plan.recompute = options.recompute;
  plan.recomputeLayers.assign(options.recomputeLayers.begin(),
                              options.recomputeLayers.end());
  plan.precision = options.precision;
  plan.cluster = options.cluster;
  pm.addPass(createCleaveSetPlan(plan));
}

void mlir::cleave::buildTrainingPipeline(
    OpPassManager &pm, const TrainingPipelineOptions &options) {
  buildPlanningPipeline(pm, options);
  if (options.compileTo != CompilePhase::Planned)
    buildPlannedPipeline(pm, options);
}

void mlir::cleave::buildPlannedPipeline(
    OpPassManager &pm, const TrainingPipelineOptions &options) {
  bool training = options.mode == CompileMode::Train;
  bool differentiating = options.mode != CompileMode::Forward;
  SmallVector<MeshAxisSpec> mesh = getMeshAxes(options);
  int64_t pipelineRanks = options.getPipelineRanks();
  auto cleanUp = [&] {
    pm.addPass(createCanonicalizerPass());
    pm.addPass(createCSEPass());
  };
  // model
  cleanUp();
  if (training && options.precision != "f32") {
    CleaveMixedPrecisionOptions mixed;
    if (!options.function.empty())
      mixed.function = options.function;
    mixed.precision = options.precision == "bf16" ? ComputePrecision::BF16
                                                  : ComputePrecision::F16;
    pm.addPass(createCleaveMixedPrecision(mixed));
  }
  if (training && options.microBatches != 1) {
    CleaveMicroBatchOptions split;
    if (!options.function.empty())
      split.function = options.function;
    split.factor = options.microBatches;
    pm.addPass(createCleaveMicroBatch(split));
  }
  if (options.compileTo == CompilePhase::Model)
    return;

  // step
  CleaveRecomputeOptions recomputeOptions;
  recomputeOptions.layers.assign(options.recomputeLayers.begin(),
                                 options.recomputeLayers.end());
  CleaveOptimizerOptions update;
  update.optimizer =
      options.optimizer == "sgd" ? OptimizerKind::Sgd : OptimizerKind::AdamW;
  update.momentum = options.momentum;
  update.beta1 = options.beta1;
  update.beta2 = options.beta2;
  update.weightDecay = options.weightDecay;
  update.clipNorm = options.clipNorm;
  // Micro-batches accumulate gradients: the update runs once per step.
  update.separate = options.microBatches != 1;
  if (differentiating) {
    CleaveAutodiffOptions autodiff;
    if (!options.function.empty())
      autodiff.function = options.function;
    pm.addPass(createCleaveAutodiff(autodiff));
    if (options.recompute && !pipelineRanks)
      pm.addPass(createCleaveRecompute(recomputeOptions));
    if (!pipelineRanks) {
      if (training)
        pm.addPass(createCleaveOptimizer(update));
      cleanUp();
    }
  }
  if (options.compileTo == CompilePhase::Step)
    return;

  // sharded
  bool shardedAxes = llvm::any_of(
      mesh, [](const MeshAxisSpec &axis) { return axis.name != "pp"; });
  if (shardedAxes) {
    // The strategies and the mesh come from the module's plan.
    CleaveParallelizeOptions parallelize;
    if (options.mode == CompileMode::Forward)
      parallelize.function = options.function;
    pm.addPass(createCleaveParallelize(parallelize));
    cleanUp();
  }
  if (options.compileTo == CompilePhase::Sharded)
    return;

  bool hasDataParallelAxis = llvm::any_of(mesh, [](const MeshAxisSpec &axis) {
    return axis.name == "dp" && axis.size > 1;
  });
  // staged
  if (pipelineRanks) {
    CleaveAssignStagesOptions assign;
    assign.stages = pipelineRanks;
    assign.virtualStages = options.virtualStages;
    assign.layersPerStage.assign(options.layersPerStage.begin(),
                                 options.layersPerStage.end());
    pm.addNestedPass<func::FuncOp>(createCleaveAssignStages(assign));
    // After the cut, so that recompute can count each stage's blocks.
    if (options.recompute)
      pm.addPass(createCleaveRecompute(recomputeOptions));
    CleavePipelineSplitOptions split;
    split.ranks = pipelineRanks;
    split.schedule = *pipeline::parseScheduleKind(options.schedule);
    split.microBatches = options.microBatches;
    pm.addPass(createCleavePipelineSplit(split));
    pm.addPass(createCleaveOptimizer(update));
    if (hasDataParallelAxis)
      pm.addPass(createCleaveDeferGradientReduction());
    cleanUp();
  }
  if (options.compileTo == CompilePhase::Staged)
    return;

  // kernels
  CleaveFuseOptions fuse;
  fuse.epilogues = options.gemmEpilogues;
  pm.addNestedPass<func::FuncOp>(createCleaveFuse(fuse));
  if (options.overlapCollectives && hasDataParallelAxis) {
    CleaveOverlapCollectivesOptions overlap;
    overlap.bucketMegabytes = options.bucketMegabytes;
    pm.addNestedPass<func::FuncOp>(createCleaveOverlapCollectives(overlap));
  }
  pm.addNestedPass<func::FuncOp>(createCleavePlanMemory());
}

void mlir::cleave::registerTrainingPipeline() {
  // PassPipelineRegistration, with the options verified before building.
  registerPassPipeline(
      "cleave-training-pipeline",
      "Compile a model into the fused, memory-planned module the emitter "
      "prints (the pipeline cleavec runs)",
      [](OpPassManager &pm, StringRef text,
         function_ref<LogicalResult(const Twine &)> errorHandler) {
        TrainingPipelineOptions options;
        if (failed(options.parseFromString(text)))
          return failure();
        addPipelineAxisForMicroBatches(options);
        std::string message;
        if (failed(verifyTrainingPipelineOptions(options, message)))
          return errorHandler("cleave-training-pipeline: " + message);
        buildTrainingPipeline(pm, options);
        return success();
      },
      [](function_ref<void(const mlir::detail::PassOptions &)> handler) {
        handler(TrainingPipelineOptions());
      });
}
