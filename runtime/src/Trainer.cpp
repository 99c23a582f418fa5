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

#include "cleave/runtime/DataLoader.h"
#include "cleave/runtime/Init.h"
#include "cleave/runtime/Program.h"
#include "cleave/runtime/Safetensors.h"
#include "cleave/runtime/Schedule.h"

#include <cerrno>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <cstring>
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
};

const char *const kTrainUsage =
    "usage: %s --data FILE --steps N --out DIR [options]\n"
    "  --data FILE          token file: raw little-endian uint16 tokens\n"
    "  --token-bytes 2|4    token width in the file (2)\n"
    "  --steps N            train until step N (counted from 1, across resumes)\n"
    "  --out DIR            where checkpoints go (DIR/checkpoint.safetensors)\n"
    "  --lr X               peak learning rate (1e-3)\n"
    "  --lr-schedule NAME   constant or cosine (constant)\n"
    "  --warmup W           linear warmup steps (0)\n"
    "  --decay-steps D      cosine decay steps after warmup\n"
    "  --min-lr X           learning rate at the end of the decay (0)\n"
    "  --seed N             data order: batch k depends on (N, k) only (0)\n"
    "  --init-seed N        GPT-2 style initial parameters from seed N (0)\n"
    "  --save-every K       also checkpoint every K steps (0: only at the end)\n"
    "  --resume DIR         continue the run checkpointed in DIR\n";

std::optional<double> parseNumber(const std::string &text) {
  if (text.empty())
    return std::nullopt;
  char *end = nullptr;
  errno = 0;
  double value = std::strtod(text.c_str(), &end);
  if (*end || errno == ERANGE || !std::isfinite(value))
    return std::nullopt;
  return value;
}

std::optional<uint64_t> parseCount(const std::string &text) {
  if (text.empty() || text.size() > 19 ||
      text.find_first_not_of("0123456789") != std::string::npos)
    return std::nullopt;
  return std::strtoull(text.c_str(), nullptr, 10);
}

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

std::vector<int64_t> getDims(const Shape &shape) {
  return std::vector<int64_t>(shape.dims, shape.dims + shape.rank);
}

uint64_t getByteSize(const TensorSpec &spec) {
  return *getNumElements(getDims(spec.shape)) * getDTypeSize(spec.dtype);
}

/// A float scalar of `dtype` as bytes.
std::vector<uint8_t> getScalarBytes(DType dtype, double value) {
  std::vector<uint8_t> bytes(getDTypeSize(dtype));
  if (dtype == DType::F64) {
    std::memcpy(bytes.data(), &value, sizeof(value));
  } else {
    float narrow = static_cast<float>(value);
    std::memcpy(bytes.data(), &narrow, sizeof(narrow));
  }
  return bytes;
}

double readScalar(DType dtype, const std::vector<uint8_t> &bytes) {
  if (dtype == DType::F64) {
    double value;
    std::memcpy(&value, bytes.data(), sizeof(value));
    return value;
  }
  float value;
  std::memcpy(&value, bytes.data(), sizeof(value));
  return value;
}

/// The program's arguments on the device and where each role lives.
class TrainingState {
public:
  TrainingState(const Program &program, Context &context)
      : program(program), context(context) {}

  Status allocate() {
    for (int i = 0; i < program.numArguments; ++i) {
      const ArgumentSpec &argument = program.arguments[i];
      buffers.push_back(std::make_unique<DeviceBuffer>(context));
      CLEAVE_RETURN_IF_ERROR(buffers.back()->allocate(
          getByteSize(argument.tensor), argument.tensor.name));
      pointers.push_back(buffers.back()->get());
      if (argument.kind == ArgumentKind::Input)
        inputIndex[argument.tensor.name] = i;
    }
    for (const char *name : {"tokens", "targets", "lr"})
      if (!inputIndex.count(name))
        return Status::error(std::string("program '") + program.name +
                             "' is not a training step: it has no input '" +
                             name + "' (build it with cleavec train)");
    for (const char *name : {"tokens", "targets"}) {
      const TensorSpec &spec = program.arguments[inputIndex[name]].tensor;
      if (spec.dtype != DType::I32 || spec.shape.rank != 2)
        return Status::error(std::string("input '") + name +
                             "' must be i32 [batch, seq]");
    }
    return Status::success();
  }

