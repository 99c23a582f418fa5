// RUN: cleave-opt %s -split-input-file -verify-diagnostics --cleave-verify-layer-tags | FileCheck %s

// CHECK-LABEL: func.func @tagged
func.func @tagged(%a: tensor<4xf32>) -> tensor<4xf32> {
  %0 = cleave.exp %a {cleave.layer = #cleave.layer<embed>} : tensor<4xf32>
  %1 = cleave.add %0, %a {cleave.layer = #cleave.layer<0>} : tensor<4xf32>
  %2 = cleave.tanh %1 {cleave.layer = #cleave.layer<head>} : tensor<4xf32>
  return %2 : tensor<4xf32>
}

// -----

func.func @untagged(%a: tensor<4xf32>) -> tensor<4xf32> {
  %0 = cleave.exp %a {cleave.layer = #cleave.layer<1>} : tensor<4xf32>
  // expected-error@+1 {{op has no 'cleave.layer' layer tag}}
  %1 = cleave.add %0, %a : tensor<4xf32>
  // expected-error@+1 {{op has no 'cleave.layer' layer tag}}
  %2 = cleave.tanh %1 : tensor<4xf32>
  return %2 : tensor<4xf32>
}
