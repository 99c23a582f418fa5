// RUN: cleave-opt %s -split-input-file -verify-diagnostics

// expected-note@+1 {{prior use here}}
func.func @binary_types_differ(%a: tensor<4xf32>, %b: tensor<8xf32>) {
  // expected-error@+1 {{use of value '%b' expects different type than prior uses}}
  %0 = cleave.add %a, %b : tensor<4xf32>
  return
}

// -----

func.func @binary_generic_mismatch(%a: tensor<4xf32>, %b: tensor<8xf32>) {
  // expected-error@+1 {{all non-scalar operands/results must have the same shape and base type}}
  %0 = "cleave.add"(%a, %b) : (tensor<4xf32>, tensor<8xf32>) -> tensor<4xf32>
  return
}

// -----

func.func @dynamic_shape(%a: tensor<?xf32>) {
  // expected-error@+1 {{must be statically shaped tensor}}
  %0 = cleave.add %a, %a : tensor<?xf32>
  return
}

// -----

func.func @exp_of_integer(%a: tensor<4xi32>) {
  // expected-error@+1 {{must be statically shaped tensor of 64-bit float or 32-bit float or bfloat16 type or 16-bit float values}}
  %0 = cleave.exp %a : tensor<4xi32>
  return
}

// -----

func.func @broadcast_dims_count(%v: tensor<8xf32>) {
  // expected-error@+1 {{expects one entry in dims per operand dimension: got 2 for an operand of rank 1}}
  %0 = cleave.broadcast %v dims [0, 1] : tensor<8xf32> -> tensor<4x8xf32>
  return
}

// -----

func.func @broadcast_dims_order(%v: tensor<4x8xf32>) {
  // expected-error@+1 {{dims must be strictly increasing and within the result rank 3}}
  %0 = cleave.broadcast %v dims [2, 1] : tensor<4x8xf32> -> tensor<2x8x4xf32>
  return
}

// -----

func.func @broadcast_dims_range(%v: tensor<8xf32>) {
  // expected-error@+1 {{dims must be strictly increasing and within the result rank 2}}
  %0 = cleave.broadcast %v dims [2] : tensor<8xf32> -> tensor<4x8xf32>
  return
}

// -----

func.func @broadcast_size(%v: tensor<3xf32>) {
  // expected-error@+1 {{operand dimension 0 (size 3) is neither 1 nor the size of result dimension 1 (8)}}
  %0 = cleave.broadcast %v dims [1] : tensor<3xf32> -> tensor<4x8xf32>
  return
}

// -----

func.func @broadcast_element_type(%v: tensor<8xf32>) {
  // expected-error@+1 {{operand element type 'f32' differs from result element type 'f16'}}
  %0 = cleave.broadcast %v dims [1] : tensor<8xf32> -> tensor<4x8xf16>
  return
}

// -----

func.func @compare_result(%a: tensor<4xf32>) {
  // expected-error@+1 {{failed to verify that result is an i1 tensor of the operands' shape}}
  %0 = "cleave.compare"(%a, %a) {predicate = 2 : i32} : (tensor<4xf32>, tensor<4xf32>) -> tensor<8xi1>
  return
}

// -----

func.func @select_shape(%c: tensor<8xi1>, %a: tensor<4xf32>) {
  // expected-error@+1 {{condition shape 'tensor<8xi1>' differs from the value shape 'tensor<4xf32>'}}
  %0 = cleave.select %c, %a, %a : tensor<8xi1>, tensor<4xf32>
  return
}

// -----

func.func @reduce_dim_range(%x: tensor<4x8xf32>) {
  // expected-error@+1 {{dimension 2 is out of range for an input of rank 2}}
  %0 = cleave.reduce_sum %x dims [2] : tensor<4x8xf32> -> tensor<4xf32>
  return
}

// -----

func.func @reduce_dim_twice(%x: tensor<4x8xf32>) {
  // expected-error@+1 {{dimension 1 is listed twice}}
  %0 = cleave.reduce_max %x dims [1, 1] : tensor<4x8xf32> -> tensor<4xf32>
  return
}

// -----

