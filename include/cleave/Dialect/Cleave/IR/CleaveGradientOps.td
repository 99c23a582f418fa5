//===- CleaveGradientOps.td - Gradient ops -----------------*- tablegen -*-===//
//
// What reverse-mode differentiation (cleave-autodiff) emits next to the
// compute ops: the gradients of the fused neural-network ops.
// Included by CleaveOps.td.
//
//===----------------------------------------------------------------------===//

#ifndef CLEAVE_DIALECT_CLEAVE_IR_CLEAVEGRADIENTOPS_TD
#define CLEAVE_DIALECT_CLEAVE_IR_CLEAVEGRADIENTOPS_TD

//===----------------------------------------------------------------------===//
// Gradient ops: what reverse-mode differentiation emits
//===----------------------------------------------------------------------===//

def Cleave_SoftmaxGradOp : Cleave_Op<"softmax_grad", [Pure,
    SameOperandsAndResultType, CostDefault]> {
  let summary = "Gradient of softmax over the last dimension";
  let description = [{
    Given the softmax output `y` and the gradient `dy` of the loss with
    respect to it, returns `y * (dy - sum(dy * y))`, the sum along the last
    dimension.

    ```mlir
    %dx = cleave.softmax_grad %y, %dy : tensor<2x16xf32>
    ```
  }];
  let arguments = (ins Cleave_FloatTensor:$output, Cleave_FloatTensor:$output_grad);
  let results = (outs Cleave_FloatTensor:$result);
  let assemblyFormat = "$output `,` $output_grad attr-dict `:` type($result)";
  let hasVerifier = 1;
}

def Cleave_CrossEntropyGradOp : Cleave_Op<"cross_entropy_grad", [Pure,
    AllTypesMatch<["logits", "result"]>, CostDefault]> {
  let summary = "Gradient of softmax cross-entropy with respect to the logits";
  let description = [{
    `(softmax(logits) - onehot(target)) * loss_grad` per row, where
    `loss_grad` has the targets' shape and the logits' element type.
    Targets outside `[0, V)` are an error at run time. With `classes`, as
    on `cross_entropy`, the masked columns take no probability and their
    gradient is 0.

    ```mlir
    %dl = cleave.cross_entropy_grad %logits, %targets, %dloss
        : tensor<2x16x512xf32>, tensor<2x16xi32>, tensor<2x16xf32>
    ```
  }];
  let arguments = (ins Cleave_FloatTensor:$logits, Cleave_IndexTensor:$targets,
                       Cleave_FloatTensor:$loss_grad,
                       OptionalAttr<I64Attr>:$classes);
  let results = (outs Cleave_FloatTensor:$result);
  let assemblyFormat = [{
    $logits `,` $targets `,` $loss_grad attr-dict `:` type($logits) `,`
    type($targets) `,` type($loss_grad)
  }];
  let extraClassDeclaration = [{
    /// The classes: the `classes` attribute, or every column.
    int64_t getNumClasses();
  }];
  let hasVerifier = 1;
}

def Cleave_LayerNormGradOp : Cleave_Op<"layer_norm_grad", [Pure,
    AllTypesMatch<["input", "output_grad", "input_grad"]>,
    AllTypesMatch<["scale", "scale_grad", "bias_grad"]>, CostDefault]> {
  let summary = "Gradients of layer normalization";
  let description = [{
    From the layer_norm input, its scale and the gradient of its output,
    computes the gradients of the input, the scale and the bias. The row
    mean and 1/sqrt(var + epsilon) are recomputed rather than saved: one more
    pass over the input instead of two extra activations per row kept alive
    from the forward pass. The scale and bias gradients sum over all rows.

    ```mlir
    %dx, %dg, %db = cleave.layer_norm_grad %x, %g, %dy {epsilon = 1.0e-05 : f64}
        : tensor<2x16x64xf32>, tensor<64xf32>
    ```
  }];
  let arguments = (ins Cleave_FloatTensor:$input, Cleave_FloatTensor:$scale,
                       Cleave_FloatTensor:$output_grad,
                       DefaultValuedAttr<F64Attr, "1.0e-5">:$epsilon);
  let results = (outs Cleave_FloatTensor:$input_grad,
                      Cleave_FloatTensor:$scale_grad,
                      Cleave_FloatTensor:$bias_grad);
  let assemblyFormat = [{
    $input `,` $scale `,` $output_grad attr-dict `:` type($input) `,`
    type($scale)
  }];
  let hasVerifier = 1;
}

