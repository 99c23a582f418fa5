// RUN: cleave-opt %s | cleave-opt | FileCheck %s
// RUN: cleave-opt %s --mlir-print-op-generic | cleave-opt | FileCheck %s

// CHECK-LABEL: func.func @elementwise
func.func @elementwise(%a: tensor<4x8xf32>, %b: tensor<4x8xf32>, %i: tensor<4xi32>) -> tensor<4x8xf32> {
  // CHECK: %[[ADD:.*]] = cleave.add %{{.*}}, %{{.*}} : tensor<4x8xf32>
  %0 = cleave.add %a, %b : tensor<4x8xf32>
  // CHECK: cleave.sub %[[ADD]], %{{.*}} : tensor<4x8xf32>
  %1 = cleave.sub %0, %b : tensor<4x8xf32>
  // CHECK: cleave.mul
  %2 = cleave.mul %1, %b : tensor<4x8xf32>
  // CHECK: cleave.div
  %3 = cleave.div %2, %b : tensor<4x8xf32>
  // CHECK: cleave.max
  %4 = cleave.max %3, %b : tensor<4x8xf32>
  // CHECK: cleave.min
  %5 = cleave.min %4, %b : tensor<4x8xf32>
  // CHECK: cleave.neg %{{.*}} : tensor<4x8xf32>
  %6 = cleave.neg %5 : tensor<4x8xf32>
  // CHECK: cleave.exp
  %7 = cleave.exp %6 : tensor<4x8xf32>
  // CHECK: cleave.log
  %8 = cleave.log %7 : tensor<4x8xf32>
  // CHECK: cleave.tanh
  %9 = cleave.tanh %8 : tensor<4x8xf32>
  // CHECK: cleave.sqrt
  %10 = cleave.sqrt %9 : tensor<4x8xf32>
  // CHECK: cleave.rsqrt
  %11 = cleave.rsqrt %10 : tensor<4x8xf32>
  // CHECK: cleave.gelu
  %12 = cleave.gelu %11 : tensor<4x8xf32>
  // CHECK: cleave.relu
  %13 = cleave.relu %12 : tensor<4x8xf32>
  // CHECK: cleave.silu
  %14 = cleave.silu %13 : tensor<4x8xf32>
  // CHECK: cleave.add %{{.*}}, %{{.*}} : tensor<4xi32>
  %15 = cleave.add %i, %i : tensor<4xi32>
  // CHECK: cleave.neg %{{.*}} : tensor<4xi32>
  %16 = cleave.neg %15 : tensor<4xi32>
  return %14 : tensor<4x8xf32>
}

// CHECK-LABEL: func.func @element_types
func.func @element_types(%d: tensor<2xf64>, %h: tensor<2xf16>, %bf: tensor<2xbf16>, %l: tensor<2xi64>) {
  // CHECK: cleave.add %{{.*}}, %{{.*}} : tensor<2xf64>
  %0 = cleave.add %d, %d : tensor<2xf64>
  // CHECK: cleave.exp %{{.*}} : tensor<2xf16>
  %1 = cleave.exp %h : tensor<2xf16>
  // CHECK: cleave.gelu %{{.*}} : tensor<2xbf16>
  %2 = cleave.gelu %bf : tensor<2xbf16>
  // CHECK: cleave.mul %{{.*}}, %{{.*}} : tensor<2xi64>
  %3 = cleave.mul %l, %l : tensor<2xi64>
  return
}

