//===- KernelSupport.h - What the library kernel families share -*- C++ -*-===//
//
// Internal to the runtime. Each kernel family (kernels/*.cpp) is one source
// compiled twice: by the host compiler into the CPU backend and, copied to
// a .cu file, by nvcc into the CUDA backend. This header holds what they
// share: element-type dispatch, the choice of team and vector width for row
// kernels, and the column sums finished in a second pass.
//
//===----------------------------------------------------------------------===//

#ifndef CLEAVE_RUNTIME_SRC_KERNELS_KERNELSUPPORT_H
#define CLEAVE_RUNTIME_SRC_KERNELS_KERNELSUPPORT_H

#include "cleave/runtime/Kernels.h"
#include "cleave/runtime/Portability.h"

#include <string>
#include <type_traits>

namespace cleave::rt {

inline Status unsupported(const char *op, DType dtype, const char *location) {
  return Status::error(std::string(op) + " at " + location +
                       ": unsupported element type " + getDTypeName(dtype));
}

/// Calls `body(T{})` with T the storage type of a floating-point `dtype`.
template <typename Body>
Status dispatchFloat(DType dtype, const char *op, const char *location,
                     Body &&body) {
  switch (dtype) {
  case DType::F64:
    return body(double{});
  case DType::F32:
    return body(float{});
  case DType::BF16:
    return body(bf16{});
  case DType::F16:
    return body(f16{});
  default:
    return unsupported(op, dtype, location);
  }
}

/// Like dispatchFloat, plus i32 and i64.
template <typename Body>
Status dispatchNumeric(DType dtype, const char *op, const char *location,
                       Body &&body) {
  switch (dtype) {
  case DType::I32:
    return body(int32_t{});
  case DType::I64:
    return body(int64_t{});
  default:
    return dispatchFloat(dtype, op, location, body);
  }
}

template <typename Body>
Status dispatchIndex(DType dtype, const char *op, const char *location,
                     Body &&body) {
  switch (dtype) {
  case DType::I32:
    return body(int32_t{});
  case DType::I64:
    return body(int64_t{});
  default:
    return unsupported(op, dtype, location);
  }
}

/// Calls `body(T{})` with an unsigned type of `elementBytes` bytes: moving
/// data does not need to know what the bytes mean.
template <typename Body>
Status dispatchBytes(size_t elementBytes, const char *op, const char *location,
                     Body &&body) {
  switch (elementBytes) {
  case 1:
    return body(uint8_t{});
  case 2:
    return body(uint16_t{});
  case 4:
    return body(uint32_t{});
  case 8:
    return body(uint64_t{});
  default:
    return Status::error(std::string(op) + " at " + location +
                         ": unsupported element size " +
                         std::to_string(elementBytes));
  }
}

template <int V> using VectorWidth = std::integral_constant<int, V>;

/// Rows up to this many elements go to a warp (at most 32 per lane), longer
/// ones to a block.
constexpr int64_t kWarpRowLimit = 1024;

/// Calls `body(Team{}, VectorWidth<V>{})` with the team that suits rows of
/// `cols` elements and the widest access `vectors` allows (see
/// canUseVectors). On the CPU both choices are one: a serial team, V = 1.
template <typename T, typename Body>
Status dispatchRows(int64_t cols, bool vectors, Body &&body) {
  constexpr int kWide = kVectorWidth<T>;
  if (cols <= kWarpRowLimit)
    return vectors ? body(WarpTeam{}, VectorWidth<kWide>{})
                   : body(WarpTeam{}, VectorWidth<1>{});
  return vectors ? body(BlockTeam{}, VectorWidth<kWide>{})
                 : body(BlockTeam{}, VectorWidth<1>{});
}

/// The offset of element `linear` of a row-major index space of `sizes`
/// whose dimensions step by `strides`.
CLEAVE_HD int64_t getStridedOffset(int64_t linear, int rank,
                                   const int64_t *sizes,
                                   const int64_t *strides) {
  int64_t offset = 0;
  for (int i = rank - 1; i >= 0; --i) {
    offset += (linear % sizes[i]) * strides[i];
    linear /= sizes[i];
  }
  return offset;
}

inline void getRowMajorStrides(const Shape &shape, int64_t *strides) {
  int64_t stride = 1;
  for (int i = shape.rank - 1; i >= 0; --i) {
    strides[i] = stride;
    stride *= shape.dims[i];
  }
}

//===----------------------------------------------------------------------===//
// Column sums in two passes
//===----------------------------------------------------------------------===//
//
// Sums down the columns of a [rows, cols] matrix (norm scale and bias
// gradients, bias gradients) split the rows into chunks: the first pass
// gives each (chunk, column) to one thread, which sums the chunk's rows in
// order; the second sums each column's chunk partials in chunk order. No
// atomics, so the result is the same on every run; the chunk count depends
// only on the shape and the device. The CPU uses one chunk: each column is
// summed over all rows in row order.

/// Rows per chunk: enough chunks that chunks * cols threads fill the device.
inline int64_t getRowsPerChunk(int64_t rows, int64_t cols) {
#if defined(__CUDACC__)
  int64_t threads = getGridLimit() * kThreadsPerBlock;
  int64_t chunks = cols > 0 ? (threads + cols - 1) / cols : 1;
  // A chunk of fewer rows than this costs more in partials than it saves.
  constexpr int64_t kMinimumRows = 16;
  // More chunks than this make the second pass, a thread per column
  // adding its chunks in order, the slower one.
  constexpr int64_t kMaximumChunks = 64;
  if (chunks > kMaximumChunks)
    chunks = kMaximumChunks;
  int64_t rowsPerChunk = (rows + chunks - 1) / (chunks > 0 ? chunks : 1);
  return rowsPerChunk < kMinimumRows ? kMinimumRows : rowsPerChunk;
#else
  (void)cols;
  return rows > 0 ? rows : 1;
#endif
}

inline int64_t getChunkCount(int64_t rows, int64_t rowsPerChunk) {
  return rows == 0 ? 1 : (rows + rowsPerChunk - 1) / rowsPerChunk;
}

/// The column and the rows [first, last) of first-pass item `item` (chunk
/// item / cols of column item % cols).
CLEAVE_HD void getChunkItem(int64_t item, int64_t rows, int64_t cols,
                            int64_t rowsPerChunk, int64_t &column,
                            int64_t &first, int64_t &last) {
  column = item % cols;
  first = item / cols * rowsPerChunk;
  last = first + rowsPerChunk < rows ? first + rowsPerChunk : rows;
}

/// The second pass: output[c] = sum (or max) over chunks of
/// partials[chunk * cols + c], divided by `divisor` (a mean) when not 1.
template <typename T, typename C>
CLEAVE_KERNEL void finishColumnsKernel(int64_t chunks, int64_t cols,
                                       bool takeMax, C divisor,
                                       const C *CLEAVE_RESTRICT partials,
                                       T *CLEAVE_RESTRICT output) {
  CLEAVE_PARALLEL_FOR(column, cols) {
    C result = partials[column];
    for (int64_t chunk = 1; chunk < chunks; ++chunk) {
      C value = partials[chunk * cols + column];
      result = takeMax ? cleave::max(result, value) : result + value;
    }
    if (divisor != C(1))
      result = cleave::divide(result, divisor);
    output[column] = store<T>(result);
  }
}

template <typename T, typename C>
Status finishColumns(Context &context, int64_t chunks, int64_t cols,
                     bool takeMax, C divisor, const C *partials, T *output,
                     const char *name, const char *location) {
  CLEAVE_LAUNCH(context, (finishColumnsKernel<T, C>), cols)
  (chunks, cols, takeMax, divisor, partials, output);
  return context.checkLaunch(name, location);
}

/// Rounds a scratch offset up so the next buffer starts 256-byte aligned.
inline size_t alignScratch(size_t bytes) { return (bytes + 255) / 256 * 256; }

} // namespace cleave::rt

#endif // CLEAVE_RUNTIME_SRC_KERNELS_KERNELSUPPORT_H
