//===- CleaveComputeOps.td - Model ops ---------------------*- tablegen -*-===//
//
// What a model is written in: elementwise ops, broadcast, compare and select,
// reductions, data movement, and the neural-network ops (matmul, softmax,
// norms, embedding, rotary, attention, cross-entropy).
// Included by CleaveOps.td.
//
//===----------------------------------------------------------------------===//

#ifndef CLEAVE_DIALECT_CLEAVE_IR_CLEAVECOMPUTEOPS_TD
#define CLEAVE_DIALECT_CLEAVE_IR_CLEAVECOMPUTEOPS_TD

//===----------------------------------------------------------------------===//
// Elementwise ops
//===----------------------------------------------------------------------===//

class Cleave_ElementwiseOp<string mnemonic, int flopsPerElement,
                           list<Trait> traits = []>
    : Cleave_Op<mnemonic, !listconcat(traits,
          [Pure, Elementwise, SameOperandsAndResultType, CostDefault])> {
  let extraClassDefinition = [{
    double $cppClass::getFlops() {
      return }] # flopsPerElement # [{ * ::mlir::cleave::getNumElements(getType());
    }
  }];
}

class Cleave_BinaryOp<string mnemonic, string what, int flopsPerElement = 1,
                      list<Trait> traits = []>
    : Cleave_ElementwiseOp<mnemonic, flopsPerElement, traits> {
  let summary = "Elementwise " # what;
  let description = [{
    Elementwise }] # what # [{ of two tensors of the same type. Operands of
    different shapes must be made equal first with `cleave.broadcast`.

    ```mlir
    %r = cleave.}] # mnemonic # [{ %a, %b : tensor<4x8xf32>
    ```
  }];
  let arguments = (ins Cleave_Tensor:$lhs, Cleave_Tensor:$rhs);
  let results = (outs Cleave_Tensor:$result);
  let assemblyFormat = "$lhs `,` $rhs attr-dict `:` type($result)";
}

def Cleave_AddOp : Cleave_BinaryOp<"add", "sum", 1, [Commutative]>;
def Cleave_SubOp : Cleave_BinaryOp<"sub", "difference">;
def Cleave_MulOp : Cleave_BinaryOp<"mul", "product", 1, [Commutative]>;
def Cleave_DivOp : Cleave_BinaryOp<"div", "quotient"> {
  let description = [{
    Elementwise quotient of two tensors of the same type. Floats divide as
    IEEE 754 does. Integers truncate toward zero; `x / 0` is 0 and the most
    negative value divided by -1 wraps to itself, so no input traps.

    ```mlir
    %r = cleave.div %a, %b : tensor<4x8xf32>
    ```
  }];
}
def Cleave_MaxOp : Cleave_BinaryOp<"max", "maximum", 1, [Commutative]>;
def Cleave_MinOp : Cleave_BinaryOp<"min", "minimum", 1, [Commutative]>;

class Cleave_UnaryOp<string mnemonic, string formula, int flopsPerElement = 1,
                     TypeConstraint tensor = Cleave_FloatTensor,
                     list<Trait> traits = []>
    : Cleave_ElementwiseOp<mnemonic, flopsPerElement, traits> {
  let summary = "Elementwise " # formula;
  let description = [{
    Computes `}] # formula # [{` for every element. Costs }] # flopsPerElement
    # [{ FLOP(s) per element.

    ```mlir
    %r = cleave.}] # mnemonic # [{ %x : tensor<4x8xf32>
    ```
  }];
  let arguments = (ins tensor:$input);
  let results = (outs tensor:$result);
  let assemblyFormat = "$input attr-dict `:` type($result)";
}

