// RUN: cleave-opt %s -split-input-file --cleave-plan-memory=report=true | FileCheck %s

// Each tensor<64xf32> takes 256 bytes. A buffer is freed after its last
// reader has written its result, so the chain ping-pongs between two
// buffers and never writes over its own operand: peak 512 bytes.
// CHECK: arena: chain: 512 bytes, 4 buffers
// CHECK-LABEL: func.func @chain
// CHECK-SAME:    attributes {cleave.arena_bytes = 512 : i64}
// CHECK:         cleave.exp %{{.*}} {cleave.arena_offsets = array<i64: 0>}
// CHECK:         cleave.exp %{{.*}} {cleave.arena_offsets = array<i64: 256>}
// CHECK:         cleave.exp %{{.*}} {cleave.arena_offsets = array<i64: 0>}
// CHECK:         cleave.exp %{{.*}} {cleave.arena_offsets = array<i64: 256>}
func.func @chain(%a: tensor<64xf32>) -> tensor<64xf32> {
  %0 = cleave.exp %a : tensor<64xf32>
  %1 = cleave.exp %0 : tensor<64xf32>
  %2 = cleave.exp %1 : tensor<64xf32>
  %3 = cleave.exp %2 : tensor<64xf32>
  return %3 : tensor<64xf32>
}

// -----

// Best fit over the gaps freed buffers leave, checked by hand:
//   %0 1024 B at 0, %1 256 B at 1024, %2 1024 B at 1280 (free %0),
//   %3 256 B at 0 (the only gap; free %1 -> gap [256, 1280)),
//   %4 256 B at 256. Returned values stay live: peak 2304.
// CHECK: arena: gaps: 2304 bytes, 5 buffers
// CHECK-LABEL: func.func @gaps
// CHECK-SAME:    attributes {cleave.arena_bytes = 2304 : i64}
// CHECK:         cleave.fill {{.*}}arena_offsets = array<i64: 0>
// CHECK:         cleave.fill {{.*}}arena_offsets = array<i64: 1024>
// CHECK:         cleave.exp {{.*}}arena_offsets = array<i64: 1280>
// CHECK:         cleave.exp {{.*}}arena_offsets = array<i64: 0>
// CHECK:         cleave.add {{.*}}arena_offsets = array<i64: 256>
func.func @gaps() -> (tensor<256xf32>, tensor<64xf32>) {
  %0 = cleave.fill 1.0 : tensor<256xf32>
  %1 = cleave.fill 2.0 : tensor<64xf32>
  %2 = cleave.exp %0 : tensor<256xf32>
  %3 = cleave.exp %1 : tensor<64xf32>
  %4 = cleave.add %3, %3 : tensor<64xf32>
  return %2, %4 : tensor<256xf32>, tensor<64xf32>
}

// -----

// A reshape moves no data: it gets no offset, and its operand's buffer
// stays live until the reshape's last use. Sizes round up to 256 bytes.
// CHECK: arena: alias: 768 bytes, 3 buffers
// CHECK-LABEL: func.func @alias
// CHECK:         cleave.exp {{.*}}arena_offsets = array<i64: 0>
// CHECK:         cleave.reshape
// CHECK-NOT:       arena_offsets
// CHECK-SAME:      tensor<2x4xf32>
// CHECK:         cleave.neg {{.*}}arena_offsets = array<i64: 256>
// CHECK:         cleave.add {{.*}}arena_offsets = array<i64: 512>
func.func @alias(%a: tensor<8xf32>, %b: tensor<2x4xf32>) -> tensor<2x4xf32> {
  %0 = cleave.exp %a : tensor<8xf32>
  %1 = cleave.reshape %0 : tensor<8xf32> -> tensor<2x4xf32>
  %2 = cleave.neg %b : tensor<2x4xf32>
  %3 = cleave.add %1, %2 : tensor<2x4xf32>
  return %3 : tensor<2x4xf32>
}

// -----

// Function arguments live outside the arena: returning one needs none.
// CHECK: arena: passthrough: 0 bytes, 0 buffers
func.func @passthrough(%a: tensor<8xf32>) -> tensor<8xf32> {
  return %a : tensor<8xf32>
}

// -----

// A buffer whose last reader is a dead reshape is free after it.
// CHECK: arena: dead_reshape: 256 bytes, 2 buffers
func.func @dead_reshape(%a: tensor<8xf32>, %b: tensor<8xf32>) -> tensor<8xf32> {
  %0 = cleave.exp %a : tensor<8xf32>
  %1 = cleave.reshape %0 : tensor<8xf32> -> tensor<2x4xf32>
  %2 = cleave.exp %b : tensor<8xf32>
  return %2 : tensor<8xf32>
}

// -----

// Declarations have no body to plan.
// CHECK-NOT: arena: declared
func.func private @declared(tensor<8xf32>) -> tensor<8xf32>

// -----

// A started collective reads its input until its wait: %x's buffer (0) is
// not reused by %b, computed in between (without the wait, %b would take
// it). The wait gets no offset: its result is the gather's buffer (256),
// free again once the slice, its last reader, is written.
// CHECK: arena: started: 1024 bytes, 5 buffers
// CHECK-LABEL: func.func @started
// CHECK:         cleave.exp {{.*}}arena_offsets = array<i64: 0>
// CHECK:         cleave.all_gather {{.*}}arena_offsets = array<i64: 256>
// CHECK:         cleave.exp {{.*}}arena_offsets = array<i64: 768>
// CHECK:         cleave.wait %{{[0-9]+}} : tensor<128xf32>
// CHECK:         cleave.slice {{.*}}arena_offsets = array<i64: 0>
// CHECK:         cleave.add {{.*}}arena_offsets = array<i64: 256>
cleave.mesh @mesh(dp = 2)
func.func @started(%a: tensor<64xf32>, %c: tensor<64xf32>) -> tensor<64xf32> {
  %x = cleave.exp %a : tensor<64xf32>
  %g = cleave.all_gather %x on @mesh [dp] dim 0 : tensor<64xf32> -> tensor<128xf32>
  %b = cleave.exp %c : tensor<64xf32>
  %w = cleave.wait %g : tensor<128xf32>
  %s = cleave.slice %w [0] : tensor<128xf32> -> tensor<64xf32>
  %y = cleave.add %s, %b : tensor<64xf32>
  return %y : tensor<64xf32>
}
