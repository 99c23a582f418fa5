//===- TrainingState.h - Tensors and programs of a training run -*- C++ -*-===//
//
// Internal to the runtime: the device buffers a training run's programs
// share by name, how they are initialized, checkpointed and resumed on any
// mesh, and the helpers that run one program of a step.
//
//===----------------------------------------------------------------------===//

#ifndef CLEAVE_RUNTIME_SRC_TRAININGSTATE_H
#define CLEAVE_RUNTIME_SRC_TRAININGSTATE_H

#include "cleave/runtime/Buckets.h"
#include "cleave/runtime/Checkpoint.h"
#include "cleave/runtime/Communicator.h"
#include "cleave/runtime/Init.h"
#include "cleave/runtime/Program.h"
#include "cleave/runtime/Safetensors.h"

#include "ProgramSupport.h"
#include "Support.h"

#include <filesystem>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <set>
#include <string>
#include <vector>

namespace cleave::rt {

/// A float scalar of `dtype` as bytes.
std::vector<uint8_t> getScalarBytes(DType dtype, double value);

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
      if (argument.kind == ArgumentKind::Stash) {
        // Per micro-batch: the pipeline binds it to the forward's result.
        pointers.push_back(nullptr);
        continue;
      }
      void *pointer = nullptr;
      CLEAVE_RETURN_IF_ERROR(add(argument.tensor, argument.kind, argument.split,
                                 pointer, argument.init));
      pointers.push_back(pointer);
      // Gradients are many; the other roles name one input each.
      if (argument.role != InputRole::None &&
          argument.role != InputRole::Gradient)
        inputsByRole[argument.role] = argument.tensor.name;
    }
    return Status::success();
  }

  /// The name of the input the bound programs give `role`, or null when
  /// none takes one.
  const char *findInput(InputRole role) const {
    auto found = inputsByRole.find(role);
    return found == inputsByRole.end() ? nullptr : found->second.c_str();
  }

  /// Allocates the tensor `spec` (split as `split`) unless some program
  /// took it already, which must agree on its type; returns its buffer.
  /// A parameter takes the initialization the programs that give one agree
  /// on.
  Status add(const TensorSpec &spec, ArgumentKind kind, const char *split,
             void *&pointer, InitRule init = {}) {
    Tensor &tensor = tensors[spec.name];
    if (tensor.init.kind == InitRule::Kind::Default)
      tensor.init = init;
    else if (init.kind != InitRule::Kind::Default &&
             (init.kind != tensor.init.kind ||
              init.stddev != tensor.init.stddev))
      return Status::error(
          std::string("programs disagree on the initialization of '") +
          spec.name + "'");
    if (!tensor.buffer) {
      tensor.spec = spec;
      tensor.kind = kind;
      tensor.split = split ? split : "";
      CLEAVE_RETURN_IF_ERROR(getBlock(mesh, split, getDims(spec.shape),
                                      coordinates, tensor.block));
      tensor.buffer = std::make_unique<DeviceBuffer>(context);
      CLEAVE_RETURN_IF_ERROR(
          tensor.buffer->allocate(getByteSize(spec), spec.name));
      order.push_back(spec.name);
    } else if (tensor.spec.dtype != spec.dtype ||
               getDims(tensor.spec.shape) != getDims(spec.shape) ||
               tensor.split != (split ? split : "")) {
      return Status::error(std::string("programs disagree on the type of '") +
                           spec.name + "'");
    }
    pointer = tensor.buffer->get();
    return Status::success();
  }

  /// Parameters as the IR's cleave.init says, from `seed`; optimizer state
  /// zero. Values are a function of (seed, name, global index), so every
  /// mesh starts from the same model.
  Status initialize(uint64_t seed) {
    std::vector<uint8_t> global, host;
    for (const std::string &name : order) {
      Tensor &tensor = tensors[name];
      if (tensor.kind == ArgumentKind::Input)
        continue;
      size_t elementBytes = getDTypeSize(tensor.spec.dtype);
      global.assign(*getNumElements(tensor.block.globalShape) * elementBytes, 0);
      InitRule rule = tensor.kind == ArgumentKind::Param
                          ? tensor.init
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

  /// This rank's block of every parameter it holds from `reader`, by name;
  /// a tensor of another float width is converted. Fails, naming the file
  /// and the tensor, when a parameter is missing or of another shape, or
  /// the file holds a tensor that is none of `modelParameters`.
  Status readParameters(const SafetensorsReader &reader,
                        const std::set<std::string> &modelParameters);

  /// The names of the parameters among `program`'s arguments.
  static void addParameters(const Program &program,
                            std::set<std::string> &names);

  /// This rank's block of each tensor `reader` holds by name: the inputs
  /// (`inputs`) or the parameters and state, but none named in `skip`.
  Status readTensors(const SafetensorsReader &reader, bool inputs,
                     const std::set<std::string> &skip) {
    std::vector<uint8_t> global;
    for (const std::string &name : order) {
      Tensor &tensor = tensors[name];
      if ((tensor.kind == ArgumentKind::Input) != inputs || skip.count(name))
        continue;
      global.resize(*getNumElements(tensor.block.globalShape) *
                    getDTypeSize(tensor.spec.dtype));
      CLEAVE_RETURN_IF_ERROR(reader.read(name, tensor.spec.dtype,
                                         tensor.block.globalShape,
                                         global.data()));
      CLEAVE_RETURN_IF_ERROR(setBlockOf(name, global.data()));
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
      if (tensor.kind == ArgumentKind::Input || !writesHere(name, tensor))
        continue;
      hosts.emplace_back(getByteSize(tensor.spec));
      CLEAVE_RETURN_IF_ERROR(context.copyToHost(
          hosts.back().data(), tensor.buffer->get(), hosts.back().size()));
      // A diverged run must not overwrite the last good checkpoint.
      if (std::optional<std::pair<uint64_t, double>> bad = findNonFiniteElement(
              tensor.spec.dtype, hosts.back().data(),
              hosts.back().size() / getDTypeSize(tensor.spec.dtype)))
        return Status::error("'" + name + "' holds " +
                             std::to_string(bad->second) + " at element " +
                             std::to_string(bad->first) + " after step " +
                             std::to_string(step) +
                             ": not writing a checkpoint of a diverged run");
      CLEAVE_RETURN_IF_ERROR(writer.add(name, tensor.spec.dtype,
                                        getDims(tensor.spec.shape),
                                        hosts.back().data()));
      // Where the block lies, so that an index pointing at another's is
      // caught on resume.
      writer.setMetadata(getCheckpointOffsetsKey(name),
                         formatOffsets(getBox(tensor).offsets));
    }
    CheckpointIndex index;
    index.mesh = mesh;
    index.metadata = metadata;
    for (const auto &[key, value] : getCheckpointFileMetadata(index))
      writer.setMetadata(key, value);
    std::string shardPath = dir + "/" + getCheckpointShardName(stepDir, rank);
    CheckpointFile written;
    CLEAVE_RETURN_IF_ERROR(writer.write(shardPath, &written.checksum));
    written.bytes = std::filesystem::file_size(shardPath, error);
    if (error)
      return Status::error("cannot read the size of '" + shardPath +
                           "': " + error.message());
    CLEAVE_RETURN_IF_ERROR(writeCheckpointChecksum(shardPath, written));
    if (communicator)
      CLEAVE_RETURN_IF_ERROR(communicator->barrier("the checkpoint's pieces"));
    if (rank == 0) {
      // Every tensor of the model: in a pipeline, other ranks hold tensors
      // this one never sees.
      std::map<std::string, PlacedTensor> all = layout;
      if (all.empty())
        for (const std::string &name : order)
          if (tensors[name].kind != ArgumentKind::Input)
            all[name] = {tensors[name].spec, tensors[name].kind,
                         tensors[name].split, 0};
      for (const auto &[name, placed] : all) {
        CheckpointTensor &entry = index.tensors[name];
        entry.dtype = placed.spec.dtype;
        for (int64_t other = 0; other < mesh.getNumDevices(); ++other) {
          std::vector<int64_t> coords = mesh.getCoordinates(other);
          if (ppAxis >= 0) {
            if (coords[ppAxis] != placed.ppIndex)
              continue;
            coords[ppAxis] = 0;
          }
          Block block;
          CLEAVE_RETURN_IF_ERROR(getBlock(mesh, placed.split.c_str(),
                                          getDims(placed.spec.shape), coords,
                                          block));
          entry.shape = block.globalShape;
          if (block.isWriter)
            entry.pieces.push_back(
                {getCheckpointShardName(stepDir, static_cast<int>(other)),
                 Box{block.offsets, block.shape}});
        }
      }
      // The files the pieces name, with the checksums their ranks left.
      for (const auto &[name, entry] : index.tensors)
        for (const CheckpointPiece &piece : entry.pieces)
          if (!index.files.count(piece.file))
            CLEAVE_RETURN_IF_ERROR(readCheckpointChecksum(
                dir + "/" + piece.file, index.files[piece.file]));
      CLEAVE_RETURN_IF_ERROR(writeCheckpointIndex(dir, index));
    }
    if (communicator)
      CLEAVE_RETURN_IF_ERROR(communicator->barrier("the checkpoint index"));
    return rank == 0 ? removeOldCheckpointSteps(dir, stepDir)
                     : Status::success();
  }

  /// A tensor of a pipeline's model: its per-rank spec and split, and the
  /// index along the pp axis of the ranks that keep it.
  struct PlacedTensor {
    TensorSpec spec{};
    ArgumentKind kind = ArgumentKind::Param;
    std::string split;
    int64_t ppIndex = 0;
  };
  /// Pipeline stages hold different tensors: a checkpoint takes each from
  /// the ranks at its pp index only (the owner of a parameter that several
  /// stages read), and its index lists `model`, every parameter and state
  /// tensor of every stage.
  void setPipelineLayout(int64_t axis, std::map<std::string, PlacedTensor> model) {
    ppAxis = axis;
    layout = std::move(model);
  }

  const Mesh &getMesh() const { return mesh; }
  const std::vector<int64_t> &getCoordinates() const { return coordinates; }

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
    InitRule init;
    std::string split;
    Block block;
    std::unique_ptr<DeviceBuffer> buffer;
  };
  /// Whether this rank writes `tensor` into a checkpoint.
  bool writesHere(const std::string &name, const Tensor &tensor) {
    if (ppAxis < 0)
      return tensor.block.isWriter;
    auto placed = layout.find(name);
    if (placed == layout.end() || placed->second.ppIndex != coordinates[ppAxis])
      return false;
    std::vector<int64_t> coords = coordinates;
    coords[ppAxis] = 0;
    Block block;
    return getBlock(mesh, tensor.split.c_str(), getDims(tensor.spec.shape),
                    coords, block)
               .ok() &&
           block.isWriter;
  }
  static Box getBox(const Tensor &tensor) {
    return Box{tensor.block.offsets, tensor.block.shape};
  }

  Context &context;
  Communicator *communicator;
  Mesh mesh;
  std::vector<int64_t> coordinates;
  int rank = 0;
  std::map<std::string, Tensor> tensors;
  std::map<InputRole, std::string> inputsByRole;
  std::vector<std::string> order;
  int64_t ppAxis = -1;
  std::map<std::string, PlacedTensor> layout;
};

