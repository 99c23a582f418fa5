// RUN: cleave-opt %s --cleave-plan-memory | cleave-translate --cleave-to-cuda | FileCheck %s

// A partitioned function: its collectives become runtime calls on the
// sub-communicator of their axes (numbered in a module-wide table), and the
// descriptor carries the mesh and how each argument and result splits.
cleave.mesh @mesh(dp = 2, tp = 2)

func.func @step(%x: tensor<2x4xf32> {cleave.input = "x", cleave.block = #cleave.sharding<@mesh, [[dp], [tp]]>},
                %w: tensor<4x8xbf16> {cleave.param = "w", cleave.block = #cleave.sharding<@mesh, [[], []]>})
    -> (tensor<f32> {cleave.output = "loss", cleave.block = #cleave.sharding<@mesh, []>}) {
  // CHECK: // The mesh the program was partitioned for: one process per device.
  // CHECK-NEXT: const char *const k_mesh_axes[] = {"dp", "tp", };
  // CHECK-NEXT: const int64_t k_mesh_sizes[] = {2, 2};
  // CHECK-NEXT: const char *const k_mesh_groups[] = {"tp", "dp", "dp,tp", "tp,dp", };
  // CHECK-NEXT: const cleave::rt::MeshSpec k_mesh = {k_mesh_axes, k_mesh_sizes, 2, k_mesh_groups, 4};

  // CHECK: cleave::rt::allGather(context, 0, 4, {2, {2, 4}}, 1, arg0, [[GATHERED:v[0-9]+]],
  %0 = cleave.all_gather %x on @mesh [tp] dim 1 : tensor<2x4xf32> -> tensor<2x8xf32>
  // CHECK: cleave::rt::reduceScatter(context, 1, cleave::rt::DType::F32, {2, {2, 8}}, 1, cleave::rt::ReduceKind::Sum, [[GATHERED]], [[SCATTERED:v[0-9]+]],
  %1 = cleave.reduce_scatter %0 on @mesh [dp] sum dim 1 : tensor<2x8xf32> -> tensor<2x4xf32>
  // CHECK: cleave::rt::allToAll(context, 2, 4, {2, {2, 4}}, 1, 0, [[SCATTERED]], [[EXCHANGED:v[0-9]+]],
  %2 = cleave.all_to_all %1 on @mesh [dp, tp] split 1 concat 0 : tensor<2x4xf32> -> tensor<8x1xf32>
  // CHECK: cleave::rt::localSlice(context, 0, 2, {2, {4, 8}}, 0, arg1, [[SLICED:v[0-9]+]],
  %3 = cleave.local_slice %w on @mesh [tp] dim 0 : tensor<4x8xbf16> -> tensor<2x8xbf16>
  // CHECK: cleave::rt::deviceIndex(context, 3, [[INDEX:v[0-9]+]],
  %4 = cleave.device_index on @mesh [tp, dp] : tensor<i32>
  // CHECK: cleave::rt::iota(context, {2, {2, 3}}, 1, [[IOTA:v[0-9]+]],
  %5 = cleave.iota dim 1 : tensor<2x3xi32>
  %6 = cleave.reduce_sum %2 dims [0, 1] : tensor<8x1xf32> -> tensor<f32>
  // CHECK: cleave::rt::allReduce(context, 2, cleave::rt::DType::F32, 1, cleave::rt::ReduceKind::Max, {{v[0-9]+}}, {{v[0-9]+}},
  %7 = cleave.all_reduce %6 on @mesh [dp, tp] max : tensor<f32>
  return %7 : tensor<f32>
}
// CHECK-LABEL: const cleave::rt::ArgumentSpec k_step_arguments[] = {
// CHECK-NEXT: {{[{][{]}}"x", cleave::rt::DType::F32, {2, {2, 4}}}, cleave::rt::ArgumentKind::Input, "dp;tp"},
// CHECK-NEXT: {{[{][{]}}"w", cleave::rt::DType::BF16, {2, {4, 8}}}, cleave::rt::ArgumentKind::Param, ";"},
// CHECK:      const cleave::rt::ResultSpec k_step_results[] = {
// CHECK-NEXT: {{[{][{]}}"loss", cleave::rt::DType::F32, {0, {}}}, -1, ""},
// A collective's op entry counts the bytes it reads and writes.
// CHECK:      const cleave::rt::OpInfo k_step_ops[] = {
// CHECK-NEXT: {"cleave.all_gather", "{{.*}}", "", "F32", 0, 96, k_step_op_results + 0, 1},
// CHECK:      "step", k_step_arguments, 2, k_step_results, 1, {{[0-9]+}}, &step, k_step_index_sites, 0, &k_mesh, k_step_ops, 8};
