// RUN: cleave-opt %s -split-input-file --cleave-propagate-sharding --cleave-partition | FileCheck %s

// Megatron's MLP: a column split, then a row split. The row-parallel
// product is a pending sum, completed by one all-reduce before the bias.
cleave.mesh @mesh(tp = 2)
// CHECK-LABEL: func.func @mlp
// CHECK-SAME: %arg0: tensor<4x8xf32> {cleave.block = #cleave.sharding<@mesh, {{\[\[}}], []]>}
// CHECK-SAME: %arg1: tensor<8x8xf32> {cleave.block = #cleave.sharding<@mesh, {{\[\[}}], [tp]]>}
// CHECK-SAME: %arg2: tensor<8x8xf32> {cleave.block = #cleave.sharding<@mesh, {{\[\[}}tp], []]>}
// CHECK-SAME: -> (tensor<4x8xf32> {cleave.block = #cleave.sharding<@mesh, {{\[\[}}], []]>})
func.func @mlp(%x: tensor<4x8xf32>,
               %w1: tensor<8x16xf32> {cleave.sharding = #cleave.sharding<@mesh, [[], [tp]]>},
               %w2: tensor<16x8xf32> {cleave.sharding = #cleave.sharding<@mesh, [[tp], []]>},
               %b: tensor<8xf32>) -> tensor<4x8xf32> {
  // CHECK-NEXT: %[[H:.*]] = cleave.matmul %arg0, %arg1 : tensor<4x8xf32>, tensor<8x8xf32> -> tensor<4x8xf32>
  // CHECK-NEXT: %[[G:.*]] = cleave.gelu %[[H]] : tensor<4x8xf32>
  // CHECK-NEXT: %[[P:.*]] = cleave.matmul %[[G]], %arg2 : tensor<4x8xf32>, tensor<8x8xf32> -> tensor<4x8xf32>
  // CHECK-NEXT: %[[B:.*]] = cleave.broadcast %arg3
  // CHECK-NEXT: %[[R:.*]] = cleave.all_reduce %[[P]] on @mesh [tp] sum : tensor<4x8xf32>
  // CHECK-NEXT: %[[Y:.*]] = cleave.add %[[R]], %[[B]] : tensor<4x8xf32>
  // CHECK-NEXT: return %[[Y]]
  %0 = cleave.matmul %x, %w1 : tensor<4x8xf32>, tensor<8x16xf32> -> tensor<4x16xf32>
  %1 = cleave.gelu %0 : tensor<4x16xf32>
  %2 = cleave.matmul %1, %w2 : tensor<4x16xf32>, tensor<16x8xf32> -> tensor<4x8xf32>
  %3 = cleave.broadcast %b dims [1] : tensor<8xf32> -> tensor<4x8xf32>
  %4 = cleave.add %2, %3 : tensor<4x8xf32>
  return %4 : tensor<4x8xf32>
}

// -----

// Sums stay pending through linear ops: the three contributions are added
// first and completed once.
cleave.mesh @mesh(tp = 2)
// CHECK-LABEL: func.func @pending_sums
func.func @pending_sums(%x: tensor<4x8xf32> {cleave.sharding = #cleave.sharding<@mesh, [[], [tp]]>},
                        %a: tensor<8x6xf32> {cleave.sharding = #cleave.sharding<@mesh, [[tp], []]>},
                        %b: tensor<8x6xf32> {cleave.sharding = #cleave.sharding<@mesh, [[tp], []]>},
                        %c: tensor<8x6xf32> {cleave.sharding = #cleave.sharding<@mesh, [[tp], []]>}) -> tensor<4x6xf32> {
  // CHECK-COUNT-3: cleave.matmul
  // CHECK-NEXT: cleave.add
  // CHECK-NEXT: %[[S:.*]] = cleave.add
  // CHECK:      %[[R:.*]] = cleave.all_reduce %[[S]] on @mesh [tp] sum
  // CHECK-NEXT: cleave.layer_norm %[[R]]
  // CHECK-NOT: cleave.all_reduce
  %0 = cleave.matmul %x, %a : tensor<4x8xf32>, tensor<8x6xf32> -> tensor<4x6xf32>
  %1 = cleave.matmul %x, %b : tensor<4x8xf32>, tensor<8x6xf32> -> tensor<4x6xf32>
  %2 = cleave.matmul %x, %c : tensor<4x8xf32>, tensor<8x6xf32> -> tensor<4x6xf32>
  %3 = cleave.add %0, %1 : tensor<4x6xf32>
  %4 = cleave.add %3, %2 : tensor<4x6xf32>
  %s = cleave.fill 1.0 : tensor<6xf32>
  %5 = cleave.layer_norm %4, %s, %s : tensor<4x6xf32>, tensor<6xf32>
  return %5 : tensor<4x6xf32>
}

// -----

// A pending sum the consumer wants split is reduce-scattered, half an
// all-reduce.
cleave.mesh @mesh(tp = 2)
// CHECK-LABEL: func.func @reduce_scatter
// CHECK-SAME: -> (tensor<2x6xf32> {cleave.block = #cleave.sharding<@mesh, {{\[\[}}tp], []]>})
func.func @reduce_scatter(%x: tensor<4x8xf32> {cleave.sharding = #cleave.sharding<@mesh, [[], [tp]]>},
                          %w: tensor<8x6xf32> {cleave.sharding = #cleave.sharding<@mesh, [[tp], []]>})
    -> (tensor<4x6xf32> {cleave.sharding = #cleave.sharding<@mesh, [[tp], []]>}) {
  // CHECK: %[[P:.*]] = cleave.matmul
  // CHECK-NEXT: %[[R:.*]] = cleave.reduce_scatter %[[P]] on @mesh [tp] sum dim 0 : tensor<4x6xf32> -> tensor<2x6xf32>
  // CHECK-NEXT: return %[[R]]
  %0 = cleave.matmul %x, %w : tensor<4x8xf32>, tensor<8x6xf32> -> tensor<4x6xf32>
  return %0 : tensor<4x6xf32>
}

// -----

// Dimension changes: a free local slice, an all-to-all moving an axis
// between dimensions, and an all-gather.
cleave.mesh @mesh(dp = 2, tp = 2)
// CHECK-LABEL: func.func @reshard
func.func @reshard(%x: tensor<4x8xf32> {cleave.sharding = #cleave.sharding<@mesh, [[], []]>}, %y: tensor<4x8xf32> {cleave.sharding = #cleave.sharding<@mesh, [[dp], []]>},
                   %z: tensor<4x8xf32> {cleave.sharding = #cleave.sharding<@mesh, [[dp], [tp]]>})
    -> (tensor<4x8xf32> {cleave.sharding = #cleave.sharding<@mesh, [[], [tp]]>},
        tensor<4x8xf32> {cleave.sharding = #cleave.sharding<@mesh, [[], [dp]]>},
        tensor<4x8xf32> {cleave.sharding = #cleave.sharding<@mesh, [[], []]>}) {
  // CHECK-DAG: cleave.local_slice %arg0 on @mesh [tp] dim 1 : tensor<4x8xf32> -> tensor<4x4xf32>
  // CHECK-DAG: cleave.all_to_all %arg1 on @mesh [dp] split 1 concat 0 : tensor<2x8xf32> -> tensor<4x4xf32>
  // CHECK-DAG: %[[G:.*]] = cleave.all_gather %arg2 on @mesh [dp] dim 0 : tensor<2x4xf32> -> tensor<4x4xf32>
  // CHECK-DAG: cleave.all_gather %[[G]] on @mesh [tp] dim 1 : tensor<4x4xf32> -> tensor<4x8xf32>
  return %x, %y, %z : tensor<4x8xf32>, tensor<4x8xf32>, tensor<4x8xf32>
}

// -----

// A mean over a split batch: each device scales its local mean so the
// pieces sum to the global one; the loss is completed at the return.
cleave.mesh @mesh(dp = 2)
// CHECK-LABEL: func.func @mean
func.func @mean(%x: tensor<4x8xf32> {cleave.sharding = #cleave.sharding<@mesh, [[dp], []]>}) -> tensor<f32> {
  // CHECK-NEXT: %[[M:.*]] = cleave.reduce_mean %arg0 dims [0, 1] : tensor<2x8xf32> -> tensor<f32>
  // CHECK-NEXT: %[[H:.*]] = cleave.fill 5.000000e-01 : tensor<f32>
  // CHECK-NEXT: %[[S:.*]] = cleave.mul %[[M]], %[[H]] : tensor<f32>
  // CHECK-NEXT: %[[R:.*]] = cleave.all_reduce %[[S]] on @mesh [dp] sum : tensor<f32>
  // CHECK-NEXT: return %[[R]]
  %0 = cleave.reduce_mean %x dims [0, 1] : tensor<4x8xf32> -> tensor<f32>
  return %0 : tensor<f32>
}

// -----

// Vocab-parallel embedding: indices are moved into the device's block of
// rows, rows outside it are zeroed, and the pieces are summed.
cleave.mesh @mesh(tp = 2)
// CHECK-LABEL: func.func @embedding
func.func @embedding(%table: tensor<16x8xf32> {cleave.sharding = #cleave.sharding<@mesh, [[tp], []]>},
                     %ids: tensor<2x4xi32>) -> tensor<2x4x8xf32> {
  // CHECK:      %[[I:.*]] = cleave.device_index on @mesh [tp] : tensor<i32>
  // CHECK-NEXT: %[[N:.*]] = cleave.fill 8.000000e+00 : tensor<i32>
  // CHECK-NEXT: %[[FIRST:.*]] = cleave.mul %[[I]], %[[N]]
  // CHECK-NEXT: %[[B:.*]] = cleave.broadcast %[[FIRST]]
  // CHECK-NEXT: %[[REL:.*]] = cleave.sub %arg1, %[[B]] : tensor<2x4xi32>
  // CHECK:      %[[IN:.*]] = cleave.select
  // CHECK-NEXT: %[[SAFE:.*]] = cleave.select %[[IN]], %[[REL]]
  // CHECK-NEXT: %[[ROWS:.*]] = cleave.embedding %arg0, %[[SAFE]] : tensor<8x8xf32>, tensor<2x4xi32> -> tensor<2x4x8xf32>
  // CHECK:      %[[KEPT:.*]] = cleave.select {{.*}}, %[[ROWS]]
  // CHECK-NEXT: %[[SUM:.*]] = cleave.all_reduce %[[KEPT]] on @mesh [tp] sum : tensor<2x4x8xf32>
  // CHECK-NEXT: return %[[SUM]]
  %0 = cleave.embedding %table, %ids : tensor<16x8xf32>, tensor<2x4xi32> -> tensor<2x4x8xf32>
  return %0 : tensor<2x4x8xf32>
}

// -----

// Vocab-parallel cross-entropy: the max, the sum of exponentials and the
// target logit are each combined across devices (three all-reduces of one
// value per position); the gradient reuses the first two and stays split.
cleave.mesh @mesh(tp = 2)
// CHECK-LABEL: func.func @loss
func.func @loss(%logits: tensor<2x4x16xf32> {cleave.sharding = #cleave.sharding<@mesh, [[], [], [tp]]>},
                %targets: tensor<2x4xi32>, %upstream: tensor<2x4xf32>) -> (tensor<2x4xf32>, tensor<2x4x16xf32>) {
  // CHECK:      cleave.iota dim 2 : tensor<2x4x8xi32>
  // CHECK:      %[[LMAX:.*]] = cleave.reduce_max %arg0 dims [2] : tensor<2x4x8xf32> -> tensor<2x4xf32>
  // CHECK-NEXT: %[[MAX:.*]] = cleave.all_reduce %[[LMAX]] on @mesh [tp] max : tensor<2x4xf32>
  // CHECK:      %[[SUM:.*]] = cleave.all_reduce %{{.*}} on @mesh [tp] sum : tensor<2x4xf32>
  // CHECK:      %[[TARGET:.*]] = cleave.all_reduce %{{.*}} on @mesh [tp] sum : tensor<2x4xf32>
  // CHECK-NEXT: %[[LOG:.*]] = cleave.log %[[SUM]]
  // CHECK-NEXT: %[[ADD:.*]] = cleave.add %[[LOG]], %[[MAX]]
  // CHECK-NEXT: %[[LOSS:.*]] = cleave.sub %[[ADD]], %[[TARGET]]
  // CHECK-NOT:  cleave.all_reduce
  // CHECK:      %[[GRAD:.*]] = cleave.mul {{.*}} : tensor<2x4x8xf32>
  // CHECK-NEXT: return %[[LOSS]], %[[GRAD]]
  %0 = cleave.cross_entropy %logits, %targets : tensor<2x4x16xf32>, tensor<2x4xi32> -> tensor<2x4xf32>
  %1 = cleave.cross_entropy_grad %logits, %targets, %upstream : tensor<2x4x16xf32>, tensor<2x4xi32>, tensor<2x4xf32>
  return %0, %1 : tensor<2x4xf32>, tensor<2x4x16xf32>
}

// -----

// A padded vocabulary split over tp: each device masks, by global index,
// the padding classes it holds (columns 13..15 of 16) to -inf before the
// statistics; the gradient reuses those statistics and the masked logits.
cleave.mesh @mesh(tp = 2)
// CHECK-LABEL: func.func @padded_loss
func.func @padded_loss(%logits: tensor<2x4x16xf32> {cleave.sharding = #cleave.sharding<@mesh, [[], [], [tp]]>},
                       %targets: tensor<2x4xi32>, %upstream: tensor<2x4xf32>) -> (tensor<2x4xf32>, tensor<2x4x16xf32>) {
  // CHECK:      cleave.device_index on @mesh [tp]
  // CHECK:      %[[IDS:.*]] = cleave.iota dim 2 : tensor<2x4x8xi32>
  // CHECK:      %[[GLOBAL:.*]] = cleave.add %[[IDS]], %{{.*}} : tensor<2x4x8xi32>
  // CHECK:      %[[LIMIT:.*]] = cleave.fill 1.300000e+01 : tensor<2x4x8xi32>
  // CHECK:      %[[CLASS:.*]] = cleave.compare lt, %[[GLOBAL]], %[[LIMIT]]
  // CHECK:      %[[NEGINF:.*]] = cleave.fill 0xFFF0000000000000 : tensor<2x4x8xf32>
  // CHECK:      %[[MASKED:.*]] = cleave.select %[[CLASS]], %arg0, %[[NEGINF]]
  // CHECK:      cleave.reduce_max %[[MASKED]] dims [2]
  // CHECK:      %[[SHIFTED:.*]] = cleave.sub %[[MASKED]], %{{.*}} : tensor<2x4x8xf32>
  // CHECK:      cleave.all_reduce %{{.*}} on @mesh [tp] sum
  // CHECK:      cleave.all_reduce %{{.*}} on @mesh [tp] sum
  // CHECK:      cleave.sub %{{.*}}, %{{.*}} : tensor<2x4x8xf32>
  // CHECK:      cleave.mul {{.*}} : tensor<2x4x8xf32>
  %0 = cleave.cross_entropy %logits, %targets {classes = 13 : i64} : tensor<2x4x16xf32>, tensor<2x4xi32> -> tensor<2x4xf32>
  %1 = cleave.cross_entropy_grad %logits, %targets, %upstream {classes = 13 : i64} : tensor<2x4x16xf32>, tensor<2x4xi32>, tensor<2x4xf32>
  return %0, %1 : tensor<2x4xf32>, tensor<2x4x16xf32>
}

// -----

// A maximum over a split dimension combines the devices' maxima.
cleave.mesh @mesh(tp = 2)
// CHECK-LABEL: func.func @max
func.func @max(%x: tensor<4x8xf32> {cleave.sharding = #cleave.sharding<@mesh, [[], [tp]]>}) -> tensor<4xf32> {
  // CHECK-NEXT: %[[M:.*]] = cleave.reduce_max %arg0 dims [1] : tensor<4x4xf32> -> tensor<4xf32>
  // CHECK-NEXT: %[[R:.*]] = cleave.all_reduce %[[M]] on @mesh [tp] max : tensor<4xf32>
  // CHECK-NEXT: return %[[R]]
  %0 = cleave.reduce_max %x dims [1] : tensor<4x8xf32> -> tensor<4xf32>
  return %0 : tensor<4xf32>
}

// -----

// A constraint on an argument whose sharding the signature gives reshards
// it: the constraint's named dimensions are split exactly so.
cleave.mesh @mesh(dp = 2, tp = 2)
// CHECK-LABEL: func.func @constrained_argument
func.func @constrained_argument(%x: tensor<8x4xf32> {cleave.sharding = #cleave.sharding<@mesh, [[dp, tp], []]>}) -> tensor<8x4xf32> {
  // CHECK-NEXT: %[[A:.*]] = cleave.all_to_all %arg0 on @mesh [tp] split 1 concat 0 : tensor<2x4xf32> -> tensor<4x2xf32>
  // CHECK-NEXT: %[[E:.*]] = cleave.exp %[[A]] : tensor<4x2xf32>
  %0 = cleave.shard %x : tensor<8x4xf32> to #cleave.sharding<@mesh, [[dp], [tp]]>
  %1 = cleave.exp %0 : tensor<8x4xf32>
  return %1 : tensor<8x4xf32>
}

// -----

// A complete scalar added to or subtracted from a pending one that keeps
// accumulating joins the pending sum, scaled by 1 / devices: sums of
// squares of split and whole tensors take one all-reduce.
cleave.mesh @mesh(tp = 2)
// CHECK-LABEL: func.func @norm
func.func @norm(%a: tensor<8xf32> {cleave.sharding = #cleave.sharding<@mesh, [[tp]]>},
                %b: tensor<4xf32> {cleave.sharding = #cleave.sharding<@mesh, [[]]>}) -> tensor<f32> {
  // CHECK:      %[[SA:.*]] = cleave.reduce_sum %{{.*}} dims [0] : tensor<4xf32> -> tensor<f32>
  // CHECK:      %[[SB:.*]] = cleave.reduce_sum %{{.*}} dims [0] : tensor<4xf32> -> tensor<f32>
  // CHECK-NEXT: %[[HALF:.*]] = cleave.fill 5.000000e-01 : tensor<f32>
  // CHECK-NEXT: %[[SCALED:.*]] = cleave.mul %[[SB]], %[[HALF]] : tensor<f32>
  // CHECK-NEXT: %[[T:.*]] = cleave.add %[[SA]], %[[SCALED]] : tensor<f32>
  // CHECK-NEXT: %[[HALF2:.*]] = cleave.fill 5.000000e-01 : tensor<f32>
  // CHECK-NEXT: %[[SCALED2:.*]] = cleave.mul %[[SB]], %[[HALF2]] : tensor<f32>
  // CHECK-NEXT: %[[D:.*]] = cleave.sub %[[SCALED2]], %[[T]] : tensor<f32>
  // CHECK-NEXT: %[[U:.*]] = cleave.add %[[D]], %[[SA]] : tensor<f32>
  // CHECK-NEXT: %[[R:.*]] = cleave.all_reduce %[[U]] on @mesh [tp] sum : tensor<f32>
  // CHECK-NEXT: cleave.sqrt %[[R]]
  %0 = cleave.mul %a, %a : tensor<8xf32>
  %1 = cleave.reduce_sum %0 dims [0] : tensor<8xf32> -> tensor<f32>
  %2 = cleave.mul %b, %b : tensor<4xf32>
  %3 = cleave.reduce_sum %2 dims [0] : tensor<4xf32> -> tensor<f32>
  %4 = cleave.add %1, %3 : tensor<f32>
  %5 = cleave.sub %3, %4 : tensor<f32>
  %6 = cleave.add %5, %1 : tensor<f32>
  %7 = cleave.sqrt %6 : tensor<f32>
  return %7 : tensor<f32>
}

// -----

// A scalar sum that is not accumulated further, or of integers, is
// completed before the addition; the completed sum serves both users.
cleave.mesh @mesh(tp = 2)
// CHECK-LABEL: func.func @no_join
func.func @no_join(%a: tensor<8xf32> {cleave.sharding = #cleave.sharding<@mesh, [[tp]]>},
                   %c: tensor<f32>, %i: tensor<8xi32> {cleave.sharding = #cleave.sharding<@mesh, [[tp]]>},
                   %j: tensor<i32>) -> (tensor<f32>, tensor<f32>, tensor<i32>) {
  // CHECK:      %[[S:.*]] = cleave.reduce_sum %arg0
  // CHECK-NEXT: %[[R:.*]] = cleave.all_reduce %[[S]] on @mesh [tp] sum : tensor<f32>
  // CHECK-NEXT: cleave.add %[[R]], %arg1
  // CHECK-NEXT: cleave.exp %[[R]]
  // CHECK-NEXT: %[[SI:.*]] = cleave.reduce_sum %arg2
  // CHECK-NEXT: %[[RI:.*]] = cleave.all_reduce %[[SI]] on @mesh [tp] sum : tensor<i32>
  // CHECK-NEXT: cleave.add %[[RI]], %arg3 : tensor<i32>
  // CHECK-NOT:  cleave.all_reduce
  %0 = cleave.reduce_sum %a dims [0] : tensor<8xf32> -> tensor<f32>
  %1 = cleave.add %0, %c : tensor<f32>
  %2 = cleave.exp %0 : tensor<f32>
  %3 = cleave.reduce_sum %i dims [0] : tensor<8xi32> -> tensor<i32>
  %4 = cleave.add %3, %j : tensor<i32>
  %5 = cleave.add %4, %j : tensor<i32>
  return %1, %2, %5 : tensor<f32>, tensor<f32>, tensor<i32>
}

// -----

// A constraint has no layer of its own: what it becomes (here the move of
// a parameter split one way by one constraint to the split another asks
// for) belongs to the layer of its first tagged user, so that pipeline
// stages, which follow layers, can place it.
cleave.mesh @mesh(dp = 2)
// CHECK-LABEL: func.func @untagged_constraint
// CHECK: cleave.all_to_all %arg0 on @mesh [dp] {{.*}}{cleave.layer = #cleave.layer<3>}
func.func @untagged_constraint(%w: tensor<4x4xf32> {cleave.param = "w"}) -> tensor<4x4xf32> {
  %rows = cleave.shard %w : tensor<4x4xf32> to <@mesh, [[dp], []]> priority 0
  %columns = cleave.shard %rows : tensor<4x4xf32> to <@mesh, [[], [dp]]> priority 1
  %y = cleave.tanh %columns {cleave.layer = #cleave.layer<3>} : tensor<4x4xf32>
  return %y : tensor<4x4xf32>
}

// -----

// A parameter split on the axis that splits the batch (ZeRO-3) is gathered
// for its readers: a bias is gathered before its broadcast, not broadcast
// split and moved with an all-to-all of the activation it is added to.
cleave.mesh @mesh(dp = 2)
// CHECK-LABEL: func.func @gathered_bias
func.func @gathered_bias(%x: tensor<4x8xf32> {cleave.sharding = #cleave.sharding<@mesh, [[dp], []]>},
                         %b: tensor<8xf32> {cleave.param = "b"}) -> tensor<4x8xf32> {
  // CHECK:      %[[B:.*]] = cleave.all_gather %arg1 on @mesh [dp] dim 0 : tensor<4xf32> -> tensor<8xf32>
  // CHECK-NEXT: %[[BB:.*]] = cleave.broadcast %[[B]] dims [1] : tensor<8xf32> -> tensor<2x8xf32>
  // CHECK-NEXT: cleave.add %arg0, %[[BB]] : tensor<2x8xf32>
  // CHECK-NOT:  cleave.all_to_all
  %bs = cleave.shard %b : tensor<8xf32> to <@mesh, [[dp]]> priority 1
  %0 = cleave.broadcast %bs dims [1] : tensor<8xf32> -> tensor<4x8xf32>
  %1 = cleave.add %x, %0 : tensor<4x8xf32>
  return %1 : tensor<4x8xf32>
}

// -----

// In a step that returns a loss, a parameter the forward gathers is
// gathered again for the backward, as ZeRO-3 does, so that no device keeps
// the whole weight from one to the other; the repeat is marked so that CSE
// keeps it.
cleave.mesh @mesh(dp = 2)
// CHECK-LABEL: func.func @regathered
func.func @regathered(%x: tensor<4x8xf32> {cleave.sharding = #cleave.sharding<@mesh, [[dp], []]>},
                      %w: tensor<8x8xf32> {cleave.param = "w"},
                      %dy: tensor<4x8xf32> {cleave.sharding = #cleave.sharding<@mesh, [[dp], []]>})
    -> (tensor<f32> {cleave.output = "loss", cleave.output_role = #cleave.output_role<loss>}, tensor<4x8xf32>) {
  // CHECK:      %[[W:.*]] = cleave.all_gather %arg1 on @mesh [dp] dim 0 : tensor<4x8xf32> -> tensor<8x8xf32>
  // CHECK-NEXT: cleave.matmul %arg0, %[[W]] :
  // CHECK:      %[[W2:.*]] = cleave.all_gather %arg1 on @mesh [dp] dim 0 {cleave.recompute} : tensor<4x8xf32> -> tensor<8x8xf32>
  // CHECK-NEXT: cleave.matmul %arg2, %[[W2]] transpose_rhs
  %ws = cleave.shard %w : tensor<8x8xf32> to <@mesh, [[dp], []]> priority 1
  %y = cleave.matmul %x, %ws : tensor<4x8xf32>, tensor<8x8xf32> -> tensor<4x8xf32>
  %l = cleave.reduce_sum %y dims [0, 1] : tensor<4x8xf32> -> tensor<f32>
  %dx = cleave.matmul %dy, %ws transpose_rhs : tensor<4x8xf32>, tensor<8x8xf32> -> tensor<4x8xf32>
  return %l, %dx : tensor<f32>, tensor<4x8xf32>
}
