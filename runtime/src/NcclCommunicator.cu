//===- NcclCommunicator.cu - The CUDA backend's collectives: NCCL ---------===//
//
// NCCL is bootstrapped over MPI: rank 0's unique id is broadcast, the world
// communicator is created, and each axis group splits off its own with
// ncclCommSplit. Collectives are queued on the context's stream; each is
// followed by an event, and drain() waits for the events with a deadline,
// so a collective a dead peer never completes is named and the job aborted
// (ncclCommAbort first, so the stream does not hang on the way out).
//
// The training loop's gradient reductions run on a stream of their own,
// on communicators split for them, ordered with the compute stream by
// events: they overlap the backward that is still computing.
//
// CLEAVE_COLLECTIVES=mpi selects MPI staged through host memory instead.
//
//===----------------------------------------------------------------------===//

#include "MpiCommunicator.h"

#include <cuda_runtime.h>
#include <nccl.h>

#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <map>
#include <memory>
#include <string>
#include <thread>
#include <vector>

namespace cleave::rt {
namespace {

Status checkNccl(ncclResult_t result, const std::string &what) {
  if (result == ncclSuccess || result == ncclInProgress)
    return Status::success();
  return Status::error(what + ": " + ncclGetErrorString(result) + " (" +
                       ncclGetLastError(nullptr) + ")");
}

class NcclCommunicator final : public Communicator {
public:
  explicit NcclCommunicator(Context &context) : Communicator(context) {}

  ~NcclCommunicator() override {
    for (const Pending &pending : queue)
      cudaEventDestroy(pending.event);
    for (auto &[request, event] : reductions)
      cudaEventDestroy(event);
    for (std::vector<ncclComm_t> *list : {&comms, &reductionComms})
      for (ncclComm_t comm : *list)
        ncclCommDestroy(comm);
    if (reductionStream)
      cudaStreamDestroy(reductionStream);
    if (world)
      ncclCommDestroy(world);
  }

  Status initialize(const MeshSpec &spec) {
    int worldRank = 0, worldSize = 1;
    CLEAVE_RETURN_IF_ERROR(initializeMpi(worldRank, worldSize));
    CLEAVE_RETURN_IF_ERROR(setUp(spec, worldRank, worldSize));
    return abortJobOnError(createComms());
  }

  /// The world communicator (rank 0's id broadcast over MPI), then one per
  /// group, split off it.
  Status createComms() {
    ncclUniqueId id;
    if (rank == 0)
      CLEAVE_RETURN_IF_ERROR(checkNccl(ncclGetUniqueId(&id), "ncclGetUniqueId"));
    CLEAVE_RETURN_IF_ERROR(broadcastFromRootMpi(&id, sizeof(id)));
    CLEAVE_RETURN_IF_ERROR(checkNccl(ncclCommInitRank(&world, size, id, rank),
                                     "ncclCommInitRank on rank " +
                                         std::to_string(rank)));
    for (int group = 0; group < getNumGroups(); ++group) {
      ncclComm_t comm = nullptr;
      CLEAVE_RETURN_IF_ERROR(checkNccl(
          ncclCommSplit(world, getGroupColor(group),
                        static_cast<int>(getGroupIndex(group)), &comm, nullptr),
          "ncclCommSplit for axes " + describeGroup(group)));
      comms.push_back(comm);
      ncclComm_t reductionComm = nullptr;
      CLEAVE_RETURN_IF_ERROR(
          checkNccl(ncclCommSplit(world, getGroupColor(group),
                                  static_cast<int>(getGroupIndex(group)),
                                  &reductionComm, nullptr),
                    "ncclCommSplit for the reductions over axes " +
                        describeGroup(group)));
      reductionComms.push_back(reductionComm);
    }
    int leastPriority = 0, greatestPriority = 0;
    cudaDeviceGetStreamPriorityRange(&leastPriority, &greatestPriority);
    if (cudaStreamCreateWithPriority(&reductionStream, cudaStreamNonBlocking,
                                     greatestPriority) != cudaSuccess)
      return Status::error("cannot create the reduction stream");
    return setUpDeviceIndices();
  }

