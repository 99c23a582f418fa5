// RUN: cleave-opt %s --cleave-print-cost=json=true -o /dev/null | FileCheck %s

// A parameter two pipeline ranks' stages read (a tied table of 8x4 f32,
// 128 bytes): the runtime sends rank 1's gradient part to rank 0, whose
// update applies it, and the new value back. Each rank's update counts
// what it sends; a parameter one rank alone reads costs nothing.

// CHECK: {"function": "stage0_forward", {{.*}} "comm_bytes": 0,
// CHECK: {"function": "stage0_backward", {{.*}} "comm_bytes": 0,
// CHECK: {"function": "stage1_forward", {{.*}} "comm_bytes": 0,
// CHECK: {"function": "stage1_backward", {{.*}} "comm_bytes": 0,
// CHECK: {"function": "update_rank0", {{.*}} "comm_bytes": 128,
// CHECK: {"function": "update_rank1", {{.*}} "comm_bytes": 128,

func.func @stage0_forward(%t: tensor<8x4xf32> {cleave.param = "table"},
                          %w: tensor<4x4xf32> {cleave.param = "w"}) -> tensor<8x4xf32>
    attributes {cleave.role = #cleave.role<stage_forward>, cleave.stage = 0 : i64} {
  %0 = cleave.matmul %t, %w : tensor<8x4xf32>, tensor<4x4xf32> -> tensor<8x4xf32>
  return %0 : tensor<8x4xf32>
}
func.func @stage0_backward(%t: tensor<8x4xf32> {cleave.param = "table"})
    -> (tensor<8x4xf32> {cleave.output = "grad.table", cleave.output_role = #cleave.output_role<gradient>})
    attributes {cleave.role = #cleave.role<stage_backward>, cleave.stage = 0 : i64} {
  return %t : tensor<8x4xf32>
}
func.func @stage1_forward(%t: tensor<8x4xf32> {cleave.param = "table"}) -> tensor<8x4xf32>
    attributes {cleave.role = #cleave.role<stage_forward>, cleave.stage = 1 : i64} {
  %0 = cleave.exp %t : tensor<8x4xf32>
  return %0 : tensor<8x4xf32>
}
func.func @stage1_backward(%t: tensor<8x4xf32> {cleave.param = "table"})
    -> (tensor<8x4xf32> {cleave.output = "grad.table", cleave.output_role = #cleave.output_role<gradient>})
    attributes {cleave.role = #cleave.role<stage_backward>, cleave.stage = 1 : i64} {
  return %t : tensor<8x4xf32>
}
func.func @update_rank0(%t: tensor<8x4xf32> {cleave.param = "table"},
                        %w: tensor<4x4xf32> {cleave.param = "w"}) -> (tensor<8x4xf32>, tensor<4x4xf32>)
    attributes {cleave.pipeline_rank = 0 : i64, cleave.role = #cleave.role<update>} {
  return %t, %w : tensor<8x4xf32>, tensor<4x4xf32>
}
func.func @update_rank1() attributes {cleave.pipeline_rank = 1 : i64, cleave.role = #cleave.role<update>} {
  return
}
