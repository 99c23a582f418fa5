// RUN: cleave-opt %s -split-input-file -verify-diagnostics --cleave-autodiff | FileCheck %s

// The backward of a matmul: dA = dY B^T and dB = A^T dY, as matmuls with
// transpose flags. Integer operands (targets) get no gradient; layer tags
// carry over to the backward ops.
// CHECK-LABEL: func.func @train_step
// CHECK-SAME:    -> (tensor<f32> {cleave.output = "loss", cleave.output_role = #cleave.output_role<loss>}, tensor<8x4xf32> {cleave.output = "grad.w", cleave.output_role = #cleave.output_role<gradient>})
// CHECK:         %[[LOGITS:.*]] = cleave.matmul %[[X:.*]], %[[W:[^ ]*]] {cleave.layer = #cleave.layer<head>}
// CHECK:         %[[DL:.*]] = cleave.cross_entropy_grad %[[LOGITS]], %{{.*}}, %{{.*}} {cleave.layer = #cleave.layer<head>}
// CHECK:         %[[DW:.*]] = cleave.matmul %[[X]], %[[DL]] transpose_lhs {cleave.layer = #cleave.layer<head>} : tensor<2x8xf32>, tensor<2x4xf32> -> tensor<8x4xf32>
// CHECK:         return %{{.*}}, %[[DW]]
func.func @forward(%w: tensor<8x4xf32> {cleave.param = "w"},
                   %x: tensor<2x8xf32> {cleave.input = "x"},
                   %t: tensor<2xi32> {cleave.input = "t"}) -> tensor<f32> attributes {cleave.role = #cleave.role<forward>} {
  %0 = cleave.matmul %x, %w {cleave.layer = #cleave.layer<head>} : tensor<2x8xf32>, tensor<8x4xf32> -> tensor<2x4xf32>
  %1 = cleave.cross_entropy %0, %t {cleave.layer = #cleave.layer<head>} : tensor<2x4xf32>, tensor<2xi32> -> tensor<2xf32>
  %2 = cleave.reduce_mean %1 dims [0] {cleave.layer = #cleave.layer<head>} : tensor<2xf32> -> tensor<f32>
  return %2 : tensor<f32>
}

// -----

// A tied table used by an embedding and an output projection: the two
// gradients (a scatter-add and a matmul) are summed.
// The rank-2 table is shared by the batch: its matmul gradient folds the
// batch into the rows of one product (dB = dY^T A for transpose_rhs).
// CHECK-LABEL: func.func @train_step
// CHECK:         %[[DH:.*]] = cleave.matmul %[[DY:.*]], %arg0 : tensor<2x3x6xf32>, tensor<6x4xf32> -> tensor<2x3x4xf32>
// CHECK:         %[[A2:.*]] = cleave.reshape %{{.*}} : tensor<2x3x4xf32> -> tensor<6x4xf32>
// CHECK:         %[[DY2:.*]] = cleave.reshape %[[DY]] : tensor<2x3x6xf32> -> tensor<6x6xf32>
// CHECK:         %[[HEAD:.*]] = cleave.matmul %[[DY2]], %[[A2]] transpose_lhs : tensor<6x6xf32>, tensor<6x4xf32> -> tensor<6x4xf32>
// CHECK:         %[[SCATTER:.*]] = cleave.scatter_add %arg1, %[[DH]] : tensor<2x3xi32>, tensor<2x3x4xf32> -> tensor<6x4xf32>
// CHECK:         %[[TOTAL:.*]] = cleave.add %[[HEAD]], %[[SCATTER]] : tensor<6x4xf32>
// CHECK:         return %{{.*}}, %[[TOTAL]]
func.func @forward(%table: tensor<6x4xf32> {cleave.param = "table"},
                   %ids: tensor<2x3xi32> {cleave.input = "ids"}) -> tensor<f32> attributes {cleave.role = #cleave.role<forward>} {
  %h = cleave.embedding %table, %ids : tensor<6x4xf32>, tensor<2x3xi32> -> tensor<2x3x4xf32>
  %logits = cleave.matmul %h, %table transpose_rhs : tensor<2x3x4xf32>, tensor<6x4xf32> -> tensor<2x3x6xf32>
  %loss = cleave.reduce_sum %logits dims [0, 1, 2] : tensor<2x3x6xf32> -> tensor<f32>
  return %loss : tensor<f32>
}

// -----

// softmax and layer_norm differentiate through their gradient ops; a
// broadcast's gradient reduces over the broadcast dimension.
// CHECK-LABEL: func.func @train_step
// CHECK:         %[[Y:.*]] = cleave.softmax %[[N:.*]] :
// CHECK:         %[[DN:.*]] = cleave.softmax_grad %[[Y]], %{{.*}} : tensor<3x5xf32>
// CHECK:         %[[DX:.*]], %[[DG:.*]], %[[DB:.*]] = cleave.layer_norm_grad %{{.*}}, %{{.*}}, %[[DN]] : tensor<3x5xf32>, tensor<5xf32>
// CHECK:         %[[DV:.*]] = cleave.reduce_sum %[[DX]] dims [0] : tensor<3x5xf32> -> tensor<5xf32>
// CHECK:         return %{{.*}}, %[[DG]], %[[DB]], %[[DV]]
func.func @forward(%g: tensor<5xf32> {cleave.param = "g"},
                   %b: tensor<5xf32> {cleave.param = "b"},
                   %v: tensor<5xf32> {cleave.param = "v"}) -> tensor<f32> attributes {cleave.role = #cleave.role<forward>} {
  %x = cleave.broadcast %v dims [1] : tensor<5xf32> -> tensor<3x5xf32>
  %n = cleave.layer_norm %x, %g, %b : tensor<3x5xf32>, tensor<5xf32>
  %y = cleave.softmax %n : tensor<3x5xf32>
  %s = cleave.mul %y, %y : tensor<3x5xf32>
  %loss = cleave.reduce_sum %s dims [0, 1] : tensor<3x5xf32> -> tensor<f32>
  return %loss : tensor<f32>
}

// -----

// A parameter the loss does not use gets a zero gradient.
// CHECK-LABEL: func.func @train_step
// CHECK:         %[[ZERO:.*]] = cleave.fill 0.000000e+00 : tensor<3xf32>
// CHECK:         return %{{.*}}, %{{.*}}, %[[ZERO]]
func.func @forward(%a: tensor<3xf32> {cleave.param = "a"},
                   %unused: tensor<3xf32> {cleave.param = "unused"}) -> tensor<f32> attributes {cleave.role = #cleave.role<forward>} {
  %loss = cleave.reduce_sum %a dims [0] : tensor<3xf32> -> tensor<f32>
  return %loss : tensor<f32>
}

// -----

// expected-error@+1 {{can only differentiate a single-block function returning one scalar float loss}}
func.func @forward(%a: tensor<3xf32> {cleave.param = "a"}) -> tensor<3xf32> attributes {cleave.role = #cleave.role<forward>} {
  return %a : tensor<3xf32>
}

// -----

// expected-error@+1 {{no function with cleave.role forward to differentiate}}
module {
  func.func @other(%a: tensor<3xf32>) -> tensor<f32> {
    %loss = cleave.reduce_sum %a dims [0] : tensor<3xf32> -> tensor<f32>
    return %loss : tensor<f32>
  }
}

// -----

func.func @forward(%w: tensor<4x2xf32> {cleave.param = "w"},
                   %ids: tensor<3xi32> {cleave.input = "ids"}) -> tensor<f32> attributes {cleave.role = #cleave.role<forward>} {
  %w2 = cleave.slice %w [0, 0] : tensor<4x2xf32> -> tensor<3x2xf32>
  // expected-error@+1 {{'cleave.scatter_add' op cannot be differentiated: it has no gradient rule}}
  %s = cleave.scatter_add %ids, %w2 : tensor<3xi32>, tensor<3x2xf32> -> tensor<4x2xf32>
  %loss = cleave.reduce_sum %s dims [0, 1] : tensor<4x2xf32> -> tensor<f32>
  return %loss : tensor<f32>
}

// -----

// reduce_max shares its gradient among tied maxima: the mask is divided by
// the number of elements equal to the maximum.
// CHECK-LABEL: func.func @train_step
// CHECK:         %[[MAX:.*]] = cleave.reduce_max %[[X:.*]] dims [1]
// CHECK:         %[[TIED:.*]] = cleave.compare eq, %[[X]], %{{.*}} : tensor<2x3xf32>
// CHECK:         %[[ONES:.*]] = cleave.select %[[TIED]], %{{.*}}, %{{.*}} : tensor<2x3xi1>, tensor<2x3xf32>
// CHECK:         %[[COUNT:.*]] = cleave.reduce_sum %[[ONES]] dims [1] : tensor<2x3xf32> -> tensor<2xf32>
// CHECK:         %[[SPREAD:.*]] = cleave.broadcast %[[COUNT]] dims [0]
// CHECK:         %[[SHARE:.*]] = cleave.div %{{.*}}, %[[SPREAD]] : tensor<2x3xf32>
// CHECK:         cleave.select %[[TIED]], %[[SHARE]], %{{.*}}
func.func @forward(%x: tensor<2x3xf32> {cleave.param = "x"}) -> tensor<f32> attributes {cleave.role = #cleave.role<forward>} {
  %m = cleave.reduce_max %x dims [1] : tensor<2x3xf32> -> tensor<2xf32>
  %loss = cleave.reduce_sum %m dims [0] : tensor<2xf32> -> tensor<f32>
  return %loss : tensor<f32>
}

// -----

// Attention's gradient reads the forward's output and logsumexp instead of
// recomputing the softmax statistics.
// CHECK-LABEL: func.func @train_step
// CHECK:         %[[O:[^,]*]], %[[LSE:[^ ]*]] = cleave.attention %[[Q:[^,]*]], %[[K:[^,]*]], %[[V:[^ ]*]] causal
// CHECK:         cleave.attention_grad %[[Q]], %[[K]], %[[V]], %[[O]], %[[LSE]], %{{.*}} causal : tensor<2x4x3xf32>, tensor<2x4x3xf32>
func.func @forward(%q: tensor<2x4x3xf32> {cleave.param = "q"},
                   %k: tensor<2x4x3xf32> {cleave.param = "k"},
                   %v: tensor<2x4x3xf32> {cleave.param = "v"}) -> tensor<f32> attributes {cleave.role = #cleave.role<forward>} {
  %o:2 = cleave.attention %q, %k, %v causal : tensor<2x4x3xf32>, tensor<2x4x3xf32>, tensor<2x4x3xf32>
  %loss = cleave.reduce_sum %o#0 dims [0, 1, 2] : tensor<2x4x3xf32> -> tensor<f32>
  return %loss : tensor<f32>
}

// -----

func.func @forward(%q: tensor<2x4x3xf32> {cleave.param = "q"}) -> tensor<f32> attributes {cleave.role = #cleave.role<forward>} {
  // expected-error@+1 {{'cleave.attention' op cannot be differentiated through its logsumexp}}
  %o:2 = cleave.attention %q, %q, %q : tensor<2x4x3xf32>, tensor<2x4x3xf32>, tensor<2x4x3xf32>
  %loss = cleave.reduce_sum %o#1 dims [0, 1] : tensor<2x4xf32> -> tensor<f32>
  return %loss : tensor<f32>
}

// -----

// A padded vocabulary's gradient masks what its loss masks.
// CHECK-LABEL: func.func @train_step
// CHECK:         cleave.cross_entropy_grad %{{.*}}, %{{.*}}, %{{.*}} {classes = 3 : i64}
func.func @forward(%l: tensor<2x4xf32> {cleave.param = "l"},
                   %t: tensor<2xi32> {cleave.input = "t"}) -> tensor<f32> attributes {cleave.role = #cleave.role<forward>} {
  %0 = cleave.cross_entropy %l, %t {classes = 3 : i64} : tensor<2x4xf32>, tensor<2xi32> -> tensor<2xf32>
  %1 = cleave.reduce_mean %0 dims [0] : tensor<2xf32> -> tensor<f32>
  return %1 : tensor<f32>
}