def Cleave_NegOp : Cleave_UnaryOp<"neg", "-x", 1, Cleave_Tensor> {
  let hasFolder = 1;
}
def Cleave_ExpOp : Cleave_UnaryOp<"exp", "exp(x)">;
def Cleave_LogOp : Cleave_UnaryOp<"log", "log(x)">;
def Cleave_TanhOp : Cleave_UnaryOp<"tanh", "tanh(x)">;
def Cleave_SqrtOp : Cleave_UnaryOp<"sqrt", "sqrt(x)">;
def Cleave_RsqrtOp : Cleave_UnaryOp<"rsqrt", "1 / sqrt(x)", 2>;
def Cleave_GeluOp : Cleave_UnaryOp<"gelu",
    "0.5 x (1 + tanh(sqrt(2 / pi) (x + 0.044715 x^3)))", 8>;
def Cleave_ReluOp : Cleave_UnaryOp<"relu", "max(x, 0)">;
def Cleave_SiluOp : Cleave_UnaryOp<"silu", "x / (1 + exp(-x))", 4>;

//===----------------------------------------------------------------------===//
// Broadcast, compare, select
//===----------------------------------------------------------------------===//

def Cleave_BroadcastOp : Cleave_Op<"broadcast", [Pure, CostDefault]> {
  let summary = "Broadcast a tensor to a larger shape";
  let description = [{
    Operand dimension `i` becomes result dimension `dims[i]`; the remaining
    result dimensions are new. `dims` is strictly increasing, and each operand
    dimension either equals its result dimension or is 1 (then it repeats).

    ```mlir
    %r = cleave.broadcast %bias dims [2] : tensor<64xf32> -> tensor<2x8x64xf32>
    ```
  }];
  let arguments = (ins Cleave_Tensor:$input, DenseI64ArrayAttr:$dims);
  let results = (outs Cleave_Tensor:$result);
  let assemblyFormat =
      "$input `dims` $dims attr-dict `:` type($input) `->` type($result)";
  let hasVerifier = 1;
  let hasFolder = 1;
}

def Cleave_ComparePredicate : I32EnumAttr<"ComparePredicate",
    "comparison predicate",
    [I32EnumAttrCase<"eq", 0>, I32EnumAttrCase<"ne", 1>,
     I32EnumAttrCase<"lt", 2>, I32EnumAttrCase<"le", 3>,
     I32EnumAttrCase<"gt", 4>, I32EnumAttrCase<"ge", 5>]> {
  let cppNamespace = "::mlir::cleave";
}

def Cleave_CompareOp : Cleave_Op<"compare", [Pure, SameTypeOperands,
    TypesMatchWith<"result is an i1 tensor of the operands' shape",
                   "lhs", "result", "::mlir::cleave::getBoolTensorType($_self)">,
    CostDefault]> {
  let summary = "Elementwise comparison";
  let description = [{
    Compares two tensors of the same type elementwise and returns an `i1`
    tensor of the same shape.

    ```mlir
    %m = cleave.compare gt, %x, %zero : tensor<4x8xf32>
    ```
  }];
  let arguments = (ins Cleave_ComparePredicate:$predicate, Cleave_Tensor:$lhs,
                       Cleave_Tensor:$rhs);
  let results = (outs Cleave_BoolTensor:$result);
  let assemblyFormat = "$predicate `,` $lhs `,` $rhs attr-dict `:` type($lhs)";
}

def Cleave_SelectOp : Cleave_Op<"select", [Pure,
    AllTypesMatch<["true_value", "false_value", "result"]>, CostDefault]> {
  let summary = "Elementwise choice between two tensors";
  let description = [{
    `result[i] = condition[i] ? true_value[i] : false_value[i]`; the condition
    has the shape of the values.

    ```mlir
    %r = cleave.select %m, %x, %zero : tensor<4x8xi1>, tensor<4x8xf32>
    ```
  }];
  let arguments = (ins Cleave_BoolTensor:$condition, Cleave_Tensor:$true_value,
                       Cleave_Tensor:$false_value);
  let results = (outs Cleave_Tensor:$result);
  let assemblyFormat = [{
    $condition `,` $true_value `,` $false_value attr-dict `:`
    type($condition) `,` type($result)
  }];
  let hasVerifier = 1;
}

//===----------------------------------------------------------------------===//
// Reductions
//===----------------------------------------------------------------------===//

