//===- Init.cpp - Deterministic parameter initialization ------------------===//

#include "cleave/runtime/Init.h"

#include "Support.h"
#include "cleave/runtime/Portability.h"

#include <charconv>
#include <cmath>

namespace cleave::rt {

namespace {
/// FNV-1a: a stable hash of the name (std::hash may differ between builds).
uint64_t hashName(std::string_view name) {
  uint64_t hash = 0xcbf29ce484222325ULL;
  for (unsigned char c : name)
    hash = (hash ^ c) * 0x100000001b3ULL;
  return hash;
}

/// A uniform double in (0, 1] from the top 53 bits.
double toUnitInterval(uint64_t bits) {
  return static_cast<double>((bits >> 11) + 1) * 0x1p-53;
}
} // namespace

double sampleNormal(uint64_t seed, std::string_view name, uint64_t index) {
  uint64_t stream = mixBits(mixBits(seed) ^ hashName(name));
  // Two uniforms per element, then Box-Muller.
  double u1 = toUnitInterval(mixBits(stream + 2 * index));
  double u2 = toUnitInterval(mixBits(stream + 2 * index + 1));
  constexpr double kTwoPi = 6.283185307179586476925286766559;
  return std::sqrt(-2.0 * std::log(u1)) * std::cos(kTwoPi * u2);
}

/// A parameter's standard deviation when the IR gives no cleave.init.
constexpr double kDefaultStddev = 0.02;

double getInitValue(const InitRule &rule, uint64_t seed, std::string_view name,
                    uint64_t index) {
  switch (rule.kind) {
  case InitRule::Kind::Zeros:
    return 0.0;
  case InitRule::Kind::Ones:
    return 1.0;
  case InitRule::Kind::Normal:
    return rule.stddev * sampleNormal(seed, name, index);
  case InitRule::Kind::Default:
    return kDefaultStddev * sampleNormal(seed, name, index);
  }
  return 0.0;
}

Status fillInitialValues(const InitRule &rule, uint64_t seed,
                         std::string_view name, DType dtype, uint64_t count,
                         void *output) {
  for (uint64_t i = 0; i < count; ++i) {
    double value = getInitValue(rule, seed, name, i);
    switch (dtype) {
    case DType::F64:
      static_cast<double *>(output)[i] = value;
      break;
    case DType::F32:
      static_cast<float *>(output)[i] = static_cast<float>(value);
      break;
    case DType::BF16:
      static_cast<::cleave::bf16 *>(output)[i] =
          ::cleave::fromFloat<::cleave::bf16>(static_cast<float>(value));
      break;
    case DType::F16:
      static_cast<::cleave::f16 *>(output)[i] =
          ::cleave::fromFloat<::cleave::f16>(static_cast<float>(value));
      break;
    default:
      return Status::error("cannot initialize parameter '" + std::string(name) +
                           "' of type " + getDTypeName(dtype));
    }
  }
  return Status::success();
}

} // namespace cleave::rt
