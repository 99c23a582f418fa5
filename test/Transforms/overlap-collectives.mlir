// RUN: cleave-opt %s -split-input-file --pass-pipeline='builtin.module(func.func(cleave-overlap-collectives))' | FileCheck %s
// Collectives already waited for are left alone: twice is once.
// RUN: cleave-opt %s -split-input-file --pass-pipeline='builtin.module(func.func(cleave-overlap-collectives,cleave-overlap-collectives))' | FileCheck %s
// RUN: cleave-opt %s -split-input-file --pass-pipeline='builtin.module(func.func(cleave-overlap-collectives{bucket-mb=0.0002}))' | FileCheck %s --check-prefix=SMALL
// RUN: not cleave-opt %s -split-input-file --pass-pipeline='builtin.module(func.func(cleave-overlap-collectives{bucket-mb=0}))' -o /dev/null 2>&1 | FileCheck %s --check-prefix=BAD

// A forward under ZeRO-3: layer 1's weights (one through a cast, as mixed
// precision gathers them) are gathered while layer 0 computes, as one
// bucket, and waited for where layer 1 first reads them. Layer 0's gather
// has no earlier segment to hide under: it stays where it is, unwaited.
// CHECK-LABEL: func.func @prefetch
// CHECK-NEXT:    %[[W0:.*]] = cleave.all_gather %arg0 {{.*}}layer<0>
// CHECK-NEXT:    %[[C1:.*]] = cleave.cast %arg2 {{.*}}layer<1>
// CHECK-NEXT:    %[[G1:.*]] = cleave.all_gather %[[C1]] {{.*}}layer<1>
// CHECK-NEXT:    %[[B1:.*]] = cleave.all_gather %arg3 {{.*}}layer<1>
// CHECK-NEXT:    %[[H:.*]] = cleave.matmul %arg1, %[[W0]] {{.*}}layer<0>
// CHECK-NEXT:    %[[R:.*]] = cleave.gelu %[[H]] {{.*}}layer<0>
// CHECK-NEXT:    %[[RC:.*]] = cleave.cast %[[R]]
// CHECK-NEXT:    %[[G1W:.*]] = cleave.wait %[[G1]] {cleave.layer = #cleave.layer<1>} : tensor<32x32xbf16>
// CHECK-NEXT:    %[[Y:.*]] = cleave.matmul %[[RC]], %[[G1W]]
// CHECK-NEXT:    %[[B1W:.*]] = cleave.wait %[[B1]]
// CHECK-NEXT:    %[[S:.*]] = cleave.slice %[[B1W]]
// CHECK-NEXT:    cleave.add %[[Y]], %[[S]]
cleave.mesh @mesh(dp = 2)
func.func @prefetch(%w0: tensor<16x32xf32>, %x: tensor<8x32xf32>, %w1: tensor<16x32xf32>, %b1: tensor<8x32xbf16>) -> tensor<8x32xbf16> {
  %g0 = cleave.all_gather %w0 on @mesh [dp] dim 0 {cleave.layer = #cleave.layer<0>} : tensor<16x32xf32> -> tensor<32x32xf32>
  %h = cleave.matmul %x, %g0 {cleave.layer = #cleave.layer<0>} : tensor<8x32xf32>, tensor<32x32xf32> -> tensor<8x32xf32>
  %r = cleave.gelu %h {cleave.layer = #cleave.layer<0>} : tensor<8x32xf32>
  %c1 = cleave.cast %w1 {cleave.layer = #cleave.layer<1>} : tensor<16x32xf32> to tensor<16x32xbf16>
  %g1 = cleave.all_gather %c1 on @mesh [dp] dim 0 {cleave.layer = #cleave.layer<1>} : tensor<16x32xbf16> -> tensor<32x32xbf16>
  %rc = cleave.cast %r {cleave.layer = #cleave.layer<1>} : tensor<8x32xf32> to tensor<8x32xbf16>
  %y = cleave.matmul %rc, %g1 {cleave.layer = #cleave.layer<1>} : tensor<8x32xbf16>, tensor<32x32xbf16> -> tensor<8x32xbf16>
  %gb = cleave.all_gather %b1 on @mesh [dp] dim 0 {cleave.layer = #cleave.layer<1>} : tensor<8x32xbf16> -> tensor<16x32xbf16>
  %s = cleave.slice %gb [0, 0] {cleave.layer = #cleave.layer<1>} : tensor<16x32xbf16> -> tensor<8x32xbf16>
  %z = cleave.add %y, %s {cleave.layer = #cleave.layer<1>} : tensor<8x32xbf16>
  return %z : tensor<8x32xbf16>
}

// -----

// A backward under ZeRO-2: each gradient's reduce-scatter over dp starts
// as soon as the gradient is computed, with the others of its layer once
// the last is (one bucket), and is waited for two layers on: layer 1's
// while layer 0 computes, before the embedding's first op. Layer 0's
// bucket has no second segment after it and is waited for at its first
// reader, the return. With a 210-byte bucket cap (SMALL), each of layer
// 1's 256-byte gradients is a bucket of its own and starts at once.
// CHECK-LABEL: func.func @gradients
// CHECK-NEXT:    %[[D1:.*]] = cleave.exp %arg0 {{.*}}layer<1>
// CHECK-NEXT:    %[[E1:.*]] = cleave.exp %arg1 {{.*}}layer<1>
// CHECK-NEXT:    %[[S1:.*]] = cleave.reduce_scatter %[[D1]] {{.*}}layer<1>
// CHECK-NEXT:    %[[T1:.*]] = cleave.reduce_scatter %[[E1]] {{.*}}layer<1>
// CHECK-NEXT:    %[[D0:.*]] = cleave.exp %[[D1]] {{.*}}layer<0>
// CHECK-NEXT:    %[[S0:.*]] = cleave.reduce_scatter %[[D0]] {{.*}}layer<0>
// CHECK-NEXT:    %[[S1W:.*]] = cleave.wait %[[S1]]
// CHECK-NEXT:    %[[T1W:.*]] = cleave.wait %[[T1]]
// CHECK-NEXT:    cleave.exp %[[D0]] {{.*}}layer<embed>
// CHECK-NEXT:    %[[S0W:.*]] = cleave.wait %[[S0]]
// CHECK-NEXT:    return %[[S1W]], %[[T1W]], %[[S0W]]
// SMALL-LABEL: func.func @gradients
// SMALL-NEXT:    %[[D1:.*]] = cleave.exp %arg0
// SMALL-NEXT:    cleave.reduce_scatter %[[D1]]
// SMALL-NEXT:    %[[E1:.*]] = cleave.exp %arg1
// SMALL-NEXT:    cleave.reduce_scatter %[[E1]]
cleave.mesh @mesh(dp = 2)
func.func @gradients(%a: tensor<64xf32>, %b: tensor<64xf32>) -> (tensor<32xf32>, tensor<32xf32>, tensor<32xf32>, tensor<64xf32>) {
  %d1 = cleave.exp %a {cleave.layer = #cleave.layer<1>} : tensor<64xf32>
  %e1 = cleave.exp %b {cleave.layer = #cleave.layer<1>} : tensor<64xf32>
  %d0 = cleave.exp %d1 {cleave.layer = #cleave.layer<0>} : tensor<64xf32>
  %de = cleave.exp %d0 {cleave.layer = #cleave.layer<embed>} : tensor<64xf32>
  %s1 = cleave.reduce_scatter %d1 on @mesh [dp] sum dim 0 {cleave.layer = #cleave.layer<1>} : tensor<64xf32> -> tensor<32xf32>
  %t1 = cleave.reduce_scatter %e1 on @mesh [dp] sum dim 0 {cleave.layer = #cleave.layer<1>} : tensor<64xf32> -> tensor<32xf32>
  %s0 = cleave.reduce_scatter %d0 on @mesh [dp] sum dim 0 {cleave.layer = #cleave.layer<0>} : tensor<64xf32> -> tensor<32xf32>
  return %s1, %t1, %s0, %de : tensor<32xf32>, tensor<32xf32>, tensor<32xf32>, tensor<64xf32>
}

// -----

// Mixed precision after fusion: the parameter's cast is a kernel of one
// cast (it moves with its gather, casts first), and each gradient's sum is
// read by its cast back to f32, which moves down to the cast's own reader
// so that the sum can run behind layer 0.
// CHECK-LABEL: func.func @mixed_precision
// CHECK-NEXT:    %[[C:.*]] = cleave.fused(%arg1)
// CHECK:         %[[G:.*]] = cleave.all_gather %[[C]]
// CHECK-NEXT:    %[[H:.*]] = cleave.exp %arg0 {{.*}}layer<0>
// CHECK-NEXT:    %[[GW:.*]] = cleave.wait %[[G]]
// CHECK-NEXT:    %[[D:.*]] = cleave.matmul %[[H]], %[[GW]] {{.*}}layer<1>
// CHECK-NEXT:    %[[S:.*]] = cleave.reduce_scatter %[[D]]
// CHECK-NEXT:    cleave.exp %[[D]] {{.*}}layer<0>
// CHECK-NEXT:    %[[SW:.*]] = cleave.wait %[[S]]
// CHECK-NEXT:    %[[F:.*]] = cleave.fused(%[[SW]])
// CHECK:         cleave.add %[[F]], %[[F]] {{.*}}layer<embed>
cleave.mesh @mesh(dp = 2)
func.func @mixed_precision(%x: tensor<8x16xbf16>, %w: tensor<8x16xf32>) -> (tensor<4x16xf32>, tensor<8x16xbf16>) {
  %h = cleave.exp %x {cleave.layer = #cleave.layer<0>} : tensor<8x16xbf16>
  %c = cleave.fused(%w) {cleave.layer = #cleave.layer<1>} : (tensor<8x16xf32>) -> tensor<8x16xbf16> {
  ^bb0(%a: tensor<8x16xf32>):
    %0 = cleave.cast %a : tensor<8x16xf32> to tensor<8x16xbf16>
    cleave.yield %0 : tensor<8x16xbf16>
  }
  %g = cleave.all_gather %c on @mesh [dp] dim 0 {cleave.layer = #cleave.layer<1>} : tensor<8x16xbf16> -> tensor<16x16xbf16>
  %d = cleave.matmul %h, %g {cleave.layer = #cleave.layer<1>} : tensor<8x16xbf16>, tensor<16x16xbf16> -> tensor<8x16xbf16>
  %s = cleave.reduce_scatter %d on @mesh [dp] sum dim 0 {cleave.layer = #cleave.layer<1>} : tensor<8x16xbf16> -> tensor<4x16xbf16>
  %f = cleave.fused(%s) {cleave.layer = #cleave.layer<1>} : (tensor<4x16xbf16>) -> tensor<4x16xf32> {
  ^bb0(%a: tensor<4x16xbf16>):
    %0 = cleave.cast %a : tensor<4x16xbf16> to tensor<4x16xf32>
    cleave.yield %0 : tensor<4x16xf32>
  }
  %e = cleave.exp %d {cleave.layer = #cleave.layer<0>} : tensor<8x16xbf16>
  %u = cleave.add %f, %f {cleave.layer = #cleave.layer<embed>} : tensor<4x16xf32>
  return %u, %e : tensor<4x16xf32>, tensor<8x16xbf16>
}

// -----

// Left as they are: a sum over tp (an activation's, read at once), a dp sum
// first read in its own segment, a max, a split whose blocks are not
// contiguous, and a gather of a computed value.
// CHECK-LABEL: func.func @unchanged
// CHECK-NOT:     cleave.wait
// CHECK:         return
cleave.mesh @mesh(dp = 2, tp = 2)
func.func @unchanged(%a: tensor<4x8xf32>, %w: tensor<4x8xf32>) -> (tensor<4x8xf32>, tensor<4x8xf32>, tensor<4x4xf32>, tensor<8x8xf32>) {
  %x = cleave.exp %a {cleave.layer = #cleave.layer<0>} : tensor<4x8xf32>
  %t = cleave.all_reduce %x on @mesh [tp] sum {cleave.layer = #cleave.layer<0>} : tensor<4x8xf32>
  %d = cleave.all_reduce %x on @mesh [dp] sum {cleave.layer = #cleave.layer<0>} : tensor<4x8xf32>
  %m = cleave.all_reduce %x on @mesh [dp] max {cleave.layer = #cleave.layer<0>} : tensor<4x8xf32>
  %u = cleave.add %t, %d {cleave.layer = #cleave.layer<0>} : tensor<4x8xf32>
  %v = cleave.exp %a {cleave.layer = #cleave.layer<1>} : tensor<4x8xf32>
  %s = cleave.reduce_scatter %v on @mesh [dp] sum dim 1 {cleave.layer = #cleave.layer<1>} : tensor<4x8xf32> -> tensor<4x4xf32>
  %g = cleave.all_gather %x on @mesh [dp] dim 0 {cleave.layer = #cleave.layer<1>} : tensor<4x8xf32> -> tensor<8x8xf32>
  %e = cleave.exp %m {cleave.layer = #cleave.layer<head>} : tensor<4x8xf32>
  return %u, %e, %s, %g : tensor<4x8xf32>, tensor<4x8xf32>, tensor<4x4xf32>, tensor<8x8xf32>
}

// -----

// BAD: error: cleave-overlap-collectives: bucket-mb must be positive, got 0
func.func @bad_bucket(%a: tensor<4xf32>) -> tensor<4xf32> {
  return %a : tensor<4xf32>
}