  /// Parameters GPT-2 style from `seed`, optimizer state zero.
  Status initialize(uint64_t seed) {
    std::vector<std::string> names;
    for (int i = 0; i < program.numArguments; ++i)
      if (program.arguments[i].kind == ArgumentKind::Param)
        names.push_back(program.arguments[i].tensor.name);
    int64_t layers = inferNumLayers(names);
    std::vector<uint8_t> host;
    for (int i = 0; i < program.numArguments; ++i) {
      const ArgumentSpec &argument = program.arguments[i];
      if (argument.kind == ArgumentKind::Input)
        continue;
      const TensorSpec &spec = argument.tensor;
      host.assign(getByteSize(spec), 0);
      InitRule rule = argument.kind == ArgumentKind::Param
                          ? getGpt2InitRule(spec.name, layers)
                          : InitRule{InitRule::Kind::Zeros, 0.0};
      CLEAVE_RETURN_IF_ERROR(fillInitialValues(rule, seed, spec.name,
                                               spec.dtype,
                                               host.size() / getDTypeSize(spec.dtype),
                                               host.data()));
      CLEAVE_RETURN_IF_ERROR(context.copyToDevice(pointers[i], host.data(), host.size()));
    }
    return Status::success();
  }

  /// Parameters and state from a checkpoint; returns its metadata.
  Status load(const std::string &path, std::map<std::string, std::string> &metadata) {
    SafetensorsReader reader;
    CLEAVE_RETURN_IF_ERROR(SafetensorsReader::open(path, reader));
    std::vector<uint8_t> host;
    for (int i = 0; i < program.numArguments; ++i) {
      const ArgumentSpec &argument = program.arguments[i];
      if (argument.kind == ArgumentKind::Input)
        continue;
      const TensorSpec &spec = argument.tensor;
      host.resize(getByteSize(spec));
      CLEAVE_RETURN_IF_ERROR(
          reader.read(spec.name, spec.dtype, getDims(spec.shape), host.data()));
      CLEAVE_RETURN_IF_ERROR(context.copyToDevice(pointers[i], host.data(), host.size()));
    }
    metadata = reader.getMetadata();
    return Status::success();
  }

  /// Writes parameters and state with `metadata`, atomically.
  Status save(const std::string &path,
              const std::map<std::string, std::string> &metadata) {
    SafetensorsWriter writer;
    std::vector<std::vector<uint8_t>> hosts;
    hosts.reserve(program.numArguments);
    for (int i = 0; i < program.numArguments; ++i) {
      const ArgumentSpec &argument = program.arguments[i];
      if (argument.kind == ArgumentKind::Input)
        continue;
      const TensorSpec &spec = argument.tensor;
      hosts.emplace_back(getByteSize(spec));
      CLEAVE_RETURN_IF_ERROR(
          context.copyToHost(hosts.back().data(), pointers[i], hosts.back().size()));
      CLEAVE_RETURN_IF_ERROR(writer.add(spec.name, spec.dtype, getDims(spec.shape),
                                        hosts.back().data()));
    }
    for (const auto &[key, value] : metadata)
      writer.setMetadata(key, value);
    return writer.write(path);
  }

  Status setInput(const char *name, const void *data, size_t bytes) {
    auto it = inputIndex.find(name);
    if (it == inputIndex.end())
      return Status::success();
    return context.copyToDevice(pointers[it->second], data, bytes);
  }

  const TensorSpec *getInput(const char *name) const {
    auto it = inputIndex.find(name);
    return it == inputIndex.end() ? nullptr : &program.arguments[it->second].tensor;
  }

