// The gradient of cast (f64 -> f32 -> f64) against central differences. The
// f32 round trip quantizes the loss at about 6e-8 of its size, so the step
// is 1e-3 and the tolerance 1e-3 (the curvature error is about 1e-6).

// RUN: rm -rf %t && mkdir -p %t/forward %t/gradients
// RUN: cleavec build %s -o %t/forward --init-params %t/init.safetensors
// RUN: cleavec build %s --gradients -o %t/gradients
// RUN: %reference randomize --params %t/init.safetensors --std 0.7 --seed 7 -o %t/params.safetensors
// RUN: %python %S/../opgradcheck.py --forward %t/forward/cast --gradients %t/gradients/cast --params %t/params.safetensors --step 1e-3 --rtol 1e-3 --atol 1e-6 | FileCheck %s
// CHECK: opgradcheck: {{[0-9]+}} elements checked, 0 failed

func.func @forward(%x: tensor<3x4xf64> {cleave.param = "x"}) -> tensor<f64> {
  %narrow = cleave.cast %x : tensor<3x4xf64> to tensor<3x4xf32>
  %t = cleave.tanh %narrow : tensor<3x4xf32>
  %wide = cleave.cast %t : tensor<3x4xf32> to tensor<3x4xf64>
  %e = cleave.exp %wide : tensor<3x4xf64>
  %loss = cleave.reduce_sum %e dims [0, 1] : tensor<3x4xf64> -> tensor<f64>
  return %loss : tensor<f64>
}
