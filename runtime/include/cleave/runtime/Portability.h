//===- Portability.h - One kernel source for CUDA and the CPU ---*- C++ -*-===//
//
// Generated kernels and the runtime's own kernels are written once against
// these macros. Compiled by nvcc, a kernel is a `__global__` function with a
// grid-stride loop, launched on the context's stream. Compiled by a host C++
// compiler, it is a plain function whose loop is an OpenMP `parallel for`:
// every iteration writes its own elements and reduces sequentially, so the
// CPU results are bit-identical from run to run.
//
// Two shapes of parallelism:
//  - element loops (CLEAVE_PARALLEL_FOR): one iteration per element;
//  - row loops (CLEAVE_FOR_EACH_ROW): a team of threads cooperates on each
//    row. On CUDA a team is a thread block (BlockTeam, for long rows) or a
//    warp (WarpTeam, for short ones); its threads stride over the row
//    (CLEAVE_FOR_ROW_CHUNKS), V elements at a time where 128-bit accesses
//    are aligned, and combine their partial results with Team::reduce, a
//    CUB reduction whose tree is fixed, so results do not vary from run to
//    run. On the CPU a team is one thread: the stride is 1, the reduction is
//    the identity, and each row reduces in element order.
//
// Element types: bf16 and f16 are stored as 16 bits and computed in float;
// f64 is computed in double.
//
//===----------------------------------------------------------------------===//

#ifndef CLEAVE_RUNTIME_PORTABILITY_H
#define CLEAVE_RUNTIME_PORTABILITY_H

#include <cmath>
#include <cstdint>
#include <cstring>
#include <initializer_list>
#include <type_traits>

#if defined(__CUDACC__)
#include <cuda_bf16.h>
#include <cuda_fp16.h>
#include <cuda_runtime.h>

#include <cub/block/block_reduce.cuh>
#include <cub/warp/warp_reduce.cuh>

#define CLEAVE_HD __host__ __device__ __forceinline__
/// A helper only kernels call (it may use team reductions or atomics).
#define CLEAVE_DEVICE __device__ __forceinline__
#define CLEAVE_KERNEL __global__
#define CLEAVE_RESTRICT __restrict__
/// Runs `body` for every `index` in [0, count).
#define CLEAVE_PARALLEL_FOR(index, count)                                      \
  for (int64_t index = blockIdx.x * (int64_t)blockDim.x + threadIdx.x;         \
       index < (count); index += (int64_t)gridDim.x * blockDim.x)
/// `CLEAVE_LAUNCH(ctx, kernel, count)(args...)` starts `kernel` with enough
/// threads for `count` iterations on the context's stream.
#define CLEAVE_LAUNCH(ctx, kernel, count)                                      \
  kernel<<<::cleave::getLaunchBlocks(count), ::cleave::kThreadsPerBlock, 0,   \
           static_cast<cudaStream_t>((ctx).getStream())>>>

/// `CLEAVE_LAUNCH_ROWS(ctx, Team, kernel, rows)(args...)` starts a row
/// kernel with a team per row, up to the grid the device keeps resident.
#define CLEAVE_LAUNCH_ROWS(ctx, Team, kernel, rows)                            \
  kernel<<<::cleave::getRowLaunchBlocks<Team>(rows),                         \
           ::cleave::kThreadsPerBlock, 0,                                    \
           static_cast<cudaStream_t>((ctx).getStream())>>>
/// Runs the loop body for each row this thread's team owns.
#define CLEAVE_FOR_EACH_ROW(Team, row, rows)                                   \
  for (int64_t row = Team::getIndex(); row < (rows); row += Team::getCount())

