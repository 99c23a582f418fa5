// Op semantics the models do not reach, run end to end on the CPU and
// checked value by value in check_ops.py: integer division by 0 and -1,
// saturating float-to-integer casts, casts to i1, integer reductions, -0.0,
// exact 64-bit constants, slice/concat/transpose, softmax, a reduction
// through a reshape, and a function name that is not a C++ identifier.

// RUN: rm -rf %t && mkdir -p %t
// RUN: cleavec build %s --target cpu -o %t | FileCheck %s
// CHECK: cleavec: entry 'ops.v2':
// RUN: %python %S/check_ops.py inputs %t/inputs.safetensors %t/params.safetensors
// RUN: %t/ops --params %t/params.safetensors --inputs %t/inputs.safetensors --outputs %t/outputs.safetensors
// RUN: %python %S/check_ops.py check %t/inputs.safetensors %t/params.safetensors %t/outputs.safetensors

func.func @"ops.v2"(%x: tensor<2x3xf32> {cleave.input = "x"},
                    %n: tensor<4xi32> {cleave.input = "n"},
                    %d: tensor<4xi32> {cleave.input = "d"},
                    %w: tensor<3x4xf32> {cleave.param = "w"})
    -> (tensor<4xi32>, tensor<2x3xi32>, tensor<2x3xi1>, tensor<i32>,
        tensor<2xf32>, tensor<2xi64>, tensor<2x5xf32>, tensor<3x2xf32>,
        tensor<3x4xf32>, tensor<3xf32>) {
  %q = cleave.div %n, %d : tensor<4xi32>
  %c = cleave.cast %x : tensor<2x3xf32> to tensor<2x3xi32>
  %b = cleave.cast %x : tensor<2x3xf32> to tensor<2x3xi1>
  %m = cleave.reduce_max %n dims [0] : tensor<4xi32> -> tensor<i32>
  %one = cleave.fill 1.0 : tensor<2xf32>
  %negzero = cleave.fill -0.0 : tensor<2xf32>
  %inf = cleave.div %one, %negzero : tensor<2xf32>
  %k = cleave.constant dense<9007199254740993> : tensor<2xi64>
  %sl = cleave.slice %x [0, 1] : tensor<2x3xf32> -> tensor<2x2xf32>
  %cc = cleave.concat %sl, %x dim 1 : (tensor<2x2xf32>, tensor<2x3xf32>) -> tensor<2x5xf32>
  %t = cleave.transpose %x perm [1, 0] : tensor<2x3xf32> -> tensor<3x2xf32>
  %sm = cleave.softmax %w : tensor<3x4xf32>
  %r = cleave.reshape %w : tensor<3x4xf32> -> tensor<3x2x2xf32>
  %rs = cleave.reduce_sum %r dims [1, 2] : tensor<3x2x2xf32> -> tensor<3xf32>
  return %q, %c, %b, %m, %inf, %k, %cc, %t, %sm, %rs
      : tensor<4xi32>, tensor<2x3xi32>, tensor<2x3xi1>, tensor<i32>,
        tensor<2xf32>, tensor<2xi64>, tensor<2x5xf32>, tensor<3x2xf32>,
        tensor<3x4xf32>, tensor<3xf32>
}
