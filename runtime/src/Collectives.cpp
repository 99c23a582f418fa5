//===- Collectives.cpp - Collectives on blocks of any dimension -----------===//
//
// Built into each backend library. The backends move contiguous buffers in
// group order; a split along an inner dimension is not contiguous, so these
// entry points stage blocks through scratch with the slice kernels.
//
//===----------------------------------------------------------------------===//

#include "cleave/runtime/Communicator.h"
#include "cleave/runtime/Profile.h"

#include "Trace.h"

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <string>

namespace cleave::rt {

Communicator::~Communicator() = default;

Status Communicator::drain(const char *) { return Status::success(); }
Status Communicator::completeSends(const char *what) { return drain(what); }
Status Communicator::postReceive(int, int64_t, int64_t, size_t, const char *) {
  return Status::success();
}

Status Communicator::startCollectives(int group, CollectiveKind kind,
                                      const std::vector<CollectiveItem> &items,
                                      const char *what, int &request) {
  request = -1;
  for (const CollectiveItem &item : items) {
    switch (kind) {
    case CollectiveKind::AllReduce:
      CLEAVE_RETURN_IF_ERROR(allReduce(group, item.dtype, item.input,
                                       item.output, item.count, ReduceKind::Sum,
                                       what));
      break;
    case CollectiveKind::ReduceScatter:
      CLEAVE_RETURN_IF_ERROR(reduceScatter(
          group, item.dtype, item.input, item.output,
          item.count / getGroupSize(group), ReduceKind::Sum, what));
      break;
    case CollectiveKind::AllGather:
      CLEAVE_RETURN_IF_ERROR(allGather(group, item.input, item.output,
                                       item.count * getDTypeSize(item.dtype),
                                       what));
      break;
    }
  }
  return Status::success();
}

Status Communicator::queueStarted(int group, CollectiveKind kind,
                                  const CollectiveItem &item,
                                  const char *location) {
  if (!queued.items.empty() && (queued.group != group || queued.kind != kind ||
                                queued.dtype != item.dtype))
    CLEAVE_RETURN_IF_ERROR(launchStarted(location));
  if (startedRequests.count(item.output))
    return Status::error(std::string(location) +
                         ": a collective starts into a buffer whose "
                         "collective has not been waited for");
  queued.group = group;
  queued.kind = kind;
  queued.dtype = item.dtype;
  queued.items.push_back(item);
  queued.bytes += double(item.count) * getDTypeSize(item.dtype);
  if (queued.bytes >= startedBucketBytes)
    return launchStarted(location);
  return Status::success();
}

Status Communicator::launchStarted(const char *location) {
  if (queued.items.empty())
    return Status::success();
  int request = -1;
  double start = Trace::now();
  Status status = startCollectives(queued.group, queued.kind, queued.items,
                                   location, request);
  for (const CollectiveItem &item : queued.items)
    startedRequests[item.output] = request;
  if (Trace::get() && request >= 0 && waitsOnHost()) {
    static const char *const kNames[] = {"all_reduce", "reduce_scatter",
                                         "all_gather"};
    tracedGroups[request] = {
        start, std::string(kNames[static_cast<int>(queued.kind)]) + " x" +
                   std::to_string(queued.items.size()) + " over " +
                   describeGroup(queued.group) + " (" +
                   std::to_string(static_cast<int64_t>(queued.bytes)) + " B)"};
  }
  queued.items.clear();
  queued.bytes = 0;
  CLEAVE_RETURN_IF_ERROR(status);
  if (overlapStarted || request < 0)
    return Status::success();
  return finishGroup(request, location);
}

Status Communicator::finishGroup(int request, const char *location) {
  if (!tracedGroups.count(request))
    return waitCollectives(request, location);
  // A wait the host spends on a group still in flight: on the compute lane.
  double start = Trace::now();
  CLEAVE_RETURN_IF_ERROR(waitCollectives(request, location));
  if (Trace *trace = Trace::get())
    trace->add("communication", "wait for started collectives", start,
               Trace::now());
  endTracedGroup(request);
  return Status::success();
}

void Communicator::endTracedGroup(int request) {
  auto found = tracedGroups.find(request);
  if (found == tracedGroups.end())
    return;
  if (Trace *trace = Trace::get())
    trace->add("reduction", found->second.name, found->second.start,
               Trace::now());
  tracedGroups.erase(found);
}

Status Communicator::awaitStarted(const void *output, const char *location) {
  CLEAVE_RETURN_IF_ERROR(launchStarted(location));
  auto found = startedRequests.find(output);
  if (found == startedRequests.end())
    return Status::error(std::string(location) +
                         ": waits for a collective that was not started");
  int request = found->second;
  startedRequests.erase(found);
  return finishGroup(request, location);
}

void Communicator::progressStarted() {
  int last = -1;
  for (const auto &[output, request] : startedRequests) {
    bool done = false;
    // A failure surfaces in the wait.
    if (request != last && request >= 0 &&
        testCollectives(request, done).ok() && done)
      endTracedGroup(request);
    last = request;
  }
}

Status Communicator::testCollectives(int, bool &done) {
  done = true;
  return Status::success();
}

Status Communicator::waitCollectives(int, const char *) {
  return Status::success();
}

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

Status Communicator::abortJobOnError(Status status) {
  if (status.ok() || size <= 1)
    return status;
  std::fprintf(stderr, "cleave: rank %d: error: %s\n", rank,
               status.message().c_str());
  std::fflush(stderr);
  abortJob(1);
  std::_Exit(1);
}

Status Communicator::setUpDeviceIndices() {
  std::vector<int32_t> indices;
  for (int group = 0; group < getNumGroups(); ++group)
    indices.push_back(static_cast<int32_t>(getGroupIndex(group)));
  groupIndices = std::make_unique<DeviceBuffer>(context);
  size_t bytes = std::max<size_t>(1, indices.size()) * sizeof(int32_t);
  CLEAVE_RETURN_IF_ERROR(groupIndices->allocate(bytes, "group indices"));
  if (indices.empty())
    return Status::success();
  return context.copyToDevice(groupIndices->get(), indices.data(),
                              indices.size() * sizeof(int32_t));
}

int64_t Communicator::getGroupIndex(int group) const {
  return mesh.getGroupIndex(groups[group], coordinates);
}

int Communicator::getGroupColor(int group) const {
  std::vector<int64_t> origin = coordinates;
  for (int axis : groups[group])
    origin[axis] = 0;
  return static_cast<int>(mesh.getRank(origin));
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

/// Scratch for staging blocks. Growing it frees the old buffer, which on
/// CUDA waits for the device: queued collectives are drained first, under
/// the timeout.
Status getStagingScratch(Context &context, Communicator &communicator,
                         ScratchSlot slot, size_t bytes, void **pointer,
                         const char *location) {
  if (context.getScratchCapacity(slot) < bytes)
    CLEAVE_RETURN_IF_ERROR(communicator.drain(location));
  return context.getScratch(slot, bytes, pointer);
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

/// A reduce-scatter's dimension must split evenly over the `n` ranks.
Status checkSplits(const Shape &shape, int dim, int64_t n,
                   const char *location) {
  if (shape.dims[dim] % n == 0)
    return Status::success();
  return Status::error(std::string(location) +
                       ": reduce_scatter dimension does not split over " +
                       std::to_string(n) + " ranks");
}

/// Copies the `n` blocks of `blockShape` lying side by side along `dim` in
/// `whole` into contiguous `blocks`, in order.
Status gatherBlocks(Context &context, size_t elementBytes, const Shape &whole,
                    const Shape &blockShape, int dim, int64_t n,
                    const void *input, void *blocks, const char *location) {
  size_t blockBytes = getCount(blockShape) * elementBytes;
  int64_t offsets[kMaxRank] = {};
  for (int64_t i = 0; i < n; ++i) {
    offsets[dim] = i * blockShape.dims[dim];
    CLEAVE_RETURN_IF_ERROR(extractSlice(
        context, elementBytes, whole, offsets, blockShape, input,
        static_cast<uint8_t *>(blocks) + i * blockBytes, location));
  }
  return Status::success();
}

/// The inverse: writes `n` contiguous blocks side by side along `dim`.
Status scatterBlocks(Context &context, size_t elementBytes,
                     const Shape &blockShape, int dim, int64_t n,
                     const void *blocks, void *output, const char *location) {
  size_t blockBytes = getCount(blockShape) * elementBytes;
  Shape whole = withDim(blockShape, dim, blockShape.dims[dim] * n);
  int64_t offsets[kMaxRank] = {};
  for (int64_t i = 0; i < n; ++i) {
    offsets[dim] = i * blockShape.dims[dim];
    CLEAVE_RETURN_IF_ERROR(insertSlice(
        context, elementBytes, blockShape, offsets, whole,
        static_cast<const uint8_t *>(blocks) + i * blockBytes, output,
        location));
  }
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
  CLEAVE_RETURN_IF_ERROR(getStagingScratch(context, *communicator,
                                           ScratchSlot::CollectiveReceive,
                                           blockBytes * n, &gathered, location));
  CLEAVE_RETURN_IF_ERROR(
      communicator->allGather(group, input, gathered, blockBytes, location));
  return scatterBlocks(context, elementBytes, inputShape, dim, n, gathered,
                       output, location);
}

Status reduceScatter(Context &context, int group, DType dtype,
                     const Shape &inputShape, int dim, ReduceKind kind,
                     const void *input, void *output, const char *location) {
  Communicator *communicator;
  CLEAVE_RETURN_IF_ERROR(getCommunicator(context, group, "reduce_scatter",
                                         location, communicator));
  CLEAVE_RETURN_IF_ERROR(checkDim(inputShape, dim, "reduce_scatter", location));
  int64_t n = communicator->getGroupSize(group);
  CLEAVE_RETURN_IF_ERROR(checkSplits(inputShape, dim, n, location));
  size_t elementBytes = getDTypeSize(dtype);
  int64_t blockCount = getCount(inputShape) / n;
  communicator->countBytes(group, double(getCount(inputShape)) * elementBytes,
                           false);
  if (getOuterCount(inputShape, dim) == 1)
    return communicator->reduceScatter(group, dtype, input, output, blockCount,
                                       kind, location);
  // Lay the blocks out contiguously in group order first.
  void *blocks;
  CLEAVE_RETURN_IF_ERROR(getStagingScratch(
      context, *communicator, ScratchSlot::CollectiveSend,
      blockCount * n * elementBytes, &blocks, location));
  CLEAVE_RETURN_IF_ERROR(gatherBlocks(
      context, elementBytes, inputShape,
      withDim(inputShape, dim, inputShape.dims[dim] / n), dim, n, input,
      blocks, location));
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
  CLEAVE_RETURN_IF_ERROR(getStagingScratch(context, *communicator,
                                           ScratchSlot::CollectiveSend,
                                           count * elementBytes, &sent, location));
  CLEAVE_RETURN_IF_ERROR(getStagingScratch(
      context, *communicator, ScratchSlot::CollectiveReceive,
      count * elementBytes, &received, location));
  Shape pieceShape = withDim(inputShape, splitDim, inputShape.dims[splitDim] / n);
  CLEAVE_RETURN_IF_ERROR(gatherBlocks(context, elementBytes, inputShape,
                                      pieceShape, splitDim, n, input, sent,
                                      location));
  CLEAVE_RETURN_IF_ERROR(
      communicator->allToAll(group, sent, received, pieceBytes, location));
  return scatterBlocks(context, elementBytes, pieceShape, concatDim, n,
                       received, output, location);
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

/// A peer must be another index of the group.
static Status checkPeer(Communicator &communicator, int group, int64_t peer,
                        const char *op, const char *location) {
  if (peer < 0 || peer >= communicator.getGroupSize(group) ||
      peer == communicator.getGroupIndex(group))
    return Status::error(std::string(location) + ": " + op + " to peer " +
                         std::to_string(peer) + " of a group of " +
                         std::to_string(communicator.getGroupSize(group)) +
                         " where this rank is " +
                         std::to_string(communicator.getGroupIndex(group)));
  return Status::success();
}

Status sendTo(Context &context, int group, int64_t peer, int64_t tag,
              size_t bytes, const void *input, const char *location) {
  Communicator *communicator;
  CLEAVE_RETURN_IF_ERROR(
      getCommunicator(context, group, "send", location, communicator));
  CLEAVE_RETURN_IF_ERROR(
      checkPeer(*communicator, group, peer, "send", location));
  communicator->countTransfer(static_cast<double>(bytes));
  TraceScope trace("communication", "send");
  return communicator->send(group, peer, tag, input, bytes, location);
}

Status receiveFrom(Context &context, int group, int64_t peer, int64_t tag,
                   size_t bytes, void *output, const char *location) {
  Communicator *communicator;
  CLEAVE_RETURN_IF_ERROR(
      getCommunicator(context, group, "recv", location, communicator));
  CLEAVE_RETURN_IF_ERROR(
      checkPeer(*communicator, group, peer, "recv", location));
  TraceScope trace("communication", "recv");
  return communicator->receive(group, peer, tag, output, bytes, location);
}

Status deviceIndex(Context &context, int group, int32_t *output,
                   const char *location) {
  Communicator *communicator;
  CLEAVE_RETURN_IF_ERROR(
      getCommunicator(context, group, "device_index", location, communicator));
  return context.copyOnDevice(
      output, communicator->getDeviceGroupIndices() + group, sizeof(int32_t));
}

ResultListener::~ResultListener() = default;

Status resultReady(Context &context, int result, const void *data) {
  if (ResultListener *listener = context.getResultListener())
    return listener->onResultReady(result, data);
  return Status::error("result " + std::to_string(result) +
                       " is a pending sum that only the training loop "
                       "completes: run the program through its training "
                       "command");
}

Status awaitInput(Context &context, const void *data) {
  ResultListener *listener = context.getResultListener();
  return listener ? listener->onInputRead(data) : Status::success();
}

namespace {

/// A start's communicator, after checking that its blocks are contiguous
/// (cleave-overlap-collectives starts no other).
Status getStartCommunicator(Context &context, int group, const Shape &shape,
                            int dim, const char *op, const char *location,
                            Communicator *&communicator) {
  CLEAVE_RETURN_IF_ERROR(
      getCommunicator(context, group, op, location, communicator));
  CLEAVE_RETURN_IF_ERROR(checkDim(shape, dim, op, location));
  if (getOuterCount(shape, dim) != 1)
    return Status::error(std::string(location) + ": " + op +
                         " is started along dimension " + std::to_string(dim) +
                         ", whose blocks are not contiguous");
  return Status::success();
}

} // namespace

Status startAllReduce(Context &context, int group, DType dtype, int64_t count,
                      const void *input, void *output, const char *location) {
  Communicator *communicator;
  CLEAVE_RETURN_IF_ERROR(
      getCommunicator(context, group, "all_reduce", location, communicator));
  communicator->countBytes(group, double(count) * getDTypeSize(dtype), true);
  return communicator->queueStarted(group,
                                    Communicator::CollectiveKind::AllReduce,
                                    {dtype, input, output, count}, location);
}

Status startAllGather(Context &context, int group, size_t elementBytes,
                      const Shape &inputShape, int dim, const void *input,
                      void *output, const char *location) {
  Communicator *communicator;
  CLEAVE_RETURN_IF_ERROR(getStartCommunicator(
      context, group, inputShape, dim, "all_gather", location, communicator));
  size_t blockBytes = getCount(inputShape) * elementBytes;
  communicator->countBytes(
      group, double(blockBytes) * communicator->getGroupSize(group), false);
  // Gathers move bytes: counted in the narrowest type.
  return communicator->queueStarted(
      group, Communicator::CollectiveKind::AllGather,
      {DType::U8, input, output, static_cast<int64_t>(blockBytes)}, location);
}

Status startReduceScatter(Context &context, int group, DType dtype,
                          const Shape &inputShape, int dim, const void *input,
                          void *output, const char *location) {
  Communicator *communicator;
  CLEAVE_RETURN_IF_ERROR(getStartCommunicator(context, group, inputShape, dim,
                                              "reduce_scatter", location,
                                              communicator));
  CLEAVE_RETURN_IF_ERROR(checkSplits(
      inputShape, dim, communicator->getGroupSize(group), location));
  int64_t count = getCount(inputShape);
  communicator->countBytes(group, double(count) * getDTypeSize(dtype), false);
  return communicator->queueStarted(group,
                                    Communicator::CollectiveKind::ReduceScatter,
                                    {dtype, input, output, count}, location);
}

void progressStartedCollectives(Context &context) {
  Communicator *communicator = context.getCommunicator();
  if (!communicator)
    return;
  if (communicator->hasStarted())
    communicator->progressStarted();
  communicator->progressTransfers();
}

Status launchCollectives(Context &context, const char *location) {
  Communicator *communicator = context.getCommunicator();
  return communicator ? communicator->launchStarted(location)
                      : Status::success();
}

Status waitCollective(Context &context, const void *output,
                      const char *location) {
  Communicator *communicator = context.getCommunicator();
  if (!communicator)
    return Status::error(std::string(location) +
                         ": waits for a collective, but this process has "
                         "no communicator");
  return communicator->awaitStarted(output, location);
}

} // namespace cleave::rt