namespace cleave {
constexpr int kThreadsPerBlock = 256;

/// The most blocks a launch asks for: the device's multiprocessors times
/// the blocks each keeps resident, set when the context starts (CUDA's
/// limit until then). Grid-stride loops cover the rest, so a bigger grid
/// would only queue blocks behind the resident ones.
inline int64_t &getGridLimit() {
  static int64_t limit = 65535;
  return limit;
}

inline unsigned clampBlocks(int64_t blocks) {
  int64_t limit = getGridLimit();
  return static_cast<unsigned>(blocks < 1 ? 1 : (blocks > limit ? limit : blocks));
}

inline unsigned getLaunchBlocks(int64_t count) {
  return clampBlocks((count + kThreadsPerBlock - 1) / kThreadsPerBlock);
}

/// A thread block cooperating on a row.
struct BlockTeam {
  static constexpr int kThreads = kThreadsPerBlock;
  static constexpr int kTeamsPerBlock = 1;
  __device__ static int getRank() { return threadIdx.x; }
  __device__ static int64_t getIndex() { return blockIdx.x; }
  __device__ static int64_t getCount() { return gridDim.x; }
  /// Combines every thread's `value` with `op`; all threads get the result.
  template <typename V, typename Op>
  __device__ static V reduce(V value, Op op) {
    using Reduce = cub::BlockReduce<V, kThreads>;
    __shared__ typename Reduce::TempStorage storage;
    __shared__ V result;
    V total = Reduce(storage).Reduce(value, op);
    if (threadIdx.x == 0)
      result = total;
    __syncthreads();
    V shared = result;
    // The next reduction may reuse the storage and the result.
    __syncthreads();
    return shared;
  }
};

/// A warp cooperating on a row; a block holds kTeamsPerBlock of them.
struct WarpTeam {
  static constexpr int kThreads = 32;
  static constexpr int kTeamsPerBlock = kThreadsPerBlock / kThreads;
  __device__ static int getRank() { return threadIdx.x % kThreads; }
  __device__ static int64_t getIndex() {
    return blockIdx.x * (int64_t)kTeamsPerBlock + threadIdx.x / kThreads;
  }
  __device__ static int64_t getCount() {
    return gridDim.x * (int64_t)kTeamsPerBlock;
  }
  template <typename V, typename Op>
  __device__ static V reduce(V value, Op op) {
    using Reduce = cub::WarpReduce<V>;
    __shared__ typename Reduce::TempStorage storage[kTeamsPerBlock];
    __shared__ V results[kTeamsPerBlock];
    int warp = threadIdx.x / kThreads;
    V total = Reduce(storage[warp]).Reduce(value, op);
    if (getRank() == 0)
      results[warp] = total;
    __syncwarp();
    V shared = results[warp];
    __syncwarp();
    return shared;
  }
};

template <typename Team> inline unsigned getRowLaunchBlocks(int64_t rows) {
  return clampBlocks((rows + Team::kTeamsPerBlock - 1) / Team::kTeamsPerBlock);
}

/// Elements per 128-bit access.
template <typename T>
constexpr int kVectorWidth = sizeof(T) <= 16 ? static_cast<int>(16 / sizeof(T)) : 1;
constexpr size_t kVectorBytes = 16;

using bf16 = __nv_bfloat16;
using f16 = __half;

CLEAVE_HD float toCompute(bf16 value) { return __bfloat162float(value); }
CLEAVE_HD float toCompute(f16 value) { return __half2float(value); }
template <typename T> CLEAVE_HD T fromFloat(float value);
template <> CLEAVE_HD bf16 fromFloat<bf16>(float value) {
  return __float2bfloat16_rn(value);
}
template <> CLEAVE_HD f16 fromFloat<f16>(float value) {
  return __float2half_rn(value);
}
template <typename T> CLEAVE_HD T fromDouble(double value);
template <> CLEAVE_HD bf16 fromDouble<bf16>(double value) {
  return __double2bfloat16(value);
}
template <> CLEAVE_HD f16 fromDouble<f16>(double value) {
  return __double2half(value);
}
} // namespace cleave

/// Stores `value` at `pointer`; several threads may store at once.
#define CLEAVE_ATOMIC_STORE(pointer, value) atomicExch((pointer), (value))

#else // Host compiler: the CPU backend.

#define CLEAVE_HD inline
#define CLEAVE_DEVICE inline
#define CLEAVE_KERNEL static inline
#define CLEAVE_RESTRICT __restrict__
#define CLEAVE_PRAGMA(text) _Pragma(#text)
#define CLEAVE_PARALLEL_FOR(index, count)                                      \
  CLEAVE_PRAGMA(omp parallel for schedule(static))                             \
  for (int64_t index = 0; index < (count); ++index)
#define CLEAVE_LAUNCH(ctx, kernel, count) kernel
#define CLEAVE_LAUNCH_ROWS(ctx, Team, kernel, rows) kernel
#define CLEAVE_FOR_EACH_ROW(Team, row, rows)                                   \
  CLEAVE_PRAGMA(omp parallel for schedule(static))                             \
  for (int64_t row = 0; row < (rows); ++row)
#define CLEAVE_ATOMIC_STORE(pointer, value)                                    \
  __atomic_store_n((pointer), (value), __ATOMIC_RELAXED)

