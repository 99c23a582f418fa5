//===- cleavec.cpp - The end-to-end Cleave driver -------------------------===//
//
//   cleavec build model.mlir --target cpu -o out/
//   cleavec build model.mlir --target cuda -o out/ --init-params p.safetensors
//
// Runs the emission pipeline, writes the CUDA C++ source, compiles and links
// it against libcleave_runtime into an executable, and reports each step.
//
//===----------------------------------------------------------------------===//

#include "InitParams.h"
#include "PlanReport.h"
#include "ScheduleReport.h"
#include "CleavecConfig.h"

#include "cleave/runtime/Tokens.h"

#include "cleave/Dialect/Cleave/IR/CleaveDialect.h"
#include "cleave/Dialect/Cleave/IR/CleaveOps.h"
#include "cleave/Dialect/Cleave/Transforms/Passes.h"
#include "cleave/Pipelines/Pipelines.h"
#include "cleave/Target/Cuda/CudaEmitter.h"

#include "mlir/Dialect/Arith/IR/Arith.h"
#include "mlir/Dialect/Func/IR/FuncOps.h"
#include "mlir/Dialect/Tensor/IR/Tensor.h"
#include "mlir/IR/MLIRContext.h"
#include "mlir/IR/Verifier.h"
#include "mlir/Parser/Parser.h"
#include "mlir/Pass/PassManager.h"
#include "mlir/Support/FileUtilities.h"
#include "mlir/Transforms/Passes.h"
#include "llvm/Support/CommandLine.h"
#include "llvm/Support/FileSystem.h"
#include "llvm/Support/Format.h"
#include "llvm/Support/InitLLVM.h"
#include "llvm/Support/Path.h"
#include "llvm/Support/Program.h"
#include "llvm/Support/SourceMgr.h"
#include "llvm/Support/ToolOutputFile.h"
#include "llvm/Support/WithColor.h"

#include <unistd.h>

using namespace mlir;
using namespace mlir::cleave;
namespace cl = llvm::cl;

static cl::OptionCategory category("cleavec options");

static cl::list<std::string> positional(cl::Positional,
                                        cl::desc("build <model.mlir>"),
                                        cl::cat(category));
static cl::opt<std::string> target("target",
                                   cl::desc("Where the program runs: cpu "
                                            "(OpenMP + OpenBLAS) or cuda"),
                                   cl::init("cpu"), cl::cat(category));
static cl::opt<std::string> outputDir("o", cl::desc("Output directory"),
                                      cl::value_desc("dir"), cl::cat(category));
static cl::opt<std::string>
    initParams("init-params",
               cl::desc("Also write GPT-2 style initial parameters for the "
                        "entry function to this safetensors file"),
               cl::value_desc("file"), cl::cat(category));
static cl::opt<uint64_t> seed("seed",
                              cl::desc("Seed of --init-params (0)"),
                              cl::init(0), cl::cat(category));
static cl::opt<std::string> entry("entry",
                                  cl::desc("Function to build (default: the "
                                           "only one, or 'forward')"),
                                  cl::cat(category));
static cl::opt<std::string>
    cudaArchs("cuda-arch",
              cl::desc("Comma-separated GPU architectures for --target cuda"),
              cl::init("80,90"), cl::cat(category));
static cl::opt<bool> gradients(
    "gradients",
    cl::desc("Build the gradient program instead: cleave-autodiff's "
             "train_step, returning the loss and grad.<param> for each "
             "parameter"),
    cl::init(false), cl::cat(category));
static cl::OptionCategory trainCategory("cleavec train options");
static cl::opt<std::string> dataPath("data",
                                     cl::desc("train: token file (uint16, "
                                              "nanoGPT .bin layout)"),
                                     cl::value_desc("file"), cl::cat(trainCategory));
static cl::opt<unsigned> tokenBytes("token-bytes",
                                    cl::desc("train: bytes per token, 2 or 4"),
                                    cl::init(2), cl::cat(trainCategory));
static cl::opt<int64_t> steps("steps",
                              cl::desc("train: train until this step (counted "
                                       "from 1, across resumes)"),
                              cl::init(0), cl::cat(trainCategory));
static cl::opt<std::string> lr("lr", cl::desc("train: peak learning rate"),
                               cl::init("1e-3"), cl::cat(trainCategory));
static cl::opt<std::string> lrSchedule("lr-schedule",
                                       cl::desc("train: constant or cosine"),
                                       cl::init("constant"),
                                       cl::cat(trainCategory));
static cl::opt<std::string> warmup("warmup",
                                   cl::desc("train: linear warmup steps"),
                                   cl::init("0"), cl::cat(trainCategory));
static cl::opt<std::string> decaySteps("decay-steps",
                                       cl::desc("train: cosine decay steps "
                                                "after warmup"),
                                       cl::init("0"), cl::cat(trainCategory));
static cl::opt<std::string> minLr("min-lr",
                                  cl::desc("train: learning rate at the end "
                                           "of the decay"),
                                  cl::init("0"), cl::cat(trainCategory));
static cl::opt<std::string> optimizerName("optimizer",
                                          cl::desc("train: adamw or sgd"),
                                          cl::init("adamw"),
                                          cl::cat(trainCategory));