/// The index of the result named `name`, or -1.
int findResult(const Program &program, const char *name);

/// The index of the first result of `program` with role `role`, or -1.
int findResult(const Program &program, OutputRole role);

/// Reads scalar result `index` as a double.
Status readResult(Context &context, const Program &program,
                  const std::vector<void *> &results, int index,
                  double &value);

/// Copies each result marked `updates` into the argument it updates.
Status applyUpdates(Context &context, const Program &program,
                    const std::vector<void *> &arguments,
                    const std::vector<void *> &results);

/// The name of the table the tokens of `program` index (an embedding's,
/// the vocabulary's rows), or null when it takes no tokens or they index
/// none of its arguments.
const char *getTokenTable(const Program &program);

/// The global [batch, seq] shape of `program`'s i32 input `tokens` (and of
/// `targets`, which must agree, where it takes that too), found from the
/// block of the rank at `coordinates` of `mesh` in a partitioned program.
/// An error when the program takes no tokens.
Status getTokensShape(const Program &program, const Mesh &mesh,
                      const std::vector<int64_t> &coordinates,
                      std::vector<int64_t> &shape);

/// Adds `1 / microBatches` of each gradient result (OutputRole::Gradient)
/// of `program` into the state's tensor of that name, overwriting it the
/// first time this step (names not yet in `accumulated`, which collects them).
Status accumulateGradients(Context &context, TrainingState &state,
                           const Program &program,
                           const std::vector<void *> &results,
                           int64_t microBatches,
                           std::set<std::string> &accumulated);

