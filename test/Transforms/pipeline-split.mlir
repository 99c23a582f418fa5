// RUN: cleave-opt %s --cleave-autodiff --cleave-assign-stages=stages=2 '--cleave-pipeline-split=micro-batches=4' | FileCheck %s
// RUN: cleave-opt %s --cleave-autodiff --cleave-assign-stages=stages=2 '--cleave-pipeline-split=ranks=1 schedule=interleaved' | FileCheck %s --check-prefix=ONE-RANK

// Errors: a step with no stages, no step at all, and a step that already
// updates its parameters.
// RUN: not cleave-opt %s --cleave-autodiff --cleave-pipeline-split -o /dev/null 2>&1 | FileCheck %s --check-prefix=UNSTAGED
// RUN: not cleave-opt %s --cleave-pipeline-split -o /dev/null 2>&1 | FileCheck %s --check-prefix=MISSING
// RUN: not cleave-opt %s --cleave-autodiff --cleave-assign-stages=stages=2 --cleave-optimizer --cleave-pipeline-split -o /dev/null 2>&1 | FileCheck %s --check-prefix=UPDATES
// UNSTAGED: error: has no 'cleave.block_stages': run cleave-assign-stages first
// MISSING: error: no function with cleave.role step to split into pipeline stages
// UPDATES: error: updates its parameters: split the gradient step before cleave-optimizer, or build the update apart (separate=true)

// A two-block model with an embedding tied to its head, cut into two
// stages. Stage 0 sends the activation forward and receives its gradient
// back under tag 1; each stage stashes what its own backward reads. The
// tied table's gradient is not sent: both backwards return their part of
// it under its name, for the runtime to sum once per step. The module
// records the schedule and gets a pp mesh.

// CHECK:       module attributes {cleave.schedule = #cleave.schedule<"1f1b", ranks = 2, virtual_stages = 1, micro_batches = 4>}
// CHECK-NEXT:    cleave.mesh @mesh(pp = 2)
// CHECK-LABEL:   func.func @forward(
// CHECK-NOT:       cleave.stage
// CHECK-NOT:     func.func @train_step(

// CHECK-LABEL:   func.func @train_step_stage0_forward(
// CHECK-SAME:      {cleave.param = "embed"}
// CHECK-SAME:      {cleave.input = "tokens", cleave.input_role = #cleave.input_role<tokens>}
// CHECK-SAME:      {cleave.param = "w0"}
// CHECK-SAME:      -> (tensor<4x8xf32> {cleave.stash = [[$S_T0:[0-9]+]] : i64}, tensor<4x8xf32> {cleave.stash = [[$S_X:[0-9]+]] : i64})
// CHECK-SAME:      attributes {cleave.role = #cleave.role<stage_forward>, cleave.stage = 0 : i64}
// CHECK:           %[[X:.*]] = cleave.embedding
// CHECK:           %[[T0:.*]] = cleave.tanh
// CHECK-NEXT:      cleave.send %[[T0]] to stage 1 tag 0 : tensor<4x8xf32>
// CHECK-NEXT:      return %[[T0]], %[[X]]

// CHECK-LABEL:   func.func @train_step_stage0_backward(
// CHECK-SAME:      {cleave.stash = [[$S_T0]] : i64}
// CHECK-SAME:      {cleave.stash = [[$S_X]] : i64}
// CHECK-SAME:      -> (tensor<16x8xf32> {cleave.output = "grad.embed", cleave.output_role = #cleave.output_role<gradient>}, tensor<8x8xf32> {cleave.output = "grad.w0", cleave.output_role = #cleave.output_role<gradient>})
// CHECK-SAME:      attributes {cleave.role = #cleave.role<stage_backward>, cleave.stage = 0 : i64}
// CHECK-NEXT:      %[[DT0:.*]] = cleave.recv from stage 1 tag 1 : tensor<4x8xf32>
// CHECK:           %[[PART0:.*]] = cleave.scatter_add
// CHECK-NEXT:      return %[[PART0]],

// CHECK-LABEL:   func.func @train_step_stage1_forward(
// CHECK-SAME:      {cleave.input = "targets", cleave.input_role = #cleave.input_role<targets>}
// CHECK-SAME:      tensor<f32> {cleave.output = "loss", cleave.output_role = #cleave.output_role<loss>}
// CHECK-SAME:      attributes {cleave.role = #cleave.role<stage_forward>, cleave.stage = 1 : i64}
// CHECK-NEXT:      cleave.recv from stage 0 tag 0 : tensor<4x8xf32>

// CHECK-LABEL:   func.func @train_step_stage1_backward(
// CHECK-SAME:      -> (tensor<16x8xf32> {cleave.output = "grad.embed", cleave.output_role = #cleave.output_role<gradient>}, tensor<8x8xf32> {cleave.output = "grad.w1", cleave.output_role = #cleave.output_role<gradient>})
// CHECK:           %[[PART1:.*]] = cleave.matmul {{.*}} transpose_lhs {{.*}} -> tensor<16x8xf32>
// CHECK:           cleave.send %{{.*}} to stage 0 tag 1 : tensor<4x8xf32>
// CHECK:           return %[[PART1]],

// Two stages on one rank: the schedule records one rank running two
// virtual stages, on a pp axis of one.
// ONE-RANK:      module attributes {cleave.schedule = #cleave.schedule<"interleaved", ranks = 1, virtual_stages = 2, micro_batches = 1>}
// ONE-RANK-NEXT:   cleave.mesh @mesh(pp = 1)

func.func @forward(%table: tensor<16x8xf32> {cleave.param = "embed"},
                   %w0: tensor<8x8xf32> {cleave.param = "w0"},
                   %w1: tensor<8x8xf32> {cleave.param = "w1"},
                   %tokens: tensor<4xi32> {cleave.input = "tokens", cleave.input_role = #cleave.input_role<tokens>},
                   %targets: tensor<4xi32> {cleave.input = "targets", cleave.input_role = #cleave.input_role<targets>}) -> tensor<f32>
    attributes {cleave.role = #cleave.role<forward>} {
  %x = cleave.embedding %table, %tokens {cleave.layer = #cleave.layer<embed>} : tensor<16x8xf32>, tensor<4xi32> -> tensor<4x8xf32>
  %m0 = cleave.matmul %x, %w0 {cleave.layer = #cleave.layer<0>} : tensor<4x8xf32>, tensor<8x8xf32> -> tensor<4x8xf32>
  %t0 = cleave.tanh %m0 {cleave.layer = #cleave.layer<0>} : tensor<4x8xf32>
  %m1 = cleave.matmul %t0, %w1 {cleave.layer = #cleave.layer<1>} : tensor<4x8xf32>, tensor<8x8xf32> -> tensor<4x8xf32>
  %t1 = cleave.tanh %m1 {cleave.layer = #cleave.layer<1>} : tensor<4x8xf32>
  %logits = cleave.matmul %t1, %table transpose_rhs {cleave.layer = #cleave.layer<head>} : tensor<4x8xf32>, tensor<16x8xf32> -> tensor<4x16xf32>
  %ce = cleave.cross_entropy %logits, %targets {cleave.layer = #cleave.layer<head>} : tensor<4x16xf32>, tensor<4xi32> -> tensor<4xf32>
  %loss = cleave.reduce_mean %ce dims [0] {cleave.layer = #cleave.layer<head>} : tensor<4xf32> -> tensor<f32>
  return %loss : tensor<f32>
}
