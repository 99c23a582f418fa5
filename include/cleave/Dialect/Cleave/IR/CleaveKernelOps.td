//===- CleaveKernelOps.td - Kernel ops ---------------------*- tablegen -*-===//
//
// What fusion (cleave-fuse) emits: a fused elementwise kernel and its
// terminator, and a matmul with its bias and activation as a GEMM epilogue.
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

//===----------------------------------------------------------------------===//
// GEMM epilogues
//===----------------------------------------------------------------------===//

def Cleave_MatmulBiasOp : Cleave_Op<"matmul_bias", [Pure,
    DeclareOpInterfaceMethods<Cleave_CostOpInterface,
                              ["getFlops", "getMatmulFlops"]>]> {
  let summary = "Matmul plus a bias over its rows, optionally through gelu";
  let description = [{
    `matmul(lhs, rhs) + bias` with `bias` (`[N]`) added to every row of the
    `[batch..., M, N]` product, then `gelu` when the attribute is set; the
    operands and `transpose_*` flags are `cleave.matmul`'s, and `bias` has
    the result's element type. With `gelu`, the optional second result
    `pre_activation` holds the sum before gelu, which the backward reads.

    `cleave-fuse` creates this op from a matmul whose only use is an add of a
    broadcast bias (and the gelu of that sum), so the GEMM's epilogue writes
    the result: cuBLASLt's bias and GELU epilogues on the GPU, one loop after
    the BLAS call on the CPU. The product is never stored on its own.

    ```mlir
    %y, %pre = cleave.matmul_bias %x, %w, %b gelu
        : tensor<2x16x64xbf16>, tensor<64x256xbf16>, tensor<256xbf16>
        -> tensor<2x16x256xbf16>, tensor<2x16x256xbf16>
    ```
  }];
  let arguments = (ins Cleave_Tensor:$lhs, Cleave_Tensor:$rhs,
                       Cleave_Tensor:$bias, UnitAttr:$transpose_lhs,
                       UnitAttr:$transpose_rhs, UnitAttr:$gelu);
  let results = (outs Cleave_Tensor:$result,
                      Optional<Cleave_Tensor>:$pre_activation);
  let assemblyFormat = [{
    $lhs `,` $rhs `,` $bias (`transpose_lhs` $transpose_lhs^)?
    (`transpose_rhs` $transpose_rhs^)? (`gelu` $gelu^)? attr-dict `:`
    type($lhs) `,` type($rhs) `,` type($bias) `->` type($result)
    (`,` type($pre_activation)^)?
  }];
  let hasVerifier = 1;
}

#endif // CLEAVE_DIALECT_CLEAVE_IR_CLEAVEKERNELOPS_TD
