//===- Collectives.cpp - Collectives on blocks of any dimension -----------===//
//
// Built into each backend library. The backends move contiguous buffers in
// group order; a split along an inner dimension is not contiguous, so these
// entry points stage blocks through scratch with the slice kernels.
//
//===----------------------------------------------------------------------===//

#include "cleave/runtime/Communicator.h"

#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <string>

namespace cleave::rt {

Communicator::~Communicator() = default;

Status Communicator::drain(const char *) { return Status::success(); }

Status Communicator::setUp(const MeshSpec &spec, int rankValue, int sizeValue) {
  rank = rankValue;
  size = sizeValue;
  mesh = Mesh::fromSpec(spec);
  if (mesh.getNumDevices() != size)
    return Status::error("the program is partitioned for mesh " +
                         mesh.toString() + " (" +
                         std::to_string(mesh.getNumDevices()) +
                         " ranks) but the job has " + std::to_string(size) +
                         " ranks; launch it with mpirun -np " +
                         std::to_string(mesh.getNumDevices()));
  coordinates = mesh.getCoordinates(rank);
  groups.clear();
  for (int i = 0; i < spec.numGroups; ++i) {
    groups.emplace_back();
    CLEAVE_RETURN_IF_ERROR(mesh.parseAxes(spec.groups[i], groups.back()));
  }
  return getCollectiveTimeout(timeoutSeconds);
}

int64_t Communicator::getGroupIndex(int group) const {
  return mesh.getGroupIndex(groups[group], coordinates);
}

int64_t Communicator::getGroupSize(int group) const {
  return mesh.getGroupSize(groups[group]);
}

std::string Communicator::describeGroup(int group) const {
  std::string text = "[";
  for (size_t i = 0; i < groups[group].size(); ++i)
    text += (i ? ", " : "") + mesh.axes[groups[group][i]];
  return text + "]";
}

Status Communicator::checkGroup(int group, const char *op,
                                const char *location) const {
  if (group < 0 || group >= getNumGroups())
    return Status::error(std::string(location) + ": " + op + " names group " +
                         std::to_string(group) + " of " +
                         std::to_string(getNumGroups()));
  return Status::success();
}

void Communicator::countBytes(int group, double bytes, bool isAllReduce) {
  double n = static_cast<double>(getGroupSize(group));
  communicatedBytes += (isAllReduce ? 2.0 : 1.0) * (n - 1.0) / n * bytes;
}

void Communicator::failTimeout(const char *op, int group,
                               const char *location) {
  std::fprintf(stderr,
               "cleave: rank %d (mesh %s at [", rank, mesh.toString().c_str());
  for (size_t i = 0; i < coordinates.size(); ++i)
    std::fprintf(stderr, "%s%lld", i ? ", " : "",
                 static_cast<long long>(coordinates[i]));
  std::fprintf(stderr,
               "]): %s over %s at %s did not finish within %g s: a peer rank "
               "failed or is stuck; aborting the job\n",
               op, group >= 0 ? describeGroup(group).c_str() : "all ranks",
               location, timeoutSeconds);
  std::fflush(stderr);
  abortJob(1);
  std::_Exit(1);
}

Status getCollectiveTimeout(double &seconds) {
  seconds = kDefaultCollectiveTimeout;
  const char *text = std::getenv("CLEAVE_COLLECTIVE_TIMEOUT");
  if (!text || !*text)
    return Status::success();
  char *end = nullptr;
  double value = std::strtod(text, &end);
  if (*end || !(value > 0))
    return Status::error(std::string("CLEAVE_COLLECTIVE_TIMEOUT must be a "
                                     "positive number of seconds, got '") +
                         text + "'");
  seconds = value;
  return Status::success();
}

int getLocalRank() {
  for (const char *name : {"OMPI_COMM_WORLD_LOCAL_RANK", "SLURM_LOCALID",
                           "MPI_LOCALRANKID", "LOCAL_RANK"})
    if (const char *value = std::getenv(name))
      return std::atoi(value);
  return 0;
}

namespace {

Status getCommunicator(Context &context, int group, const char *op,
                       const char *location, Communicator *&communicator) {
  communicator = context.getCommunicator();
  if (!communicator)
    return Status::error(std::string(location) + ": " + op +
                         " needs the ranks of a mesh, but this process has "
                         "no communicator");
  return communicator->checkGroup(group, op, location);
}

int64_t getCount(const Shape &shape) {
  int64_t count = 1;
  for (int d = 0; d < shape.rank; ++d)
    count *= shape.dims[d];
  return count;
}

/// Elements before `dim`: 1 when blocks along `dim` are contiguous.
int64_t getOuterCount(const Shape &shape, int dim) {
  int64_t count = 1;
  for (int d = 0; d < dim; ++d)
    count *= shape.dims[d];
  return count;
}

Shape withDim(Shape shape, int dim, int64_t size) {
  shape.dims[dim] = size;
  return shape;
}

Status checkDim(const Shape &shape, int dim, const char *op,
                const char *location) {
  if (dim < 0 || dim >= shape.rank)
    return Status::error(std::string(location) + ": " + op + " dimension " +
                         std::to_string(dim) + " is out of range");
  return Status::success();
}

} // namespace

Status allReduce(Context &context, int group, DType dtype, int64_t count,
                 ReduceKind kind, const void *input, void *output,
                 const char *location) {
  Communicator *communicator;
  CLEAVE_RETURN_IF_ERROR(
      getCommunicator(context, group, "all_reduce", location, communicator));
  communicator->countBytes(group, double(count) * getDTypeSize(dtype), true);
  return communicator->allReduce(group, dtype, input, output, count, kind,
                                 location);
}

Status allGather(Context &context, int group, size_t elementBytes,
                 const Shape &inputShape, int dim, const void *input,
                 void *output, const char *location) {
  Communicator *communicator;
  CLEAVE_RETURN_IF_ERROR(
      getCommunicator(context, group, "all_gather", location, communicator));
  CLEAVE_RETURN_IF_ERROR(checkDim(inputShape, dim, "all_gather", location));
  int64_t n = communicator->getGroupSize(group);
  size_t blockBytes = getCount(inputShape) * elementBytes;
  communicator->countBytes(group, double(blockBytes) * n, false);
  if (getOuterCount(inputShape, dim) == 1)
    return communicator->allGather(group, input, output, blockBytes, location);
  void *gathered;
  CLEAVE_RETURN_IF_ERROR(context.getScratch(ScratchSlot::CollectiveReceive,
                                            blockBytes * n, &gathered));
  CLEAVE_RETURN_IF_ERROR(
      communicator->allGather(group, input, gathered, blockBytes, location));
  Shape outputShape = withDim(inputShape, dim, inputShape.dims[dim] * n);
  int64_t offsets[kMaxRank] = {};
  for (int64_t i = 0; i < n; ++i) {
    offsets[dim] = i * inputShape.dims[dim];
    CLEAVE_RETURN_IF_ERROR(insertSlice(
        context, elementBytes, inputShape, offsets, outputShape,
        static_cast<const uint8_t *>(gathered) + i * blockBytes, output,
        location));
  }
  return Status::success();
}

Status reduceScatter(Context &context, int group, DType dtype,
                     const Shape &inputShape, int dim, ReduceKind kind,
                     const void *input, void *output, const char *location) {
  Communicator *communicator;
  CLEAVE_RETURN_IF_ERROR(getCommunicator(context, group, "reduce_scatter",
                                         location, communicator));
  CLEAVE_RETURN_IF_ERROR(checkDim(inputShape, dim, "reduce_scatter", location));
  int64_t n = communicator->getGroupSize(group);
  if (inputShape.dims[dim] % n != 0)
    return Status::error(std::string(location) +
                         ": reduce_scatter dimension does not split over " +
                         std::to_string(n) + " ranks");
  size_t elementBytes = getDTypeSize(dtype);
  int64_t blockCount = getCount(inputShape) / n;
  communicator->countBytes(group, double(getCount(inputShape)) * elementBytes,
                           false);
  if (getOuterCount(inputShape, dim) == 1)
    return communicator->reduceScatter(group, dtype, input, output, blockCount,
                                       kind, location);
  // Lay the blocks out contiguously in group order first.
  void *blocks;
  CLEAVE_RETURN_IF_ERROR(context.getScratch(
      ScratchSlot::CollectiveSend, blockCount * n * elementBytes, &blocks));
  Shape blockShape = withDim(inputShape, dim, inputShape.dims[dim] / n);
  int64_t offsets[kMaxRank] = {};
  for (int64_t i = 0; i < n; ++i) {
    offsets[dim] = i * blockShape.dims[dim];
    CLEAVE_RETURN_IF_ERROR(extractSlice(
        context, elementBytes, inputShape, offsets, blockShape, input,
        static_cast<uint8_t *>(blocks) + i * blockCount * elementBytes,
        location));
  }
  return communicator->reduceScatter(group, dtype, blocks, output, blockCount,
                                     kind, location);
}

Status allToAll(Context &context, int group, size_t elementBytes,
                const Shape &inputShape, int splitDim, int concatDim,
                const void *input, void *output, const char *location) {
  Communicator *communicator;
  CLEAVE_RETURN_IF_ERROR(
      getCommunicator(context, group, "all_to_all", location, communicator));
  CLEAVE_RETURN_IF_ERROR(checkDim(inputShape, splitDim, "all_to_all", location));
  CLEAVE_RETURN_IF_ERROR(checkDim(inputShape, concatDim, "all_to_all", location));
  int64_t n = communicator->getGroupSize(group);
  if (inputShape.dims[splitDim] % n != 0)
    return Status::error(std::string(location) +
                         ": all_to_all split dimension does not split over " +
                         std::to_string(n) + " ranks");
  int64_t count = getCount(inputShape);
  size_t pieceBytes = count / n * elementBytes;
  communicator->countBytes(group, double(count) * elementBytes, false);
  void *sent, *received;
  CLEAVE_RETURN_IF_ERROR(
      context.getScratch(ScratchSlot::CollectiveSend, count * elementBytes, &sent));
  CLEAVE_RETURN_IF_ERROR(context.getScratch(ScratchSlot::CollectiveReceive,
                                            count * elementBytes, &received));
  Shape pieceShape = withDim(inputShape, splitDim, inputShape.dims[splitDim] / n);
  int64_t offsets[kMaxRank] = {};
  for (int64_t i = 0; i < n; ++i) {
    offsets[splitDim] = i * pieceShape.dims[splitDim];
    CLEAVE_RETURN_IF_ERROR(extractSlice(
        context, elementBytes, inputShape, offsets, pieceShape, input,
        static_cast<uint8_t *>(sent) + i * pieceBytes, location));
  }
  CLEAVE_RETURN_IF_ERROR(
      communicator->allToAll(group, sent, received, pieceBytes, location));
  Shape outputShape =
      withDim(pieceShape, concatDim, pieceShape.dims[concatDim] * n);
  for (int64_t i = 0; i < n; ++i) {
    int64_t at[kMaxRank] = {};
    at[concatDim] = i * pieceShape.dims[concatDim];
    CLEAVE_RETURN_IF_ERROR(insertSlice(
        context, elementBytes, pieceShape, at, outputShape,
        static_cast<const uint8_t *>(received) + i * pieceBytes, output,
        location));
  }
  return Status::success();
}

Status localSlice(Context &context, int group, size_t elementBytes,
                  const Shape &inputShape, int dim, const void *input,
                  void *output, const char *location) {
  Communicator *communicator;
  CLEAVE_RETURN_IF_ERROR(
      getCommunicator(context, group, "local_slice", location, communicator));
  CLEAVE_RETURN_IF_ERROR(checkDim(inputShape, dim, "local_slice", location));
  int64_t n = communicator->getGroupSize(group);
  Shape blockShape = withDim(inputShape, dim, inputShape.dims[dim] / n);
  int64_t offsets[kMaxRank] = {};
  offsets[dim] = communicator->getGroupIndex(group) * blockShape.dims[dim];
  return extractSlice(context, elementBytes, inputShape, offsets, blockShape,
                      input, output, location);
}

Status deviceIndex(Context &context, int group, int32_t *output,
                   const char *location) {
  Communicator *communicator;
  CLEAVE_RETURN_IF_ERROR(
      getCommunicator(context, group, "device_index", location, communicator));
  int32_t index = static_cast<int32_t>(communicator->getGroupIndex(group));
  return context.copyToDevice(output, &index, sizeof(index));
}

} // namespace cleave::rt
