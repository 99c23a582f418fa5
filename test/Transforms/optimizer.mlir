// RUN: cleave-opt %s -split-input-file -verify-diagnostics --cleave-autodiff --cleave-optimizer | FileCheck %s --check-prefix=ADAMW
// RUN: cleave-opt %s -split-input-file -verify-diagnostics --cleave-autodiff '--cleave-optimizer=optimizer=sgd momentum=0.9 clip-norm=1.0' | FileCheck %s --check-prefix=SGD

// AdamW: lr and step inputs, two moments per parameter as cleave.state
// arguments, and results naming the argument each one updates.
// ADAMW-LABEL: func.func @train_step(
// ADAMW-SAME:    %[[W:.*]]: tensor<4x3xf32> {cleave.param = "w"}, %[[B:.*]]: tensor<3xf32> {cleave.param = "b"}, %{{.*}}: tensor<2x4xf32> {cleave.input = "x"},
// ADAMW-SAME:    %[[LR:.*]]: tensor<f32> {cleave.input = "lr", cleave.input_role = #cleave.input_role<learning_rate>}, %[[STEP:.*]]: tensor<f32> {cleave.input = "step", cleave.input_role = #cleave.input_role<step_number>},
// ADAMW-SAME:    %[[MW:.*]]: tensor<4x3xf32> {cleave.state = "adam_m.w"}, %[[VW:.*]]: tensor<4x3xf32> {cleave.state = "adam_v.w"},
// ADAMW-SAME:    %[[MB:.*]]: tensor<3xf32> {cleave.state = "adam_m.b"}, %[[VB:.*]]: tensor<3xf32> {cleave.state = "adam_v.b"})
// ADAMW-SAME:    -> (tensor<f32> {cleave.output = "loss", cleave.output_role = #cleave.output_role<loss>}, tensor<f32> {cleave.output = "grad_norm", cleave.output_role = #cleave.output_role<grad_norm>},
// ADAMW-SAME:        tensor<4x3xf32> {cleave.updates = 0 : i64}, tensor<3xf32> {cleave.updates = 1 : i64},
// ADAMW-SAME:        tensor<4x3xf32> {cleave.updates = 5 : i64}, tensor<4x3xf32> {cleave.updates = 6 : i64},
// ADAMW-SAME:        tensor<3xf32> {cleave.updates = 7 : i64}, tensor<3xf32> {cleave.updates = 8 : i64})
// The bias correction is computed in f64 from the step number.
// ADAMW:         %[[T:.*]] = cleave.cast %[[STEP]] : tensor<f32> to tensor<f64>
// ADAMW:         cleave.sqrt
// ADAMW:         %[[NEWW:.*]] = cleave.sub %[[W]], %{{.*}} : tensor<4x3xf32>
// ADAMW:         %[[NEWB:.*]] = cleave.sub %[[B]], %{{.*}} : tensor<3xf32>
// ADAMW:         return %{{.*}}, %{{.*}}, %[[NEWW]], %[[NEWB]], %{{.*}}, %{{.*}}, %{{.*}}, %{{.*}}

// SGD with momentum: one state per parameter, no step input; gradients are
// scaled by min(1, clip / (norm + 1e-6)).
// SGD-LABEL: func.func @train_step(
// SGD-SAME:    %{{.*}}: tensor<f32> {cleave.input = "lr", cleave.input_role = #cleave.input_role<learning_rate>}, %{{.*}}: tensor<4x3xf32> {cleave.state = "momentum.w"}, %{{.*}}: tensor<3xf32> {cleave.state = "momentum.b"})
// SGD-NOT:     cleave.input = "step"
// SGD:         %[[NORM:.*]] = cleave.sqrt %{{.*}} : tensor<f32>
// SGD:         %[[LIMIT:.*]] = cleave.fill 1.000000e+00 : tensor<f32>
// SGD:         %[[RATIO:.*]] = cleave.div %[[LIMIT]], %{{.*}} : tensor<f32>
// SGD:         %[[CLIP:.*]] = cleave.min %[[RATIO]], %{{.*}} : tensor<f32>
// SGD:         return %{{.*}}, %[[NORM]],
func.func @forward(%w: tensor<4x3xf32> {cleave.param = "w"},
                   %b: tensor<3xf32> {cleave.param = "b"},
                   %x: tensor<2x4xf32> {cleave.input = "x"}) -> tensor<f32> attributes {cleave.role = #cleave.role<forward>} {
  %0 = cleave.matmul %x, %w : tensor<2x4xf32>, tensor<4x3xf32> -> tensor<2x3xf32>
  %1 = cleave.broadcast %b dims [1] : tensor<3xf32> -> tensor<2x3xf32>
  %2 = cleave.add %0, %1 : tensor<2x3xf32>
  %3 = cleave.mul %2, %2 : tensor<2x3xf32>
  %4 = cleave.reduce_mean %3 dims [0, 1] : tensor<2x3xf32> -> tensor<f32>
  return %4 : tensor<f32>
}
