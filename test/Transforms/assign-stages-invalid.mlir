// RUN: cleave-opt %s -split-input-file -verify-diagnostics --cleave-assign-stages='stages=2'

func.func @train_step(%x: tensor<4xf32>) -> tensor<4xf32> attributes {cleave.role = #cleave.role<step>} {
  %0 = cleave.exp %x {cleave.layer = #cleave.layer<0>} : tensor<4xf32>
  // expected-error @+1 {{has no 'cleave.layer' tag: pipeline stages follow the layers}}
  %1 = cleave.exp %0 : tensor<4xf32>
  %2 = cleave.exp %1 {cleave.layer = #cleave.layer<1>} : tensor<4xf32>
  return %2 : tensor<4xf32>
}

// -----

// expected-error @+1 {{has no transformer blocks to cut into stages}}
func.func @train_step(%x: tensor<4xf32>) -> tensor<4xf32> attributes {cleave.role = #cleave.role<step>} {
  %0 = cleave.exp %x {cleave.layer = #cleave.layer<head>} : tensor<4xf32>
  return %0 : tensor<4xf32>
}

// -----

// A block tag past the blocks would size the stage table (tag 2^63 - 1
// once crashed the pass).
func.func @train_step(%x: tensor<4xf32>) -> tensor<4xf32> attributes {cleave.role = #cleave.role<step>} {
  %0 = cleave.exp %x {cleave.layer = #cleave.layer<0>} : tensor<4xf32>
  // expected-error @+1 {{layer tag #cleave.layer<9223372036854775807> is out of range: the 2 transformer blocks must be tagged 0..1 without a gap}}
  %1 = cleave.exp %0 {cleave.layer = #cleave.layer<9223372036854775807>} : tensor<4xf32>
  return %1 : tensor<4xf32>
}