  void *const *getPointers() const { return pointers.data(); }
  void *getPointer(int index) const { return pointers[index]; }

private:
  const Program &program;
  Context &context;
  std::vector<std::unique_ptr<DeviceBuffer>> buffers;
  std::vector<void *> pointers;
  std::map<std::string, int> inputIndex;
};

std::string getCheckpointPath(const std::string &dir) {
  return dir + "/checkpoint.safetensors";
}

Status train(const Program &program, const TrainOptions &options) {
  Context context;
  CLEAVE_RETURN_IF_ERROR(context.initialize());
  TrainingState state(program, context);
  CLEAVE_RETURN_IF_ERROR(state.allocate());

  const TensorSpec &tokensSpec = *state.getInput("tokens");
  int64_t batch = tokensSpec.shape.dims[0], seq = tokensSpec.shape.dims[1];
  TokenFile data;
  CLEAVE_RETURN_IF_ERROR(TokenFile::open(options.dataPath, options.tokenWidth, data));
  int64_t vocab = -1;
  for (int i = 0; i < program.numArguments; ++i)
    if (std::string(program.arguments[i].tensor.name) == "embed.tokens")
      vocab = program.arguments[i].tensor.shape.dims[0];
  if (vocab > 0)
    CLEAVE_RETURN_IF_ERROR(data.checkVocabulary(vocab));

  int64_t first = 1;
  uint64_t dataSeed = options.dataSeed;
  if (!options.resumeDir.empty()) {
    std::map<std::string, std::string> metadata;
    CLEAVE_RETURN_IF_ERROR(state.load(getCheckpointPath(options.resumeDir), metadata));
    std::optional<uint64_t> step = parseCount(metadata["step"]);
    std::optional<uint64_t> seed = parseCount(metadata["data_seed"]);
    if (!step || !seed)
      return Status::error("'" + getCheckpointPath(options.resumeDir) +
                           "' has no valid step and data_seed metadata");
    first = static_cast<int64_t>(*step) + 1;
    dataSeed = *seed;
    std::printf("resumed from %s at step %lld\n",
                getCheckpointPath(options.resumeDir).c_str(),
                static_cast<long long>(*step));
  } else {
    CLEAVE_RETURN_IF_ERROR(state.initialize(options.initSeed));
  }
  if (first > options.steps) {
    std::printf("nothing to do: the checkpoint is already at step %lld\n",
                static_cast<long long>(first - 1));
    return Status::success();
  }
  ::mkdir(options.outDir.c_str(), 0755);

  int lossIndex = -1, normIndex = -1;
  for (int i = 0; i < program.numResults; ++i) {
    std::string name = program.results[i].tensor.name;
    if (name == "loss")
      lossIndex = i;
    else if (name == "grad_norm")
      normIndex = i;
  }
  if (lossIndex < 0)
    return Status::error(std::string("program '") + program.name +
                         "' returns no 'loss'");

  uint8_t *arena = nullptr;
  CLEAVE_RETURN_IF_ERROR(context.reserveArena(program.arenaBytes, &arena));
  std::vector<void *> results(program.numResults, nullptr);
  std::vector<int32_t> tokens(batch * seq), targets(batch * seq);
  auto save = [&](int64_t step) -> Status {
    std::map<std::string, std::string> metadata = {
        {"step", std::to_string(step)},
        {"data_seed", std::to_string(dataSeed)},
        {"program", program.name}};
    std::string path = getCheckpointPath(options.outDir);
    CLEAVE_RETURN_IF_ERROR(state.save(path, metadata));
    std::printf("checkpoint %s written at step %lld\n", path.c_str(),
                static_cast<long long>(step));
    return Status::success();
  };

  for (int64_t step = first; step <= options.steps; ++step) {
    auto start = std::chrono::steady_clock::now();
    CLEAVE_RETURN_IF_ERROR(getBatch(data, dataSeed, static_cast<uint64_t>(step),
                                    batch, seq, tokens.data(), targets.data()));
    CLEAVE_RETURN_IF_ERROR(state.setInput("tokens", tokens.data(), tokens.size() * 4));
    CLEAVE_RETURN_IF_ERROR(state.setInput("targets", targets.data(), targets.size() * 4));
    double lr = getLearningRate(options.schedule, step);
    std::vector<uint8_t> lrBytes = getScalarBytes(state.getInput("lr")->dtype, lr);
    CLEAVE_RETURN_IF_ERROR(state.setInput("lr", lrBytes.data(), lrBytes.size()));
    if (const TensorSpec *stepSpec = state.getInput("step")) {
      std::vector<uint8_t> stepBytes =
          getScalarBytes(stepSpec->dtype, static_cast<double>(step));
      CLEAVE_RETURN_IF_ERROR(state.setInput("step", stepBytes.data(), stepBytes.size()));
    }

    CLEAVE_RETURN_IF_ERROR(program.entry(context, state.getPointers(),
                                         results.data(), arena));
    CLEAVE_RETURN_IF_ERROR(context.synchronize(program.name));
    int32_t site = 0;
    CLEAVE_RETURN_IF_ERROR(context.takeIndexError(&site));
    if (site > 0 && site <= program.numIndexSites)
      return Status::error(std::string(program.indexSites[site - 1]) +
                           ": index out of range");

    // Read the loss before the updates: a result may share arena space
    // with nothing else, but reading first keeps the order obvious.
    const ResultSpec &lossSpec = program.results[lossIndex];
    std::vector<uint8_t> lossBytes(getByteSize(lossSpec.tensor));
    CLEAVE_RETURN_IF_ERROR(context.copyToHost(lossBytes.data(), results[lossIndex],
                                              lossBytes.size()));
    double norm = std::nan("");
    if (normIndex >= 0) {
      const ResultSpec &normSpec = program.results[normIndex];
      std::vector<uint8_t> normBytes(getByteSize(normSpec.tensor));
      CLEAVE_RETURN_IF_ERROR(context.copyToHost(normBytes.data(), results[normIndex],
                                                normBytes.size()));
      norm = readScalar(normSpec.tensor.dtype, normBytes);
    }
    for (int i = 0; i < program.numResults; ++i) {
      int target = program.results[i].updates;
      if (target >= 0)
        CLEAVE_RETURN_IF_ERROR(context.copyOnDevice(
            state.getPointer(target), results[i],
            getByteSize(program.results[i].tensor)));
    }
    CLEAVE_RETURN_IF_ERROR(context.synchronize("the parameter update"));
    std::chrono::duration<double> elapsed = std::chrono::steady_clock::now() - start;
    double loss = readScalar(lossSpec.tensor.dtype, lossBytes);
    std::printf("step %lld loss %.6f grad_norm %.4f lr %.4e tokens/s %.0f "
                "step_time %.1f ms\n",
                static_cast<long long>(step), loss, norm, lr,
                static_cast<double>(batch * seq) / elapsed.count(),
                elapsed.count() * 1e3);
    std::fflush(stdout);
    if (!std::isfinite(loss))
      return Status::error("the loss is not finite at step " +
                           std::to_string(step) + "; stopping");
    if ((options.saveEvery > 0 && step % options.saveEvery == 0) ||
        step == options.steps)
      CLEAVE_RETURN_IF_ERROR(save(step));
  }
  return Status::success();
}

} // namespace

int runTrainingMain(const Program &program, int argc, char **argv) {
  const char *self = argc > 0 ? argv[0] : program.name;
  TrainOptions options;
  Status parsed = parseTrainOptions(argc, argv, options);
  if (!parsed.ok()) {
    if (!parsed.message().empty())
      std::fprintf(stderr, "%s: error: %s\n", self, parsed.message().c_str());
    std::fprintf(stderr, kTrainUsage, self);
    return parsed.message().empty() ? 0 : 1;
  }
  Status status = train(program, options);
  if (!status.ok()) {
    std::fprintf(stderr, "%s: error: %s\n", self, status.message().c_str());
    return 1;
  }
  return 0;
}

} // namespace cleave::rt
