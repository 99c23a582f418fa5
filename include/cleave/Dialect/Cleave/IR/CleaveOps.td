//===- CleaveOps.td - Cleave operations --------------------*- tablegen -*-===//
//
// Ops of the cleave dialect, one file per level: compute (what models are
// written in), gradients (what autodiff adds), SPMD (meshes, collectives,
// transfers) and kernels (what fusion makes). Shape rules live in the
// verifiers (one precise message per violated rule); builders infer result
// types from the same shape functions.
//
//===----------------------------------------------------------------------===//

#ifndef CLEAVE_DIALECT_CLEAVE_IR_CLEAVEOPS_TD
#define CLEAVE_DIALECT_CLEAVE_IR_CLEAVEOPS_TD

include "cleave/Dialect/Cleave/IR/CleaveBase.td"
include "cleave/Dialect/Cleave/IR/CleaveAttrs.td"
include "cleave/Dialect/Cleave/IR/CleaveInterfaces.td"
include "mlir/IR/EnumAttr.td"
include "mlir/Interfaces/ControlFlowInterfaces.td"
include "mlir/Interfaces/InferTypeOpInterface.td"
include "mlir/Interfaces/SideEffectInterfaces.td"
include "mlir/IR/SymbolInterfaces.td"

/// Ops that implement getFlops() in C++ and keep the default byte counts.
defvar CostDefault = DeclareOpInterfaceMethods<Cleave_CostOpInterface, ["getFlops"]>;

include "cleave/Dialect/Cleave/IR/CleaveComputeOps.td"
include "cleave/Dialect/Cleave/IR/CleaveGradientOps.td"
include "cleave/Dialect/Cleave/IR/CleaveSpmdOps.td"
include "cleave/Dialect/Cleave/IR/CleaveKernelOps.td"

#endif // CLEAVE_DIALECT_CLEAVE_IR_CLEAVEOPS_TD
