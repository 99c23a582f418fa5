// RUN: cleave-opt %s -split-input-file -verify-diagnostics --cleave-shard-data-parallel=function=f
// RUN: echo 'module {}' | not cleave-opt --cleave-parallelize 2>&1 | FileCheck %s --check-prefix=NO-MESH
// RUN: echo 'module {}' | not cleave-opt '--cleave-parallelize=mesh=dp=0' 2>&1 | FileCheck %s --check-prefix=BAD-MESH
// RUN: echo 'module {}' | not cleave-opt '--cleave-parallelize=mesh=pp=2' 2>&1 | FileCheck %s --check-prefix=NO-CANONICAL
// RUN: echo 'module {}' | not cleave-opt '--cleave-parallelize=mesh=dp=2 strategy=fsdp' 2>&1 | FileCheck %s --check-prefix=UNKNOWN
// RUN: echo 'module {}' | not cleave-opt '--cleave-parallelize=mesh=dp=2 strategy=,' 2>&1 | FileCheck %s --check-prefix=EMPTY
// RUN: not cleave-opt %s '--cleave-parallelize=mesh=dp=4' -o /dev/null 2>&1 | FileCheck %s --check-prefix=DIFFERS
// RUN: echo 'module {}' | not cleave-opt '--cleave-shard-zero=stage=4' 2>&1 | FileCheck %s --check-prefix=STAGE

// NO-MESH: cleave-parallelize needs a mesh, e.g. mesh=dp=2,tp=2
// BAD-MESH: cleave-parallelize: a mesh is axis=size pairs like dp=2,tp=2, got 'dp=0'
// NO-CANONICAL: axis 'pp' has no canonical strategy (dp: data parallel, tp: Megatron); name one with strategy=
// UNKNOWN: unknown strategy 'fsdp' (dp, megatron, megatron-sp, search, zero1, zero2, zero3)
// EMPTY: cleave-parallelize: an empty strategy in strategy=
// DIFFERS: [[@LINE+3]]:1: error: cleave-parallelize: the module's @mesh differs from the requested mesh
// STAGE: ZeRO stage must be 1, 2 or 3, got 4

cleave.mesh @mesh(dp = 2)
// expected-error@+1 {{'tokens': dimension 0 of size 3 does not split over dp=2; pad it to 4 or use fewer devices}}
func.func @f(%x: tensor<3x4xi32> {cleave.input = "tokens"}) -> tensor<3x4xi32> {
  return %x : tensor<3x4xi32>
}

// -----

// expected-error@+1 {{the data-parallel strategy needs exactly one cleave.mesh with axis 'dp', found 0}}
module {
  cleave.mesh @mesh(tp = 2)
  func.func @f(%x: tensor<4xf32> {cleave.input = "x"}) -> tensor<4xf32> {
    return %x : tensor<4xf32>
  }
}

// -----

// expected-error@+1 {{no function 'f' to split the batch of}}
module {
  cleave.mesh @mesh(dp = 2)
}