  Status allReduce(int group, DType dtype, const void *input, void *output,
                   int64_t count, ReduceKind kind,
                   const char *location) override {
    ncclDataType_t type;
    ncclRedOp_t op;
    CLEAVE_RETURN_IF_ERROR(getReduction(dtype, kind, location, type, op));
    CLEAVE_RETURN_IF_ERROR(checkNccl(
        ncclAllReduce(input, output, count, type, op, comms[group], getStream()),
        std::string(location) + ": all_reduce"));
    return enqueued("all_reduce", group, location);
  }

  Status allGather(int group, const void *input, void *output,
                   size_t bytesPerRank, const char *location) override {
    CLEAVE_RETURN_IF_ERROR(checkNccl(
        ncclAllGather(input, output, bytesPerRank, ncclUint8, comms[group],
                      getStream()),
        std::string(location) + ": all_gather"));
    return enqueued("all_gather", group, location);
  }

  Status reduceScatter(int group, DType dtype, const void *input,
                       void *output, int64_t countPerRank, ReduceKind kind,
                       const char *location) override {
    ncclDataType_t type;
    ncclRedOp_t op;
    CLEAVE_RETURN_IF_ERROR(getReduction(dtype, kind, location, type, op));
    CLEAVE_RETURN_IF_ERROR(checkNccl(
        ncclReduceScatter(input, output, countPerRank, type, op, comms[group],
                          getStream()),
        std::string(location) + ": reduce_scatter"));
    return enqueued("reduce_scatter", group, location);
  }

  Status allToAll(int group, const void *input, void *output,
                  size_t bytesPerRank, const char *location) override {
    int64_t n = getGroupSize(group);
    int64_t me = getGroupIndex(group);
    const auto *in = static_cast<const uint8_t *>(input);
    auto *out = static_cast<uint8_t *>(output);
    CLEAVE_RETURN_IF_ERROR(checkNccl(ncclGroupStart(), "ncclGroupStart"));
    // Every send and receive is queued before the group closes, even after
    // a failure: an open group would swallow later calls.
    ncclResult_t queued = ncclSuccess;
    for (int64_t peer = 0; peer < n && queued == ncclSuccess; ++peer) {
      if (peer == me)
        continue;
      queued = ncclSend(in + peer * bytesPerRank, bytesPerRank, ncclUint8,
                        static_cast<int>(peer), comms[group], getStream());
      if (queued == ncclSuccess)
        queued = ncclRecv(out + peer * bytesPerRank, bytesPerRank, ncclUint8,
                          static_cast<int>(peer), comms[group], getStream());
    }
    ncclResult_t closed = ncclGroupEnd();
    CLEAVE_RETURN_IF_ERROR(
        checkNccl(queued, std::string(location) + ": all_to_all"));
    CLEAVE_RETURN_IF_ERROR(checkNccl(closed, "ncclGroupEnd"));
    CLEAVE_RETURN_IF_ERROR(context.copyOnDevice(
        out + me * bytesPerRank, in + me * bytesPerRank, bytesPerRank));
    return enqueued("all_to_all", group, location);
  }

  /// A send is copied out and deferred: it is queued together with this
  /// rank's next receive in one NCCL group (or at completeSends), so that a
  /// rank never blocks its stream on a peer that is itself waiting to send
  /// (Megatron-LM's batched send/receive). NCCL matches transfers between
  /// two ranks by order, which deferral keeps.
  Status send(int group, int64_t peer, int64_t tag, const void *data,
              size_t bytes, const char *location) override {
    DeferredSend deferred;
    deferred.buffer = std::make_unique<DeviceBuffer>(context);
    CLEAVE_RETURN_IF_ERROR(deferred.buffer->allocate(bytes, "a pipeline send"));
    CLEAVE_RETURN_IF_ERROR(
        context.copyOnDevice(deferred.buffer->get(), data, bytes));
    deferred.bytes = bytes;
    deferred.group = group;
    deferred.peer = peer;
    deferred.what = std::string(location) + ": send (tag " +
                    std::to_string(tag) + ")";
    deferredSends.push_back(std::move(deferred));
    return Status::success();
  }

