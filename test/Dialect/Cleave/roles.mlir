// RUN: cleave-opt %s -split-input-file | cleave-opt -split-input-file | FileCheck %s
// RUN: cleave-opt %s -split-input-file --mlir-print-op-generic | cleave-opt -split-input-file | FileCheck %s

// What passes record for later ones round-trips: function roles, input
// roles and a pipeline's schedule.

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
// CHECK-SAME:    attributes {cleave.role = #cleave.role<update>}
func.func @apply() attributes {cleave.role = #cleave.role<update>} {
  return
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
// CHECK: module attributes {cleave.plan = #cleave.plan<mesh = "dp=2,pp=2,tp=2", strategies = ["zero1", "pipeline", "megatron"], micro_batch_size = 4, micro_batches = 8, schedule = "interleaved", virtual_stages = 2, layers_per_stage = [6, 6], zero_stage = 1, recompute = true, precision = "bf16", padded_vocab = 50304, cluster = "h200-node", step_time_s = 5.000000e-01 : f64, peak_memory_bytes = 1.000000e+09 : f64, mfu = 2.500000e-01 : f64>}
module attributes {cleave.plan = #cleave.plan<mesh = "dp=2,pp=2,tp=2", strategies = ["zero1", "pipeline", "megatron"], micro_batch_size = 4, micro_batches = 8, schedule = "interleaved", virtual_stages = 2, layers_per_stage = [6, 6], zero_stage = 1, recompute = true, precision = "bf16", padded_vocab = 50304, cluster = "h200-node", step_time_s = 0.5 : f64, peak_memory_bytes = 1.0e9 : f64, mfu = 0.25 : f64>} {
}