func.func @reduce_result(%x: tensor<4x8xf32>) {
  // expected-error@+1 {{result type 'tensor<8xf32>' does not match the expected type 'tensor<4xf32>'}}
  %0 = cleave.reduce_sum %x dims [1] : tensor<4x8xf32> -> tensor<8xf32>
  return
}

// -----

func.func @reduce_mean_integer(%x: tensor<4x8xi32>) {
  // expected-error@+1 {{needs a floating-point input, got 'tensor<4x8xi32>'}}
  %0 = cleave.reduce_mean %x dims [1] : tensor<4x8xi32> -> tensor<4xi32>
  return
}

// -----

func.func @transpose_length(%x: tensor<4x8xf32>) {
  // expected-error@+1 {{permutation has 3 entries for an input of rank 2}}
  %0 = cleave.transpose %x perm [0, 1, 2] : tensor<4x8xf32> -> tensor<4x8xf32>
  return
}

// -----

func.func @transpose_not_permutation(%x: tensor<4x8xf32>) {
  // expected-error@+1 {{perm must be a permutation of [0, 2)}}
  %0 = cleave.transpose %x perm [1, 1] : tensor<4x8xf32> -> tensor<8x8xf32>
  return
}

// -----

func.func @transpose_result(%x: tensor<4x8xf32>) {
  // expected-error@+1 {{result type 'tensor<4x8xf32>' does not match the expected type 'tensor<8x4xf32>'}}
  %0 = cleave.transpose %x perm [1, 0] : tensor<4x8xf32> -> tensor<4x8xf32>
  return
}

// -----

func.func @reshape_count(%x: tensor<4x8xf32>) {
  // expected-error@+1 {{cannot reshape 32 elements into 30 ('tensor<4x8xf32>' to 'tensor<5x6xf32>')}}
  %0 = cleave.reshape %x : tensor<4x8xf32> -> tensor<5x6xf32>
  return
}

// -----

func.func @reshape_element_type(%x: tensor<4x8xf32>) {
  // expected-error@+1 {{operand element type 'f32' differs from result element type 'i32'}}
  %0 = cleave.reshape %x : tensor<4x8xf32> -> tensor<32xi32>
  return
}

// -----

func.func @slice_rank(%x: tensor<4x8xf32>) {
  // expected-error@+1 {{result rank 1 differs from input rank 2}}
  %0 = cleave.slice %x [0, 0] : tensor<4x8xf32> -> tensor<4xf32>
  return
}

// -----

func.func @slice_offsets(%x: tensor<4x8xf32>) {
  // expected-error@+1 {{expects one offset per dimension: got 1 for rank 2}}
  %0 = cleave.slice %x [0] : tensor<4x8xf32> -> tensor<4x4xf32>
  return
}

// -----

func.func @slice_bounds(%x: tensor<4x8xf32>) {
  // expected-error@+1 {{slice [6, 10) of dimension 1 is outside [0, 8)}}
  %0 = cleave.slice %x [0, 6] : tensor<4x8xf32> -> tensor<4x4xf32>
  return
}

// -----

func.func @slice_element_type(%x: tensor<4x8xf32>) {
  // expected-error@+1 {{operand element type 'f32' differs from result element type 'bf16'}}
  %0 = cleave.slice %x [0, 0] : tensor<4x8xf32> -> tensor<4x4xbf16>
  return
}

// -----

func.func @concat_empty() {
  // expected-error@+1 {{needs at least one operand}}
  %0 = "cleave.concat"() {dim = 0 : i64} : () -> tensor<4xf32>
  return
}

// -----

func.func @concat_dim(%a: tensor<4xf32>) {
  // expected-error@+1 {{dimension 1 is out of range for operands of rank 1}}
  %0 = cleave.concat %a, %a dim 1 : (tensor<4xf32>, tensor<4xf32>) -> tensor<8xf32>
  return
}

// -----

func.func @concat_other_dim(%a: tensor<4x8xf32>, %b: tensor<3x2xf32>) {
  // expected-error@+1 {{operand 1 differs from operand 0 in dimension 0 (3 vs 4)}}
  %0 = cleave.concat %a, %b dim 1 : (tensor<4x8xf32>, tensor<3x2xf32>) -> tensor<4x10xf32>
  return
}

