// RUN: cleave-translate --cleave-to-cuda %s -split-input-file -verify-diagnostics

// expected-error@+1 {{function 'unplanned' has no memory plan: run cleave-plan-memory first}}
func.func @unplanned(%a: tensor<4xf32>) -> tensor<4xf32> {
  %0 = cleave.exp %a : tensor<4xf32>
  return %0 : tensor<4xf32>
}

// -----

func.func @missing_offset(%a: tensor<4xf32>) -> tensor<4xf32> attributes {cleave.arena_bytes = 256 : i64} {
  // expected-error@+1 {{has no arena offset: run cleave-plan-memory first}}
  %0 = cleave.exp %a : tensor<4xf32>
  return %0 : tensor<4xf32>
}

// -----

func.func @outside_arena(%a: tensor<4xf32>) -> tensor<4xf32> attributes {cleave.arena_bytes = 256 : i64} {
  // expected-error@+1 {{arena offset 256 + 16 bytes lies outside the 256-byte arena}}
  %0 = cleave.exp %a {cleave.arena_offsets = array<i64: 256>} : tensor<4xf32>
  return %0 : tensor<4xf32>
}

// -----

// expected-error@+1 {{no function has cleave.role step or forward; choose the entry with --cleave-entry}}
module {
  func.func @a() attributes {cleave.arena_bytes = 0 : i64} {
    return
  }
  func.func @b() attributes {cleave.arena_bytes = 0 : i64} {
    return
  }
}

// -----

// expected-error@+1 {{argument 0 must be a non-empty static tensor of rank <= 8, got 'tensor<0x4xf32>'}}
func.func @empty_argument(%a: tensor<0x4xf32>) attributes {cleave.arena_bytes = 0 : i64} {
  return
}

// -----

func.func @empty_result(%a: tensor<4xf32>) attributes {cleave.arena_bytes = 256 : i64} {
  // expected-error@+1 {{cannot emit the empty tensor 'tensor<0xf32>'}}
  %0 = cleave.fill 1.0 {cleave.arena_offsets = array<i64: 0>} : tensor<0xf32>
  return
}

// -----

// A pending sum cannot leave the program: the runtime passes complete values.
cleave.mesh @mesh(tp = 2)
// expected-error @+1 {{a pending sum (partial) cannot cross the program's boundary: the runtime passes complete values only}}
func.func @partial_result(%x: tensor<4xf32> {cleave.block = #cleave.sharding<@mesh, [[]]>})
    -> (tensor<4xf32> {cleave.block = #cleave.sharding<@mesh, [[]], partial = [tp]>})
    attributes {cleave.arena_bytes = 0 : i64} {
  return %x : tensor<4xf32>
}

// -----

// The runtime runs one mesh per program.
// expected-error @+1 {{a partitioned module needs exactly one cleave.mesh, found 2}}
module {
  cleave.mesh @a(dp = 2)
  cleave.mesh @b(tp = 2)
  func.func @two_meshes(%x: tensor<4xf32> {cleave.block = #cleave.sharding<@a, [[dp]]>}) -> tensor<4xf32> {
    return %x : tensor<4xf32>
  }
}
