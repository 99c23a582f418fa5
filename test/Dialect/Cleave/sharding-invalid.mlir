// RUN: cleave-opt %s -split-input-file -verify-diagnostics

// expected-error@+1 {{axis 'dp' appears twice}}
cleave.mesh @mesh(dp = 2, dp = 4)

// -----

// expected-error@+1 {{axis 'tp' must have size >= 1, got 0}}
cleave.mesh @mesh(dp = 2, tp = 0)

// -----

cleave.mesh @mesh(dp = 2, tp = 4)
func.func @unknown_axis(%x: tensor<8x64xf32>) -> tensor<8x64xf32> {
  // expected-error@+1 {{mesh 'mesh' has no axis 'pp'}}
  %0 = cleave.shard %x : tensor<8x64xf32> to #cleave.sharding<@mesh, [[pp], []]>
  return %0 : tensor<8x64xf32>
}

// -----

cleave.mesh @mesh(dp = 2, tp = 4)
func.func @axis_twice(%x: tensor<8x64xf32>) -> tensor<8x64xf32> {
  // expected-error@+1 {{mesh axis 'tp' is used twice in one sharding}}
  %0 = cleave.shard %x : tensor<8x64xf32> to #cleave.sharding<@mesh, [[tp], []], partial = [tp]>
  return %0 : tensor<8x64xf32>
}

// -----