// -----

func.func @concat_element_type(%a: tensor<4xf32>, %b: tensor<4xf16>) {
  // expected-error@+1 {{operand 1 has type 'tensor<4xf16>', incompatible with operand 0 of type 'tensor<4xf32>'}}
  %0 = cleave.concat %a, %b dim 0 : (tensor<4xf32>, tensor<4xf16>) -> tensor<8xf32>
  return
}

// -----

func.func @concat_result(%a: tensor<4xf32>) {
  // expected-error@+1 {{result type 'tensor<9xf32>' does not match the expected type 'tensor<8xf32>'}}
  %0 = cleave.concat %a, %a dim 0 : (tensor<4xf32>, tensor<4xf32>) -> tensor<9xf32>
  return
}

// -----

func.func @cast_shape(%a: tensor<4xf32>) {
  // expected-error@+1 {{cannot change the shape: 'tensor<4xf32>' to 'tensor<8xbf16>'}}
  %0 = cleave.cast %a : tensor<4xf32> to tensor<8xbf16>
  return
}

// -----

func.func @constant_type() {
  // expected-error@+1 {{failed to verify that all of {value, result} have same type}}
  %0 = "cleave.constant"() {value = dense<1.0> : tensor<4xf32>} : () -> tensor<8xf32>
  return
}

// -----

func.func @matmul_rank(%a: tensor<4xf32>, %b: tensor<4x8xf32>) {
  // expected-error@+1 {{operands must have rank >= 2, got 'tensor<4xf32>' and 'tensor<4x8xf32>'}}
  %0 = cleave.matmul %a, %b : tensor<4xf32>, tensor<4x8xf32> -> tensor<8xf32>
  return
}

// -----

func.func @matmul_element_types(%a: tensor<2x4xf32>, %b: tensor<4x8xbf16>) {
  // expected-error@+1 {{operand element types differ: 'f32' vs 'bf16'}}
  %0 = cleave.matmul %a, %b : tensor<2x4xf32>, tensor<4x8xbf16> -> tensor<2x8xf32>
  return
}

// -----

func.func @matmul_contracting(%a: tensor<2x4xf32>, %b: tensor<5x8xf32>) {
  // expected-error@+1 {{contracting dimensions differ: lhs has 4, rhs has 5}}
  %0 = cleave.matmul %a, %b : tensor<2x4xf32>, tensor<5x8xf32> -> tensor<2x8xf32>
  return
}

// -----

func.func @matmul_transposed_contracting(%a: tensor<2x4xf32>, %b: tensor<4x8xf32>) {
  // expected-error@+1 {{contracting dimensions differ: lhs has 2, rhs has 4}}
  %0 = cleave.matmul %a, %b transpose_lhs : tensor<2x4xf32>, tensor<4x8xf32> -> tensor<4x8xf32>
  return
}

// -----

func.func @matmul_batch(%a: tensor<3x2x4xf32>, %b: tensor<5x4x8xf32>) {
  // expected-error@+1 {{rhs batch dimensions must equal the lhs batch dimensions or be absent (rank-2 rhs), got 'tensor<3x2x4xf32>' and 'tensor<5x4x8xf32>'}}
  %0 = cleave.matmul %a, %b : tensor<3x2x4xf32>, tensor<5x4x8xf32> -> tensor<3x2x8xf32>
  return
}

// -----

func.func @matmul_result(%a: tensor<2x4xf32>, %b: tensor<4x8xf32>) {
  // expected-error@+1 {{result type 'tensor<2x9xf32>' does not match the expected type 'tensor<2x8xf32>'}}
  %0 = cleave.matmul %a, %b : tensor<2x4xf32>, tensor<4x8xf32> -> tensor<2x9xf32>
  return
}

// -----

func.func @matmul_narrowing_result(%a: tensor<2x4xf32>, %b: tensor<4x8xf32>) {
  // expected-error@+1 {{result type 'tensor<2x8xbf16>' does not match the expected type 'tensor<2x8xf32>'}}
  %0 = cleave.matmul %a, %b : tensor<2x4xf32>, tensor<4x8xf32> -> tensor<2x8xbf16>
  return
}

