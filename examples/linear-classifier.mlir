// A hand-written model: one linear layer with a bias, softmax cross-entropy
// over 10 classes, mean over a batch of 32. Try:
//
//   build/bin/cleave-opt examples/linear-classifier.mlir --cleave-print-cost -o /dev/null
//
// Parameters are arguments marked `cleave.param`, with the `cleave.init`
// they start from; data inputs `cleave.input` with the `cleave.input_role` a
// training loop feeds them; `cleave.layer` records which part of the model
// each op belongs to, and `cleave.role` that the function is the model.
func.func @forward(%weight: tensor<784x10xf32> {cleave.param = "linear.weight", cleave.init = #cleave.init<normal, 0.02>},
                   %bias: tensor<10xf32> {cleave.param = "linear.bias", cleave.init = #cleave.init<zeros>},
                   %images: tensor<32x784xf32> {cleave.input = "images", cleave.input_role = #cleave.input_role<features>},
                   %labels: tensor<32xi32> {cleave.input = "labels", cleave.input_role = #cleave.input_role<targets>}) -> tensor<f32>
    attributes {cleave.role = #cleave.role<forward>} {
  %logits = cleave.matmul %images, %weight {cleave.layer = #cleave.layer<0>}
      : tensor<32x784xf32>, tensor<784x10xf32> -> tensor<32x10xf32>
  %b = cleave.broadcast %bias dims [1] {cleave.layer = #cleave.layer<0>}
      : tensor<10xf32> -> tensor<32x10xf32>
  %shifted = cleave.add %logits, %b {cleave.layer = #cleave.layer<0>} : tensor<32x10xf32>
  %losses = cleave.cross_entropy %shifted, %labels {cleave.layer = #cleave.layer<head>}
      : tensor<32x10xf32>, tensor<32xi32> -> tensor<32xf32>
  %loss = cleave.reduce_mean %losses dims [0] {cleave.layer = #cleave.layer<head>}
      : tensor<32xf32> -> tensor<f32>
  return %loss : tensor<f32>
}
