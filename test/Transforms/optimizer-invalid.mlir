// RUN: cleave-opt %s -split-input-file -verify-diagnostics --cleave-optimizer
// RUN: not cleave-opt %s -split-input-file '--cleave-optimizer=function=forward optimizer=lion' -o /dev/null 2>&1 | FileCheck %s --check-prefix=UNKNOWN
// UNKNOWN: for the --optimizer option: Cannot find option named 'lion'!

// expected-error@+1 {{no function with cleave.role step to extend: run cleave-autodiff first}}
module {
  func.func @forward(%a: tensor<3xf32> {cleave.param = "a"}) -> tensor<f32> attributes {cleave.role = #cleave.role<forward>} {
    %loss = cleave.reduce_sum %a dims [0] : tensor<3xf32> -> tensor<f32>
    return %loss : tensor<f32>
  }
}

// -----

// expected-error@+1 {{training step has no gradient 'grad.a' (cleave.output_role gradient)}}
func.func @train_step(%a: tensor<3xf32> {cleave.param = "a"}) -> (tensor<f32> {cleave.output = "loss", cleave.output_role = #cleave.output_role<loss>}) attributes {cleave.role = #cleave.role<step>} {
  %loss = cleave.reduce_sum %a dims [0] : tensor<3xf32> -> tensor<f32>
  return %loss : tensor<f32>
}

// -----

// A result named "loss" is not the loss: its role says so.
// expected-error@+1 {{training step returns no loss (cleave.output_role loss)}}
func.func @train_step(%a: tensor<3xf32> {cleave.param = "a"}) -> (tensor<f32> {cleave.output = "loss"}, tensor<3xf32> {cleave.output = "grad.a", cleave.output_role = #cleave.output_role<gradient>}) attributes {cleave.role = #cleave.role<step>} {
  %loss = cleave.reduce_sum %a dims [0] : tensor<3xf32> -> tensor<f32>
  return %loss, %a : tensor<f32>, tensor<3xf32>
}
