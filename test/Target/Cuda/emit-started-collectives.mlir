// RUN: cleave-opt %s --cleave-plan-memory | cleave-translate --cleave-to-cuda | FileCheck %s

// Collectives read through a cleave.wait are started, not run: those
// started back to back are launched as one group after the last of them,
// and each wait hands the collective's buffer on once its group is done.
cleave.mesh @mesh(dp = 2)

func.func @step(%w: tensor<4x8xbf16> {cleave.param = "w", cleave.block = #cleave.sharding<@mesh, [[dp], []]>},
                %v: tensor<4xf32> {cleave.param = "v", cleave.block = #cleave.sharding<@mesh, [[dp]]>},
                %x: tensor<8xf32> {cleave.input = "x", cleave.block = #cleave.sharding<@mesh, [[]]>})
    -> (tensor<f32> {cleave.output = "loss", cleave.block = #cleave.sharding<@mesh, []>}) {
  // CHECK: cleave::rt::startAllGather(context, 0, 2, {2, {4, 8}}, 0, arg0, [[W:v[0-9]+]],
  // CHECK-NOT: launchCollectives
  // CHECK: cleave::rt::startAllGather(context, 0, 4, {1, {4}}, 0, arg1, [[V:v[0-9]+]],
  // CHECK-NEXT: "{{.*}}"));
  // CHECK-NEXT: cleave::rt::launchCollectives(context,
  %0 = cleave.all_gather %w on @mesh [dp] dim 0 : tensor<4x8xbf16> -> tensor<8x8xbf16>
  %1 = cleave.all_gather %v on @mesh [dp] dim 0 : tensor<4xf32> -> tensor<8xf32>
  // CHECK: cleave.exp
  %2 = cleave.exp %x : tensor<8xf32>
  // A start of another kind opens a group of its own in the runtime.
  // CHECK: cleave::rt::startReduceScatter(context, 0, cleave::rt::DType::F32, {1, {8}}, 0, [[E:v[0-9]+]], [[S:v[0-9]+]],
  // CHECK-NOT: launchCollectives
  %3 = cleave.reduce_scatter %2 on @mesh [dp] sum dim 0 : tensor<8xf32> -> tensor<4xf32>
  // CHECK: cleave::rt::startAllReduce(context, 0, cleave::rt::DType::F32, 8, [[E]], [[R:v[0-9]+]],
  // CHECK-NEXT: "{{.*}}"));
  // CHECK-NEXT: cleave::rt::launchCollectives(context,
  %4 = cleave.all_reduce %2 on @mesh [dp] sum : tensor<8xf32>
  // CHECK: auto *[[WW:v[0-9]+]] = [[W]];
  // CHECK-NEXT: cleave::rt::waitCollective(context, [[WW]],
  %5 = cleave.wait %0 : tensor<8x8xbf16>
  // CHECK: auto *[[VW:v[0-9]+]] = [[V]];
  // CHECK-NEXT: cleave::rt::waitCollective(context, [[VW]],
  %6 = cleave.wait %1 : tensor<8xf32>
  %7 = cleave.wait %3 : tensor<4xf32>
  %8 = cleave.wait %4 : tensor<8xf32>
  %9 = cleave.cast %5 : tensor<8x8xbf16> to tensor<8x8xf32>
  %10 = cleave.reduce_sum %9 dims [0, 1] : tensor<8x8xf32> -> tensor<f32>
  %11 = cleave.reduce_sum %6 dims [0] : tensor<8xf32> -> tensor<f32>
  %12 = cleave.reduce_sum %7 dims [0] : tensor<4xf32> -> tensor<f32>
  %13 = cleave.reduce_sum %8 dims [0] : tensor<8xf32> -> tensor<f32>
  %14 = cleave.add %10, %11 : tensor<f32>
  %15 = cleave.add %12, %13 : tensor<f32>
  %16 = cleave.add %14, %15 : tensor<f32>
  return %16 : tensor<f32>
}
