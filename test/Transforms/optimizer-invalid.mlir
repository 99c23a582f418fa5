// RUN: cleave-opt %s -split-input-file -verify-diagnostics --cleave-optimizer
// RUN: not cleave-opt %s -split-input-file '--cleave-optimizer=function=forward optimizer=lion' -o /dev/null 2>&1 | FileCheck %s --check-prefix=UNKNOWN
// UNKNOWN: for the --optimizer option: Cannot find option named 'lion'!

// expected-error@+1 {{no function 'train_step' to extend: run cleave-autodiff first}}
module {
  func.func @forward(%a: tensor<3xf32> {cleave.param = "a"}) -> tensor<f32> {
    %loss = cleave.reduce_sum %a dims [0] : tensor<3xf32> -> tensor<f32>
    return %loss : tensor<f32>
  }
}

// -----

// expected-error@+1 {{training step has no gradient 'grad.a'}}
func.func @train_step(%a: tensor<3xf32> {cleave.param = "a"}) -> (tensor<f32> {cleave.output = "loss"}) {
  %loss = cleave.reduce_sum %a dims [0] : tensor<3xf32> -> tensor<f32>
  return %loss : tensor<f32>
}
