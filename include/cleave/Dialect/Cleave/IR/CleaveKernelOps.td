//===- CleaveKernelOps.td - Kernel ops ---------------------*- tablegen -*-===//
//
// What fusion (cleave-fuse) emits: a fused elementwise kernel and its
// terminator.
// Included by CleaveOps.td.
//
//===----------------------------------------------------------------------===//

#ifndef CLEAVE_DIALECT_CLEAVE_IR_CLEAVEKERNELOPS_TD
#define CLEAVE_DIALECT_CLEAVE_IR_CLEAVEKERNELOPS_TD

//===----------------------------------------------------------------------===//
// Fused kernels
//===----------------------------------------------------------------------===//

def Cleave_FusedOp : Cleave_Op<"fused", [Pure, IsolatedFromAbove,
    SingleBlockImplicitTerminator<"YieldOp">,
    DeclareOpInterfaceMethods<Cleave_CostOpInterface, ["getFlops"]>]> {
  let summary = "Elementwise ops that run as one kernel";
  let description = [{
    The body computes every element of every result from the same element of
    the iteration space, the results' common shape. Block argument `i` is
    operand `i`. Body ops are elementwise ops (`add` ... `silu`, `compare`,
    `select`, `cast`, `fill`) on tensors of the iteration shape, and
    `broadcast`s of block arguments; `cleave.yield` returns the results. One
    kernel is emitted per fused op, so intermediates never reach memory.
    `cleave-fuse` creates these ops.

    ```mlir
    %r = cleave.fused (%x, %b) : (tensor<4x8xf32>, tensor<8xf32>) -> tensor<4x8xf32> {
    ^bb0(%xa: tensor<4x8xf32>, %ba: tensor<8xf32>):
      %bb = cleave.broadcast %ba dims [1] : tensor<8xf32> -> tensor<4x8xf32>
      %s = cleave.add %xa, %bb : tensor<4x8xf32>
      %g = cleave.gelu %s : tensor<4x8xf32>
      cleave.yield %g : tensor<4x8xf32>
    }
    ```
  }];
  let arguments = (ins Variadic<Cleave_Tensor>:$inputs);
  let results = (outs Variadic<Cleave_Tensor>:$results);
  let regions = (region SizedRegion<1>:$body);
  let assemblyFormat = [{
    `(` $inputs `)` attr-dict `:` functional-type($inputs, $results) $body
  }];
  let extraClassDeclaration = [{
    /// The shape every result has and every body op iterates over.
    ::llvm::ArrayRef<int64_t> getIterationShape() {
      return ::llvm::cast<::mlir::RankedTensorType>(getResult(0).getType())
          .getShape();
    }
  }];
  let hasVerifier = 1;
}

def Cleave_YieldOp : Cleave_Op<"yield", [Pure, Terminator, ReturnLike,
    HasParent<"FusedOp">]> {
  let summary = "Results of a fused kernel";
  let arguments = (ins Variadic<Cleave_Tensor>:$values);
  let builders = [OpBuilder<(ins), [{ build($_builder, $_state, {}); }]>];
  let assemblyFormat = "($values^ `:` type($values))? attr-dict";
}

#endif // CLEAVE_DIALECT_CLEAVE_IR_CLEAVEKERNELOPS_TD
