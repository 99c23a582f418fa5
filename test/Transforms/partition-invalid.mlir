// RUN: cleave-opt %s -split-input-file -verify-diagnostics --cleave-partition

cleave.mesh @mesh(dp = 2)
cleave.mesh @other(tp = 2)
func.func @two_meshes(%x: tensor<4x8xf32> {cleave.sharding = #cleave.sharding<@mesh, [[dp], []]>})
    -> (tensor<4x8xf32> {cleave.sharding = #cleave.sharding<@mesh, [[dp], []]>}) {
  // expected-error@+1 {{a result is sharded on @other, the function on @mesh}}
  %0 = cleave.neg %x {cleave.sharding = [#cleave.sharding<@other, [[tp], []]>]} : tensor<4x8xf32>
  return %0 : tensor<4x8xf32>
}

// -----

cleave.mesh @mesh(dp = 2)
func.func @unannotated(%x: tensor<4x8xf32> {cleave.sharding = #cleave.sharding<@mesh, [[dp], []]>})
    -> (tensor<4x8xf32> {cleave.sharding = #cleave.sharding<@mesh, [[dp], []]>}) {
  // expected-error@+1 {{has no sharding; run cleave-propagate-sharding first}}
  %0 = cleave.neg %x : tensor<4x8xf32>
  return %0 : tensor<4x8xf32>
}

// -----

cleave.mesh @mesh(dp = 2)
// expected-error@+1 {{argument 0 cannot be a pending sum}}
func.func @pending_argument(%x: tensor<4x8xf32> {cleave.sharding = #cleave.sharding<@mesh, [[], []], partial = [dp]>})
    -> (tensor<4x8xf32> {cleave.sharding = #cleave.sharding<@mesh, [[], []]>}) {
  return %x : tensor<4x8xf32>
}

// -----

cleave.mesh @mesh(dp = 2)
cleave.mesh @other(dp = 2)
func.func @foreign_constraint(%x: tensor<4x8xf32> {cleave.sharding = #cleave.sharding<@mesh, [[dp], []]>})
    -> (tensor<4x8xf32> {cleave.sharding = #cleave.sharding<@mesh, [[dp], []]>}) {
  // expected-error@+1 {{the constraint is sharded on @other, the function on @mesh}}
  %0 = cleave.shard %x : tensor<4x8xf32> to #cleave.sharding<@other, [[dp], []]> {cleave.sharding = [#cleave.sharding<@mesh, [[dp], []]>]}
  return %0 : tensor<4x8xf32>
}
