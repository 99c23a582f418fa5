//===- Runner.cpp - Load, run, write: the generated programs' main --------===//

#include "cleave/runtime/Program.h"
#include "cleave/runtime/Safetensors.h"

#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <memory>
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
};

const char *const kUsage =
    "usage: %s --params FILE [--inputs FILE] [--outputs FILE] [--repeat N]\n"
    "  --params FILE   safetensors file with every parameter of the program\n"
    "  --inputs FILE   safetensors file with every input (when it has any)\n"
    "  --outputs FILE  write the results to this safetensors file\n"
    "  --repeat N      run N more times and print the mean forward time\n";

Status parseOptions(int argc, char **argv, RunOptions &options) {
  for (int i = 1; i < argc; ++i) {
    std::string flag = argv[i];
    if (flag == "--help" || flag == "-h")
      return Status::error("");
    if (i + 1 >= argc)
      return Status::error("missing value after '" + flag + "'");
    std::string value = argv[++i];
    if (flag == "--params") {
      options.paramsPath = value;
    } else if (flag == "--inputs") {
      options.inputsPath = value;
    } else if (flag == "--outputs") {
      options.outputsPath = value;
    } else if (flag == "--repeat") {
      char *end = nullptr;
      long count = std::strtol(value.c_str(), &end, 10);
      if (*end || count < 0 || count > 1000000)
        return Status::error("--repeat needs a count in [0, 1000000], got '" +
                             value + "'");
      options.repeat = static_cast<int>(count);
    } else {
      return Status::error("unknown option '" + flag + "'");
    }
  }
  if (options.paramsPath.empty())
    return Status::error("--params is required");
  return Status::success();
}

std::vector<int64_t> getDims(const Shape &shape) {
  return std::vector<int64_t>(shape.dims, shape.dims + shape.rank);
}

uint64_t getByteSize(const TensorSpec &spec) {
  return *getNumElements(getDims(spec.shape)) * getDTypeSize(spec.dtype);
}

