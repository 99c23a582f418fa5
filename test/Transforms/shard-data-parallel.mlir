// RUN: cleave-opt %s --cleave-shard-data-parallel | FileCheck %s
// RUN: cleave-opt %s '--cleave-shard-data-parallel=function=other axis=batch priority=2' | FileCheck %s --check-prefix=OPTIONS

// The batch (leading) dimension of every data input is constrained to the
// axis, at the option's priority (0, the highest, is not printed);
// parameters, scalars and the gradients an update takes are left to
// propagation. With no function named, the pass works on the training
// step.
cleave.mesh @mesh(dp = 2, batch = 4)

// CHECK-LABEL: func.func @train_step(
// CHECK-DAG:     %[[X:.*]] = cleave.shard %arg1 : tensor<4x8xf32> to <@mesh, {{\[\[}}dp], []]>{{$}}
// CHECK-DAG:     %[[T:.*]] = cleave.shard %arg2 : tensor<4xi32> to <@mesh, {{\[\[}}dp]]>{{$}}
// CHECK-NOT:     cleave.shard
// CHECK:         cleave.matmul %[[X]], %arg0
// CHECK:         cleave.cross_entropy %{{.*}}, %[[T]]
// OPTIONS-LABEL: func.func @train_step(
// OPTIONS-NOT:     cleave.shard
func.func @train_step(%w: tensor<8x3xf32> {cleave.param = "w"},
                      %x: tensor<4x8xf32> {cleave.input = "x", cleave.input_role = #cleave.input_role<features>},
                      %t: tensor<4xi32> {cleave.input = "t", cleave.input_role = #cleave.input_role<targets>},
                      %lr: tensor<f32> {cleave.input = "lr", cleave.input_role = #cleave.input_role<learning_rate>},
                      %g: tensor<4x3xf32> {cleave.input = "grad.v", cleave.input_role = #cleave.input_role<gradient>})
    -> (tensor<f32>, tensor<4x3xf32>) attributes {cleave.role = #cleave.role<step>} {
  %logits = cleave.matmul %x, %w : tensor<4x8xf32>, tensor<8x3xf32> -> tensor<4x3xf32>
  %ce = cleave.cross_entropy %logits, %t : tensor<4x3xf32>, tensor<4xi32> -> tensor<4xf32>
  %loss = cleave.reduce_mean %ce dims [0] : tensor<4xf32> -> tensor<f32>
  %scaled = cleave.mul %loss, %lr : tensor<f32>
  return %scaled, %g : tensor<f32>, tensor<4x3xf32>
}

// The forward is not the step: it is left alone.
// CHECK-LABEL: func.func @forward(
// CHECK-NOT:     cleave.shard
func.func @forward(%x: tensor<4x8xf32> {cleave.input = "x"}) -> tensor<4x8xf32>
    attributes {cleave.role = #cleave.role<forward>} {
  return %x : tensor<4x8xf32>
}

// A function named by the option, another axis, a lower priority.
// CHECK-LABEL: func.func @other(
// CHECK-NOT:     cleave.shard
// OPTIONS-LABEL: func.func @other(
// OPTIONS:         cleave.shard %arg0 : tensor<8x2xf32> to <@mesh, {{\[\[}}batch], []]> priority 2
func.func @other(%x: tensor<8x2xf32> {cleave.input = "x"}) -> tensor<8x2xf32> {
  return %x : tensor<8x2xf32>
}
