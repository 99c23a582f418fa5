// RUN: cleave-opt %s -split-input-file | cleave-opt -split-input-file | FileCheck %s
// RUN: cleave-opt %s -split-input-file --mlir-print-op-generic | cleave-opt -split-input-file | FileCheck %s
// RUN: cleave-opt %s -split-input-file --cleave-print-cost | FileCheck %s --check-prefix=COST
// RUN: cleave-opt %s -split-input-file --canonicalize --cse | FileCheck %s --check-prefix=KEPT

// Transfers between pipeline stages round-trip, are kept although their
// results are unused (a send has no result at all), and count their bytes.
// CHECK-LABEL: func.func @stage0
// CHECK:         cleave.send %arg0 to stage 1 tag 0 : tensor<4x8xf32>
// COST-LABEL:  cost of @stage0
// COST:        communicated bytes {{ *}}128
func.func @stage0(%x: tensor<4x8xf32>) {
  cleave.send %x to stage 1 tag 0 : tensor<4x8xf32>
  return
}

// -----

// CHECK-LABEL: func.func @stage1
// CHECK:         %[[X:.*]] = cleave.recv from stage 0 tag 0 : tensor<4x8xf32>
// CHECK:         return %[[X]]
func.func @stage1() -> tensor<4x8xf32> {
  %0 = cleave.recv from stage 0 tag 0 : tensor<4x8xf32>
  return %0 : tensor<4x8xf32>
}

// -----

// Transfers are never removed or merged: an unused receive still consumes
// its message, and two receives are two messages.
// KEPT-LABEL: func.func @unused
// KEPT-COUNT-2: cleave.recv
func.func @unused() {
  %0 = cleave.recv from stage 0 tag 0 : tensor<4xf32>
  %1 = cleave.recv from stage 0 tag 0 : tensor<4xf32>
  return
}
