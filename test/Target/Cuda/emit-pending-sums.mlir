// RUN: cleave-opt %s --cleave-fuse --cleave-plan-memory | cleave-translate --cleave-to-cpp | FileCheck %s

// A pipeline stage's pending dp sums: the descriptor names their group and
// the dimension the update takes a block of (-1: the whole), the program
// reports each as soon as it is computed, and an update waits for each
// gradient where it first reads it.

module attributes {cleave.schedule = #cleave.schedule<"1f1b", ranks = 1, virtual_stages = 1, micro_batches = 2>} {
cleave.mesh @mesh(dp = 2, pp = 1)

// CHECK-LABEL: cleave::rt::Status stage0_forward(
// CHECK: CLEAVE_RETURN_IF_ERROR(cleave::rt::resultReady(context, 0,
// CHECK-LABEL: const cleave::rt::ResultSpec k_stage0_forward_results[] = {
// CHECK-NEXT:  {{[{][{]}}"loss", cleave::rt::DType::F32, {0, {}}}, -1, "", cleave::rt::OutputRole::Loss, 0, -1},
func.func @stage0_forward(%x: tensor<4xf32> {cleave.block = #cleave.sharding<@mesh, [[]]>})
    -> (tensor<f32> {cleave.block = #cleave.sharding<@mesh, [], partial = [dp]>, cleave.output = "loss", cleave.output_role = #cleave.output_role<loss>})
    attributes {cleave.role = #cleave.role<stage_forward>, cleave.stage = 0 : i64} {
  %0 = cleave.reduce_sum %x dims [0] : tensor<4xf32> -> tensor<f32>
  return %0 : tensor<f32>
}

// CHECK-LABEL: cleave::rt::Status stage0_backward(
// CHECK: cleave::rt::endOp(context, 0);
// CHECK-NEXT: CLEAVE_RETURN_IF_ERROR(cleave::rt::resultReady(context, 0, [[W:v[0-9]+]]));
// CHECK: cleave::rt::endOp(context, 1);
// CHECK-NEXT: CLEAVE_RETURN_IF_ERROR(cleave::rt::resultReady(context, 1, [[B:v[0-9]+]]));
// CHECK: results[0] = [[W]];
// CHECK-LABEL: const cleave::rt::ResultSpec k_stage0_backward_results[] = {
// CHECK-NEXT:  {{[{][{]}}"grad.w", cleave::rt::DType::F32, {2, {4, 4}}}, -1, ";", cleave::rt::OutputRole::Gradient, 0, 0},
// CHECK-NEXT:  {{[{][{]}}"grad.b", cleave::rt::DType::F32, {1, {4}}}, -1, "", cleave::rt::OutputRole::Gradient, 0, -1},
// CHECK-NEXT: };
func.func @stage0_backward(%x: tensor<4x4xf32> {cleave.block = #cleave.sharding<@mesh, [[], []]>},
                           %y: tensor<4xf32> {cleave.block = #cleave.sharding<@mesh, [[]]>})
    -> (tensor<4x4xf32> {cleave.block = #cleave.sharding<@mesh, [[], []], partial = [dp]>, cleave.output = "grad.w", cleave.output_role = #cleave.output_role<gradient>, cleave.scatter_dim = 0 : i64},
        tensor<4xf32> {cleave.block = #cleave.sharding<@mesh, [[]], partial = [dp]>, cleave.output = "grad.b", cleave.output_role = #cleave.output_role<gradient>})
    attributes {cleave.role = #cleave.role<stage_backward>, cleave.stage = 0 : i64} {
  %0 = cleave.exp %x : tensor<4x4xf32>
  %1 = cleave.neg %y : tensor<4xf32>
  return %0, %1 : tensor<4x4xf32>, tensor<4xf32>
}

// CHECK-LABEL: cleave::rt::Status apply_update_rank0(
// CHECK: CLEAVE_RETURN_IF_ERROR(cleave::rt::awaitInput(context, arg1));
// CHECK-NEXT: cleave::rt::beginOp(context, 0);
// CHECK-NOT: awaitInput
// CHECK: return cleave::rt::Status::success();
func.func @apply_update_rank0(%w: tensor<2x4xf32> {cleave.block = #cleave.sharding<@mesh, [[dp], []]>, cleave.param = "w"},
                              %g: tensor<2x4xf32> {cleave.block = #cleave.sharding<@mesh, [[dp], []]>, cleave.input = "grad.w", cleave.input_role = #cleave.input_role<gradient>})
    -> (tensor<2x4xf32>, tensor<2x4xf32>)
    attributes {cleave.pipeline_rank = 0 : i64, cleave.role = #cleave.role<update>} {
  %0 = cleave.sub %w, %g : tensor<2x4xf32>
  %1 = cleave.add %0, %g : tensor<2x4xf32>
  return %0, %1 : tensor<2x4xf32>, tensor<2x4xf32>
}
}
