//===- cleavec.cpp - The end-to-end Cleave driver -------------------------===//
//
// The command line over the driver library (cleave/Driver): its flags become
// a training pipeline's options, a compilation, a plan request or a launch.
//
//===----------------------------------------------------------------------===//

#include "cleave/Dialect/Cleave/IR/CleaveDialect.h"
#include "cleave/Dialect/Cleave/IR/CleaveOps.h"
#include "cleave/Driver/Driver.h"
#include "cleave/Driver/Planning.h"
#include "cleave/Driver/ScheduleReport.h"
#include "cleave/runtime/Checkpoint.h"
#include "cleave/runtime/Schedule.h"

#include "mlir/Dialect/Arith/IR/Arith.h"
#include "mlir/Dialect/Func/IR/FuncOps.h"
#include "mlir/Dialect/Tensor/IR/Tensor.h"
#include "llvm/ADT/StringExtras.h"
#include "llvm/Support/CommandLine.h"
#include "llvm/Support/FileSystem.h"
#include "llvm/Support/InitLLVM.h"

#include <cstdio>

using namespace mlir;
using namespace mlir::cleave;
using namespace mlir::cleave::driver;
namespace cl = llvm::cl;

static cl::OptionCategory category("cleavec options"),
    trainCategory("cleavec train options"), planCategory("cleavec plan options");

static cl::list<std::string> positional(cl::Positional, cl::cat(category),
                                        cl::desc("COMMAND [FILE]"));
static cl::opt<std::string> target("target", cl::init("cpu"), cl::cat(category),
    cl::desc("Where the program runs: cpu (OpenMP + OpenBLAS) or cuda"));
static cl::opt<std::string> outputDir("o", cl::desc("Output directory"),
                                      cl::value_desc("dir"), cl::cat(category));
static cl::opt<std::string> tokenizerDir(
    "tokenizer", cl::value_desc("dir"), cl::cat(category),
    cl::desc("prepare-text: tokenize with this Hugging Face tokenizer "
             "(DIR/tokenizer.json, through the Python tokenizers package; "
             "CLEAVE_PYTHON names the interpreter, python3 by default) "
             "instead of bytes"));
static cl::opt<std::string> likeDir(
    "like", cl::value_desc("dir"), cl::cat(category),
    cl::desc("export-hf: the Hugging Face model directory the checkpoint "
             "was imported from (its config and files are copied, its "
             "weights replaced)"));
static cl::opt<std::string> initParams("init-params", cl::value_desc("file"),
    cl::desc("Also write the entry function's initial parameters (as their "
             "cleave.init says) to this safetensors file"), cl::cat(category));
static cl::opt<uint64_t> seed("seed", cl::init(0), cl::cat(category),
    cl::desc("Seed of --init-params, and of train's data and parameters"));
static cl::opt<std::string> entry("entry", cl::cat(category),
    cl::desc("Function to build (default: the only one, or 'forward')"));
static cl::opt<std::string> cudaArchs("cuda-arch", cl::init("80,90"),
    cl::desc("GPU architectures for --target cuda"), cl::cat(category));
static cl::opt<bool> gradients("gradients", cl::cat(category),
    cl::desc("Build cleave-autodiff's step instead: the loss and "
             "grad.<param> for each parameter"));
static cl::opt<std::string> meshOption("mesh", cl::value_desc("axis=size,..."),
    cl::desc("Partition over a device mesh, outermost axis first (dp=2,tp=2): "
             "one process per device"), cl::cat(category));
static cl::opt<std::string> strategy(
    "strategy", cl::cat(category),
    cl::desc(
        "With --mesh: dp, megatron, megatron-sp (with sequence parallelism), "
        "search, zero1, zero2, zero3 "
        "(default: dp on dp, megatron on tp)"));
static cl::opt<unsigned> optLevel("opt-level", cl::init(3), cl::cat(category),
    cl::desc("Optimization level of the generated program's compiler, 0-3"));
