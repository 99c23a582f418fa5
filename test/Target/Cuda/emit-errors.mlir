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

// -----

// An output placed over an input that is still live (the op reads it while
// writing): the program would compute a wrong value, so it is refused.
func.func @overlap_live_input(%a: tensor<4xf32>) -> tensor<4xf32> attributes {cleave.arena_bytes = 256 : i64} {
  // expected-note@+1 {{that result is here}}
  %0 = cleave.exp %a {cleave.arena_offsets = array<i64: 0>} : tensor<4xf32>
  // expected-error@+1 {{result 0 at arena bytes [8, 24) overlaps result 0 of 'cleave.exp', which is still live: the memory plan is wrong}}
  %1 = cleave.exp %0 {cleave.arena_offsets = array<i64: 8>} : tensor<4xf32>
  return %1 : tensor<4xf32>
}

// -----

// A buffer whose last reader has run may be reused (%2 takes %0's bytes),
// but not one still to be read (%3 over %1).
func.func @reuse_after_last_read(%a: tensor<4xf32>) -> tensor<4xf32> attributes {cleave.arena_bytes = 512 : i64} {
  %0 = cleave.exp %a {cleave.arena_offsets = array<i64: 0>} : tensor<4xf32>
  // expected-note@+1 {{that result is here}}
  %1 = cleave.exp %0 {cleave.arena_offsets = array<i64: 256>} : tensor<4xf32>
  %2 = cleave.exp %1 {cleave.arena_offsets = array<i64: 0>} : tensor<4xf32>
  // expected-error@+1 {{result 0 at arena bytes [256, 272) overlaps result 0 of 'cleave.exp', which is still live: the memory plan is wrong}}
  %3 = cleave.add %1, %2 {cleave.arena_offsets = array<i64: 256>} : tensor<4xf32>
  return %3 : tensor<4xf32>
}

// -----

// A size past any device is refused, not wrapped around to a small one.
func.func @huge_result() attributes {cleave.arena_bytes = 256 : i64} {
  // expected-error@+1 {{result 0 of 9.223372e+18 bytes is too large for an arena}}
  %0 = cleave.fill 1.0 {cleave.arena_offsets = array<i64: 0>} : tensor<2305843009213693952xf32>
  return
}