class Cleave_ReduceOp<string mnemonic, string what>
    : Cleave_Op<mnemonic, [Pure, CostDefault]> {
  let summary = "Reduce dimensions by " # what;
  let description = [{
    Reduces the listed dimensions (unique, any order) by }] # what # [{; they
    are removed from the result. Reducing every dimension gives a rank-0
    tensor.

    ```mlir
    %r = cleave.}] # mnemonic # [{ %x dims [1] : tensor<4x8xf32> -> tensor<4xf32>
    ```
  }];
  let arguments = (ins Cleave_Tensor:$input, DenseI64ArrayAttr:$dims);
  let results = (outs Cleave_Tensor:$result);
  let assemblyFormat =
      "$input `dims` $dims attr-dict `:` type($input) `->` type($result)";
  let builders = [
    OpBuilder<(ins "::mlir::Value":$input, "::llvm::ArrayRef<int64_t>":$dims), [{
      build($_builder, $_state,
            ::mlir::cleave::inferReduceType(
                ::llvm::cast<::mlir::RankedTensorType>(input.getType()), dims),
            input, dims);
    }]>
  ];
  let hasVerifier = 1;
}

def Cleave_ReduceSumOp : Cleave_ReduceOp<"reduce_sum", "sum">;
def Cleave_ReduceMeanOp : Cleave_ReduceOp<"reduce_mean", "arithmetic mean">;
def Cleave_ReduceMaxOp : Cleave_ReduceOp<"reduce_max", "maximum">;

//===----------------------------------------------------------------------===//
// Data movement
//===----------------------------------------------------------------------===//

def Cleave_TransposeOp : Cleave_Op<"transpose", [Pure, CostDefault]> {
  let summary = "Permute dimensions";
  let description = [{
    Result dimension `i` is operand dimension `perm[i]`.

    ```mlir
    %r = cleave.transpose %x perm [0, 2, 1, 3]
        : tensor<2x16x4x8xf32> -> tensor<2x4x16x8xf32>
    ```
  }];
  let arguments = (ins Cleave_Tensor:$input, DenseI64ArrayAttr:$perm);
  let results = (outs Cleave_Tensor:$result);
  let assemblyFormat =
      "$input `perm` $perm attr-dict `:` type($input) `->` type($result)";
  let builders = [
    OpBuilder<(ins "::mlir::Value":$input, "::llvm::ArrayRef<int64_t>":$perm), [{
      build($_builder, $_state,
            ::mlir::cleave::inferTransposeType(
                ::llvm::cast<::mlir::RankedTensorType>(input.getType()), perm),
            input, perm);
    }]>
  ];
  let hasVerifier = 1;
  let hasFolder = 1;
  let hasCanonicalizer = 1;
}

def Cleave_ReshapeOp : Cleave_Op<"reshape", [Pure,
    DeclareOpInterfaceMethods<Cleave_CostOpInterface,
                              ["getFlops", "getBytesRead", "getBytesWritten"]>]> {
  let summary = "Reinterpret a tensor with another shape";
  let description = [{
    Same elements in row-major order, new shape; the element counts match. A
    reshape moves no data, so it costs nothing.

    ```mlir
    %r = cleave.reshape %x : tensor<2x16x64xf32> -> tensor<2x16x4x16xf32>
    ```
  }];
  let arguments = (ins Cleave_Tensor:$input);
  let results = (outs Cleave_Tensor:$result);
  let assemblyFormat = "$input attr-dict `:` type($input) `->` type($result)";
  let hasVerifier = 1;
  let hasFolder = 1;
}

def Cleave_SliceOp : Cleave_Op<"slice", [Pure, CostDefault]> {
  let summary = "Extract a contiguous block";
  let description = [{
    Takes the block that starts at `offsets` and has the result's shape
    (unit strides).

    ```mlir
    %r = cleave.slice %x [0, 4] : tensor<4x8xf32> -> tensor<4x4xf32>
    ```
  }];
  let arguments = (ins Cleave_Tensor:$input, DenseI64ArrayAttr:$offsets);
  let results = (outs Cleave_Tensor:$result);
  let assemblyFormat =
      "$input $offsets attr-dict `:` type($input) `->` type($result)";
  let hasVerifier = 1;
  let hasFolder = 1;
}