// -----

func.func @matmul_wide_result(%a: tensor<2x4xbf16>, %b: tensor<4x8xbf16>) {
  // expected-error@+1 {{result type 'tensor<2x8xf64>' does not match the expected type 'tensor<2x8xbf16>'}}
  %0 = cleave.matmul %a, %b : tensor<2x4xbf16>, tensor<4x8xbf16> -> tensor<2x8xf64>
  return
}

// -----

func.func @softmax_scalar(%a: tensor<f32>) {
  // expected-error@+1 {{input must have rank >= 1}}
  %0 = cleave.softmax %a : tensor<f32>
  return
}

// -----

func.func @layer_norm_scale(%x: tensor<2x64xf32>, %g: tensor<32xf32>) {
  // expected-error@+1 {{scale must have shape [64] (the last input dimension), got 'tensor<32xf32>'}}
  %0 = cleave.layer_norm %x, %g, %g : tensor<2x64xf32>, tensor<32xf32>
  return
}

// -----

func.func @layer_norm_epsilon(%x: tensor<2x64xf32>, %g: tensor<64xf32>) {
  // expected-error@+1 {{epsilon must be non-negative}}
  %0 = cleave.layer_norm %x, %g, %g {epsilon = -1.0 : f64} : tensor<2x64xf32>, tensor<64xf32>
  return
}

// -----

func.func @layer_norm_scalar(%x: tensor<f32>, %g: tensor<1xf32>) {
  // expected-error@+1 {{input must have rank >= 1}}
  %0 = cleave.layer_norm %x, %g, %g : tensor<f32>, tensor<1xf32>
  return
}

// -----

func.func @rms_norm_scale(%x: tensor<2x64xf32>, %g: tensor<64x1xf32>) {
  // expected-error@+1 {{scale must have shape [64] (the last input dimension), got 'tensor<64x1xf32>'}}
  %0 = cleave.rms_norm %x, %g : tensor<2x64xf32>, tensor<64x1xf32>
  return
}

// -----

func.func @rms_norm_element_type(%x: tensor<2x64xf32>, %g: tensor<64xbf16>) {
  // expected-error@+1 {{input element type 'f32' differs from scale element type 'bf16'}}
  %0 = cleave.rms_norm %x, %g : tensor<2x64xf32>, tensor<64xbf16>
  return
}

// -----

func.func @rms_norm_epsilon(%x: tensor<2x64xf32>, %g: tensor<64xf32>) {
  // expected-error@+1 {{epsilon must be non-negative}}
  %0 = cleave.rms_norm %x, %g {epsilon = -1.0e-5 : f64} : tensor<2x64xf32>, tensor<64xf32>
  return
}

// -----

func.func @embedding_table_rank(%t: tensor<512xf32>, %ids: tensor<2xi32>) {
  // expected-error@+1 {{table must have rank 2, got 'tensor<512xf32>'}}
  %0 = cleave.embedding %t, %ids : tensor<512xf32>, tensor<2xi32> -> tensor<2xf32>
  return
}

// -----

func.func @embedding_float_ids(%t: tensor<512x8xf32>, %ids: tensor<2xf32>) {
  // expected-error@+1 {{must be statically shaped tensor of 32-bit signless integer or 64-bit signless integer values}}
  %0 = cleave.embedding %t, %ids : tensor<512x8xf32>, tensor<2xf32> -> tensor<2x8xf32>
  return
}

// -----

func.func @embedding_result(%t: tensor<512x8xf32>, %ids: tensor<2xi32>) {
  // expected-error@+1 {{result type 'tensor<2x16xf32>' does not match the expected type 'tensor<2x8xf32>'}}
  %0 = cleave.embedding %t, %ids : tensor<512x8xf32>, tensor<2xi32> -> tensor<2x16xf32>
  return
}

// -----

