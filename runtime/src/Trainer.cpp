//===- Trainer.cpp - The training loop of generated training steps --------===//
//
// A training-step program takes parameters, optimizer state, a batch
// (`tokens`, `targets`) and the step's `lr` and `step`, and returns the loss,
// the gradient norm and the next parameters and state. This loop feeds it:
// batch k comes from the token file as a function of (seed, k) alone, so a run
// resumed from a checkpoint at step k continues exactly as the uninterrupted
// run would have.
//
//===----------------------------------------------------------------------===//

#include "cleave/runtime/Checkpoint.h"
#include "cleave/runtime/Communicator.h"
#include "cleave/runtime/DataLoader.h"
#include "cleave/runtime/Init.h"
#include "cleave/runtime/Portability.h"
#include "cleave/runtime/Program.h"
#include "cleave/runtime/Safetensors.h"
#include "cleave/runtime/Schedule.h"

#include "CommandLine.h"
#include "ProgramSupport.h"
#include "Support.h"
#include "Trace.h"
#include "TrainingState.h"

#include <cerrno>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <map>
#include <memory>
#include <optional>
#include <set>
#include <string>
#include <sys/stat.h>
#include <vector>

namespace cleave::rt {
namespace {

struct TrainOptions {
  std::string dataPath;
  /// --token-bytes: needed for a file without a header only.
  std::optional<TokenWidth> tokenWidth;
  /// -1 until given; 0 writes the initial checkpoint and trains nothing.
  int64_t steps = -1;
  LrSchedule schedule;
  uint64_t dataSeed = 0;
  /// Whether --seed was given: a resumed run then checks it.
  bool dataSeedGiven = false;
  /// --reseed: a resumed run takes --seed instead of the checkpoint's.
  bool reseed = false;
  uint64_t initSeed = 0;
  std::string outDir;
  std::string resumeDir;
  /// --init-from: the parameters to start from (safetensors).
  std::string initFrom;
  int64_t saveEvery = 0;
  /// 0: the count the program records (cleave.micro_batches, or a
  /// pipeline's schedule; otherwise 1).
  int64_t microBatches = 0;
  ReductionOptions reductions;
};

// One source line per printed line.
// clang-format off
const char *const kTrainUsage =
    "usage: %s --data FILE --steps N --out DIR [options]\n"
    "  --data FILE          token file: llm.c's header, then little-endian\n"
    "                       tokens (docs/training.md#token-files)\n"
    "  --token-bytes 2|4    token width of a file without a header (a file\n"
    "                       with one says; this must then agree)\n"
    "  --steps N            train until step N (counted from 1, across resumes);\n"
    "                       0 writes the initial parameters as the checkpoint\n"
    "                       of step 0 and trains nothing\n"
    "  --out DIR            where checkpoints go (DIR/checkpoint.json, step-N/)\n"
    "  --lr X               peak learning rate (1e-3)\n"
    "  --lr-schedule NAME   constant or cosine (constant)\n"
    "  --warmup W           linear warmup steps (0)\n"
    "  --decay-steps D      cosine decay steps after warmup\n"
    "  --min-lr X           learning rate at the end of the decay (0)\n"
    "  --seed N             data order: batch k depends on (N, k) only (0)\n"
    "  --init-seed N        initial parameters (each as its cleave.init says)\n"
    "                       from seed N (0)\n"
    "  --save-every K       also checkpoint every K steps (0: only at the end)\n"
    "  --resume DIR         continue the run checkpointed in DIR (on any mesh);\n"
    "                       a --seed must be the checkpoint's\n"
    "  --reseed             with --resume: continue on --seed's data order\n"
    "  --init-from FILE     start from the parameters in this safetensors file\n"
    "                       (the model's names and shapes; bf16, f16 convert)\n"
    "  --micro-batches M    the program takes 1/M of the batch: run it M times\n"
    "                       per step, averaging gradients (default: the count\n"
    "                       it was built for)\n"
    "  --bucket-mb X        a pipeline's data-parallel gradients are reduced\n"
    "                       once per step in buckets of X MiB (25); collectives\n"
    "                       the program starts early go out in groups of up to\n"
    "                       X MiB\n"
    "  --overlap 0|1        start each bucket as soon as the last micro-batch's\n"
    "                       backward fills it (1), or all where the update\n"
    "                       reads them (0); with 0, collectives the program\n"
    "                       starts ahead of their readers finish at once\n";
// clang-format on

Status parseTrainOptions(int argc, char **argv, TrainOptions &options) {
  options.schedule.lr = 1e-3;
  CLEAVE_RETURN_IF_ERROR(walkCommandLine(
      argc, argv, {"--reseed"},
      [&](const std::string &flag, const std::string &value) -> Status {
        uint64_t count = 0;
        if (flag == "--data") {
          options.dataPath = value;
        } else if (flag == "--token-bytes") {
          CLEAVE_RETURN_IF_ERROR(parseTokenWidth(value, options.tokenWidth));
        } else if (flag == "--steps") {
          CLEAVE_RETURN_IF_ERROR(readCount(flag, value, count, INT64_MAX));
          options.steps = static_cast<int64_t>(count);
        } else if (flag == "--out") {
          options.outDir = value;
        } else if (flag == "--resume") {
          options.resumeDir = value;
        } else if (flag == "--reseed") {
          options.reseed = true;
        } else if (flag == "--init-from") {
          options.initFrom = value;
        } else if (flag == "--lr") {
          CLEAVE_RETURN_IF_ERROR(readNumber(flag, value, options.schedule.lr));
        } else if (flag == "--min-lr") {
          CLEAVE_RETURN_IF_ERROR(
              readNumber(flag, value, options.schedule.minLr));
        } else if (flag == "--lr-schedule") {
          if (value != "constant" && value != "cosine")
            return Status::error(
                "--lr-schedule must be constant or cosine, got '" + value +
                "'");
          options.schedule.kind =
              value == "cosine" ? LrSchedule::Cosine : LrSchedule::Constant;
        } else if (flag == "--warmup") {
          CLEAVE_RETURN_IF_ERROR(readCount(flag, value, count, INT64_MAX));
          options.schedule.warmup = static_cast<int64_t>(count);
        } else if (flag == "--decay-steps") {
          CLEAVE_RETURN_IF_ERROR(readCount(flag, value, count, INT64_MAX));
          options.schedule.decaySteps = static_cast<int64_t>(count);
        } else if (flag == "--seed") {
          CLEAVE_RETURN_IF_ERROR(readCount(flag, value, options.dataSeed));
          options.dataSeedGiven = true;
        } else if (flag == "--init-seed") {
          CLEAVE_RETURN_IF_ERROR(readCount(flag, value, options.initSeed));
        } else if (flag == "--micro-batches") {
          CLEAVE_RETURN_IF_ERROR(readCount(flag, value, count, INT64_MAX));
          if (count == 0)
            return Status::error("--micro-batches must be at least 1");
          options.microBatches = static_cast<int64_t>(count);
        } else if (flag == "--bucket-mb") {
          double megabytes = 0;
          CLEAVE_RETURN_IF_ERROR(readNumber(flag, value, megabytes));
          if (!(megabytes > 0) || megabytes > 1e6)
            return Status::error("--bucket-mb must be a positive size up to "
                                 "1e6 MiB, got '" +
                                 value + "'");
          options.reductions.bucketBytes = megabytes * 1024 * 1024;
          options.reductions.bucketGiven = true;
        } else if (flag == "--overlap") {
          if (value != "0" && value != "1")
            return Status::error("--overlap must be 0 or 1, got '" + value +
                                 "'");
          options.reductions.overlap = value == "1";
          options.reductions.overlapGiven = true;
        } else if (flag == "--save-every") {
          CLEAVE_RETURN_IF_ERROR(readCount(flag, value, count, INT64_MAX));
          options.saveEvery = static_cast<int64_t>(count);
        } else {
          return unknownOption(flag);
        }
        return Status::success();
      }));
  if (options.dataPath.empty())
    return Status::error("--data FILE is required");
  if (options.steps < 0)
    return Status::error("--steps N is required");
  if (options.outDir.empty())
    return Status::error("--out DIR is required (checkpoints go there)");
  if (!options.initFrom.empty() && !options.resumeDir.empty())
    return Status::error("--init-from starts a run and --resume continues "
                         "one: give one of them");
  if (options.reseed && (options.resumeDir.empty() || !options.dataSeedGiven))
    return Status::error("--reseed continues a run (--resume DIR) on a new "
                         "data order (--seed N): give both");
  return validate(options.schedule);
}

/// A gradient step and an update, or a step that updates its own
/// parameters (apply null): one program run per micro-batch, gradients
/// averaged into the update's inputs.
class AccumulatingExecutor final : public StepExecutor {
public:
  AccumulatingExecutor(const Program &step, const Program *apply,
                       Context &context)
      : step(step), apply(apply), context(context) {}