static cl::opt<double> momentum("momentum", cl::desc("train: SGD momentum"),
                                cl::init(0.0), cl::cat(trainCategory));
static cl::opt<double> beta1("beta1", cl::desc("train: AdamW beta1"),
                             cl::init(0.9), cl::cat(trainCategory));
static cl::opt<double> beta2("beta2", cl::desc("train: AdamW beta2"),
                             cl::init(0.999), cl::cat(trainCategory));
static cl::opt<double> weightDecay("weight-decay",
                                   cl::desc("train: weight decay of matrices"),
                                   cl::init(0.0), cl::cat(trainCategory));
static cl::opt<double> clipNorm("clip-norm",
                                cl::desc("train: clip the global gradient "
                                         "norm (0: off)"),
                                cl::init(0.0), cl::cat(trainCategory));
static cl::opt<int64_t> microBatches(
    "micro-batches",
    cl::desc("train: split the model's batch into this many micro-batches, "
             "run one at a time and accumulate their gradients (1)"),
    cl::init(1), cl::cat(trainCategory));
static cl::opt<std::string> precision(
    "precision",
    cl::desc("train: f32 (default), or bf16/f16 compute with f32 master "
             "weights and an f32 loss"),
    cl::init("f32"), cl::cat(trainCategory));
static cl::opt<std::string> recompute(
    "recompute",
    cl::desc("train: recompute each layer's activations in the backward pass "
             "instead of keeping them (less memory, more compute); plan: "
             "--recompute=none|full fixes the choice"),
    cl::ValueOptional, cl::value_desc("none|full"), cl::cat(trainCategory));
static cl::opt<std::string> saveEvery("save-every",
                                      cl::desc("train: also checkpoint every "
                                               "K steps"),
                                      cl::init("0"), cl::cat(trainCategory));
static cl::opt<std::string> resumeDir("resume",
                                      cl::desc("train: continue the run "
                                               "checkpointed in this directory"),
                                      cl::value_desc("dir"),
                                      cl::cat(trainCategory));
static cl::opt<std::string> outDir("out",
                                   cl::desc("train: where the program and the "
                                            "checkpoints go"),
                                   cl::value_desc("dir"), cl::cat(trainCategory));

static cl::opt<std::string> meshOption(
    "mesh",
    cl::desc("Partition the program over a device mesh, outermost axis "
             "first, e.g. dp=2,tp=2; it then runs as one process per device "
             "(train launches them with mpirun)"),
    cl::value_desc("axis=size,..."), cl::cat(category));
static cl::opt<std::string> strategyOption(
    "strategy",
    cl::desc("With --mesh: strategies, comma-separated (dp, megatron, "
             "search, zero1, zero2, zero3); default: dp on an axis named dp, "
             "megatron on tp (search: the cost-driven tensor-parallel "
             "search, priced on --cluster, default dgx-a100-80g)"),
    cl::cat(category));
/// The tensor-parallel strategy of pipelined meshes: Megatron's, or the
/// search's under --auto.
static std::string tensorStrategy = "megatron";
static cl::opt<unsigned> optLevel(
    "opt-level",
    cl::desc("Optimization level of the generated program's compiler, 0-3 (3)"),
    cl::init(3), cl::cat(category));
static cl::opt<std::string> scheduleName(
    "schedule",
    cl::desc("Pipeline schedule over the mesh's pp axis: gpipe, 1f1b or "
             "interleaved (1f1b)"),
    cl::init("1f1b"), cl::cat(category));
static cl::opt<int64_t> virtualStages(
    "virtual-stages",
    cl::desc("With --schedule interleaved: model chunks per pp rank (1)"),
    cl::init(1), cl::cat(category));
static cl::list<int64_t> layersPerStage(
    "layers-per-stage",
    cl::desc("With a pp axis: transformer blocks per stage, first to last "
             "(default: balanced by FLOPs, then parameter bytes)"),
    cl::CommaSeparated, cl::cat(category));
static cl::OptionCategory planCategory("cleavec plan options");
static cl::opt<int64_t> gpus("gpus", cl::desc("plan: the number of devices"),
                             cl::init(0), cl::cat(planCategory));
static cl::opt<std::string>
    clusterName("cluster",
                cl::desc("plan, --auto, --strategy search: a shipped cluster "
                         "(dgx-a100-40g, dgx-a100-80g, dgx-h100, h200-node, "
                         "cpu-local) or a cluster file NAME.json"),
                cl::cat(planCategory));
static cl::opt<int64_t> globalBatch(
    "global-batch",
    cl::desc("plan: samples per optimizer step (default: the model's batch)"),
    cl::init(0), cl::cat(planCategory));
static cl::opt<double> memoryLimit(
    "memory-limit",
    cl::desc("plan: GiB a device may use (default: the device's memory)"),
    cl::init(0.0), cl::cat(planCategory));
static cl::opt<int64_t> microBatchSize(
    "micro-batch-size", cl::desc("plan: fix the samples per micro-batch"),
    cl::init(0), cl::cat(planCategory));
static cl::opt<int64_t> zeroStage("zero-stage",
                                  cl::desc("plan: fix the ZeRO stage (0-3)"),
                                  cl::init(-1), cl::cat(planCategory));
