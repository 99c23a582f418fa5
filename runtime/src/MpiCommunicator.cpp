//===- MpiCommunicator.cpp - Collectives over MPI -------------------------===//
//
// Every collective is nonblocking and waited for by polling with a deadline,
// which is what lets a dead or stuck peer end the job with a message instead
// of a hang. Errors return (MPI_ERRORS_RETURN) so they can name the rank, op
// and axes before the job is aborted.
//
//===----------------------------------------------------------------------===//

#include "MpiCommunicator.h"

#include "cleave/runtime/Portability.h"

// The C API only: MPI's deprecated C++ bindings need their own library.
#define OMPI_SKIP_MPICXX 1
#define MPICH_SKIP_MPICXX 1
#include <mpi.h>

#include <chrono>
#include <climits>
#include <cstdlib>
#include <cstring>
#include <deque>
#include <list>
#include <map>
#include <thread>
#include <tuple>
#include <vector>

namespace cleave::rt {
namespace {

std::string getMpiError(int code) {
  char text[MPI_MAX_ERROR_STRING];
  int length = 0;
  MPI_Error_string(code, text, &length);
  return std::string(text, length);
}

void finalizeMpi() {
  int finalized = 0;
  MPI_Finalized(&finalized);
  if (!finalized)
    MPI_Finalize();
}

/// Sums (or maxima) of 16-bit floats, which MPI has no type for.
template <typename T, bool IsMax>
void reduceHalf(void *in, void *inout, int *count, MPI_Datatype *) {
  auto *a = static_cast<const T *>(in);
  auto *b = static_cast<T *>(inout);
  for (int i = 0; i < *count; ++i) {
    float x = ::cleave::toCompute(a[i]), y = ::cleave::toCompute(b[i]);
    b[i] = ::cleave::fromFloat<T>(IsMax ? (x > y ? x : y) : x + y);
  }
}

class MpiCommunicator final : public Communicator {
public:
  MpiCommunicator(Context &context, bool stageThroughHost)
      : Communicator(context), stageThroughHost(stageThroughHost) {}

  ~MpiCommunicator() override {
    for (std::vector<MPI_Comm> *list : {&comms, &reductionComms})
      for (MPI_Comm &comm : *list)
        if (comm != MPI_COMM_NULL)
          MPI_Comm_free(&comm);
    for (MPI_Op &op : halfOps)
      if (op != MPI_OP_NULL)
        MPI_Op_free(&op);
  }

  Status initialize(const MeshSpec &spec) {
    int worldRank = 0, worldSize = 1;
    CLEAVE_RETURN_IF_ERROR(initializeMpi(worldRank, worldSize));
    CLEAVE_RETURN_IF_ERROR(setUp(spec, worldRank, worldSize));
    return abortJobOnError(splitGroups());
  }

  /// One communicator per group; the key orders its ranks as the group
  /// numbers devices.
  Status splitGroups() {
    for (int group = 0; group < getNumGroups(); ++group) {
      MPI_Comm comm = MPI_COMM_NULL;
      int code = MPI_Comm_split(MPI_COMM_WORLD, getGroupColor(group),
                                static_cast<int>(getGroupIndex(group)), &comm);
      if (code != MPI_SUCCESS)
        return Status::error("cannot create the communicator of axes " +
                             describeGroup(group) + ": " + getMpiError(code));
      MPI_Comm_set_errhandler(comm, MPI_ERRORS_RETURN);
      comms.push_back(comm);
      // The training loop's reductions in flight get a communicator of
      // their own, so the program's collectives never queue behind them.
      MPI_Comm reductionComm = MPI_COMM_NULL;
      code = MPI_Comm_dup(comm, &reductionComm);
      if (code != MPI_SUCCESS)
        return Status::error("cannot duplicate the communicator of axes " +
                             describeGroup(group) + ": " + getMpiError(code));
      MPI_Comm_set_errhandler(reductionComm, MPI_ERRORS_RETURN);
      reductionComms.push_back(reductionComm);
    }
    MPI_Op_create(&reduceHalf<::cleave::bf16, false>, 1, &halfOps[0]);
    MPI_Op_create(&reduceHalf<::cleave::bf16, true>, 1, &halfOps[1]);
    MPI_Op_create(&reduceHalf<::cleave::f16, false>, 1, &halfOps[2]);
    MPI_Op_create(&reduceHalf<::cleave::f16, true>, 1, &halfOps[3]);
    return setUpDeviceIndices();
  }

