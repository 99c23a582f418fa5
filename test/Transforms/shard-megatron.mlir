// RUN: cleave-opt %s --cleave-autodiff --cleave-shard-megatron | FileCheck %s --check-prefix=SPLITS
// RUN: cleave-opt %s --cleave-autodiff --cleave-optimizer=optimizer=sgd '--cleave-parallelize=mesh=tp=2' | FileCheck %s
// RUN: cleave-opt %s --cleave-autodiff '--cleave-shard-megatron=sequence-parallel=true' | FileCheck %s --check-prefix=SP-SPLITS
// RUN: cleave-opt %s --cleave-autodiff --cleave-optimizer=optimizer=sgd '--cleave-parallelize=mesh=tp=2 strategy=megatron-sp' | FileCheck %s --check-prefix=SP
// RUN: cleave-models llama --layers 1 --hidden 32 --heads 4 --kv-heads 2 --seq 8 --batch 2 --vocab 64 | cleave-opt --cleave-autodiff --cleave-optimizer=optimizer=sgd '--cleave-parallelize=mesh=tp=2' | FileCheck %s --check-prefix=GQA
// RUN: cleave-models llama --layers 1 --hidden 32 --heads 4 --kv-heads 1 --seq 8 --batch 2 --vocab 64 | cleave-opt --cleave-autodiff --cleave-optimizer=optimizer=sgd '--cleave-parallelize=mesh=tp=2' | FileCheck %s --check-prefix=MQA

// Grouped-query attention (4 query heads, 2 key/value heads) on tp=2: the
// key/value heads split with the query heads, one of each group per rank,
// and nothing is gathered.
// GQA:      cleave.attention {{.*}} : tensor<2x2x8x8xf32>, tensor<2x1x8x8xf32>, tensor<2x1x8x8xf32>
// GQA-NOT:  cleave.all_gather
// GQA:      %{{.*}}, %[[DK:.*]], %{{.*}} = cleave.attention_grad {{.*}} : tensor<2x2x8x8xf32>, tensor<2x1x8x8xf32>
// GQA-NOT:  cleave.all_reduce %[[DK]]
// GQA-NOT:  cleave.all_gather

// One key/value head: the query heads split, the key and value
// projections stay whole on each rank (nothing gathered), and each rank's
// key and value gradients are its query heads' part, summed over tp.
// MQA:      cleave.attention {{.*}} : tensor<2x2x8x8xf32>, tensor<2x1x8x8xf32>, tensor<2x1x8x8xf32>
// MQA-NOT:  cleave.all_gather
// MQA:      %{{.*}}, %[[DK:.*]], %{{.*}} = cleave.attention_grad {{.*}} : tensor<2x2x8x8xf32>, tensor<2x1x8x8xf32>
// MQA:      cleave.all_reduce %[[DK]] on @mesh [tp] sum {{.*}}: tensor<2x1x8x8xf32>
// MQA-NOT:  cleave.all_gather

// Megatron's split follows the structure, not the names: the product whose
// activation comes from another parameter product (after the block's norm)
// is row-parallel, split on its contraction factor; the product feeding it
// is column-parallel, split on its output factor. The norm's scale stays
// whole.
// SPLITS-LABEL: func.func @train_step(
// SPLITS-DAG:     cleave.shard %arg2 : tensor<64x16xf32> to <@mesh, {{\[\[}}tp], []]>
// SPLITS-DAG:     cleave.shard %arg1 : tensor<16x64xf32> to <@mesh, {{\[\[}}], [tp]]>
// SPLITS-NOT:     cleave.shard %arg0

// Partitioned, the MLP block has exactly one all-reduce of activations on
// tp forward (after the row-parallel product) and one backward (of the
// input's gradient, before the norm's gradient). The scalar all-reduce
// completes the gradient norm: the split gradients' sums of squares are
// added (the whole scale's scaled by 1/2) and completed once.
// CHECK-LABEL: func.func @train_step(
// CHECK:         cleave.all_reduce %{{.*}} on @mesh [tp] sum {cleave.layer = #cleave.layer<0>} : tensor<4x8x16xf32>
// CHECK:         cleave.all_reduce %{{.*}} on @mesh [tp] sum {cleave.layer = #cleave.layer<0>} : tensor<4x8x16xf32>
// CHECK:         cleave.all_reduce %{{.*}} on @mesh [tp] sum : tensor<f32>
// CHECK-NOT:     cleave.all_reduce

