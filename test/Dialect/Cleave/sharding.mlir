// RUN: cleave-opt %s | cleave-opt | FileCheck %s
// RUN: cleave-opt %s -mlir-print-op-generic | cleave-opt | FileCheck %s
// RUN: cleave-opt %s --cleave-print-cost=json=true -o /dev/null | FileCheck %s --check-prefix=COST

// Meshes, shardings and collectives round-trip through the custom and the
// generic form.
// CHECK:       cleave.mesh @mesh(dp = 2, tp = 4)
// CHECK-LABEL: func.func @collectives
// CHECK-SAME:    {cleave.sharding = #cleave.sharding<@mesh, {{\[\[}}dp], [tp]]>}
// CHECK:         cleave.shard %{{.*}} : tensor<8x64xf32> to <@mesh, {{\[\[}}dp], []], partial = [tp]> priority 1
// CHECK:         cleave.all_reduce %{{.*}} on @mesh [tp] sum : tensor<8x64xf32>
// CHECK:         cleave.all_gather %{{.*}} on @mesh [dp] dim 0 : tensor<8x64xf32> -> tensor<16x64xf32>
// CHECK:         cleave.reduce_scatter %{{.*}} on @mesh [dp] max dim 0 : tensor<16x64xf32> -> tensor<8x64xf32>
// CHECK:         cleave.all_to_all %{{.*}} on @mesh [tp] split 1 concat 0 : tensor<8x64xf32> -> tensor<32x16xf32>
// CHECK:         cleave.local_slice %{{.*}} on @mesh [dp, tp] dim 0 : tensor<32x16xf32> -> tensor<4x16xf32>
// An all-reduce of a 2048-byte tensor over 4 devices sums 3/4 of its
// elements per device.
// The bytes each device sends: 3072 (all-reduce of 2048 bytes over tp=4),
// 2048 (half of the gathered 4096 over dp=2), 2048 (half of the scattered
// 4096), 1536 (3/4 of 2048 in the all-to-all) and 0 (local slice).
// COST: "comm_bytes": 8704,
// COST-SAME: "cleave.all_reduce": {"count": 1, "flops": 384}
// COST-SAME: "cleave.reduce_scatter": {"count": 1, "flops": 512}
cleave.mesh @mesh(dp = 2, tp = 4)

func.func @collectives(%x: tensor<8x64xf32> {cleave.sharding = #cleave.sharding<@mesh, [[dp], [tp]]>}) -> tensor<4x16xf32> {
  %0 = cleave.shard %x : tensor<8x64xf32> to #cleave.sharding<@mesh, [[dp], []], partial = [tp]> priority 1
  %1 = cleave.all_reduce %0 on @mesh [tp] sum : tensor<8x64xf32>
  %2 = cleave.all_gather %1 on @mesh [dp] dim 0 : tensor<8x64xf32> -> tensor<16x64xf32>
  %3 = cleave.reduce_scatter %2 on @mesh [dp] max dim 0 : tensor<16x64xf32> -> tensor<8x64xf32>
  %4 = cleave.all_to_all %3 on @mesh [tp] split 1 concat 0 : tensor<8x64xf32> -> tensor<32x16xf32>
  %5 = cleave.local_slice %4 on @mesh [dp, tp] dim 0 : tensor<32x16xf32> -> tensor<4x16xf32>
  return %5 : tensor<4x16xf32>
}

// The ops vocab-parallel partitioning uses: this device's position along
// axes, and indices along a dimension.
// CHECK-LABEL: func.func @positions
// CHECK:         cleave.device_index on @mesh [dp, tp] : tensor<i32>
// CHECK:         cleave.iota dim 1 : tensor<2x16xi64>
func.func @positions() -> (tensor<i32>, tensor<2x16xi64>) {
  %0 = cleave.device_index on @mesh [dp, tp] : tensor<i32>
  %1 = cleave.iota dim 1 : tensor<2x16xi64>
  return %0, %1 : tensor<i32>, tensor<2x16xi64>
}

// A collective read through a wait runs until the wait; the wait itself
// costs nothing (the gather's 2048 bytes are all the cost counts).
// CHECK-LABEL: func.func @started
// CHECK:         %[[G:.*]] = cleave.all_gather %{{.*}} on @mesh [dp] dim 0 : tensor<8x64xf32> -> tensor<16x64xf32>
// CHECK:         cleave.exp
// CHECK:         cleave.wait %[[G]] : tensor<16x64xf32>
func.func @started(%x: tensor<8x64xf32>, %y: tensor<4xf32>) -> (tensor<16x64xf32>, tensor<4xf32>) {
  %0 = cleave.all_gather %x on @mesh [dp] dim 0 : tensor<8x64xf32> -> tensor<16x64xf32>
  %1 = cleave.exp %y : tensor<4xf32>
  %2 = cleave.wait %0 : tensor<16x64xf32>
  return %2, %1 : tensor<16x64xf32>, tensor<4xf32>
}
