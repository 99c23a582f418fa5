// RUN: cleave-opt %s --cleave-set-plan | FileCheck %s --check-prefix=ONE
// RUN: cleave-opt %s '--cleave-set-plan=mesh=dp=2,tp=2 strategy=dp,zero1 precision=bf16 cluster=h200-node' | FileCheck %s --check-prefix=ZERO
// RUN: cleave-opt %s '--cleave-set-plan=mesh=tp=2,dp=2 strategy=search' | FileCheck %s --check-prefix=ORDER
// RUN: cleave-opt %s '--cleave-set-plan=mesh=dp=2,pp=2 micro-batches=4 schedule=gpipe layers-per-stage=1,1' | FileCheck %s --check-prefix=PIPE
// RUN: cleave-opt %s '--cleave-set-plan=mesh=dp=2 strategy=zero1' --cleave-autodiff --cleave-optimizer --cleave-parallelize | FileCheck %s --check-prefix=FOLLOW

// cleave-set-plan records the plan a person asked for as the module's
// #cleave.plan; nothing else changes. Without options, one device's plan.
// ONE:      module attributes {cleave.plan = #cleave.plan<mesh = "", strategies = []>} {
// ONE-NEXT:   func.func @forward(
// ONE-NOT:    cleave.mesh

// Each named strategy goes to its axis (dp,zero1 is ZeRO-1's data
// parallelism); an axis left unnamed gets its canonical strategy.
// ZERO: cleave.plan = #cleave.plan<mesh = "dp=2,tp=2", strategies = ["zero1", "megatron"], zero_stage = 1, precision = "bf16", cluster = "h200-node">

// The mesh keeps the order it was given in.
// ORDER: cleave.plan = #cleave.plan<mesh = "tp=2,dp=2", strategies = ["search", "dp"]>

// A pp axis is pipelined, with the schedule and the stages' blocks.
// PIPE: cleave.plan = #cleave.plan<mesh = "dp=2,pp=2", strategies = ["dp", "pipeline"], micro_batches = 4, schedule = "gpipe", layers_per_stage = [1, 1]>

// cleave-parallelize follows the recorded plan: data parallelism with
// ZeRO-1 on a @mesh of the plan's axes.
// FOLLOW:       cleave.mesh @mesh(dp = 2)
// FOLLOW-LABEL: func.func @train_step(
// FOLLOW:         cleave.reduce_scatter %{{.*}} on @mesh [dp] sum dim 0 {{.*}}: tensor<8x3xf32> -> tensor<4x3xf32>

func.func @forward(%w: tensor<8x3xf32> {cleave.param = "w"},
                   %b: tensor<3xf32> {cleave.param = "b"},
                   %x: tensor<4x8xf32> {cleave.input = "x", cleave.input_role = #cleave.input_role<features>},
                   %t: tensor<4xi32> {cleave.input = "t", cleave.input_role = #cleave.input_role<targets>}) -> tensor<f32>
    attributes {cleave.role = #cleave.role<forward>} {
  %m = cleave.matmul %x, %w {cleave.layer = #cleave.layer<head>} : tensor<4x8xf32>, tensor<8x3xf32> -> tensor<4x3xf32>
  %bb = cleave.broadcast %b dims [1] {cleave.layer = #cleave.layer<head>} : tensor<3xf32> -> tensor<4x3xf32>
  %logits = cleave.add %m, %bb {cleave.layer = #cleave.layer<head>} : tensor<4x3xf32>
  %ce = cleave.cross_entropy %logits, %t {cleave.layer = #cleave.layer<head>} : tensor<4x3xf32>, tensor<4xi32> -> tensor<4xf32>
  %loss = cleave.reduce_mean %ce dims [0] {cleave.layer = #cleave.layer<head>} : tensor<4xf32> -> tensor<f32>
  return %loss : tensor<f32>
}
