//===- CleaveInterfaces.td - Cleave op interfaces ----------*- tablegen -*-===//

#ifndef CLEAVE_DIALECT_CLEAVE_IR_CLEAVEINTERFACES_TD
#define CLEAVE_DIALECT_CLEAVE_IR_CLEAVEINTERFACES_TD

include "mlir/IR/OpBase.td"

def Cleave_CostOpInterface : OpInterface<"CostOpInterface"> {
  let cppNamespace = "::mlir::cleave";
  let description = [{
    Work an op does, for cost reports and the planner's cost model. All values
    are `double`: totals for large models overflow 64-bit integers. A
    multiply-add counts as 2 FLOPs.
  }];
  let methods = [
    InterfaceMethod<
      "FLOPs of all arithmetic the op does, matrix products included.",
      "double", "getFlops">,
    InterfaceMethod<
      "The part of getFlops() done as matrix products (GEMM-shaped work).",
      "double", "getMatmulFlops", (ins), [{}], [{ return 0.0; }]>,
    InterfaceMethod<
      "Bytes the op reads from its operands.",
      "double", "getBytesRead", (ins), [{}],
      [{ return ::mlir::cleave::getTotalBytes($_op->getOperandTypes()); }]>,
    InterfaceMethod<
      "Bytes the op writes to its results.",
      "double", "getBytesWritten", (ins), [{}],
      [{ return ::mlir::cleave::getTotalBytes($_op->getResultTypes()); }]>,
  ];
}

#endif // CLEAVE_DIALECT_CLEAVE_IR_CLEAVEINTERFACES_TD