  Status receive(int group, int64_t peer, int64_t tag, void *data,
                 size_t bytes, const char *location) override {
    CLEAVE_RETURN_IF_ERROR(checkNccl(ncclGroupStart(), "ncclGroupStart"));
    ncclResult_t queued = queueDeferredSends();
    if (queued == ncclSuccess)
      queued = ncclRecv(data, bytes, ncclUint8, static_cast<int>(peer),
                        comms[group], getStream());
    ncclResult_t closed = ncclGroupEnd();
    CLEAVE_RETURN_IF_ERROR(checkNccl(
        queued, std::string(location) + ": recv (tag " + std::to_string(tag) +
                    ") with the sends before it"));
    CLEAVE_RETURN_IF_ERROR(checkNccl(closed, "ncclGroupEnd"));
    return enqueued("recv", group, location);
  }

  Status completeSends(const char *what) override {
    if (!deferredSends.empty()) {
      int group = deferredSends.front().group;
      CLEAVE_RETURN_IF_ERROR(checkNccl(ncclGroupStart(), "ncclGroupStart"));
      ncclResult_t queued = queueDeferredSends();
      ncclResult_t closed = ncclGroupEnd();
      CLEAVE_RETURN_IF_ERROR(checkNccl(queued, std::string(what) + ": send"));
      CLEAVE_RETURN_IF_ERROR(checkNccl(closed, "ncclGroupEnd"));
      CLEAVE_RETURN_IF_ERROR(enqueued("send", group, what));
    }
    CLEAVE_RETURN_IF_ERROR(drain(what));
    // The queued sends have read their copies.
    sentBuffers.clear();
    return Status::success();
  }

  /// Queued on the reduction stream once the compute stream has computed
  /// the inputs; an event marks the end.
  Status startCollectives(int group, CollectiveKind kind,
                          const std::vector<CollectiveItem> &items,
                          const char *what, int &request) override {
    cudaEvent_t ready = nullptr, done = nullptr;
    if (cudaEventCreateWithFlags(&ready, cudaEventDisableTiming) !=
            cudaSuccess ||
        cudaEventRecord(ready, getStream()) != cudaSuccess ||
        cudaStreamWaitEvent(reductionStream, ready, 0) != cudaSuccess)
      return Status::error(std::string(what) +
                           ": cannot order the reduction stream after the "
                           "compute stream");
    cudaEventDestroy(ready);
    int64_t ranks = getGroupSize(group);
    CLEAVE_RETURN_IF_ERROR(checkNccl(ncclGroupStart(), "ncclGroupStart"));
    ncclResult_t queued = ncclSuccess;
    for (const CollectiveItem &item : items) {
      if (queued != ncclSuccess)
        break;
      if (kind == CollectiveKind::AllGather) {
        // Gathers move bytes.
        queued = ncclAllGather(item.input, item.output,
                               item.count * getDTypeSize(item.dtype), ncclInt8,
                               reductionComms[group], reductionStream);
        continue;
      }
      ncclDataType_t type;
      ncclRedOp_t op;
      Status known = getReduction(item.dtype, ReduceKind::Sum, what, type, op);
      if (!known.ok()) {
        ncclGroupEnd();
        return known;
      }
      queued = kind == CollectiveKind::ReduceScatter
                   ? ncclReduceScatter(item.input, item.output,
                                       item.count / ranks, type, op,
                                       reductionComms[group], reductionStream)
                   : ncclAllReduce(item.input, item.output, item.count, type,
                                   op, reductionComms[group], reductionStream);
    }
    ncclResult_t closed = ncclGroupEnd();
    CLEAVE_RETURN_IF_ERROR(
        checkNccl(queued, std::string(what) + ": reduction"));
    CLEAVE_RETURN_IF_ERROR(checkNccl(closed, "ncclGroupEnd"));
    if (cudaEventCreateWithFlags(&done, cudaEventDisableTiming) !=
            cudaSuccess ||
        cudaEventRecord(done, reductionStream) != cudaSuccess)
      return Status::error(std::string(what) +
                           ": cannot record the reduction's end");
    reductions[request = nextRequest++] = done;
    return Status::success();
  }

