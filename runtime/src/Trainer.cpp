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

#include "ProgramSupport.h"
#include "Support.h"

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
#include <string>
#include <sys/stat.h>
#include <vector>

namespace cleave::rt {
namespace {

struct TrainOptions {
  std::string dataPath;
  TokenWidth tokenWidth = TokenWidth::U16;
  int64_t steps = 0;
  LrSchedule schedule;
  uint64_t dataSeed = 0;
  uint64_t initSeed = 0;
  std::string outDir;
  std::string resumeDir;
  int64_t saveEvery = 0;
  int64_t microBatches = 1;
};

const char *const kTrainUsage =
    "usage: %s --data FILE --steps N --out DIR [options]\n"
    "  --data FILE          token file: raw little-endian uint16 tokens\n"
    "  --token-bytes 2|4    token width in the file (2)\n"
    "  --steps N            train until step N (counted from 1, across resumes)\n"
    "  --out DIR            where checkpoints go (DIR/checkpoint.json, step-N/)\n"
    "  --lr X               peak learning rate (1e-3)\n"
    "  --lr-schedule NAME   constant or cosine (constant)\n"
    "  --warmup W           linear warmup steps (0)\n"
    "  --decay-steps D      cosine decay steps after warmup\n"
    "  --min-lr X           learning rate at the end of the decay (0)\n"
    "  --seed N             data order: batch k depends on (N, k) only (0)\n"
    "  --init-seed N        GPT-2 style initial parameters from seed N (0)\n"
    "  --save-every K       also checkpoint every K steps (0: only at the end)\n"
    "  --resume DIR         continue the run checkpointed in DIR (on any mesh)\n"
    "  --micro-batches M    the program takes 1/M of the batch: run it M times\n"
    "                       per step, averaging gradients (built so by cleavec)\n";

Status parseTrainOptions(int argc, char **argv, TrainOptions &options) {
  options.schedule.lr = 1e-3;
  for (int i = 1; i < argc; ++i) {
    std::string flag = argv[i];
    if (flag == "--help" || flag == "-h")
      return Status::error("");
    if (i + 1 >= argc)
      return Status::error("missing value after '" + flag + "'");
    std::string value = argv[++i];
    auto needCount = [&](uint64_t &out) -> Status {
      std::optional<uint64_t> count = parseCount(value);
      if (!count)
        return Status::error(flag + " needs a non-negative integer, got '" +
                             value + "'");
      out = *count;
      return Status::success();
    };
    auto needNumber = [&](double &out) -> Status {
      std::optional<double> number = parseNumber(value);
      if (!number)
        return Status::error(flag + " needs a number, got '" + value + "'");
      out = *number;
      return Status::success();
    };
    uint64_t count = 0;
    if (flag == "--data") {
      options.dataPath = value;
    } else if (flag == "--token-bytes") {
      if (value != "2" && value != "4")
        return Status::error("--token-bytes must be 2 or 4, got '" + value + "'");
      options.tokenWidth = value == "2" ? TokenWidth::U16 : TokenWidth::U32;
    } else if (flag == "--steps") {
      CLEAVE_RETURN_IF_ERROR(needCount(count));
      options.steps = static_cast<int64_t>(count);
    } else if (flag == "--out") {
      options.outDir = value;
    } else if (flag == "--resume") {
      options.resumeDir = value;
    } else if (flag == "--lr") {
      CLEAVE_RETURN_IF_ERROR(needNumber(options.schedule.lr));
    } else if (flag == "--min-lr") {
      CLEAVE_RETURN_IF_ERROR(needNumber(options.schedule.minLr));
    } else if (flag == "--lr-schedule") {
      if (value != "constant" && value != "cosine")
        return Status::error("--lr-schedule must be constant or cosine, got '" +
                             value + "'");
      options.schedule.kind =
          value == "cosine" ? LrSchedule::Cosine : LrSchedule::Constant;
    } else if (flag == "--warmup") {
      CLEAVE_RETURN_IF_ERROR(needCount(count));
      options.schedule.warmup = static_cast<int64_t>(count);
    } else if (flag == "--decay-steps") {
      CLEAVE_RETURN_IF_ERROR(needCount(count));
      options.schedule.decaySteps = static_cast<int64_t>(count);
    } else if (flag == "--seed") {
      CLEAVE_RETURN_IF_ERROR(needCount(options.dataSeed));
    } else if (flag == "--init-seed") {
      CLEAVE_RETURN_IF_ERROR(needCount(options.initSeed));
    } else if (flag == "--micro-batches") {
      CLEAVE_RETURN_IF_ERROR(needCount(count));
      if (count == 0)
        return Status::error("--micro-batches must be at least 1");
      options.microBatches = static_cast<int64_t>(count);
    } else if (flag == "--save-every") {
      CLEAVE_RETURN_IF_ERROR(needCount(count));
      options.saveEvery = static_cast<int64_t>(count);
    } else {
      return Status::error("unknown option '" + flag + "'");
    }
  }
  if (options.dataPath.empty())
    return Status::error("--data FILE is required");
  if (options.steps <= 0)
    return Status::error("--steps N (at least 1) is required");
  if (options.outDir.empty())
    return Status::error("--out DIR is required (checkpoints go there)");
  return validate(options.schedule);
}

/// A float scalar of `dtype` as bytes.
std::vector<uint8_t> getScalarBytes(DType dtype, double value) {
  std::vector<uint8_t> bytes(getDTypeSize(dtype));
  if (dtype == DType::F64) {
    std::memcpy(bytes.data(), &value, sizeof(value));
  } else if (dtype == DType::F32) {
    float narrow = static_cast<float>(value);
    std::memcpy(bytes.data(), &narrow, sizeof(narrow));
  } else if (dtype == DType::BF16) {
    ::cleave::bf16 narrow = ::cleave::convert<::cleave::bf16>(value);
    std::memcpy(bytes.data(), &narrow, sizeof(narrow));
  } else if (dtype == DType::F16) {
    ::cleave::f16 narrow = ::cleave::convert<::cleave::f16>(value);
    std::memcpy(bytes.data(), &narrow, sizeof(narrow));
  }
  return bytes;
}

/// Device buffers by tensor name, shared by the programs of one run: the
/// gradient step and the update read the same parameters, and the update
/// reads the gradients the steps accumulate. In a partitioned program each
/// buffer holds this rank's block of the global tensor.
class TrainingState {
public:
  TrainingState(Context &context, Communicator *communicator)
      : context(context), communicator(communicator) {
    if (communicator) {
      mesh = communicator->getMesh();
      coordinates = communicator->getCoordinates();
      rank = communicator->getRank();
    }
  }