static cl::opt<bool> autoPlan(
    "auto",
    cl::desc("build/train: plan the model for --gpus N on --cluster NAME (as "
             "cleavec plan does) and build (and, for train, run) the chosen "
             "plan's training step"),
    cl::init(false), cl::cat(planCategory));
static cl::opt<bool> planJson("json",
                              cl::desc("plan: print the plan as JSON"),
                              cl::init(false), cl::cat(planCategory));
static cl::opt<bool> explain(
    "explain",
    cl::desc("plan: also show the sharding decisions and the memory"),
    cl::init(false), cl::cat(planCategory));
static cl::opt<bool> printPipeline(
    "print-pipeline",
    cl::desc("build/train: print the pass pipeline (for cleave-opt "
             "--pass-pipeline) instead of compiling"),
    cl::init(false), cl::cat(category));
static cl::opt<std::string> compileTo(
    "compile-to",
    cl::desc("build/train: stop after a phase (model, step, sharded, staged "
             "or kernels) and write the module, DIR/NAME.PHASE.mlir (stdout "
             "without a directory), instead of a program"),
    cl::value_desc("phase"), cl::cat(category));
static cl::opt<bool> emitOnly("emit-only",
                              cl::desc("Write the source and print the build "
                                       "command without running it"),
                              cl::init(false), cl::cat(category));