  Status testCollectives(int request, bool &done) override {
    auto found = reductions.find(request);
    done = found == reductions.end() ||
           cudaEventQuery(found->second) != cudaErrorNotReady;
    return Status::success();
  }

  bool waitsOnHost() const override { return false; }

  /// The compute stream waits on the device; drain() bounds the wait.
  Status waitCollectives(int request, const char *what) override {
    auto found = reductions.find(request);
    if (found == reductions.end())
      return Status::success();
    cudaEvent_t done = found->second;
    reductions.erase(found);
    if (cudaStreamWaitEvent(getStream(), done, 0) != cudaSuccess)
      return Status::error(std::string(what) +
                           ": cannot order the compute stream after the "
                           "reduction");
    queue.push_back({done, "reduction", -1, what});
    return Status::success();
  }

  bool matchesTransfersByOrder() const override { return true; }

  Status barrier(const char *what) override {
    CLEAVE_RETURN_IF_ERROR(drain(what));
    int32_t *flag = nullptr;
    CLEAVE_RETURN_IF_ERROR(context.getScratch(ScratchSlot::CollectiveSend,
                                              sizeof(int32_t),
                                              reinterpret_cast<void **>(&flag)));
    CLEAVE_RETURN_IF_ERROR(checkNccl(
        ncclAllReduce(flag, flag, 1, ncclInt32, ncclSum, world, getStream()),
        std::string(what) + ": barrier"));
    CLEAVE_RETURN_IF_ERROR(enqueued("barrier", -1, what));
    return drain(what);
  }

  /// Waits for the queued collectives. A failed one ends the job at once:
  /// the stream would hang whatever waited on it next (freeing memory,
  /// destroying the stream), so NCCL is aborted before anything else.
  Status drain(const char *) override {
    using Clock = std::chrono::steady_clock;
    auto deadline = Clock::now() + std::chrono::duration<double>(timeoutSeconds);
    std::vector<ncclComm_t> all(comms);
    all.insert(all.end(), reductionComms.begin(), reductionComms.end());
    all.push_back(world);
    for (const Pending &pending : queue) {
      for (;;) {
        cudaError_t state = cudaEventQuery(pending.event);
        if (state == cudaSuccess)
          break;
        if (state != cudaErrorNotReady)
          return abortJobOnError(Status::error(
              pending.location + ": " + pending.op +
              " failed: " + cudaGetErrorString(state)));
        ncclResult_t async = ncclSuccess;
        for (ncclComm_t comm : all)
          if (ncclCommGetAsyncError(comm, &async) == ncclSuccess &&
              async != ncclSuccess && async != ncclInProgress)
            return abortJobOnError(Status::error(
                pending.location + ": " + pending.op + " failed on rank " +
                std::to_string(rank) + ": " + ncclGetErrorString(async)));
        if (Clock::now() > deadline)
          failTimeout(pending.op.c_str(), pending.group,
                      pending.location.c_str());
        std::this_thread::sleep_for(std::chrono::microseconds(50));
      }
    }
    for (const Pending &pending : queue)
      cudaEventDestroy(pending.event);
    queue.clear();
    return Status::success();
  }