  /// Allocates what `program` takes and returns its argument pointers.
  Status bind(const Program &program, std::vector<void *> &pointers) {
    pointers.clear();
    for (int i = 0; i < program.numArguments; ++i) {
      const ArgumentSpec &argument = program.arguments[i];
      Tensor &tensor = tensors[argument.tensor.name];
      if (!tensor.buffer) {
        tensor.spec = argument.tensor;
        tensor.kind = argument.kind;
        tensor.split = argument.split ? argument.split : "";
        CLEAVE_RETURN_IF_ERROR(getBlock(mesh, argument.split,
                                        getDims(argument.tensor.shape),
                                        coordinates, tensor.block));
        tensor.buffer = std::make_unique<DeviceBuffer>(context);
        CLEAVE_RETURN_IF_ERROR(tensor.buffer->allocate(
            getByteSize(argument.tensor), argument.tensor.name));
        order.push_back(argument.tensor.name);
      } else if (tensor.spec.dtype != argument.tensor.dtype ||
                 getDims(tensor.spec.shape) != getDims(argument.tensor.shape) ||
                 tensor.split != (argument.split ? argument.split : "")) {
        return Status::error(std::string("programs disagree on the type of '") +
                             argument.tensor.name + "'");
      }
      pointers.push_back(tensor.buffer->get());
    }
    return Status::success();
  }

  /// Parameters GPT-2 style from `seed`, optimizer state zero. Values are a
  /// function of (seed, name, global index), so every mesh starts from the
  /// same model.
  Status initialize(uint64_t seed) {
    std::vector<std::string> names;
    for (const std::string &name : order)
      if (tensors[name].kind == ArgumentKind::Param)
        names.push_back(name);
    int64_t layers = inferNumLayers(names);
    std::vector<uint8_t> global, host;
    for (const std::string &name : order) {
      Tensor &tensor = tensors[name];
      if (tensor.kind == ArgumentKind::Input)
        continue;
      size_t elementBytes = getDTypeSize(tensor.spec.dtype);
      global.assign(*getNumElements(tensor.block.globalShape) * elementBytes, 0);
      InitRule rule = tensor.kind == ArgumentKind::Param
                          ? getGpt2InitRule(name, layers)
                          : InitRule{InitRule::Kind::Zeros, 0.0};
      CLEAVE_RETURN_IF_ERROR(fillInitialValues(rule, seed, name,
                                               tensor.spec.dtype,
                                               global.size() / elementBytes,
                                               global.data()));
      host.assign(getByteSize(tensor.spec), 0);
      copyOverlap(elementBytes,
                  Box{std::vector<int64_t>(tensor.block.shape.size(), 0),
                      tensor.block.globalShape},
                  global.data(), getBox(tensor), host.data());
      CLEAVE_RETURN_IF_ERROR(
          context.copyToDevice(tensor.buffer->get(), host.data(), host.size()));
    }
    return Status::success();
  }

