// RUN: cleave-opt %s -split-input-file -verify-diagnostics --cleave-propagate-sharding

// Two constraints of one priority that split one value differently.
cleave.mesh @mesh(dp = 2, tp = 2)
func.func @same_value(%x: tensor<4x8xf32>) -> (tensor<4x8xf32>, tensor<4x8xf32>) {
  // expected-note@+1 {{the other sharding comes from here}}
  %0 = cleave.shard %x : tensor<4x8xf32> to #cleave.sharding<@mesh, [[dp], []]> priority 3
  // expected-error@+1 {{conflicting shardings of equal priority 3 for the same value}}
  %1 = cleave.shard %x : tensor<4x8xf32> to #cleave.sharding<@mesh, [[], [dp]]> priority 3
  return %0, %1 : tensor<4x8xf32>, tensor<4x8xf32>
}

// -----

// Two constraints of one priority that meet at an op and split one
// dimension differently.
cleave.mesh @mesh(dp = 2, tp = 2)
func.func @same_op(%x: tensor<4x8xf32>, %y: tensor<4x8xf32>) -> tensor<4x8xf32> {
  // expected-note@+1 {{one of them comes from here}}
  %0 = cleave.shard %x : tensor<4x8xf32> to #cleave.sharding<@mesh, [[dp], []]>
  // expected-note@+1 {{one of them comes from here}}
  %1 = cleave.shard %y : tensor<4x8xf32> to #cleave.sharding<@mesh, [[tp], []]>
  // expected-error@+1 {{conflicting shardings of equal priority 0: its operands and results ask for different splits}}
  %2 = cleave.add %0, %1 : tensor<4x8xf32>
  return %2 : tensor<4x8xf32>
}

// -----

cleave.mesh @a(dp = 2)
cleave.mesh @b(dp = 2)
// expected-note@+1 {{and this one @a}}
func.func @two_meshes(%x: tensor<4xf32> {cleave.sharding = #cleave.sharding<@a, [[dp]]>}) -> tensor<4xf32> {
  // expected-error@+1 {{shardings of one function must name one mesh, but this one names @b}}
  %0 = cleave.shard %x : tensor<4xf32> to #cleave.sharding<@b, [[dp]]>
  return %0 : tensor<4xf32>
}

// -----

cleave.mesh @mesh(dp = 2)
func.func @fused(%x: tensor<4xf32> {cleave.sharding = #cleave.sharding<@mesh, [[dp]]>}) -> tensor<4xf32> {
  // expected-error@+1 {{has no sharding rule; propagate shardings before fusing or partitioning}}
  %0 = cleave.fused(%x) : (tensor<4xf32>) -> tensor<4xf32> {
  ^bb0(%a: tensor<4xf32>):
    %1 = cleave.exp %a : tensor<4xf32>
    cleave.yield %1 : tensor<4xf32>
  }
  return %0 : tensor<4xf32>
}
