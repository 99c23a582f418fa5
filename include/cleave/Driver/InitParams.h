//===- InitParams.h - Deterministic initial parameters ----------*- C++ -*-===//

#ifndef CLEAVE_DRIVER_INITPARAMS_H
#define CLEAVE_DRIVER_INITPARAMS_H

#include "mlir/Dialect/Func/IR/FuncOps.h"

#include <cstdint>
#include <string>

namespace mlir::cleave {

/// Writes every `cleave.param` argument of `function` to a safetensors file
/// at `path`, initialized as its `cleave.init` says, with each element a
/// function of (seed, name, index) only, as the training program's own
/// initialization. Returns the number of parameters written.
FailureOr<int64_t> writeInitialParams(func::FuncOp function,
                                      const std::string &path, uint64_t seed);

} // namespace mlir::cleave

#endif // CLEAVE_DRIVER_INITPARAMS_H
