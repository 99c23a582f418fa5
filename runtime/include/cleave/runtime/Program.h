//===- Program.h - What a generated program exports to the runner -*- C++ -*-===//
//
// Generated code describes its entry function with a Program: the tensors it
// takes (parameters and inputs, by name), the tensors it returns, the arena
// it needs and the function itself. The runner does the rest: it loads the
// arguments from safetensors files after checking every name, dtype and
// shape, runs the function, and writes and prints the results.
//
//===----------------------------------------------------------------------===//

#ifndef CLEAVE_RUNTIME_PROGRAM_H
#define CLEAVE_RUNTIME_PROGRAM_H

#include "cleave/runtime/Context.h"
#include "cleave/runtime/DType.h"
#include "cleave/runtime/Kernels.h"
#include "cleave/runtime/Mesh.h"
#include "cleave/runtime/Profile.h"

#include <cstdint>

namespace cleave::rt {

struct TensorSpec {
  const char *name;
  DType dtype;
  Shape shape;
};

/// Parameters and optimizer state persist between steps (and in
/// checkpoints); inputs come with each call. In a pipeline, a stage's
/// backward also takes stashes: values its forward returned for the same
/// micro-batch (named "stash.<k>" on both ends).
enum class ArgumentKind { Param, Input, State, Stash };

/// What the training loop feeds an input (the IR's cleave.input_role).
enum class InputRole {
  None,
  Tokens,
  Targets,
  Features,
  Gradient,
  LearningRate,
  StepNumber
};

/// What the training loop reads from a result (the IR's cleave.output_role).
enum class OutputRole { None, Loss, GradNorm, Gradient };

/// How a parameter starts (the IR's cleave.init). `Default`, where the IR
/// gives none, is a normal of standard deviation 0.02.
struct InitRule {
  enum class Kind { Default, Zeros, Ones, Normal };
  Kind kind = Kind::Default;
  double stddev = 0.0;
};

struct ArgumentSpec {
  TensorSpec tensor;
  ArgumentKind kind;
  /// How the global tensor splits into the per-rank `tensor.shape` (see
  /// getBlock), or null when the program is not partitioned.
  const char *split;
  /// A parameter's initialization.
  InitRule init = {};
  InputRole role = InputRole::None;
  /// For token ids: the argument whose rows they index (the embedding
  /// table), or -1.
  int indexes = -1;
};

struct ResultSpec {
  TensorSpec tensor;
  /// The argument whose next value this result is (a training step's new
  /// parameters and state), or -1.
  int updates;
  /// As ArgumentSpec::split.
  const char *split;
  OutputRole role = OutputRole::None;
  /// The group (MeshSpec::groups) over which the result is a pending sum
  /// the training loop completes once per step (the IR's cleave.block with
  /// partial axes), or -1. The generated code calls resultReady as soon as
  /// the result is computed.
  int pendingGroup = -1;
  /// With pendingGroup: the dimension along which the update takes only
  /// this rank's block (cleave.scatter_dim), so the loop reduce-scatters,
  /// or -1: the update takes the whole sum (an all-reduce).
  int scatterDim = -1;
};

/// A point-to-point receive along `group` (the pp axis) from the rank at
/// index `peer`, matched by `tag`.
struct TransferSpec {
  int group;
  int64_t peer;
  int64_t tag;
  uint64_t bytes;
};

/// Runs the function: `arguments` and `results` are device pointers, one per
/// spec; results may point into `arena` or at an argument.
using EntryFunction = Status (*)(Context &context, void *const *arguments,
                                 void **results, uint8_t *arena);

struct Program {
  const char *name;
  const ArgumentSpec *arguments;
  int numArguments;
  const ResultSpec *results;
  int numResults;
  uint64_t arenaBytes;
  EntryFunction entry;
  /// Index-checking ops by site number - 1, e.g. "embedding at m.mlir:3:8".
  const char *const *indexSites;
  int numIndexSites;
  /// The mesh of a partitioned program (one process per device), or null.
  const MeshSpec *mesh;
  /// Every op the entry function times (beginOp/endOp number them), with
  /// the FLOPs and bytes the compiler counted, for CLEAVE_PROFILE.
  const OpInfo *ops;
  int numOps;
  /// The micro-batches of a step this program computes one of (the IR's
  /// cleave.micro_batches): the training loop accumulates their gradients
  /// before the update.
  int64_t microBatches = 1;
  /// Whether the program starts collectives it waits for later
  /// (cleave.wait): --overlap 0 finishes each where it starts.
  bool startsCollectives = false;
  /// The program's pipeline receives (cleave.recv), in program order.
  const TransferSpec *receives = nullptr;
  int numReceives = 0;
};

/// One forward or backward pass of one micro-batch through one stage.
struct PipelineAction {
  bool backward;
  int32_t stage;
  int32_t microBatch;
};

/// A training step cut into pipeline stages (cleavec train with a `pp` mesh
/// axis): stage s runs on the ranks at index s % numRanks along `pp`, each
/// micro-batch's activations go forward through the stages and their
/// gradients back, and rank r runs actions[r] in order (the schedule),
/// accumulates its stages' gradients and applies them with apply[r].
struct PipelineProgram {
  /// "gpipe", "1f1b" or "interleaved".
  const char *schedule;
  int numRanks;
  int numStages;
  int microBatches;
  /// Per stage.
  const Program *const *forward;
  const Program *const *backward;
  /// Per pp rank.
  const Program *const *apply;
  const PipelineAction *const *actions;
  const int *numActions;
  /// Whether, between any two ranks, the schedule sends and receives in the
  /// same order (what NCCL, which pairs transfers by order, needs).
  bool transfersInOrder;
};

/// The command-line program: `--params FILE [--inputs FILE] [--outputs FILE]
/// [--repeat N]`. Returns the process exit code (0, or 1 after printing an
/// error to stderr).
int runProgramMain(const Program &program, int argc, char **argv);

/// The command line of a training program: the training loop, data loading,
/// logging and checkpoints (docs/training.md). Either `step` updates its own
/// parameters and state and `apply` is null, or `step` returns the loss and
/// `grad.<param>` of one micro-batch and `apply` takes the averaged
/// gradients and returns the updates (gradient accumulation).
int runTrainingMain(const Program &step, const Program *apply, int argc,
                    char **argv);

/// The same command line for a pipeline: the training loop runs the
/// schedule on every step (docs/pipeline.md).
int runPipelineTrainingMain(const PipelineProgram &pipeline, int argc,
                            char **argv);

} // namespace cleave::rt

#endif // CLEAVE_RUNTIME_PROGRAM_H
