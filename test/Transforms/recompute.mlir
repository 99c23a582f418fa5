// RUN: cleave-opt %s --cleave-autodiff --cleave-recompute --cse | FileCheck %s
// RUN: cleave-opt %s --cleave-autodiff '--cleave-recompute=layers=1' | FileCheck %s --check-prefix=FIRST
// RUN: cleave-opt %s --cleave-autodiff --cleave-assign-stages=stages=2 '--cleave-recompute=layers=1' | FileCheck %s --check-prefix=EACH
// RUN: cleave-opt %s --cleave-autodiff --cleave-assign-stages=stages=2 '--cleave-recompute=layers=0,1' | FileCheck %s --check-prefix=SECOND
// RUN: not cleave-opt %s --cleave-autodiff --cleave-assign-stages=stages=2 '--cleave-recompute=layers=1,1,1' -o /dev/null 2>&1 | FileCheck %s --check-prefix=COUNTS
// RUN: not cleave-opt %s --cleave-autodiff '--cleave-recompute=layers=-1' -o /dev/null 2>&1 | FileCheck %s --check-prefix=NEGATIVE

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
// layers=1 without stages: the first block of the model only.
// FIRST-LABEL: func.func @train_step
// FIRST-NOT:     cleave.layer<1>, cleave.recompute
// FIRST:         cleave.tanh %{{.*}} {cleave.layer = #cleave.layer<0>, cleave.recompute}
// FIRST-NOT:     cleave.recompute
// With two stages of one block each, layers=1 recomputes both; 0,1 only
// the second stage's.
// EACH-COUNT-2:  cleave.recompute
// SECOND-LABEL:  func.func @train_step
// SECOND:        cleave.tanh %{{.*}} {cleave.layer = #cleave.layer<1>, cleave.recompute, cleave.stage = 1 : i64}
// SECOND-NOT:    cleave.recompute
// COUNTS: error: layers gives 3 counts for 2 stages: give one for all or one per stage
// NEGATIVE: error: layers must not be negative
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