  Status allReduce(int group, DType dtype, const void *input, void *output,
                   int64_t count, ReduceKind kind,
                   const char *location) override {
    MPI_Datatype type;
    MPI_Op op;
    CLEAVE_RETURN_IF_ERROR(getReduction(dtype, kind, location, type, op));
    CLEAVE_RETURN_IF_ERROR(checkCount(count, "all_reduce", location));
    size_t bytes = count * getDTypeSize(dtype);
    const void *send = input;
    void *receive = output;
    CLEAVE_RETURN_IF_ERROR(stageIn(input, bytes, output, bytes, send, receive));
    if (send == receive)
      send = MPI_IN_PLACE;
    return complete(
        "all_reduce", group, location,
        [&](MPI_Request *request) {
          return MPI_Iallreduce(send, receive, static_cast<int>(count), type,
                                op, comms[group], request);
        },
        receive, output, bytes);
  }

  Status allGather(int group, const void *input, void *output,
                   size_t bytesPerRank, const char *location) override {
    CLEAVE_RETURN_IF_ERROR(checkCount(bytesPerRank, "all_gather", location));
    size_t total = bytesPerRank * getGroupSize(group);
    const void *send = input;
    void *receive = output;
    CLEAVE_RETURN_IF_ERROR(
        stageIn(input, bytesPerRank, output, total, send, receive));
    return complete(
        "all_gather", group, location,
        [&](MPI_Request *request) {
          return MPI_Iallgather(send, static_cast<int>(bytesPerRank), MPI_BYTE,
                                receive, static_cast<int>(bytesPerRank),
                                MPI_BYTE, comms[group], request);
        },
        receive, output, total);
  }

  Status reduceScatter(int group, DType dtype, const void *input,
                       void *output, int64_t countPerRank, ReduceKind kind,
                       const char *location) override {
    MPI_Datatype type;
    MPI_Op op;
    CLEAVE_RETURN_IF_ERROR(getReduction(dtype, kind, location, type, op));
    CLEAVE_RETURN_IF_ERROR(checkCount(countPerRank, "reduce_scatter", location));
    size_t blockBytes = countPerRank * getDTypeSize(dtype);
    const void *send = input;
    void *receive = output;
    CLEAVE_RETURN_IF_ERROR(stageIn(input, blockBytes * getGroupSize(group),
                                   output, blockBytes, send, receive));
    return complete(
        "reduce_scatter", group, location,
        [&](MPI_Request *request) {
          return MPI_Ireduce_scatter_block(send, receive,
                                           static_cast<int>(countPerRank),
                                           type, op, comms[group], request);
        },
        receive, output, blockBytes);
  }

  Status allToAll(int group, const void *input, void *output,
                  size_t bytesPerRank, const char *location) override {
    CLEAVE_RETURN_IF_ERROR(checkCount(bytesPerRank, "all_to_all", location));
    size_t total = bytesPerRank * getGroupSize(group);
    const void *send = input;
    void *receive = output;
    CLEAVE_RETURN_IF_ERROR(stageIn(input, total, output, total, send, receive));
    return complete(
        "all_to_all", group, location,
        [&](MPI_Request *request) {
          return MPI_Ialltoall(send, static_cast<int>(bytesPerRank), MPI_BYTE,
                               receive, static_cast<int>(bytesPerRank),
                               MPI_BYTE, comms[group], request);
        },
        receive, output, total);
  }

  /// Buffered: the bytes are copied out and the send completes in the
  /// background (see completeSends), so a rank never waits on a peer to
  /// receive and any schedule whose dependencies resolve cannot deadlock.
  Status send(int group, int64_t peer, int64_t tag, const void *data,
              size_t bytes, const char *location) override {
    CLEAVE_RETURN_IF_ERROR(checkCount(bytes, "send", location));
    CLEAVE_RETURN_IF_ERROR(testSends(location));
    PendingSend &pending = pendingSends.emplace_back();
    pending.bytes.resize(bytes);
    pending.group = group;
    pending.location = location;
    CLEAVE_RETURN_IF_ERROR(context.copyToHost(pending.bytes.data(), data, bytes));
    return check(MPI_Isend(pending.bytes.data(), static_cast<int>(bytes),
                           MPI_BYTE, static_cast<int>(peer),
                           static_cast<int>(tag), comms[group],
                           &pending.request),
                 "send", group, location);
  }

