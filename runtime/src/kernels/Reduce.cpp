//===- Reduce.cpp - reduce and accumulate ---------------------------------===//
//
// A reduction over trailing dimensions is a row kernel (a team per kept
// element); one over leading dimensions is a column sum in two passes (bias
// gradients); any other mix of dimensions gives each kept element to one
// thread, which walks its reduced elements in order. Compiled for both
// backends.
//
//===----------------------------------------------------------------------===//

#include "KernelSupport.h"

namespace cleave::rt {
namespace {

/// Combines `value` into `result`: sums for Sum and Mean, max for Max.
template <typename C>
CLEAVE_HD C combine(ReduceKind kind, C result, C value) {
  return kind == ReduceKind::Max ? cleave::max(result, value) : result + value;
}

/// Each row of `cols` contiguous elements reduces to one output element.
/// Max starts every thread from the row's first element (max is idempotent),
/// so no identity is needed and integers work too.
template <typename Team, int V, typename T>
CLEAVE_KERNEL void reduceRowsKernel(int64_t rows, int64_t cols,
                                    ReduceKind kind,
                                    const T *CLEAVE_RESTRICT input,
                                    T *CLEAVE_RESTRICT output) {
  using C = compute_t<T>;
  CLEAVE_FOR_EACH_ROW(Team, row, rows) {
    const T *x = input + row * cols;
    C result = kind == ReduceKind::Max ? toCompute(x[0]) : C(0);
    CLEAVE_FOR_ROW_CHUNKS(Team, j, cols, V) {
      Vector<T, V> xs = loadVector<V>(x + j);
      for (int i = 0; i < V; ++i)
        result = combine(kind, result, toCompute(xs[i]));
    }
    if (kind == ReduceKind::Max)
      result = Team::reduce(result, MaxOp{});
    else
      result = Team::reduce(result, SumOp{});
    if (kind == ReduceKind::Mean)
      result = cleave::divide(result, static_cast<C>(cols));
    if (Team::getRank() == 0)
      output[row] = store<T>(result);
  }
}

/// The first pass of a reduction over leading dimensions: each (chunk,
/// column) combines its chunk's rows in order.
template <typename T>
CLEAVE_KERNEL void reduceColumnPartialsKernel(
    int64_t rows, int64_t cols, int64_t rowsPerChunk, int64_t chunks,
    ReduceKind kind, const T *CLEAVE_RESTRICT input,
    compute_t<T> *CLEAVE_RESTRICT partials) {
  using C = compute_t<T>;
  CLEAVE_PARALLEL_FOR(item, chunks * cols) {
    int64_t column, first, last;
    getChunkItem(item, rows, cols, rowsPerChunk, column, first, last);
    C result = kind == ReduceKind::Max ? toCompute(input[first * cols + column])
                                       : C(0);
    for (int64_t row = first; row < last; ++row)
      result = combine(kind, result, toCompute(input[row * cols + column]));
    partials[item] = result;
  }
}

/// Where each kept output element starts in the input, and the reduced
/// dimensions to walk from there.
struct ReduceLayout {
  int keptRank = 0;
  int64_t keptSizes[kMaxRank] = {};
  int64_t keptStrides[kMaxRank] = {};
  int reducedRank = 0;
  int64_t reducedSizes[kMaxRank] = {};
  int64_t reducedStrides[kMaxRank] = {};
  int64_t reducedCount = 1;
};

/// Any mix of kept and reduced dimensions: one thread per kept element.
template <typename T>
CLEAVE_KERNEL void reduceStridedKernel(int64_t count, ReduceKind kind,
                                       ReduceLayout layout,
                                       const T *CLEAVE_RESTRICT input,
                                       T *CLEAVE_RESTRICT output) {
  using C = compute_t<T>;
  CLEAVE_PARALLEL_FOR(element, count) {
    const T *start = input + getStridedOffset(element, layout.keptRank,
                                              layout.keptSizes,
                                              layout.keptStrides);
    C result = kind == ReduceKind::Max ? toCompute(start[0]) : C(0);
    for (int64_t r = 0; r < layout.reducedCount; ++r)
      result = combine(kind, result,
                       toCompute(start[getStridedOffset(
                           r, layout.reducedRank, layout.reducedSizes,
                           layout.reducedStrides)]));
    if (kind == ReduceKind::Mean)
      result = cleave::divide(result, static_cast<C>(layout.reducedCount));
    output[element] = store<T>(result);
  }
}

/// y = alpha * x (+ y), V elements per iteration (128-bit accesses when V
/// is the vector width).
template <int V, typename T>
CLEAVE_KERNEL void accumulateKernel(int64_t vectors, double alpha,
                                    bool overwrite, const T *CLEAVE_RESTRICT x,
                                    T *CLEAVE_RESTRICT y) {
  using C = compute_t<T>;
  CLEAVE_PARALLEL_FOR(v, vectors) {
    Vector<T, V> xs = loadVector<V>(x + v * V);
    Vector<T, V> ys = loadVector<V>(y + v * V);
    for (int i = 0; i < V; ++i) {
      C sum = C(alpha) * toCompute(xs[i]);
      ys[i] = store<T>(overwrite ? sum : toCompute(ys[i]) + sum);
    }
    storeVector(y + v * V, ys);
  }
}

} // namespace

Status reduce(Context &context, DType dtype, ReduceKind kind,
              const Shape &shape, uint32_t reducedMask, const void *input,
              void *output, const char *location) {
  ReduceLayout layout;
  int64_t strides[kMaxRank];
  getRowMajorStrides(shape, strides);
  // Whether the reduced dimensions all follow (trailing) or all precede
  // (leading) the kept ones.
  bool trailing = true, leading = true, seenReduced = false, seenKept = false;
  for (int i = 0; i < shape.rank; ++i) {
    if (reducedMask & (1u << i)) {
      layout.reducedSizes[layout.reducedRank] = shape.dims[i];
      layout.reducedStrides[layout.reducedRank++] = strides[i];
      layout.reducedCount *= shape.dims[i];
      leading = leading && !seenKept;
      seenReduced = true;
    } else {
      layout.keptSizes[layout.keptRank] = shape.dims[i];
      layout.keptStrides[layout.keptRank++] = strides[i];
      trailing = trailing && !seenReduced;
      seenKept = true;
    }
  }
  int64_t count = 1;
  for (int i = 0; i < layout.keptRank; ++i)
    count *= layout.keptSizes[i];
  int64_t reducedCount = layout.reducedCount;
  return dispatchNumeric(dtype, "reduce", location, [&](auto tag) {
    using T = decltype(tag);
    using C = compute_t<T>;
    if (count == 0)
      return Status::success();
    if (reducedCount == 0) // Nothing to reduce: sums and means are 0.
      return context.clear(output, static_cast<size_t>(count) * sizeof(T));
    if (trailing) {
      bool vectors = canUseVectors<T>(reducedCount, {input});
      return dispatchRows<T>(reducedCount, vectors, [&](auto team,
                                                        auto width) {
        using Team = decltype(team);
        constexpr int V = decltype(width)::value;
        CLEAVE_LAUNCH_ROWS(context, Team, (reduceRowsKernel<Team, V, T>),
                           count)
        (count, reducedCount, kind, static_cast<const T *>(input),
         static_cast<T *>(output));
        return context.checkLaunch("reduce", location);
      });
    }
    if (leading) {
      int64_t rowsPerChunk = getRowsPerChunk(reducedCount, count);
      int64_t chunks = getChunkCount(reducedCount, rowsPerChunk);
      void *partials = nullptr;
      CLEAVE_RETURN_IF_ERROR(context.getScratch(
          ScratchSlot::Reduce, static_cast<size_t>(chunks * count) * sizeof(C),
          &partials));
      CLEAVE_LAUNCH(context, reduceColumnPartialsKernel<T>, chunks * count)
      (reducedCount, count, rowsPerChunk, chunks, kind,
       static_cast<const T *>(input), static_cast<C *>(partials));
      CLEAVE_RETURN_IF_ERROR(context.checkLaunch("reduce", location));
      C divisor =
          kind == ReduceKind::Mean ? static_cast<C>(reducedCount) : C(1);
      return finishColumns(context, chunks, count, kind == ReduceKind::Max,
                           divisor, static_cast<const C *>(partials),
                           static_cast<T *>(output), "reduce", location);
    }
    CLEAVE_LAUNCH(context, reduceStridedKernel<T>, count)
    (count, kind, layout, static_cast<const T *>(input),
     static_cast<T *>(output));
    return context.checkLaunch("reduce", location);
  });
}

Status accumulate(Context &context, DType dtype, int64_t count, double alpha,
                  const void *x, void *y, bool overwrite,
                  const char *location) {
  return dispatchFloat(dtype, "accumulate", location, [&](auto tag) {
    using T = decltype(tag);
    constexpr int V = kVectorWidth<T>;
    if (V > 1 && canUseVectors<T>(count, {x, y})) {
      CLEAVE_LAUNCH(context, (accumulateKernel<V, T>), count / V)
      (count / V, alpha, overwrite, static_cast<const T *>(x),
       static_cast<T *>(y));
    } else {
      CLEAVE_LAUNCH(context, (accumulateKernel<1, T>), count)
      (count, alpha, overwrite, static_cast<const T *>(x),
       static_cast<T *>(y));
    }
    return context.checkLaunch("accumulate", location);
  });
}

} // namespace cleave::rt