def Cleave_ConcatOp : Cleave_Op<"concat", [Pure, CostDefault]> {
  let summary = "Join tensors along one dimension";
  let description = [{
    All operands have the same element type and agree on every dimension but
    `dim`, along which they are joined in order.

    ```mlir
    %r = cleave.concat %a, %b dim 1
        : (tensor<4x8xf32>, tensor<4x2xf32>) -> tensor<4x10xf32>
    ```
  }];
  let arguments = (ins Variadic<Cleave_Tensor>:$inputs, I64Attr:$dim);
  let results = (outs Cleave_Tensor:$result);
  let assemblyFormat =
      "$inputs `dim` $dim attr-dict `:` functional-type($inputs, $result)";
  let hasVerifier = 1;
  let hasFolder = 1;
}

def Cleave_CastOp : Cleave_Op<"cast", [Pure, CostDefault]> {
  let summary = "Convert the element type";
  let description = [{
    Converts every element to the result's element type. Floats round to
    nearest even (once, also from f64 to bf16 or f16). Float to integer
    truncates toward zero and saturates at the integer's range; NaN becomes
    0. Integer to integer wraps. Anything to `i1` is `value != 0`. The shape
    does not change.

    ```mlir
    %r = cleave.cast %x : tensor<4x8xf32> to tensor<4x8xbf16>
    ```
  }];
  let arguments = (ins Cleave_Tensor:$input);
  let results = (outs Cleave_Tensor:$result);
  let assemblyFormat = "$input attr-dict `:` type($input) `to` type($result)";
  let hasVerifier = 1;
  let hasFolder = 1;
}

def Cleave_ConstantOp : Cleave_Op<"constant", [Pure, ConstantLike,
    AllTypesMatch<["value", "result"]>, CostDefault]> {
  let summary = "A constant tensor";
  let description = [{
    ```mlir
    %c = cleave.constant dense<[1.0, 2.0]> : tensor<2xf32>
    ```
  }];
  let arguments = (ins ElementsAttr:$value);
  let results = (outs Cleave_Tensor:$result);
  let assemblyFormat = "attr-dict $value";
  let hasFolder = 1;
}

def Cleave_FillOp : Cleave_Op<"fill", [Pure, CostDefault]> {
  let summary = "A tensor with every element equal to one value";
  let description = [{
    The value is converted to the element type (truncated toward zero for
    integers).

    ```mlir
    %z = cleave.fill 0.0 : tensor<4x8xf32>
    ```
  }];
  let arguments = (ins F64Attr:$value);
  let results = (outs Cleave_Tensor:$result);
  let assemblyFormat = "$value attr-dict `:` type($result)";
}

//===----------------------------------------------------------------------===//
// Linear algebra and neural-network ops
//===----------------------------------------------------------------------===//