  Status postReceive(int group, int64_t peer, int64_t tag, size_t bytes,
                     const char *location) override {
    CLEAVE_RETURN_IF_ERROR(checkCount(bytes, "recv", location));
    PostedReceive &posted = postedReceives[{group, peer, tag}].emplace_back();
    posted.bytes.resize(bytes);
    return check(MPI_Irecv(posted.bytes.data(), static_cast<int>(bytes),
                           MPI_BYTE, static_cast<int>(peer),
                           static_cast<int>(tag), comms[group],
                           &posted.request),
                 "recv", group, location);
  }

  void progressTransfers() override {
    for (auto &[key, queue] : postedReceives)
      for (PostedReceive &posted : queue) {
        int done = 0;
        // A failure surfaces in the receive's wait.
        if (posted.request != MPI_REQUEST_NULL)
          MPI_Test(&posted.request, &done, MPI_STATUS_IGNORE);
      }
  }

  Status completeSends(const char *) override {
    for (PendingSend &pending : pendingSends)
      CLEAVE_RETURN_IF_ERROR(
          wait(pending.request, "send", pending.group, pending.location));
    pendingSends.clear();
    return Status::success();
  }

  Status receive(int group, int64_t peer, int64_t tag, void *data,
                 size_t bytes, const char *location) override {
    CLEAVE_RETURN_IF_ERROR(checkCount(bytes, "recv", location));
    auto posted = postedReceives.find({group, peer, tag});
    if (posted != postedReceives.end() && !posted->second.empty()) {
      PostedReceive early = std::move(posted->second.front());
      posted->second.pop_front();
      CLEAVE_RETURN_IF_ERROR(wait(early.request, "recv", group, location));
      if (early.bytes.size() != bytes)
        return Status::error(std::string(location) + ": recv of " +
                             std::to_string(bytes) + " bytes was posted for " +
                             std::to_string(early.bytes.size()));
      return context.copyToDevice(data, early.bytes.data(), bytes);
    }
    const void *unused = nullptr;
    void *staged = data;
    CLEAVE_RETURN_IF_ERROR(stageIn(nullptr, 0, data, bytes, unused, staged));
    return complete(
        "recv", group, location,
        [&](MPI_Request *request) {
          return MPI_Irecv(staged, static_cast<int>(bytes), MPI_BYTE,
                           static_cast<int>(peer), static_cast<int>(tag),
                           comms[group], request);
        },
        staged, data, bytes);
  }

  Status startCollectives(int group, CollectiveKind kind,
                          const std::vector<CollectiveItem> &items,
                          const char *what, int &request) override {
    // Staged buffers would need host copies that outlive the call.
    if (stageThroughHost)
      return Communicator::startCollectives(group, kind, items, what, request);
    Reductions &pending = reductions[request = nextRequest++];
    pending.group = group;
    pending.what = what;
    int64_t ranks = getGroupSize(group);
    for (const CollectiveItem &item : items) {
      MPI_Request &started = pending.requests.emplace_back(MPI_REQUEST_NULL);
      int code = MPI_SUCCESS;
      const char *op = "all_gather";
      if (kind == CollectiveKind::AllGather) {
        // Gathers move bytes.
        size_t bytes = item.count * getDTypeSize(item.dtype);
        CLEAVE_RETURN_IF_ERROR(checkCount(bytes, op, what));
        code = MPI_Iallgather(item.input, static_cast<int>(bytes), MPI_BYTE,
                              item.output, static_cast<int>(bytes), MPI_BYTE,
                              reductionComms[group], &started);
      } else {
        bool scatter = kind == CollectiveKind::ReduceScatter;
        op = scatter ? "reduce_scatter" : "all_reduce";
        MPI_Datatype type = MPI_DATATYPE_NULL;
        MPI_Op sum = MPI_OP_NULL;
        CLEAVE_RETURN_IF_ERROR(
            getReduction(item.dtype, ReduceKind::Sum, what, type, sum));
        int64_t count = scatter ? item.count / ranks : item.count;
        CLEAVE_RETURN_IF_ERROR(checkCount(count, "reduction", what));
        code = scatter
                   ? MPI_Ireduce_scatter_block(
                         item.input, item.output, static_cast<int>(count), type,
                         sum, reductionComms[group], &started)
                   : MPI_Iallreduce(item.input == item.output ? MPI_IN_PLACE
                                                              : item.input,
                                    item.output, static_cast<int>(count), type,
                                    sum, reductionComms[group], &started);
      }
      CLEAVE_RETURN_IF_ERROR(check(code, op, group, what));
    }
    return Status::success();
  }

