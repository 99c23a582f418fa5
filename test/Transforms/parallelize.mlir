// RUN: cleave-opt %s --cleave-autodiff --cleave-parallelize=mesh=dp=2 | FileCheck %s --check-prefix=DP
// RUN: cleave-opt %s --cleave-autodiff --cleave-optimizer '--cleave-parallelize=mesh=dp=2 strategy=dp,zero1' | FileCheck %s --check-prefix=ZERO1
// RUN: cleave-opt %s --cleave-parallelize=mesh=dp=2 | FileCheck %s --check-prefix=FORWARD

// cleave-parallelize adds the mesh, runs the strategies, propagates and
// partitions. On the training step (the function it takes when none is
// named), data parallelism halves the batch of every input and sums the
// loss and the gradients over dp; the forward stays as it was.
// DP:          cleave.mesh @mesh(dp = 2)
// DP-LABEL:    func.func @forward(
// DP-SAME:       %arg0: tensor<8x3xf32> {cleave.param = "w"}
// DP-NOT:        cleave.all_reduce
// DP-LABEL:    func.func @train_step(
// DP-SAME:       tensor<8x3xf32> {cleave.block = #cleave.sharding<@mesh, {{\[\[}}], []]>, cleave.param = "w"}
// DP-SAME:       tensor<2x8xf32> {cleave.block = #cleave.sharding<@mesh, {{\[\[}}dp], []]>, cleave.input = "x"
// DP-SAME:       tensor<2xi32> {cleave.block = #cleave.sharding<@mesh, {{\[\[}}dp]]>, cleave.input = "t"
// DP-SAME:       -> (tensor<f32> {cleave.block = #cleave.sharding<@mesh, []>, cleave.output = "loss"
// DP:            %[[LOSS:.*]] = cleave.all_reduce %{{.*}} on @mesh [dp] sum {{.*}} : tensor<f32>
// DP-NEXT:       %[[DW:.*]] = cleave.all_reduce %{{.*}} on @mesh [dp] sum {{.*}} : tensor<8x3xf32>
// DP-NEXT:       %[[DB:.*]] = cleave.all_reduce %{{.*}} on @mesh [dp] sum {{.*}} : tensor<3xf32>
// DP-NEXT:       return %[[LOSS]], %[[DW]], %[[DB]]

// ZeRO-1 after data parallelism: the weight's gradient is reduce-scattered
// and its update all-gathered; the bias (3 rows do not split over 2) is
// still all-reduced, and so are the loss and the gradient norm's squares.
// ZERO1-LABEL: func.func @train_step(
// ZERO1-DAG:     cleave.reduce_scatter %{{.*}} on @mesh [dp] sum dim 0 {{.*}}: tensor<8x3xf32> -> tensor<4x3xf32>
// ZERO1-DAG:     cleave.all_reduce %{{.*}} on @mesh [dp] sum {{.*}}: tensor<3xf32>
// ZERO1-DAG:     cleave.local_slice %arg0 on @mesh [dp] dim 0 {{.*}}: tensor<8x3xf32> -> tensor<4x3xf32>
// ZERO1-DAG:     cleave.all_gather %{{.*}} on @mesh [dp] dim 0 {{.*}}: tensor<4x3xf32> -> tensor<8x3xf32>
// ZERO1-NOT:     cleave.all_reduce %{{.*}} : tensor<8x3xf32>

// Without a training step, the forward itself is partitioned.
// FORWARD-LABEL: func.func @forward(
// FORWARD-SAME:    tensor<2x8xf32> {cleave.block = #cleave.sharding<@mesh, {{\[\[}}dp], []]>, cleave.input = "x"
// FORWARD:         cleave.all_reduce %{{.*}} on @mesh [dp] sum {{.*}} : tensor<f32>

func.func @forward(%w: tensor<8x3xf32> {cleave.param = "w"},
                   %b: tensor<3xf32> {cleave.param = "b"},
                   %x: tensor<4x8xf32> {cleave.input = "x", cleave.input_role = #cleave.input_role<features>},
                   %t: tensor<4xi32> {cleave.input = "t", cleave.input_role = #cleave.input_role<targets>}) -> tensor<f32>
    attributes {cleave.role = #cleave.role<forward>} {
  %m = cleave.matmul %x, %w {cleave.layer = #cleave.layer<head>} : tensor<4x8xf32>, tensor<8x3xf32> -> tensor<4x3xf32>
  %bb = cleave.broadcast %b dims [1] {cleave.layer = #cleave.layer<head>} : tensor<3xf32> -> tensor<4x3xf32>
  %logits = cleave.add %m, %bb {cleave.layer = #cleave.layer<head>} : tensor<4x3xf32>
  %ce = cleave.cross_entropy %logits, %t {cleave.layer = #cleave.layer<head>} : tensor<4x3xf32>, tensor<4xi32> -> tensor<4xf32>
  %loss = cleave.reduce_mean %ce dims [0] {cleave.layer = #cleave.layer<head>} : tensor<4xf32> -> tensor<f32>
  return %loss : tensor<f32>
}