cleave.mesh @mesh(dp = 2, tp = 4)
// The vocabulary of GPT-2 does not split four ways: the error says how to pad.
// expected-error@+1 {{dimension 0 of size 50257 does not split into 4 equal parts; pad it to 50260 (e.g. the vocabulary) or shard it on fewer devices}}
func.func @indivisible(%w: tensor<50257x8xf32> {cleave.sharding = #cleave.sharding<@mesh, [[tp], []]>}) {
  return
}

// -----

cleave.mesh @mesh(dp = 2, tp = 4)
func.func @wrong_rank(%x: tensor<8x64xf32>) -> tensor<8x64xf32> {
  // expected-error@+1 {{sharding lists 1 dimensions for a tensor of rank 2}}
  %0 = cleave.shard %x : tensor<8x64xf32> to #cleave.sharding<@mesh, [[dp]]>
  return %0 : tensor<8x64xf32>
}

// -----

func.func @no_mesh(%x: tensor<8x64xf32>) -> tensor<8x64xf32> {
  // expected-error@+1 {{'nowhere' does not name a cleave.mesh}}
  %0 = cleave.all_reduce %x on @nowhere [tp] sum : tensor<8x64xf32>
  return %0 : tensor<8x64xf32>
}

// -----

cleave.mesh @mesh(dp = 2, tp = 4)
func.func @gather_shape(%x: tensor<8x64xf32>) -> tensor<8x64xf32> {
  // expected-error@+1 {{result type 'tensor<8x64xf32>' does not match the expected 'tensor<16x64xf32>'}}
  %0 = cleave.all_gather %x on @mesh [dp] dim 0 : tensor<8x64xf32> -> tensor<8x64xf32>
  return %0 : tensor<8x64xf32>
}

// -----

cleave.mesh @mesh(dp = 2, tp = 4)
func.func @scatter_indivisible(%x: tensor<6x64xf32>) -> tensor<1x64xf32> {
  // expected-error@+1 {{dimension 0 of size 6 does not split over 4 devices}}
  %0 = cleave.reduce_scatter %x on @mesh [tp] sum dim 0 : tensor<6x64xf32> -> tensor<1x64xf32>
  return %0 : tensor<1x64xf32>
}

// -----

cleave.mesh @mesh(dp = 2, tp = 4)
func.func @all_to_all_dims(%x: tensor<8x64xf32>) -> tensor<8x64xf32> {
  // expected-error@+1 {{split and concat dimensions must be in [0, 2)}}
  %0 = cleave.all_to_all %x on @mesh [tp] split 2 concat 0 : tensor<8x64xf32> -> tensor<8x64xf32>
  return %0 : tensor<8x64xf32>
}

// -----

cleave.mesh @mesh(dp = 2, tp = 4)
func.func @no_axes(%x: tensor<8x64xf32>) -> tensor<8x64xf32> {
  // expected-error@+1 {{needs at least one mesh axis}}
  %0 = cleave.all_reduce %x on @mesh [] sum : tensor<8x64xf32>
  return %0 : tensor<8x64xf32>
}

// -----

cleave.mesh @mesh(dp = 2)
func.func @negative_priority(%x: tensor<8x64xf32>) -> tensor<8x64xf32> {
  // expected-error@+1 {{priority must not be negative (0 is the highest)}}
  %0 = cleave.shard %x : tensor<8x64xf32> to #cleave.sharding<@mesh, [[dp], []]> priority -1
  return %0 : tensor<8x64xf32>
}

// -----

cleave.mesh @mesh(dp = 2)
func.func @device_index_unknown_axis() -> tensor<i32> {
  // expected-error@+1 {{mesh 'mesh' has no axis 'tp'}}
  %0 = cleave.device_index on @mesh [tp] : tensor<i32>
  return %0 : tensor<i32>
}

// -----

func.func @iota_dim() -> tensor<2x4xi32> {
  // expected-error@+1 {{dimension 2 is out of range for 'tensor<2x4xi32>'}}
  %0 = cleave.iota dim 2 : tensor<2x4xi32>
  return %0 : tensor<2x4xi32>
}

// -----

func.func @iota_negative_dim() -> tensor<2x4xi32> {
  // expected-error@+1 {{dimension -1 is out of range for 'tensor<2x4xi32>'}}
  %0 = cleave.iota dim -1 : tensor<2x4xi32>
  return %0 : tensor<2x4xi32>
}

// -----

func.func @wait_for_argument(%x: tensor<8xf32>) -> tensor<8xf32> {
  // expected-error@+1 {{waits for an all_reduce, all_gather or reduce_scatter result, not a block argument}}
  %0 = cleave.wait %x : tensor<8xf32>
  return %0 : tensor<8xf32>
}

// -----

func.func @wait_for_compute(%x: tensor<8xf32>) -> tensor<8xf32> {
  %0 = cleave.exp %x : tensor<8xf32>
  // expected-error@+1 {{waits for an all_reduce, all_gather or reduce_scatter result, not cleave.exp}}
  %1 = cleave.wait %0 : tensor<8xf32>
  return %1 : tensor<8xf32>
}

// -----

cleave.mesh @mesh(dp = 2)
func.func @read_before_wait(%x: tensor<8xf32>) -> (tensor<8xf32>, tensor<8xf32>) {
  %0 = cleave.all_reduce %x on @mesh [dp] sum : tensor<8xf32>
  // expected-error@+1 {{must be the only reader of the collective's result}}
  %1 = cleave.wait %0 : tensor<8xf32>
  %2 = cleave.exp %0 : tensor<8xf32>
  return %1, %2 : tensor<8xf32>, tensor<8xf32>
}


// -----

cleave.mesh @mesh(dp = 2)
func.func @wait_for_max(%x: tensor<8xf32>) -> tensor<8xf32> {
  %0 = cleave.all_reduce %x on @mesh [dp] max : tensor<8xf32>
  // expected-error@+1 {{waits for a max; only sums are started ahead of their readers}}
  %1 = cleave.wait %0 : tensor<8xf32>
  return %1 : tensor<8xf32>
}

// -----

cleave.mesh @mesh(dp = 2)
func.func @wait_for_strided(%x: tensor<4x8xf32>) -> tensor<4x4xf32> {
  %0 = cleave.reduce_scatter %x on @mesh [dp] sum dim 1 : tensor<4x8xf32> -> tensor<4x4xf32>
  // expected-error@+1 {{waits for a collective along dimension 1 of 'tensor<4x8xf32>', whose blocks are not contiguous}}
  %1 = cleave.wait %0 : tensor<4x4xf32>
  return %1 : tensor<4x4xf32>
}