static cl::opt<std::string> schedule("schedule", cl::init("1f1b"),
    cl::desc("With a pp axis: gpipe, 1f1b or interleaved"), cl::cat(category));
static cl::opt<int64_t> virtualStages("virtual-stages", cl::init(1),
    cl::desc("With --schedule interleaved: model chunks per pp rank"),
    cl::cat(category));
static cl::list<int64_t> layersPerStage("layers-per-stage", cl::CommaSeparated,
    cl::desc("With a pp axis: transformer blocks per stage (default: "
             "balanced by FLOPs, then parameter bytes)"), cl::cat(category));
static cl::opt<bool> printPipeline("print-pipeline", cl::cat(category),
    cl::desc("Print the pass pipeline (for cleave-opt --pass-pipeline) "
             "instead of compiling"));
static cl::opt<std::string> compileTo("compile-to", cl::value_desc("phase"),
    cl::desc("Stop after a phase (planned, model, step, sharded, staged, "
             "kernels) and write its module to DIR/NAME.PHASE.mlir, or "
             "stdout"),
    cl::cat(category));
static cl::opt<bool> gemmEpilogues(
    "gemm-epilogues", cl::init(true),
    cl::desc("Fold each matmul's bias add and gelu into its GEMM (default; "
             "=false keeps them as kernels of their own)"),
    cl::cat(category));
static cl::opt<bool> overlapCollectives(
    "overlap-collectives", cl::init(true),
    cl::desc("Start data-parallel gathers a layer ahead and gradient sums "
             "behind the backward (default; =false runs each where it "
             "stands)"),
    cl::cat(category));
static cl::opt<bool> emitOnly("emit-only", cl::cat(category),
    cl::desc("Write the source and print the build command, do not run it"));

static cl::opt<std::string>
    dataPath("data", cl::value_desc("file"),
             cl::desc("train: token file (llm.c's header, then the tokens; "
                      "docs/training.md)"),
             cl::cat(trainCategory));
static cl::opt<unsigned> tokenBytes(
    "token-bytes", cl::init(0),
    cl::desc("train: bytes per token (2 or 4) of a token file without a "
             "header; a file with one says"),
    cl::cat(trainCategory));
static cl::opt<int64_t> steps(
    "steps", cl::init(0), cl::cat(trainCategory),
    cl::desc("train: train until this step (from 1, across resumes); 0 "
             "writes the initial parameters as the checkpoint of step 0"));
static cl::opt<std::string> lr("lr", cl::init("1e-3"), cl::cat(trainCategory),
                               cl::desc("train: peak learning rate"));
static cl::opt<std::string> lrSchedule("lr-schedule", cl::init("constant"),
    cl::desc("train: constant or cosine"), cl::cat(trainCategory));
static cl::opt<std::string> warmup("warmup", cl::init("0"),
    cl::desc("train: linear warmup steps"), cl::cat(trainCategory));
static cl::opt<std::string> decaySteps("decay-steps", cl::init("0"),
    cl::desc("train: cosine decay steps after warmup"), cl::cat(trainCategory));
static cl::opt<std::string> minLr("min-lr", cl::init("0"), cl::cat(trainCategory),
    cl::desc("train: learning rate at the end of the decay"));
static cl::opt<std::string> optimizer("optimizer", cl::init("adamw"),
    cl::desc("train: adamw or sgd"), cl::cat(trainCategory));
static cl::opt<double> momentum("momentum", cl::init(0.0),
    cl::desc("train: SGD momentum"), cl::cat(trainCategory));
static cl::opt<double> beta1("beta1", cl::init(0.9), cl::cat(trainCategory),
                             cl::desc("train: AdamW beta1"));
static cl::opt<double> beta2("beta2", cl::init(0.999), cl::cat(trainCategory),
                             cl::desc("train: AdamW beta2"));
static cl::opt<double> weightDecay("weight-decay", cl::init(0.0),
    cl::desc("train: weight decay of matrices"), cl::cat(trainCategory));