/// Sets the inputs to micro-batch j of the current step.
using BatchLoader = std::function<Status(int64_t j)>;

/// How the training loop runs the programs of one optimizer step.
/// How the training loop reduces the data-parallel gradients it
/// completes itself (GradientReducer): bucket size, and whether buckets
/// start as soon as they fill (--bucket-mb, --overlap).
struct ReductionOptions {
  double bucketBytes = kDefaultBucketBytes;
  bool overlap = true;
  /// Whether the command line set them: a program that reduces nothing in
  /// the loop and starts no collectives of its own (cleave.wait) refuses
  /// them. Started collectives launch in groups of up to bucketBytes, and
  /// --overlap 0 finishes each group where it starts.
  bool bucketGiven = false;
  bool overlapGiven = false;
};

/// Applies `options` to the collectives the programs start, or refuses
/// them where nothing would use them (`reducesInLoop`: the loop reduces
/// gradients itself; `startsCollectives`: a program starts collectives).
Status applyReductionOptions(const ReductionOptions &options,
                             bool reducesInLoop, bool startsCollectives,
                             Communicator *communicator);

class StepExecutor {
public:
  virtual ~StepExecutor() = default;
  /// The program that names the run in checkpoints and errors.
  virtual const Program &getMainProgram() const = 0;
  /// The mesh every program shares, or null on one process.
  virtual const MeshSpec *getMesh() const = 0;
  /// Binds the programs this rank runs (once the communicator exists) and
  /// checks them against the --micro-batches the loop was given.
  virtual Status bind(TrainingState &state, int64_t microBatches,
                      const ReductionOptions &reductions) = 0;
  /// The micro-batches per step the programs record, taken when the command
  /// line gives none.
  virtual int64_t getBuiltMicroBatches() const = 0;
  virtual uint64_t getArenaBytes() const = 0;
  /// Whether this rank prints the job's log.
  virtual bool isLogger() const = 0;
  /// The program that takes the token inputs: their shape is the
  /// micro-batch's (getTokensShape).
  virtual const Program &getTokensProgram() const = 0;
  /// Every parameter of the model, whether this rank holds it or not (a
  /// pipeline rank holds only its stages').
  virtual std::set<std::string> getModelParameters() const = 0;
  /// Runs one step; `loss` is the micro-batches' mean (on the logger),
  /// `norm` the gradient norm before clipping (NaN when not computed).
  virtual Status runStep(TrainingState &state, int64_t microBatches,
                         const BatchLoader &loadBatch, uint8_t *arena,
                         double &loss, double &norm) = 0;
};

/// The executor of a pipeline's schedule (PipelineExecutor.cpp).
std::unique_ptr<StepExecutor>
createPipelineExecutor(const PipelineProgram &pipeline, Context &context);

} // namespace cleave::rt

#endif // CLEAVE_RUNTIME_SRC_TRAININGSTATE_H