namespace cleave {

/// On the CPU a row belongs to one thread: its team reduces nothing.
struct SerialTeam {
  static constexpr int kThreads = 1;
  static constexpr int kTeamsPerBlock = 1;
  static int getRank() { return 0; }
  template <typename V, typename Op> static V reduce(V value, Op) {
    return value;
  }
};
using BlockTeam = SerialTeam;
using WarpTeam = SerialTeam;

/// One element at a time: wider accesses buy nothing on the CPU and would
/// only multiply the instantiations.
template <typename T> constexpr int kVectorWidth = 1;
constexpr size_t kVectorBytes = 1;

/// Bit-level conversions, rounding to nearest even like the GPU intrinsics.
CLEAVE_HD uint32_t getFloatBits(float value) {
  uint32_t bits;
  std::memcpy(&bits, &value, sizeof(bits));
  return bits;
}
CLEAVE_HD float getFloatFromBits(uint32_t bits) {
  float value;
  std::memcpy(&value, &bits, sizeof(value));
  return value;
}

struct bf16 {
  uint16_t bits;
};
struct f16 {
  uint16_t bits;
};

CLEAVE_HD float toCompute(bf16 value) {
  return getFloatFromBits(static_cast<uint32_t>(value.bits) << 16);
}

CLEAVE_HD float toCompute(f16 value) {
  uint32_t sign = static_cast<uint32_t>(value.bits & 0x8000) << 16;
  uint32_t exponent = (value.bits >> 10) & 0x1f;
  uint32_t mantissa = value.bits & 0x3ff;
  if (exponent == 0x1f) // Inf or NaN.
    return getFloatFromBits(sign | 0x7f800000 | (mantissa << 13));
  if (exponent != 0)
    return getFloatFromBits(sign | ((exponent + 112) << 23) | (mantissa << 13));
  // Zero or subnormal: mantissa * 2^-24.
  float magnitude = static_cast<float>(mantissa) * 5.9604644775390625e-8f;
  return sign ? -magnitude : magnitude;
}

template <typename T> CLEAVE_HD T fromFloat(float value);

template <> CLEAVE_HD bf16 fromFloat<bf16>(float value) {
  uint32_t bits = getFloatBits(value);
  if ((bits & 0x7fffffff) > 0x7f800000) // NaN stays a quiet NaN.
    return bf16{static_cast<uint16_t>((bits >> 16) | 0x40)};
  uint32_t roundingBias = 0x7fff + ((bits >> 16) & 1);
  return bf16{static_cast<uint16_t>((bits + roundingBias) >> 16)};
}

template <> CLEAVE_HD f16 fromFloat<f16>(float value) {
  uint32_t bits = getFloatBits(value);
  uint16_t sign = static_cast<uint16_t>((bits >> 16) & 0x8000);
  uint32_t magnitude = bits & 0x7fffffff;
  if (magnitude > 0x7f800000) // NaN.
    return f16{static_cast<uint16_t>(sign | 0x7e00)};
  if (magnitude >= 0x477ff000) // Rounds to a value past the largest half.
    return f16{static_cast<uint16_t>(sign | 0x7c00)};
  if (magnitude < 0x38800000) { // Subnormal half (or zero).
    // Scale so that the half's subnormal step is 1 and round to nearest even.
    float scaled = getFloatFromBits(magnitude) * 16777216.0f;
    float rounded = std::nearbyint(scaled);
    return f16{static_cast<uint16_t>(sign | static_cast<uint16_t>(rounded))};
  }
  uint32_t roundingBias = 0xfff + ((magnitude >> 13) & 1);
  uint32_t rebased = magnitude - (112u << 23) + roundingBias;
  return f16{static_cast<uint16_t>(sign | (rebased >> 13))};
}

/// Rounds to float "to odd": an inexact result gets an odd last bit. A
/// second rounding to fewer than 23 bits is then the correctly rounded one.
CLEAVE_HD float roundToOddFloat(double value) {
  float rounded = static_cast<float>(value);
  if (static_cast<double>(rounded) != value && value == value &&
      (getFloatBits(rounded) & 1) == 0)
    rounded = std::nextafter(rounded, value > rounded ? INFINITY : -INFINITY);
  return rounded;
}

template <typename T> CLEAVE_HD T fromDouble(double value) {
  return fromFloat<T>(roundToOddFloat(value));
}

} // namespace cleave
#endif

