//===- GradientReducer.cpp - Data-parallel sums once per step -------------===//

#include "GradientReducer.h"

#include "Trace.h"

namespace cleave::rt {

Status GradientReducer::add(const Program &program, TrainingState &state) {
  for (int i = 0; i < program.numResults; ++i) {
    const ResultSpec &result = program.results[i];
    if (result.pendingGroup < 0)
      continue;
    const TensorSpec &spec = result.tensor;
    if (result.role != OutputRole::Gradient && result.role != OutputRole::Loss)
      return Status::error(std::string("result '") + spec.name + "' of '" +
                           program.name +
                           "' is a pending sum but neither a gradient nor "
                           "the loss");
    if (result.scatterDim >= spec.shape.rank)
      return Status::error(
          std::string("result '") + spec.name + "' has no dimension " +
          std::to_string(result.scatterDim) + " to reduce-scatter along");
    int64_t count =
        static_cast<int64_t>(getByteSize(spec) / getDTypeSize(spec.dtype));
    // Two stages on one rank computing parts of one gradient would need
    // one accumulator; pipelines put a tied table's parts on two ranks.
    if (itemByName.count(spec.name))
      return Status::error(std::string("two stages on this rank compute "
                                       "parts of '") +
                           spec.name + "', which the loop reduces once");
    Item item;
    item.name = spec.name;
    item.dtype = spec.dtype;
    item.shape = spec.shape;
    item.count = count;
    item.group = result.pendingGroup;
    item.scatterDim = result.scatterDim;
    if (item.scatterDim >= 0) {
      int64_t ranks = communicator.getGroupSize(item.group);
      const TensorSpec *block = state.find(spec.name);
      if (!block || spec.shape.dims[item.scatterDim] % ranks != 0 ||
          getByteSize(*block) * ranks != getByteSize(spec))
        return Status::error(std::string("the update takes no block of '") +
                             spec.name + "' to reduce-scatter into");
    }
    if (item.scatterDim >= 0 || result.role == OutputRole::Loss) {
      item.owned = std::make_unique<DeviceBuffer>(context);
      CLEAVE_RETURN_IF_ERROR(
          item.owned->allocate(getByteSize(spec), "a gradient accumulator"));
      item.accumulator = item.owned->get();
    } else {
      void *unused = nullptr;
      CLEAVE_RETURN_IF_ERROR(
          state.add(spec, ArgumentKind::Input, result.split, unused));
      item.accumulator = state.getPointer(spec.name);
    }
    // Blocks along an inner dimension are strided: the reduce-scatter
    // reads them packed one after another.
    item.reduced = item.accumulator;
    if (item.scatterDim > 0) {
      item.packed = std::make_unique<DeviceBuffer>(context);
      CLEAVE_RETURN_IF_ERROR(
          item.packed->allocate(getByteSize(spec), "a packed gradient"));
      item.reduced = item.packed->get();
    }
    item.target =
        item.scatterDim >= 0 ? state.getPointer(spec.name) : item.accumulator;
    int id = static_cast<int>(items.size());
    if (result.role == OutputRole::Loss)
      lossItem = id;
    itemOf[{&program, i}] = id;
    itemByName[item.name] = id;
    itemByTarget[item.target] = id;
    items.push_back(std::move(item));
  }
  return Status::success();
}

Status GradientReducer::onResultReady(int index, const void *data) {
  auto found = itemOf.find({running, index});
  if (found == itemOf.end())
    return Status::error("result " + std::to_string(index) + " of '" +
                         (running ? running->name : "?") +
                         "' is no pending sum the training loop knows");
  int id = found->second;
  Item &item = items[id];
  if (item.added == microBatches)
    return Status::error("'" + item.name +
                         "' is computed more than once per micro-batch");
  // The mean loss's gradient is the mean of the micro-batch gradients.
  CLEAVE_RETURN_IF_ERROR(accumulate(
      context, item.dtype, item.count, 1.0 / static_cast<double>(microBatches),
      data, item.accumulator, item.added == 0, "gradient accumulation"));
  if (++item.added < microBatches)
    return Status::success();
  finalOrder.push_back(id);
  if (!options.overlap)
    return Status::success();
  CLEAVE_RETURN_IF_ERROR(fill(id));
  // The last tensor closes every bucket still open.
  return finalOrder.size() == items.size() ? startOpen() : Status::success();
}

Status GradientReducer::fill(int id) {
  const Item &item = items[id];
  int key = item.group * 64 + static_cast<int>(item.dtype) * 2 +
            (item.scatterDim >= 0);
  std::vector<int> closed = filler.add(
      key, id, static_cast<size_t>(item.count) * getDTypeSize(item.dtype));
  return closed.empty() ? Status::success() : start(closed);
}

Status GradientReducer::startOpen() {
  // Without overlap nothing is bucketed before the update asks.
  if (!options.overlap)
    for (int id : finalOrder)
      if (items[id].bucket < 0)
        CLEAVE_RETURN_IF_ERROR(fill(id));
  for (const std::vector<int> &ids : filler.flush())
    CLEAVE_RETURN_IF_ERROR(start(ids));
  return Status::success();
}

Status GradientReducer::start(const std::vector<int> &ids) {
  Bucket bucket;
  bucket.items = ids;
  bucket.start = Trace::now();
  std::vector<Communicator::CollectiveItem> reductions;
  const Item &first = items[ids.front()];
  for (int id : ids) {
    Item &item = items[id];
    item.bucket = static_cast<int>(buckets.size());
    double bytes = static_cast<double>(item.count) * getDTypeSize(item.dtype);
    bucket.bytes += bytes;
    communicator.countBytes(item.group, bytes, item.scatterDim < 0);
    if (item.scatterDim > 0)
      CLEAVE_RETURN_IF_ERROR(pack(item));
    reductions.push_back({item.dtype, item.reduced, item.target, item.count});
  }
  CLEAVE_RETURN_IF_ERROR(communicator.startCollectives(
      first.group,
      first.scatterDim >= 0 ? Communicator::CollectiveKind::ReduceScatter
                            : Communicator::CollectiveKind::AllReduce,
      reductions, "the gradient reduction", bucket.request));
  buckets.push_back(std::move(bucket));
  return Status::success();
}

Status GradientReducer::pack(const Item &item) {
  int64_t ranks = communicator.getGroupSize(item.group);
  Shape block = item.shape;
  block.dims[item.scatterDim] /= ranks;
  size_t elementBytes = getDTypeSize(item.dtype);
  size_t blockBytes = static_cast<size_t>(item.count / ranks) * elementBytes;
  int64_t offsets[kMaxRank] = {};
  for (int64_t r = 0; r < ranks; ++r) {
    offsets[item.scatterDim] = r * block.dims[item.scatterDim];
    CLEAVE_RETURN_IF_ERROR(extractSlice(
        context, elementBytes, item.shape, offsets, block, item.accumulator,
        static_cast<uint8_t *>(item.reduced) + r * blockBytes,
        "the gradient reduction"));
  }
  return Status::success();
}

void GradientReducer::finished(Bucket &bucket, int b) {
  bucket.done = true;
  if (Trace *trace = Trace::get())
    trace->add("reduction",
               "bucket " + std::to_string(b) + " (" +
                   std::to_string(bucket.items.size()) + " tensors, " +
                   std::to_string(static_cast<int64_t>(bucket.bytes)) + " B)",
               bucket.start, Trace::now());
}

void GradientReducer::progress() {
  for (size_t b = 0; b < buckets.size(); ++b) {
    Bucket &bucket = buckets[b];
    bool done = false;
    // A failure surfaces in the wait.
    if (!bucket.done &&
        communicator.testCollectives(bucket.request, done).ok() && done)
      finished(bucket, static_cast<int>(b));
  }
}

Status GradientReducer::wait(int b) {
  Bucket &bucket = buckets[b];
  if (bucket.done)
    return communicator.waitCollectives(bucket.request,
                                        "the gradient reduction");
  double start = Trace::now();
  CLEAVE_RETURN_IF_ERROR(
      communicator.waitCollectives(bucket.request, "the gradient reduction"));
  // On CUDA the compute stream waits, not the host, which never sees this
  // bucket end: it gets no span (the device timeline has it).
  if (!communicator.waitsOnHost()) {
    bucket.done = true;
    return Status::success();
  }
  if (Trace *trace = Trace::get())
    trace->add("communication", "wait for bucket " + std::to_string(b), start,
               Trace::now());
  finished(bucket, b);
  return Status::success();
}

Status GradientReducer::onInputRead(const void *data) {
  auto found = itemByTarget.find(data);
  if (found == itemByTarget.end())
    return Status::success();
  const Item &item = items[found->second];
  if (item.added != microBatches)
    return Status::error("the update reads '" + item.name +
                         "' before every micro-batch has added to it");
  if (!options.overlap) {
    // The baseline: every reduction starts and ends before the update.
    if (item.bucket < 0)
      CLEAVE_RETURN_IF_ERROR(startOpen());
    for (size_t b = 0; b < buckets.size(); ++b)
      CLEAVE_RETURN_IF_ERROR(wait(static_cast<int>(b)));
    return Status::success();
  }
  if (item.bucket < 0)
    CLEAVE_RETURN_IF_ERROR(startOpen());
  return wait(item.bucket);
}

Status GradientReducer::finishStep() {
  if (finalOrder.size() != items.size())
    return Status::error("the step ended before every micro-batch computed "
                         "its gradients");
  CLEAVE_RETURN_IF_ERROR(startOpen());
  for (size_t b = 0; b < buckets.size(); ++b)
    CLEAVE_RETURN_IF_ERROR(wait(static_cast<int>(b)));
  progress();
  buckets.clear();
  finalOrder.clear();
  for (Item &item : items) {
    item.added = 0;
    item.bucket = -1;
  }
  return Status::success();
}

Status GradientReducer::readLoss(double &loss) {
  const Item &item = items[lossItem];
  std::vector<uint8_t> bytes(getDTypeSize(item.dtype));
  CLEAVE_RETURN_IF_ERROR(
      context.copyToHost(bytes.data(), item.target, bytes.size()));
  loss = readScalar(item.dtype, bytes.data());
  return Status::success();
}

} // namespace cleave::rt
