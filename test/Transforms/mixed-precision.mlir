// RUN: cleave-opt %s -split-input-file -verify-diagnostics --cleave-mixed-precision | FileCheck %s

// Parameters and inputs stay f32 arguments and are cast where they are
// read; the matmul and the activation compute in bf16; the loss takes its
// logits in f32 and the mean stays f32.
// CHECK-LABEL: func.func @forward(
// CHECK-SAME:    %[[W:.*]]: tensor<4x3xf32> {cleave.param = "w"}, %[[X:.*]]: tensor<2x4xf32> {cleave.input = "x"}
// CHECK-DAG:     %[[XB:.*]] = cleave.cast %[[X]] : tensor<2x4xf32> to tensor<2x4xbf16>
// CHECK-DAG:     %[[WB:.*]] = cleave.cast %[[W]] : tensor<4x3xf32> to tensor<4x3xbf16>
// CHECK:         %[[Y:.*]] = cleave.matmul %[[XB]], %[[WB]] : tensor<2x4xbf16>, tensor<4x3xbf16> -> tensor<2x3xbf16>
// CHECK:         %[[G:.*]] = cleave.gelu %[[Y]] : tensor<2x3xbf16>
// CHECK:         %[[GF:.*]] = cleave.cast %[[G]] : tensor<2x3xbf16> to tensor<2x3xf32>
// CHECK:         %[[CE:.*]] = cleave.cross_entropy %[[GF]], %{{.*}} : tensor<2x3xf32>, tensor<2xi32> -> tensor<2xf32>
// CHECK:         cleave.reduce_mean %[[CE]] dims [0] : tensor<2xf32> -> tensor<f32>
func.func @forward(%w: tensor<4x3xf32> {cleave.param = "w"},
                   %x: tensor<2x4xf32> {cleave.input = "x"},
                   %t: tensor<2xi32> {cleave.input = "t"}) -> tensor<f32> attributes {cleave.role = #cleave.role<forward>} {
  %y = cleave.matmul %x, %w : tensor<2x4xf32>, tensor<4x3xf32> -> tensor<2x3xf32>
  %g = cleave.gelu %y : tensor<2x3xf32>
  %ce = cleave.cross_entropy %g, %t : tensor<2x3xf32>, tensor<2xi32> -> tensor<2xf32>
  %loss = cleave.reduce_mean %ce dims [0] : tensor<2xf32> -> tensor<f32>
  return %loss : tensor<f32>
}

// -----

// Constants keep their f32 value and are cast where read; an explicit cast
// keeps its f32 operand (no rounding through 16 bits first).
// CHECK-LABEL: func.func @forward(
// CHECK:         %[[C:.*]] = cleave.constant dense<{{.*}}> : tensor<2xf32>
// CHECK:         %[[WIDE:.*]] = cleave.cast %[[X:.*]] : tensor<2xf32> to tensor<2xf64>
// CHECK:         %[[CB:.*]] = cleave.cast %[[C]] : tensor<2xf32> to tensor<2xbf16>
// CHECK:         cleave.add %{{.*}}, %[[CB]] : tensor<2xbf16>
func.func @forward(%x: tensor<2xf32> {cleave.param = "x"}) -> tensor<f32> attributes {cleave.role = #cleave.role<forward>} {
  %c = cleave.constant dense<[1.5, 2.5]> : tensor<2xf32>
  %wide = cleave.cast %x : tensor<2xf32> to tensor<2xf64>
  %narrow = cleave.cast %wide : tensor<2xf64> to tensor<2xf32>
  %s = cleave.add %narrow, %c : tensor<2xf32>
  %loss = cleave.reduce_sum %s dims [0] : tensor<2xf32> -> tensor<f32>
  return %loss : tensor<f32>
}

// -----

// Attention computes in bf16; its softmax statistics stay f32.
// CHECK-LABEL: func.func @forward(
// CHECK:         cleave.cast %{{.*}} : tensor<2x4x3xf32> to tensor<2x4x3xbf16>
// CHECK:         %[[O:.*]], %{{.*}} = cleave.attention %{{.*}} causal : tensor<2x4x3xbf16>, tensor<2x4x3xbf16>, tensor<2x4x3xbf16>
// CHECK:         cleave.cast %[[O]] : tensor<2x4x3xbf16> to tensor<2x4x3xf32>
func.func @forward(%q: tensor<2x4x3xf32> {cleave.param = "q"}) -> tensor<f32> attributes {cleave.role = #cleave.role<forward>} {
  %o:2 = cleave.attention %q, %q, %q causal : tensor<2x4x3xf32>, tensor<2x4x3xf32>, tensor<2x4x3xf32>
  %loss = cleave.reduce_sum %o#0 dims [0, 1, 2] : tensor<2x4x3xf32> -> tensor<f32>
  return %loss : tensor<f32>
}
