// Gradients of the elementwise ops, broadcasts and reductions against
// central finite differences of the same function (f64). cast is left out:
// a round trip through f32 quantizes the loss below the difference step.

// RUN: rm -rf %t && mkdir -p %t/forward %t/gradients
// RUN: cleavec build %s -o %t/forward --init-params %t/init.safetensors
// RUN: cleavec build %s --gradients -o %t/gradients
// RUN: %reference randomize --params %t/init.safetensors --std 0.7 --seed 4 -o %t/params.safetensors
// RUN: %python %S/../opgradcheck.py --forward %t/forward/elementwise --gradients %t/gradients/elementwise --params %t/params.safetensors | FileCheck %s
// CHECK: opgradcheck: {{[0-9]+}} elements checked, 0 failed

func.func @forward(%x: tensor<3x4xf64> {cleave.param = "x"},
                   %y: tensor<3x4xf64> {cleave.param = "y"},
                   %b: tensor<4xf64> {cleave.param = "b"},
                   %c: tensor<3x1xf64> {cleave.param = "c"}) -> tensor<f64> {
  %bb = cleave.broadcast %b dims [1] : tensor<4xf64> -> tensor<3x4xf64>
  %cb = cleave.broadcast %c dims [0, 1] : tensor<3x1xf64> -> tensor<3x4xf64>
  %s = cleave.add %x, %bb : tensor<3x4xf64>
  %d = cleave.sub %s, %cb : tensor<3x4xf64>
  %m = cleave.mul %d, %y : tensor<3x4xf64>
  %e = cleave.exp %y : tensor<3x4xf64>
  %q = cleave.div %m, %e : tensor<3x4xf64>
  %mx = cleave.max %q, %x : tensor<3x4xf64>
  %mn = cleave.min %mx, %y : tensor<3x4xf64>
  %n = cleave.neg %mn : tensor<3x4xf64>
  %l = cleave.log %e : tensor<3x4xf64>
  %t = cleave.tanh %n : tensor<3x4xf64>
  %sq = cleave.sqrt %e : tensor<3x4xf64>
  %rs = cleave.rsqrt %e : tensor<3x4xf64>
  %g = cleave.gelu %d : tensor<3x4xf64>
  %r = cleave.relu %d : tensor<3x4xf64>
  %si = cleave.silu %m : tensor<3x4xf64>
  %zero = cleave.fill 0.0 : tensor<3x4xf64>
  %pos = cleave.compare gt, %x, %zero : tensor<3x4xf64>
  %sel = cleave.select %pos, %g, %si : tensor<3x4xi1>, tensor<3x4xf64>
  %a1 = cleave.add %t, %l : tensor<3x4xf64>
  %a2 = cleave.add %a1, %rs : tensor<3x4xf64>
  %a3 = cleave.add %a2, %sel : tensor<3x4xf64>
  %a4 = cleave.add %a3, %r : tensor<3x4xf64>
  %a5 = cleave.mul %a4, %sq : tensor<3x4xf64>
  %rm = cleave.reduce_max %a5 dims [1] : tensor<3x4xf64> -> tensor<3xf64>
  %rmean = cleave.reduce_mean %a5 dims [0] : tensor<3x4xf64> -> tensor<4xf64>
  %s1 = cleave.reduce_sum %rm dims [0] : tensor<3xf64> -> tensor<f64>
  %s2 = cleave.reduce_sum %rmean dims [0] : tensor<4xf64> -> tensor<f64>
  %loss = cleave.add %s1, %s2 : tensor<f64>
  return %loss : tensor<f64>
}
