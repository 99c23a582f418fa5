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
#include "cleave/runtime/Program.h"
#include "cleave/runtime/Status.h"

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

namespace cleave::rt {

/// A standard normal sample determined by (seed, name, index) alone.
double sampleNormal(uint64_t seed, std::string_view name, uint64_t index);

/// The initial value of element `index` of parameter `name` (InitRule in
/// Program.h: what the IR's cleave.init says).
double getInitValue(const InitRule &rule, uint64_t seed, std::string_view name,
                    uint64_t index);

/// Writes the `count` initial elements of parameter `name` into `output` as
/// `dtype` (f64, f32, bf16 or f16; 16-bit types round to nearest even).
Status fillInitialValues(const InitRule &rule, uint64_t seed,
                         std::string_view name, DType dtype, uint64_t count,
                         void *output);

} // namespace cleave::rt

#endif // CLEAVE_RUNTIME_INIT_H