func.func @rotary_rank(%x: tensor<16xf32>) {
  // expected-error@+1 {{input must have rank >= 2 ([..., positions, dim]), got 'tensor<16xf32>'}}
  %0 = cleave.rotary %x : tensor<16xf32>
  return
}

// -----

func.func @rotary_odd(%x: tensor<4x15xf32>) {
  // expected-error@+1 {{last dimension must be even, got 15}}
  %0 = cleave.rotary %x : tensor<4x15xf32>
  return
}

// -----

func.func @rotary_base(%x: tensor<4x16xf32>) {
  // expected-error@+1 {{base must be positive}}
  %0 = cleave.rotary %x {base = 0.0 : f64} : tensor<4x16xf32>
  return
}

// -----

func.func @attention_rank(%q: tensor<16xf32>) {
  // expected-error@+1 {{query must have rank >= 2 ([batch..., S, D]), got 'tensor<16xf32>'}}
  %0:2 = cleave.attention %q, %q, %q : tensor<16xf32>, tensor<16xf32>, tensor<16xf32>
  return
}

// -----

func.func @attention_key_rank(%q: tensor<2x16x8xf32>, %k: tensor<16x8xf32>) {
  // expected-error@+1 {{key rank 2 differs from query rank 3}}
  %0:2 = cleave.attention %q, %k, %k : tensor<2x16x8xf32>, tensor<16x8xf32>, tensor<16x8xf32>
  return
}

// -----

func.func @attention_batch(%q: tensor<2x16x8xf32>, %k: tensor<3x16x8xf32>) {
  // expected-error@+1 {{batch dimensions of query 'tensor<2x16x8xf32>' and key 'tensor<3x16x8xf32>' differ}}
  %0:2 = cleave.attention %q, %k, %k : tensor<2x16x8xf32>, tensor<3x16x8xf32>, tensor<3x16x8xf32>
  return
}

// -----

func.func @attention_groups(%q: tensor<2x4x16x8xf32>, %k: tensor<2x3x16x8xf32>) {
  // expected-error@+1 {{the key's 3 heads must divide the query's 4 (grouped-query attention)}}
  %0:2 = cleave.attention %q, %k, %k : tensor<2x4x16x8xf32>, tensor<2x3x16x8xf32>, tensor<2x3x16x8xf32>
  return
}

// -----

func.func @attention_groups_batch(%q: tensor<2x4x16x8xf32>, %k: tensor<1x2x16x8xf32>) {
  // expected-error@+1 {{batch dimensions of query 'tensor<2x4x16x8xf32>' and key 'tensor<1x2x16x8xf32>' differ}}
  %0:2 = cleave.attention %q, %k, %k : tensor<2x4x16x8xf32>, tensor<1x2x16x8xf32>, tensor<1x2x16x8xf32>
  return
}

// -----

func.func @attention_grad_groups(%q: tensor<2x4x16x8xf32>, %k: tensor<2x3x16x8xf32>, %lse: tensor<2x4x16xf32>) {
  // expected-error@+1 {{the key's 3 heads must divide the query's 4 (grouped-query attention)}}
  %0:3 = cleave.attention_grad %q, %k, %k, %q, %lse, %q : tensor<2x4x16x8xf32>, tensor<2x3x16x8xf32>
  return
}

// -----

func.func @attention_no_kv_heads(%q: tensor<2x4x16x8xf32>, %k: tensor<2x0x16x8xf32>) {
  // expected-error@+1 {{the key's 0 heads must divide the query's 4 (grouped-query attention)}}
  %0:2 = cleave.attention %q, %k, %k : tensor<2x4x16x8xf32>, tensor<2x0x16x8xf32>, tensor<2x0x16x8xf32>
  return
}

// -----

// Below rank 4 there is no heads dimension to share: the batch must agree.
func.func @attention_rank3_groups(%q: tensor<4x16x8xf32>, %k: tensor<2x16x8xf32>) {
  // expected-error@+1 {{batch dimensions of query 'tensor<4x16x8xf32>' and key 'tensor<2x16x8xf32>' differ}}
  %0:2 = cleave.attention %q, %k, %k : tensor<4x16x8xf32>, tensor<2x16x8xf32>, tensor<2x16x8xf32>
  return
}

