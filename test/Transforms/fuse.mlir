// RUN: cleave-opt %s -split-input-file --cleave-fuse | FileCheck %s
// RUN: cleave-opt %s -split-input-file --cleave-fuse=epilogues=false | FileCheck %s --check-prefix=APART

// A matmul whose only use adds a bias broadcast along its rows, and the gelu
// of that sum, become one GEMM with a bias + gelu epilogue.
// CHECK-LABEL: func.func @bias_gelu
// CHECK-SAME:    (%[[X:.*]]: tensor<4x8xf32>, %[[W:.*]]: tensor<8x16xf32>, %[[B:.*]]: tensor<16xf32>)
// CHECK-NEXT:    %[[R:.*]] = cleave.matmul_bias %[[X]], %[[W]], %[[B]] gelu {cleave.layer = #cleave.layer<0>} : tensor<4x8xf32>, tensor<8x16xf32>, tensor<16xf32> -> tensor<4x16xf32>
// CHECK-NEXT:    return %[[R]]
// Without epilogues, the bias broadcast, the add and the gelu become one
// kernel; the matmul stays outside.
// APART-LABEL: func.func @bias_gelu
// APART:         %[[MM:.*]] = cleave.matmul
// APART-NEXT:    %[[K:.*]] = cleave.fused(%{{.*}}, %[[MM]]) {cleave.layer = #cleave.layer<0>} : (tensor<16xf32>, tensor<4x16xf32>) -> tensor<4x16xf32> {
// APART-NEXT:    ^bb0(%[[B:.*]]: tensor<16xf32>, %[[X:.*]]: tensor<4x16xf32>):
// APART-NEXT:      %[[BB:.*]] = cleave.broadcast %[[B]] dims [1]
// APART-NEXT:      %[[S:.*]] = cleave.add %[[X]], %[[BB]]
// APART-NEXT:      %[[G:.*]] = cleave.gelu %[[S]]
// APART-NEXT:      cleave.yield %[[G]] : tensor<4x16xf32>
// APART-NEXT:    }
// APART-NEXT:    return %[[K]]
// APART-NOT:     cleave.matmul_bias
func.func @bias_gelu(%x: tensor<4x8xf32>, %w: tensor<8x16xf32>, %b: tensor<16xf32>) -> tensor<4x16xf32> {
  %0 = cleave.matmul %x, %w {cleave.layer = #cleave.layer<0>} : tensor<4x8xf32>, tensor<8x16xf32> -> tensor<4x16xf32>
  %1 = cleave.broadcast %b dims [1] {cleave.layer = #cleave.layer<0>} : tensor<16xf32> -> tensor<4x16xf32>
  %2 = cleave.add %0, %1 {cleave.layer = #cleave.layer<0>} : tensor<4x16xf32>
  %3 = cleave.gelu %2 {cleave.layer = #cleave.layer<0>} : tensor<4x16xf32>
  return %3 : tensor<4x16xf32>
}

// -----

// When something besides the gelu reads the sum (the gelu's gradient, in a
// training step), the epilogue also stores it: a second result. A batched
// bf16 product with a transposed shared weight and the bias on the add's
// left match as well.
// CHECK-LABEL: func.func @kept_pre_activation
// CHECK-SAME:    (%[[X:.*]]: tensor<2x4x8xbf16>, %[[W:.*]]: tensor<16x8xbf16>, %[[B:.*]]: tensor<16xbf16>, %[[DY:.*]]: tensor<2x4x16xbf16>)
// CHECK-NEXT:    %[[R:.*]], %[[PRE:.*]] = cleave.matmul_bias %[[X]], %[[W]], %[[B]] transpose_rhs gelu : tensor<2x4x8xbf16>, tensor<16x8xbf16>, tensor<16xbf16> -> tensor<2x4x16xbf16>, tensor<2x4x16xbf16>
// CHECK-NEXT:    %[[K:.*]] = cleave.fused(%[[PRE]], %[[DY]])
// CHECK:           cleave.mul
// CHECK:         return %[[R]], %[[K]]
func.func @kept_pre_activation(%x: tensor<2x4x8xbf16>, %w: tensor<16x8xbf16>, %b: tensor<16xbf16>, %dy: tensor<2x4x16xbf16>) -> (tensor<2x4x16xbf16>, tensor<2x4x16xbf16>) {
  %0 = cleave.matmul %x, %w transpose_rhs : tensor<2x4x8xbf16>, tensor<16x8xbf16> -> tensor<2x4x16xbf16>
  %1 = cleave.broadcast %b dims [2] : tensor<16xbf16> -> tensor<2x4x16xbf16>
  %2 = cleave.add %1, %0 : tensor<2x4x16xbf16>
  %3 = cleave.gelu %2 : tensor<2x4x16xbf16>
  %4 = cleave.mul %2, %dy : tensor<2x4x16xbf16>
  return %3, %4 : tensor<2x4x16xbf16>, tensor<2x4x16xbf16>
}

// -----

// A bias alone is an epilogue too; the broadcast stays for its other user.
// CHECK-LABEL: func.func @bias_only
// CHECK-SAME:    (%[[X:.*]]: tensor<4x8xf32>, %[[W:.*]]: tensor<8x16xf32>, %[[B:.*]]: tensor<16xf32>)
// CHECK-NEXT:    %[[K:.*]] = cleave.fused(%[[B]])
// CHECK:           cleave.broadcast
// CHECK:           cleave.exp
// CHECK:         %[[R:.*]] = cleave.matmul_bias %[[X]], %[[W]], %[[B]] : tensor<4x8xf32>, tensor<8x16xf32>, tensor<16xf32> -> tensor<4x16xf32>
// CHECK-NEXT:    %[[S:.*]] = cleave.softmax %[[R]]
// CHECK:         return %[[S]], %[[K]]
func.func @bias_only(%x: tensor<4x8xf32>, %w: tensor<8x16xf32>, %b: tensor<16xf32>) -> (tensor<4x16xf32>, tensor<4x16xf32>) {
  %0 = cleave.matmul %x, %w : tensor<4x8xf32>, tensor<8x16xf32> -> tensor<4x16xf32>
  %1 = cleave.broadcast %b dims [1] : tensor<16xf32> -> tensor<4x16xf32>
  %2 = cleave.add %0, %1 : tensor<4x16xf32>
  %3 = cleave.softmax %2 : tensor<4x16xf32>
  %4 = cleave.exp %1 : tensor<4x16xf32>
  return %3, %4 : tensor<4x16xf32>, tensor<4x16xf32>
}

// -----

// No epilogue when the product has another reader (it must reach memory),
// when the added vector runs down the columns, or when it is one value
// broadcast to every element.
// CHECK-LABEL: func.func @not_epilogues
// CHECK-NOT:     cleave.matmul_bias
// CHECK-COUNT-3: cleave.matmul
// CHECK-NOT:     cleave.matmul_bias
func.func @not_epilogues(%x: tensor<4x8xf32>, %w: tensor<8x16xf32>, %b: tensor<16xf32>, %c: tensor<4xf32>, %s: tensor<1xf32>) -> (tensor<4x16xf32>, tensor<4x16xf32>, tensor<4x16xf32>, tensor<4x16xf32>) {
  %0 = cleave.matmul %x, %w : tensor<4x8xf32>, tensor<8x16xf32> -> tensor<4x16xf32>
  %1 = cleave.broadcast %b dims [1] : tensor<16xf32> -> tensor<4x16xf32>
  %2 = cleave.add %0, %1 : tensor<4x16xf32>
  %3 = cleave.matmul %x, %w : tensor<4x8xf32>, tensor<8x16xf32> -> tensor<4x16xf32>
  %4 = cleave.broadcast %c dims [0] : tensor<4xf32> -> tensor<4x16xf32>
  %5 = cleave.add %3, %4 : tensor<4x16xf32>
  %6 = cleave.matmul %x, %w : tensor<4x8xf32>, tensor<8x16xf32> -> tensor<4x16xf32>
  %7 = cleave.broadcast %s dims [1] : tensor<1xf32> -> tensor<4x16xf32>
  %8 = cleave.add %6, %7 : tensor<4x16xf32>
  return %0, %2, %5, %8 : tensor<4x16xf32>, tensor<4x16xf32>, tensor<4x16xf32>, tensor<4x16xf32>
}

// -----

// A value used after the kernel becomes a second result; values used only
// inside never reach memory.
// CHECK-LABEL: func.func @two_results
// CHECK:         %[[K:.*]]:2 = cleave.fused(%{{.*}}) : (tensor<8xf32>) -> (tensor<8xf32>, tensor<8xf32>)
// CHECK:           cleave.yield %{{.*}}, %{{.*}} : tensor<8xf32>, tensor<8xf32>
// CHECK:         %[[S:.*]] = cleave.softmax %[[K]]#0
// CHECK:         return %[[S]], %[[K]]#1
func.func @two_results(%a: tensor<8xf32>) -> (tensor<8xf32>, tensor<8xf32>) {
  %0 = cleave.exp %a : tensor<8xf32>
  %1 = cleave.neg %0 : tensor<8xf32>
  %2 = cleave.tanh %1 : tensor<8xf32>
  %3 = cleave.softmax %0 : tensor<8xf32>
  return %3, %2 : tensor<8xf32>, tensor<8xf32>
}

// -----

// An op whose other operand is computed after the kernel started (here from
// the kernel's own output through a softmax) cannot join it: the kernel
// would need a value that does not exist yet.
// CHECK-LABEL: func.func @no_cycle
// CHECK:         %[[K0:.*]] = cleave.fused(%{{.*}}) : (tensor<8xf32>) -> tensor<8xf32>
// CHECK:           cleave.exp
// CHECK:         %[[S:.*]] = cleave.softmax %[[K0]]
// CHECK:         %[[K1:.*]] = cleave.fused(%[[K0]], %[[S]])
// CHECK:           cleave.mul
// CHECK:         return %[[K1]]
func.func @no_cycle(%a: tensor<8xf32>) -> tensor<8xf32> {
  %0 = cleave.exp %a : tensor<8xf32>
  %1 = cleave.softmax %0 : tensor<8xf32>
  %2 = cleave.mul %0, %1 : tensor<8xf32>
  return %2 : tensor<8xf32>
}

// -----

// Different shapes are different iteration spaces: a reduction separates
// two kernels, and the broadcast of its result starts the second one.
// CHECK-LABEL: func.func @shapes
// CHECK:         cleave.fused({{.*}}) : (tensor<4x8xf32>) -> tensor<4x8xf32>
// CHECK:         cleave.reduce_max
// CHECK:         cleave.fused({{.*}}) : (tensor<4xf32>, tensor<4x8xf32>) -> tensor<4x8xf32>
// CHECK-NEXT:    ^bb0
// CHECK-NEXT:      cleave.broadcast
// CHECK-NEXT:      cleave.sub
// CHECK-NEXT:      cleave.exp
func.func @shapes(%a: tensor<4x8xf32>) -> tensor<4x8xf32> {
  %0 = cleave.mul %a, %a : tensor<4x8xf32>
  %1 = cleave.reduce_max %0 dims [1] : tensor<4x8xf32> -> tensor<4xf32>
  %2 = cleave.broadcast %1 dims [0] : tensor<4xf32> -> tensor<4x8xf32>
  %3 = cleave.sub %0, %2 : tensor<4x8xf32>
  %4 = cleave.exp %3 : tensor<4x8xf32>
  return %4 : tensor<4x8xf32>
}

// -----

// Compare, select, cast and fill fuse too; dead elementwise ops disappear.
// CHECK-LABEL: func.func @mask
// CHECK:         cleave.fused
// CHECK-NEXT:    ^bb0
// CHECK-NEXT:      cleave.fill
// CHECK-NEXT:      cleave.compare gt
// CHECK-NEXT:      cleave.select
// CHECK-NEXT:      cleave.cast
// CHECK-NEXT:      cleave.yield
// CHECK-NOT:     cleave.neg
func.func @mask(%a: tensor<8xf32>) -> tensor<8xbf16> {
  %zero = cleave.fill 0.0 : tensor<8xf32>
  %dead = cleave.neg %a : tensor<8xf32>
  %c = cleave.compare gt, %a, %zero : tensor<8xf32>
  %s = cleave.select %c, %a, %zero : tensor<8xi1>, tensor<8xf32>
  %r = cleave.cast %s : tensor<8xf32> to tensor<8xbf16>
  return %r : tensor<8xbf16>
}

// -----

// Two chains meeting in one op become one kernel when everything both read
// exists before the earlier chain starts (an optimizer's moment update:
// m = 0.9 m + 0.1 g).
// CHECK-LABEL: func.func @meeting_chains
// CHECK:         %[[K:.*]] = cleave.fused(%{{.*}}, %{{.*}}) : (tensor<8xf32>, tensor<8xf32>) -> tensor<8xf32>
// CHECK-NEXT:    ^bb0
// CHECK-NEXT:      cleave.fill 9.000000e-01
// CHECK-NEXT:      cleave.mul
// CHECK-NEXT:      cleave.fill 1.000000e-01
// CHECK-NEXT:      cleave.mul
// CHECK-NEXT:      cleave.add
// CHECK-NEXT:      cleave.yield
// CHECK-NOT:     cleave.fused
func.func @meeting_chains(%m: tensor<8xf32>, %g: tensor<8xf32>) -> tensor<8xf32> {
  %a = cleave.fill 0.9 : tensor<8xf32>
  %am = cleave.mul %a, %m : tensor<8xf32>
  %c = cleave.fill 0.1 : tensor<8xf32>
  %cg = cleave.mul %c, %g : tensor<8xf32>
  %next = cleave.add %am, %cg : tensor<8xf32>
  return %next : tensor<8xf32>
}

// -----

// The other chain reads a value computed after the first chain starts: the
// merged kernel could not sit at the first chain's place, so it stays apart.
// CHECK-LABEL: func.func @late_input
// CHECK:         cleave.fused
// CHECK:         cleave.softmax
// CHECK:         cleave.fused
// CHECK:           cleave.exp
// CHECK:           cleave.add
func.func @late_input(%x: tensor<8xf32>) -> tensor<8xf32> {
  %e = cleave.neg %x : tensor<8xf32>
  %s = cleave.softmax %x : tensor<8xf32>
  %t = cleave.exp %s : tensor<8xf32>
  %r = cleave.add %e, %t : tensor<8xf32>
  return %r : tensor<8xf32>
}

// -----

// GEMM epilogue: the f32 cast of a bf16 product, its only use, folds into
// the matmul, which then stores f32. A product with other uses keeps its
// cast.
// CHECK-LABEL: func.func @widening_cast
// CHECK:         %[[WIDE:.*]] = cleave.matmul %{{.*}}, %{{.*}} : tensor<2x4xbf16>, tensor<4x3xbf16> -> tensor<2x3xf32>
// CHECK:         %[[KEPT:.*]] = cleave.matmul %{{.*}}, %{{.*}} : tensor<2x4xbf16>, tensor<4x3xbf16> -> tensor<2x3xbf16>
// CHECK:         cleave.fused
// CHECK:           cleave.cast
// CHECK:         return %[[WIDE]]
func.func @widening_cast(%x: tensor<2x4xbf16>, %w: tensor<4x3xbf16>) -> (tensor<2x3xf32>, tensor<2x3xf32>, tensor<2x3xbf16>) {
  %0 = cleave.matmul %x, %w : tensor<2x4xbf16>, tensor<4x3xbf16> -> tensor<2x3xbf16>
  %1 = cleave.cast %0 : tensor<2x3xbf16> to tensor<2x3xf32>
  %2 = cleave.matmul %x, %w : tensor<2x4xbf16>, tensor<4x3xbf16> -> tensor<2x3xbf16>
  %3 = cleave.cast %2 : tensor<2x3xbf16> to tensor<2x3xf32>
  return %1, %3, %2 : tensor<2x3xf32>, tensor<2x3xf32>, tensor<2x3xbf16>
}
