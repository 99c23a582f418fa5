// RUN: cleave-opt %s -split-input-file -canonicalize | FileCheck %s

// CHECK-LABEL: func.func @transpose_of_transpose
// CHECK-SAME: (%[[X:.*]]: tensor<2x3x4xf32>)
// CHECK-NEXT: %[[T:.*]] = cleave.transpose %[[X]] perm [2, 0, 1] {cleave.layer = #cleave.layer<5>} : tensor<2x3x4xf32> -> tensor<4x2x3xf32>
// CHECK-NEXT: return %[[T]]
func.func @transpose_of_transpose(%x: tensor<2x3x4xf32>) -> tensor<4x2x3xf32> {
  %0 = cleave.transpose %x perm [1, 2, 0] {cleave.layer = #cleave.layer<4>} : tensor<2x3x4xf32> -> tensor<3x4x2xf32>
  %1 = cleave.transpose %0 perm [1, 2, 0] {cleave.layer = #cleave.layer<5>} : tensor<3x4x2xf32> -> tensor<4x2x3xf32>
  return %1 : tensor<4x2x3xf32>
}

// -----

// CHECK-LABEL: func.func @transpose_round_trip
// CHECK-SAME: (%[[X:.*]]: tensor<2x3x4xf32>)
// CHECK-NEXT: return %[[X]]
func.func @transpose_round_trip(%x: tensor<2x3x4xf32>) -> tensor<2x3x4xf32> {
  %0 = cleave.transpose %x perm [0, 2, 1] : tensor<2x3x4xf32> -> tensor<2x4x3xf32>
  %1 = cleave.transpose %0 perm [0, 2, 1] : tensor<2x4x3xf32> -> tensor<2x3x4xf32>
  return %1 : tensor<2x3x4xf32>
}

// -----

// CHECK-LABEL: func.func @transpose_identity
// CHECK-SAME: (%[[X:.*]]: tensor<2x3xf32>)
// CHECK-NEXT: return %[[X]]
func.func @transpose_identity(%x: tensor<2x3xf32>) -> tensor<2x3xf32> {
  %0 = cleave.transpose %x perm [0, 1] : tensor<2x3xf32> -> tensor<2x3xf32>
  return %0 : tensor<2x3xf32>
}

// -----

// A transpose that swaps two equal dimensions is not the identity.
// CHECK-LABEL: func.func @transpose_square_kept
// CHECK: cleave.transpose %{{.*}} perm [1, 0]
func.func @transpose_square_kept(%x: tensor<3x3xf32>) -> tensor<3x3xf32> {
  %0 = cleave.transpose %x perm [1, 0] : tensor<3x3xf32> -> tensor<3x3xf32>
  return %0 : tensor<3x3xf32>
}

// -----

// CHECK-LABEL: func.func @reshape_same_shape
// CHECK-SAME: (%[[X:.*]]: tensor<2x3xf32>)
// CHECK-NEXT: return %[[X]]
func.func @reshape_same_shape(%x: tensor<2x3xf32>) -> tensor<2x3xf32> {
  %0 = cleave.reshape %x : tensor<2x3xf32> -> tensor<2x3xf32>
  return %0 : tensor<2x3xf32>
}

// -----

// CHECK-LABEL: func.func @reshape_of_reshape
// CHECK-SAME: (%[[X:.*]]: tensor<2x3x4xf32>)
// CHECK-NEXT: %[[R:.*]] = cleave.reshape %[[X]] : tensor<2x3x4xf32> -> tensor<4x6xf32>
// CHECK-NEXT: return %[[R]]
func.func @reshape_of_reshape(%x: tensor<2x3x4xf32>) -> tensor<4x6xf32> {
  %0 = cleave.reshape %x : tensor<2x3x4xf32> -> tensor<24xf32>
  %1 = cleave.reshape %0 : tensor<24xf32> -> tensor<4x6xf32>
  return %1 : tensor<4x6xf32>
}

// -----

// CHECK-LABEL: func.func @reshape_back
// CHECK-SAME: (%[[X:.*]]: tensor<2x3xf32>)
// CHECK-NEXT: return %[[X]]
func.func @reshape_back(%x: tensor<2x3xf32>) -> tensor<2x3xf32> {
  %0 = cleave.reshape %x : tensor<2x3xf32> -> tensor<6xf32>
  %1 = cleave.reshape %0 : tensor<6xf32> -> tensor<2x3xf32>
  return %1 : tensor<2x3xf32>
}

// -----

// CHECK-LABEL: func.func @reshape_constant
// CHECK-NEXT: %[[C:.*]] = cleave.constant dense<{{\[}}[1, 2], [3, 4]]> : tensor<2x2xi32>
// CHECK-NEXT: return %[[C]]
func.func @reshape_constant() -> tensor<2x2xi32> {
  %0 = cleave.constant dense<[1, 2, 3, 4]> : tensor<4xi32>
  %1 = cleave.reshape %0 : tensor<4xi32> -> tensor<2x2xi32>
  return %1 : tensor<2x2xi32>
}

// -----

// CHECK-LABEL: func.func @cast_same_type
// CHECK-SAME: (%[[X:.*]]: tensor<2xbf16>)
// CHECK-NEXT: return %[[X]]
func.func @cast_same_type(%x: tensor<2xbf16>) -> tensor<2xbf16> {
  %0 = cleave.cast %x : tensor<2xbf16> to tensor<2xbf16>
  return %0 : tensor<2xbf16>
}

// -----

// Rounding through bf16 changes values: the round trip stays.
// CHECK-LABEL: func.func @cast_round_trip_kept
// CHECK: cleave.cast
// CHECK: cleave.cast
func.func @cast_round_trip_kept(%x: tensor<2xf32>) -> tensor<2xf32> {
  %0 = cleave.cast %x : tensor<2xf32> to tensor<2xbf16>
  %1 = cleave.cast %0 : tensor<2xbf16> to tensor<2xf32>
  return %1 : tensor<2xf32>
}

// -----

// CHECK-LABEL: func.func @broadcast_same_shape
// CHECK-SAME: (%[[X:.*]]: tensor<2x3xf32>)
// CHECK-NEXT: return %[[X]]
func.func @broadcast_same_shape(%x: tensor<2x3xf32>) -> tensor<2x3xf32> {
  %0 = cleave.broadcast %x dims [0, 1] : tensor<2x3xf32> -> tensor<2x3xf32>
  return %0 : tensor<2x3xf32>
}

// -----

// CHECK-LABEL: func.func @slice_everything
// CHECK-SAME: (%[[X:.*]]: tensor<2x3xf32>)
// CHECK-NEXT: return %[[X]]
func.func @slice_everything(%x: tensor<2x3xf32>) -> tensor<2x3xf32> {
  %0 = cleave.slice %x [0, 0] : tensor<2x3xf32> -> tensor<2x3xf32>
  return %0 : tensor<2x3xf32>
}

// -----

// CHECK-LABEL: func.func @concat_single
// CHECK-SAME: (%[[X:.*]]: tensor<2x3xf32>)
// CHECK-NEXT: return %[[X]]
func.func @concat_single(%x: tensor<2x3xf32>) -> tensor<2x3xf32> {
  %0 = cleave.concat %x dim 1 : (tensor<2x3xf32>) -> tensor<2x3xf32>
  return %0 : tensor<2x3xf32>
}

// -----

// CHECK-LABEL: func.func @neg_neg
// CHECK-SAME: (%[[X:.*]]: tensor<4xi32>)
// CHECK-NEXT: return %[[X]]
func.func @neg_neg(%x: tensor<4xi32>) -> tensor<4xi32> {
  %0 = cleave.neg %x : tensor<4xi32>
  %1 = cleave.neg %0 : tensor<4xi32>
  return %1 : tensor<4xi32>
}

// -----

// Unused pure ops disappear; used ones stay.
// CHECK-LABEL: func.func @dead_code
// CHECK-NOT: cleave.exp
// CHECK: %[[E:.*]] = cleave.tanh
// CHECK-NEXT: return %[[E]]
func.func @dead_code(%x: tensor<4xf32>) -> tensor<4xf32> {
  %0 = cleave.exp %x : tensor<4xf32>
  %1 = cleave.tanh %x : tensor<4xf32>
  return %1 : tensor<4xf32>
}
