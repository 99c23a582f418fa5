// RUN: cleave-models mlp --layers 2 --hidden 16 --vocab 10 --batch 4 | FileCheck %s

// CHECK-LABEL: func.func @forward(
// CHECK-SAME: tensor<16x16xf32> {cleave.init = #cleave.init<normal, 2.000000e-02>, cleave.param = "layers.0.weight"}
// CHECK-SAME: tensor<16xf32> {cleave.init = #cleave.init<zeros>, cleave.param = "layers.0.bias"}
// CHECK-SAME: tensor<16x10xf32> {cleave.init = #cleave.init<normal, 2.000000e-02>, cleave.param = "head.weight"}
// CHECK-SAME: tensor<10xf32> {cleave.init = #cleave.init<zeros>, cleave.param = "head.bias"}
// CHECK-SAME: tensor<4x16xf32> {cleave.input = "features", cleave.input_role = #cleave.input_role<features>}
// CHECK-SAME: tensor<4xi32> {cleave.input = "targets", cleave.input_role = #cleave.input_role<targets>}
// CHECK: cleave.matmul {{.*}} {cleave.layer = #cleave.layer<0>}
// CHECK: cleave.relu {{.*}} {cleave.layer = #cleave.layer<0>}
// CHECK: cleave.relu {{.*}} {cleave.layer = #cleave.layer<1>}
// CHECK: cleave.matmul {{.*}} {cleave.layer = #cleave.layer<head>} : tensor<4x16xf32>, tensor<16x10xf32> -> tensor<4x10xf32>
// CHECK: cleave.cross_entropy {{.*}} : tensor<4x10xf32>, tensor<4xi32> -> tensor<4xf32>
// CHECK: cleave.reduce_mean {{.*}} dims [0] {{.*}} -> tensor<f32>
