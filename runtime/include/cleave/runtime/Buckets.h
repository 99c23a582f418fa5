//===- Buckets.h - Grouping gradients into reduction buckets ----*- C++ -*-===//
//
// The training loop reduces the data-parallel gradients once per step, in
// buckets: as the last micro-batch's backward finishes each gradient, it
// joins the open bucket, and a bucket that reaches the size cap starts its
// reduction at once while the backward goes on (as PyTorch DDP's buckets
// do). Tensors that cannot share one collective (another group, another
// kind of reduction, another dtype) fill separate buckets. Every rank of a
// group runs the same programs in the same order, so they all form the
// same buckets and start them in the same order, as collectives must.
//
//===----------------------------------------------------------------------===//

#ifndef CLEAVE_RUNTIME_BUCKETS_H
#define CLEAVE_RUNTIME_BUCKETS_H

#include <cstddef>
#include <map>
#include <vector>

namespace cleave::rt {

/// The default cap: PyTorch DDP's 25 MiB.
constexpr double kDefaultBucketBytes = 25.0 * 1024 * 1024;

class BucketFiller {
public:
  explicit BucketFiller(double capBytes) : capBytes(capBytes) {}

  /// Tensor `id` of `bytes` is final; `key` names what it can share a
  /// collective with. Returns the bucket it closes (its ids in the order
  /// they became final), or an empty list while the bucket stays open.
  std::vector<int> add(int key, int id, size_t bytes);
  /// Closes every open bucket, in the order they were opened.
  std::vector<std::vector<int>> flush();

private:
  struct Open {
    std::vector<int> ids;
    double bytes = 0;
    /// Orders open buckets by when they opened.
    long serial = 0;
  };
  double capBytes;
  std::map<int, Open> open;
  long serial = 0;
};

} // namespace cleave::rt

#endif // CLEAVE_RUNTIME_BUCKETS_H
