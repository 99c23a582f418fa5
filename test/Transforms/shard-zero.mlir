// RUN: cleave-opt %s -split-input-file -verify-diagnostics '--cleave-shard-data-parallel=function=f' '--cleave-shard-zero=function=f' | FileCheck %s
// RUN: cleave-opt %s -split-input-file -verify-diagnostics '--cleave-shard-data-parallel=function=f' '--cleave-shard-zero=function=f' | FileCheck %s --check-prefix=PARAMS
// RUN: cleave-opt %s -split-input-file -verify-diagnostics '--cleave-shard-data-parallel=function=f' '--cleave-shard-zero=function=f stage=3' | FileCheck %s --check-prefix=STAGE3

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

cleave.mesh @mesh(dp = 2)
// expected-error@+1 {{has no optimizer state to split; run cleave-optimizer first}}
func.func @f(%w: tensor<4xf32> {cleave.param = "w"}, %x: tensor<2x3xf32> {cleave.input = "x"}) -> tensor<4xf32> {
  return %w : tensor<4xf32>
}

// -----

cleave.mesh @mesh(dp = 2)
// expected-error@+1 {{ZeRO splits optimizer state over 'dp', which needs the batch split over it at a higher priority first: run cleave-shard-data-parallel}}
func.func @f(%m: tensor<4xf32> {cleave.state = "m"}, %lr: tensor<f32> {cleave.input = "lr"}) -> tensor<4xf32> {
  return %m : tensor<4xf32>
}
