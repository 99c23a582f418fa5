//===- Runner.cpp - Load, run, write: the generated programs' main --------===//

#include "cleave/runtime/Communicator.h"
#include "cleave/runtime/Program.h"
#include "cleave/runtime/DataLoader.h"
#include "cleave/runtime/Init.h"
#include "cleave/runtime/Safetensors.h"

#include "CommandLine.h"
#include "ProgramSupport.h"
#include "Support.h"
#include "TrainingState.h"

#include <cerrno>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <memory>
#include <optional>
#include <set>
#include <string>
#include <vector>

namespace cleave::rt {
namespace {

struct RunOptions {
  std::string paramsPath;
  std::string inputsPath;
  std::string outputsPath;
  int repeat = 0;
  bool gemmBaseline = false;
  /// Set: parameters are initialized in place (GPT-2 init) from this seed.
  std::optional<uint64_t> initSeed;
  /// Set: `tokens` and `targets` are the training batch of `dataStep` drawn
  /// from this token file with `dataSeed`, as the training loop draws it.
  std::string dataPath;
  std::optional<TokenWidth> tokenWidth;
  uint64_t dataStep = 1;
  uint64_t dataSeed = 0;
};

const char *const kUsage =
    "usage: %s (--params FILE | --init-seed N) [--inputs FILE] [--outputs "
    "FILE]\n"
    "          [--repeat N [--gemm-baseline]]\n"
    "  --params FILE   safetensors file with every parameter of the program\n"
    "  --init-seed N   instead, initialize the parameters (as their "
    "cleave.init\n"
    "                  says) from seed N (the values cleavec --init-params\n"
    "                  --seed N writes)\n"
    "  --inputs FILE   safetensors file with every input (when it has any)\n"
    "  --outputs FILE  write the results to this safetensors file\n"
    "  --repeat N      run N more times and print the mean time per run\n"
    "  --gemm-baseline with --repeat: also time the run's GEMMs alone, "
    "replayed\n"
    "                  back to back with the same shapes and buffers\n"
    "  --data FILE     take tokens and targets from this token file, as the\n"
    "                  training batch of --data-step K (1) with --seed S (0)\n"
    "                  would be drawn\n"
    "  --token-bytes 2|4  token width of a --data file without a header\n";

Status parseOptions(int argc, char **argv, RunOptions &options) {
  CLEAVE_RETURN_IF_ERROR(walkCommandLine(argc, argv, {"--gemm-baseline"}, [&](
      const std::string &flag, const std::string &value) -> Status {
    uint64_t count = 0;
    if (flag == "--gemm-baseline") {
      options.gemmBaseline = true;
    } else if (flag == "--params") {
      options.paramsPath = value;
    } else if (flag == "--inputs") {
      options.inputsPath = value;
    } else if (flag == "--outputs") {
      options.outputsPath = value;
    } else if (flag == "--data") {
      options.dataPath = value;
    } else if (flag == "--token-bytes") {
      CLEAVE_RETURN_IF_ERROR(parseTokenWidth(value, options.tokenWidth));
    } else if (flag == "--seed") {
      CLEAVE_RETURN_IF_ERROR(readCount(flag, value, options.dataSeed));
    } else if (flag == "--data-step") {
      CLEAVE_RETURN_IF_ERROR(readCount(flag, value, count, UINT64_MAX,
                                       "a positive integer"));
      if (count == 0)
        return Status::error("--data-step needs a positive integer, got '" +
                             value + "'");
      options.dataStep = count;
    } else if (flag == "--init-seed") {
      CLEAVE_RETURN_IF_ERROR(readCount(flag, value, count, UINT64_MAX,
                                       "an integer in [0, 2^64)"));
      options.initSeed = count;
    } else if (flag == "--repeat") {
      CLEAVE_RETURN_IF_ERROR(readCount(flag, value, count, 1000000,
                                       "a count in [0, 1000000]"));
      options.repeat = static_cast<int>(count);
    } else {
      return unknownOption(flag);
    }
    return Status::success();
  }));
  if (options.paramsPath.empty() == !options.initSeed)
    return Status::error("give exactly one of --params FILE and --init-seed N");
  if (options.gemmBaseline && options.repeat == 0)
    return Status::error("--gemm-baseline needs --repeat N");
  return Status::success();
}

/// Every tensor in `reader` must be an argument of `kind`: a stray name is
/// almost always a renamed or misspelled parameter.
Status checkNoStrayTensors(const Program &program,
                           const SafetensorsReader &reader, ArgumentKind kind) {
  std::set<std::string> expected;
  for (int i = 0; i < program.numArguments; ++i)
    if (program.arguments[i].kind == kind ||
        (kind == ArgumentKind::Param &&
         program.arguments[i].kind == ArgumentKind::State))
      expected.insert(program.arguments[i].tensor.name);
  for (const TensorInfo &tensor : reader.getTensors())
    if (!expected.count(tensor.name))
      return Status::error("'" + reader.getPath() + "': unexpected tensor '" +
                           tensor.name + "': program '" + program.name +
                           "' has no " +
                           (kind == ArgumentKind::Param ? "parameter"
                                                        : "input") +
                           " of that name");
  return Status::success();
}

/// Records the GEMMs of one run, replays them alone `repeat` times and
/// prints their time next to the whole run's.
template <typename RunOnce>
Status timeGemmsAlone(Context &context, RunOnce &runOnce, int repeat,
                      double runMilliseconds) {
  std::vector<GemmCall> calls;
  context.setGemmLog(&calls);
  Status recorded = runOnce();
  context.setGemmLog(nullptr);
  CLEAVE_RETURN_IF_ERROR(recorded);
  // The products alone: a matmul_bias's epilogue is the program's work.
  for (GemmCall &call : calls) {
    call.args.epilogue = GemmEpilogue::None;
    call.args.bias = nullptr;
    call.args.preActivation = nullptr;
  }
  // Once untimed: stripping the epilogues may ask for GEMM plans the run
  // did not make, and making them is not GEMM time.
  for (const GemmCall &call : calls)
    CLEAVE_RETURN_IF_ERROR(gemm(context, call.dtype, call.args, "baseline"));
  auto start = std::chrono::steady_clock::now();
  for (int i = 0; i < repeat; ++i)
    for (const GemmCall &call : calls)
      CLEAVE_RETURN_IF_ERROR(gemm(context, call.dtype, call.args, "baseline"));
  CLEAVE_RETURN_IF_ERROR(context.synchronize("the GEMM baseline"));
  std::chrono::duration<double, std::milli> elapsed =
      std::chrono::steady_clock::now() - start;
  double perRun = elapsed.count() / repeat;
  std::printf("gemm-only: %.3f ms per run (%zu GEMMs)\n", perRun,
              calls.size());
  if (calls.empty())
    std::printf("ratio: none (the program runs no GEMM)\n");
  else
    std::printf("ratio: %.3f (run / gemm-only)\n", runMilliseconds / perRun);
  return Status::success();
}

Status run(const Program &program, const RunOptions &options,
           Context &context, std::unique_ptr<Communicator> &communicator) {
  CLEAVE_RETURN_IF_ERROR(context.initialize());
  std::unique_ptr<Profiler> profiler;
  CLEAVE_RETURN_IF_ERROR(Profiler::createFromEnvironment(context, profiler));
  ProfilerInstallation installed(context, profiler.get());
  // A partitioned program: every rank reads the same global tensors and
  // keeps its block of each.
  Mesh mesh;
  std::vector<int64_t> coordinates;
  if (program.mesh) {
    CLEAVE_RETURN_IF_ERROR(createCommunicator(context, *program.mesh, communicator));
    context.setCommunicator(communicator.get());
    mesh = communicator->getMesh();
    coordinates = communicator->getCoordinates();
  }
  bool isLogger = !communicator || communicator->getRank() == 0;

  SafetensorsReader params, inputs;
  if (!options.initSeed) {
    CLEAVE_RETURN_IF_ERROR(SafetensorsReader::open(options.paramsPath, params));
    CLEAVE_RETURN_IF_ERROR(
        checkNoStrayTensors(program, params, ArgumentKind::Param));
  }
  bool hasInputs = false;
  for (int i = 0; i < program.numArguments; ++i)
    hasInputs |= program.arguments[i].kind == ArgumentKind::Input;
  if (hasInputs && options.inputsPath.empty() && options.dataPath.empty())
    return Status::error("program '" + std::string(program.name) +
                         "' takes inputs: pass them with --inputs FILE");
  if (!options.inputsPath.empty()) {
    CLEAVE_RETURN_IF_ERROR(SafetensorsReader::open(options.inputsPath, inputs));
    CLEAVE_RETURN_IF_ERROR(
        checkNoStrayTensors(program, inputs, ArgumentKind::Input));
  }

  // The same tensor store as the training loop's: every rank allocates its
  // blocks, then fills them from the global tensors.
  TrainingState state(context, communicator.get());
  std::vector<void *> arguments;
  CLEAVE_RETURN_IF_ERROR(state.bind(program, arguments));
  if (options.initSeed)
    CLEAVE_RETURN_IF_ERROR(state.initialize(*options.initSeed));
  else
    CLEAVE_RETURN_IF_ERROR(state.readTensors(params, /*inputs=*/false, {}));
  // Inputs: tokens and targets drawn from --data, the rest from --inputs.
  std::set<std::string> drawn;
  if (!options.dataPath.empty()) {
    std::vector<int64_t> shape;
    CLEAVE_RETURN_IF_ERROR(getTokensShape(program, mesh, coordinates, shape));
    TokenFile file;
    CLEAVE_RETURN_IF_ERROR(
        TokenFile::open(options.dataPath, options.tokenWidth, file));
    std::vector<int32_t> tokens(shape[0] * shape[1]), targets(tokens.size());
    CLEAVE_RETURN_IF_ERROR(getBatch(file, options.dataSeed, options.dataStep,
                                    shape[0], shape[1], tokens.data(),
                                    targets.data()));
    for (auto [role, data] : {std::pair(InputRole::Tokens, tokens.data()),
                              std::pair(InputRole::Targets, targets.data())})
      if (const char *name = state.findInput(role)) {
        CLEAVE_RETURN_IF_ERROR(state.setBlockOf(name, data));
        drawn.insert(name);
      }
  }
  for (int i = 0; i < program.numArguments; ++i) {
    const ArgumentSpec &argument = program.arguments[i];
    if (argument.kind == ArgumentKind::Input && options.inputsPath.empty() &&
        !drawn.count(argument.tensor.name))
      return Status::error(std::string("input '") + argument.tensor.name +
                           "' is not drawn from --data: pass --inputs FILE");
  }
  if (!options.inputsPath.empty())
    CLEAVE_RETURN_IF_ERROR(state.readTensors(inputs, /*inputs=*/true, drawn));

  uint8_t *arena = nullptr;
  CLEAVE_RETURN_IF_ERROR(context.reserveArena(program.arenaBytes, &arena));
  std::vector<void *> results;
  auto runOnce = [&]() -> Status {
    return runProgram(context, program, arguments, results, arena);
  };
  CLEAVE_RETURN_IF_ERROR(runOnce());
  double perRunMilliseconds = 0;
  if (options.repeat > 0) {
    if (profiler)
      profiler->reset();
    auto start = std::chrono::steady_clock::now();
    for (int i = 0; i < options.repeat; ++i)
      CLEAVE_RETURN_IF_ERROR(runOnce());
    std::chrono::duration<double, std::milli> elapsed =
        std::chrono::steady_clock::now() - start;
    perRunMilliseconds = elapsed.count() / options.repeat;
    if (isLogger)
      std::printf("time: %.3f ms per run (mean of %d, %s)\n"
                  "peak_memory: %.1f MiB\n",
                  perRunMilliseconds, options.repeat, Context::getBackendName(),
                  static_cast<double>(context.getPeakAllocatedBytes()) /
                      (1 << 20));
  }

  std::vector<std::vector<uint8_t>> outputs(program.numResults);
  SafetensorsWriter writer;
  std::string nonFinite;
  for (int i = 0; i < program.numResults; ++i) {
    const TensorSpec &spec = program.results[i].tensor;
    Block block;
    CLEAVE_RETURN_IF_ERROR(getBlock(mesh, program.results[i].split,
                                    getDims(spec.shape), coordinates, block));
    if (block.globalShape != getDims(spec.shape))
      return Status::error(std::string("result '") + spec.name +
                           "' is split across ranks; the runner writes "
                           "replicated results only");
    outputs[i].resize(getByteSize(spec));
    CLEAVE_RETURN_IF_ERROR(
        context.copyToHost(outputs[i].data(), results[i], outputs[i].size()));
    CLEAVE_RETURN_IF_ERROR(writer.add(spec.name, spec.dtype,
                                      getDims(spec.shape), outputs[i].data()));
    bool printable = spec.dtype == DType::F64 || spec.dtype == DType::F32 ||
                     spec.dtype == DType::BF16;
    // The scalar result of a forward function is its loss.
    const char *label = program.numResults == 1 ? "loss" : spec.name;
    if (spec.shape.rank == 0 && printable && isLogger)
      std::printf("%s: %.9g\n", label,
                  readScalar(spec.dtype, outputs[i].data()));
    if (spec.shape.rank == 0 && isFloatDType(spec.dtype) && nonFinite.empty()) {
      double value = readScalar(spec.dtype, outputs[i].data());
      if (!std::isfinite(value))
        nonFinite = std::string(label) + " is " +
                    (std::isnan(value) ? "NaN"
                     : value > 0       ? "+infinity"
                                       : "-infinity");
    }
  }
  if (!options.outputsPath.empty() && isLogger) {
    writer.setMetadata("program", program.name);
    CLEAVE_RETURN_IF_ERROR(writer.write(options.outputsPath));
  }
  // Written out for inspection, but never taken for a result.
  if (!nonFinite.empty())
    return Status::error(nonFinite +
                         ": a parameter or input holds NaN or infinity, or "
                         "the computation overflowed (CLEAVE_CHECK_FINITE=1 "
                         "names the first op that produced it)");
  if (profiler && profiler->printsTable && isLogger)
    profiler->print(stdout);
  // Last: replaying GEMMs writes over arena buffers the results live in.
  if (options.gemmBaseline) {
    context.setProfiler(nullptr);
    CLEAVE_RETURN_IF_ERROR(
        timeGemmsAlone(context, runOnce, options.repeat, perRunMilliseconds));
  }
  return Status::success();
}

} // namespace

int runProgramMain(const Program &program, int argc, char **argv) {
  RunOptions options;
  Status parsed = parseOptions(argc, argv, options);
  const char *self = argc > 0 ? argv[0] : program.name;
  // The communicator goes before the context it uses.
  Context context;
  std::unique_ptr<Communicator> communicator;
  return finishMain(self, kUsage, parsed, [&] {
    Status status = run(program, options, context, communicator);
    abortPeersOnError(self, status, communicator.get());
    return status;
  });
}

} // namespace cleave::rt