// -----

func.func @attention_head_dim(%q: tensor<2x16x8xf32>, %k: tensor<2x16x4xf32>) {
  // expected-error@+1 {{head dimension differs: query has 8, key has 4}}
  %0:2 = cleave.attention %q, %k, %k : tensor<2x16x8xf32>, tensor<2x16x4xf32>, tensor<2x16x4xf32>
  return
}

// -----

func.func @attention_causal_keys(%q: tensor<2x16x8xf32>, %k: tensor<2x8x8xf32>) {
  // expected-error@+1 {{causal attention needs at least as many keys (8) as queries (16)}}
  %0:2 = cleave.attention %q, %k, %k causal : tensor<2x16x8xf32>, tensor<2x8x8xf32>, tensor<2x8x8xf32>
  return
}

// -----

func.func @attention_scale(%q: tensor<2x16x8xf32>) {
  // expected-error@+1 {{scale must be positive}}
  %0:2 = cleave.attention %q, %q, %q {scale = -1.0 : f64} : tensor<2x16x8xf32>, tensor<2x16x8xf32>, tensor<2x16x8xf32>
  return
}

// -----

func.func @attention_key_value(%q: tensor<2x16x8xf32>, %v: tensor<2x16x4xf32>) {
  // expected-error@+1 {{failed to verify that all of {key, value} have same type}}
  %0:2 = "cleave.attention"(%q, %q, %v) : (tensor<2x16x8xf32>, tensor<2x16x8xf32>, tensor<2x16x4xf32>) -> (tensor<2x16x8xf32>, tensor<2x16xf32>)
  return
}

// -----

func.func @attention_statistics_type(%q: tensor<2x16x8xbf16>) {
  // expected-error@+1 {{failed to verify that logsumexp has the query's rows in the statistics type}}
  %0:2 = "cleave.attention"(%q, %q, %q) : (tensor<2x16x8xbf16>, tensor<2x16x8xbf16>, tensor<2x16x8xbf16>) -> (tensor<2x16x8xbf16>, tensor<2x16xbf16>)
  return
}

// -----

func.func @attention_grad_statistics(%q: tensor<2x16x8xf32>, %lse: tensor<2x8xf32>) {
  // expected-error@+1 {{failed to verify that logsumexp has the query's rows in the statistics type}}
  %0:3 = "cleave.attention_grad"(%q, %q, %q, %q, %lse, %q) : (tensor<2x16x8xf32>, tensor<2x16x8xf32>, tensor<2x16x8xf32>, tensor<2x16x8xf32>, tensor<2x8xf32>, tensor<2x16x8xf32>) -> (tensor<2x16x8xf32>, tensor<2x16x8xf32>, tensor<2x16x8xf32>)
  return
}

// -----

func.func @attention_element_type(%q: tensor<2x16x8xf32>, %k: tensor<2x16x8xf16>) {
  // expected-error@+1 {{query element type 'f32' differs from key element type 'f16'}}
  %0:2 = cleave.attention %q, %k, %k : tensor<2x16x8xf32>, tensor<2x16x8xf16>, tensor<2x16x8xf16>
  return
}

// -----

func.func @cross_entropy_classes(%l: tensor<2x16xf32>, %t: tensor<2xi32>) {
  // expected-error@+1 {{classes must be in [1, 16] (the logits' last dimension), got 17}}
  %0 = cleave.cross_entropy %l, %t {classes = 17 : i64} : tensor<2x16xf32>, tensor<2xi32> -> tensor<2xf32>
  return
}

// -----

func.func @cross_entropy_negative_classes(%l: tensor<2x16xf32>, %t: tensor<2xi32>) {
  // expected-error@+1 {{classes must be in [1, 16] (the logits' last dimension), got -5}}
  %0 = cleave.cross_entropy %l, %t {classes = -5 : i64} : tensor<2x16xf32>, tensor<2xi32> -> tensor<2xf32>
  return
}

// -----