// CHECK-LABEL: func.func @broadcast_compare_select
func.func @broadcast_compare_select(%x: tensor<4x8xf32>, %v: tensor<8xf32>, %one: tensor<4x1xf32>) -> tensor<4x8xf32> {
  // CHECK: cleave.broadcast %{{.*}} dims [1] : tensor<8xf32> -> tensor<4x8xf32>
  %0 = cleave.broadcast %v dims [1] : tensor<8xf32> -> tensor<4x8xf32>
  // CHECK: cleave.broadcast %{{.*}} dims [0, 1] : tensor<4x1xf32> -> tensor<4x8xf32>
  %1 = cleave.broadcast %one dims [0, 1] : tensor<4x1xf32> -> tensor<4x8xf32>
  // CHECK: %[[M:.*]] = cleave.compare gt, %{{.*}}, %{{.*}} : tensor<4x8xf32>
  %2 = cleave.compare gt, %x, %0 : tensor<4x8xf32>
  // CHECK: cleave.select %[[M]], %{{.*}}, %{{.*}} : tensor<4x8xi1>, tensor<4x8xf32>
  %3 = cleave.select %2, %x, %1 : tensor<4x8xi1>, tensor<4x8xf32>
  // CHECK: cleave.compare eq
  %4 = cleave.compare eq, %x, %x : tensor<4x8xf32>
  // CHECK: cleave.compare ne
  %5 = cleave.compare ne, %x, %x : tensor<4x8xf32>
  // CHECK: cleave.compare lt
  %6 = cleave.compare lt, %x, %x : tensor<4x8xf32>
  // CHECK: cleave.compare le
  %7 = cleave.compare le, %x, %x : tensor<4x8xf32>
  // CHECK: cleave.compare ge
  %8 = cleave.compare ge, %x, %x : tensor<4x8xf32>
  return %3 : tensor<4x8xf32>
}

// CHECK-LABEL: func.func @reductions
func.func @reductions(%x: tensor<4x8x16xf32>) -> tensor<f32> {
  // CHECK: cleave.reduce_sum %{{.*}} dims [2] : tensor<4x8x16xf32> -> tensor<4x8xf32>
  %0 = cleave.reduce_sum %x dims [2] : tensor<4x8x16xf32> -> tensor<4x8xf32>
  // CHECK: cleave.reduce_max %{{.*}} dims [0, 2] : tensor<4x8x16xf32> -> tensor<8xf32>
  %1 = cleave.reduce_max %x dims [0, 2] : tensor<4x8x16xf32> -> tensor<8xf32>
  // CHECK: cleave.reduce_mean %{{.*}} dims [1, 0] : tensor<4x8xf32> -> tensor<f32>
  %2 = cleave.reduce_mean %0 dims [1, 0] : tensor<4x8xf32> -> tensor<f32>
  return %2 : tensor<f32>
}

// CHECK-LABEL: func.func @data_movement
func.func @data_movement(%x: tensor<2x16x64xf32>, %y: tensor<2x16x8xf32>) -> tensor<2x16x72xf32> {
  // CHECK: cleave.reshape %{{.*}} : tensor<2x16x64xf32> -> tensor<2x16x4x16xf32>
  %0 = cleave.reshape %x : tensor<2x16x64xf32> -> tensor<2x16x4x16xf32>
  // CHECK: cleave.transpose %{{.*}} perm [0, 2, 1, 3] : tensor<2x16x4x16xf32> -> tensor<2x4x16x16xf32>
  %1 = cleave.transpose %0 perm [0, 2, 1, 3] : tensor<2x16x4x16xf32> -> tensor<2x4x16x16xf32>
  // CHECK: cleave.slice %{{.*}} [0, 4, 32] : tensor<2x16x64xf32> -> tensor<2x8x32xf32>
  %2 = cleave.slice %x [0, 4, 32] : tensor<2x16x64xf32> -> tensor<2x8x32xf32>
  // CHECK: cleave.concat %{{.*}}, %{{.*}} dim 2 : (tensor<2x16x64xf32>, tensor<2x16x8xf32>) -> tensor<2x16x72xf32>
  %3 = cleave.concat %x, %y dim 2 : (tensor<2x16x64xf32>, tensor<2x16x8xf32>) -> tensor<2x16x72xf32>
  // CHECK: cleave.cast %{{.*}} : tensor<2x16x72xf32> to tensor<2x16x72xbf16>
  %4 = cleave.cast %3 : tensor<2x16x72xf32> to tensor<2x16x72xbf16>
  // CHECK: cleave.cast %{{.*}} : tensor<2x16x72xbf16> to tensor<2x16x72xf32>
  %5 = cleave.cast %4 : tensor<2x16x72xbf16> to tensor<2x16x72xf32>
  return %5 : tensor<2x16x72xf32>
}