  /// This rank's blocks of the parameters and state from the checkpoint in
  /// `dir`, whatever mesh saved it; returns its metadata.
  Status load(const std::string &dir,
              std::map<std::string, std::string> &metadata) {
    CheckpointReader reader;
    CLEAVE_RETURN_IF_ERROR(CheckpointReader::open(dir, reader));
    std::vector<uint8_t> host;
    for (const std::string &name : order) {
      Tensor &tensor = tensors[name];
      if (tensor.kind == ArgumentKind::Input)
        continue;
      host.resize(getByteSize(tensor.spec));
      CLEAVE_RETURN_IF_ERROR(reader.read(name, tensor.spec.dtype,
                                         tensor.block.globalShape,
                                         getBox(tensor), host.data()));
      CLEAVE_RETURN_IF_ERROR(
          context.copyToDevice(tensor.buffer->get(), host.data(), host.size()));
    }
    metadata = reader.getIndex().metadata;
    return Status::success();
  }

  /// Writes this rank's blocks of the parameters and state; then rank 0
  /// writes the index that makes the checkpoint of `step` exist.
  Status save(const std::string &dir, int64_t step,
              const std::map<std::string, std::string> &metadata) {
    namespace fs = std::filesystem;
    std::string stepDir = chooseCheckpointStepDir(dir, step);
    std::error_code error;
    fs::create_directories(dir + "/" + stepDir, error);
    if (error)
      return Status::error("cannot create a checkpoint in '" + dir +
                           "': " + error.message());
    SafetensorsWriter writer;
    std::vector<std::vector<uint8_t>> hosts;
    hosts.reserve(order.size());
    for (const std::string &name : order) {
      Tensor &tensor = tensors[name];
      if (tensor.kind == ArgumentKind::Input || !tensor.block.isWriter)
        continue;
      hosts.emplace_back(getByteSize(tensor.spec));
      CLEAVE_RETURN_IF_ERROR(context.copyToHost(
          hosts.back().data(), tensor.buffer->get(), hosts.back().size()));
      CLEAVE_RETURN_IF_ERROR(writer.add(name, tensor.spec.dtype,
                                        getDims(tensor.spec.shape),
                                        hosts.back().data()));
    }
    CLEAVE_RETURN_IF_ERROR(
        writer.write(dir + "/" + getCheckpointShardName(stepDir, rank)));
    if (communicator)
      CLEAVE_RETURN_IF_ERROR(communicator->barrier("the checkpoint's pieces"));
    if (rank == 0) {
      CheckpointIndex index;
      index.mesh = mesh;
      index.metadata = metadata;
      for (const std::string &name : order) {
        const Tensor &tensor = tensors[name];
        if (tensor.kind == ArgumentKind::Input)
          continue;
        CheckpointTensor &entry = index.tensors[name];
        entry.dtype = tensor.spec.dtype;
        entry.shape = tensor.block.globalShape;
        for (int64_t other = 0; other < mesh.getNumDevices(); ++other) {
          Block block;
          CLEAVE_RETURN_IF_ERROR(getBlock(
              mesh, tensor.split.c_str(), getDims(tensor.spec.shape),
              mesh.getCoordinates(other), block));
          if (block.isWriter)
            entry.pieces.push_back(
                {getCheckpointShardName(stepDir, static_cast<int>(other)),
                 Box{block.offsets, block.shape}});
        }
      }
      CLEAVE_RETURN_IF_ERROR(writeCheckpointIndex(dir, index));
    }
    if (communicator)
      CLEAVE_RETURN_IF_ERROR(communicator->barrier("the checkpoint index"));
    return rank == 0 ? removeOldCheckpointSteps(dir, stepDir)
                     : Status::success();
  }