  const Program &getMainProgram() const override { return step; }
  const MeshSpec *getMesh() const override { return step.mesh; }
  uint64_t getArenaBytes() const override {
    return std::max(step.arenaBytes, apply ? apply->arenaBytes : 0);
  }
  // One rank speaks for the job: the one at the mesh's origin.
  bool isLogger() const override {
    Communicator *communicator = context.getCommunicator();
    return !communicator || communicator->getRank() == 0;
  }

  int64_t getBuiltMicroBatches() const override { return step.microBatches; }

  std::set<std::string> getModelParameters() const override {
    std::set<std::string> names;
    TrainingState::addParameters(step, names);
    if (apply)
      TrainingState::addParameters(*apply, names);
    return names;
  }

  Status bind(TrainingState &state, int64_t microBatches,
              const ReductionOptions &reductions) override {
    CLEAVE_RETURN_IF_ERROR(applyReductionOptions(
        reductions, false,
        step.startsCollectives || (apply && apply->startsCollectives),
        context.getCommunicator()));
    if (apply && apply->mesh != step.mesh)
      return Status::error("the gradient step and the update disagree on "
                           "the mesh");
    CLEAVE_RETURN_IF_ERROR(state.bind(step, stepArguments));
    if (apply)
      CLEAVE_RETURN_IF_ERROR(state.bind(*apply, applyArguments));
    lossIndex = findResult(step, OutputRole::Loss);
    normIndex = findResult(apply ? *apply : step, OutputRole::GradNorm);
    if (lossIndex < 0)
      return Status::error(std::string("program '") + step.name +
                           "' returns no loss (cleave.output_role loss)");
    if (microBatches > 1 && !apply)
      return Status::error("--micro-batches needs a program built with "
                           "cleavec train --micro-batches");

    if (apply && microBatches == 1)
      return Status::error("this program accumulates gradients over "
                           "micro-batches: --micro-batches must be more than "
                           "1 (it was built for " +
                           std::to_string(step.microBatches) + ")");
    return Status::success();
  }

