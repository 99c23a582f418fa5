// Gradients of matmul (every transpose combination, batched with a shared
// rank-2 right-hand side, plain and transposed, batched with batched
// operands), transpose,
// reshape, slice, concat and softmax, against finite differences (f64).

// RUN: rm -rf %t && mkdir -p %t/forward %t/gradients
// RUN: cleavec build %s -o %t/forward --init-params %t/init.safetensors
// RUN: cleavec build %s --gradients -o %t/gradients
// RUN: %reference randomize --params %t/init.safetensors --std 0.7 --seed 5 -o %t/params.safetensors
// RUN: %python %S/../opgradcheck.py --forward %t/forward/structure --gradients %t/gradients/structure --params %t/params.safetensors | FileCheck %s
// CHECK: opgradcheck: {{[0-9]+}} elements checked, 0 failed

func.func @forward(%a: tensor<2x3x4xf64> {cleave.param = "a"},
                   %w: tensor<4x5xf64> {cleave.param = "w"},
                   %wt: tensor<5x4xf64> {cleave.param = "wt"},
                   %p: tensor<4x3xf64> {cleave.param = "p"},
                   %bq: tensor<2x5x3xf64> {cleave.param = "bq"},
                   %at: tensor<2x4x3xf64> {cleave.param = "at"}) -> tensor<f64> {
  // Batched lhs, shared rhs, plain and transposed.
  %m1 = cleave.matmul %a, %w : tensor<2x3x4xf64>, tensor<4x5xf64> -> tensor<2x3x5xf64>
  %m2 = cleave.matmul %a, %wt transpose_rhs : tensor<2x3x4xf64>, tensor<5x4xf64> -> tensor<2x3x5xf64>
  // Transposed batched lhs, shared rank-2 rhs.
  %m7 = cleave.matmul %at, %w transpose_lhs : tensor<2x4x3xf64>, tensor<4x5xf64> -> tensor<2x3x5xf64>
  %m127 = cleave.add %m1, %m2 : tensor<2x3x5xf64>
  %m12 = cleave.add %m127, %m7 : tensor<2x3x5xf64>
  // Both batched, transposed lhs and rhs.
  %m3 = cleave.matmul %m12, %bq : tensor<2x3x5xf64>, tensor<2x5x3xf64> -> tensor<2x3x3xf64>
  %m4 = cleave.matmul %bq, %m12 transpose_lhs transpose_rhs : tensor<2x5x3xf64>, tensor<2x3x5xf64> -> tensor<2x3x3xf64>
  // Rank-2 products with each flag.
  %m5 = cleave.matmul %p, %w transpose_lhs : tensor<4x3xf64>, tensor<4x5xf64> -> tensor<3x5xf64>
  %m6 = cleave.matmul %p, %wt transpose_lhs transpose_rhs : tensor<4x3xf64>, tensor<5x4xf64> -> tensor<3x5xf64>
  %sum34 = cleave.add %m3, %m4 : tensor<2x3x3xf64>
  %t = cleave.transpose %sum34 perm [2, 0, 1] : tensor<2x3x3xf64> -> tensor<3x2x3xf64>
  %r = cleave.reshape %t : tensor<3x2x3xf64> -> tensor<3x6xf64>
  %sl = cleave.slice %r [0, 1] : tensor<3x6xf64> -> tensor<3x4xf64>
  %cat = cleave.concat %sl, %m6, %m5 dim 1 : (tensor<3x4xf64>, tensor<3x5xf64>, tensor<3x5xf64>) -> tensor<3x14xf64>
  %sm = cleave.softmax %cat : tensor<3x14xf64>
  %weights = cleave.slice %r [0, 0] : tensor<3x6xf64> -> tensor<3x1xf64>
  %wb = cleave.broadcast %weights dims [0, 1] : tensor<3x1xf64> -> tensor<3x14xf64>
  %prod = cleave.mul %sm, %wb : tensor<3x14xf64>
  %loss = cleave.reduce_sum %prod dims [0, 1] : tensor<3x14xf64> -> tensor<f64>
  return %loss : tensor<f64>
}