  /// The input `name`, or null when no program takes it.
  const TensorSpec *find(const std::string &name) {
    auto it = tensors.find(name);
    return it == tensors.end() ? nullptr : &it->second.spec;
  }
  /// The global shape of the tensor `name`, which some program takes.
  const std::vector<int64_t> &getGlobalShape(const std::string &name) {
    return tensors.at(name).block.globalShape;
  }
  void *getPointer(const std::string &name) {
    return tensors.at(name).buffer->get();
  }
  Status set(const std::string &name, const void *data, size_t bytes) {
    if (!find(name))
      return Status::success();
    return context.copyToDevice(getPointer(name), data, bytes);
  }
  /// Sets input `name` to this rank's block of `global`, a row-major tensor
  /// of its global shape.
  Status setBlockOf(const std::string &name, const void *global) {
    if (!find(name))
      return Status::success();
    Tensor &tensor = tensors.at(name);
    size_t elementBytes = getDTypeSize(tensor.spec.dtype);
    std::vector<uint8_t> host(getByteSize(tensor.spec));
    copyOverlap(elementBytes,
                Box{std::vector<int64_t>(tensor.block.shape.size(), 0),
                    tensor.block.globalShape},
                global, getBox(tensor), host.data());
    return context.copyToDevice(getPointer(name), host.data(), host.size());
  }

private:
  struct Tensor {
    TensorSpec spec{};
    ArgumentKind kind = ArgumentKind::Input;
    std::string split;
    Block block;
    std::unique_ptr<DeviceBuffer> buffer;
  };
  static Box getBox(const Tensor &tensor) {
    return Box{tensor.block.offsets, tensor.block.shape};
  }

