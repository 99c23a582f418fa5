//===- Pipelines.h - The pass pipeline from model to kernels ----*- C++ -*-===//
//
// The one order in which Cleave's passes turn a model into the fused,
// memory-planned module the emitter prints. The first phase records the
// plan (`#cleave.plan`) on the module; the phases after it are built from
// that plan alone. `cleavec` builds its pass manager only through these
// functions, and `cleave-opt` registers buildTrainingPipeline as
// `--cleave-training-pipeline`, so both compile the same way.
//
//===----------------------------------------------------------------------===//

#ifndef CLEAVE_PIPELINES_PIPELINES_H
#define CLEAVE_PIPELINES_PIPELINES_H

#include "mlir/Pass/PassOptions.h"

#include <optional>
#include <string>

namespace mlir {
class OpPassManager;
} // namespace mlir

namespace mlir::cleave {

/// What the pipeline compiles the model's function into.
enum class CompileMode {
  /// The model itself (inference, or a loss evaluation).
  Forward,
  /// cleave-autodiff's step: the loss and one gradient per parameter.
  Gradients,
  /// The training step: gradients and the optimizer's update.
  Train,
};

class PlanAttr;

/// The phases of the pipeline, in order. `compile-to` stops after one.
enum class CompilePhase {
  /// The plan recorded on the model (`cleave.plan`): mesh, strategies,
  /// micro-batches, schedule, stages, recompute, precision.
  Planned,
  /// The model as the step will see it: precision and micro-batch size.
  Model,
  /// The step: backward (autodiff), recompute, and, without pipeline
  /// stages, the optimizer's update.
  Step,
  /// Partitioned over the mesh's dp and tp axes: per-device programs.
  Sharded,
  /// Cut into pipeline stages, each pp rank with its update (a pp axis).
  Staged,
  /// Fused kernels and a memory plan per function: what the emitter prints.
  Kernels,
};

/// The phase named `name` (planned, model, step, sharded, staged, kernels).
std::optional<CompilePhase> parseCompilePhase(llvm::StringRef name);

/// The name parseCompilePhase reads.
llvm::StringRef getCompilePhaseName(CompilePhase phase);

/// Typed options of the pipeline; their defaults compile the model's
/// forward function for one device.
struct TrainingPipelineOptions
    : public PassPipelineOptions<TrainingPipelineOptions> {
  PassOptions::Option<CompileMode> mode{
      *this, "mode", llvm::cl::desc("What to compile"),
      llvm::cl::init(CompileMode::Forward),
      llvm::cl::values(
          clEnumValN(CompileMode::Forward, "forward", "the model itself"),
          clEnumValN(CompileMode::Gradients, "gradients",
                     "the loss and the parameters' gradients"),
          clEnumValN(CompileMode::Train, "train",
                     "gradients and the optimizer's update"))};
  PassOptions::Option<std::string> function{
      *this, "function",
      llvm::cl::desc("The model's function (default: the passes' own, "
                     "'forward')")};
  PassOptions::Option<std::string> precision{
      *this, "precision",
      llvm::cl::desc("train: f32, or bf16/f16 compute with f32 master weights"),
      llvm::cl::init("f32")};
  PassOptions::Option<int64_t> microBatches{
      *this, "micro-batches",
      llvm::cl::desc("train: micro-batches per step"), llvm::cl::init(1)};
  PassOptions::Option<bool> recompute{
      *this, "recompute",
      llvm::cl::desc("Recompute each layer's activations in the backward"),
      llvm::cl::init(false)};
  PassOptions::ListOption<int64_t> recomputeLayers{
      *this, "recompute-layers",
      llvm::cl::desc("With recompute: the first K blocks of each pipeline "
                     "stage (one K, or one per stage; default: all)")};
  PassOptions::Option<std::string> mesh{
      *this, "mesh",
      llvm::cl::desc("Device mesh, outermost axis first: dp=2,tp=2,pp=2")};
  PassOptions::Option<std::string> strategy{
      *this, "strategy",
      llvm::cl::desc(
          "Strategies of the dp/tp axes (dp, megatron, megatron-sp, search, "
          "zero1-3); default: each axis's canonical one")};
  PassOptions::Option<std::string> cluster{
      *this, "cluster",
      llvm::cl::desc("The cluster the search strategy prices choices on")};
  PassOptions::Option<std::string> schedule{
      *this, "schedule",
      llvm::cl::desc("With a pp axis: gpipe, 1f1b or interleaved"),
      llvm::cl::init("1f1b")};
  PassOptions::Option<int64_t> virtualStages{
      *this, "virtual-stages",
      llvm::cl::desc("With a pp axis: model chunks per pp rank"),
      llvm::cl::init(1)};
  PassOptions::ListOption<int64_t> layersPerStage{
      *this, "layers-per-stage",
      llvm::cl::desc("With a pp axis: transformer blocks per stage")};
  PassOptions::Option<std::string> optimizer{
      *this, "optimizer", llvm::cl::desc("train: adamw or sgd"),
      llvm::cl::init("adamw")};
  PassOptions::Option<double> momentum{
      *this, "momentum", llvm::cl::desc("train: SGD momentum"),
      llvm::cl::init(0.0)};
  PassOptions::Option<double> beta1{*this, "beta1",
                                    llvm::cl::desc("train: AdamW beta1"),
                                    llvm::cl::init(0.9)};
  PassOptions::Option<double> beta2{*this, "beta2",
                                    llvm::cl::desc("train: AdamW beta2"),
                                    llvm::cl::init(0.999)};
  PassOptions::Option<double> weightDecay{
      *this, "weight-decay", llvm::cl::desc("train: weight decay of matrices"),
      llvm::cl::init(0.0)};
  PassOptions::Option<double> clipNorm{
      *this, "clip-norm",
      llvm::cl::desc("train: clip the global gradient norm (0: off)"),
      llvm::cl::init(0.0)};
  PassOptions::Option<bool> gemmEpilogues{
      *this, "gemm-epilogues",
      llvm::cl::desc("Fold a matmul's bias add and gelu into its GEMM "
                     "(cleave-fuse epilogues)"),
      llvm::cl::init(true)};
  PassOptions::Option<bool> overlapCollectives{
      *this, "overlap-collectives",
      llvm::cl::desc("Run dp collectives behind other layers' compute "
                     "(cleave-overlap-collectives)"),
      llvm::cl::init(true)};
  PassOptions::Option<double> bucketMegabytes{
      *this, "bucket-mb",
      llvm::cl::desc("cleave-overlap-collectives: largest group of "
                     "collectives started together, in MiB"),
      llvm::cl::init(25.0)};
  PassOptions::Option<CompilePhase> compileTo{
      *this, "compile-to", llvm::cl::desc("Stop after this phase"),
      llvm::cl::init(CompilePhase::Kernels),
      llvm::cl::values(
          clEnumValN(CompilePhase::Planned, "planned", "the recorded plan"),
          clEnumValN(CompilePhase::Model, "model", "precision, micro-batches"),
          clEnumValN(CompilePhase::Step, "step", "backward and update"),
          clEnumValN(CompilePhase::Sharded, "sharded", "dp/tp partitioning"),
          clEnumValN(CompilePhase::Staged, "staged", "pipeline stages"),
          clEnumValN(CompilePhase::Kernels, "kernels",
                     "fused kernels and memory plans"))};

  /// The pp axis size of `mesh`: 0 without one, or when the mesh does not
  /// parse (verifyTrainingPipelineOptions reports that).
  int64_t getPipelineRanks() const;
};

/// Checks options that the passes would only reject after a long compile
/// (the mesh's spelling, the precision, the schedule, options that need a
/// pp axis); on failure, `message` says why.
LogicalResult verifyTrainingPipelineOptions(
    const TrainingPipelineOptions &options, std::string &message);

/// Appends the planned phase for the plan `options` asks for:
/// cleave-set-plan with their mesh, strategies, micro-batches, schedule,
/// stages, recompute, precision and cluster.
void buildPlanningPipeline(OpPassManager &pm,
                           const TrainingPipelineOptions &options);

/// Sets the plan's fields of `options` (the mesh of the axes it uses,
/// precision, micro-batches, schedule, virtual stages, layers per stage,
/// recompute, cluster; no strategies, which the partitioning passes read
/// from the module) from the recorded `plan`.
void setPlanOptions(PlanAttr plan, TrainingPipelineOptions &options);

/// Micro-batches on a mesh of dp and tp axes accumulate through the
/// pipeline passes: adds a pp axis of one stage (`pp=1`) to such a mesh.
void addPipelineAxisForMicroBatches(TrainingPipelineOptions &options);

/// Appends the phases after planned, up to `options.compileTo`, for a
/// module whose recorded plan `options` agree with (setPlanOptions): they
/// compile the model (a module whose function is `options.function`) into
/// the module the emitter prints. The options must verify.
void buildPlannedPipeline(OpPassManager &pm,
                          const TrainingPipelineOptions &options);

/// The whole pipeline for the plan `options` ask for: buildPlanningPipeline
/// then, unless it stops there, buildPlannedPipeline. The options must
/// verify.
void buildTrainingPipeline(OpPassManager &pm,
                           const TrainingPipelineOptions &options);

/// Registers `cleave-training-pipeline` with cleave-opt style tools.
void registerTrainingPipeline();

} // namespace mlir::cleave

#endif // CLEAVE_PIPELINES_PIPELINES_H