  const Program &getTokensProgram() const override { return step; }

  Status runStep(TrainingState &state, int64_t microBatches,
                 const BatchLoader &loadBatch, uint8_t *arena, double &loss,
                 double &norm) override {
    TraceScope traced("step", "step");
    CLEAVE_RETURN_IF_ERROR(runMicroBatches(state, microBatches, loadBatch,
                                           arena, loss, norm));
    traced.finish();
    if (Trace *trace = Trace::get())
      CLEAVE_RETURN_IF_ERROR(trace->write());
    return Status::success();
  }

private:
  Status runMicroBatches(TrainingState &state, int64_t microBatches,
                         const BatchLoader &loadBatch, uint8_t *arena,
                         double &loss, double &norm) {
    loss = 0;
    norm = std::nan("");
    std::set<std::string> accumulated;
    for (int64_t j = 0; j < microBatches; ++j) {
      CLEAVE_RETURN_IF_ERROR(loadBatch(j));
      TraceScope traced("compute", "micro-batch " + std::to_string(j));
      CLEAVE_RETURN_IF_ERROR(
          runProgram(context, step, stepArguments, stepResults, arena));
      double microLoss = 0;
      CLEAVE_RETURN_IF_ERROR(
          readResult(context, step, stepResults, lossIndex, microLoss));
      loss += microLoss / static_cast<double>(microBatches);
      if (apply)
        CLEAVE_RETURN_IF_ERROR(accumulateGradients(
            context, state, step, stepResults, microBatches, accumulated));
    }
    if (!apply) {
      if (normIndex >= 0)
        CLEAVE_RETURN_IF_ERROR(
            readResult(context, step, stepResults, normIndex, norm));
      return applyUpdates(context, step, stepArguments, stepResults);
    }
    TraceScope traced("compute", "update");
    CLEAVE_RETURN_IF_ERROR(
        runProgram(context, *apply, applyArguments, applyResults, arena));
    if (normIndex >= 0)
      CLEAVE_RETURN_IF_ERROR(
          readResult(context, *apply, applyResults, normIndex, norm));
    return applyUpdates(context, *apply, applyArguments, applyResults);
  }

