// RUN: cleave-opt %s -split-input-file --cleave-propagate-sharding | FileCheck %s

// Forward through elementwise ops and a residual: the batch split reaches
// every activation, and the bias broadcast leaves the vector whole.
cleave.mesh @mesh(dp = 2)
// CHECK-LABEL: func.func @residual
// CHECK-SAME: %arg0: tensor<4x8xf32> {cleave.sharding = #cleave.sharding<@mesh, {{\[\[}}dp], []]>}
// CHECK-SAME: %arg1: tensor<8xf32> {cleave.sharding = #cleave.sharding<@mesh, {{\[\[}}]]>}
// CHECK-SAME: -> (tensor<4x8xf32> {cleave.sharding = #cleave.sharding<@mesh, {{\[\[}}dp], []]>})
func.func @residual(%x: tensor<4x8xf32> {cleave.sharding = #cleave.sharding<@mesh, [[dp], []]>},
                    %b: tensor<8xf32>) -> tensor<4x8xf32> {
  // CHECK: cleave.broadcast {{.*}}cleave.sharding = [#cleave.sharding<@mesh, {{\[\[}}dp], []]>]
  %0 = cleave.broadcast %b dims [1] : tensor<8xf32> -> tensor<4x8xf32>
  // CHECK: cleave.add {{.*}}cleave.sharding = [#cleave.sharding<@mesh, {{\[\[}}dp], []]>]
  %1 = cleave.add %x, %0 : tensor<4x8xf32>
  // CHECK: cleave.tanh {{.*}}cleave.sharding = [#cleave.sharding<@mesh, {{\[\[}}dp], []]>]
  %2 = cleave.tanh %1 : tensor<4x8xf32>
  // CHECK: cleave.add {{.*}}cleave.sharding = [#cleave.sharding<@mesh, {{\[\[}}dp], []]>]
  %3 = cleave.add %2, %x : tensor<4x8xf32>
  return %3 : tensor<4x8xf32>
}

// -----

// Backward from a constraint on a later value, through a branch: both
// branches and the shared input take the split.
cleave.mesh @mesh(tp = 2)
// CHECK-LABEL: func.func @branches
// CHECK-SAME: %arg0: tensor<4x8xf32> {cleave.sharding = #cleave.sharding<@mesh, {{\[\[}}], [tp]]>}
func.func @branches(%x: tensor<4x8xf32>) -> tensor<4x8xf32> {
  // CHECK: cleave.exp {{.*}}<@mesh, {{\[\[}}], [tp]]>]
  %0 = cleave.exp %x : tensor<4x8xf32>
  // CHECK: cleave.neg {{.*}}<@mesh, {{\[\[}}], [tp]]>]
  %1 = cleave.neg %x : tensor<4x8xf32>
  // CHECK: cleave.mul {{.*}}<@mesh, {{\[\[}}], [tp]]>]
  %2 = cleave.mul %0, %1 : tensor<4x8xf32>
  %3 = cleave.shard %2 : tensor<4x8xf32> to #cleave.sharding<@mesh, [[], [tp]]>
  return %3 : tensor<4x8xf32>
}

// -----

// Reshapes map a split hidden dimension to its heads (the major factor),
// and transposes move the split with the dimension.
cleave.mesh @mesh(tp = 2)
// CHECK-LABEL: func.func @heads
func.func @heads(%x: tensor<2x4x8xf32> {cleave.sharding = #cleave.sharding<@mesh, [[], [], [tp]]>}) -> tensor<2x2x4x4xf32> {
  // CHECK: cleave.reshape {{.*}}<@mesh, {{\[\[}}], [], [tp], []]>]
  %0 = cleave.reshape %x : tensor<2x4x8xf32> -> tensor<2x4x2x4xf32>
  // CHECK: cleave.transpose {{.*}}<@mesh, {{\[\[}}], [tp], [], []]>]
  %1 = cleave.transpose %0 perm [0, 2, 1, 3] : tensor<2x4x2x4xf32> -> tensor<2x2x4x4xf32>
  return %1 : tensor<2x2x4x4xf32>
}

// -----

// A row-parallel matmul splits its contraction: the result is a pending
// sum, which the annotation records.
cleave.mesh @mesh(tp = 2)
// CHECK-LABEL: func.func @row_parallel
// CHECK-SAME: -> (tensor<4x6xf32> {cleave.sharding = #cleave.sharding<@mesh, {{\[\[}}], []]>})
func.func @row_parallel(%x: tensor<4x8xf32> {cleave.sharding = #cleave.sharding<@mesh, [[], [tp]]>},
                        %w: tensor<8x6xf32> {cleave.sharding = #cleave.sharding<@mesh, [[tp], []]>}) -> tensor<4x6xf32> {
  // CHECK: cleave.matmul {{.*}}<@mesh, {{\[\[}}], []], partial = [tp]>]
  %0 = cleave.matmul %x, %w : tensor<4x8xf32>, tensor<8x6xf32> -> tensor<4x6xf32>
  return %0 : tensor<4x6xf32>
}

// -----

// Priorities: the batch constraint (0) settles the activations before the
// hidden constraint (1) gets its turn, which only splits what is still
// whole. The last constraint (2) cannot change its input, already split:
// its own result is resharded instead.
cleave.mesh @mesh(dp = 2, tp = 2)
// CHECK-LABEL: func.func @priorities
func.func @priorities(%x: tensor<4x8xf32>) -> tensor<4x8xf32> {
  %0 = cleave.shard %x : tensor<4x8xf32> to #cleave.sharding<@mesh, [[dp], []]> priority 0
  // CHECK: cleave.exp {{.*}}<@mesh, {{\[\[}}dp], [tp]]>]
  %1 = cleave.exp %0 : tensor<4x8xf32>
  // CHECK: cleave.shard {{.*}} priority 1 {cleave.sharding = [#cleave.sharding<@mesh, {{\[\[}}dp], [tp]]>]}
  %2 = cleave.shard %1 : tensor<4x8xf32> to #cleave.sharding<@mesh, [[], [tp]]> priority 1
  // CHECK: cleave.shard {{.*}} priority 2 {cleave.sharding = [#cleave.sharding<@mesh, {{\[\[}}tp], []]>]}
  %3 = cleave.shard %2 : tensor<4x8xf32> to #cleave.sharding<@mesh, [[tp], []]> priority 2
  return %3 : tensor<4x8xf32>
}

// -----

// Parameters are split only by their own constraints: the update below
// would split the weight on dp, but it stays whole.
cleave.mesh @mesh(dp = 2)
// CHECK-LABEL: func.func @parameters
// CHECK-SAME: %arg0: tensor<8x4xf32> {cleave.param = "w", cleave.sharding = #cleave.sharding<@mesh, {{\[\[}}], []]>}
// CHECK-SAME: %arg1: tensor<8x4xf32> {cleave.sharding = #cleave.sharding<@mesh, {{\[\[}}dp], []]>, cleave.state = "m"}
// CHECK-SAME: cleave.sharding = #cleave.sharding<@mesh, {{\[\[}}], []]>, cleave.updates = 0
func.func @parameters(%w: tensor<8x4xf32> {cleave.param = "w"}, %m: tensor<8x4xf32> {cleave.state = "m"})
    -> (tensor<8x4xf32> {cleave.updates = 0 : i64}) {
  %0 = cleave.shard %m : tensor<8x4xf32> to #cleave.sharding<@mesh, [[dp], []]>
  // CHECK: cleave.sub {{.*}}<@mesh, {{\[\[}}dp], []]>]
  %1 = cleave.sub %w, %0 : tensor<8x4xf32>
  return %1 : tensor<8x4xf32>
}

// -----

// Constraints of one priority that split different dimensions agree.
cleave.mesh @mesh(dp = 2, tp = 2)
// CHECK-LABEL: func.func @compatible
// CHECK-SAME: %arg0: tensor<4x8xf32> {cleave.sharding = #cleave.sharding<@mesh, {{\[\[}}dp], [tp]]>}
func.func @compatible(%x: tensor<4x8xf32>) -> (tensor<4x8xf32>, tensor<4x8xf32>) {
  %0 = cleave.shard %x : tensor<4x8xf32> to #cleave.sharding<@mesh, [[dp], []]>
  %1 = cleave.shard %x : tensor<4x8xf32> to #cleave.sharding<@mesh, [[], [tp]]>
  return %0, %1 : tensor<4x8xf32>, tensor<4x8xf32>
}

// -----

// Functions without any sharding are left alone.
// CHECK-LABEL: func.func @untouched(%arg0: tensor<4xf32>) -> tensor<4xf32>
// CHECK-NOT: cleave.sharding
func.func @untouched(%x: tensor<4xf32>) -> tensor<4xf32> {
  %0 = cleave.exp %x : tensor<4xf32>
  return %0 : tensor<4xf32>
}

// -----

// A scalar broadcast shared (after CSE) by a column-split and a row-split
// weight gets one copy per use, each split like its user, instead of a
// conflict.
cleave.mesh @mesh(tp = 2)
// CHECK-LABEL: func.func @shared_broadcast
func.func @shared_broadcast(%a: tensor<8x8xf32> {cleave.sharding = #cleave.sharding<@mesh, [[], [tp]]>},
                            %b: tensor<8x8xf32> {cleave.sharding = #cleave.sharding<@mesh, [[tp], []]>},
                            %s: tensor<f32>) -> (tensor<8x8xf32>, tensor<8x8xf32>) {
  // CHECK: %[[COLUMNS:.*]] = cleave.broadcast %arg2 {{.*}}<@mesh, {{\[\[}}], [tp]]>]
  // CHECK: %[[ROWS:.*]] = cleave.broadcast %arg2 {{.*}}<@mesh, {{\[\[}}tp], []]>]
  %0 = cleave.broadcast %s dims [] : tensor<f32> -> tensor<8x8xf32>
  // CHECK: cleave.mul %arg0, %[[COLUMNS]]
  %1 = cleave.mul %a, %0 : tensor<8x8xf32>
  // CHECK: cleave.mul %arg1, %[[ROWS]]
  %2 = cleave.mul %b, %0 : tensor<8x8xf32>
  return %1, %2 : tensor<8x8xf32>, tensor<8x8xf32>
}