namespace {

llvm::raw_ostream &error() {
  return llvm::WithColor::error(llvm::errs(), "cleavec");
}

/// --recompute (alone or =full) asks for recompute; =none does not. (--auto
/// sets "full" without an occurrence.)
bool isRecomputing() {
  return recompute == "full" ||
         (recompute.getNumOccurrences() && recompute != "none");
}

/// The compiler command line for `source` -> `executable`.
FailureOr<SmallVector<std::string>> getBuildCommand(StringRef source,
                                                     StringRef executable) {
  SmallVector<std::string> command;
  if (optLevel > 3) {
    error() << "--opt-level must be 0 to 3, got " << optLevel << "\n";
    return failure();
  }
  std::string level = "-O" + std::to_string(optLevel.getValue());
  SmallVector<StringRef> mpiLibraries;
  StringRef(CLEAVEC_MPI_LIBRARIES).split(mpiLibraries, ';', -1, false);
  if (target == "cpu") {
    command = {CLEAVEC_CXX_COMPILER, level, "-std=c++17", "-fopenmp",
               "-I" CLEAVEC_RUNTIME_INCLUDE_DIR, source.str(), "-o",
               executable.str(), CLEAVEC_RUNTIME_CPU_LIBRARY,
               CLEAVEC_RUNTIME_LIBRARY, CLEAVEC_OPENBLAS_LIBRARY,
               // The OpenMP OpenBLAS, not whichever the system default is.
               "-Wl,-rpath," CLEAVEC_OPENBLAS_DIR};
    for (StringRef library : mpiLibraries)
      command.push_back(library.str());
    return command;
  }
  if (StringRef(CLEAVEC_RUNTIME_CUDA_LIBRARY).empty()) {
    error() << "the CUDA backend was not built: nvcc was not found when the "
               "project was configured\n";
    return failure();
  }
  command = {CLEAVEC_NVCC, level, "-std=c++17"};
  SmallVector<StringRef> archs;
  StringRef(cudaArchs).split(archs, ',', -1, false);
  for (StringRef arch : archs) {
    if (arch.empty() || !llvm::all_of(arch, llvm::isDigit)) {
      error() << "--cuda-arch wants numbers like 80,90, got '" << cudaArchs
              << "'\n";
      return failure();
    }
    command.push_back(("-gencode=arch=compute_" + arch + ",code=sm_" + arch).str());
  }
  command.insert(command.end(),
                 {"-I" CLEAVEC_RUNTIME_INCLUDE_DIR, source.str(), "-o",
                  executable.str(), CLEAVEC_RUNTIME_CUDA_LIBRARY,
                  CLEAVEC_RUNTIME_LIBRARY, "-lcublasLt", "-lcublas",
                  CLEAVEC_NCCL_LIBRARY});
  for (StringRef library : mpiLibraries)
    command.push_back(library.str());
  return command;
}

std::string joinCommand(ArrayRef<std::string> command) {
  std::string text;
  for (const std::string &word : command)
    text += (text.empty() ? "" : " ") + word;
  return text;
}

enum class Mode { Forward, Gradients, Train };

/// Parses a --mesh value; an empty one gives an empty mesh.
FailureOr<SmallVector<MeshAxisSpec>> parseMeshFlag(StringRef text) {
  if (text.empty())
    return SmallVector<MeshAxisSpec>();
  std::string message;
  FailureOr<SmallVector<MeshAxisSpec>> axes = parseMeshSpec(text, message);
  if (failed(axes))
    error() << "--mesh: " << message << "\n";
  return axes;
}

FailureOr<pipeline::Schedule> getSchedule(int64_t ranks);

/// The function to differentiate: --entry, or the module's only one
/// (empty when there are several: the passes' defaults apply).
std::string getForwardName(ModuleOp module) {
  if (!entry.empty())
    return entry;
  SmallVector<func::FuncOp> bodies;
  for (func::FuncOp function : module.getOps<func::FuncOp>())
    if (!function.isDeclaration())
      bodies.push_back(function);
  return bodies.size() == 1 ? bodies.front().getSymName().str() : "";
}

/// Parses the model at `path` through `sourceMgr` (whose diagnostic
/// handler the caller keeps while it uses the module); prints errors.
OwningOpRef<ModuleOp> parseModel(MLIRContext &context, StringRef path,
                                 llvm::SourceMgr &sourceMgr) {
  std::string message;
  auto file = openInputFile(path, &message);
  if (!file) {
    error() << message << "\n";
    return nullptr;
  }
  sourceMgr.AddNewSourceBuffer(std::move(file), llvm::SMLoc());
  return parseSourceFile<ModuleOp>(sourceMgr, &context);
}

/// --compile-to: writes the module of a phase to DIR/NAME.PHASE.mlir.
LogicalResult writeModule(ModuleOp module, StringRef directory,
                          StringRef modelPath) {
  std::error_code ec = llvm::sys::fs::create_directories(directory);
  if (ec) {
    error() << "cannot create '" << directory << "': " << ec.message() << "\n";
    return failure();
  }
  SmallString<256> path(directory);
  llvm::sys::path::append(path, llvm::sys::path::stem(modelPath) + "." +
                                    std::string(compileTo) + ".mlir");
  std::string message;
  auto output = openOutputFile(path, &message);
  if (!output) {
    error() << message << "\n";
    return failure();
  }
  module.print(output->os());
  output->keep();
  llvm::outs() << "cleavec: wrote " << path << "\n";
  return success();
}

/// Sets `options` from the command line's build and train flags for
/// `mode`, checking them before the long compile.
LogicalResult getPipelineOptions(Mode mode, TrainingPipelineOptions &options) {
  if (failed(parseMeshFlag(meshOption)))
    return failure();
  options.mode = mode == Mode::Train       ? CompileMode::Train
                 : mode == Mode::Gradients ? CompileMode::Gradients
                                           : CompileMode::Forward;
  if (mode == Mode::Train) {
    options.precision = precision;
    options.microBatches = microBatches;
    options.optimizer = optimizerName;
    options.momentum = momentum;
    options.beta1 = beta1;
    options.beta2 = beta2;
    options.weightDecay = weightDecay;
    options.clipNorm = clipNorm;
  }
  options.recompute = mode != Mode::Forward && isRecomputing();
  options.mesh = meshOption;
  options.strategy = strategyOption;
  options.cluster = clusterName;
  options.schedule = scheduleName;
  options.virtualStages = virtualStages;
  options.layersPerStage = SmallVector<int64_t>(layersPerStage.begin(),
                                                layersPerStage.end());
  if (compileTo.getNumOccurrences()) {
    std::optional<CompilePhase> phase = parseCompilePhase(compileTo);
    if (!phase) {
      error() << "--compile-to must be model, step, sharded, staged or "
                 "kernels, got '"
              << compileTo << "'\n";
      return failure();
    }
    options.compileTo = *phase;
  }
  std::string message;
  if (failed(verifyTrainingPipelineOptions(options, message))) {
    error() << message << "\n";
    return failure();
  }
  if (strategyOption.getNumOccurrences() && strategyOption.empty()) {
    error() << "--strategy needs at least one strategy\n";
    return failure();
  }
  if (options.getPipelineRanks() && strategyOption.getNumOccurrences()) {
    error() << "--strategy with a pp axis is not supported yet: a dp axis is "
               "data parallel and a tp axis Megatron's\n";
    return failure();
  }
  return success();
}

/// Compiles the model at `modelPath` into `directory` through the pipeline
/// `options` describes; sets `executable`.
LogicalResult build(MLIRContext &context, StringRef modelPath, Mode mode,
                    TrainingPipelineOptions &options, StringRef directory,
                    std::string &executablePath) {
  if (target != "cpu" && target != "cuda") {
    error() << "--target must be cpu or cuda, got '" << target << "'\n";
    return failure();
  }
  int64_t pipelineRanks = options.getPipelineRanks();
  if (pipelineRanks && !initParams.empty()) {
    error() << "--init-params with a pp axis is not supported: the "
               "parameters live on several stages (train initializes them "
               "from --seed)\n";
    return failure();
  }
  if (directory.empty() && !printPipeline &&
      options.compileTo == CompilePhase::Kernels) {
    error() << (mode == Mode::Train ? "missing --out <dir>\n"
                                    : "missing -o <dir>\n");
    return failure();
  }

  llvm::SourceMgr sourceMgr;
  SourceMgrDiagnosticHandler diagnostics(sourceMgr, &context);
  OwningOpRef<ModuleOp> module = parseModel(context, modelPath, sourceMgr);
  if (!module)
    return failure();
  std::string message;
  if (options.function.empty())
    options.function = getForwardName(*module);

  PassManager pm(&context, ModuleOp::getOperationName());
  buildTrainingPipeline(pm, options);
  if (printPipeline) {
    pm.printAsTextualPipeline(llvm::outs());
    llvm::outs() << "\n";
    return success();
  }
  if (failed(pm.run(*module)))
    return failure();
  if (options.compileTo != CompilePhase::Kernels) {
    if (directory.empty()) {
      module->print(llvm::outs());
      return success();
    }
    return writeModule(*module, directory, modelPath);
  }

  std::error_code ec = llvm::sys::fs::create_directories(directory);
  if (ec) {
    error() << "cannot create '" << directory << "': " << ec.message() << "\n";
    return failure();
  }
  StringRef stem = llvm::sys::path::stem(modelPath);
  SmallString<256> source(directory), executable(directory);
  llvm::sys::path::append(source, stem + (target == "cuda" ? ".cu" : ".cpp"));
  llvm::sys::path::append(executable, stem);

  CudaEmitterOptions emitterOptions;
  if (mode == Mode::Forward)
    emitterOptions.entry = entry;
  CudaEmitterSummary summary;
  {
    auto output = openOutputFile(source, &message);
    if (!output) {
      error() << message << "\n";
      return failure();
    }
    if (failed(translateToCuda(*module, output->os(), emitterOptions,
                               &summary)))
      return failure();
    output->keep();
    // Closed here: the compiler reads the file next.
  }

  llvm::outs() << "cleavec: pipeline: ";
  pm.printAsTextualPipeline(llvm::outs());
  llvm::outs() << "\ncleavec: entry '" << summary.entry << "': "
               << summary.kernels << " fused kernels, " << summary.libraryCalls
               << " runtime calls, arena " << summary.arenaBytes << " bytes\n"
               << "cleavec: wrote " << source << "\n";

  if (pipelineRanks) {
    pipeline::ScheduleStats stats = pipeline::simulate(*pipeline::buildSchedule(
        *pipeline::parseScheduleKind(options.schedule), pipelineRanks,
        options.microBatches, options.virtualStages, message));
    llvm::outs() << "cleavec: schedule: " << options.schedule << " over "
                 << pipelineRanks << " ranks x " << options.virtualStages
                 << " virtual stages, " << options.microBatches
                 << " micro-batches; activation slots per rank:";
    for (int64_t peak : stats.peakInFlight)
      llvm::outs() << " " << peak;
    llvm::outs() << "; bubble " << llvm::format("%.4f", stats.bubble)
                 << " simulated\n";
  }
  if (!initParams.empty()) {
    auto function = module->lookupSymbol<func::FuncOp>(summary.entry);
    FailureOr<int64_t> count = writeInitialParams(function, initParams, seed);
    if (failed(count))
      return failure();
    llvm::outs() << "cleavec: wrote " << *count << " initial parameters (seed "
                 << seed << ") to " << initParams << "\n";
  }

  FailureOr<SmallVector<std::string>> command =
      getBuildCommand(source, executable);
  if (failed(command))
    return failure();
  llvm::outs() << "cleavec: build: " << joinCommand(*command) << "\n";
  if (emitOnly)
    return success();
  llvm::outs().flush();
  SmallVector<StringRef> args((*command).begin(), (*command).end());
  std::string executeError;
  int status = llvm::sys::ExecuteAndWait(args.front(), args, std::nullopt, {},
                                         0, 0, &executeError);
  if (status != 0) {
    error() << "the " << target << " build failed"
            << (executeError.empty() ? "" : ": " + executeError)
            << " (exit status " << status << ")\n";
    return failure();
  }
  llvm::outs() << "cleavec: built " << executable << "\n";
  executablePath = executable.str().str();
  return success();
}

/// Runs `command`, passing its output through; returns its exit status.
int run(ArrayRef<std::string> command) {
  llvm::outs() << "cleavec: run: " << joinCommand(command) << "\n";
  llvm::outs().flush();
  SmallVector<StringRef> args(command.begin(), command.end());
  std::string executeError;
  int status = llvm::sys::ExecuteAndWait(args.front(), args, std::nullopt, {},
                                         0, 0, &executeError);
  if (status == -1)
    error() << "cannot run '" << command.front() << "': " << executeError
            << "\n";
  else if (status < 0)
    error() << "'" << command.front() << "' crashed"
            << (executeError.empty() ? "" : ": " + executeError) << "\n";
  return status < 0 ? 1 : status;
}

/// The mpirun command that starts `ranks` processes of `program` on this
/// machine, as torchrun would: one OpenMP/OpenBLAS thread per rank, as many
/// ranks as asked even beyond the cores, and root allowed where it runs as
/// root.
FailureOr<SmallVector<std::string>> getLocalLaunch(int64_t ranks) {
  // The launcher of the MPI the program links, found when Cleave was
  // configured; another MPI's would start unrelated single processes.
  std::string mpirun = CLEAVEC_MPIRUN;
  if (mpirun.empty() || !llvm::sys::fs::can_execute(mpirun))
    if (llvm::ErrorOr<std::string> found = llvm::sys::findProgramByName("mpirun"))
      mpirun = *found;
  if (mpirun.empty() || !llvm::sys::fs::can_execute(mpirun)) {
    error() << "cannot find mpirun to launch the ranks: install openmpi-bin\n";
    return failure();
  }
  SmallVector<std::string> command = {mpirun, "-np", std::to_string(ranks),
                                      "--oversubscribe", "--bind-to", "none"};
  if (::geteuid() == 0)
    command.push_back("--allow-run-as-root");
  command.append({"-x", "OMP_NUM_THREADS=1", "-x", "OPENBLAS_NUM_THREADS=1"});
  return command;
}

/// What planning a model found, for reports and --auto.
struct Planned {
  planner::Cluster cluster;
  planner::ModelProfile model;
  planner::PlannerOptions options;
  planner::SearchResult result;
  /// The function planned.
  std::string forwardName;
};

/// Plans the model at `modelPath` with the plan options; reports errors.
/// For training (--auto), only plans that run the model as it is, in the
/// precision it will train in.
FailureOr<Planned> planModel(MLIRContext &context, StringRef modelPath,
                             bool forTraining) {
  if (gpus < 1 || clusterName.empty()) {
    error() << "planning needs --gpus N (at least 1) and --cluster NAME\n";
    return failure();
  }
  std::string message;
  FailureOr<planner::Cluster> cluster = planner::loadCluster(clusterName, message);
  if (failed(cluster)) {
    error() << message << "\n";
    return failure();
  }
  planner::PlannerOptions options;
  options.devices = gpus;
  options.globalBatch = globalBatch;
  options.memoryLimit = memoryLimit * 1024.0 * 1024.0 * 1024.0;
  options.unpaddedVocabulary = forTraining;
  options.precision = precision.getNumOccurrences() || forTraining
                          ? std::string(precision)
                          : cluster->getDefaultPrecision();
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
  if (globalBatch < 0 || memoryLimit < 0 || microBatchSize < 0 ||
      zeroStage > 3) {
    error() << "--global-batch, --memory-limit and --micro-batch-size must "
               "not be negative, --zero-stage is 0 to 3\n";
    return failure();
  }
  FailureOr<SmallVector<MeshAxisSpec>> mesh = parseMeshFlag(meshOption);
  if (failed(mesh))
    return failure();
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
    if (fixed.getDevices() != gpus) {
      error() << "--mesh " << meshOption << " has " << fixed.getDevices()
              << " devices, not the " << gpus << " of --gpus\n";
      return failure();
    }
    options.mesh = fixed;
  }
  if (microBatchSize > 0)
    options.microBatchSize = microBatchSize.getValue();
  if (zeroStage >= 0)
    options.zeroStage = zeroStage.getValue();
  if (scheduleName.getNumOccurrences()) {
    options.schedule = pipeline::parseScheduleKind(scheduleName);
    if (!options.schedule) {
      error() << "--schedule must be gpipe, 1f1b or interleaved, got '"
              << scheduleName << "'\n";
      return failure();
    }
  }
  if (recompute.getNumOccurrences()) {
    if (recompute != "none" && recompute != "full" && !recompute.empty()) {
      error() << "--recompute must be none or full, got '" << recompute
              << "'\n";
      return failure();
    }
    options.recompute = isRecomputing();
  }