  const Program &step;
  const Program *apply;
  Context &context;
  std::vector<void *> stepArguments, applyArguments, stepResults, applyResults;
  int lossIndex = -1, normIndex = -1;
};

Status train(StepExecutor &executor, TrainOptions options,
             Context &context, std::unique_ptr<Communicator> &communicator) {
  CLEAVE_RETURN_IF_ERROR(context.initialize());
  std::unique_ptr<Profiler> profiler;
  CLEAVE_RETURN_IF_ERROR(Profiler::createFromEnvironment(context, profiler));
  // A trace alone times the ops of the one step it records: the others run
  // unprofiled, at the cost of a pointer test per op.
  bool timesTracedStepOnly = profiler && !profiler->printsTable;
  ProfilerInstallation installed(context, timesTracedStepOnly ? nullptr
                                                              : profiler.get());
  const Program &main = executor.getMainProgram();
  if (const MeshSpec *mesh = executor.getMesh()) {
    CLEAVE_RETURN_IF_ERROR(createCommunicator(context, *mesh, communicator));
    context.setCommunicator(communicator.get());
  }
  if (::mkdir(options.outDir.c_str(), 0755) != 0 && errno != EEXIST)
    return Status::error("cannot create '" + options.outDir +
                         "': " + std::strerror(errno));
  // One job per output directory: another's checkpoints would interleave
  // with this one's. The rank that writes the index holds the lock.
  OutputDirectoryLock lock;
  if (!communicator || communicator->getRank() == 0) {
    // Under cleavec, which holds the lock for the job it supervises.
    const char *owner = std::getenv(kOutputLockOwnerVariable);
    CLEAVE_RETURN_IF_ERROR(lock.acquire(options.outDir, owner ? owner : ""));
  }
  TrainingState state(context, communicator.get());
  if (options.microBatches == 0)
    options.microBatches = executor.getBuiltMicroBatches();
  CLEAVE_RETURN_IF_ERROR(
      executor.bind(state, options.microBatches, options.reductions));
  bool isLogger = executor.isLogger();
  const char *learningRateName = state.findInput(InputRole::LearningRate);
  const char *stepNumberName = state.findInput(InputRole::StepNumber);
  if (!learningRateName)
    return Status::error(std::string("program '") + main.name +
                         "' is not a training step: it takes no learning "
                         "rate (build it with cleavec train)");

  // Every rank draws the same global micro-batch and keeps its block (dp
  // rank r: rows r*b/dp onwards), so the numbers do not depend on the mesh.
  std::vector<int64_t> tokensShape;
  CLEAVE_RETURN_IF_ERROR(getTokensShape(executor.getTokensProgram(),
                                        state.getMesh(), state.getCoordinates(),
                                        tokensShape));
  int64_t micro = tokensShape[0], seq = tokensShape[1];
  int64_t batch = micro * options.microBatches;
  TokenFile data;
  CLEAVE_RETURN_IF_ERROR(TokenFile::open(options.dataPath, options.tokenWidth, data));
  // Ranks whose stages hold no embedding table leave the check to those
  // that do.
  if (const char *table = getTokenTable(executor.getTokensProgram());
      table && state.find(table))
    CLEAVE_RETURN_IF_ERROR(
        data.checkVocabulary(state.getGlobalShape(table)[0]));

  int64_t first = 1;
  uint64_t dataSeed = options.dataSeed;
  if (!options.resumeDir.empty()) {
    std::map<std::string, std::string> metadata;
    CLEAVE_RETURN_IF_ERROR(state.load(options.resumeDir, metadata));
    // Every rank has checked its files before any says it resumed.
    if (communicator)
      CLEAVE_RETURN_IF_ERROR(communicator->barrier("the checkpoint's load"));
    std::optional<uint64_t> stepNumber = parseCount(metadata["step"]);
    std::optional<uint64_t> seed = parseCount(metadata["data_seed"]);
    if (!stepNumber || !seed)
      return Status::error("'" + getCheckpointIndexPath(options.resumeDir) +
                           "' has no valid step and data_seed metadata");
    first = static_cast<int64_t>(*stepNumber) + 1;
    // Another seed would continue on other batches than the run's: only
    // on purpose.
    if (options.dataSeedGiven && !options.reseed)
      CLEAVE_RETURN_IF_ERROR(
          checkResumedSeed(options.resumeDir, *seed, options.dataSeed));
    dataSeed = options.reseed ? options.dataSeed : *seed;
    if (isLogger)
      std::printf("resumed from %s at step %lld\n",
                  getCheckpointIndexPath(options.resumeDir).c_str(),
                  static_cast<long long>(*stepNumber));
  } else {
    // The optimizer's state starts as always; the parameters from the file.
    CLEAVE_RETURN_IF_ERROR(state.initialize(options.initSeed));
    if (!options.initFrom.empty()) {
      SafetensorsReader reader;
      CLEAVE_RETURN_IF_ERROR(SafetensorsReader::open(options.initFrom, reader));
      CLEAVE_RETURN_IF_ERROR(
          state.readParameters(reader, executor.getModelParameters()));
    }
  }
  auto save = [&](int64_t stepNumber) -> Status {
    std::map<std::string, std::string> metadata = {
        {"step", std::to_string(stepNumber)},
        {"data_seed", std::to_string(dataSeed)},
        {"program", main.name}};
    CLEAVE_RETURN_IF_ERROR(state.save(options.outDir, stepNumber, metadata));
    if (isLogger)
      std::printf("checkpoint %s written at step %lld\n",
                  getCheckpointIndexPath(options.outDir).c_str(),
                  static_cast<long long>(stepNumber));
    return Status::success();
  };
  // --steps 0: the initial parameters are the whole result.
  if (options.steps == 0 && options.resumeDir.empty())
    return save(0);
  if (first > options.steps) {
    if (isLogger)
      std::printf("nothing to do: the checkpoint is already at step %lld\n",
                static_cast<long long>(first - 1));
    return Status::success();
  }

  uint8_t *arena = nullptr;
  CLEAVE_RETURN_IF_ERROR(context.reserveArena(executor.getArenaBytes(), &arena));
  std::vector<int32_t> tokens(micro * seq), targets(micro * seq);
  auto setScalar = [&](const char *name, double value) -> Status {
    const TensorSpec *spec = name ? state.find(name) : nullptr;
    if (!spec)
      return Status::success();
    std::vector<uint8_t> bytes = getScalarBytes(spec->dtype, value);
    return state.set(name, bytes.data(), bytes.size());
  };

  // What the input buffers hold: a pipeline asks for a micro-batch before
  // each of its passes, often the one already there, and a rank whose
  // stages take neither input needs none.
  const char *tokensName = state.findInput(InputRole::Tokens);
  const char *targetsName = state.findInput(InputRole::Targets);
  bool takesBatch = tokensName || targetsName;
  int64_t loadedStep = 0, loadedMicroBatch = -1;
  auto loadBatch = [&](int64_t stepNumber, int64_t j) -> Status {
    if (!takesBatch || (stepNumber == loadedStep && j == loadedMicroBatch))
      return Status::success();
    CLEAVE_RETURN_IF_ERROR(getBatch(data, dataSeed,
                                    static_cast<uint64_t>(stepNumber),
                                    j * micro, micro, seq, tokens.data(),
                                    targets.data()));
    if (tokensName)
      CLEAVE_RETURN_IF_ERROR(state.setBlockOf(tokensName, tokens.data()));
    if (targetsName)
      CLEAVE_RETURN_IF_ERROR(state.setBlockOf(targetsName, targets.data()));
    loadedStep = stepNumber;
    loadedMicroBatch = j;
    return Status::success();
  };

  const char *traceDirectory = std::getenv("CLEAVE_TRACE");
  for (int64_t stepNumber = first; stepNumber <= options.steps; ++stepNumber) {
    // Without a pipeline (whose executor traces every step), a trace is of
    // the last step: the others warm up, and are the same.
    if (traceDirectory && *traceDirectory && stepNumber == options.steps &&
        !Trace::get()) {
      Trace::start(traceDirectory, communicator ? communicator->getRank() : 0,
                   /*ops=*/true);
      if (timesTracedStepOnly)
        context.setProfiler(profiler.get());
    }
    auto start = std::chrono::steady_clock::now();
    double lr = getLearningRate(options.schedule, stepNumber);
    CLEAVE_RETURN_IF_ERROR(setScalar(learningRateName, lr));
    CLEAVE_RETURN_IF_ERROR(
        setScalar(stepNumberName, static_cast<double>(stepNumber)));
    double loss = 0, norm = std::nan("");
    if (communicator)
      communicator->resetCommunicatedBytes();
    CLEAVE_RETURN_IF_ERROR(executor.runStep(
        state, options.microBatches,
        [&](int64_t j) { return loadBatch(stepNumber, j); }, arena, loss,
        norm));
    CLEAVE_RETURN_IF_ERROR(context.synchronize("the parameter update"));
    std::chrono::duration<double> elapsed =
        std::chrono::steady_clock::now() - start;
    if (isLogger) {
      std::printf("step %lld loss %.6f grad_norm %.4f lr %.4e tokens/s %.0f "
                  "step_time %.1f ms",
                  static_cast<long long>(stepNumber), loss, norm, lr,
                  static_cast<double>(batch * seq) / elapsed.count(),
                  elapsed.count() * 1e3);
      // Bytes this rank sent, as cleave-print-cost predicts them.
      if (communicator)
        std::printf(" comm_bytes %.0f", communicator->getCommunicatedBytes());
      std::printf(" peak_memory %.2f MiB",
                  static_cast<double>(context.getPeakAllocatedBytes()) /
                      (1 << 20));
      std::printf("\n");
      std::fflush(stdout);
    }
    if (profiler && stepNumber == first && stepNumber < options.steps)
      profiler->reset();
    if (!std::isfinite(loss))
      return Status::error("the loss is not finite at step " +
                           std::to_string(stepNumber) +
                           "; stopping without a checkpoint of it "
                           "(CLEAVE_CHECK_FINITE=1 names the first op that "
                           "produced it)");
    if ((options.saveEvery > 0 && stepNumber % options.saveEvery == 0) ||
        stepNumber == options.steps)
      CLEAVE_RETURN_IF_ERROR(save(stepNumber));
  }
  if (profiler && profiler->printsTable && isLogger)
    profiler->print(stdout);
  return Status::success();
}

} // namespace

int runTrainingMain(const Program &step, const Program *apply, int argc,
                    char **argv) {
  stopWithLauncher();
  TrainOptions options;
  Status parsed = parseTrainOptions(argc, argv, options);
  const char *self = argc > 0 ? argv[0] : step.name;
  // The communicator goes before the context it uses.
  Context context;
  std::unique_ptr<Communicator> communicator;
  AccumulatingExecutor executor(step, apply, context);
  return finishMain(self, kTrainUsage, parsed, [&] {
    Status status = train(executor, options, context, communicator);
    abortPeersOnError(self, status, communicator.get());
    return status;
  });
}

int runPipelineTrainingMain(const PipelineProgram &pipeline, int argc,
                            char **argv) {
  stopWithLauncher();
  TrainOptions options;
  Status parsed = parseTrainOptions(argc, argv, options);
  const char *self = argc > 0 ? argv[0] : pipeline.forward[0]->name;
  Context context;
  std::unique_ptr<Communicator> communicator;
  std::unique_ptr<StepExecutor> executor =
      createPipelineExecutor(pipeline, context);
  return finishMain(self, kTrainUsage, parsed, [&] {
    Status status = train(*executor, options, context, communicator);
    abortPeersOnError(self, status, communicator.get());
    return status;
  });
}

} // namespace cleave::rt
