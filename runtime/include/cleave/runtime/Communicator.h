//===- Communicator.h - Collectives between the ranks of a mesh -*- C++ -*-===//
//
// One Communicator per process of a partitioned program: it knows the
// rank's mesh coordinates and holds one sub-communicator per axis group the
// program's collectives use (MPI_Comm_split on the CPU, ncclCommSplit on
// CUDA). Its primitives move contiguous device buffers in group order; the
// entry points below (what generated code calls) lay out blocks of any
// dimension around them.
//
// Every wait is bounded: a collective that does not finish within the
// timeout (a dead or stuck peer) prints the rank, the op, its axes and its
// source location, and aborts the whole job rather than hang.
//
//===----------------------------------------------------------------------===//

#ifndef CLEAVE_RUNTIME_COMMUNICATOR_H
#define CLEAVE_RUNTIME_COMMUNICATOR_H

#include "cleave/runtime/Context.h"
#include "cleave/runtime/DType.h"
#include "cleave/runtime/Kernels.h"
#include "cleave/runtime/Mesh.h"

#include <map>
#include <memory>
#include <string>
#include <vector>

namespace cleave::rt {

/// How long a collective may wait for its peers, in seconds, unless
/// CLEAVE_COLLECTIVE_TIMEOUT says otherwise.
constexpr double kDefaultCollectiveTimeout = 300.0;

class Communicator {
public:
  virtual ~Communicator();

  int getRank() const { return rank; }
  int getSize() const { return size; }
  const Mesh &getMesh() const { return mesh; }
  const std::vector<int64_t> &getCoordinates() const { return coordinates; }
  int getNumGroups() const { return static_cast<int>(groups.size()); }
  /// This rank's index within group `group`, and the group's size.
  int64_t getGroupIndex(int group) const;
  int64_t getGroupSize(int group) const;
  /// The rank at the origin of this rank's group along `group`'s axes: the
  /// ranks of one sub-communicator share it (its "color" when splitting).
  int getGroupColor(int group) const;
  /// "[dp, tp]".
  std::string describeGroup(int group) const;
  /// Fails unless `group` is one of the program's groups.
  Status checkGroup(int group, const char *op, const char *location) const;

  /// Primitives on contiguous device buffers, ranks in group order. `input`
  /// and `output` may be the same buffer only for allReduce.
  virtual Status allReduce(int group, DType dtype, const void *input,
                           void *output, int64_t count, ReduceKind kind,
                           const char *location) = 0;
  /// Output: each rank's `bytesPerRank` in group order.
  virtual Status allGather(int group, const void *input, void *output,
                           size_t bytesPerRank, const char *location) = 0;
  /// Reduces `countPerRank * groupSize` elements; keeps block groupIndex.
  virtual Status reduceScatter(int group, DType dtype, const void *input,
                               void *output, int64_t countPerRank,
                               ReduceKind kind, const char *location) = 0;
  /// Sends block i of `input` to group rank i; block i of `output` comes
  /// from group rank i.
  virtual Status allToAll(int group, const void *input, void *output,
                          size_t bytesPerRank, const char *location) = 0;
  /// Point to point along `group` (the pp axis), with the rank at index
  /// `peer` of this rank's group: a `send` pairs with the `receive` of the
  /// same tag there. `data` may be reused once either returns. A send never
  /// waits for its receiver: its bytes are copied out, and MPI sends them
  /// at once, NCCL with this rank's next receive (completeSends finishes
  /// them). A receive waits (under the timeout) for its bytes, on the
  /// stream for NCCL.
  virtual Status send(int group, int64_t peer, int64_t tag, const void *data,
                      size_t bytes, const char *location) = 0;
  virtual Status receive(int group, int64_t peer, int64_t tag, void *data,
                         size_t bytes, const char *location) = 0;
  /// Waits (within the timeout) for every send still in flight: the end of
  /// a pipeline step.
  virtual Status completeSends(const char *what);
  /// Posts a receive of `bytes` with `tag` from the rank at index `peer` of
  /// `group` ahead of the program's `receive` of them, which then takes the
  /// bytes already there: they arrive while this rank computes. Receives
  /// with the same peer and tag pair up in the order they are posted. MPI
  /// posts them into host memory; the default (NCCL, which pairs transfers
  /// by order) posts nothing.
  virtual Status postReceive(int group, int64_t peer, int64_t tag, size_t bytes,
                             const char *location);
  /// Lets posted receives progress (MPI moves bytes only inside its calls).
  virtual void progressTransfers() {}
  /// Whether point-to-point transfers between two ranks pair up by their
  /// order rather than by tag (NCCL).
  virtual bool matchesTransfersByOrder() const { return false; }
  /// What a nonblocking collective computes.
  enum class CollectiveKind { AllReduce, ReduceScatter, AllGather };
  /// One tensor of a nonblocking collective over a group of n ranks:
  ///   AllReduce: the sum of `count` elements of `input` into `output`
  ///     (which may be `input`);
  ///   ReduceScatter: the sum of `count` elements of `input`, whose block
  ///     groupIndex (count / n elements) lands in `output`;
  ///   AllGather: the group's blocks of `count` elements each, in group
  ///     order, into `output` (n * count elements).
  struct CollectiveItem {
    DType dtype;
    const void *input;
    void *output;
    int64_t count;
  };
  /// Starts `items` over `group` as one group of collectives (NCCL: one
  /// launch on the communication stream; MPI: requests on a communicator
  /// of their own), and returns a request for testCollectives and
  /// waitCollectives. The buffers must stay untouched until the request
  /// completes. The default runs them to completion here (request -1).
  virtual Status startCollectives(int group, CollectiveKind kind,
                                  const std::vector<CollectiveItem> &items,
                                  const char *what, int &request);
  /// Whether `request` has completed (its results may be read), without
  /// waiting; lets MPI progress it.
  virtual Status testCollectives(int request, bool &done);
  /// Waits (within the timeout) for `request`: on CUDA, orders the compute
  /// stream after it. A request already waited for, or -1, returns at once.
  virtual Status waitCollectives(int request, const char *what);
  /// Whether waitCollectives returns once the collectives are done (MPI),
  /// or once the device is told to wait for them (NCCL).
  virtual bool waitsOnHost() const { return true; }