static cl::opt<double> clipNorm("clip-norm", cl::init(0.0), cl::cat(trainCategory),
    cl::desc("train: clip the global gradient norm (0: off)"));
static cl::opt<int64_t> microBatches("micro-batches", cl::init(1),
    cl::desc("train: run the batch as this many micro-batches, accumulating "
             "their gradients"), cl::cat(trainCategory));
static cl::opt<std::string> precision(
    "precision", cl::init("f32"),
    cl::desc("train: f32, or bf16 compute with f32 master weights (f16 is "
             "refused: no loss scaling yet)"),
    cl::cat(trainCategory));
static cl::opt<std::string> recompute(
    "recompute", cl::ValueOptional,
    cl::desc("train: recompute each layer's activations in the backward; "
             "plan: none|full fixes the choice (--recompute full or "
             "--recompute=full)"),
    cl::value_desc("none|full"), cl::cat(trainCategory));
static cl::list<int64_t> recomputeLayers(
    "recompute-layers", cl::CommaSeparated,
    cl::desc("train, plan: recompute only the first K blocks of each "
             "pipeline stage (of the model without one); train also takes "
             "one K per stage, K1,K2,..."),
    cl::value_desc("K"), cl::cat(trainCategory));
static cl::opt<std::string> saveEvery("save-every", cl::init("0"),
    cl::desc("train: also checkpoint every K steps"), cl::cat(trainCategory));
static cl::opt<double> bucketMegabytes(
    "bucket-mb", cl::init(0.0),
    cl::desc("train, plan: reduce data-parallel gradients in buckets of this "
             "many MiB (default 25), each started as the last micro-batch's "
             "backward fills it; collectives a program starts early go out "
             "in groups of up to this size"),
    cl::value_desc("MiB"), cl::cat(trainCategory));
static cl::opt<std::string> resumeDir("resume", cl::value_desc("dir"),
    cl::desc("train: continue the run checkpointed in this directory"),
    cl::cat(trainCategory));
static cl::opt<bool> reseed(
    "reseed", cl::cat(trainCategory),
    cl::desc("train: with --resume, continue on --seed's data order instead "
             "of the checkpoint's (without it, a --seed other than the "
             "checkpoint's is refused)"));
static cl::opt<std::string> initFrom(
    "init-from", cl::value_desc("file"),
    cl::desc("train: start from the parameters in this safetensors file "
             "(the model's names and shapes; bf16 and f16 convert), on any "
             "mesh"),
    cl::cat(trainCategory));
static cl::opt<std::string> outDir("out", cl::value_desc("dir"),
    cl::desc("train: where the program and the checkpoints go"),
    cl::cat(trainCategory));

static cl::opt<int64_t> gpus("gpus", cl::init(0), cl::cat(planCategory),
                             cl::desc("plan: the number of devices"));
static cl::opt<std::string> cluster("cluster", cl::cat(planCategory),
    cl::desc("plan, --auto, --strategy search: a shipped cluster (dgx-a100-"
             "40g, dgx-a100-80g, dgx-h100, h200-node, cpu-local) or a file"));
static cl::opt<int64_t> globalBatch("global-batch", cl::init(0),
    cl::desc("plan: samples per optimizer step (default: the model's batch)"),
    cl::cat(planCategory));
static cl::opt<double> memoryLimit("memory-limit", cl::init(0.0),
    cl::desc("plan: GiB a device may use (default: its memory)"),
    cl::cat(planCategory));
static cl::opt<int64_t> microBatchSize("micro-batch-size", cl::init(0),
    cl::desc("plan: fix the samples per micro-batch"), cl::cat(planCategory));
static cl::opt<int64_t> zeroStage("zero-stage", cl::init(-1),
    cl::desc("plan: fix the ZeRO stage (0-3)"), cl::cat(planCategory));
static cl::opt<bool> autoPlan("auto", cl::cat(planCategory),
    cl::desc("build/train: plan for --gpus N on --cluster NAME as cleavec "
             "plan does, and build (train: run) the chosen plan"));
