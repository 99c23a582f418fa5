//===- Portability.h - One kernel source for CUDA and the CPU ---*- C++ -*-===//
//
// Generated kernels and the runtime's own kernels are written once against
// these macros. Compiled by nvcc, a kernel is a `__global__` function with a
// grid-stride loop, launched on the context's stream. Compiled by a host C++
// compiler, it is a plain function whose loop is an OpenMP `parallel for`:
// every iteration writes its own elements and reduces sequentially, so the
// CPU results are bit-identical from run to run.
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
#include <type_traits>

#if defined(__CUDACC__)
#include <cuda_bf16.h>
#include <cuda_fp16.h>
#include <cuda_runtime.h>

#define CLEAVE_HD __host__ __device__ __forceinline__
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

namespace cleave {
constexpr int kThreadsPerBlock = 256;
inline unsigned getLaunchBlocks(int64_t count) {
  int64_t blocks = (count + kThreadsPerBlock - 1) / kThreadsPerBlock;
  // A grid-stride loop covers the rest; this bound keeps the grid legal.
  return static_cast<unsigned>(blocks < 1 ? 1 : (blocks > 65535 ? 65535 : blocks));
}

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
#define CLEAVE_KERNEL static inline
#define CLEAVE_RESTRICT __restrict__
#define CLEAVE_PRAGMA(text) _Pragma(#text)
#define CLEAVE_PARALLEL_FOR(index, count)                                      \
  CLEAVE_PRAGMA(omp parallel for schedule(static))                             \
  for (int64_t index = 0; index < (count); ++index)
#define CLEAVE_LAUNCH(ctx, kernel, count) kernel
#define CLEAVE_ATOMIC_STORE(pointer, value)                                    \
  __atomic_store_n((pointer), (value), __ATOMIC_RELAXED)

namespace cleave {

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

} // namespace cleave

#endif // CLEAVE_RUNTIME_PORTABILITY_H