  /// The collectives a running program starts (cleave.wait reads them):
  /// queued by queueStarted, started as one group by launchStarted (or by
  /// a queued item of another group, kind or type), and finished by
  /// awaitStarted on the output of any of them, which waits for its whole
  /// group. progressStarted lets MPI move them between ops.
  Status queueStarted(int group, CollectiveKind kind,
                      const CollectiveItem &item, const char *location);
  Status launchStarted(const char *location);
  Status awaitStarted(const void *output, const char *location);
  void progressStarted();
  bool hasStarted() const { return !startedRequests.empty(); }
  /// With `overlap` false (--overlap 0), each group is waited for as it
  /// launches: the same collectives, none hidden (the baseline). A queued
  /// group launches once it holds `bucketBytes` (--bucket-mb).
  void setStartedOptions(bool overlap, double bucketBytes) {
    overlapStarted = overlap;
    startedBucketBytes = bucketBytes;
  }

  /// Waits until every rank of the job gets here.
  virtual Status barrier(const char *what) = 0;
  /// Waits (within the timeout) for collectives still queued on the device.
  virtual Status drain(const char *what);
  /// Ends every process of the job with `code` (after an error on this rank
  /// that may leave its peers waiting in a collective).
  [[noreturn]] virtual void abortJob(int code) = 0;

  /// Bytes this rank has sent since the last reset, counted as
  /// cleave-print-cost predicts them (ring algorithms: an all-reduce moves
  /// 2 (n-1)/n of its buffer, the others (n-1)/n).
  double getCommunicatedBytes() const { return communicatedBytes; }
  void resetCommunicatedBytes() { communicatedBytes = 0; }
  void countBytes(int group, double bytes, bool isAllReduce);
  /// A point-to-point send moves its whole buffer.
  void countTransfer(double bytes) { communicatedBytes += bytes; }

  /// This rank's index within each group, in device memory (i32 each):
  /// device_index copies from here without waiting for the device.
  const int32_t *getDeviceGroupIndices() const {
    return static_cast<const int32_t *>(groupIndices->get());
  }

protected:
  explicit Communicator(Context &context) : context(context) {}
  /// Sets the mesh, rank, coordinates and the groups of `spec`.
  Status setUp(const MeshSpec &spec, int rank, int size);
  /// Fills the device table of group indices (after setUp).
  Status setUpDeviceIndices();
  /// Passes `status` through on one rank; on several, a failure is printed
  /// and ends the job (the peers may be waiting for this rank).
  Status abortJobOnError(Status status);
  /// Prints why a wait gave up and aborts the job.
  [[noreturn]] void failTimeout(const char *op, int group,
                                const char *location);

