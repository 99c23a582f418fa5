//===- Driver.h - Compile a model into a program, launch its ranks -*- C++ -*-===//
//
// The library under `cleavec`: a compilation (parse the model, run the
// training pipeline, emit the source, build it against the runtime) and a
// launch (the mpirun line that starts one process per device). `cleavec`
// only turns its command line into these requests. Errors are printed as
// `cleavec: error: ...`, and diagnostics at their source locations.
//
//===----------------------------------------------------------------------===//

#ifndef CLEAVE_DRIVER_DRIVER_H
#define CLEAVE_DRIVER_DRIVER_H

#include "cleave/Driver/Planning.h"
#include "cleave/Pipelines/Pipelines.h"

#include "mlir/IR/BuiltinOps.h"
#include "mlir/IR/Diagnostics.h"
#include "mlir/IR/OwningOpRef.h"
#include "llvm/Support/SourceMgr.h"
#include "llvm/Support/raw_ostream.h"

#include <string>

namespace cleave::rt {
struct CheckpointIndex;
} // namespace cleave::rt

namespace mlir::cleave::driver {

/// `cleavec: error: ` on stderr, for the caller to finish the line.
llvm::raw_ostream &error();

/// Parses the model at `path` through `sourceMgr` (whose diagnostic handler
/// the caller keeps while it uses the module); prints errors.
OwningOpRef<ModuleOp> parseModel(MLIRContext &context, StringRef path,
                                 llvm::SourceMgr &sourceMgr);

/// A model parsed from a file (null `module` after reporting why it did
/// not parse); while it lives, diagnostics point into the file.
struct ParsedModel {
  ParsedModel(MLIRContext &context, StringRef path)
      : diagnostics(sourceMgr, &context),
        module(parseModel(context, path, sourceMgr)) {}
  llvm::SourceMgr sourceMgr;
  SourceMgrDiagnosticHandler diagnostics;
  OwningOpRef<ModuleOp> module;
};

/// How a compilation's source becomes a program.
struct BuildOptions {
  /// `cpu` (host compiler, OpenMP, OpenBLAS) or `cuda` (nvcc).
  std::string target = "cpu";
  /// GPU architectures for `cuda`, comma-separated.
  std::string cudaArchs = "80,90";
  /// The generated program's optimization level, 0-3.
  unsigned optLevel = 3;
  /// Write the source and print the build command without running it.
  bool emitOnly = false;
};

/// One model compiled into one program.
struct CompileRequest {
  StringRef modelPath;
  /// Where the source and the program go; with `compileTo` before kernels,
  /// where the phase's module goes (stdout when empty).
  StringRef directory;
  /// The function a forward program runs (the emitter's default if empty).
  std::string entry;
  BuildOptions build;
  /// Print the pass pipeline instead of compiling.
  bool printPipeline = false;
  /// Also write initial parameters of the entry function here, from `seed`.
  std::string initParams;
  uint64_t seed = 0;
  /// Plan with cleave-auto-parallel for this request (`--auto`) instead of
  /// recording the pipeline options' plan.
  std::optional<PlanRequest> autoPlan;
  /// Train: the index of the checkpoint to resume (in `resumeDir`), whose
  /// tensors must be the model's.
  const ::cleave::rt::CheckpointIndex *resumeIndex = nullptr;
  std::string resumeDir;
};

/// Compiles `request.modelPath` through the training pipeline `pipeline`
/// (its `function` defaults to the model's only function) and reports each
/// step on `log`; sets `executable` once the program is built.
LogicalResult compileModel(MLIRContext &context,
                           TrainingPipelineOptions &pipeline,
                           const CompileRequest &request, llvm::raw_ostream &log,
                           std::string &executable);

/// The command line of a built training program (see the program's
/// --help), and the mesh it runs on.
struct TrainingRun {
  std::string data;
  /// 2 or 4 for a token file without a header; 0: the file's header says.
  unsigned tokenBytes = 0;
  int64_t steps = 0;
  std::string lr, lrSchedule, warmup, decaySteps, minLr;
  uint64_t seed = 0;
  /// Whether --seed was given; a resumed run checks it against its
  /// checkpoint's, and takes it instead with `reseed`.
  bool seedGiven = false;
  bool reseed = false;
  std::string saveEvery;
  /// The gradient bucket cap in MiB, or empty for the program's default.
  std::string bucketMegabytes;
  std::string out, resume;
  /// `dp=2,tp=2`; empty for one process.
  std::string mesh;
  /// Safetensors file of the parameters to start from, or empty.
  std::string initFrom;
};

/// Runs `executable` as `run` asks, under mpirun on this machine for a
/// mesh (printing how to start it on a cluster); returns its exit status.
int runTraining(StringRef executable, const TrainingRun &run,
                llvm::raw_ostream &log);

/// `cleavec prepare-text`: the bytes of `textPath` as 2-byte tokens in
/// `output`, or with `tokenizerDir` its tokens under that Hugging Face
/// tokenizer (2 or 4 bytes, as its vocabulary needs); returns the exit
/// status.
int prepareTextTokens(StringRef textPath, StringRef output,
                      StringRef tokenizerDir, llvm::raw_ostream &log);

/// `cleavec export-hf`: the parameters of the checkpoint in
/// `checkpointDir` as a Hugging Face model directory `output` like
/// `likeDir`; returns the exit status.
int exportHuggingFace(StringRef checkpointDir, StringRef likeDir,
                      StringRef output, llvm::raw_ostream &log);

/// The number of processes `mesh` (`dp=2,tp=2`, empty for one) runs on.
int64_t getMeshDevices(StringRef mesh);

/// The mpirun command that starts `ranks` processes on this machine, as
/// torchrun would: one OpenMP/OpenBLAS thread per rank, as many ranks as
/// asked even beyond the cores, and root allowed where it runs as root.
FailureOr<SmallVector<std::string>> getLocalLaunch(int64_t ranks);

/// Runs `command`, passing its output through; returns its exit status.
int runCommand(ArrayRef<std::string> command, llvm::raw_ostream &log);

/// Runs the training job `command` under cleavec's supervision (see
/// Launch.cpp): stopping signals reach every rank, the job dies with
/// cleavec, and a rank's death is named. Returns the exit status, 128 +
/// the signal when a signal stopped cleavec.
int runJob(ArrayRef<std::string> command, llvm::raw_ostream &log);

/// The words of `command` joined by spaces.
std::string joinCommand(ArrayRef<std::string> command);

} // namespace mlir::cleave::driver

#endif // CLEAVE_DRIVER_DRIVER_H