  Status testCollectives(int request, bool &done) override {
    auto found = reductions.find(request);
    done = true;
    if (found == reductions.end())
      return Status::success();
    Reductions &pending = found->second;
    int flag = 0;
    CLEAVE_RETURN_IF_ERROR(
        check(MPI_Testall(static_cast<int>(pending.requests.size()),
                          pending.requests.data(), &flag, MPI_STATUSES_IGNORE),
              "reduction", pending.group, pending.what));
    done = flag != 0;
    if (done)
      reductions.erase(found);
    return Status::success();
  }

  Status waitCollectives(int request, const char *) override {
    auto found = reductions.find(request);
    if (found == reductions.end())
      return Status::success();
    Reductions &pending = found->second;
    for (MPI_Request &started : pending.requests)
      CLEAVE_RETURN_IF_ERROR(
          wait(started, "reduction", pending.group, pending.what));
    reductions.erase(found);
    return Status::success();
  }

  Status barrier(const char *what) override {
    MPI_Request request;
    CLEAVE_RETURN_IF_ERROR(
        check(MPI_Ibarrier(MPI_COMM_WORLD, &request), "barrier", -1, what));
    return wait(request, "barrier", -1, what);
  }

  [[noreturn]] void abortJob(int code) override { abortMpiJob(code); }

private:
  /// A group of nonblocking collectives startCollectives began.
  struct Reductions {
    std::vector<MPI_Request> requests;
    int group = 0;
    const char *what = "";
  };

  /// A receive posted ahead of the program's (postReceive).
  struct PostedReceive {
    MPI_Request request = MPI_REQUEST_NULL;
    std::vector<uint8_t> bytes;
  };
  std::map<std::tuple<int, int64_t, int64_t>, std::deque<PostedReceive>>
      postedReceives;

  struct PendingSend {
    MPI_Request request = MPI_REQUEST_NULL;
    std::vector<uint8_t> bytes;
    int group = 0;
    const char *location = "";
  };

  /// Releases the buffers of sends that have completed.
  Status testSends(const char *location) {
    for (auto it = pendingSends.begin(); it != pendingSends.end();) {
      int done = 0;
      CLEAVE_RETURN_IF_ERROR(check(MPI_Test(&it->request, &done,
                                            MPI_STATUS_IGNORE),
                                   "send", it->group, location));
      it = done ? pendingSends.erase(it) : std::next(it);
    }
    return Status::success();
  }

  /// MPI counts are ints: larger buffers are refused with the op named.
  Status checkCount(size_t count, const char *op, const char *location) {
    if (count <= static_cast<size_t>(INT_MAX))
      return Status::success();
    return Status::error(std::string(location) + ": " + op + " of " +
                         std::to_string(count) +
                         " elements exceeds MPI's int count");
  }

  Status check(int code, const char *op, int group, const char *location) {
    if (code == MPI_SUCCESS)
      return Status::success();
    return Status::error(std::string(location) + ": " + op + " over " +
                         (group >= 0 ? describeGroup(group) : "all ranks") +
                         " failed on rank " + std::to_string(rank) + ": " +
                         getMpiError(code));
  }

  /// Starts a nonblocking collective, waits for it under the timeout and
  /// copies a staged result to the device.
  template <typename Start>
  Status complete(const char *op, int group, const char *location,
                  Start start, void *receive, void *output,
                  size_t outputBytes) {
    MPI_Request request;
    CLEAVE_RETURN_IF_ERROR(check(start(&request), op, group, location));
    CLEAVE_RETURN_IF_ERROR(wait(request, op, group, location));
    return stageOut(receive, output, outputBytes);
  }

  /// Polls `request` until it completes or the timeout passes.
  Status wait(MPI_Request &request, const char *op, int group,
              const char *location) {
    using Clock = std::chrono::steady_clock;
    auto deadline = Clock::now() + std::chrono::duration<double>(timeoutSeconds);
    for (int polls = 0;; ++polls) {
      int done = 0;
      CLEAVE_RETURN_IF_ERROR(check(MPI_Test(&request, &done, MPI_STATUS_IGNORE),
                                   op, group, location));
      if (done)
        return Status::success();
      // Spin briefly (collectives of small buffers finish in microseconds),
      // then yield the core to the peers an oversubscribed machine shares.
      if (polls > 1000) {
        if (Clock::now() > deadline)
          failTimeout(op, group, location);
        std::this_thread::sleep_for(std::chrono::microseconds(50));
      }
    }
  }

