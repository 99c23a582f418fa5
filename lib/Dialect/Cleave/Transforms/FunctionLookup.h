//===- FunctionLookup.h - Finding the functions passes rewrite --*- C++ -*-===//
//
// Internal to the transforms: the training passes each start from a function
// named by their option or found by its cleave.role (forward, step), and
// from its results with an output role (loss, the gradients).
//
//===----------------------------------------------------------------------===//

#ifndef CLEAVE_LIB_DIALECT_CLEAVE_TRANSFORMS_FUNCTIONLOOKUP_H
#define CLEAVE_LIB_DIALECT_CLEAVE_TRANSFORMS_FUNCTIONLOOKUP_H

#include "cleave/Dialect/Cleave/IR/CleaveOps.h"

#include "mlir/Analysis/SliceAnalysis.h"
#include "mlir/Dialect/Func/IR/FuncOps.h"
#include "mlir/IR/BuiltinOps.h"
#include "llvm/ADT/DenseSet.h"
#include "llvm/ADT/SetVector.h"

namespace mlir::cleave {

/// The function `name` of `module`, or when `name` is empty the first with a
/// role among `roles` (in order of preference), when it has a body;
/// otherwise reports "no function ... <what>" on the module and returns null.
inline func::FuncOp lookupFunctionWithBody(ModuleOp module, StringRef name,
                                           ArrayRef<FunctionRole> roles,
                                           const Twine &what) {
  func::FuncOp function;
  if (!name.empty()) {
    function = module.lookupSymbol<func::FuncOp>(name);
  } else {
    for (FunctionRole role : roles) {
      for (func::FuncOp candidate : module.getOps<func::FuncOp>())
        if (getFunctionRole(candidate) == role) {
          function = candidate;
          break;
        }
      if (function)
        break;
    }
  }
  if (function && !function.isDeclaration())
    return function;
  if (!name.empty()) {
    module.emitError("no function '") << name << "' " << what;
    return {};
  }
  InFlightDiagnostic diag = module.emitError("no function with cleave.role ");
  llvm::interleave(
      roles, diag,
      [&](FunctionRole role) { diag << stringifyFunctionRole(role); }, " or ");
  diag << " " << what;
  return {};
}

/// The value `function` returns with `cleave.output_role` `role`, or null.
inline Value lookupOutput(func::FuncOp function, OutputRole role) {
  std::optional<unsigned> index = findResultByRole(function, role);
  if (!index)
    return {};
  return function.getBody().front().getTerminator()->getOperand(*index);
}

/// The result index of each parameter's gradient `function` returns, by
/// parameter name: one pass over the results, for passes that look up every
/// parameter's.
inline llvm::StringMap<unsigned> getGradientResults(func::FuncOp function) {
  llvm::StringMap<unsigned> results;
  for (unsigned i = 0; i < function.getNumResults(); ++i)
    if (auto output = function.getResultAttrOfType<StringAttr>(
            i, CleaveDialect::kOutputAttrName);
        output && hasOutputRole(function, i, OutputRole::Gradient) &&
        getGradientName(getGradientParam(output.getValue())) ==
            output.getValue())
      results.try_emplace(getGradientParam(output.getValue()), i);
  return results;
}

/// Whether result `index` of `function` is a parameter's gradient.
inline bool isGradientResult(func::FuncOp function, unsigned index) {
  return hasOutputRole(function, index, OutputRole::Gradient);
}

/// The ops `loss` depends on, its function's forward (none for a null
/// loss): what a training step computes before its backward.
inline DenseSet<Operation *> getLossSlice(Value loss) {
  if (!loss)
    return {};
  SetVector<Operation *> slice;
  BackwardSliceOptions options;
  options.inclusive = true;
  options.omitBlockArguments = true;
  (void)getBackwardSlice(loss, &slice, options);
  return DenseSet<Operation *>(slice.begin(), slice.end());
}

/// The transformer block an op belongs to (its cleave.layer<i>), or -1.
inline int64_t getBlockIndex(Operation *op) {
  auto layer = op->getAttrOfType<LayerAttr>(CleaveDialect::kLayerAttrName);
  return layer && layer.getKind() == LayerKind::Block ? layer.getIndex() : -1;
}

/// The op of `value`'s block that reads it first, or null.
inline Operation *getFirstReader(Value value) {
  Operation *first = nullptr;
  for (Operation *user : value.getUsers())
    if (user->getBlock() == value.getParentBlock() &&
        (!first || user->isBeforeInBlock(first)))
      first = user;
  return first;
}

} // namespace mlir::cleave

#endif // CLEAVE_LIB_DIALECT_CLEAVE_TRANSFORMS_FUNCTIONLOOKUP_H