def Cleave_MatmulOp : Cleave_Op<"matmul", [Pure,
    DeclareOpInterfaceMethods<Cleave_CostOpInterface,
                              ["getFlops", "getMatmulFlops"]>]> {
  let summary = "Batched matrix product";
  let description = [{
    `lhs` is `[batch..., M, K]` (`[batch..., K, M]` with `transpose_lhs`) and
    `rhs` is `[batch..., K, N]` (`[batch..., N, K]` with `transpose_rhs`); the
    result is `[batch..., M, N]`. A rank-2 `rhs` is shared by every batch
    entry, which is how a linear layer applies one weight to a whole batch.
    Element types match, except that a product of bf16 or f16 operands may
    have an f32 result: the GEMM stores what it accumulates in f32. Costs
    `2 * batch * M * N * K` FLOPs.

    ```mlir
    %y = cleave.matmul %x, %w : tensor<2x16x64xf32>, tensor<64x256xf32>
        -> tensor<2x16x256xf32>
    %logits = cleave.matmul %h, %emb transpose_rhs
        : tensor<2x16x64xf32>, tensor<512x64xf32> -> tensor<2x16x512xf32>
    ```
  }];
  let arguments = (ins Cleave_Tensor:$lhs, Cleave_Tensor:$rhs,
                       UnitAttr:$transpose_lhs, UnitAttr:$transpose_rhs);
  let results = (outs Cleave_Tensor:$result);
  let assemblyFormat = [{
    $lhs `,` $rhs (`transpose_lhs` $transpose_lhs^)?
    (`transpose_rhs` $transpose_rhs^)? attr-dict `:` type($lhs) `,` type($rhs)
    `->` type($result)
  }];
  let builders = [
    OpBuilder<(ins "::mlir::Value":$lhs, "::mlir::Value":$rhs,
                   CArg<"bool", "false">:$transposeLhs,
                   CArg<"bool", "false">:$transposeRhs), [{
      auto type = ::mlir::cleave::inferMatmulType(
          ::llvm::cast<::mlir::RankedTensorType>(lhs.getType()),
          ::llvm::cast<::mlir::RankedTensorType>(rhs.getType()),
          transposeLhs, transposeRhs, /*emitError=*/{});
      build($_builder, $_state, *type, lhs, rhs, transposeLhs, transposeRhs);
    }]>
  ];
  let extraClassDeclaration = [{
    /// Sizes of the product: batch (product of batch dims), M, N, K.
    struct Dims { int64_t batch, m, n, k; };
    Dims getDims();
  }];
  let hasVerifier = 1;
}

def Cleave_SoftmaxOp : Cleave_Op<"softmax", [Pure, SameOperandsAndResultType,
    CostDefault]> {
  let summary = "Softmax over the last dimension";
  let description = [{
    `exp(x - max(x)) / sum(exp(x - max(x)))` along the last dimension.

    ```mlir
    %p = cleave.softmax %scores : tensor<2x4x16x16xf32>
    ```
  }];
  let arguments = (ins Cleave_FloatTensor:$input);
  let results = (outs Cleave_FloatTensor:$result);
  let assemblyFormat = "$input attr-dict `:` type($result)";
  let hasVerifier = 1;
}

def Cleave_LayerNormOp : Cleave_Op<"layer_norm", [Pure,
    AllTypesMatch<["input", "result"]>, AllTypesMatch<["scale", "bias"]>,
    CostDefault]> {
  let summary = "Layer normalization over the last dimension";
  let description = [{
    `(x - mean) / sqrt(var + epsilon) * scale + bias` along the last
    dimension, with the biased variance; `scale` and `bias` are vectors of the
    last dimension's size.

    ```mlir
    %y = cleave.layer_norm %x, %g, %b {epsilon = 1.0e-05 : f64}
        : tensor<2x16x64xf32>, tensor<64xf32>
    ```
  }];
  let arguments = (ins Cleave_FloatTensor:$input, Cleave_FloatTensor:$scale,
                       Cleave_FloatTensor:$bias,
                       DefaultValuedAttr<F64Attr, "1.0e-5">:$epsilon);
  let results = (outs Cleave_FloatTensor:$result);
  let assemblyFormat = [{
    $input `,` $scale `,` $bias attr-dict `:` type($input) `,` type($scale)
  }];
  let hasVerifier = 1;
}

def Cleave_RmsNormOp : Cleave_Op<"rms_norm", [Pure,
    AllTypesMatch<["input", "result"]>, CostDefault]> {
  let summary = "Root-mean-square normalization over the last dimension";
  let description = [{
    `x / sqrt(mean(x^2) + epsilon) * scale` along the last dimension.

    ```mlir
    %y = cleave.rms_norm %x, %g {epsilon = 1.0e-05 : f64}
        : tensor<2x16x64xf32>, tensor<64xf32>
    ```
  }];
  let arguments = (ins Cleave_FloatTensor:$input, Cleave_FloatTensor:$scale,
                       DefaultValuedAttr<F64Attr, "1.0e-5">:$epsilon);
  let results = (outs Cleave_FloatTensor:$result);
  let assemblyFormat =
      "$input `,` $scale attr-dict `:` type($input) `,` type($scale)";
  let hasVerifier = 1;
}

