//===- GradientReducer.h - Data-parallel sums once per step -----*- C++ -*-===//
//
// Internal to the runtime. A pipeline stage's programs return their
// data-parallel gradients (and the loss) as pending sums
// (ResultSpec::pendingGroup, from cleave-defer-gradient-reduction). The
// reducer hears of each as soon as the generated code computes it
// (resultReady), adds it into the step's accumulator, and once the last
// micro-batch has added its part, puts it into a bucket (Buckets.h); a full
// bucket starts its reduction at once, on a communicator (and, on CUDA, a
// stream) of its own, while the backward goes on. The update waits for a
// gradient's bucket where it first reads it (awaitInput). On the CPU, MPI
// progresses a nonblocking collective only inside MPI calls, so the
// reducer tests the buckets in flight between every two ops
// (docs/overlap.md).
//
//===----------------------------------------------------------------------===//

#ifndef CLEAVE_RUNTIME_SRC_GRADIENTREDUCER_H
#define CLEAVE_RUNTIME_SRC_GRADIENTREDUCER_H

#include "cleave/runtime/Buckets.h"
#include "cleave/runtime/Communicator.h"
#include "cleave/runtime/Program.h"

#include "TrainingState.h"

#include <map>
#include <memory>
#include <string>
#include <vector>

namespace cleave::rt {

class GradientReducer final : public ResultListener {
public:
  GradientReducer(Context &context, Communicator &communicator,
                  int64_t microBatches, const ReductionOptions &options)
      : context(context), communicator(communicator),
        microBatches(microBatches), options(options),
        filler(options.bucketBytes) {}

  /// Takes the pending results of `program`, a program this rank runs.
  /// A gradient summed whole accumulates in the state's tensor of its name
  /// (what the update reads), in place; one the update takes a block of
  /// accumulates in a buffer of the reducer's and is reduce-scattered into
  /// the state's block; the loss accumulates in a buffer of the reducer's.
  Status add(const Program &program, TrainingState &state);
  bool empty() const { return items.empty(); }

  /// The program whose results the generated code reports next.
  void setRunning(const Program *program) { running = program; }

  Status onResultReady(int index, const void *data) override;
  Status onInputRead(const void *data) override;
  void progress() override;

  /// Starts what is left and waits for every reduction of the step.
  Status finishStep();
  /// Whether the loss is one of the pending sums; then readLoss gives the
  /// step's mean once finishStep has returned.
  bool reducesLoss() const { return lossItem >= 0; }
  Status readLoss(double &loss);

private:
  struct Item {
    std::string name;
    DType dtype;
    Shape shape;
    /// Elements of the accumulator (the whole tensor).
    int64_t count;
    int group;
    /// The dimension the update takes its block along, or -1 (whole).
    int scatterDim;
    void *accumulator;
    /// What the collective reads: the accumulator, or its blocks packed.
    void *reduced;
    /// Where the reduction writes: the accumulator, or the state's block.
    void *target;
    std::unique_ptr<DeviceBuffer> owned, packed;
    /// Micro-batches added this step.
    int64_t added = 0;
    int bucket = -1;
  };
  struct Bucket {
    std::vector<int> items;
    int request = -1;
    double start = 0;
    /// Seen finished, or (on CUDA) waited for by the compute stream.
    bool done = false;
    double bytes = 0;
  };

  /// Puts final tensor `id` into its bucket; starts the bucket if full.
  Status fill(int id);
  /// Starts the reduction of the tensors `ids`.
  Status start(const std::vector<int> &ids);
  /// Copies `item`'s blocks along its scatter dimension one after another.
  Status pack(const Item &item);
  Status startOpen();
  /// Waits for bucket `b` (the time counts as exposed).
  Status wait(int b);
  void finished(Bucket &bucket, int b);

  Context &context;
  Communicator &communicator;
  int64_t microBatches;
  ReductionOptions options;
  BucketFiller filler;
  std::vector<Item> items;
  std::map<std::pair<const Program *, int>, int> itemOf;
  std::map<const void *, int> itemByTarget;
  std::map<std::string, int> itemByName;
  int lossItem = -1;
  const Program *running = nullptr;
  /// This step's buckets, and its items in the order they became final.
  std::vector<Bucket> buckets;
  std::vector<int> finalOrder;
};

} // namespace cleave::rt

#endif // CLEAVE_RUNTIME_SRC_GRADIENTREDUCER_H