static cl::opt<bool> planJson("json", cl::cat(planCategory),
                              cl::desc("plan: print the plan as JSON"));
static cl::opt<int64_t>
    alternatives("alternatives", cl::init(8),
                 cl::desc("plan: how many plans to list after the chosen one"),
                 cl::cat(planCategory));
static cl::opt<bool> explain("explain", cl::cat(planCategory),
    cl::desc("plan: also show the sharding decisions and the memory"));

namespace {

/// The size of --mesh's pp axis (0 without one); -1 after reporting a
/// mesh that does not parse.
int64_t getPipelineAxis() {
  std::string message;
  FailureOr<SmallVector<MeshAxisSpec>> mesh =
      meshOption.empty() ? SmallVector<MeshAxisSpec>()
                         : parseMeshSpec(meshOption, message);
  if (failed(mesh)) {
    error() << "--mesh: " << message << "\n";
    return -1;
  }
  for (const MeshAxisSpec &axis : *mesh)
    if (axis.name == "pp")
      return axis.size;
  return 0;
}

/// --recompute alone or =full asks for recompute, =none does not;
/// --recompute-layers K asks for it on K blocks per stage.
FailureOr<std::optional<bool>> getRecompute() {
  if (recompute != "none" && recompute != "full" && !recompute.empty()) {
    error() << "--recompute must be none or full, got '" << recompute << "'\n";
    return failure();
  }
  if (recomputeLayers.getNumOccurrences() &&
      (llvm::any_of(recomputeLayers, [](int64_t k) { return k < 0; }) ||
       recompute == "none")) {
    error() << "--recompute-layers needs a count of at least 0 and recompute "
               "on\n";
    return failure();
  }
  if (recomputeLayers.getNumOccurrences())
    return std::optional(true);
  return recompute.getNumOccurrences() ? std::optional(recompute != "none")
                                       : std::nullopt;
}

/// `--recompute full` as users type it: LLVM's parser takes an optional
/// value only after '=', so a following none|full joins the flag.
SmallVector<const char *> joinRecomputeValue(int argc, char **argv,
                                             std::vector<std::string> &joined) {
  SmallVector<const char *> args;
  joined.reserve(argc);
  for (int i = 0; i < argc; ++i) {
    StringRef arg = argv[i];
    if ((arg == "--recompute" || arg == "-recompute") && i + 1 < argc &&
        (StringRef(argv[i + 1]) == "none" ||
         StringRef(argv[i + 1]) == "full")) {
      joined.push_back(arg.str() + "=" + argv[++i]);
      args.push_back(joined.back().c_str());
      continue;
    }
    args.push_back(argv[i]);
  }
  return args;
}

/// `value` as text that reads back as the same double.
std::string getExactText(double value) {
  char text[32];
  std::snprintf(text, sizeof(text), "%.17g", value);
  return text;
}

/// The plan request of plan's flags (--auto: for training).
PlanRequest getPlanRequest(bool forTraining, std::optional<bool> recomputing) {
  PlanRequest request{gpus, cluster, entry, globalBatch, memoryLimit};
  request.bucketMegabytes = bucketMegabytes;
  if (precision.getNumOccurrences() || forTraining)
    request.precision = precision;
  request.mesh = meshOption;
  if (microBatchSize > 0)
    request.microBatchSize = microBatchSize;
  if (zeroStage >= 0)
    request.zeroStage = zeroStage;
  if (schedule.getNumOccurrences())
    request.schedule = schedule;
  request.recompute = recomputing;
  if (!recomputeLayers.empty())
    request.recomputeLayers = recomputeLayers.front();
  request.forTraining = forTraining;
  return request;
}

/// The pipeline options of the build and train flags (with --auto, the
/// compilation fills the plan's from cleave-auto-parallel), checked before
/// the long compile.
LogicalResult getPipelineOptions(CompileMode mode,
                                 TrainingPipelineOptions &options) {
  FailureOr<std::optional<bool>> recomputing = getRecompute();
  if (failed(recomputing))
    return failure();
  options.mode = mode;
  if (mode == CompileMode::Train) {
    options.precision = precision;
    options.microBatches = microBatches;
    options.optimizer = optimizer;
    options.momentum = momentum;
    options.beta1 = beta1;
    options.beta2 = beta2;
    options.weightDecay = weightDecay;
    options.clipNorm = clipNorm;
  }
  options.recompute = mode != CompileMode::Forward && recomputing->value_or(false);
  options.recomputeLayers =
      SmallVector<int64_t>(recomputeLayers.begin(), recomputeLayers.end());
  options.gemmEpilogues = gemmEpilogues;
  options.overlapCollectives = overlapCollectives;
  if (bucketMegabytes.getNumOccurrences())
    options.bucketMegabytes = bucketMegabytes;
  options.mesh = meshOption;
  options.strategy = strategy;
  options.cluster = cluster;
  options.schedule = schedule;
  options.virtualStages = virtualStages;
  options.layersPerStage = SmallVector<int64_t>(layersPerStage.begin(),
                                                layersPerStage.end());
  if (compileTo.getNumOccurrences()) {
    std::optional<CompilePhase> phase = parseCompilePhase(compileTo);
    if (!phase) {
      error() << "--compile-to must be planned, model, step, sharded, "
                 "staged or kernels, got '" << compileTo << "'\n";
      return failure();
    }
    options.compileTo = *phase;
  }
  addPipelineAxisForMicroBatches(options);
  std::string message;
  if (getPipelineAxis() < 0)
    return failure();
  if (strategy.getNumOccurrences() && strategy.empty()) {
    error() << "--strategy needs at least one strategy\n";
    return failure();
  }
  if (autoPlan) {
    std::initializer_list<cl::Option *> chosen = {
        &meshOption,
        &strategy,
        &microBatches,
        &schedule,
        &virtualStages,
        &recompute,
        std::addressof(recomputeLayers),
        std::addressof(layersPerStage)};
    if (llvm::any_of(chosen, [](cl::Option *o) { return o->getNumOccurrences(); })) {
      error() << "--auto chooses the mesh, strategies, micro-batches, "
                 "schedule, stages and recompute itself: give none of them\n";
      return failure();
    }
    if (globalBatch.getNumOccurrences()) {
      error() << "--auto trains the model's own batch: build the model with "
                 "the batch you want instead of --global-batch\n";
      return failure();
    }
  }
  if (failed(verifyTrainingPipelineOptions(options, message))) {
    error() << message << "\n";
    return failure();
  }
  return success();
}

/// Compiles the model of the command line through `options` into
/// `directory`, the value of `flag`.
LogicalResult
compile(MLIRContext &context, TrainingPipelineOptions &options, StringRef flag,
        StringRef directory, std::string &executable,
        const ::cleave::rt::CheckpointIndex *resumeIndex = nullptr) {
  if (directory.empty() && !printPipeline && !compileTo.getNumOccurrences()) {
    error() << "missing " << flag << " <dir>\n";
    return failure();
  }
  CompileRequest request{positional[1], directory, entry,
                         {target, cudaArchs, optLevel, emitOnly},
                         printPipeline, initParams, seed};
  if (autoPlan)
    request.autoPlan = getPlanRequest(true, std::nullopt);
  request.resumeIndex = resumeIndex;
  request.resumeDir = resumeDir;
  return compileModel(context, options, request, llvm::outs(), executable);
}

/// The learning-rate flags as the program reads them, checked as it
/// checks them.
FailureOr<::cleave::rt::LrSchedule> getSchedule() {
  ::cleave::rt::LrSchedule schedule;
  auto number = [](const cl::opt<std::string> &flag, double &value) {
    if (llvm::to_float(flag.getValue(), value))
      return true;
    error() << "--" << flag.ArgStr << " wants a number, got '" << flag << "'\n";
    return false;
  };
  auto count = [](const cl::opt<std::string> &flag, int64_t &value) {
    if (!StringRef(flag).getAsInteger(10, value) && value >= 0)
      return true;
    error() << "--" << flag.ArgStr << " wants a number of steps, got '" << flag
            << "'\n";
    return false;
  };
  if (!number(lr, schedule.lr) || !number(minLr, schedule.minLr) ||
      !count(warmup, schedule.warmup) ||
      !count(decaySteps, schedule.decaySteps))
    return failure();
  if (lrSchedule != "constant" && lrSchedule != "cosine") {
    error() << "--lr-schedule must be constant or cosine, got '" << lrSchedule
            << "'\n";
    return failure();
  }
  schedule.kind = lrSchedule == "cosine" ? ::cleave::rt::LrSchedule::Cosine
                                         : ::cleave::rt::LrSchedule::Constant;
  if (::cleave::rt::Status status = ::cleave::rt::validate(schedule);
      !status.ok()) {
    error() << status.message() << "\n";
    return failure();
  }
  return schedule;
}

/// What train can check without the program, checked before the compile,
/// which takes a while: the flags, the files, and the checkpoint's index.
LogicalResult checkTrainingInputs(::cleave::rt::CheckpointReader &checkpoint) {
  if (dataPath.empty()) {
    error() << "train needs --data FILE (cleavec prepare-text makes one)\n";
    return failure();
  }
  if (!steps.getNumOccurrences()) {
    error() << "train needs --steps N (the step to train until)\n";
    return failure();
  }
  if (steps < 0) {
    error() << "--steps must be at least 0, got " << steps << "\n";
    return failure();
  }
  if (!llvm::sys::fs::is_regular_file(dataPath)) {
    error() << "--data '" << dataPath << "' is not a file\n";
    return failure();
  }
  if (failed(getSchedule()))
    return failure();
  int64_t every = 0;
  if (StringRef(saveEvery).getAsInteger(10, every) || every < 0) {
    error() << "--save-every wants a number of steps, got '" << saveEvery
            << "'\n";
    return failure();
  }
  if (!initFrom.empty() && !resumeDir.empty()) {
    error() << "--init-from starts a run and --resume continues one: give "
               "one of them\n";
    return failure();
  }
  if (!initFrom.empty() && !llvm::sys::fs::is_regular_file(initFrom)) {
    error() << "--init-from '" << initFrom << "' is not a file\n";
    return failure();
  }
  if (reseed && (resumeDir.empty() || !seed.getNumOccurrences())) {
    error() << "--reseed continues a run (--resume DIR) on a new data order "
               "(--seed N): give both\n";
    return failure();
  }
  if (!resumeDir.empty()) {
    if (::cleave::rt::Status status =
            ::cleave::rt::CheckpointReader::open(resumeDir, checkpoint);
        !status.ok()) {
      error() << "--resume: " << status.message() << "\n";
      return failure();
    }
    const std::map<std::string, std::string> &metadata =
        checkpoint.getIndex().metadata;
    auto recorded = metadata.find("data_seed");
    uint64_t recordedSeed = 0;
    // An unreadable data_seed is the program's to report.
    if (seed.getNumOccurrences() && !reseed && recorded != metadata.end() &&
        !StringRef(recorded->second).getAsInteger(10, recordedSeed))
      if (::cleave::rt::Status status =
              ::cleave::rt::checkResumedSeed(resumeDir, recordedSeed, seed);
          !status.ok()) {
        error() << status.message() << "\n";
        return failure();
      }
  }
  return success();
}

int train(MLIRContext &context) {
  ::cleave::rt::CheckpointReader checkpoint;
  if (failed(checkTrainingInputs(checkpoint)))
    return 1;
  // The program goes into --out: a job running there keeps it, and its
  // checkpoints, from being overwritten.
  ::cleave::rt::OutputDirectoryLock lock;
  if (!outDir.empty()) {
    if (std::error_code ec =
            llvm::sys::fs::create_directories(outDir.getValue())) {
      error() << "cannot create '" << outDir << "': " << ec.message() << "\n";
      return 1;
    }
    if (::cleave::rt::Status status = lock.acquire(outDir); !status.ok()) {
      error() << status.message() << "\n";
      return 1;
    }
  }
  TrainingPipelineOptions options;
  std::string executable;
  if (failed(getPipelineOptions(CompileMode::Train, options)) ||
      failed(compile(context, options, "--out", outDir, executable,
                     resumeDir.empty() ? nullptr : &checkpoint.getIndex())))
    return 1;
  if (executable.empty())
    return 0;
  // The lock stays cleavec's while the job runs: the job dies with it,
  // and its rank 0 accepts a lock held by its supervisor.
  TrainingRun run;
  run.data = dataPath;
  run.tokenBytes = tokenBytes;
  run.steps = steps;
  run.lr = lr;
  run.lrSchedule = lrSchedule;
  run.warmup = warmup;
  run.decaySteps = decaySteps;
  run.minLr = minLr;
  run.seed = seed;
  run.seedGiven = seed.getNumOccurrences() > 0;
  run.reseed = reseed;
  run.saveEvery = saveEvery;
  if (bucketMegabytes.getNumOccurrences())
    run.bucketMegabytes = getExactText(bucketMegabytes);
  run.out = outDir;
  run.resume = resumeDir;
  run.mesh = options.mesh;
  run.initFrom = initFrom;
  return runTraining(executable, run, llvm::outs());
}

int build(MLIRContext &context) {
  // --auto builds the planned training step, and a pp axis pipelines one:
  // both build it as train would, without running it.
  int64_t ranks = getPipelineAxis();
  if (ranks < 0)
    return 1;
  bool pipelined = autoPlan || ranks > 0;
  if (pipelined && gradients) {
    error() << "--gradients builds one gradient program; a pp axis or --auto "
               "builds a training step\n";
    return 1;
  }
  CompileMode mode = pipelined   ? CompileMode::Train
                     : gradients ? CompileMode::Gradients
                                 : CompileMode::Forward;
  TrainingPipelineOptions options;
  std::string executable;
  if (failed(getPipelineOptions(mode, options)) ||
      failed(compile(context, options, "-o", outputDir, executable)))
    return 1;
  if (pipelined && !executable.empty())
    llvm::outs() << "cleavec: run it: mpirun -np "
                 << getMeshDevices(options.mesh) << " " << executable
                 << " --data TOKENS.bin --steps N --out DIR\n";
  return 0;
}

/// `cleavec plan MODEL.mlir --gpus N --cluster NAME ...`: the fastest plan
/// that fits and its alternatives.
int plan(MLIRContext &context) {
  FailureOr<std::optional<bool>> recomputing = getRecompute();
  if (failed(recomputing))
    return 1;
  if (recomputeLayers.size() > 1) {
    error() << "plan: --recompute-layers takes one K, for every stage\n";
    return 1;
  }
  if (alternatives < 0) {
    error() << "--alternatives must be at least 0\n";
    return 1;
  }
  FailureOr<Planned> planned =
      planModel(context, positional[1], getPlanRequest(false, *recomputing));
  if (failed(planned))
    return 1;
  PlanReportOptions report;
  report.explain = explain;
  report.alternatives = alternatives;
  return failed(reportPlan(context, positional[1], *planned, planJson, report,
                           cluster, llvm::outs()));
}

/// `cleavec schedule --mesh pp=P --micro-batches M [--schedule S]
/// [--virtual-stages V]`: the per-rank orders of a pipeline schedule.
int scheduleCommand() {
  int64_t ranks = getPipelineAxis();
  if (ranks == 0)
    error() << "schedule needs a pp axis: --mesh pp=P\n";
  return ranks <= 0 ||
         failed(printSchedule(schedule, ranks, microBatches, virtualStages,
                              llvm::outs()));
}

} // namespace