/// Every tensor in `reader` must be an argument of `kind`: a stray name is
/// almost always a renamed or misspelled parameter.
Status checkNoStrayTensors(const Program &program,
                           const SafetensorsReader &reader, ArgumentKind kind) {
  std::set<std::string> expected;
  for (int i = 0; i < program.numArguments; ++i)
    if (program.arguments[i].kind == kind)
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

/// A scalar result as a double, for printing.
double getScalar(DType dtype, const uint8_t *bytes) {
  switch (dtype) {
  case DType::F64: {
    double value;
    std::memcpy(&value, bytes, sizeof(value));
    return value;
  }
  case DType::F32: {
    float value;
    std::memcpy(&value, bytes, sizeof(value));
    return value;
  }
  case DType::BF16: {
    uint32_t bits = static_cast<uint32_t>(bytes[0] | bytes[1] << 8) << 16;
    float value;
    std::memcpy(&value, &bits, sizeof(value));
    return value;
  }
  default:
    return 0.0;
  }
}

Status run(const Program &program, const RunOptions &options) {
  Context context;
  CLEAVE_RETURN_IF_ERROR(context.initialize());

  SafetensorsReader params, inputs;
  CLEAVE_RETURN_IF_ERROR(SafetensorsReader::open(options.paramsPath, params));
  CLEAVE_RETURN_IF_ERROR(checkNoStrayTensors(program, params, ArgumentKind::Param));
  bool hasInputs = false;
  for (int i = 0; i < program.numArguments; ++i)
    hasInputs |= program.arguments[i].kind == ArgumentKind::Input;
  if (hasInputs && options.inputsPath.empty())
    return Status::error("program '" + std::string(program.name) +
                         "' takes inputs: pass them with --inputs FILE");
  if (!options.inputsPath.empty()) {
    CLEAVE_RETURN_IF_ERROR(SafetensorsReader::open(options.inputsPath, inputs));
    CLEAVE_RETURN_IF_ERROR(
        checkNoStrayTensors(program, inputs, ArgumentKind::Input));
  }

  std::vector<std::unique_ptr<DeviceBuffer>> buffers;
  std::vector<void *> arguments;
  std::vector<uint8_t> host;
  for (int i = 0; i < program.numArguments; ++i) {
    const ArgumentSpec &argument = program.arguments[i];
    const TensorSpec &spec = argument.tensor;
    uint64_t bytes = getByteSize(spec);
    host.resize(bytes);
    const SafetensorsReader &reader =
        argument.kind == ArgumentKind::Param ? params : inputs;
    CLEAVE_RETURN_IF_ERROR(
        reader.read(spec.name, spec.dtype, getDims(spec.shape), host.data()));
    buffers.push_back(std::make_unique<DeviceBuffer>(context));
    CLEAVE_RETURN_IF_ERROR(buffers.back()->allocate(bytes, spec.name));
    CLEAVE_RETURN_IF_ERROR(
        context.copyToDevice(buffers.back()->get(), host.data(), bytes));
    arguments.push_back(buffers.back()->get());
  }

  DeviceBuffer arena(context);
  CLEAVE_RETURN_IF_ERROR(arena.allocate(program.arenaBytes, "the arena"));
  std::vector<void *> results(program.numResults, nullptr);
  auto runOnce = [&]() -> Status {
    CLEAVE_RETURN_IF_ERROR(program.entry(context, arguments.data(),
                                         results.data(),
                                         static_cast<uint8_t *>(arena.get())));
    CLEAVE_RETURN_IF_ERROR(context.synchronize(program.name));
    int32_t site = 0;
    CLEAVE_RETURN_IF_ERROR(context.takeIndexError(&site));
    if (site > 0 && site <= program.numIndexSites)
      return Status::error(std::string(program.indexSites[site - 1]) +
                           ": index out of range");
    if (site != 0)
      return Status::error("a kernel reported an index out of range");
    return Status::success();
  };
  CLEAVE_RETURN_IF_ERROR(runOnce());
  if (options.repeat > 0) {
    auto start = std::chrono::steady_clock::now();
    for (int i = 0; i < options.repeat; ++i)
      CLEAVE_RETURN_IF_ERROR(runOnce());
    std::chrono::duration<double, std::milli> elapsed =
        std::chrono::steady_clock::now() - start;
    std::printf("time: %.3f ms per run (mean of %d, %s)\n",
                elapsed.count() / options.repeat, options.repeat,
                Context::getBackendName());
  }

  std::vector<std::vector<uint8_t>> outputs(program.numResults);
  SafetensorsWriter writer;
  for (int i = 0; i < program.numResults; ++i) {
    const TensorSpec &spec = program.results[i];
    outputs[i].resize(getByteSize(spec));
    CLEAVE_RETURN_IF_ERROR(
        context.copyToHost(outputs[i].data(), results[i], outputs[i].size()));
    CLEAVE_RETURN_IF_ERROR(writer.add(spec.name, spec.dtype,
                                      getDims(spec.shape), outputs[i].data()));
    bool printable = spec.dtype == DType::F64 || spec.dtype == DType::F32 ||
                     spec.dtype == DType::BF16;
    if (spec.shape.rank == 0 && printable) {
      // The scalar result of a forward function is its loss.
      const char *label = program.numResults == 1 ? "loss" : spec.name;
      std::printf("%s: %.9g\n", label, getScalar(spec.dtype, outputs[i].data()));
    }
  }
  if (!options.outputsPath.empty()) {
    writer.setMetadata("program", program.name);
    CLEAVE_RETURN_IF_ERROR(writer.write(options.outputsPath));
  }
  return Status::success();
}

} // namespace

int runProgramMain(const Program &program, int argc, char **argv) {
  const char *self = argc > 0 ? argv[0] : program.name;
  RunOptions options;
  Status parsed = parseOptions(argc, argv, options);
  if (!parsed.ok()) {
    if (!parsed.message().empty())
      std::fprintf(stderr, "%s: error: %s\n", self, parsed.message().c_str());
    std::fprintf(stderr, kUsage, self);
    return parsed.message().empty() ? 0 : 1;
  }
  Status status = run(program, options);
  if (!status.ok()) {
    std::fprintf(stderr, "%s: error: %s\n", self, status.message().c_str());
    return 1;
  }
  return 0;
}

} // namespace cleave::rt