// CHECK-LABEL: func.func @constants
func.func @constants() -> (tensor<2xf32>, tensor<4x8xf32>, tensor<3xi32>) {
  // CHECK: cleave.constant dense<[1.000000e+00, 2.000000e+00]> : tensor<2xf32>
  %0 = cleave.constant dense<[1.0, 2.0]> : tensor<2xf32>
  // CHECK: cleave.fill 5.000000e-01 : tensor<4x8xf32>
  %1 = cleave.fill 0.5 : tensor<4x8xf32>
  // CHECK: cleave.fill 7.000000e+00 : tensor<3xi32>
  %2 = cleave.fill 7.0 : tensor<3xi32>
  return %0, %1, %2 : tensor<2xf32>, tensor<4x8xf32>, tensor<3xi32>
}

// CHECK-LABEL: func.func @matmuls
func.func @matmuls(%x: tensor<2x16x64xf32>, %w: tensor<64x256xf32>, %e: tensor<512x64xf32>,
                   %a: tensor<8x32x16xbf16>, %b: tensor<8x32x24xbf16>) {
  // CHECK: cleave.matmul %{{.*}}, %{{.*}} : tensor<2x16x64xf32>, tensor<64x256xf32> -> tensor<2x16x256xf32>
  %0 = cleave.matmul %x, %w : tensor<2x16x64xf32>, tensor<64x256xf32> -> tensor<2x16x256xf32>
  // CHECK: cleave.matmul %{{.*}}, %{{.*}} transpose_rhs : tensor<2x16x64xf32>, tensor<512x64xf32> -> tensor<2x16x512xf32>
  %1 = cleave.matmul %x, %e transpose_rhs : tensor<2x16x64xf32>, tensor<512x64xf32> -> tensor<2x16x512xf32>
  // CHECK: cleave.matmul %{{.*}}, %{{.*}} transpose_lhs : tensor<8x32x16xbf16>, tensor<8x32x24xbf16> -> tensor<8x16x24xbf16>
  %2 = cleave.matmul %a, %b transpose_lhs : tensor<8x32x16xbf16>, tensor<8x32x24xbf16> -> tensor<8x16x24xbf16>
  // CHECK: cleave.matmul %{{.*}}, %{{.*}} transpose_lhs transpose_rhs : tensor<64x256xf32>, tensor<512x64xf32> -> tensor<256x512xf32>
  %3 = cleave.matmul %w, %e transpose_lhs transpose_rhs : tensor<64x256xf32>, tensor<512x64xf32> -> tensor<256x512xf32>
  return
}

// CHECK-LABEL: func.func @matmul_bias
func.func @matmul_bias(%x: tensor<2x16x64xbf16>, %w: tensor<256x64xbf16>, %b: tensor<256xbf16>,
                       %c: tensor<256xf32>) {
  // CHECK: cleave.matmul_bias %{{.*}}, %{{.*}}, %{{.*}} transpose_rhs : tensor<2x16x64xbf16>, tensor<256x64xbf16>, tensor<256xbf16> -> tensor<2x16x256xbf16>
  %0 = cleave.matmul_bias %x, %w, %b transpose_rhs : tensor<2x16x64xbf16>, tensor<256x64xbf16>, tensor<256xbf16> -> tensor<2x16x256xbf16>
  // CHECK: cleave.matmul_bias %{{.*}}, %{{.*}}, %{{.*}} transpose_rhs gelu : tensor<2x16x64xbf16>, tensor<256x64xbf16>, tensor<256xbf16> -> tensor<2x16x256xbf16>, tensor<2x16x256xbf16>
  %1, %2 = cleave.matmul_bias %x, %w, %b transpose_rhs gelu : tensor<2x16x64xbf16>, tensor<256x64xbf16>, tensor<256xbf16> -> tensor<2x16x256xbf16>, tensor<2x16x256xbf16>
  // A 16-bit product stored as f32 takes an f32 bias.
  // CHECK: cleave.matmul_bias %{{.*}}, %{{.*}}, %{{.*}} transpose_rhs gelu : tensor<2x16x64xbf16>, tensor<256x64xbf16>, tensor<256xf32> -> tensor<2x16x256xf32>
  %3 = cleave.matmul_bias %x, %w, %c transpose_rhs gelu : tensor<2x16x64xbf16>, tensor<256x64xbf16>, tensor<256xf32> -> tensor<2x16x256xf32>
  return
}

