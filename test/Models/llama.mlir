// RUN: cleave-models llama --layers 1 --hidden 32 --heads 2 --seq 8 --vocab 64 --batch 2 | FileCheck %s

// CHECK-LABEL: func.func @forward(
// CHECK-SAME: tensor<64x32xf32> {cleave.init = #cleave.init<normal, 2.000000e-02>, cleave.param = "embed.tokens"}
// CHECK-SAME: {cleave.init = #cleave.init<ones>, cleave.param = "layers.0.attn_norm.scale"}
// CHECK-SAME: {cleave.init = #cleave.init<normal, 0.014142135623730949>, cleave.param = "layers.0.attn.o.weight"}
// CHECK-SAME: {cleave.init = #cleave.init<normal, 2.000000e-02>, cleave.param = "layers.0.mlp.gate.weight"}
// CHECK-SAME: {cleave.init = #cleave.init<normal, 0.014142135623730949>, cleave.param = "layers.0.mlp.down.weight"}
// CHECK-SAME: %[[HEAD:[^:]*]]: tensor<32x64xf32> {cleave.init = #cleave.init<normal, 2.000000e-02>, cleave.param = "head.weight"}
// CHECK: cleave.embedding {{.*}} {cleave.layer = #cleave.layer<embed>}
// CHECK: cleave.rms_norm {{.*}} {cleave.layer = #cleave.layer<0>}
// CHECK: %[[Q:.*]] = cleave.rotary {{.*}} {cleave.layer = #cleave.layer<0>} : tensor<2x2x8x16xf32>
// CHECK: %[[K:.*]] = cleave.rotary {{.*}} : tensor<2x2x8x16xf32>
// CHECK: cleave.attention %[[Q]], %[[K]], {{.*}} causal
// CHECK: %[[GATE:.*]] = cleave.silu
// CHECK: %[[UP:.*]] = cleave.matmul
// CHECK: cleave.mul %[[GATE]], %[[UP]]
// CHECK: %[[NORM:.*]] = cleave.rms_norm {{.*}} {cleave.layer = #cleave.layer<head>}
// CHECK: cleave.matmul %[[NORM]], %[[HEAD]] {cleave.layer = #cleave.layer<head>} : tensor<2x8x32xf32>, tensor<32x64xf32> -> tensor<2x8x64xf32>
// CHECK: cleave.cross_entropy
// CHECK: cleave.reduce_mean