  Status getReduction(DType dtype, ReduceKind kind, const char *location,
                      MPI_Datatype &type, MPI_Op &op) {
    bool isMax = kind == ReduceKind::Max;
    if (kind == ReduceKind::Mean)
      return Status::error(std::string(location) +
                           ": collectives reduce by sum or max, not mean");
    op = isMax ? MPI_MAX : MPI_SUM;
    switch (dtype) {
    case DType::F64:
      type = MPI_DOUBLE;
      return Status::success();
    case DType::F32:
      type = MPI_FLOAT;
      return Status::success();
    case DType::I32:
      type = MPI_INT32_T;
      return Status::success();
    case DType::I64:
      type = MPI_INT64_T;
      return Status::success();
    case DType::BF16:
      type = MPI_UINT16_T;
      op = halfOps[isMax ? 1 : 0];
      return Status::success();
    case DType::F16:
      type = MPI_UINT16_T;
      op = halfOps[isMax ? 3 : 2];
      return Status::success();
    default:
      return Status::error(std::string(location) + ": cannot reduce " +
                           getDTypeName(dtype) + " over MPI");
    }
  }

  /// On CUDA, copies the input to host memory and points the MPI buffers
  /// there; on the CPU, leaves them as they are.
  Status stageIn(const void *input, size_t inputBytes, void *output,
                 size_t outputBytes, const void *&send, void *&receive) {
    if (!stageThroughHost)
      return Status::success();
    hostSend.resize(inputBytes);
    hostReceive.resize(outputBytes);
    if (inputBytes > 0)
      CLEAVE_RETURN_IF_ERROR(
          context.copyToHost(hostSend.data(), input, inputBytes));
    send = hostSend.data();
    receive = hostReceive.data();
    if (input == output) {
      std::memcpy(hostReceive.data(), hostSend.data(), outputBytes);
      send = receive;
    }
    return Status::success();
  }

  Status stageOut(void *receive, void *output, size_t bytes) {
    if (!stageThroughHost || bytes == 0)
      return Status::success();
    return context.copyToDevice(output, receive, bytes);
  }

  bool stageThroughHost;
  std::vector<MPI_Comm> comms, reductionComms;
  std::map<int, Reductions> reductions;
  int nextRequest = 0;
  MPI_Op halfOps[4] = {MPI_OP_NULL, MPI_OP_NULL, MPI_OP_NULL, MPI_OP_NULL};
  std::vector<uint8_t> hostSend, hostReceive;
  std::list<PendingSend> pendingSends;
};

} // namespace

Status initializeMpi(int &rank, int &size) {
  int initialized = 0;
  MPI_Initialized(&initialized);
  if (!initialized) {
    int code = MPI_Init(nullptr, nullptr);
    if (code != MPI_SUCCESS)
      return Status::error("cannot start MPI: " + getMpiError(code));
    MPI_Comm_set_errhandler(MPI_COMM_WORLD, MPI_ERRORS_RETURN);
    std::atexit(finalizeMpi);
  }
  MPI_Comm_rank(MPI_COMM_WORLD, &rank);
  MPI_Comm_size(MPI_COMM_WORLD, &size);
  return Status::success();
}

void abortMpiJob(int code) {
  int initialized = 0, finalized = 0;
  MPI_Initialized(&initialized);
  MPI_Finalized(&finalized);
  if (initialized && !finalized)
    MPI_Abort(MPI_COMM_WORLD, code);
  std::_Exit(code);
}

Status broadcastFromRootMpi(void *data, size_t bytes) {
  int code = MPI_Bcast(data, static_cast<int>(bytes), MPI_BYTE, 0,
                       MPI_COMM_WORLD);
  if (code != MPI_SUCCESS)
    return Status::error("broadcast from rank 0 failed: " + getMpiError(code));
  return Status::success();
}

Status createMpiCommunicator(Context &context, const MeshSpec &spec,
                             bool stageThroughHost,
                             std::unique_ptr<Communicator> &communicator) {
  auto mpi = std::make_unique<MpiCommunicator>(context, stageThroughHost);
  CLEAVE_RETURN_IF_ERROR(mpi->initialize(spec));
  communicator = std::move(mpi);
  return Status::success();
}

} // namespace cleave::rt