  Context &context;
  Communicator *communicator;
  Mesh mesh;
  std::vector<int64_t> coordinates;
  int rank = 0;
  std::map<std::string, Tensor> tensors;
  std::vector<std::string> order;
};

/// Runs `program` once and checks for index errors.
Status runOnce(Context &context, const Program &program,
               const std::vector<void *> &arguments,
               std::vector<void *> &results, uint8_t *arena) {
  results.assign(program.numResults, nullptr);
  CLEAVE_RETURN_IF_ERROR(
      program.entry(context, arguments.data(), results.data(), arena));
  if (Communicator *communicator = context.getCommunicator())
    CLEAVE_RETURN_IF_ERROR(communicator->drain(program.name));
  CLEAVE_RETURN_IF_ERROR(context.synchronize(program.name));
  int32_t site = 0;
  CLEAVE_RETURN_IF_ERROR(context.takeIndexError(&site));
  if (site > 0 && site <= program.numIndexSites)
    return Status::error(std::string(program.indexSites[site - 1]) +
                         ": index out of range");
  return Status::success();
}

/// The index of the result named `name`, or -1.
int findResult(const Program &program, const char *name) {
  for (int i = 0; i < program.numResults; ++i)
    if (std::string(program.results[i].tensor.name) == name)
      return i;
  return -1;
}

/// Reads scalar result `index` as a double.
Status readResult(Context &context, const Program &program,
                  const std::vector<void *> &results, int index,
                  double &value) {
  const TensorSpec &spec = program.results[index].tensor;
  std::vector<uint8_t> bytes(getByteSize(spec));
  CLEAVE_RETURN_IF_ERROR(context.copyToHost(bytes.data(), results[index], bytes.size()));
  value = readScalar(spec.dtype, bytes.data());
  return Status::success();
}

/// Copies each result marked `updates` into the argument it updates.
Status applyUpdates(Context &context, const Program &program,
                    const std::vector<void *> &arguments,
                    const std::vector<void *> &results) {
  for (int i = 0; i < program.numResults; ++i)
    if (int target = program.results[i].updates; target >= 0)
      CLEAVE_RETURN_IF_ERROR(context.copyOnDevice(
          arguments[target], results[i], getByteSize(program.results[i].tensor)));
  return context.synchronize("the parameter update");
}

Status train(const Program &step, const Program *apply,
             const TrainOptions &options, Context &context,
             std::unique_ptr<Communicator> &communicator) {
  CLEAVE_RETURN_IF_ERROR(context.initialize());
  if (apply && apply->mesh != step.mesh)
    return Status::error("the gradient step and the update disagree on the "
                         "mesh");
  if (step.mesh) {
    CLEAVE_RETURN_IF_ERROR(createCommunicator(context, *step.mesh, communicator));
    context.setCommunicator(communicator.get());
  }
  // One rank speaks for the job: the one at the mesh's origin.
  bool isLogger = !communicator || communicator->getRank() == 0;
  TrainingState state(context, communicator.get());
  std::vector<void *> stepArguments, applyArguments;
  CLEAVE_RETURN_IF_ERROR(state.bind(step, stepArguments));
  if (apply)
    CLEAVE_RETURN_IF_ERROR(state.bind(*apply, applyArguments));
  const Program &update = apply ? *apply : step;
  for (const char *name : {"tokens", "targets", "lr"}) {
    if (!state.find(name))
      return Status::error(std::string("program '") + step.name +
                           "' is not a training step: it has no input '" +
                           name + "' (build it with cleavec train)");
  }
  for (const char *name : {"tokens", "targets"}) {
    const TensorSpec &spec = *state.find(name);
    if (spec.dtype != DType::I32 || spec.shape.rank != 2)
      return Status::error(std::string("input '") + name +
                           "' must be i32 [batch, seq]");
  }
  int lossIndex = findResult(step, "loss");
  int normIndex = findResult(update, "grad_norm");
  if (lossIndex < 0)
    return Status::error(std::string("program '") + step.name +
                         "' returns no 'loss'");
  if (options.microBatches > 1 && !apply)
    return Status::error("--micro-batches needs a program built with "
                         "cleavec train --micro-batches");
  if (apply && options.microBatches == 1)
    return Status::error("this program accumulates gradients over "
                         "micro-batches: pass --micro-batches M as given to "
                         "cleavec train");

  // Every rank draws the same global micro-batch and keeps its block (dp
  // rank r: rows r*b/dp onwards), so the numbers do not depend on the mesh.
  const std::vector<int64_t> &tokensShape = state.getGlobalShape("tokens");
  if (state.getGlobalShape("targets") != tokensShape)
    return Status::error("inputs 'tokens' and 'targets' differ in shape");
  int64_t micro = tokensShape[0], seq = tokensShape[1];
  int64_t batch = micro * options.microBatches;
  TokenFile data;
  CLEAVE_RETURN_IF_ERROR(TokenFile::open(options.dataPath, options.tokenWidth, data));
  if (state.find("embed.tokens"))
    CLEAVE_RETURN_IF_ERROR(
        data.checkVocabulary(state.getGlobalShape("embed.tokens")[0]));

  int64_t first = 1;
  uint64_t dataSeed = options.dataSeed;
  if (!options.resumeDir.empty()) {
    std::map<std::string, std::string> metadata;
    CLEAVE_RETURN_IF_ERROR(state.load(options.resumeDir, metadata));
    std::optional<uint64_t> stepNumber = parseCount(metadata["step"]);
    std::optional<uint64_t> seed = parseCount(metadata["data_seed"]);
    if (!stepNumber || !seed)
      return Status::error("'" + getCheckpointIndexPath(options.resumeDir) +
                           "' has no valid step and data_seed metadata");
    first = static_cast<int64_t>(*stepNumber) + 1;
    dataSeed = *seed;
    if (isLogger)
      std::printf("resumed from %s at step %lld\n",
                  getCheckpointIndexPath(options.resumeDir).c_str(),
                  static_cast<long long>(*stepNumber));
  } else {
    CLEAVE_RETURN_IF_ERROR(state.initialize(options.initSeed));
  }
  if (first > options.steps) {
    if (isLogger)
      std::printf("nothing to do: the checkpoint is already at step %lld\n",
                static_cast<long long>(first - 1));
    return Status::success();
  }
  if (::mkdir(options.outDir.c_str(), 0755) != 0 && errno != EEXIST)
    return Status::error("cannot create '" + options.outDir +
                         "': " + std::strerror(errno));

  uint8_t *arena = nullptr;
  CLEAVE_RETURN_IF_ERROR(context.reserveArena(
      std::max(step.arenaBytes, apply ? apply->arenaBytes : 0), &arena));
  std::vector<void *> stepResults, applyResults;
  std::vector<int32_t> tokens(micro * seq), targets(micro * seq);
  auto save = [&](int64_t stepNumber) -> Status {
    std::map<std::string, std::string> metadata = {
        {"step", std::to_string(stepNumber)},
        {"data_seed", std::to_string(dataSeed)},
        {"program", step.name}};
    CLEAVE_RETURN_IF_ERROR(state.save(options.outDir, stepNumber, metadata));
    if (isLogger)
      std::printf("checkpoint %s written at step %lld\n",
                  getCheckpointIndexPath(options.outDir).c_str(),
                  static_cast<long long>(stepNumber));
    return Status::success();
  };
  auto setScalar = [&](const char *name, double value) -> Status {
    const TensorSpec *spec = state.find(name);
    if (!spec)
      return Status::success();
    std::vector<uint8_t> bytes = getScalarBytes(spec->dtype, value);
    return state.set(name, bytes.data(), bytes.size());
  };

  for (int64_t stepNumber = first; stepNumber <= options.steps; ++stepNumber) {
    auto start = std::chrono::steady_clock::now();
    double lr = getLearningRate(options.schedule, stepNumber);
    CLEAVE_RETURN_IF_ERROR(setScalar("lr", lr));
    CLEAVE_RETURN_IF_ERROR(setScalar("step", static_cast<double>(stepNumber)));
    double loss = 0, norm = std::nan("");
    if (communicator)
      communicator->resetCommunicatedBytes();
    for (int64_t j = 0; j < options.microBatches; ++j) {
      CLEAVE_RETURN_IF_ERROR(getBatch(data, dataSeed,
                                      static_cast<uint64_t>(stepNumber),
                                      j * micro, micro, seq, tokens.data(),
                                      targets.data()));
      CLEAVE_RETURN_IF_ERROR(state.setBlockOf("tokens", tokens.data()));
      CLEAVE_RETURN_IF_ERROR(state.setBlockOf("targets", targets.data()));
      CLEAVE_RETURN_IF_ERROR(runOnce(context, step, stepArguments, stepResults, arena));
      double microLoss = 0;
      CLEAVE_RETURN_IF_ERROR(
          readResult(context, step, stepResults, lossIndex, microLoss));
      loss += microLoss / static_cast<double>(options.microBatches);
      if (!apply)
        continue;
      // The mean loss's gradient is the mean of the micro-batch gradients.
      for (int i = 0; i < step.numResults; ++i) {
        const TensorSpec &spec = step.results[i].tensor;
        if (std::strncmp(spec.name, "grad.", 5) != 0)
          continue;
        if (!state.find(spec.name))
          return Status::error(std::string("the update takes no '") +
                               spec.name + "'");
        CLEAVE_RETURN_IF_ERROR(accumulate(
            context, spec.dtype,
            static_cast<int64_t>(getByteSize(spec) / getDTypeSize(spec.dtype)),
            1.0 / static_cast<double>(options.microBatches), stepResults[i],
            state.getPointer(spec.name), j == 0, "gradient accumulation"));
      }
    }
    if (apply) {
      CLEAVE_RETURN_IF_ERROR(
          runOnce(context, *apply, applyArguments, applyResults, arena));
      if (normIndex >= 0)
        CLEAVE_RETURN_IF_ERROR(
            readResult(context, *apply, applyResults, normIndex, norm));
      CLEAVE_RETURN_IF_ERROR(
          applyUpdates(context, *apply, applyArguments, applyResults));
    } else {
      if (normIndex >= 0)
        CLEAVE_RETURN_IF_ERROR(
            readResult(context, step, stepResults, normIndex, norm));
      CLEAVE_RETURN_IF_ERROR(
          applyUpdates(context, step, stepArguments, stepResults));
    }
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
      std::printf("\n");
      std::fflush(stdout);
    }
    if (!std::isfinite(loss))
      return Status::error("the loss is not finite at step " +
                           std::to_string(stepNumber) + "; stopping");
    if ((options.saveEvery > 0 && stepNumber % options.saveEvery == 0) ||
        stepNumber == options.steps)
      CLEAVE_RETURN_IF_ERROR(save(stepNumber));
  }
  return Status::success();
}

} // namespace

int runTrainingMain(const Program &step, const Program *apply, int argc,
                    char **argv) {
  TrainOptions options;
  Status parsed = parseTrainOptions(argc, argv, options);
  const char *self = argc > 0 ? argv[0] : step.name;
  // The communicator goes before the context it uses.
  Context context;
  std::unique_ptr<Communicator> communicator;
  return finishMain(self, kTrainUsage, parsed, [&] {
    Status status = train(step, apply, options, context, communicator);
    abortPeersOnError(self, status, communicator.get());
    return status;
  });
}

} // namespace cleave::rt
