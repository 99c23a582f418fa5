// RUN: cleave-opt %s -split-input-file -verify-diagnostics '--cleave-shard-data-parallel=function=f' '--cleave-shard-zero=function=f' | FileCheck %s
// RUN: cleave-opt %s -split-input-file -verify-diagnostics '--cleave-shard-data-parallel=function=f' '--cleave-shard-zero=function=f' | FileCheck %s --check-prefix=PARAMS
// RUN: cleave-opt %s -split-input-file -verify-diagnostics '--cleave-shard-data-parallel=function=f' '--cleave-shard-zero=function=f stage=3' | FileCheck %s --check-prefix=STAGE3
// RUN: cleave-opt %s -split-input-file -verify-diagnostics '--cleave-shard-data-parallel=function=f' '--cleave-shard-zero=function=f stage=2' | FileCheck %s --check-prefix=STAGE2

// Stage 1 splits optimizer state on the first dimension the axis divides
// (here the second); stage 3 the parameters too. Constraints have priority
// 1, below data parallelism's batch split.
cleave.mesh @mesh(dp = 2)
// CHECK-LABEL: func.func @f
// CHECK-DAG: %[[M:.*]] = cleave.shard %arg1 : tensor<3x4xf32> to <@mesh, {{\[\[}}], [dp]]> priority 1
// CHECK-DAG: cleave.shard %arg2 : tensor<2x3xf32> to <@mesh, {{\[\[}}dp], []]>
// CHECK: cleave.sub %arg0, %[[M]]
// PARAMS-NOT: cleave.shard %arg0
// PARAMS: cleave.sub
// STAGE3-LABEL: func.func @f
// STAGE3-DAG: cleave.shard %arg0 : tensor<3x4xf32> to <@mesh, {{\[\[}}], [dp]]> priority 1
// STAGE3-DAG: cleave.shard %arg1 : tensor<3x4xf32> to <@mesh, {{\[\[}}], [dp]]> priority 1
func.func @f(%w: tensor<3x4xf32> {cleave.param = "w"}, %m: tensor<3x4xf32> {cleave.state = "m"},
             %x: tensor<2x3xf32> {cleave.input = "x"})
    -> (tensor<3x4xf32> {cleave.updates = 0 : i64}) {
  %0 = cleave.sub %w, %m : tensor<3x4xf32>
  return %0 : tensor<3x4xf32>
}

// -----

// A step whose update is built apart (pipeline stages) returns gradients:
// stage 1 leaves them whole for the update to slice; stages 2 and 3 split
// each on the dimension its parameter's state would take, so that they are
// reduce-scattered where they are complete; stage 3 splits the parameters
// as well.
cleave.mesh @mesh(dp = 2)
// CHECK-LABEL: func.func @f
// CHECK:         cleave.shard %arg1 : tensor<2x4xf32> to <@mesh, {{\[\[}}dp], []]>{{$}}
// CHECK-NOT:     cleave.shard
// CHECK:         return
// STAGE2-LABEL: func.func @f
// STAGE2-NOT:    cleave.shard %arg0
// STAGE2:        %[[G:.*]] = cleave.add
// STAGE2:        %[[S:.*]] = cleave.shard %[[G]] : tensor<4x3xf32> to <@mesh, {{\[\[}}dp], []]> priority 1
// STAGE2:        return %[[S]]
// STAGE3-LABEL: func.func @f
// STAGE3:        cleave.shard %arg0 : tensor<4x3xf32> to <@mesh, {{\[\[}}dp], []]> priority 1
// STAGE3:        %[[S:.*]] = cleave.shard %{{.*}} : tensor<4x3xf32> to <@mesh, {{\[\[}}dp], []]> priority 1
// STAGE3:        return %[[S]]
func.func @f(%w: tensor<4x3xf32> {cleave.param = "w"}, %x: tensor<2x4xf32> {cleave.input = "x"})
    -> (tensor<4x3xf32> {cleave.output = "grad.w", cleave.output_role = #cleave.output_role<gradient>}) {
  %g = cleave.add %w, %w : tensor<4x3xf32>
  return %g : tensor<4x3xf32>
}

// -----

cleave.mesh @mesh(dp = 2)
// expected-error@+1 {{has neither optimizer state nor gradients to split; run cleave-autodiff and cleave-optimizer first}}
func.func @f(%w: tensor<4xf32> {cleave.param = "w"}, %x: tensor<2x3xf32> {cleave.input = "x"}) -> tensor<4xf32> {
  return %w : tensor<4xf32>
}

// -----

cleave.mesh @mesh(dp = 2)
// expected-error@+1 {{ZeRO splits optimizer state over 'dp', which needs the batch split over it at a higher priority first: run cleave-shard-data-parallel}}
func.func @f(%m: tensor<4xf32> {cleave.state = "m"}, %lr: tensor<f32> {cleave.input = "lr"}) -> tensor<4xf32> {
  return %m : tensor<4xf32>
}
