// RUN: cleave-opt %s -split-input-file --cleave-autodiff '--cleave-search-tensor-sharding=report=true' | FileCheck %s
// RUN: cleave-opt %s -split-input-file --cleave-autodiff '--cleave-search-tensor-sharding=report=true cluster=%S/../e2e/planner/Inputs/free-links.json' -o /dev/null | FileCheck %s --check-prefix=FREE
// RUN: not cleave-opt %s -split-input-file --cleave-autodiff '--cleave-search-tensor-sharding=cluster=tpu-pod' -o /dev/null 2>&1 | FileCheck %s --check-prefix=CLUSTER
// RUN: not cleave-opt %s -split-input-file --cleave-autodiff '--cleave-search-tensor-sharding=axis=mp' -o /dev/null 2>&1 | FileCheck %s --check-prefix=AXIS
// CLUSTER: error: cleave-search-tensor-sharding: unknown cluster 'tpu-pod'
// AXIS: error: the search strategy needs exactly one cleave.mesh with axis 'mp', found 0

// Two identical MLP blocks as wide as GPT-3 2.7B on 4 GPUs of a DGX A100
// (the default cluster): the exact search over the factor rules picks
// Megatron-LM's split, the first weight by column and the second by row
// (one all-reduce forward, one backward, per block), solves the first
// block once for both, and constrains both blocks' weights (and the
// activations it splits) alike.
// CHECK:       layers 0, 1: {{[0-9]+}} choices, solved once for 2 identical layers
// CHECK-NEXT:    predicted per layer: {{[0-9.]+}} ms (compute {{[0-9.]+}} ms, update {{[0-9.]+}} ms, collectives {{[0-9.]+}} ms)
// CHECK-NEXT:    fc.weight: split dim 1
// CHECK-NEXT:    proj.weight: split dim 0
// CHECK-NEXT:    collectives: 2 all-reduce (134217728 B)
// CHECK:       layer head: 0 choices
// CHECK-LABEL: func.func @train_step(
// CHECK-DAG:     cleave.shard %arg0 : tensor<2048x8192xf32> to <@mesh, {{\[\[}}], [tp]]>
// CHECK-DAG:     cleave.shard %arg1 : tensor<8192x2048xf32> to <@mesh, {{\[\[}}tp], []]> priority 1
// CHECK-DAG:     cleave.shard %arg2 : tensor<2048x8192xf32> to <@mesh, {{\[\[}}], [tp]]>
// CHECK-DAG:     cleave.shard %arg3 : tensor<8192x2048xf32> to <@mesh, {{\[\[}}tp], []]> priority 1
// The column product's result as the solution splits it, after both
// weights' priorities.
// CHECK-DAG:     cleave.shard %{{[0-9]+}} : tensor<8x1024x8192xf32> to <@mesh, {{\[\[}}], [], [tp]]> priority 2

// A tiny block stays whole: any collective costs more than the compute it
// saves.
// CHECK:       layer 0: {{[0-9]+}} choices
// CHECK:         fc.weight: whole
// CHECK-NEXT:    proj.weight: whole
// CHECK-NEXT:    collectives: none
// CHECK-LABEL: func.func @train_step(
// CHECK-NOT:     cleave.shard

// On a cluster whose links cost nothing, even the tiny block splits.
// FREE:        layers 0, 1:
// FREE:        layer 0:
// FREE:          fc.weight: split dim 1
// FREE-NEXT:     proj.weight: split dim 0

cleave.mesh @mesh(tp = 4)
func.func @forward(%w1: tensor<2048x8192xf32> {cleave.param = "fc.weight"},
                   %w2: tensor<8192x2048xf32> {cleave.param = "proj.weight"},
                   %w3: tensor<2048x8192xf32> {cleave.param = "fc1.weight"},
                   %w4: tensor<8192x2048xf32> {cleave.param = "proj1.weight"},
                   %x: tensor<8x1024x2048xf32> {cleave.input = "x", cleave.input_role = #cleave.input_role<features>}) -> tensor<f32>
    attributes {cleave.role = #cleave.role<forward>} {
  %h = cleave.matmul %x, %w1 {cleave.layer = #cleave.layer<0>} : tensor<8x1024x2048xf32>, tensor<2048x8192xf32> -> tensor<8x1024x8192xf32>
  %g = cleave.gelu %h {cleave.layer = #cleave.layer<0>} : tensor<8x1024x8192xf32>
  %y = cleave.matmul %g, %w2 {cleave.layer = #cleave.layer<0>} : tensor<8x1024x8192xf32>, tensor<8192x2048xf32> -> tensor<8x1024x2048xf32>
  %r = cleave.add %x, %y {cleave.layer = #cleave.layer<0>} : tensor<8x1024x2048xf32>
  %h1 = cleave.matmul %r, %w3 {cleave.layer = #cleave.layer<1>} : tensor<8x1024x2048xf32>, tensor<2048x8192xf32> -> tensor<8x1024x8192xf32>
  %g1 = cleave.gelu %h1 {cleave.layer = #cleave.layer<1>} : tensor<8x1024x8192xf32>
  %y1 = cleave.matmul %g1, %w4 {cleave.layer = #cleave.layer<1>} : tensor<8x1024x8192xf32>, tensor<8192x2048xf32> -> tensor<8x1024x2048xf32>
  %r1 = cleave.add %r, %y1 {cleave.layer = #cleave.layer<1>} : tensor<8x1024x2048xf32>
  %loss = cleave.reduce_mean %r1 dims [0, 1, 2] {cleave.layer = #cleave.layer<head>} : tensor<8x1024x2048xf32> -> tensor<f32>
  return %loss : tensor<f32>
}

// -----

cleave.mesh @mesh(tp = 2)
func.func @forward(%w1: tensor<8x32xf32> {cleave.param = "fc.weight"},
                   %w2: tensor<32x8xf32> {cleave.param = "proj.weight"},
                   %x: tensor<2x4x8xf32> {cleave.input = "x", cleave.input_role = #cleave.input_role<features>}) -> tensor<f32>
    attributes {cleave.role = #cleave.role<forward>} {
  %h = cleave.matmul %x, %w1 {cleave.layer = #cleave.layer<0>} : tensor<2x4x8xf32>, tensor<8x32xf32> -> tensor<2x4x32xf32>
  %g = cleave.gelu %h {cleave.layer = #cleave.layer<0>} : tensor<2x4x32xf32>
  %y = cleave.matmul %g, %w2 {cleave.layer = #cleave.layer<0>} : tensor<2x4x32xf32>, tensor<32x8xf32> -> tensor<2x4x8xf32>
  %r = cleave.add %x, %y {cleave.layer = #cleave.layer<0>} : tensor<2x4x8xf32>
  %loss = cleave.reduce_mean %r dims [0, 1, 2] {cleave.layer = #cleave.layer<head>} : tensor<2x4x8xf32> -> tensor<f32>
  return %loss : tensor<f32>
}
