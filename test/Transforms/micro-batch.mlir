// RUN: cleave-opt %s -split-input-file -verify-diagnostics '--cleave-micro-batch=factor=2' | FileCheck %s

// Dimension 0 of the inputs and of everything computed from them halves; a
// broadcast that introduces the batch (positions) halves too; the mean over
// the batch ends it. The function records how many micro-batches make the
// step.
// CHECK-LABEL: func.func @forward(
// CHECK-SAME:    %{{.*}}: tensor<3x5xf32> {cleave.param = "pos"}, %{{.*}}: tensor<2x3x5xf32> {cleave.input = "x"}) -> tensor<f32>
// CHECK-SAME:    attributes {cleave.micro_batches = 2 : i64, cleave.role = #cleave.role<forward>}
// CHECK:         cleave.broadcast %{{.*}} dims [1, 2] : tensor<3x5xf32> -> tensor<2x3x5xf32>
// CHECK:         cleave.add %{{.*}}, %{{.*}} : tensor<2x3x5xf32>
// CHECK:         cleave.reduce_mean %{{.*}} dims [0, 1, 2] : tensor<2x3x5xf32> -> tensor<f32>
func.func @forward(%pos: tensor<3x5xf32> {cleave.param = "pos"},
                   %x: tensor<4x3x5xf32> {cleave.input = "x"}) -> tensor<f32> attributes {cleave.role = #cleave.role<forward>} {
  %p = cleave.broadcast %pos dims [1, 2] : tensor<3x5xf32> -> tensor<4x3x5xf32>
  %s = cleave.add %x, %p : tensor<4x3x5xf32>
  %m = cleave.reduce_mean %s dims [0, 1, 2] : tensor<4x3x5xf32> -> tensor<f32>
  return %m : tensor<f32>
}

// -----

func.func @forward(%x: tensor<4x3xf32> {cleave.input = "x"}) -> tensor<f32> attributes {cleave.role = #cleave.role<forward>} {
  // expected-error@+1 {{mixes the batch dimension into others; cannot split it into micro-batches}}
  %r = cleave.reshape %x : tensor<4x3xf32> -> tensor<12xf32>
  %m = cleave.reduce_mean %r dims [0] : tensor<12xf32> -> tensor<f32>
  return %m : tensor<f32>
}

// -----

// expected-error@+1 {{the batch (3) does not split into 2 equal micro-batches}}
func.func @forward(%x: tensor<3x2xf32> {cleave.input = "x"}) -> tensor<f32> attributes {cleave.role = #cleave.role<forward>} {
  %m = cleave.reduce_mean %x dims [0, 1] : tensor<3x2xf32> -> tensor<f32>
  return %m : tensor<f32>
}

// -----

// expected-error@+1 {{micro-batches need a loss that is the mean over the batch (a reduce_mean over dimension 0)}}
func.func @forward(%x: tensor<4x2xf32> {cleave.input = "x"}) -> tensor<f32> attributes {cleave.role = #cleave.role<forward>} {
  %m = cleave.reduce_sum %x dims [0, 1] : tensor<4x2xf32> -> tensor<f32>
  return %m : tensor<f32>
}

// -----

func.func @forward(%x: tensor<4xf32> {cleave.input = "x"}) -> tensor<f32> attributes {cleave.role = #cleave.role<forward>} {
  // expected-error@+1 {{combines elements across the batch dimension; cannot split it into micro-batches}}
  %s = cleave.softmax %x : tensor<4xf32>
  %m = cleave.reduce_mean %s dims [0] : tensor<4xf32> -> tensor<f32>
  return %m : tensor<f32>
}

// -----

// expected-error@+1 {{is already one of 2 micro-batches}}
func.func @forward(%x: tensor<4xf32> {cleave.input = "x"}) -> tensor<f32> attributes {cleave.micro_batches = 2 : i64, cleave.role = #cleave.role<forward>} {
  %loss = cleave.reduce_sum %x dims [0] : tensor<4xf32> -> tensor<f32>
  return %loss : tensor<f32>
}
