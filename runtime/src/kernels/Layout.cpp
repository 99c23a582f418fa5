//===- Layout.cpp - transpose, slices, padding and iota -------------------===//
//
// Data movement as gathers and scatters of rows: output row r of a gather
// (input row r of a scatter) is the innermost dimension, found once per row
// from the layout; a team copies it, 128 bits at a time where the innermost
// dimension is contiguous and aligned. Compiled for both backends.
//
//===----------------------------------------------------------------------===//

#include "KernelSupport.h"

namespace cleave::rt {
namespace {

/// Element i of a tensor whose dimension has `size` elements and whose later
/// dimensions hold `inner` elements is index (i / inner) % size.
CLEAVE_KERNEL void iotaKernel(int64_t count, int64_t inner, int64_t size,
                              int32_t *CLEAVE_RESTRICT output) {
  CLEAVE_PARALLEL_FOR(i, count) {
    output[i] = static_cast<int32_t>((i / inner) % size);
  }
}

/// Row r of the strided side starts at base + getStridedOffset(r, ...) and
/// steps by the innermost stride.
struct GatherLayout {
  int rank = 0;
  int64_t sizes[kMaxRank] = {};
  int64_t strides[kMaxRank] = {};
  int64_t base = 0;
};

/// Copies row `row` between its strided place and its dense place: with
/// `gather` from the strided input to the dense output, else back.
template <typename Team, int V, bool Gather, typename T>
CLEAVE_KERNEL void moveRowsKernel(int64_t rows, GatherLayout layout,
                                  const T *CLEAVE_RESTRICT input,
                                  T *CLEAVE_RESTRICT output) {
  int64_t width = layout.sizes[layout.rank - 1];
  int64_t step = layout.strides[layout.rank - 1];
  CLEAVE_FOR_EACH_ROW(Team, row, rows) {
    int64_t strided = layout.base + getStridedOffset(row, layout.rank - 1,
                                                     layout.sizes,
                                                     layout.strides);
    const T *from = input + (Gather ? strided : row * width);
    T *to = output + (Gather ? row * width : strided);
    if (V > 1) { // Contiguous on both sides.
      CLEAVE_FOR_ROW_CHUNKS(Team, j, width, V)
      storeVector(to + j, loadVector<V>(from + j));
    } else if (Gather) {
      CLEAVE_FOR_ROW_CHUNKS(Team, j, width, 1)
      to[j] = from[j * step];
    } else {
      CLEAVE_FOR_ROW_CHUNKS(Team, j, width, 1)
      to[j * step] = from[j];
    }
  }
}

/// Rows of the innermost dimension a gather or scatter iterates over; a
/// scalar becomes one row of one element.
int64_t getRows(GatherLayout &layout) {
  if (layout.rank == 0) {
    layout.rank = 1;
    layout.sizes[0] = 1;
    layout.strides[0] = 1;
  }
  int64_t rows = 1;
  for (int i = 0; i < layout.rank; ++i)
    rows *= layout.sizes[i];
  int64_t width = layout.sizes[layout.rank - 1];
  return width == 0 ? 0 : rows / width;
}

/// The block of `blockShape` at `offsets` inside `outerShape`.
GatherLayout getBlockLayout(const Shape &outerShape, const int64_t *offsets,
                            const Shape &blockShape) {
  GatherLayout layout;
  int64_t outerStrides[kMaxRank];
  getRowMajorStrides(outerShape, outerStrides);
  layout.rank = blockShape.rank;
  for (int i = 0; i < blockShape.rank; ++i) {
    layout.sizes[i] = blockShape.dims[i];
    layout.strides[i] = outerStrides[i];
    layout.base += offsets[i] * outerStrides[i];
  }
  return layout;
}

/// Moves every row of `layout` (see moveRowsKernel).
template <bool Gather>
Status moveRows(Context &context, size_t elementBytes, GatherLayout layout,
                const void *input, void *output, const char *name,
                const char *location) {
  int64_t rows = getRows(layout);
  if (rows == 0)
    return Status::success();
  int64_t width = layout.sizes[layout.rank - 1];
  return dispatchBytes(elementBytes, name, location, [&](auto tag) {
    using T = decltype(tag);
    // Vectors need a contiguous innermost dimension and every row start on
    // the strided side aligned.
    bool vectors = layout.strides[layout.rank - 1] == 1 &&
                   layout.base % kVectorWidth<T> == 0 &&
                   canUseVectors<T>(width, {input, output});
    for (int i = 0; i + 1 < layout.rank && vectors; ++i)
      vectors = layout.strides[i] % kVectorWidth<T> == 0;
    return dispatchRows<T>(width, vectors, [&](auto team, auto vectorWidth) {
      using Team = decltype(team);
      constexpr int V = decltype(vectorWidth)::value;
      CLEAVE_LAUNCH_ROWS(context, Team, (moveRowsKernel<Team, V, Gather, T>),
                         rows)
      (rows, layout, static_cast<const T *>(input), static_cast<T *>(output));
      return context.checkLaunch(name, location);
    });
  });
}

} // namespace

Status transpose(Context &context, size_t elementBytes, const Shape &shape,
                 const int *perm, const void *input, void *output,
                 const char *location) {
  int64_t strides[kMaxRank];
  getRowMajorStrides(shape, strides);
  GatherLayout layout;
  layout.rank = shape.rank;
  for (int i = 0; i < shape.rank; ++i) {
    layout.sizes[i] = shape.dims[perm[i]];
    layout.strides[i] = strides[perm[i]];
  }
  return moveRows<true>(context, elementBytes, layout, input, output,
                        "transpose", location);
}

Status extractSlice(Context &context, size_t elementBytes,
                    const Shape &inputShape, const int64_t *offsets,
                    const Shape &outputShape, const void *input, void *output,
                    const char *location) {
  return moveRows<true>(context, elementBytes,
                        getBlockLayout(inputShape, offsets, outputShape), input,
                        output, "slice", location);
}

Status insertSlice(Context &context, size_t elementBytes,
                   const Shape &inputShape, const int64_t *offsets,
                   const Shape &outputShape, const void *input, void *output,
                   const char *location) {
  return moveRows<false>(context, elementBytes,
                         getBlockLayout(outputShape, offsets, inputShape),
                         input, output, "concat", location);
}

Status pad(Context &context, size_t elementBytes, const Shape &inputShape,
           const int64_t *offsets, const Shape &outputShape, const void *input,
           void *output, const char *location) {
  int64_t elements = 1;
  for (int i = 0; i < outputShape.rank; ++i)
    elements *= outputShape.dims[i];
  CLEAVE_RETURN_IF_ERROR(
      context.clear(output, static_cast<size_t>(elements) * elementBytes));
  return insertSlice(context, elementBytes, inputShape, offsets, outputShape,
                     input, output, location);
}

Status iota(Context &context, const Shape &shape, int dim, int32_t *output,
            const char *location) {
  int64_t count = 1, inner = 1;
  for (int d = 0; d < shape.rank; ++d) {
    count *= shape.dims[d];
    if (d > dim)
      inner *= shape.dims[d];
  }
  CLEAVE_LAUNCH(context, iotaKernel, count)
  (count, inner, shape.dims[dim], output);
  return context.checkLaunch("iota", location);
}

} // namespace cleave::rt
