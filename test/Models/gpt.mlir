// RUN: cleave-models gpt --layers 1 --hidden 32 --heads 2 --seq 8 --vocab 64 --batch 2 | FileCheck %s
// RUN: cleave-models gpt --layers 1 --hidden 32 --heads 2 --seq 8 --vocab 64 --batch 2 --dtype bf16 | FileCheck %s --check-prefix=BF16

// The structure of one GPT-2 block: pre-LN, q/k/v with biases split into
// heads, causal attention, output projection, residuals, GELU MLP, final LN
// and an LM head tied to the token embedding.

// CHECK-LABEL: func.func @forward(
// CHECK-SAME: %[[WTE:[^:]*]]: tensor<64x32xf32> {cleave.init = #cleave.init<normal, 2.000000e-02>, cleave.param = "embed.tokens"}
// CHECK-SAME: %[[WPE:[^:]*]]: tensor<8x32xf32> {cleave.init = #cleave.init<normal, 2.000000e-02>, cleave.param = "embed.positions"}
// CHECK-SAME: {cleave.init = #cleave.init<ones>, cleave.param = "layers.0.ln1.scale"}
// CHECK-SAME: {cleave.init = #cleave.init<zeros>, cleave.param = "layers.0.ln1.bias"}
// CHECK-SAME: {cleave.init = #cleave.init<normal, 2.000000e-02>, cleave.param = "layers.0.attn.q.weight"}
// CHECK-SAME: {cleave.init = #cleave.init<zeros>, cleave.param = "layers.0.attn.q.bias"}
// The projections into the residual stream start smaller: 0.02 / sqrt(2 * layers).
// CHECK-SAME: {cleave.init = #cleave.init<normal, 0.014142135623730949>, cleave.param = "layers.0.attn.out.weight"}
// CHECK-SAME: {cleave.init = #cleave.init<normal, 0.014142135623730949>, cleave.param = "layers.0.mlp.proj.weight"}
// CHECK-SAME: %[[TOK:[^:]*]]: tensor<2x8xi32> {cleave.input = "tokens", cleave.input_role = #cleave.input_role<tokens>}
// CHECK-SAME: %[[TGT:[^:]*]]: tensor<2x8xi32> {cleave.input = "targets", cleave.input_role = #cleave.input_role<targets>}) -> tensor<f32>
// CHECK-SAME: attributes {cleave.role = #cleave.role<forward>}
// CHECK: %[[E:.*]] = cleave.embedding %[[WTE]], %[[TOK]] {cleave.layer = #cleave.layer<embed>}
// CHECK: %[[P:.*]] = cleave.broadcast %[[WPE]] dims [1, 2] {cleave.layer = #cleave.layer<embed>}
// CHECK: %[[X0:.*]] = cleave.add %[[E]], %[[P]] {cleave.layer = #cleave.layer<embed>}
// CHECK: %[[LN1:.*]] = cleave.layer_norm %[[X0]], {{.*}} {cleave.layer = #cleave.layer<0>}
// CHECK: cleave.matmul %[[LN1]], {{.*}} : tensor<2x8x32xf32>, tensor<32x32xf32> -> tensor<2x8x32xf32>
// CHECK: cleave.reshape {{.*}} -> tensor<2x8x2x16xf32>
// CHECK: %[[Q:.*]] = cleave.transpose {{.*}} perm [0, 2, 1, 3] {{.*}} -> tensor<2x2x8x16xf32>
// CHECK: %[[ATT:[^,]*]], %{{.*}} = cleave.attention %[[Q]], {{.*}} causal {cleave.layer = #cleave.layer<0>}
// CHECK: cleave.transpose %[[ATT]] perm [0, 2, 1, 3]
// CHECK: %[[X1:.*]] = cleave.add %[[X0]], {{.*}} {cleave.layer = #cleave.layer<0>}
// CHECK: cleave.layer_norm %[[X1]]
// CHECK: cleave.matmul {{.*}} : tensor<2x8x32xf32>, tensor<32x128xf32> -> tensor<2x8x128xf32>
// CHECK: cleave.gelu
// CHECK: cleave.matmul {{.*}} : tensor<2x8x128xf32>, tensor<128x32xf32> -> tensor<2x8x32xf32>
// CHECK: %[[X2:.*]] = cleave.add %[[X1]], {{.*}} {cleave.layer = #cleave.layer<0>}
// CHECK: %[[LNF:.*]] = cleave.layer_norm %[[X2]], {{.*}} {cleave.layer = #cleave.layer<head>}
// CHECK: %[[LOGITS:.*]] = cleave.matmul %[[LNF]], %[[WTE]] transpose_rhs {cleave.layer = #cleave.layer<head>} : tensor<2x8x32xf32>, tensor<64x32xf32> -> tensor<2x8x64xf32>
// CHECK: %[[CE:.*]] = cleave.cross_entropy %[[LOGITS]], %[[TGT]] {cleave.layer = #cleave.layer<head>}
// CHECK: %[[LOSS:.*]] = cleave.reduce_mean %[[CE]] dims [0, 1] {cleave.layer = #cleave.layer<head>} : tensor<2x8xf32> -> tensor<f32>
// CHECK: return %[[LOSS]] : tensor<f32>

// In bf16 the logits are cast to f32 and the loss is computed in f32.
// BF16: cleave.matmul {{.*}} transpose_rhs {{.*}} -> tensor<2x8x64xbf16>
// BF16-NEXT: cleave.cast {{.*}} : tensor<2x8x64xbf16> to tensor<2x8x64xf32>
// BF16-NEXT: cleave.cross_entropy {{.*}} -> tensor<2x8xf32>
// BF16: return {{.*}} : tensor<f32>
