// RUN: cleave-opt %s --cleave-assign-stages='stages=2 report=true' | FileCheck %s --check-prefix=BALANCED
// RUN: cleave-opt %s --cleave-assign-stages='stages=2 layers-per-stage=1,3' | FileCheck %s --check-prefix=GIVEN
// RUN: cleave-opt %s --cleave-assign-stages='stages=2 virtual-stages=2 report=true' | FileCheck %s --check-prefix=VIRTUAL
// RUN: cleave-opt %s --cleave-assign-stages='stages=2 function=other' | FileCheck %s --check-prefix=NAMED

// Impossible requests.
// RUN: not cleave-opt %s --cleave-assign-stages='stages=8' -o /dev/null 2>&1 | FileCheck %s --check-prefix=TOOMANY
// RUN: not cleave-opt %s --cleave-assign-stages='stages=1 virtual-stages=3' -o /dev/null 2>&1 | FileCheck %s --check-prefix=UNEVEN
// RUN: not cleave-opt %s --cleave-assign-stages='stages=2 layers-per-stage=3,2' -o /dev/null 2>&1 | FileCheck %s --check-prefix=SUM
// RUN: not cleave-opt %s --cleave-assign-stages='stages=3 layers-per-stage=2,2' -o /dev/null 2>&1 | FileCheck %s --check-prefix=COUNT
// RUN: not cleave-opt %s --cleave-assign-stages='stages=2 layers-per-stage=4,0' -o /dev/null 2>&1 | FileCheck %s --check-prefix=EMPTY
// RUN: not cleave-opt %s --cleave-assign-stages='stages=0' -o /dev/null 2>&1 | FileCheck %s --check-prefix=ZERO
// TOOMANY: error: cannot cut 4 transformer blocks into 8 pipeline stages
// UNEVEN: error: cannot interleave 4 transformer blocks over 1 stages x 3 virtual stages: every chunk needs the same number of blocks
// SUM: error: layers-per-stage covers 5 transformer blocks, but the model has 4
// COUNT: error: layers-per-stage lists 2 stages, but there are 3
// EMPTY: error: every stage needs at least one transformer block
// ZERO: error: stages and virtual-stages must be at least 1

// A training step of four blocks, the last three times as costly as each of the others (three
// matmuls of 512 FLOPs instead of one). Balanced by FLOPs, two stages cut
// after block 2: 1,536 FLOPs and the embedding on the first, 1,536 and the
// head on the second, where an even split would put 2,048 on one.
// BALANCED:      pipeline stages of 'train_step': 2 (2 ranks x 1 virtual)
// BALANCED-NEXT: stage 0 (rank 0): blocks 0-2, flops 1536 (49.5%), params 1280 bytes
// BALANCED-NEXT: stage 1 (rank 1): blocks 3-3, flops 1568 (50.5%), params 256 bytes
// BALANCED-NOT:  pipeline stages of
// BALANCED-LABEL: func.func @train_step(
// BALANCED-SAME:    cleave.block_stages = array<i64: 0, 0, 0, 1>
// BALANCED:         cleave.embedding {{.*}}cleave.layer = #cleave.layer<embed>, cleave.stage = 0 : i64
// BALANCED:         cleave.matmul {{.*}}cleave.layer = #cleave.layer<2>, cleave.stage = 0 : i64
// BALANCED:         cleave.matmul {{.*}}cleave.layer = #cleave.layer<3>, cleave.stage = 1 : i64
// BALANCED:         cleave.reduce_sum {{.*}}cleave.layer = #cleave.layer<head>, cleave.stage = 1 : i64
// BALANCED:         return
// Without a function named, the training step is staged and the model it
// was derived from (role forward) is not.
// BALANCED-LABEL: func.func @other(
// BALANCED-NOT:     cleave.stage