def Cleave_EmbeddingOp : Cleave_Op<"embedding", [Pure, CostDefault]> {
  let summary = "Gather rows of a table";
  let description = [{
    `result[i..., :] = table[indices[i...], :]` for a `[V, H]` table and
    integer indices of any shape. Indices outside `[0, V)` are an error at run
    time.

    ```mlir
    %h = cleave.embedding %wte, %tokens
        : tensor<512x64xf32>, tensor<2x16xi32> -> tensor<2x16x64xf32>
    ```
  }];
  let arguments = (ins Cleave_FloatTensor:$table, Cleave_IndexTensor:$indices);
  let results = (outs Cleave_FloatTensor:$result);
  let assemblyFormat = [{
    $table `,` $indices attr-dict `:` type($table) `,` type($indices) `->`
    type($result)
  }];
  let builders = [
    OpBuilder<(ins "::mlir::Value":$table, "::mlir::Value":$indices), [{
      auto tableType = ::llvm::cast<::mlir::RankedTensorType>(table.getType());
      auto indexType = ::llvm::cast<::mlir::RankedTensorType>(indices.getType());
      ::llvm::SmallVector<int64_t> shape(indexType.getShape());
      shape.push_back(tableType.getDimSize(1));
      build($_builder, $_state,
            ::mlir::RankedTensorType::get(shape, tableType.getElementType()),
            table, indices);
    }]>
  ];
  let hasVerifier = 1;
}

def Cleave_RotaryOp : Cleave_Op<"rotary", [Pure, SameOperandsAndResultType,
    CostDefault]> {
  let summary = "Rotary position embedding";
  let description = [{
    For `x` of shape `[..., S, D]` (D even) the position of a row is its index
    `p` along dimension `-2`. Element pairs `(i, i + D/2)` are rotated by the
    angle `p * base^(-2i/D)`:
    `y[i] = x[i] cos - x[i + D/2] sin`, `y[i + D/2] = x[i + D/2] cos + x[i] sin`.
    With `inverse` the rotation goes the other way (the angle is negated),
    which is also the op's gradient. `scaling` rescales the frequencies as
    Llama 3.1 does (`#cleave.rope_scaling`).

    ```mlir
    %q2 = cleave.rotary %q {base = 1.0e+04 : f64} : tensor<2x4x16x16xf32>
    ```
  }];
  let arguments = (ins Cleave_FloatTensor:$input,
                       DefaultValuedAttr<F64Attr, "10000.0">:$base,
                       UnitAttr:$inverse,
                       OptionalAttr<Cleave_RopeScalingAttr>:$scaling);
  let results = (outs Cleave_FloatTensor:$result);
  let assemblyFormat = "$input (`inverse` $inverse^)? attr-dict `:` type($result)";
  let hasVerifier = 1;
}