  [[noreturn]] void abortJob(int code) override {
    for (std::vector<ncclComm_t> *list : {&comms, &reductionComms})
      for (ncclComm_t comm : *list)
        ncclCommAbort(comm);
    reductionComms.clear();
    if (world)
      ncclCommAbort(world);
    comms.clear();
    world = nullptr;
    abortMpiJob(code);
  }

private:
  struct DeferredSend {
    std::unique_ptr<DeviceBuffer> buffer;
    size_t bytes = 0;
    int group = 0;
    int64_t peer = 0;
    std::string what;
  };

  /// Queues every deferred send (inside an open NCCL group); their buffers
  /// live until completeSends has drained the stream.
  ncclResult_t queueDeferredSends() {
    ncclResult_t result = ncclSuccess;
    for (DeferredSend &deferred : deferredSends) {
      if (result == ncclSuccess) {
        result = ncclSend(deferred.buffer->get(), deferred.bytes, ncclUint8,
                          static_cast<int>(deferred.peer),
                          comms[deferred.group], getStream());
      }
      sentBuffers.push_back(std::move(deferred.buffer));
    }
    deferredSends.clear();
    return result;
  }

  struct Pending {
    cudaEvent_t event;
    std::string op;
    int group;
    std::string location;
  };

  cudaStream_t getStream() const {
    return static_cast<cudaStream_t>(context.getStream());
  }

  /// Records an event after the collective just queued, for drain().
  Status enqueued(const char *op, int group, const char *location) {
    cudaEvent_t event;
    if (cudaEventCreateWithFlags(&event, cudaEventDisableTiming) != cudaSuccess ||
        cudaEventRecord(event, getStream()) != cudaSuccess)
      return Status::error(std::string(location) + ": cannot record an event "
                                                   "after " + op);
    queue.push_back({event, op, group, location});
    return Status::success();
  }

  Status getReduction(DType dtype, ReduceKind kind, const char *location,
                      ncclDataType_t &type, ncclRedOp_t &op) {
    if (kind == ReduceKind::Mean)
      return Status::error(std::string(location) +
                           ": collectives reduce by sum or max, not mean");
    op = kind == ReduceKind::Max ? ncclMax : ncclSum;
    switch (dtype) {
    case DType::F64: type = ncclFloat64; return Status::success();
    case DType::F32: type = ncclFloat32; return Status::success();
    case DType::BF16: type = ncclBfloat16; return Status::success();
    case DType::F16: type = ncclFloat16; return Status::success();
    case DType::I32: type = ncclInt32; return Status::success();
    case DType::I64: type = ncclInt64; return Status::success();
    default:
      return Status::error(std::string(location) + ": cannot reduce " +
                           getDTypeName(dtype) + " with NCCL");
    }
  }

  ncclComm_t world = nullptr;
  std::vector<ncclComm_t> comms, reductionComms;
  cudaStream_t reductionStream = nullptr;
  /// The end events of reductions started and not yet waited for.
  std::map<int, cudaEvent_t> reductions;
  int nextRequest = 0;
  std::vector<Pending> queue;
  std::vector<DeferredSend> deferredSends;
  std::vector<std::unique_ptr<DeviceBuffer>> sentBuffers;
};

} // namespace

Status createCommunicator(Context &context, const MeshSpec &spec,
                          std::unique_ptr<Communicator> &communicator) {
  const char *choice = std::getenv("CLEAVE_COLLECTIVES");
  std::string backend = choice && *choice ? choice : "nccl";
  if (backend == "mpi")
    return createMpiCommunicator(context, spec, /*stageThroughHost=*/true,
                                 communicator);
  if (backend != "nccl")
    return Status::error("CLEAVE_COLLECTIVES must be nccl or mpi, got '" +
                         backend + "'");
  auto nccl = std::make_unique<NcclCommunicator>(context);
  CLEAVE_RETURN_IF_ERROR(nccl->initialize(spec));
  communicator = std::move(nccl);
  return Status::success();
}

} // namespace cleave::rt