// GIVEN-LABEL: func.func @train_step(
// GIVEN-SAME:    cleave.block_stages = array<i64: 0, 1, 1, 1>
// GIVEN:         cleave.matmul {{.*}}cleave.layer = #cleave.layer<1>, cleave.stage = 1 : i64

// Interleaved: each chunk holds one block; rank r holds stages r and r + 2.
// VIRTUAL:      pipeline stages of 'train_step': 4 (2 ranks x 2 virtual)
// VIRTUAL-NEXT: stage 0 (rank 0): blocks 0-0,
// VIRTUAL-NEXT: stage 1 (rank 1): blocks 1-1,
// VIRTUAL-NEXT: stage 2 (rank 0): blocks 2-2,
// VIRTUAL-NEXT: stage 3 (rank 1): blocks 3-3,
// VIRTUAL:      cleave.block_stages = array<i64: 0, 1, 2, 3>

// A named function is the only one staged.
// NAMED-LABEL: func.func @train_step(
// NAMED-NOT:     cleave.stage
// NAMED-LABEL: func.func @other(
// NAMED-SAME:    cleave.block_stages = array<i64: 0, 1>

func.func @train_step(%table: tensor<16x8xf32> {cleave.param = "embed"},
                   %w0: tensor<8x8xf32> {cleave.param = "w0"},
                   %w1: tensor<8x8xf32> {cleave.param = "w1"},
                   %w2: tensor<8x8xf32> {cleave.param = "w2"},
                   %w3: tensor<8x8xf32> {cleave.param = "w3"},
                   %tokens: tensor<4xi32> {cleave.input = "tokens"}) -> tensor<f32>
    attributes {cleave.role = #cleave.role<step>} {
  %x = cleave.embedding %table, %tokens {cleave.layer = #cleave.layer<embed>} : tensor<16x8xf32>, tensor<4xi32> -> tensor<4x8xf32>
  %h0 = cleave.matmul %x, %w0 {cleave.layer = #cleave.layer<0>} : tensor<4x8xf32>, tensor<8x8xf32> -> tensor<4x8xf32>
  %h1 = cleave.matmul %h0, %w1 {cleave.layer = #cleave.layer<1>} : tensor<4x8xf32>, tensor<8x8xf32> -> tensor<4x8xf32>
  %h2 = cleave.matmul %h1, %w2 {cleave.layer = #cleave.layer<2>} : tensor<4x8xf32>, tensor<8x8xf32> -> tensor<4x8xf32>
  %a3 = cleave.matmul %h2, %w3 {cleave.layer = #cleave.layer<3>} : tensor<4x8xf32>, tensor<8x8xf32> -> tensor<4x8xf32>
  %b3 = cleave.matmul %a3, %w3 {cleave.layer = #cleave.layer<3>} : tensor<4x8xf32>, tensor<8x8xf32> -> tensor<4x8xf32>
  %h3 = cleave.matmul %b3, %w3 {cleave.layer = #cleave.layer<3>} : tensor<4x8xf32>, tensor<8x8xf32> -> tensor<4x8xf32>
  %loss = cleave.reduce_sum %h3 dims [0, 1] {cleave.layer = #cleave.layer<head>} : tensor<4x8xf32> -> tensor<f32>
  return %loss : tensor<f32>
}

func.func @other(%x: tensor<4x8xf32> {cleave.input = "x"},
                 %w: tensor<8x8xf32> {cleave.param = "w"}) -> tensor<4x8xf32>
    attributes {cleave.role = #cleave.role<forward>} {
  %h0 = cleave.matmul %x, %w {cleave.layer = #cleave.layer<0>} : tensor<4x8xf32>, tensor<8x8xf32> -> tensor<4x8xf32>
  %h1 = cleave.matmul %h0, %w {cleave.layer = #cleave.layer<1>} : tensor<4x8xf32>, tensor<8x8xf32> -> tensor<4x8xf32>
  return %h1 : tensor<4x8xf32>
}