namespace cleave {

// Loads widen to the compute type; stores narrow from it.
CLEAVE_HD float toCompute(float value) { return value; }
CLEAVE_HD double toCompute(double value) { return value; }
CLEAVE_HD int32_t toCompute(int32_t value) { return value; }
CLEAVE_HD int64_t toCompute(int64_t value) { return value; }
CLEAVE_HD bool toCompute(bool value) { return value; }

template <typename T> struct IsSixteenBit : std::false_type {};
template <> struct IsSixteenBit<bf16> : std::true_type {};
template <> struct IsSixteenBit<f16> : std::true_type {};

/// Converts a computed value (float, double, an integer or bool) to storage
/// type `To`, as cleave.cast defines it: floats round to nearest even (once,
/// also from double to 16 bits); float to integer truncates toward zero,
/// saturates at the integer's range and maps NaN to 0; anything to i1 is
/// `value != 0`.
template <typename To, typename From> CLEAVE_HD To convert(From value) {
  if constexpr (std::is_same_v<To, bool>) {
    return value != From(0);
  } else if constexpr (IsSixteenBit<To>::value) {
    if constexpr (std::is_same_v<From, float>)
      return fromFloat<To>(value);
    else
      return fromDouble<To>(static_cast<double>(value));
  } else if constexpr (std::is_integral_v<To> &&
                       std::is_floating_point_v<From>) {
    if (value != value)
      return To(0);
    // The range as From: -2^(n-1) is exact, and 2^(n-1) is where values
    // stop fitting. Plain arithmetic, so device code can use it too.
    constexpr To kLowest = static_cast<To>(std::make_unsigned_t<To>(1)
                                           << (sizeof(To) * 8 - 1));
    constexpr To kHighest = static_cast<To>(~kLowest);
    constexpr From kLowestAsFrom = static_cast<From>(kLowest);
    if (value <= kLowestAsFrom)
      return kLowest;
    if (value >= -kLowestAsFrom)
      return kHighest;
    return static_cast<To>(value);
  } else {
    return static_cast<To>(value);
  }
}

/// Writes a computed value of the same kind back to storage type `T`.
template <typename T, typename From> CLEAVE_HD T store(From value) {
  if constexpr (IsSixteenBit<T>::value)
    return convert<T>(value);
  else
    return static_cast<T>(value);
}

/// Division as cleave.div defines it: IEEE for floats; integers truncate
/// toward zero, x / 0 is 0 and the most negative value / -1 wraps.
template <typename T> CLEAVE_HD T divide(T a, T b) {
  if constexpr (std::is_same_v<T, bool>) {
    return b ? a : false;
  } else if constexpr (std::is_integral_v<T>) {
    if (b == 0)
      return T(0);
    if (b == T(-1))
      return static_cast<T>(std::make_unsigned_t<T>(0) -
                            static_cast<std::make_unsigned_t<T>>(a));
    return a / b;
  } else {
    return a / b;
  }
}

/// The type arithmetic on storage type `T` happens in.
template <typename T> struct ComputeType {
  using type = T;
};
template <> struct ComputeType<bf16> {
  using type = float;
};
template <> struct ComputeType<f16> {
  using type = float;
};
template <typename T> using compute_t = typename ComputeType<T>::type;

// Math in float or double, spelled the same on both targets.
CLEAVE_HD float exp(float x) { return ::expf(x); }
CLEAVE_HD double exp(double x) { return ::exp(x); }
CLEAVE_HD float log(float x) { return ::logf(x); }
CLEAVE_HD double log(double x) { return ::log(x); }
CLEAVE_HD float tanh(float x) { return ::tanhf(x); }
CLEAVE_HD double tanh(double x) { return ::tanh(x); }
CLEAVE_HD float sqrt(float x) { return ::sqrtf(x); }
CLEAVE_HD double sqrt(double x) { return ::sqrt(x); }
CLEAVE_HD float rsqrt(float x) { return 1.0f / ::sqrtf(x); }
CLEAVE_HD double rsqrt(double x) { return 1.0 / ::sqrt(x); }
CLEAVE_HD float cos(float x) { return ::cosf(x); }
CLEAVE_HD double cos(double x) { return ::cos(x); }
CLEAVE_HD float sin(float x) { return ::sinf(x); }
CLEAVE_HD double sin(double x) { return ::sin(x); }

template <typename T> CLEAVE_HD T max(T a, T b) {
  // NaN propagates, as in the dialect's max.
  return (a != a || a > b) ? a : b;
}
template <typename T> CLEAVE_HD T min(T a, T b) {
  return (a != a || a < b) ? a : b;
}
template <typename T> CLEAVE_HD T relu(T x) {
  return x > T(0) ? x : (x != x ? x : T(0));
}
template <typename T> CLEAVE_HD T gelu(T x) {
  // The tanh approximation GPT-2 uses, 0.5 x (1 + tanh(u)), written as the
  // equal x / (1 + exp(-2u)): one exp is much cheaper than tanh, and the
  // limits come out exact (x for large x, -0 for very negative x).
  const T kTwoSqrt2OverPi = T(1.5957691216057308);
  T u2 = kTwoSqrt2OverPi * (x + T(0.044715) * x * x * x);
  return x / (T(1) + cleave::exp(-u2));
}
template <typename T> CLEAVE_HD T silu(T x) {
  return x / (T(1) + cleave::exp(-x));
}

//===----------------------------------------------------------------------===//
// Row loops
//===----------------------------------------------------------------------===//

/// Visits the row offsets this thread owns, `V` elements apart from its
/// teammates'. With one thread (the CPU) that is every chunk, in order.
#define CLEAVE_FOR_ROW_CHUNKS(Team, j, cols, V)                                \
  for (int64_t j = static_cast<int64_t>(Team::getRank()) * (V); j < (cols);    \
       j += static_cast<int64_t>(Team::kThreads) * (V))

/// `V` consecutive elements, aligned so that one access moves them all.
template <typename T, int V> struct alignas(sizeof(T) * V) Vector {
  T values[V];
  CLEAVE_HD T &operator[](int i) { return values[i]; }
  CLEAVE_HD const T &operator[](int i) const { return values[i]; }
};
template <int V, typename T> CLEAVE_HD Vector<T, V> loadVector(const T *from) {
  return *reinterpret_cast<const Vector<T, V> *>(from);
}
template <int V, typename T>
CLEAVE_HD void storeVector(T *to, const Vector<T, V> &values) {
  *reinterpret_cast<Vector<T, V> *>(to) = values;
}

/// Whether every pointer allows kVectorWidth<T>-wide accesses at each
/// multiple of `stride` elements from it (each row start, say).
template <typename T>
inline bool canUseVectors(int64_t stride,
                          std::initializer_list<const void *> pointers) {
  if (kVectorWidth<T> == 1 || stride % kVectorWidth<T> != 0)
    return false;
  for (const void *pointer : pointers)
    if (reinterpret_cast<uintptr_t>(pointer) % kVectorBytes != 0)
      return false;
  return true;
}

/// Reduction operators for Team::reduce.
struct SumOp {
  template <typename C> CLEAVE_HD C operator()(C a, C b) const { return a + b; }
};
struct MaxOp {
  template <typename C> CLEAVE_HD C operator()(C a, C b) const {
    return cleave::max(a, b);
  }
};

/// The running maximum of a row and the sum of exp(x - max) over it, built
/// in one pass (the online softmax normalizer).
template <typename C> struct MaxSum {
  C max; // No initializers: CUDA keeps these in shared memory.
  C sum;
};
template <typename C> CLEAVE_HD MaxSum<C> getEmptyMaxSum() {
  return MaxSum<C>{-static_cast<C>(INFINITY), C(0)};
}
template <typename C> CLEAVE_HD MaxSum<C> addToMaxSum(MaxSum<C> state, C x) {
  if (x > state.max) {
    // exp(-inf) is 0: the first finite value starts the sum afresh.
    state.sum = state.sum * cleave::exp(state.max - x) + C(1);
    state.max = x;
  } else if (x != x) {
    state.max = state.sum = x; // NaN poisons the row, as it would two passes.
  } else if (x != -static_cast<C>(INFINITY)) {
    state.sum += cleave::exp(x - state.max);
  }
  return state;
}
struct MaxSumOp {
  template <typename C>
  CLEAVE_HD MaxSum<C> operator()(MaxSum<C> a, MaxSum<C> b) const {
    C largest = cleave::max(a.max, b.max);
    if (largest != largest)
      return MaxSum<C>{largest, largest};
    if (largest == -static_cast<C>(INFINITY))
      return MaxSum<C>{largest, C(0)};
    return MaxSum<C>{largest, a.sum * cleave::exp(a.max - largest) +
                                  b.sum * cleave::exp(b.max - largest)};
  }
};

} // namespace cleave

#endif // CLEAVE_RUNTIME_PORTABILITY_H