def Cleave_AttentionOp : Cleave_Op<"attention", [Pure,
    AllTypesMatch<["query", "result"]>, AllTypesMatch<["key", "value"]>,
    TypesMatchWith<"logsumexp has the query's rows in the statistics type",
                   "query", "logsumexp",
                   "::mlir::cleave::getAttentionStatisticsType($_self)">,
    DeclareOpInterfaceMethods<Cleave_CostOpInterface,
                              ["getFlops", "getMatmulFlops"]>]> {
  let summary = "Scaled dot-product attention";
  let description = [{
    `softmax(scale * q k^T + mask) v` with `q` of shape `[batch..., S, D]` and
    `k`, `v` of shape `[batch..., T, D]`; heads are batch dimensions. With
    `causal`, query `i` sees keys `j <= i + (T - S)`. `scale` defaults to
    `1 / sqrt(D)`. The two products count as matrix FLOPs in full, causal or
    not, as Megatron-LM counts them: `4 * batch * S * T * D`.

    Grouped-query attention: from rank 4 on (`[batch..., heads, S, D]`), the
    heads of `k` and `v` may be fewer than the query's, `Hkv` dividing `H`. Query head `h`
    then reads key/value head `h / (H / Hkv)`, as Hugging Face's `repeat_kv`
    pairs them (multi-query attention when `Hkv = 1`).

    The second result is each query's `logsumexp` of its scaled, masked
    scores, `[batch..., S]` in f32 (f64 for f64 queries): the softmax
    statistics `cleave.attention_grad` reads instead of recomputing them.
    Nothing may differentiate through it. Lowered to fused attention, the op
    never holds the `[S, T]` scores.

    ```mlir
    %o, %lse = cleave.attention %q, %k, %v causal
        : tensor<2x4x16x16xf32>, tensor<2x4x16x16xf32>, tensor<2x4x16x16xf32>
    // Eight query heads share two key/value heads.
    %o2, %lse2 = cleave.attention %q8, %k2, %v2 causal
        : tensor<2x8x16x16xf32>, tensor<2x2x16x16xf32>, tensor<2x2x16x16xf32>
    ```
  }];
  let arguments = (ins Cleave_FloatTensor:$query, Cleave_FloatTensor:$key,
                       Cleave_FloatTensor:$value, UnitAttr:$causal,
                       OptionalAttr<F64Attr>:$scale);
  let results = (outs Cleave_FloatTensor:$result,
                      Cleave_FloatTensor:$logsumexp);
  let assemblyFormat = [{
    $query `,` $key `,` $value (`causal` $causal^)? attr-dict `:`
    type($query) `,` type($key) `,` type($value)
  }];
  let extraClassDeclaration = [{
    /// The scale applied to q k^T: the attribute, or 1 / sqrt(D).
    double getEffectiveScale();
  }];
  let hasVerifier = 1;
}

def Cleave_CrossEntropyOp : Cleave_Op<"cross_entropy", [Pure, CostDefault]> {
  let summary = "Softmax cross-entropy per target";
  let description = [{
    For logits `[..., V]` and integer targets `[...]`, returns
    `logsumexp(logits[..., :]) - logits[..., target]` with the targets' shape
    and the logits' element type. Targets outside `[0, V)` are an error at run
    time.

    With `classes = C` (C <= V), only the first C columns are classes: the
    rest pad the vocabulary (to a multiple that GEMMs and tensor-parallel
    splits like) and are masked. They take no probability, targets in them
    are an error, and their logits get no gradient.

    ```mlir
    %l = cleave.cross_entropy %logits, %targets
        : tensor<2x16x512xf32>, tensor<2x16xi32> -> tensor<2x16xf32>
    %p = cleave.cross_entropy %logits, %targets {classes = 500 : i64}
        : tensor<2x16x512xf32>, tensor<2x16xi32> -> tensor<2x16xf32>
    ```
  }];
  let arguments = (ins Cleave_FloatTensor:$logits, Cleave_IndexTensor:$targets,
                       OptionalAttr<I64Attr>:$classes);
  let results = (outs Cleave_FloatTensor:$result);
  let assemblyFormat = [{
    $logits `,` $targets attr-dict `:` type($logits) `,` type($targets) `->`
    type($result)
  }];
  let builders = [
    OpBuilder<(ins "::mlir::Value":$logits, "::mlir::Value":$targets), [{
      auto logitsType = ::llvm::cast<::mlir::RankedTensorType>(logits.getType());
      auto targetsType = ::llvm::cast<::mlir::RankedTensorType>(targets.getType());
      build($_builder, $_state,
            ::mlir::RankedTensorType::get(targetsType.getShape(),
                                          logitsType.getElementType()),
            logits, targets, ::mlir::IntegerAttr());
    }]>
  ];
  let extraClassDeclaration = [{
    /// The classes: the `classes` attribute, or every column.
    int64_t getNumClasses();
  }];
  let hasVerifier = 1;
}

#endif // CLEAVE_DIALECT_CLEAVE_IR_CLEAVECOMPUTEOPS_TD
