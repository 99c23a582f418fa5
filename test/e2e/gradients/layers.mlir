// Gradients of layer_norm, rms_norm, embedding (repeated indices), rotary
// (with Llama 3.1's frequency scaling too), causal, full and grouped-query
// attention and cross_entropy, against finite differences (f64).

// RUN: rm -rf %t && mkdir -p %t/forward %t/gradients
// RUN: cleavec build %s -o %t/forward --init-params %t/init.safetensors
// RUN: cleavec build %s --gradients -o %t/gradients
// RUN: %reference randomize --params %t/init.safetensors --std 0.7 --seed 6 -o %t/params.safetensors
// RUN: %python %S/../opgradcheck.py --forward %t/forward/layers --gradients %t/gradients/layers --params %t/params.safetensors --index-input ids:2x5:6 --index-input labels:2x5:7 | FileCheck %s
// CHECK: opgradcheck: {{[0-9]+}} elements checked, 0 failed

func.func @forward(%table: tensor<6x8xf64> {cleave.param = "table"},
                   %g: tensor<8xf64> {cleave.param = "g"},
                   %bias: tensor<8xf64> {cleave.param = "bias"},
                   %h: tensor<8xf64> {cleave.param = "h"},
                   %out: tensor<8x7xf64> {cleave.param = "out"},
                   %ids: tensor<2x5xi32> {cleave.input = "ids"},
                   %labels: tensor<2x5xi32> {cleave.input = "labels"}) -> tensor<f64> {
  %x = cleave.embedding %table, %ids : tensor<6x8xf64>, tensor<2x5xi32> -> tensor<2x5x8xf64>
  %ln = cleave.layer_norm %x, %g, %bias : tensor<2x5x8xf64>, tensor<8xf64>
  %rms = cleave.rms_norm %ln, %h : tensor<2x5x8xf64>, tensor<8xf64>
  %heads = cleave.reshape %rms : tensor<2x5x8xf64> -> tensor<2x5x2x4xf64>
  %q = cleave.transpose %heads perm [0, 2, 1, 3] : tensor<2x5x2x4xf64> -> tensor<2x2x5x4xf64>
  %qr = cleave.rotary %q {base = 100.0 : f64} : tensor<2x2x5x4xf64>
  %k = cleave.mul %q, %q : tensor<2x2x5x4xf64>
  %causal:2 = cleave.attention %qr, %k, %q causal : tensor<2x2x5x4xf64>, tensor<2x2x5x4xf64>, tensor<2x2x5x4xf64>
  %full:2 = cleave.attention %causal#0, %qr, %k {scale = 0.3 : f64} : tensor<2x2x5x4xf64>, tensor<2x2x5x4xf64>, tensor<2x2x5x4xf64>
  // One key/value head for both query heads; pair 0's wavelength (6.28)
  // lies between 12 / 2 and 12 (blended), pair 1's beyond 12 (divided).
  %kvsum = cleave.reduce_sum %k dims [1] : tensor<2x2x5x4xf64> -> tensor<2x5x4xf64>
  %kv = cleave.reshape %kvsum : tensor<2x5x4xf64> -> tensor<2x1x5x4xf64>
  %kvr = cleave.rotary %kv {base = 500.0 : f64, scaling = #cleave.rope_scaling<factor = 4.0, low_freq_factor = 1.0, high_freq_factor = 2.0, original_max_positions = 12>} : tensor<2x1x5x4xf64>
  %grouped:2 = cleave.attention %full#0, %kvr, %kv causal : tensor<2x2x5x4xf64>, tensor<2x1x5x4xf64>, tensor<2x1x5x4xf64>
  %back = cleave.transpose %grouped#0 perm [0, 2, 1, 3] : tensor<2x2x5x4xf64> -> tensor<2x5x2x4xf64>
  %merged = cleave.reshape %back : tensor<2x5x2x4xf64> -> tensor<2x5x8xf64>
  %logits = cleave.matmul %merged, %out : tensor<2x5x8xf64>, tensor<8x7xf64> -> tensor<2x5x7xf64>
  %ce = cleave.cross_entropy %logits, %labels : tensor<2x5x7xf64>, tensor<2x5xi32> -> tensor<2x5xf64>
  %loss = cleave.reduce_mean %ce dims [0, 1] : tensor<2x5xf64> -> tensor<f64>
  return %loss : tensor<f64>
}
