//===- Embedding.cpp - embedding, its gradient, and rotary ----------------===//
//
// The embedding gathers a table row per index, a team per row. Its gradient
// sorts the indices once (CUB's radix sort on CUDA, a stable sort on the
// CPU; both keep equal indices in position order) and then gives each table
// row to a team, which finds its run of positions by binary search and sums
// their updates in position order: deterministic, no atomics, and no scan
// of every index per table row. Compiled for both backends.
//
//===----------------------------------------------------------------------===//

#include "KernelSupport.h"

#if defined(__CUDACC__)
#include <cub/device/device_radix_sort.cuh>
#else
#include <algorithm>
#include <numeric>
#endif

namespace cleave::rt {
namespace {

template <typename Team, int V, typename T, typename I>
CLEAVE_KERNEL void embeddingKernel(int64_t count, int64_t vocab, int64_t width,
                                   const T *CLEAVE_RESTRICT table,
                                   const I *CLEAVE_RESTRICT indices,
                                   T *CLEAVE_RESTRICT output, int32_t site,
                                   int32_t *errorSlot) {
  CLEAVE_FOR_EACH_ROW(Team, row, count) {
    int64_t index = static_cast<int64_t>(indices[row]);
    T *to = output + row * width;
    if (index < 0 || index >= vocab) {
      if (Team::getRank() == 0)
        CLEAVE_ATOMIC_STORE(errorSlot, site);
      CLEAVE_FOR_ROW_CHUNKS(Team, j, width, 1)
      to[j] = T();
      continue;
    }
    const T *from = table + index * width;
    CLEAVE_FOR_ROW_CHUNKS(Team, j, width, V)
    storeVector(to + j, loadVector<V>(from + j));
  }
}

/// Sort keys for the gradient: the index, or `vocab` (sorted last, summed
/// nowhere) for one outside the table, which also reports `site`. Values
/// are the positions.
template <typename I>
CLEAVE_KERNEL void makeSortKeysKernel(int64_t count, int64_t vocab,
                                      const I *CLEAVE_RESTRICT indices,
                                      uint32_t *CLEAVE_RESTRICT keys,
                                      int32_t *CLEAVE_RESTRICT positions,
                                      int32_t site, int32_t *errorSlot) {
  CLEAVE_PARALLEL_FOR(i, count) {
    int64_t index = static_cast<int64_t>(indices[i]);
    bool inside = index >= 0 && index < vocab;
    if (!inside)
      CLEAVE_ATOMIC_STORE(errorSlot, site);
    keys[i] = static_cast<uint32_t>(inside ? index : vocab);
    positions[i] = static_cast<int32_t>(i);
  }
}

/// The first p in [0, count) with keys[p] >= key, or count.
CLEAVE_HD int64_t findFirstKey(const uint32_t *keys, int64_t count,
                               uint32_t key) {
  int64_t low = 0, high = count;
  while (low < high) {
    int64_t middle = low + (high - low) / 2;
    if (keys[middle] < key)
      low = middle + 1;
    else
      high = middle;
  }
  return low;
}

/// output[row, :] = sum of updates[p, :] over the positions p whose index is
/// `row`, in position order; 0 where no index names the row.
template <typename Team, int V, typename T>
CLEAVE_KERNEL void sumSortedRowsKernel(int64_t vocab, int64_t count,
                                       int64_t width,
                                       const uint32_t *CLEAVE_RESTRICT keys,
                                       const int32_t *CLEAVE_RESTRICT positions,
                                       const T *CLEAVE_RESTRICT updates,
                                       T *CLEAVE_RESTRICT output) {
  using C = compute_t<T>;
  CLEAVE_FOR_EACH_ROW(Team, row, vocab) {
    int64_t first = findFirstKey(keys, count, static_cast<uint32_t>(row));
    int64_t last = findFirstKey(keys, count, static_cast<uint32_t>(row + 1));
    T *to = output + row * width;
    CLEAVE_FOR_ROW_CHUNKS(Team, j, width, V) {
      C sums[V];
      for (int i = 0; i < V; ++i)
        sums[i] = C(0);
      for (int64_t p = first; p < last; ++p) {
        Vector<T, V> values =
            loadVector<V>(updates + positions[p] * width + j);
        for (int i = 0; i < V; ++i)
          sums[i] += toCompute(values[i]);
      }
      Vector<T, V> result;
      for (int i = 0; i < V; ++i)
        result[i] = store<T>(sums[i]);
      storeVector(to + j, result);
    }
  }
}

/// The bits that hold every key in [0, vocab] (vocab marks a bad index).
inline int getKeyBits(int64_t vocab) {
  int bits = 1;
  while (bits < 32 && (uint64_t(1) << bits) <= static_cast<uint64_t>(vocab))
    ++bits;
  return bits;
}

/// Sorts (key, position) pairs by key, keeping positions of equal keys in
/// order; the sorted pairs land in `sortedKeys` and `sortedPositions`.
Status sortPairs(Context &context, int64_t count, int64_t vocab,
                 uint32_t *keys, int32_t *positions, uint32_t *sortedKeys,
                 int32_t *sortedPositions, void *temporary,
                 size_t temporaryBytes, const char *location) {
#if defined(__CUDACC__)
  int endBit = getKeyBits(vocab);
  cudaError_t error = cub::DeviceRadixSort::SortPairs(
      temporary, temporaryBytes, keys, sortedKeys, positions, sortedPositions,
      static_cast<int>(count), 0, endBit,
      static_cast<cudaStream_t>(context.getStream()));
  if (error != cudaSuccess)
    return Status::error(std::string("scatter_add at ") + location +
                         ": sorting the indices failed: " +
                         cudaGetErrorString(error));
  return Status::success();
#else
  (void)context, (void)vocab, (void)temporary, (void)temporaryBytes,
      (void)location, (void)positions;
  std::iota(sortedPositions, sortedPositions + count, 0);
  std::stable_sort(sortedPositions, sortedPositions + count,
                   [&](int32_t a, int32_t b) { return keys[a] < keys[b]; });
  for (int64_t p = 0; p < count; ++p)
    sortedKeys[p] = keys[sortedPositions[p]];
  return Status::success();
#endif
}

/// Scratch bytes the sort itself needs beyond the four arrays: asked with
/// the same count and key bits the sort runs with.
size_t getSortTemporaryBytes(int64_t count, int64_t vocab) {
#if defined(__CUDACC__)
  size_t bytes = 0;
  cub::DeviceRadixSort::SortPairs(nullptr, bytes, (const uint32_t *)nullptr,
                                  (uint32_t *)nullptr,
                                  (const int32_t *)nullptr, (int32_t *)nullptr,
                                  static_cast<int>(count), 0, getKeyBits(vocab));
  return bytes;
#else
  (void)count, (void)vocab;
  return 0;
#endif
}

/// The frequency of rotated pair `pair` of `dim` values, rescaled as
/// Llama 3.1 does when `scaling.factor` is set (Hugging Face's "llama3"
/// rope type: long wavelengths are divided by the factor, short ones kept,
/// those between blended).
CLEAVE_HD double getRotaryFrequency(double base, int64_t pair, int64_t dim,
                                    const RopeScaling &scaling) {
  double frequency =
      ::pow(base, -2.0 * static_cast<double>(pair) / static_cast<double>(dim));
  if (scaling.factor == 0)
    return frequency;
  double wavelength = 2.0 * 3.14159265358979323846 / frequency;
  if (wavelength < scaling.originalMaxPositions / scaling.highFreqFactor)
    return frequency;
  if (wavelength > scaling.originalMaxPositions / scaling.lowFreqFactor)
    return frequency / scaling.factor;
  double weight =
      (scaling.originalMaxPositions / wavelength - scaling.lowFreqFactor) /
      (scaling.highFreqFactor - scaling.lowFreqFactor);
  return (1.0 - weight) * frequency / scaling.factor + weight * frequency;
}

template <typename T>
CLEAVE_KERNEL void rotaryKernel(int64_t count, int64_t seq, int64_t dim,
                                double base, RopeScaling scaling, bool inverse,
                                const T *CLEAVE_RESTRICT input,
                                T *CLEAVE_RESTRICT output) {
  using C = compute_t<T>;
  int64_t half = dim / 2;
  CLEAVE_PARALLEL_FOR(element, count) {
    int64_t column = element % dim;
    int64_t position = (element / dim) % seq;
    int64_t pair = column < half ? column : column - half;
    // The angle in double: positions times small frequencies lose digits in
    // float long before the result does.
    double angle = static_cast<double>(position) *
                   getRotaryFrequency(base, pair, dim, scaling);
    C cosine = static_cast<C>(::cos(angle));
    C sine = static_cast<C>(inverse ? -::sin(angle) : ::sin(angle));
    const T *row = input + (element - column);
    C value = toCompute(row[column]);
    C rotated = column < half ? -toCompute(row[column + half])
                              : toCompute(row[column - half]);
    output[element] = store<T>(value * cosine + rotated * sine);
  }
}

} // namespace

Status embedding(Context &context, DType dtype, DType indexType, int64_t count,
                 int64_t vocab, int64_t width, const void *table,
                 const void *indices, void *output, int32_t site,
                 const char *location) {
  return dispatchFloat(dtype, "embedding", location, [&](auto tag) {
    using T = decltype(tag);
    return dispatchIndex(indexType, "embedding", location, [&](auto index) {
      using I = decltype(index);
      bool vectors = canUseVectors<T>(width, {table, output});
      return dispatchRows<T>(width, vectors, [&](auto team, auto vectorWidth) {
        using Team = decltype(team);
        constexpr int V = decltype(vectorWidth)::value;
        CLEAVE_LAUNCH_ROWS(context, Team, (embeddingKernel<Team, V, T, I>),
                           count)
        (count, vocab, width, static_cast<const T *>(table),
         static_cast<const I *>(indices), static_cast<T *>(output), site,
         context.getIndexErrorSlot());
        return context.checkLaunch("embedding", location);
      });
    });
  });
}

Status scatterAdd(Context &context, DType dtype, DType indexType, int64_t count,
                  int64_t vocab, int64_t width, const void *indices,
                  const void *updates, void *output, int32_t site,
                  const char *location) {
  if (count > INT32_MAX || vocab >= INT32_MAX)
    return Status::error(std::string("scatter_add at ") + location +
                         ": more than 2^31 indices or table rows");
  // Four arrays of `count` 32-bit entries, then the sort's own scratch.
  size_t arrayBytes = alignScratch(static_cast<size_t>(count) * 4);
  size_t temporaryBytes = getSortTemporaryBytes(count, vocab);
  void *scratch = nullptr;
  CLEAVE_RETURN_IF_ERROR(context.getScratch(
      ScratchSlot::Sort, 4 * arrayBytes + temporaryBytes, &scratch));
  auto *bytes = static_cast<char *>(scratch);
  auto *keys = reinterpret_cast<uint32_t *>(bytes);
  auto *positions = reinterpret_cast<int32_t *>(bytes + arrayBytes);
  auto *sortedKeys = reinterpret_cast<uint32_t *>(bytes + 2 * arrayBytes);
  auto *sortedPositions = reinterpret_cast<int32_t *>(bytes + 3 * arrayBytes);
  void *temporary = bytes + 4 * arrayBytes;

  CLEAVE_RETURN_IF_ERROR(dispatchIndex(indexType, "scatter_add", location,
                                       [&](auto index) {
    using I = decltype(index);
    CLEAVE_LAUNCH(context, makeSortKeysKernel<I>, count)
    (count, vocab, static_cast<const I *>(indices), keys, positions, site,
     context.getIndexErrorSlot());
    return context.checkLaunch("scatter_add", location);
  }));
  if (count > 0)
    CLEAVE_RETURN_IF_ERROR(sortPairs(context, count, vocab, keys, positions,
                                     sortedKeys, sortedPositions, temporary,
                                     temporaryBytes, location));
  return dispatchFloat(dtype, "scatter_add", location, [&](auto tag) {
    using T = decltype(tag);
    bool vectors = canUseVectors<T>(width, {updates, output});
    return dispatchRows<T>(width, vectors, [&](auto team, auto vectorWidth) {
      using Team = decltype(team);
      constexpr int V = decltype(vectorWidth)::value;
      CLEAVE_LAUNCH_ROWS(context, Team, (sumSortedRowsKernel<Team, V, T>),
                         vocab)
      (vocab, count, width, sortedKeys, sortedPositions,
       static_cast<const T *>(updates), static_cast<T *>(output));
      return context.checkLaunch("scatter_add", location);
    });
  });
}

Status rotary(Context &context, DType dtype, int64_t outer, int64_t seq,
              int64_t dim, double base, const RopeScaling &scaling,
              bool inverse, const void *input, void *output,
              const char *location) {
  return dispatchFloat(dtype, "rotary", location, [&](auto tag) {
    using T = decltype(tag);
    int64_t count = outer * seq * dim;
    CLEAVE_LAUNCH(context, rotaryKernel<T>, count)
    (count, seq, dim, base, scaling, inverse, static_cast<const T *>(input),
     static_cast<T *>(output));
    return context.checkLaunch("rotary", location);
  });
}

} // namespace cleave::rt