// Sequence parallelism adds, below the weights' priority, splits of the
// norm's input and output on the sequence (dimension 1). Partitioned: the
// norm runs on half the sequence, its output is all-gathered before the
// column-parallel product, the row-parallel product's sum is
// reduce-scattered back onto the sequence; backward, the input's gradient
// is reduce-scattered before the norm's gradient, whose scale gradient
// (summed over half the tokens) is all-reduced. No activation is
// all-reduced.
// SP-SPLITS-LABEL: func.func @train_step(
// SP-SPLITS:         %[[X:.*]] = cleave.shard %arg3 : tensor<4x8x16xf32> to <@mesh, {{\[\[}}], [tp], []]> priority 1
// SP-SPLITS:         %[[N:.*]] = cleave.rms_norm %[[X]]
// SP-SPLITS-NEXT:    cleave.shard %[[N]] : tensor<4x8x16xf32> to <@mesh, {{\[\[}}], [tp], []]> priority 1
// SP-LABEL: func.func @train_step(
// SP:         %[[N:.*]] = cleave.rms_norm %arg3, %arg0 {{.*}} : tensor<4x4x16xf32>, tensor<16xf32>
// SP-NEXT:    cleave.all_gather %[[N]] on @mesh [tp] dim 1 {{.*}} : tensor<4x4x16xf32> -> tensor<4x8x16xf32>
// SP:         cleave.reduce_scatter %{{.*}} on @mesh [tp] sum dim 1 {{.*}} : tensor<4x8x16xf32> -> tensor<4x4x16xf32>
// SP:         %[[G:.*]] = cleave.reduce_scatter %{{.*}} on @mesh [tp] sum dim 1 {{.*}} : tensor<4x8x16xf32> -> tensor<4x4x16xf32>
// SP:         %{{.*}}, %[[SCALE:.*]] = cleave.rms_norm_grad %arg3, %arg0, %[[G]]
// SP:         cleave.all_reduce %[[SCALE]] on @mesh [tp] sum {{.*}} : tensor<16xf32>
// SP-NOT:     cleave.all_reduce %{{.*}} : tensor<4x{{.*}}xf32>

cleave.mesh @mesh(tp = 2)
func.func @forward(%scale: tensor<16xf32> {cleave.param = "layers.0.ln.scale"},
                   %wfc: tensor<16x64xf32> {cleave.param = "layers.0.mlp.fc.weight"},
                   %wproj: tensor<64x16xf32> {cleave.param = "layers.0.mlp.proj.weight"},
                   %x: tensor<4x8x16xf32> {cleave.input = "x"}) -> tensor<f32> attributes {cleave.role = #cleave.role<forward>} {
  %0 = cleave.rms_norm %x, %scale {cleave.layer = #cleave.layer<0>} : tensor<4x8x16xf32>, tensor<16xf32>
  %1 = cleave.matmul %0, %wfc {cleave.layer = #cleave.layer<0>} : tensor<4x8x16xf32>, tensor<16x64xf32> -> tensor<4x8x64xf32>
  %2 = cleave.gelu %1 {cleave.layer = #cleave.layer<0>} : tensor<4x8x64xf32>
  %3 = cleave.matmul %2, %wproj {cleave.layer = #cleave.layer<0>} : tensor<4x8x64xf32>, tensor<64x16xf32> -> tensor<4x8x16xf32>
  %4 = cleave.add %x, %3 {cleave.layer = #cleave.layer<0>} : tensor<4x8x16xf32>
  %5 = cleave.mul %4, %4 {cleave.layer = #cleave.layer<head>} : tensor<4x8x16xf32>
  %6 = cleave.reduce_mean %5 dims [0, 1, 2] {cleave.layer = #cleave.layer<head>} : tensor<4x8x16xf32> -> tensor<f32>
  return %6 : tensor<f32>
}
