//===- InitParams.h - Deterministic initial parameters ----------*- C++ -*-===//

#ifndef CLEAVE_DRIVER_INITPARAMS_H
#define CLEAVE_DRIVER_INITPARAMS_H

#include "mlir/Dialect/Func/IR/FuncOps.h"

#include <cstdint>
#include <string>

namespace mlir::cleave {

/// Writes every `cleave.param` argument of `function` to a safetensors file
/// at `path`, initialized GPT-2 style (cleave::rt::getGpt2InitRule) with each
/// element a function of (seed, name, index) only. The layer count for the
/// residual-projection scaling is one more than the largest `layers.N.`
/// index in the parameter names. Returns the number of parameters written.
FailureOr<int64_t> writeInitialParams(func::FuncOp function,
                                      const std::string &path, uint64_t seed);

} // namespace mlir::cleave

#endif // CLEAVE_DRIVER_INITPARAMS_H