// CHECK-LABEL: func.func @nn_ops
func.func @nn_ops(%x: tensor<2x16x64xf32>, %g: tensor<64xf32>, %b: tensor<64xf32>,
                  %q: tensor<2x4x16x16xf32>, %k: tensor<2x4x24x16xf32>,
                  %wte: tensor<512x64xf32>, %tokens: tensor<2x16xi32>,
                  %logits: tensor<2x16x512xf32>) -> tensor<2x16xf32> {
  // CHECK: cleave.softmax %{{.*}} : tensor<2x16x64xf32>
  %0 = cleave.softmax %x : tensor<2x16x64xf32>
  // CHECK: cleave.layer_norm %{{.*}}, %{{.*}}, %{{.*}} : tensor<2x16x64xf32>, tensor<64xf32>
  %1 = cleave.layer_norm %x, %g, %b : tensor<2x16x64xf32>, tensor<64xf32>
  // CHECK: cleave.layer_norm %{{.*}}, %{{.*}}, %{{.*}} {epsilon = 9.9999999999999995E-7 : f64} : tensor<2x16x64xf32>, tensor<64xf32>
  %2 = cleave.layer_norm %x, %g, %b {epsilon = 1.0e-6 : f64} : tensor<2x16x64xf32>, tensor<64xf32>
  // CHECK: cleave.rms_norm %{{.*}}, %{{.*}} : tensor<2x16x64xf32>, tensor<64xf32>
  %3 = cleave.rms_norm %x, %g : tensor<2x16x64xf32>, tensor<64xf32>
  // CHECK: cleave.embedding %{{.*}}, %{{.*}} : tensor<512x64xf32>, tensor<2x16xi32> -> tensor<2x16x64xf32>
  %4 = cleave.embedding %wte, %tokens : tensor<512x64xf32>, tensor<2x16xi32> -> tensor<2x16x64xf32>
  // CHECK: cleave.rotary %{{.*}} : tensor<2x4x16x16xf32>
  %5 = cleave.rotary %q : tensor<2x4x16x16xf32>
  // CHECK: cleave.rotary %{{.*}} {base = 5.000000e+05 : f64} : tensor<2x4x16x16xf32>
  %6 = cleave.rotary %q {base = 500000.0 : f64} : tensor<2x4x16x16xf32>
  // CHECK: cleave.attention %{{.*}}, %{{.*}}, %{{.*}} causal : tensor<2x4x16x16xf32>, tensor<2x4x16x16xf32>, tensor<2x4x16x16xf32>
  %7:2 = cleave.attention %5, %6, %q causal : tensor<2x4x16x16xf32>, tensor<2x4x16x16xf32>, tensor<2x4x16x16xf32>
  // CHECK: cleave.attention %{{.*}}, %{{.*}}, %{{.*}} {scale = 1.250000e-01 : f64} : tensor<2x4x16x16xf32>, tensor<2x4x24x16xf32>, tensor<2x4x24x16xf32>
  %8:2 = cleave.attention %q, %k, %k {scale = 0.125 : f64} : tensor<2x4x16x16xf32>, tensor<2x4x24x16xf32>, tensor<2x4x24x16xf32>
  // CHECK: cleave.attention_grad %{{.*}}, %{{.*}}, %{{.*}}, %{{.*}}, %{{.*}}, %{{.*}} {scale = 1.250000e-01 : f64} : tensor<2x4x16x16xf32>, tensor<2x4x24x16xf32>
  %ag:3 = cleave.attention_grad %q, %k, %k, %8#0, %8#1, %q {scale = 0.125 : f64} : tensor<2x4x16x16xf32>, tensor<2x4x24x16xf32>
  // CHECK: cleave.cross_entropy %{{.*}}, %{{.*}} : tensor<2x16x512xf32>, tensor<2x16xi32> -> tensor<2x16xf32>
  %9 = cleave.cross_entropy %logits, %tokens : tensor<2x16x512xf32>, tensor<2x16xi32> -> tensor<2x16xf32>
  return %9 : tensor<2x16xf32>
}

