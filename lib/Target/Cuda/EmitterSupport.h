//===- EmitterSupport.h - Shared pieces of the CUDA C++ emitter -*- C++ -*-===//

#ifndef CLEAVE_LIB_TARGET_CUDA_EMITTERSUPPORT_H
#define CLEAVE_LIB_TARGET_CUDA_EMITTERSUPPORT_H

#include "cleave/Dialect/Cleave/IR/CleaveOps.h"

#include "mlir/IR/BuiltinOps.h"
#include "mlir/IR/Location.h"
#include "llvm/ADT/DenseMap.h"
#include "llvm/ADT/APInt.h"
#include "mlir/IR/Operation.h"
#include "mlir/IR/Value.h"
#include "llvm/ADT/SmallVector.h"
#include "llvm/Support/raw_ostream.h"

#include <string>

namespace mlir::cleave {

/// How an element type is stored and computed in emitted code.
struct ElementInfo {
  /// The storage type: "float", "cleave::bf16", "int32_t", ...
  const char *storage;
  /// The type arithmetic happens in: "float" for f32, bf16 and f16.
  const char *compute;
  /// The runtime's DType enumerator: "F32", "BF16", ...
  const char *dtype;
};

/// Fails (with a diagnostic at `loc`) for element types the runtime lacks.
FailureOr<ElementInfo> getElementInfo(Type type, Location loc);

/// "file.mlir:12:5" for the first file location inside `loc`, else "".
std::string getLocationString(Location loc);

/// A C++ string literal with `text` escaped.
std::string getStringLiteral(llvm::StringRef text);

/// A C++ literal of compute type `compute` equal to `value`.
std::string getScalarLiteral(double value, llvm::StringRef compute);

/// A C++ literal of compute type `compute` with exactly `value`.
std::string getIntegerLiteral(const llvm::APInt &value, llvm::StringRef compute);

/// Ops of one kernel: `inputs` are the values the body reads from memory
/// (block arguments of a cleave.fused, or the operands of a lone op),
/// `outputs` the values it writes.
struct KernelBody {
  llvm::SmallVector<Value> inputs;
  llvm::SmallVector<Operation *> ops;
  llvm::SmallVector<Value> outputs;
};

/// Prints the kernel `name` computing `body` over `shape`'s elements: a
/// template over V, the elements each iteration handles (1, or the width of
/// a 128-bit access of `widestStorage`, the widest element type the kernel
/// reads or writes, which it returns).
LogicalResult emitKernel(llvm::StringRef name, const KernelBody &body,
                         llvm::ArrayRef<int64_t> shape, llvm::raw_ostream &os,
                         std::string &widestStorage);

/// The tables of a pipeline's main (PipelineMain.cpp): its stage programs,
/// updates and the per-rank actions of `schedule`; `identifiers` names each
/// function's emitted program.
FailureOr<std::string> emitPipelineTable(
    ModuleOp module, const llvm::DenseMap<Operation *, std::string> &identifiers,
    ScheduleAttr schedule);

} // namespace mlir::cleave

#endif // CLEAVE_LIB_TARGET_CUDA_EMITTERSUPPORT_H
