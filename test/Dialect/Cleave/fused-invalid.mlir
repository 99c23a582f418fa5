// RUN: cleave-opt %s -split-input-file -verify-diagnostics

func.func @no_results(%a: tensor<4xf32>) {
  // expected-error@+1 {{must have at least one result}}
  cleave.fused(%a) : (tensor<4xf32>) -> () {
  ^bb0(%x: tensor<4xf32>):
    cleave.yield
  }
  return
}

// -----

func.func @mixed_shapes(%a: tensor<4xf32>, %b: tensor<8xf32>) -> (tensor<4xf32>, tensor<8xf32>) {
  // expected-error@+1 {{results must share one shape}}
  %0:2 = cleave.fused(%a, %b) : (tensor<4xf32>, tensor<8xf32>) -> (tensor<4xf32>, tensor<8xf32>) {
  ^bb0(%x: tensor<4xf32>, %y: tensor<8xf32>):
    cleave.yield %x, %y : tensor<4xf32>, tensor<8xf32>
  }
  return %0#0, %0#1 : tensor<4xf32>, tensor<8xf32>
}

// -----

func.func @not_elementwise(%a: tensor<4x4xf32>) -> tensor<4x4xf32> {
  %0 = cleave.fused(%a) : (tensor<4x4xf32>) -> tensor<4x4xf32> {
  ^bb0(%x: tensor<4x4xf32>):
    // expected-error@+1 {{cannot be part of a fused kernel}}
    %m = cleave.matmul %x, %x : tensor<4x4xf32>, tensor<4x4xf32> -> tensor<4x4xf32>
    cleave.yield %m : tensor<4x4xf32>
  }
  return %0 : tensor<4x4xf32>
}

// -----

func.func @unbroadcast_input(%a: tensor<4xf32>, %b: tensor<2x4xf32>) -> tensor<2x4xf32> {
  %0 = cleave.fused(%a, %b) : (tensor<4xf32>, tensor<2x4xf32>) -> tensor<2x4xf32> {
  ^bb0(%x: tensor<4xf32>, %y: tensor<2x4xf32>):
    // expected-error@+1 {{does not match the kernel's iteration shape}}
    %e = cleave.exp %x : tensor<4xf32>
    cleave.yield %y : tensor<2x4xf32>
  }
  return %0 : tensor<2x4xf32>
}

// -----

func.func @broadcast_of_body_value(%a: tensor<4xf32>) -> tensor<4xf32> {
  %0 = cleave.fused(%a) : (tensor<4xf32>) -> tensor<4xf32> {
  ^bb0(%x: tensor<4xf32>):
    %e = cleave.exp %x : tensor<4xf32>
    // expected-error@+1 {{must broadcast a kernel input}}
    %b = cleave.broadcast %e dims [0] : tensor<4xf32> -> tensor<4xf32>
    cleave.yield %b : tensor<4xf32>
  }
  return %0 : tensor<4xf32>
}

// -----

func.func @wrong_yield(%a: tensor<4xf32>) -> tensor<4xf32> {
  %0 = cleave.fused(%a) : (tensor<4xf32>) -> tensor<4xf32> {
  ^bb0(%x: tensor<4xf32>):
    %c = cleave.cast %x : tensor<4xf32> to tensor<4xf16>
    // expected-error@+1 {{must yield the kernel's result types}}
    cleave.yield %c : tensor<4xf16>
  }
  return %0 : tensor<4xf32>
}

// -----

func.func @bad_offsets(%a: tensor<4xf32>) -> tensor<4xf32> {
  // expected-error@+1 {{'cleave.arena_offsets' must be an i64 array with one offset per result}}
  %0 = cleave.exp %a {cleave.arena_offsets = array<i64: 0, 256>} : tensor<4xf32>
  return %0 : tensor<4xf32>
}

// -----

// expected-error@+1 {{'cleave.arena_bytes' must be a non-negative integer}}
func.func @bad_arena(%a: tensor<4xf32>) -> tensor<4xf32> attributes {cleave.arena_bytes = -1 : i64} {
  return %a : tensor<4xf32>
}

// -----

func.func @matmul_bias_shape(%x: tensor<4x8xf32>, %w: tensor<8x16xf32>, %b: tensor<4xf32>) {
  // expected-error@+1 {{bias must be 'tensor<16xf32>' (one value per result column), got 'tensor<4xf32>'}}
  %0 = cleave.matmul_bias %x, %w, %b : tensor<4x8xf32>, tensor<8x16xf32>, tensor<4xf32> -> tensor<4x16xf32>
  return
}

// -----

func.func @matmul_bias_element_type(%x: tensor<4x8xbf16>, %w: tensor<8x16xbf16>, %b: tensor<16xf32>) {
  // expected-error@+1 {{bias must be 'tensor<16xbf16>' (one value per result column), got 'tensor<16xf32>'}}
  %0 = cleave.matmul_bias %x, %w, %b : tensor<4x8xbf16>, tensor<8x16xbf16>, tensor<16xf32> -> tensor<4x16xbf16>
  return
}

// -----

func.func @matmul_bias_product(%x: tensor<4x8xf32>, %w: tensor<9x16xf32>, %b: tensor<16xf32>) {
  // expected-error@+1 {{contracting dimensions differ: lhs has 8, rhs has 9}}
  %0 = cleave.matmul_bias %x, %w, %b : tensor<4x8xf32>, tensor<9x16xf32>, tensor<16xf32> -> tensor<4x16xf32>
  return
}

// -----

func.func @matmul_bias_pre_activation_without_gelu(%x: tensor<4x8xf32>, %w: tensor<8x16xf32>, %b: tensor<16xf32>) {
  // expected-error@+1 {{has a pre_activation result without gelu}}
  %0, %1 = cleave.matmul_bias %x, %w, %b : tensor<4x8xf32>, tensor<8x16xf32>, tensor<16xf32> -> tensor<4x16xf32>, tensor<4x16xf32>
  return
}

// -----

func.func @matmul_bias_pre_activation_type(%x: tensor<4x8xf32>, %w: tensor<8x16xf32>, %b: tensor<16xf32>) {
  // expected-error@+1 {{pre_activation must have the result type 'tensor<4x16xf32>', got 'tensor<4x16xbf16>'}}
  %0, %1 = cleave.matmul_bias %x, %w, %b gelu : tensor<4x8xf32>, tensor<8x16xf32>, tensor<16xf32> -> tensor<4x16xf32>, tensor<4x16xbf16>
  return
}
