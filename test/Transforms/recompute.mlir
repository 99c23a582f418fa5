// RUN: cleave-opt %s --cleave-autodiff --cleave-recompute --cse | FileCheck %s

// Two blocks: %h1 and %h2 cross layer boundaries and stay; the internal
// tanh of each block is recomputed (marked cleave.recompute, which CSE
// leaves alone) right before that block's first backward op, and the
// backward reads the copy.
// CHECK-LABEL: func.func @train_step
// CHECK:         %[[T0:.*]] = cleave.tanh %[[X:.*]] {cleave.layer = #cleave.layer<0>}
// CHECK:         %[[H1:.*]] = cleave.mul %[[T0]], %{{.*}} {cleave.layer = #cleave.layer<0>}
// CHECK:         %[[T1:.*]] = cleave.tanh %[[H1]] {cleave.layer = #cleave.layer<1>}
// Block 1's backward comes first: its tanh is computed again from %h1.
// CHECK:         %[[R1:.*]] = cleave.tanh %[[H1]] {cleave.layer = #cleave.layer<1>, cleave.recompute}
// CHECK:         cleave.mul %{{.*}}, %[[R1]] {cleave.layer = #cleave.layer<1>}
// CHECK:         %[[R0:.*]] = cleave.tanh %[[X]] {cleave.layer = #cleave.layer<0>, cleave.recompute}
// CHECK:         cleave.mul %{{.*}}, %[[R0]] {cleave.layer = #cleave.layer<0>}
func.func @forward(%x: tensor<8xf32> {cleave.input = "x"},
                   %w0: tensor<8xf32> {cleave.param = "w0"},
                   %w1: tensor<8xf32> {cleave.param = "w1"}) -> tensor<f32> attributes {cleave.role = #cleave.role<forward>} {
  %t0 = cleave.tanh %x {cleave.layer = #cleave.layer<0>} : tensor<8xf32>
  %h1 = cleave.mul %t0, %w0 {cleave.layer = #cleave.layer<0>} : tensor<8xf32>
  %t1 = cleave.tanh %h1 {cleave.layer = #cleave.layer<1>} : tensor<8xf32>
  %h2 = cleave.mul %t1, %w1 {cleave.layer = #cleave.layer<1>} : tensor<8xf32>
  %loss = cleave.reduce_sum %h2 dims [0] {cleave.layer = #cleave.layer<head>} : tensor<8xf32> -> tensor<f32>
  return %loss : tensor<f32>
}