  Context &context;
  int rank = 0, size = 1;
  Mesh mesh;
  std::vector<int64_t> coordinates;
  std::vector<std::vector<int>> groups;
  double timeoutSeconds = kDefaultCollectiveTimeout;
  double communicatedBytes = 0;
  std::unique_ptr<DeviceBuffer> groupIndices;

private:
  /// Items queued by queueStarted, not yet launched.
  struct QueuedCollectives {
    int group = -1;
    CollectiveKind kind = CollectiveKind::AllReduce;
    DType dtype = DType::F32;
    std::vector<CollectiveItem> items;
    double bytes = 0;
  } queued;
  /// The request of each launched item, by output buffer.
  std::map<const void *, int> startedRequests;
  /// Launched groups not yet seen to end, by request, while a trace
  /// records them: when each started and what it holds.
  struct TracedGroup {
    double start;
    std::string name;
  };
  std::map<int, TracedGroup> tracedGroups;
  bool overlapStarted = true;
  double startedBucketBytes = 25.0 * 1024 * 1024;
  /// Records the span of `request`'s group, if traced, as it ends.
  void endTracedGroup(int request);
  /// Waits for `request`'s group; a traced one also records the host's
  /// wait and the group's end.
  Status finishGroup(int request, const char *location);
};

/// Joins the job the launcher started (MPI), checks that it has as many
/// ranks as the mesh has devices, and creates the communicator of `spec` for
/// `context`'s backend: MPI on the CPU; on CUDA, NCCL (bootstrapped over
/// MPI) unless CLEAVE_COLLECTIVES=mpi asks for MPI staged through host
/// memory. A failure after the ranks have met (creating sub-communicators)
/// aborts the job: the peers would wait for this rank. The communicator
/// must be destroyed before `context`.
Status createCommunicator(Context &context, const MeshSpec &spec,
                          std::unique_ptr<Communicator> &communicator);

/// The collective timeout: CLEAVE_COLLECTIVE_TIMEOUT seconds, or the default.
Status getCollectiveTimeout(double &seconds);

/// The process's index among the ranks on its machine, from the launcher's
/// environment (Open MPI, Slurm, torchrun), or 0.
int getLocalRank();

//===----------------------------------------------------------------------===//
// What generated code calls. Shapes are the per-rank inputs'; `group` indexes
// the program's MeshSpec::groups.
//===----------------------------------------------------------------------===//

Status allReduce(Context &context, int group, DType dtype, int64_t count,
                 ReduceKind kind, const void *input, void *output,
                 const char *location);
/// Concatenates the group's blocks along `dim`.
Status allGather(Context &context, int group, size_t elementBytes,
                 const Shape &inputShape, int dim, const void *input,
                 void *output, const char *location);
/// Reduces over the group and keeps this rank's block along `dim`.
Status reduceScatter(Context &context, int group, DType dtype,
                     const Shape &inputShape, int dim, ReduceKind kind,
                     const void *input, void *output, const char *location);
/// Splits along `splitDim`, exchanges, concatenates along `concatDim`.
Status allToAll(Context &context, int group, size_t elementBytes,
                const Shape &inputShape, int splitDim, int concatDim,
                const void *input, void *output, const char *location);
/// Keeps this rank's block along `dim` (no communication).
Status localSlice(Context &context, int group, size_t elementBytes,
                  const Shape &inputShape, int dim, const void *input,
                  void *output, const char *location);
/// cleave.send and cleave.recv: `bytes` to or from the rank at index `peer`
/// of `group` (the pipeline axis).
Status sendTo(Context &context, int group, int64_t peer, int64_t tag,
              size_t bytes, const void *input, const char *location);
Status receiveFrom(Context &context, int group, int64_t peer, int64_t tag,
                   size_t bytes, void *output, const char *location);
/// Writes this rank's index within the group (an i32 scalar).
Status deviceIndex(Context &context, int group, int32_t *output,
                   const char *location);
/// Result `result` of the running program, a pending sum, is computed at
/// `data` (see ResultSpec::pendingGroup). Fails when no training loop
/// listens: nothing would complete the sum.
Status resultReady(Context &context, int result, const void *data);
/// The running update is about to read the gradient at `data` for the
/// first time: waits for its reduction.
Status awaitInput(Context &context, const void *data);
/// Collectives read through a cleave.wait: each start queues one (sums
/// only, over blocks with no elements before `dim`), launchCollectives
/// starts those queued as one group, and waitCollective, given a started
/// collective's output, waits for its group.
Status startAllReduce(Context &context, int group, DType dtype, int64_t count,
                      const void *input, void *output, const char *location);
Status startAllGather(Context &context, int group, size_t elementBytes,
                      const Shape &inputShape, int dim, const void *input,
                      void *output, const char *location);
Status startReduceScatter(Context &context, int group, DType dtype,
                          const Shape &inputShape, int dim, const void *input,
                          void *output, const char *location);
Status launchCollectives(Context &context, const char *location);
Status waitCollective(Context &context, const void *output,
                      const char *location);

} // namespace cleave::rt

#endif // CLEAVE_RUNTIME_COMMUNICATOR_H