func.func @cross_entropy_grad_classes(%l: tensor<2x16xf32>, %t: tensor<2xi32>, %d: tensor<2xf32>) {
  // expected-error@+1 {{classes must be in [1, 16] (the logits' last dimension), got 0}}
  %0 = cleave.cross_entropy_grad %l, %t, %d {classes = 0 : i64} : tensor<2x16xf32>, tensor<2xi32>, tensor<2xf32>
  return
}

// -----

func.func @cross_entropy_targets(%l: tensor<2x16x512xf32>, %t: tensor<2x8xi32>) {
  // expected-error@+1 {{targets shape 'tensor<2x8xi32>' must be the logits shape 'tensor<2x16x512xf32>' without its last (class) dimension}}
  %0 = cleave.cross_entropy %l, %t : tensor<2x16x512xf32>, tensor<2x8xi32> -> tensor<2x8xf32>
  return
}

// -----

func.func @cross_entropy_scalar(%l: tensor<f32>, %t: tensor<i32>) {
  // expected-error@+1 {{logits must have rank >= 1}}
  %0 = cleave.cross_entropy %l, %t : tensor<f32>, tensor<i32> -> tensor<f32>
  return
}

// -----

func.func @cross_entropy_result(%l: tensor<2x512xf32>, %t: tensor<2xi32>) {
  // expected-error@+1 {{result type 'tensor<2xf16>' does not match the expected type 'tensor<2xf32>'}}
  %0 = cleave.cross_entropy %l, %t : tensor<2x512xf32>, tensor<2xi32> -> tensor<2xf16>
  return
}

// -----

func.func @reshape_overflow(%a: tensor<4294967296x4294967296xf32>) {
  // expected-error@+1 {{element count of 'tensor<4294967296x4294967296xf32>' exceeds 2^63}}
  %0 = cleave.reshape %a : tensor<4294967296x4294967296xf32> -> tensor<0xf32>
  return
}

// -----

func.func @slice_offset_overflow(%a: tensor<4xf32>) {
  // expected-error@+1 {{slice [9223372036854775807, -9223372036854775807) of dimension 0 is outside [0, 4)}}
  %0 = cleave.slice %a [9223372036854775807] : tensor<4xf32> -> tensor<2xf32>
  return
}

// -----

func.func @concat_overflow(%a: tensor<4611686018427387904xf32>) {
  // expected-error@+1 {{concatenated dimension 0 exceeds 2^63 elements}}
  %0 = cleave.concat %a, %a, %a dim 0 : (tensor<4611686018427387904xf32>, tensor<4611686018427387904xf32>, tensor<4611686018427387904xf32>) -> tensor<4xf32>
  return
}

// -----

func.func @layer_norm_nan_epsilon(%x: tensor<2x4xf32>, %g: tensor<4xf32>) {
  // expected-error@+1 {{epsilon must be non-negative}}
  %0 = cleave.layer_norm %x, %g, %g {epsilon = 0x7FF8000000000000 : f64} : tensor<2x4xf32>, tensor<4xf32>
  return
}

// -----

func.func @rotary_nan_base(%x: tensor<2x4xf32>) {
  // expected-error@+1 {{base must be positive}}
  %0 = cleave.rotary %x {base = 0x7FF8000000000000 : f64} : tensor<2x4xf32>
  return
}

// -----

func.func @embedding_bool_ids(%t: tensor<512x8xf32>, %ids: tensor<2xi1>) {
  // expected-error@+1 {{must be statically shaped tensor of 32-bit signless integer or 64-bit signless integer values}}
  %0 = cleave.embedding %t, %ids : tensor<512x8xf32>, tensor<2xi1> -> tensor<2x8xf32>
  return
}

// -----

func.func @send_negative_peer(%x: tensor<4xf32>) {
  // expected-error@+1 {{'cleave.send' op peer stage must be non-negative, got -1}}
  cleave.send %x to stage -1 tag 0 : tensor<4xf32>
  return
}

// -----

func.func @recv_negative_tag() -> tensor<4xf32> {
  // expected-error@+1 {{'cleave.recv' op tag must be non-negative, got -2}}
  %0 = cleave.recv from stage 0 tag -2 : tensor<4xf32>
  return %0 : tensor<4xf32>
}
