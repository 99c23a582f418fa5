// RUN: cleave-opt %s -split-input-file -verify-diagnostics --cleave-verify-layer-tags | FileCheck %s --check-prefixes=CHECK,NOFOLD
// RUN: cleave-opt %s -split-input-file -verify-diagnostics --canonicalize --cleave-verify-layer-tags | FileCheck %s --check-prefixes=CHECK,FOLD

// CHECK-LABEL: func.func @tagged
func.func @tagged(%a: tensor<4xf32>) -> tensor<4xf32> {
  %0 = cleave.exp %a {cleave.layer = #cleave.layer<embed>} : tensor<4xf32>
  %1 = cleave.add %0, %a {cleave.layer = #cleave.layer<0>} : tensor<4xf32>
  %2 = cleave.tanh %1 {cleave.layer = #cleave.layer<head>} : tensor<4xf32>
  return %2 : tensor<4xf32>
}

// -----

func.func @untagged(%a: tensor<4xf32>) -> tensor<4xf32> {
  %0 = cleave.exp %a {cleave.layer = #cleave.layer<0>} : tensor<4xf32>
  // expected-error@+1 {{op has no 'cleave.layer' layer tag}}
  %1 = cleave.add %0, %a : tensor<4xf32>
  // expected-error@+1 {{op has no 'cleave.layer' layer tag}}
  %2 = cleave.tanh %1 : tensor<4xf32>
  return %2 : tensor<4xf32>
}

// -----

// Constants need no tag, so folding keeps a tagged function valid.
// CHECK-LABEL: func.func @folded_constant
// NOFOLD: cleave.reshape
// FOLD: cleave.constant dense<{{\[}}[1, 2], [3, 4]]> : tensor<2x2xi32>
// FOLD-NOT: cleave.reshape
func.func @folded_constant() -> tensor<2x2xi32> {
  %0 = cleave.constant {cleave.layer = #cleave.layer<0>} dense<[1, 2, 3, 4]> : tensor<4xi32>
  %1 = cleave.reshape %0 {cleave.layer = #cleave.layer<0>} : tensor<4xi32> -> tensor<2x2xi32>
  return %1 : tensor<2x2xi32>
}

// -----

// Block tags size the planner's and the stage assignment's tables: a tag
// past the blocks (here the 2^31 that once made them allocate) is refused.
func.func @sparse(%a: tensor<4xf32>) -> tensor<4xf32> {
  %0 = cleave.exp %a {cleave.layer = #cleave.layer<0>} : tensor<4xf32>
  // expected-error@+1 {{layer tag #cleave.layer<2147483648> is out of range: the 2 transformer blocks must be tagged 0..1 without a gap}}
  %1 = cleave.add %0, %a {cleave.layer = #cleave.layer<2147483648>} : tensor<4xf32>
  return %1 : tensor<4xf32>
}
