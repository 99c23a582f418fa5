//===- CudaEmitter.h - Cleave IR to CUDA C++ --------------------*- C++ -*-===//
//
// Translates a fused, memory-planned module into one C++ source file that
// builds with nvcc for NVIDIA GPUs and with a host compiler for the CPU, both
// against libcleave_runtime (see runtime/include/cleave/runtime/
// Portability.h).
//
//===----------------------------------------------------------------------===//

#ifndef CLEAVE_TARGET_CUDA_CUDAEMITTER_H
#define CLEAVE_TARGET_CUDA_CUDAEMITTER_H

#include "mlir/IR/BuiltinOps.h"
#include "llvm/Support/raw_ostream.h"

#include <string>

namespace mlir::cleave {

struct CudaEmitterOptions {
  /// Function the generated `main` runs; empty picks the module's only
  /// function, or `forward` when there are several.
  std::string entry;
  /// Emit `main` (through the runtime's runner) for the entry function.
  bool emitMain = true;
};

/// What the emitter produced, for drivers that report it.
struct CudaEmitterSummary {
  std::string entry;
  int64_t kernels = 0;
  int64_t libraryCalls = 0;
  int64_t arenaBytes = 0;
};

/// Prints the module as CUDA C++. A module of pipeline stages (functions
/// with `cleave.stage`, updates with `cleave.pipeline_rank`) gets a main that
/// runs the module's `cleave.schedule`, whose per-rank order of actions it
/// writes out as a table. Every elementwise op must be inside a
/// `cleave.fused` op or stand alone as a one-op kernel, and every function
/// needs a memory plan (cleave-plan-memory); otherwise this reports a located
/// error and fails.
LogicalResult translateToCuda(ModuleOp module, llvm::raw_ostream &os,
                              const CudaEmitterOptions &options = {},
                              CudaEmitterSummary *summary = nullptr);

/// Registers `--cleave-to-cpp`, and `--cleave-to-cuda` as its alias, with
/// mlir-translate style tools.
void registerToCudaTranslation();

} // namespace mlir::cleave

#endif // CLEAVE_TARGET_CUDA_CUDAEMITTER_H
