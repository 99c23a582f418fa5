// RUN: cleave-opt %s --split-input-file --cleave-defer-gradient-reduction | FileCheck %s

// Plain data parallelism over dp = 2 on two pp ranks: each backward
// returns its gradient's addend as a pending dp sum (the all-reduce goes),
// through the cast of mixed precision; the sum over [dp, tp] keeps tp; the
// loss's dp sum is deferred too. The update reads whole gradients, so
// nothing is scattered.

cleave.mesh @mesh(dp = 2, pp = 2, tp = 2)

// CHECK-LABEL: func.func @stage0_backward
// CHECK-SAME: -> (tensor<4x4xf32> {cleave.block = #cleave.sharding<@mesh, {{\[\[}}], []], partial = [dp]>, cleave.output = "grad.w"
// CHECK-SAME: tensor<4xf32> {cleave.block = #cleave.sharding<@mesh, {{\[\[}}]], partial = [dp]>, cleave.output = "grad.b"
// CHECK-NOT: cleave.scatter_dim
// CHECK: %[[CAST:.*]] = cleave.cast %arg0 : tensor<4x4xbf16> to tensor<4x4xf32>
// CHECK: %[[TP:.*]] = cleave.all_reduce %arg1 on @mesh [tp] sum : tensor<4xf32>
// CHECK-NOT: [dp]
// CHECK: return %[[CAST]], %[[TP]]
func.func @stage0_backward(%g: tensor<4x4xbf16>, %b: tensor<4xf32>)
    -> (tensor<4x4xf32> {cleave.block = #cleave.sharding<@mesh, [[], []]>, cleave.output = "grad.w", cleave.output_role = #cleave.output_role<gradient>},
        tensor<4xf32> {cleave.block = #cleave.sharding<@mesh, [[]]>, cleave.output = "grad.b", cleave.output_role = #cleave.output_role<gradient>})
    attributes {cleave.role = #cleave.role<stage_backward>, cleave.stage = 0 : i64} {
  %0 = cleave.all_reduce %g on @mesh [dp] sum : tensor<4x4xbf16>
  %1 = cleave.cast %0 : tensor<4x4xbf16> to tensor<4x4xf32>
  %2 = cleave.all_reduce %b on @mesh [dp, tp] sum : tensor<4xf32>
  return %1, %2 : tensor<4x4xf32>, tensor<4xf32>
}

// CHECK-LABEL: func.func @stage1_forward
// CHECK-SAME: -> (tensor<f32> {cleave.block = #cleave.sharding<@mesh, [], partial = [dp]>, cleave.output = "loss"
// CHECK-NOT: cleave.all_reduce
// CHECK: return %arg0
func.func @stage1_forward(%x: tensor<f32>)
    -> (tensor<f32> {cleave.block = #cleave.sharding<@mesh, []>, cleave.output = "loss", cleave.output_role = #cleave.output_role<loss>})
    attributes {cleave.role = #cleave.role<stage_forward>, cleave.stage = 1 : i64} {
  %0 = cleave.all_reduce %x on @mesh [dp] sum : tensor<f32>
  return %0 : tensor<f32>
}

// CHECK-LABEL: func.func @update_rank0
// CHECK-SAME: %arg0: tensor<4x4xf32> {cleave.block = #cleave.sharding<@mesh, {{\[\[}}], []]>
func.func @update_rank0(%w: tensor<4x4xf32> {cleave.block = #cleave.sharding<@mesh, [[], []]>, cleave.input = "grad.w", cleave.input_role = #cleave.input_role<gradient>},
                        %b: tensor<4xf32> {cleave.block = #cleave.sharding<@mesh, [[]]>, cleave.input = "grad.b", cleave.input_role = #cleave.input_role<gradient>})
    -> (tensor<4x4xf32>, tensor<4xf32>)
    attributes {cleave.pipeline_rank = 0 : i64, cleave.role = #cleave.role<update>} {
  return %w, %b : tensor<4x4xf32>, tensor<4xf32>
}

// -----

// ZeRO-1: the update reads only its dp block of grad.w along dimension 0
// and of grad.v along 1, so it takes those blocks, and the backward's
// results say the runtime reduce-scatters along 0 and 1. A max, and a sum
// whose result is read by more than the return, stay. A tied table
// (grad.t, returned by two stages) is all-reduced, never scattered, though
// its update slices it. A declaration is left alone.

cleave.mesh @mesh(dp = 2, pp = 2)

// CHECK-LABEL: func.func @stage0_backward
// CHECK-SAME: cleave.output = "grad.w", cleave.output_role = #cleave.output_role<gradient>, cleave.scatter_dim = 0 : i64}
// CHECK-SAME: {cleave.block = #cleave.sharding<@mesh, {{\[\[}}], []], partial = [dp]>, cleave.output = "grad.v", cleave.output_role = #cleave.output_role<gradient>, cleave.scatter_dim = 1 : i64}
// CHECK-SAME: {cleave.block = #cleave.sharding<@mesh, {{\[\[}}]]>, cleave.output = "grad.m"
// CHECK-SAME: {cleave.block = #cleave.sharding<@mesh, {{\[\[}}]]>, cleave.output = "grad.s"
// CHECK-SAME: {cleave.block = #cleave.sharding<@mesh, {{\[\[}}], []], partial = [dp]>, cleave.output = "grad.t", cleave.output_role = #cleave.output_role<gradient>}
// CHECK: %[[MAX:.*]] = cleave.all_reduce %arg2 on @mesh [dp] max
// CHECK: %[[SUM:.*]] = cleave.all_reduce %arg3 on @mesh [dp] sum
// CHECK: return %arg0, %arg1, %[[MAX]], %[[SUM]], %arg4
func.func @stage0_backward(%w: tensor<4x4xf32>, %v: tensor<4x4xf32>, %m: tensor<4xf32>, %s: tensor<4xf32>, %t: tensor<8x4xf32>)
    -> (tensor<4x4xf32> {cleave.block = #cleave.sharding<@mesh, [[], []]>, cleave.output = "grad.w", cleave.output_role = #cleave.output_role<gradient>},
        tensor<4x4xf32> {cleave.block = #cleave.sharding<@mesh, [[], []]>, cleave.output = "grad.v", cleave.output_role = #cleave.output_role<gradient>},
        tensor<4xf32> {cleave.block = #cleave.sharding<@mesh, [[]]>, cleave.output = "grad.m", cleave.output_role = #cleave.output_role<gradient>},
        tensor<4xf32> {cleave.block = #cleave.sharding<@mesh, [[]]>, cleave.output = "grad.s", cleave.output_role = #cleave.output_role<gradient>},
        tensor<8x4xf32> {cleave.block = #cleave.sharding<@mesh, [[], []]>, cleave.output = "grad.t", cleave.output_role = #cleave.output_role<gradient>},
        tensor<4xf32>)
    attributes {cleave.role = #cleave.role<stage_backward>, cleave.stage = 0 : i64} {
  %0 = cleave.all_reduce %w on @mesh [dp] sum : tensor<4x4xf32>
  %1 = cleave.all_reduce %v on @mesh [dp] sum : tensor<4x4xf32>
  %2 = cleave.all_reduce %m on @mesh [dp] max : tensor<4xf32>
  %3 = cleave.all_reduce %s on @mesh [dp] sum : tensor<4xf32>
  %4 = cleave.all_reduce %t on @mesh [dp] sum : tensor<8x4xf32>
  return %0, %1, %2, %3, %4, %3 : tensor<4x4xf32>, tensor<4x4xf32>, tensor<4xf32>, tensor<4xf32>, tensor<8x4xf32>, tensor<4xf32>
}

// CHECK-LABEL: func.func @stage1_backward
// CHECK-SAME: -> (tensor<8x4xf32> {cleave.block = #cleave.sharding<@mesh, {{\[\[}}], []], partial = [dp]>, cleave.output = "grad.t", cleave.output_role = #cleave.output_role<gradient>})
func.func @stage1_backward(%t: tensor<8x4xf32>)
    -> (tensor<8x4xf32> {cleave.block = #cleave.sharding<@mesh, [[], []]>, cleave.output = "grad.t", cleave.output_role = #cleave.output_role<gradient>})
    attributes {cleave.role = #cleave.role<stage_backward>, cleave.stage = 1 : i64} {
  %0 = cleave.all_reduce %t on @mesh [dp] sum : tensor<8x4xf32>
  return %0 : tensor<8x4xf32>
}

// CHECK-LABEL: func.func @update_rank0
// CHECK-SAME: %arg0: tensor<2x4xf32> {cleave.block = #cleave.sharding<@mesh, {{\[\[}}dp], []]>, cleave.input = "grad.w"
// CHECK-SAME: %arg1: tensor<4x2xf32> {cleave.block = #cleave.sharding<@mesh, {{\[\[}}], [dp]]>, cleave.input = "grad.v"
// CHECK-SAME: %arg2: tensor<8x4xf32> {cleave.block = #cleave.sharding<@mesh, {{\[\[}}], []]>, cleave.input = "grad.t"
// CHECK-NEXT: %[[T:.*]] = cleave.local_slice %arg2 on @mesh [dp] dim 0
// CHECK-NEXT: return %arg0, %arg1, %[[T]]
func.func @update_rank0(%w: tensor<4x4xf32> {cleave.block = #cleave.sharding<@mesh, [[], []]>, cleave.input = "grad.w", cleave.input_role = #cleave.input_role<gradient>},
                        %v: tensor<4x4xf32> {cleave.block = #cleave.sharding<@mesh, [[], []]>, cleave.input = "grad.v", cleave.input_role = #cleave.input_role<gradient>},
                        %t: tensor<8x4xf32> {cleave.block = #cleave.sharding<@mesh, [[], []]>, cleave.input = "grad.t", cleave.input_role = #cleave.input_role<gradient>})
    -> (tensor<2x4xf32>, tensor<4x2xf32>, tensor<4x4xf32>)
    attributes {cleave.pipeline_rank = 0 : i64, cleave.role = #cleave.role<update>} {
  %0 = cleave.local_slice %w on @mesh [dp] dim 0 : tensor<4x4xf32> -> tensor<2x4xf32>
  %1 = cleave.local_slice %v on @mesh [dp] dim 1 : tensor<4x4xf32> -> tensor<4x2xf32>
  %2 = cleave.local_slice %t on @mesh [dp] dim 0 : tensor<8x4xf32> -> tensor<4x4xf32>
  return %0, %1, %2 : tensor<2x4xf32>, tensor<4x2xf32>, tensor<4x4xf32>
}

// CHECK-LABEL: func.func @update_rank1
func.func @update_rank1(%m: tensor<4xf32> {cleave.block = #cleave.sharding<@mesh, [[]]>, cleave.input = "grad.m", cleave.input_role = #cleave.input_role<gradient>},
                        %s: tensor<4xf32> {cleave.block = #cleave.sharding<@mesh, [[]]>, cleave.input = "grad.s", cleave.input_role = #cleave.input_role<gradient>})
    -> (tensor<4xf32>, tensor<4xf32>)
    attributes {cleave.pipeline_rank = 1 : i64, cleave.role = #cleave.role<update>} {
  return %m, %s : tensor<4xf32>, tensor<4xf32>
}

// CHECK-LABEL: func.func private @declared
func.func private @declared() -> (tensor<4xf32> {cleave.block = #cleave.sharding<@mesh, [[]]>, cleave.output = "grad.m", cleave.output_role = #cleave.output_role<gradient>})
    attributes {cleave.role = #cleave.role<stage_backward>, cleave.stage = 1 : i64}

// -----

// Sequence parallelism gathers the position table's gradient over tp after
// its dp sum: the sum is deferred through the gather (and a cast).

cleave.mesh @mesh(dp = 2, pp = 1, tp = 2)

// CHECK-LABEL: func.func @stage0_backward
// CHECK-SAME: -> (tensor<8x4xf32> {cleave.block = #cleave.sharding<@mesh, {{\[\[}}], []], partial = [dp]>
// CHECK-NEXT: %[[G:.*]] = cleave.all_gather %arg0 on @mesh [tp] dim 0
// CHECK-NEXT: %[[C:.*]] = cleave.cast %[[G]]
// CHECK-NEXT: return %[[C]]
func.func @stage0_backward(%p: tensor<4x4xbf16>)
    -> (tensor<8x4xf32> {cleave.block = #cleave.sharding<@mesh, [[], []]>, cleave.output = "grad.pos", cleave.output_role = #cleave.output_role<gradient>})
    attributes {cleave.role = #cleave.role<stage_backward>, cleave.stage = 0 : i64} {
  %0 = cleave.all_reduce %p on @mesh [dp] sum : tensor<4x4xbf16>
  %1 = cleave.all_gather %0 on @mesh [tp] dim 0 : tensor<4x4xbf16> -> tensor<8x4xbf16>
  %2 = cleave.cast %1 : tensor<8x4xbf16> to tensor<8x4xf32>
  return %2 : tensor<8x4xf32>
}

func.func @update_rank0(%pos: tensor<8x4xf32> {cleave.block = #cleave.sharding<@mesh, [[], []]>, cleave.input = "grad.pos", cleave.input_role = #cleave.input_role<gradient>})
    -> tensor<8x4xf32>
    attributes {cleave.pipeline_rank = 0 : i64, cleave.role = #cleave.role<update>} {
  return %pos : tensor<8x4xf32>
}
