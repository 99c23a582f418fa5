//===- TrainingState.cpp - Running one program of a training step ---------===//

#include "TrainingState.h"

#include <cstring>
#include <set>

namespace cleave::rt {

std::vector<uint8_t> getScalarBytes(DType dtype, double value) {
  std::vector<uint8_t> bytes(getDTypeSize(dtype));
  if (isFloatDType(dtype))
    writeFloatElement(dtype, value, bytes.data());
  return bytes;
}

Status applyReductionOptions(const ReductionOptions &options,
                             bool reducesInLoop, bool startsCollectives,
                             Communicator *communicator) {
  if (!reducesInLoop && !startsCollectives &&
      (options.bucketGiven || options.overlapGiven))
    return Status::error("--bucket-mb and --overlap set how the training loop "
                         "reduces data-parallel gradients, which this program "
                         "leaves to its collectives: build it with a dp axis "
                         "and micro-batches");
  if (communicator)
    communicator->setStartedOptions(options.overlap, options.bucketBytes);
  return Status::success();
}

void TrainingState::addParameters(const Program &program,
                                  std::set<std::string> &names) {
  for (int i = 0; i < program.numArguments; ++i)
    if (program.arguments[i].kind == ArgumentKind::Param)
      names.insert(program.arguments[i].tensor.name);
}

Status
TrainingState::readParameters(const SafetensorsReader &reader,
                              const std::set<std::string> &modelParameters) {
  std::vector<uint8_t> global;
  for (const std::string &name : order) {
    Tensor &tensor = tensors[name];
    if (tensor.kind != ArgumentKind::Param)
      continue;
    const TensorInfo *info = reader.find(name);
    if (!info)
      return Status::error("'" + reader.getPath() + "' has no tensor '" + name +
                           "', a parameter of the model");
    const std::vector<int64_t> &shape = tensor.block.globalShape;
    DType dtype = tensor.spec.dtype;
    global.resize(*getNumElements(shape) * getDTypeSize(dtype));
    if (info->dtype == dtype || info->shape != shape) {
      // Same type, or a shape the read refuses with both named.
      CLEAVE_RETURN_IF_ERROR(reader.read(name, dtype, shape, global.data()));
    } else {
      // Another float width: converted elementwise (a bf16 or f16
      // checkpoint into f32 master weights).
      const uint8_t *source = reader.getData(*info);
      size_t from = getDTypeSize(info->dtype), to = getDTypeSize(dtype);
      size_t count = *getNumElements(shape);
      double value = 0;
      if (!isFloatDType(info->dtype) || !isFloatDType(dtype))
        return Status::error("'" + reader.getPath() + "': tensor '" + name +
                             "' is " + getDTypeName(info->dtype) +
                             ", and the model's parameter " +
                             getDTypeName(dtype));
      for (size_t i = 0; i < count; ++i) {
        readFloatElement(info->dtype, source + i * from, value);
        writeFloatElement(dtype, value, global.data() + i * to);
      }
    }
    CLEAVE_RETURN_IF_ERROR(setBlockOf(name, global.data()));
  }
  for (const TensorInfo &info : reader.getTensors())
    if (!modelParameters.count(info.name))
      return Status::error("'" + reader.getPath() + "' has tensor '" +
                           info.name +
                           "', which is not a parameter of the model");
  return Status::success();
}

int findResult(const Program &program, const char *name) {
  for (int i = 0; i < program.numResults; ++i)
    if (std::string(program.results[i].tensor.name) == name)
      return i;
  return -1;
}

int findResult(const Program &program, OutputRole role) {
  for (int i = 0; i < program.numResults; ++i)
    if (program.results[i].role == role)
      return i;
  return -1;
}

Status readResult(Context &context, const Program &program,
                  const std::vector<void *> &results, int index,
                  double &value) {
  const TensorSpec &spec = program.results[index].tensor;
  std::vector<uint8_t> bytes(getByteSize(spec));
  CLEAVE_RETURN_IF_ERROR(context.copyToHost(bytes.data(), results[index], bytes.size()));
  value = readScalar(spec.dtype, bytes.data());
  return Status::success();
}

Status applyUpdates(Context &context, const Program &program,
                    const std::vector<void *> &arguments,
                    const std::vector<void *> &results) {
  for (int i = 0; i < program.numResults; ++i)
    if (int target = program.results[i].updates; target >= 0)
      CLEAVE_RETURN_IF_ERROR(context.copyOnDevice(
          arguments[target], results[i], getByteSize(program.results[i].tensor)));
  return context.synchronize("the parameter update");
}

const char *getTokenTable(const Program &program) {
  for (int i = 0; i < program.numArguments; ++i) {
    const ArgumentSpec &argument = program.arguments[i];
    if (argument.role == InputRole::Tokens && argument.indexes >= 0 &&
        argument.indexes < program.numArguments)
      return program.arguments[argument.indexes].tensor.name;
  }
  return nullptr;
}

Status getTokensShape(const Program &program, const Mesh &mesh,
                      const std::vector<int64_t> &coordinates,
                      std::vector<int64_t> &shape) {
  shape.clear();
  for (InputRole role : {InputRole::Tokens, InputRole::Targets}) {
    for (int i = 0; i < program.numArguments; ++i) {
      const ArgumentSpec &argument = program.arguments[i];
      const char *name = argument.tensor.name;
      if (argument.kind != ArgumentKind::Input || argument.role != role)
        continue;
      if (argument.tensor.dtype != DType::I32 || argument.tensor.shape.rank != 2)
        return Status::error(std::string("input '") + name +
                             "' must be i32 [batch, seq]");
      Block block;
      CLEAVE_RETURN_IF_ERROR(getBlock(mesh, argument.split,
                                      getDims(argument.tensor.shape),
                                      coordinates, block));
      if (shape.empty())
        shape = block.globalShape;
      else if (shape != block.globalShape)
        return Status::error("the tokens and targets inputs differ in shape");
    }
    if (shape.empty())
      return Status::error(std::string("program '") + program.name +
                           "' takes no i32 input with the role tokens "
                           "(cleave.input_role) to draw a batch of the token "
                           "file into");
  }
  return Status::success();
}

Status accumulateGradients(Context &context, TrainingState &state,
                           const Program &program,
                           const std::vector<void *> &results,
                           int64_t microBatches,
                           std::set<std::string> &accumulated) {
  // The mean loss's gradient is the mean of the micro-batch gradients.
  for (int i = 0; i < program.numResults; ++i) {
    const TensorSpec &spec = program.results[i].tensor;
    // The training loop's reducer accumulates pending sums.
    if (program.results[i].role != OutputRole::Gradient ||
        program.results[i].pendingGroup >= 0)
      continue;
    if (!state.find(spec.name))
      return Status::error(std::string("the update takes no '") + spec.name +
                           "'");
    CLEAVE_RETURN_IF_ERROR(accumulate(
        context, spec.dtype,
        static_cast<int64_t>(getByteSize(spec) / getDTypeSize(spec.dtype)),
        1.0 / static_cast<double>(microBatches), results[i],
        state.getPointer(spec.name), accumulated.insert(spec.name).second,
        "gradient accumulation"));
  }
  return Status::success();
}

} // namespace cleave::rt
