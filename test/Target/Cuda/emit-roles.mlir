// RUN: cleave-opt %s --cleave-fuse --cleave-plan-memory | cleave-translate --cleave-to-cpp | FileCheck %s

// What the IR records for the training loop reaches the program's
// descriptors: each parameter's initialization, each input's role (and the
// table token ids index, through the cast mixed precision puts in front of
// it, fused into a kernel here), each result's role, and the micro-batches a
// step is one of.
// Unrecorded fields keep their defaults.

// CHECK-LABEL: const cleave::rt::ArgumentSpec k_train_step_arguments[] = {
// CHECK-NEXT:  {{[{][{]}}"embed.tokens", cleave::rt::DType::F32, {2, {16, 4}}}, cleave::rt::ArgumentKind::Param, nullptr, {cleave::rt::InitRule::Kind::Normal, 0.02}},
// CHECK-NEXT:  {{[{][{]}}"out.weight", cleave::rt::DType::F32, {2, {4, 4}}}, cleave::rt::ArgumentKind::Param, nullptr, {cleave::rt::InitRule::Kind::Normal, 0.0070710678118654745}},
// CHECK-NEXT:  {{[{][{]}}"norm.scale", cleave::rt::DType::F32, {1, {4}}}, cleave::rt::ArgumentKind::Param, nullptr, {cleave::rt::InitRule::Kind::Ones, 0}},
// CHECK-NEXT:  {{[{][{]}}"plain", cleave::rt::DType::F32, {1, {4}}}, cleave::rt::ArgumentKind::Param, nullptr},
// CHECK-NEXT:  {{[{][{]}}"ids", cleave::rt::DType::I32, {2, {2, 3}}}, cleave::rt::ArgumentKind::Input, nullptr, {}, cleave::rt::InputRole::Tokens, 0},
// CHECK-NEXT:  {{[{][{]}}"labels", cleave::rt::DType::I32, {2, {2, 3}}}, cleave::rt::ArgumentKind::Input, nullptr, {}, cleave::rt::InputRole::Targets},
// CHECK-NEXT:  {{[{][{]}}"lr", cleave::rt::DType::F32, {0, {}}}, cleave::rt::ArgumentKind::Input, nullptr, {}, cleave::rt::InputRole::LearningRate},
// CHECK-NEXT:  {{[{][{]}}"step", cleave::rt::DType::F32, {0, {}}}, cleave::rt::ArgumentKind::Input, nullptr, {}, cleave::rt::InputRole::StepNumber},
// CHECK-NEXT:  {{[{][{]}}"grad.plain", cleave::rt::DType::F32, {1, {4}}}, cleave::rt::ArgumentKind::Input, nullptr, {}, cleave::rt::InputRole::Gradient},
// CHECK-NEXT: };
// CHECK-LABEL: const cleave::rt::ResultSpec k_train_step_results[] = {
// CHECK-NEXT:  {{[{][{]}}"loss", cleave::rt::DType::F32, {0, {}}}, -1, nullptr, cleave::rt::OutputRole::Loss},
// CHECK-NEXT:  {{[{][{]}}"grad_norm", cleave::rt::DType::F32, {0, {}}}, -1, nullptr, cleave::rt::OutputRole::GradNorm},
// CHECK-NEXT:  {{[{][{]}}"grad.embed.tokens", cleave::rt::DType::F32, {2, {16, 4}}}, -1, nullptr, cleave::rt::OutputRole::Gradient},
// CHECK-NEXT:  {{[{][{]}}"output3", cleave::rt::DType::F32, {1, {4}}}, -1, nullptr},
// CHECK-NEXT: };
// CHECK-LABEL: const cleave::rt::Program k_train_step_program = {
// CHECK-NEXT:  "train_step", k_train_step_arguments, 9, k_train_step_results, 4, {{[0-9]+}}, &train_step, k_train_step_index_sites, 1, nullptr, k_train_step_ops, {{[0-9]+}}, 4};
func.func @train_step(%table: tensor<16x4xf32> {cleave.param = "embed.tokens", cleave.init = #cleave.init<normal, 0.02>},
                      %out: tensor<4x4xf32> {cleave.param = "out.weight", cleave.init = #cleave.init<normal, 0.0070710678118654745>},
                      %scale: tensor<4xf32> {cleave.param = "norm.scale", cleave.init = #cleave.init<ones>},
                      %plain: tensor<4xf32> {cleave.param = "plain"},
                      %ids: tensor<2x3xi32> {cleave.input = "ids", cleave.input_role = #cleave.input_role<tokens>},
                      %labels: tensor<2x3xi32> {cleave.input = "labels", cleave.input_role = #cleave.input_role<targets>},
                      %lr: tensor<f32> {cleave.input = "lr", cleave.input_role = #cleave.input_role<learning_rate>},
                      %step: tensor<f32> {cleave.input = "step", cleave.input_role = #cleave.input_role<step_number>},
                      %grad: tensor<4xf32> {cleave.input = "grad.plain", cleave.input_role = #cleave.input_role<gradient>})
    -> (tensor<f32> {cleave.output = "loss", cleave.output_role = #cleave.output_role<loss>},
        tensor<f32> {cleave.output = "grad_norm", cleave.output_role = #cleave.output_role<grad_norm>},
        tensor<16x4xf32> {cleave.output = "grad.embed.tokens", cleave.output_role = #cleave.output_role<gradient>},
        tensor<4xf32>)
    attributes {cleave.micro_batches = 4 : i64, cleave.role = #cleave.role<step>} {
  %low = cleave.cast %table : tensor<16x4xf32> to tensor<16x4xbf16>
  %rows = cleave.embedding %low, %ids : tensor<16x4xbf16>, tensor<2x3xi32> -> tensor<2x3x4xbf16>
  %wide = cleave.cast %rows : tensor<2x3x4xbf16> to tensor<2x3x4xf32>
  %loss = cleave.reduce_mean %wide dims [0, 1, 2] : tensor<2x3x4xf32> -> tensor<f32>
  %sum = cleave.add %lr, %step : tensor<f32>
  return %loss, %sum, %table, %grad : tensor<f32>, tensor<f32>, tensor<16x4xf32>, tensor<4xf32>
}
