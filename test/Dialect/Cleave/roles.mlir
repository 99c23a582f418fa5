// RUN: cleave-opt %s -split-input-file | cleave-opt -split-input-file | FileCheck %s
// RUN: cleave-opt %s -split-input-file --mlir-print-op-generic | cleave-opt -split-input-file | FileCheck %s

// What passes record for later ones round-trips: function roles, input
// and output roles, parameter initializations and a pipeline's schedule.

// CHECK-LABEL: func.func @forward
// CHECK-SAME:    {cleave.init = #cleave.init<normal, 2.000000e-02>, cleave.param = "w"}
// CHECK-SAME:    {cleave.init = #cleave.init<normal, 0.0070710678118654745>, cleave.param = "proj"}
// CHECK-SAME:    {cleave.init = #cleave.init<zeros>, cleave.param = "b"}
// CHECK-SAME:    {cleave.init = #cleave.init<ones>, cleave.param = "scale"}
// CHECK-SAME:    attributes {cleave.role = #cleave.role<forward>}
func.func @forward(%w: tensor<4xf32> {cleave.param = "w", cleave.init = #cleave.init<normal, 0.02>},
                   %proj: tensor<4xf32> {cleave.param = "proj", cleave.init = #cleave.init<normal, 0.0070710678118654745>},
                   %b: tensor<4xf32> {cleave.param = "b", cleave.init = #cleave.init<zeros>},
                   %scale: tensor<4xf32> {cleave.param = "scale", cleave.init = #cleave.init<ones>})
    attributes {cleave.role = #cleave.role<forward>} {
  return
}

// CHECK-LABEL: func.func @train_step
// CHECK-SAME:    {cleave.input = "tokens", cleave.input_role = #cleave.input_role<tokens>}
// CHECK-SAME:    {cleave.input = "labels", cleave.input_role = #cleave.input_role<targets>}
// CHECK-SAME:    {cleave.input = "pixels", cleave.input_role = #cleave.input_role<features>}
// CHECK-SAME:    attributes {cleave.role = #cleave.role<step>}
func.func @train_step(%tokens: tensor<2x4xi32> {cleave.input = "tokens", cleave.input_role = #cleave.input_role<tokens>},
                      %labels: tensor<2x4xi32> {cleave.input = "labels", cleave.input_role = #cleave.input_role<targets>},
                      %pixels: tensor<2x4xf32> {cleave.input = "pixels", cleave.input_role = #cleave.input_role<features>})
    attributes {cleave.role = #cleave.role<step>} {
  return
}
// CHECK-LABEL: func.func @apply
// CHECK-SAME:    {cleave.input = "grad.w", cleave.input_role = #cleave.input_role<gradient>}
// CHECK-SAME:    {cleave.input = "lr", cleave.input_role = #cleave.input_role<learning_rate>}
// CHECK-SAME:    {cleave.input = "step", cleave.input_role = #cleave.input_role<step_number>}
// CHECK-SAME:    -> (tensor<f32> {cleave.output = "loss", cleave.output_role = #cleave.output_role<loss>},
// CHECK-SAME:        tensor<f32> {cleave.output = "norm", cleave.output_role = #cleave.output_role<grad_norm>},
// CHECK-SAME:        tensor<4xf32> {cleave.output = "grad.w", cleave.output_role = #cleave.output_role<gradient>})
// CHECK-SAME:    attributes {cleave.role = #cleave.role<update>}
func.func @apply(%grad: tensor<4xf32> {cleave.input = "grad.w", cleave.input_role = #cleave.input_role<gradient>},
                 %lr: tensor<f32> {cleave.input = "lr", cleave.input_role = #cleave.input_role<learning_rate>},
                 %step: tensor<f32> {cleave.input = "step", cleave.input_role = #cleave.input_role<step_number>})
    -> (tensor<f32> {cleave.output = "loss", cleave.output_role = #cleave.output_role<loss>},
        tensor<f32> {cleave.output = "norm", cleave.output_role = #cleave.output_role<grad_norm>},
        tensor<4xf32> {cleave.output = "grad.w", cleave.output_role = #cleave.output_role<gradient>})
    attributes {cleave.role = #cleave.role<update>} {
  return %lr, %step, %grad : tensor<f32>, tensor<f32>, tensor<4xf32>
}

// -----

// CHECK: module attributes {cleave.schedule = #cleave.schedule<"interleaved", ranks = 2, virtual_stages = 2, micro_batches = 4>}
// CHECK: func.func @s0_forward() attributes {cleave.role = #cleave.role<stage_forward>, cleave.stage = 0 : i64}
// CHECK: func.func @s0_backward() attributes {cleave.role = #cleave.role<stage_backward>, cleave.stage = 0 : i64}
module attributes {cleave.schedule = #cleave.schedule<"interleaved", ranks = 2, virtual_stages = 2, micro_batches = 4>} {
  func.func @s0_forward() attributes {cleave.role = #cleave.role<stage_forward>, cleave.stage = 0 : i64} {
    return
  }
  func.func @s0_backward() attributes {cleave.role = #cleave.role<stage_backward>, cleave.stage = 0 : i64} {
    return
  }
}

// -----

// The plan cleave-auto-parallel records.
// CHECK: module attributes {cleave.plan = #cleave.plan<mesh = "dp=2,pp=2,tp=2", strategies = ["zero1", "pipeline", "megatron"], micro_batch_size = 4, micro_batches = 8, schedule = "gpipe", layers_per_stage = [6, 6], zero_stage = 1, recompute = true, precision = "bf16", padded_vocab = 50304, cluster = "h200-node", step_time_s = 5.000000e-01 : f64, peak_memory_bytes = 1.000000e+09 : f64, mfu = 2.500000e-01 : f64>}
module attributes {cleave.plan = #cleave.plan<mesh = "dp=2,pp=2,tp=2", strategies = ["zero1", "pipeline", "megatron"], micro_batch_size = 4, micro_batches = 8, schedule = "gpipe", virtual_stages = 1, layers_per_stage = [6, 6], zero_stage = 1, recompute = true, precision = "bf16", padded_vocab = 50304, cluster = "h200-node", step_time_s = 0.5 : f64, peak_memory_bytes = 1.0e9 : f64, mfu = 0.25 : f64>} {
}

// -----

// Recompute of the first blocks of each stage: one count per stage.
// CHECK: module attributes {cleave.plan = #cleave.plan<mesh = "dp=2,pp=2", strategies = ["zero2", "pipeline"], micro_batches = 4, zero_stage = 2, recompute = true, recompute_layers = [2, 0]>}
module attributes {cleave.plan = #cleave.plan<mesh = "dp=2,pp=2", strategies = ["zero2", "pipeline"], micro_batches = 4, zero_stage = 2, recompute = true, recompute_layers = [2, 0]>} {
}

// -----

// The plan cleave-set-plan records: what is left out takes its default
// and prints as such.
// CHECK: module attributes {cleave.plan = #cleave.plan<mesh = "dp=2,pp=2", strategies = ["dp", "pipeline"], micro_batches = 4>}
module attributes {cleave.plan = #cleave.plan<mesh = "dp=2,pp=2", strategies = ["dp", "pipeline"], micro_batches = 4, schedule = "1f1b", precision = "f32">} {
}

// -----

// One device's plan.
// CHECK: module attributes {cleave.plan = #cleave.plan<mesh = "", strategies = [], precision = "bf16">}
module attributes {cleave.plan = #cleave.plan<mesh = "", strategies = [], precision = "bf16">} {
}
