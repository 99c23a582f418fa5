//===- FunctionLookup.h - Finding the functions passes rewrite --*- C++ -*-===//
//
// Internal to the transforms: the training passes each start from a named
// function (forward, train_step) and its named results (loss).
//
//===----------------------------------------------------------------------===//

#ifndef CLEAVE_LIB_DIALECT_CLEAVE_TRANSFORMS_FUNCTIONLOOKUP_H
#define CLEAVE_LIB_DIALECT_CLEAVE_TRANSFORMS_FUNCTIONLOOKUP_H

#include "cleave/Dialect/Cleave/IR/CleaveDialect.h"

#include "mlir/Dialect/Func/IR/FuncOps.h"
#include "mlir/IR/BuiltinOps.h"

namespace mlir::cleave {

/// The function `name` of `module` when it has a body; otherwise reports
/// "no function 'name' <what>" on the module and returns null.
inline func::FuncOp lookupFunctionWithBody(ModuleOp module, StringRef name,
                                           const Twine &what) {
  auto function = module.lookupSymbol<func::FuncOp>(name);
  if (function && !function.isDeclaration())
    return function;
  module.emitError("no function '") << name << "' " << what;
  return {};
}

/// The value `function` returns under `cleave.output = name`, or null.
inline Value lookupOutput(func::FuncOp function, StringRef name) {
  Operation *ret = function.getBody().front().getTerminator();
  for (unsigned i = 0; i < function.getNumResults(); ++i)
    if (auto output = function.getResultAttrOfType<StringAttr>(
            i, CleaveDialect::kOutputAttrName);
        output && output.getValue() == name)
      return ret->getOperand(i);
  return {};
}

} // namespace mlir::cleave

#endif // CLEAVE_LIB_DIALECT_CLEAVE_TRANSFORMS_FUNCTIONLOOKUP_H