  llvm::SourceMgr sourceMgr;
  SourceMgrDiagnosticHandler diagnostics(sourceMgr, &context);
  OwningOpRef<ModuleOp> module = parseModel(context, modelPath, sourceMgr);
  if (!module)
    return failure();
  func::FuncOp forward;
  for (func::FuncOp function : module->getOps<func::FuncOp>())
    if (!function.isDeclaration() &&
        (entry.empty() ? !forward : function.getSymName() == entry))
      forward = function;
  if (!forward) {
    error() << "no function to plan"
            << (entry.empty() ? std::string() : " named '" + entry + "'")
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

/// --auto: plans the model and sets the pipeline options that run the
/// chosen plan.
LogicalResult applyChosenPlan(MLIRContext &context, StringRef modelPath,
                              TrainingPipelineOptions &options) {
  if (meshOption.getNumOccurrences() || strategyOption.getNumOccurrences() ||
      microBatches.getNumOccurrences() || scheduleName.getNumOccurrences() ||
      virtualStages.getNumOccurrences() || recompute.getNumOccurrences() ||
      layersPerStage.getNumOccurrences()) {
    error() << "--auto chooses the mesh, strategies, micro-batches, schedule, "
               "stages and recompute itself: give none of them\n";
    return failure();
  }
  if (globalBatch.getNumOccurrences()) {
    error() << "--auto trains the model's own batch: build the model with "
               "the batch you want instead of --global-batch\n";
    return failure();
  }
  FailureOr<Planned> planned = planModel(context, modelPath, true);
  if (failed(planned))
    return failure();
  const planner::Plan &chosen = planned->result.plans.front().plan;
  bool pipelined = chosen.pp > 1 ||
                   (chosen.microBatches > 1 && chosen.dp * chosen.tp > 1);
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
  const planner::PlanCost &cost = planned->result.plans.front().cost;
  // The stage DP's cut (an interleaved plan's chunks split evenly).
  options.layersPerStage.clear();
  if (chosen.pp > 1 && chosen.virtualStages == 1)
    for (int64_t blocks : cost.layersPerStage)
      options.layersPerStage.push_back(blocks);
  llvm::outs() << "cleavec: auto: mesh " << (mesh.empty() ? "none" : mesh)
               << (strategies.empty() ? "" : ", strategies " + strategies)
               << ", micro-batches " << chosen.microBatchSize << " x "
               << chosen.microBatches << ", schedule " << options.schedule
               << (chosen.virtualStages > 1
                       ? " v=" + std::to_string(chosen.virtualStages)
                       : "")
               << ", recompute " << (chosen.recompute ? "full" : "none")
               << "; predicted step "
               << llvm::format("%.4f", cost.stepTime) << " s on "
               << planned->cluster.name << "\n";
  std::string message;
  if (failed(verifyTrainingPipelineOptions(options, message))) {
    error() << message << "\n";
    return failure();
  }
  return success();
}

int train(MLIRContext &context, StringRef modelPath) {
  if (dataPath.empty() || steps <= 0) {
    error() << "train needs --data FILE and --steps N\n";
    return 1;
  }
  TrainingPipelineOptions options;
  if (failed(getPipelineOptions(Mode::Train, options)) ||
      (autoPlan && failed(applyChosenPlan(context, modelPath, options))))
    return 1;
  std::string executable;
  if (failed(build(context, modelPath, Mode::Train, options, outDir,
                   executable)))
    return 1;
  if (emitOnly || printPipeline || options.compileTo != CompilePhase::Kernels)
    return 0;
  SmallVector<std::string> command = {
      executable,      "--data",        dataPath,
      "--token-bytes", std::to_string(tokenBytes.getValue()),
      "--steps",       std::to_string(steps.getValue()),
      "--lr",          lr,
      "--lr-schedule", lrSchedule,
      "--warmup",      warmup,
      "--decay-steps", decaySteps,
      "--min-lr",      minLr,
      "--seed",        std::to_string(seed.getValue()),
      "--init-seed",   std::to_string(seed.getValue()),
      "--save-every",  saveEvery,
      "--micro-batches", std::to_string(options.microBatches.getValue()),
      "--out",         outDir};
  if (!resumeDir.empty())
    command.append({"--resume", resumeDir});
  if (options.mesh.empty())
    return run(command);
  int64_t ranks = 1;
  for (const MeshAxisSpec &axis : *parseMeshFlag(options.mesh))
    ranks *= axis.size;
  FailureOr<SmallVector<std::string>> launch = getLocalLaunch(ranks);
  if (failed(launch))
    return 1;
  llvm::outs() << "cleavec: on a cluster: mpirun -np " << ranks << " "
               << joinCommand(command) << "\ncleavec:   or: srun -n " << ranks
               << " " << joinCommand(command) << "\n";
  command.insert(command.begin(), launch->begin(), launch->end());
  return run(command);
}

/// The schedule --schedule, --micro-batches and --virtual-stages ask for
/// over `ranks` pp ranks, or a reported error.
FailureOr<pipeline::Schedule> getSchedule(int64_t ranks) {
  std::optional<pipeline::ScheduleKind> kind =
      pipeline::parseScheduleKind(scheduleName);
  if (!kind) {
    error() << "--schedule must be gpipe, 1f1b or interleaved, got '"
            << scheduleName << "'\n";
    return failure();
  }
  std::string message;
  std::optional<pipeline::Schedule> schedule = pipeline::buildSchedule(
      *kind, ranks, microBatches, virtualStages, message);
  if (!schedule) {
    error() << message << "\n";
    return failure();
  }
  return std::move(*schedule);
}

/// `cleavec schedule --mesh pp=P --micro-batches M [--schedule S]
/// [--virtual-stages V]`: the per-rank orders of a pipeline schedule.
int printSchedule() {
  FailureOr<SmallVector<MeshAxisSpec>> mesh = parseMeshFlag(meshOption);
  if (failed(mesh))
    return 1;
  auto pp = llvm::find_if(
      *mesh, [](const MeshAxisSpec &axis) { return axis.name == "pp"; });
  if (pp == mesh->end()) {
    error() << "schedule needs a pp axis: --mesh pp=P\n";
    return 1;
  }
  FailureOr<pipeline::Schedule> schedule = getSchedule(pp->size);
  if (failed(schedule))
    return 1;
  if (failed(printScheduleReport(*schedule, llvm::outs()))) {
    error() << "the " << scheduleName << " schedule cannot complete\n";
    return 1;
  }
  return 0;
}

/// --explain: the splits cleave-search-tensor-sharding chooses per layer
/// for the plan's tp (on the model as built, at its own batch).
LogicalResult explainTensorSplits(MLIRContext &context, StringRef modelPath,
                                  StringRef forwardName, int64_t tp) {
  llvm::SourceMgr sourceMgr;
  SourceMgrDiagnosticHandler diagnostics(sourceMgr, &context);
  OwningOpRef<ModuleOp> module = parseModel(context, modelPath, sourceMgr);
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
  search.cluster = clusterName;
  search.report = true;
  pm.addPass(createCleaveSearchTensorSharding(search));
  llvm::outs() << "cleavec: tensor-parallel splits at tp=" << tp
               << " (cleave-search-tensor-sharding on the model as built; "
                  "per layer group, dims of [in, out] weights: 1 column, 0 "
                  "row):\n";
  return pm.run(*module);
}

/// `cleavec plan MODEL.mlir --gpus N --cluster NAME ...`: the fastest plan
/// that fits and its alternatives.
int plan(MLIRContext &context, StringRef modelPath) {
  FailureOr<Planned> planned = planModel(context, modelPath, false);
  if (failed(planned))
    return 1;
  PlanReportOptions report;
  report.explain = explain;
  if (planJson)
    printPlanJson(planned->model, planned->cluster, planned->options,
                  planned->result, report, llvm::outs());
  else
    printPlanReport(planned->model, planned->cluster, planned->options,
                    planned->result, report, llvm::outs());
  const planner::Plan &chosen = planned->result.plans.front().plan;
  if (explain && !planJson && chosen.tp > 1 &&
      failed(explainTensorSplits(context, modelPath, planned->forwardName,
                                 chosen.tp)))
    return 1;
  return 0;
}

int prepareText(StringRef textPath) {
  if (outputDir.empty()) {
    error() << "prepare-text needs -o TOKENS.bin\n";
    return 1;
  }
  uint64_t count = 0;
  ::cleave::rt::Status status =
      ::cleave::rt::prepareByteTokens(textPath.str(), outputDir, &count);
  if (!status.ok()) {
    error() << status.message() << "\n";
    return 1;
  }
  llvm::outs() << "cleavec: wrote " << count << " byte tokens (vocabulary "
                                                 "256) to " << outputDir << "\n";
  return 0;
}

} // namespace

int main(int argc, char **argv) {
  llvm::InitLLVM init(argc, argv);
  cl::HideUnrelatedOptions({&category, &trainCategory, &planCategory});
  cl::ParseCommandLineOptions(
      argc, argv,
      "Cleave end-to-end driver\n\n"
      "  cleavec build MODEL.mlir --target cpu|cuda -o DIR "
      "[--init-params FILE --seed N] [--gradients]\n"
      "  cleavec train MODEL.mlir --data TOKENS.bin --steps N --out DIR "
      "[--lr X] [--optimizer adamw|sgd] [--resume DIR]\n"
      "  cleavec prepare-text FILE -o TOKENS.bin\n"
      "  cleavec schedule --mesh pp=P --micro-batches M "
      "[--schedule gpipe|1f1b|interleaved] [--virtual-stages V]\n"
      "  cleavec plan MODEL.mlir --gpus N --cluster NAME [--global-batch B] "
      "[--json] [--explain] [--mesh dp=a,tp=b,pp=c]\n"
      "  cleavec train MODEL.mlir ... --auto --gpus N --cluster NAME\n");
  static const char *const kCommands =
      "'build', 'train', 'plan', 'prepare-text' or 'schedule'";
  if (positional.empty()) {
    error() << "missing command; the command is " << kCommands
            << " (see --help)\n";
    return 1;
  }
  StringRef command = positional[0];
  if (command == "schedule") {
    if (positional.size() != 1) {
      error() << "'schedule' takes no file\n";
      return 1;
    }
    return printSchedule();
  }
  if (command != "build" && command != "train" && command != "plan" &&
      command != "prepare-text") {
    error() << "unknown command '" << command << "'; the command is "
            << kCommands << " (see --help)\n";
    return 1;
  }
  if (positional.size() != 2) {
    error() << "'" << command << "' takes one "
            << (command == "prepare-text" ? "text" : "model") << " file\n";
    return 1;
  }
  if (command == "prepare-text")
    return prepareText(positional[1]);
  DialectRegistry registry;
  registry.insert<CleaveDialect, func::FuncDialect, arith::ArithDialect,
                  tensor::TensorDialect>();
  MLIRContext context(registry);
  if (command == "train")
    return train(context, positional[1]);
  if (command == "plan")
    return plan(context, positional[1]);
  FailureOr<SmallVector<MeshAxisSpec>> mesh = parseMeshFlag(meshOption);
  if (failed(mesh))
    return 1;
  // --auto builds the planned training step, and a pp axis pipelines one:
  // both build it as train would, with the train options, without running
  // it.
  bool pipelined = autoPlan || llvm::any_of(*mesh, [](const MeshAxisSpec &axis) {
                     return axis.name == "pp";
                   });
  if (pipelined && gradients) {
    error() << "--gradients builds one gradient program; a pp axis or --auto "
               "builds a training step\n";
    return 1;
  }
  Mode mode = pipelined   ? Mode::Train
              : gradients ? Mode::Gradients
                          : Mode::Forward;
  TrainingPipelineOptions options;
  if (failed(getPipelineOptions(mode, options)) ||
      (autoPlan && failed(applyChosenPlan(context, positional[1], options))))
    return 1;
  std::string executable;
  if (failed(build(context, positional[1], mode, options, outputDir,
                   executable)))
    return 1;
  if (pipelined && !executable.empty()) {
    int64_t ranks = 1;
    for (const MeshAxisSpec &axis : *parseMeshFlag(options.mesh))
      ranks *= axis.size;
    llvm::outs() << "cleavec: run it: mpirun -np " << ranks << " "
                 << executable << " --data TOKENS.bin --steps N "
                 << "--micro-batches " << options.microBatches
                 << " --out DIR\n";
  }
  return 0;
}