int main(int argc, char **argv) {
  llvm::InitLLVM init(argc, argv);
  cl::HideUnrelatedOptions({&category, &trainCategory, &planCategory});
  std::vector<std::string> joined;
  SmallVector<const char *> args = joinRecomputeValue(argc, argv, joined);
  cl::ParseCommandLineOptions(
      static_cast<int>(args.size()), args.data(),
      "Cleave end-to-end driver\n\n"
      "  cleavec build MODEL.mlir --target cpu|cuda -o DIR "
      "[--init-params FILE --seed N] [--gradients]\n"
      "  cleavec train MODEL.mlir --data TOKENS.bin --steps N --out DIR "
      "[--lr X] [--optimizer adamw|sgd] [--resume DIR]\n"
      "  cleavec prepare-text FILE [--tokenizer DIR] -o TOKENS.bin\n"
      "  cleavec export-hf CHECKPOINT_DIR --like HF_DIR -o OUT_DIR\n"
      "  cleavec schedule --mesh pp=P --micro-batches M "
      "[--schedule gpipe|1f1b|interleaved] [--virtual-stages V]\n"
      "  cleavec plan MODEL.mlir --gpus N --cluster NAME [--global-batch B] "
      "[--json] [--explain] [--mesh dp=a,tp=b,pp=c]\n"
      "  cleavec train MODEL.mlir ... --auto --gpus N --cluster NAME\n");
  StringRef command = positional.empty() ? "" : StringRef(positional[0]);
  if (command.empty() ||
      !llvm::is_contained(
          {"build", "train", "plan", "prepare-text", "schedule", "export-hf"},
          command)) {
    error() << (command.empty() ? "missing command"
                                : "unknown command '" + command.str() + "'")
            << "; the command is 'build', 'train', 'plan', 'prepare-text', "
               "'export-hf' or 'schedule' (see --help)\n";
    return 1;
  }
  if (positional.size() != (command == "schedule" ? 1u : 2u)) {
    error() << "'" << command << "' takes "
            << (command == "schedule"       ? "no file"
                : command == "prepare-text" ? "one text file"
                : command == "export-hf"    ? "one checkpoint directory"
                                            : "one model file")
            << "\n";
    return 1;
  }
  if (tokenizerDir.getNumOccurrences() && command != "prepare-text") {
    error() << "--tokenizer is an option of prepare-text\n";
    return 1;
  }
  if (likeDir.getNumOccurrences() != (command == "export-hf")) {
    error() << (command == "export-hf"
                    ? "export-hf needs --like DIR, the Hugging Face model the "
                      "checkpoint was imported from\n"
                    : "--like is an option of export-hf\n");
    return 1;
  }
  if (bucketMegabytes.getNumOccurrences() &&
      !(bucketMegabytes > 0 && bucketMegabytes <= 1e6)) {
    error() << "--bucket-mb must be a positive size up to 1e6 MiB\n";
    return 1;
  }
  if (zeroStage.getNumOccurrences() && (zeroStage < 0 || zeroStage > 3)) {
    error() << "--zero-stage must be 0, 1, 2 or 3, got " << zeroStage << "\n";
    return 1;
  }
  if (tokenBytes.getNumOccurrences() && tokenBytes != 2 && tokenBytes != 4) {
    error() << "--token-bytes must be 2 or 4, got " << tokenBytes << "\n";
    return 1;
  }
  if (command == "schedule")
    return scheduleCommand();
  if (command == "prepare-text")
    return prepareTextTokens(positional[1], outputDir, tokenizerDir,
                             llvm::outs());
  if (command == "export-hf")
    return exportHuggingFace(positional[1], likeDir, outputDir, llvm::outs());
  DialectRegistry registry;
  registry.insert<CleaveDialect, func::FuncDialect, arith::ArithDialect,
                  tensor::TensorDialect>();
  MLIRContext context(registry);
  return command == "train" ? train(context)
         : command == "plan" ? plan(context)
                             : build(context);
}