def Cleave_RmsNormGradOp : Cleave_Op<"rms_norm_grad", [Pure,
    AllTypesMatch<["input", "output_grad", "input_grad"]>,
    AllTypesMatch<["scale", "scale_grad"]>, CostDefault]> {
  let summary = "Gradients of RMS normalization";
  let description = [{
    From the rms_norm input, its scale and the gradient of its output,
    computes the gradients of the input and the scale (summed over rows),
    recomputing 1/sqrt(mean(x^2) + epsilon) per row.

    ```mlir
    %dx, %dg = cleave.rms_norm_grad %x, %g, %dy {epsilon = 1.0e-05 : f64}
        : tensor<2x16x64xf32>, tensor<64xf32>
    ```
  }];
  let arguments = (ins Cleave_FloatTensor:$input, Cleave_FloatTensor:$scale,
                       Cleave_FloatTensor:$output_grad,
                       DefaultValuedAttr<F64Attr, "1.0e-5">:$epsilon);
  let results = (outs Cleave_FloatTensor:$input_grad,
                      Cleave_FloatTensor:$scale_grad);
  let assemblyFormat = [{
    $input `,` $scale `,` $output_grad attr-dict `:` type($input) `,`
    type($scale)
  }];
  let hasVerifier = 1;
}

def Cleave_AttentionGradOp : Cleave_Op<"attention_grad", [Pure,
    AllTypesMatch<["query", "output", "output_grad", "query_grad"]>,
    AllTypesMatch<["key", "value", "key_grad", "value_grad"]>,
    TypesMatchWith<"logsumexp has the query's rows in the statistics type",
                   "query", "logsumexp",
                   "::mlir::cleave::getAttentionStatisticsType($_self)">,
    DeclareOpInterfaceMethods<Cleave_CostOpInterface,
                              ["getFlops", "getMatmulFlops"]>]> {
  let summary = "Gradients of scaled dot-product attention";
  let description = [{
    From the attention inputs, its output and logsumexp, and the gradient of
    its output, computes the gradients of the query, key and value. The
    probabilities are recomputed from q, k and the kept logsumexp (one more
    product) instead of being kept from the forward pass, which would hold
    `batch * S * T` values per layer. Counts five products as matrix FLOPs:
    `10 * batch * S * T * D`. With grouped-query attention the key and value
    gradients sum over the query heads of each group.

    ```mlir
    %dq, %dk, %dv = cleave.attention_grad %q, %k, %v, %o, %lse, %do causal
        : tensor<2x4x16x16xf32>, tensor<2x4x16x16xf32>
    ```
  }];
  let arguments = (ins Cleave_FloatTensor:$query, Cleave_FloatTensor:$key,
                       Cleave_FloatTensor:$value, Cleave_FloatTensor:$output,
                       Cleave_FloatTensor:$logsumexp,
                       Cleave_FloatTensor:$output_grad,
                       UnitAttr:$causal, OptionalAttr<F64Attr>:$scale);
  let results = (outs Cleave_FloatTensor:$query_grad,
                      Cleave_FloatTensor:$key_grad,
                      Cleave_FloatTensor:$value_grad);
  let assemblyFormat = [{
    $query `,` $key `,` $value `,` $output `,` $logsumexp `,` $output_grad
    (`causal` $causal^)? attr-dict `:` type($query) `,` type($key)
  }];
  let extraClassDeclaration = [{
    /// The scale applied to q k^T: the attribute, or 1 / sqrt(D).
    double getEffectiveScale();
  }];
  let hasVerifier = 1;
}

def Cleave_ScatterAddOp : Cleave_Op<"scatter_add", [Pure, CostDefault]> {
  let summary = "Sum rows into a table by index (the gradient of embedding)";
  let description = [{
    Returns a `[V, H]` tensor of zeros into which row `updates[i..., :]` has
    been added at row `indices[i...]`, for every index. Rows that several
    indices name receive the sum, in index order, so the result does not
    depend on scheduling. Indices outside `[0, V)` are an error at run time.

    ```mlir
    %dw = cleave.scatter_add %tokens, %dh
        : tensor<2x16xi32>, tensor<2x16x64xf32> -> tensor<512x64xf32>
    ```
  }];
  let arguments = (ins Cleave_IndexTensor:$indices, Cleave_FloatTensor:$updates);
  let results = (outs Cleave_FloatTensor:$result);
  let assemblyFormat = [{
    $indices `,` $updates attr-dict `:` type($indices) `,` type($updates) `->`
    type($result)
  }];
  let hasVerifier = 1;
}

def Cleave_PadOp : Cleave_Op<"pad", [Pure, CostDefault]> {
  let summary = "Place a tensor inside a larger tensor of zeros";
  let description = [{
    The result (of the larger type) is zero except for the block starting at
    `offsets`, which holds the input: the gradient of `cleave.slice`.

    ```mlir
    %r = cleave.pad %x [0, 4] : tensor<4x4xf32> -> tensor<4x8xf32>
    ```
  }];
  let arguments = (ins Cleave_Tensor:$input, DenseI64ArrayAttr:$offsets);
  let results = (outs Cleave_Tensor:$result);
  let assemblyFormat =
      "$input $offsets attr-dict `:` type($input) `->` type($result)";
  let hasVerifier = 1;
}

#endif // CLEAVE_DIALECT_CLEAVE_IR_CLEAVEGRADIENTOPS_TD
