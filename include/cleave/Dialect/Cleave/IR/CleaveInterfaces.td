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
    InterfaceMethod<
      "Bytes each device sends over the network (collectives; 0 otherwise).",
      "double", "getCommunicatedBytes", (ins), [{}], [{ return 0.0; }]>,
  ];
}

def Cleave_DifferentiableOpInterface : OpInterface<"DifferentiableOpInterface"> {
  let cppNamespace = "::mlir::cleave";
  let description = [{
    Reverse-mode differentiation of one op: given the gradient of the loss
    with respect to each result, builds the ops that compute the gradient
    with respect to each operand (a vector-Jacobian product). cleave-autodiff
    walks a function backwards calling this and stays generic.
  }];
  let methods = [
    InterfaceMethod<[{
        Builds the operand gradients at the builder's insertion point.
        `resultGrads` has one value per result, each of its result's type.
        `operandGrads` comes back with one entry per operand: the gradient,
        of the operand's type, or null where none flows (integer operands,
        masks).
      }],
      "::llvm::LogicalResult", "buildVjp",
      (ins "::mlir::OpBuilder &":$builder, "::mlir::ValueRange":$resultGrads,
           "::llvm::SmallVectorImpl<::mlir::Value> &":$operandGrads)>,
  ];
}

def Cleave_ShardingRuleOpInterface : OpInterface<"ShardingRuleOpInterface"> {
  let cppNamespace = "::mlir::cleave";
  let description = [{
    How an op's operand and result dimensions map to factors and which
    factors are parallel, reductions or need replication (see
    ShardingRule.h). Sharding propagation and partitioning are generic over
    these rules.
  }];
  let methods = [
    InterfaceMethod<"The op's factor rule.",
      "::mlir::cleave::ShardingRule", "getShardingRule">,
    InterfaceMethod<[{
        Builds the op's per-device form from per-device operands (sharded
        as the context's factor axes say) and returns its results. Usually a
        copy of the op with local types; ops whose split form differs (an
        embedding on part of a vocabulary) build what they need.
      }],
      "::llvm::FailureOr<::llvm::SmallVector<::mlir::Value>>", "partition",
      (ins "::mlir::OpBuilder &":$builder,
           "const ::mlir::cleave::LocalOpContext &":$context,
           "::mlir::ValueRange":$operands)>,
  ];
}

#endif // CLEAVE_DIALECT_CLEAVE_IR_CLEAVEINTERFACES_TD