// CHECK-LABEL: func.func @annotations
// CHECK-SAME: {cleave.param = "w"}
// CHECK-SAME: {cleave.input = "x"}
func.func @annotations(%w: tensor<8xf32> {cleave.param = "w"}, %x: tensor<8xf32> {cleave.input = "x"}) -> tensor<8xf32> {
  // CHECK: cleave.add %{{.*}}, %{{.*}} {cleave.layer = #cleave.layer<embed>}
  %0 = cleave.add %w, %x {cleave.layer = #cleave.layer<embed>} : tensor<8xf32>
  // CHECK: cleave.add %{{.*}}, %{{.*}} {cleave.layer = #cleave.layer<7>}
  %1 = cleave.add %0, %x {cleave.layer = #cleave.layer<7>} : tensor<8xf32>
  // CHECK: cleave.add %{{.*}}, %{{.*}} {cleave.layer = #cleave.layer<head>}
  %2 = cleave.add %1, %x {cleave.layer = #cleave.layer<head>} : tensor<8xf32>
  return %2 : tensor<8xf32>
}

// A product of 16-bit operands may be stored as f32.
// CHECK-LABEL: func.func @wide_matmul
// CHECK: cleave.matmul %{{.*}}, %{{.*}} : tensor<2x4xbf16>, tensor<4x3xbf16> -> tensor<2x3xf32>
func.func @wide_matmul(%x: tensor<2x4xbf16>, %w: tensor<4x3xbf16>) -> tensor<2x3xf32> {
  %0 = cleave.matmul %x, %w : tensor<2x4xbf16>, tensor<4x3xbf16> -> tensor<2x3xf32>
  return %0 : tensor<2x3xf32>
}

// A padded vocabulary: the loss and its gradient mask columns past `classes`.
// CHECK-LABEL: func.func @padded_vocabulary
// CHECK: cleave.cross_entropy %{{.*}}, %{{.*}} {classes = 250 : i64} : tensor<2x256xf32>, tensor<2xi32> -> tensor<2xf32>
// CHECK: cleave.cross_entropy_grad %{{.*}}, %{{.*}}, %{{.*}} {classes = 250 : i64} : tensor<2x256xf32>, tensor<2xi32>, tensor<2xf32>
func.func @padded_vocabulary(%l: tensor<2x256xf32>, %t: tensor<2xi32>, %d: tensor<2xf32>) -> (tensor<2xf32>, tensor<2x256xf32>) {
  %0 = cleave.cross_entropy %l, %t {classes = 250 : i64} : tensor<2x256xf32>, tensor<2xi32> -> tensor<2xf32>
  %1 = cleave.cross_entropy_grad %l, %t, %d {classes = 250 : i64} : tensor<2x256xf32>, tensor<2xi32>, tensor<2xf32>
  return %0, %1 : tensor<2xf32>, tensor<2x256xf32>
}

// Grouped-query attention (two query heads per key/value head) and Llama
// 3.1's rotary frequency scaling.
// CHECK-LABEL: func.func @grouped_query_attention
func.func @grouped_query_attention(%q: tensor<2x4x16x8xf32>, %kv: tensor<2x2x16x8xf32>) -> tensor<2x4x16x8xf32> {
  // CHECK: cleave.rotary %{{.*}} {scaling = #cleave.rope_scaling<factor = 8.000000e+00, low_freq_factor = 1.000000e+00, high_freq_factor = 4.000000e+00, original_max_positions = 8192>} : tensor<2x2x16x8xf32>
  %k = cleave.rotary %kv {scaling = #cleave.rope_scaling<factor = 8.0, low_freq_factor = 1.0, high_freq_factor = 4.0, original_max_positions = 8192>} : tensor<2x2x16x8xf32>
  // CHECK: cleave.attention %{{.*}}, %{{.*}}, %{{.*}} causal : tensor<2x4x16x8xf32>, tensor<2x2x16x8xf32>, tensor<2x2x16x8xf32>
  %o:2 = cleave.attention %q, %k, %kv causal : tensor<2x4x16x8xf32>, tensor<2x2x16x8xf32>, tensor<2x2x16x8xf32>
  return %o#0 : tensor<2x4x16x8xf32>
}
