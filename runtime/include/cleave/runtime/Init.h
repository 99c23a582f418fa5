//===- Init.h - Deterministic parameter initialization ----------*- C++ -*-===//
//
// Every initial parameter element is a function of (seed, parameter name,
// element index in the global tensor) only. A counter-based generator makes
// that cheap, so a rank that holds a slice of a sharded parameter computes
// exactly the values the 1-rank run has there, without generating the rest.
//
//===----------------------------------------------------------------------===//

#ifndef CLEAVE_RUNTIME_INIT_H
#define CLEAVE_RUNTIME_INIT_H

#include "cleave/runtime/DType.h"
#include "cleave/runtime/Status.h"

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

namespace cleave::rt {

/// A standard normal sample determined by (seed, name, index) alone.
double sampleNormal(uint64_t seed, std::string_view name, uint64_t index);

struct InitRule {
  enum class Kind { Zeros, Ones, Normal };
  Kind kind = Kind::Normal;
  double stddev = 0.0;
};

/// GPT-2 style initialization, chosen by parameter name: biases (`.bias`) are
/// 0, norm scales (`.scale`) 1, the projections that write into the residual
/// stream (`attn.out`, `attn.o`, `mlp.proj`, `mlp.down` weights) are
/// N(0, 0.02 / sqrt(2 * numLayers)), every other weight N(0, 0.02).
InitRule getGpt2InitRule(std::string_view name, int64_t numLayers);

/// The initial value of element `index` of parameter `name`.
double getInitValue(const InitRule &rule, uint64_t seed, std::string_view name,
                    uint64_t index);

/// The layer count GPT-2 init scales residual projections by: one more than
/// the largest N of a "layers.N." name prefix, or 1 when there is none.
int64_t inferNumLayers(const std::vector<std::string> &paramNames);

/// Writes the `count` initial elements of parameter `name` into `output` as
/// `dtype` (f64, f32, bf16 or f16; 16-bit types round to nearest even).
Status fillInitialValues(const InitRule &rule, uint64_t seed,
                         std::string_view name, DType dtype, uint64_t count,
                         void *output);

} // namespace cleave::rt

#endif // CLEAVE_RUNTIME_INIT_H
