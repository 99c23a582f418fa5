// RUN: cleave-opt %s --cleave-auto-parallel='devices=8 cluster=dgx-a100-80g' | FileCheck %s
// RUN: cleave-opt %s --cleave-auto-parallel='devices=4 cluster=cpu-local' | FileCheck %s --check-prefix=CPU
// RUN: cleave-opt %s --cleave-auto-parallel='devices=8 cluster=dgx-a100-80g objective=memory' | FileCheck %s --check-prefix=MEMORY
// RUN: cleave-opt %s --cleave-auto-parallel='devices=4 cluster=cpu-local' --cleave-autodiff --cleave-optimizer --cleave-parallelize | FileCheck %s --check-prefix=FOLLOW

// Errors.
// RUN: not cleave-opt %s --cleave-auto-parallel='devices=8 cluster=tpu-pod' -o /dev/null 2>&1 | FileCheck %s --check-prefix=CLUSTER
// RUN: not cleave-opt %s --cleave-auto-parallel='devices=13 cluster=dgx-h100' -o /dev/null 2>&1 | FileCheck %s --check-prefix=DEVICES
// RUN: not cleave-opt %s --cleave-auto-parallel='devices=8 cluster=dgx-h100 objective=cost' -o /dev/null 2>&1 | FileCheck %s --check-prefix=OBJECTIVE
// RUN: cleave-opt %s --cleave-auto-parallel='devices=4 cluster=cpu-local' -o %t.planned.mlir
// RUN: not cleave-opt %t.planned.mlir --cleave-auto-parallel='devices=4 cluster=cpu-local' -o /dev/null 2>&1 | FileCheck %s --check-prefix=TWICE
// RUN: not cleave-opt %t.planned.mlir --cleave-autodiff --cleave-parallelize='mesh=dp=4' -o /dev/null 2>&1 | FileCheck %s --check-prefix=BOTH
// CLUSTER: error: unknown cluster 'tpu-pod'; known: cpu-local, dgx-a100-40g, dgx-a100-80g, dgx-h100, h200-node (or give a cluster file, NAME.json)
// DEVICES: error: no mesh of 13 devices runs this model
// OBJECTIVE: for the --objective option: Cannot find option named 'cost'!
// TWICE: error: cleave-auto-parallel: the module already has a plan or a mesh; a plan is recorded once, on an unpartitioned model
// BOTH: error: cleave-parallelize: the module has a plan (cleave.plan); give neither mesh nor strategy

// A two-block GPT of width 32 (the forward cleave-models builds, checked
// in): on a DGX A100, ZeRO-2 over four GPUs and two pipeline stages of
// one block each; on four ranks of this machine, ZeRO-1 over
// all four. Each records the typed plan with the planner's predictions;
// what it leaves at the defaults (one micro-batch, 1f1b, f32) is not
// printed, and an axis it does not use has the strategy none. The @mesh
// is the partitioning passes' to add.
// CHECK:      module attributes {cleave.plan = #cleave.plan<mesh = "dp=4,pp=2,tp=1", strategies = ["zero2", "pipeline", "none"], micro_batch_size = 4, layers_per_stage = [1, 1], zero_stage = 2, precision = "bf16", padded_vocab = 64, cluster = "dgx-a100-80g", step_time_s = {{.*}} : f64, peak_memory_bytes = {{.*}} : f64, mfu = {{.*}} : f64>} {
// CHECK-NEXT:   func.func @forward(
// CPU:        cleave.plan = #cleave.plan<mesh = "dp=4,pp=1,tp=1", strategies = ["zero1", "none", "none"], micro_batch_size = 4, zero_stage = 1, padded_vocab = 64, cluster = "cpu-local"
// CPU-NOT:    cleave.mesh

// Choices fixed by the options: the mesh, and the micro-batch size (two
// micro-batches of 4 per dp rank on a sharded mesh pipeline through a pp
// axis of one stage; ZeRO-1 goes with them, its gradients reduce-scattered
// once per step).
// RUN: cleave-opt %s --cleave-auto-parallel='devices=4 cluster=cpu-local mesh=dp=2,tp=2 micro-batch-size=4 training=true precision=f32' | FileCheck %s --check-prefix=FIXED
// FIXED:      cleave.plan = #cleave.plan<mesh = "dp=2,pp=1,tp=2", strategies = ["zero1", "pipeline", "search"], micro_batch_size = 4, micro_batches = 2, zero_stage = 1,
// RUN: not cleave-opt %s --cleave-auto-parallel='devices=4 cluster=cpu-local mesh=dp=2' -o /dev/null 2>&1 | FileCheck %s --check-prefix=FIXED-DEVICES
// FIXED-DEVICES: error: mesh dp=2 has 2 devices, not the 4 to plan for
// RUN: not cleave-opt %s --cleave-auto-parallel='devices=4 cluster=cpu-local zero-stage=5' -o /dev/null 2>&1 | FileCheck %s --check-prefix=FIXED-ZERO
// FIXED-ZERO: error: the global batch, memory limit and micro-batch size must not be negative, the ZeRO stage is 0 to 3
// RUN: not cleave-opt %s --cleave-auto-parallel='devices=4 cluster=cpu-local schedule=zigzag' -o /dev/null 2>&1 | FileCheck %s --check-prefix=FIXED-SCHEDULE
// FIXED-SCHEDULE: error: the schedule must be gpipe, 1f1b or interleaved, got 'zigzag'

// objective=memory takes the plan that needs the least memory per device:
// ZeRO-3 over four, tensor parallelism over two, micro-batches of one
// sample (through a pp axis of one stage), recompute of every block and
// sequence parallelism.
// MEMORY:     cleave.plan = #cleave.plan<mesh = "dp=4,pp=1,tp=2", strategies = ["zero3", "pipeline", "megatron-sp"], micro_batch_size = 1, micro_batches = 4, zero_stage = 3, recompute = true,

// cleave-parallelize without a mesh follows the recorded plan on a @mesh of
// the axes it uses: the batch splits over dp, the gradients are
// reduce-scattered and the updated parameters all-gathered (ZeRO-1).
// FOLLOW:       cleave.mesh @mesh(dp = 4)
// FOLLOW-LABEL: func.func @train_step(
// FOLLOW-SAME:    tensor<4x16xi32> {cleave.block = #cleave.sharding<@mesh, {{\[\[}}dp], []]>, cleave.input = "tokens"
// FOLLOW-DAG:     cleave.reduce_scatter %{{.*}} on @mesh [dp] sum dim 0
// FOLLOW-DAG:     cleave.all_gather %{{.*}} on @mesh [dp] dim 0

module {
  func.func @forward(%arg0: tensor<64x32xf32> {cleave.init = #cleave.init<normal, 2.000000e-02>, cleave.param = "embed.tokens"}, %arg1: tensor<16x32xf32> {cleave.init = #cleave.init<normal, 2.000000e-02>, cleave.param = "embed.positions"}, %arg2: tensor<32xf32> {cleave.init = #cleave.init<ones>, cleave.param = "layers.0.ln1.scale"}, %arg3: tensor<32xf32> {cleave.init = #cleave.init<zeros>, cleave.param = "layers.0.ln1.bias"}, %arg4: tensor<32x32xf32> {cleave.init = #cleave.init<normal, 2.000000e-02>, cleave.param = "layers.0.attn.q.weight"}, %arg5: tensor<32xf32> {cleave.init = #cleave.init<zeros>, cleave.param = "layers.0.attn.q.bias"}, %arg6: tensor<32x32xf32> {cleave.init = #cleave.init<normal, 2.000000e-02>, cleave.param = "layers.0.attn.k.weight"}, %arg7: tensor<32xf32> {cleave.init = #cleave.init<zeros>, cleave.param = "layers.0.attn.k.bias"}, %arg8: tensor<32x32xf32> {cleave.init = #cleave.init<normal, 2.000000e-02>, cleave.param = "layers.0.attn.v.weight"}, %arg9: tensor<32xf32> {cleave.init = #cleave.init<zeros>, cleave.param = "layers.0.attn.v.bias"}, %arg10: tensor<32x32xf32> {cleave.init = #cleave.init<normal, 1.000000e-02>, cleave.param = "layers.0.attn.out.weight"}, %arg11: tensor<32xf32> {cleave.init = #cleave.init<zeros>, cleave.param = "layers.0.attn.out.bias"}, %arg12: tensor<32xf32> {cleave.init = #cleave.init<ones>, cleave.param = "layers.0.ln2.scale"}, %arg13: tensor<32xf32> {cleave.init = #cleave.init<zeros>, cleave.param = "layers.0.ln2.bias"}, %arg14: tensor<32x128xf32> {cleave.init = #cleave.init<normal, 2.000000e-02>, cleave.param = "layers.0.mlp.fc.weight"}, %arg15: tensor<128xf32> {cleave.init = #cleave.init<zeros>, cleave.param = "layers.0.mlp.fc.bias"}, %arg16: tensor<128x32xf32> {cleave.init = #cleave.init<normal, 1.000000e-02>, cleave.param = "layers.0.mlp.proj.weight"}, %arg17: tensor<32xf32> {cleave.init = #cleave.init<zeros>, cleave.param = "layers.0.mlp.proj.bias"}, %arg18: tensor<32xf32> {cleave.init = #cleave.init<ones>, cleave.param = "layers.1.ln1.scale"}, %arg19: tensor<32xf32> {cleave.init = #cleave.init<zeros>, cleave.param = "layers.1.ln1.bias"}, %arg20: tensor<32x32xf32> {cleave.init = #cleave.init<normal, 2.000000e-02>, cleave.param = "layers.1.attn.q.weight"}, %arg21: tensor<32xf32> {cleave.init = #cleave.init<zeros>, cleave.param = "layers.1.attn.q.bias"}, %arg22: tensor<32x32xf32> {cleave.init = #cleave.init<normal, 2.000000e-02>, cleave.param = "layers.1.attn.k.weight"}, %arg23: tensor<32xf32> {cleave.init = #cleave.init<zeros>, cleave.param = "layers.1.attn.k.bias"}, %arg24: tensor<32x32xf32> {cleave.init = #cleave.init<normal, 2.000000e-02>, cleave.param = "layers.1.attn.v.weight"}, %arg25: tensor<32xf32> {cleave.init = #cleave.init<zeros>, cleave.param = "layers.1.attn.v.bias"}, %arg26: tensor<32x32xf32> {cleave.init = #cleave.init<normal, 1.000000e-02>, cleave.param = "layers.1.attn.out.weight"}, %arg27: tensor<32xf32> {cleave.init = #cleave.init<zeros>, cleave.param = "layers.1.attn.out.bias"}, %arg28: tensor<32xf32> {cleave.init = #cleave.init<ones>, cleave.param = "layers.1.ln2.scale"}, %arg29: tensor<32xf32> {cleave.init = #cleave.init<zeros>, cleave.param = "layers.1.ln2.bias"}, %arg30: tensor<32x128xf32> {cleave.init = #cleave.init<normal, 2.000000e-02>, cleave.param = "layers.1.mlp.fc.weight"}, %arg31: tensor<128xf32> {cleave.init = #cleave.init<zeros>, cleave.param = "layers.1.mlp.fc.bias"}, %arg32: tensor<128x32xf32> {cleave.init = #cleave.init<normal, 1.000000e-02>, cleave.param = "layers.1.mlp.proj.weight"}, %arg33: tensor<32xf32> {cleave.init = #cleave.init<zeros>, cleave.param = "layers.1.mlp.proj.bias"}, %arg34: tensor<32xf32> {cleave.init = #cleave.init<ones>, cleave.param = "final_norm.scale"}, %arg35: tensor<32xf32> {cleave.init = #cleave.init<zeros>, cleave.param = "final_norm.bias"}, %arg36: tensor<16x16xi32> {cleave.input = "tokens", cleave.input_role = #cleave.input_role<tokens>}, %arg37: tensor<16x16xi32> {cleave.input = "targets", cleave.input_role = #cleave.input_role<targets>}) -> tensor<f32> attributes {cleave.role = #cleave.role<forward>} {
    %0 = cleave.embedding %arg0, %arg36 {cleave.layer = #cleave.layer<embed>} : tensor<64x32xf32>, tensor<16x16xi32> -> tensor<16x16x32xf32>
    %1 = cleave.broadcast %arg1 dims [1, 2] {cleave.layer = #cleave.layer<embed>} : tensor<16x32xf32> -> tensor<16x16x32xf32>
    %2 = cleave.add %0, %1 {cleave.layer = #cleave.layer<embed>} : tensor<16x16x32xf32>
    %3 = cleave.layer_norm %2, %arg2, %arg3 {cleave.layer = #cleave.layer<0>} : tensor<16x16x32xf32>, tensor<32xf32>
    %4 = cleave.matmul %3, %arg4 {cleave.layer = #cleave.layer<0>} : tensor<16x16x32xf32>, tensor<32x32xf32> -> tensor<16x16x32xf32>
    %5 = cleave.broadcast %arg5 dims [2] {cleave.layer = #cleave.layer<0>} : tensor<32xf32> -> tensor<16x16x32xf32>
    %6 = cleave.add %4, %5 {cleave.layer = #cleave.layer<0>} : tensor<16x16x32xf32>
    %7 = cleave.reshape %6 {cleave.layer = #cleave.layer<0>} : tensor<16x16x32xf32> -> tensor<16x16x2x16xf32>
    %8 = cleave.transpose %7 perm [0, 2, 1, 3] {cleave.layer = #cleave.layer<0>} : tensor<16x16x2x16xf32> -> tensor<16x2x16x16xf32>
    %9 = cleave.matmul %3, %arg6 {cleave.layer = #cleave.layer<0>} : tensor<16x16x32xf32>, tensor<32x32xf32> -> tensor<16x16x32xf32>
    %10 = cleave.broadcast %arg7 dims [2] {cleave.layer = #cleave.layer<0>} : tensor<32xf32> -> tensor<16x16x32xf32>
    %11 = cleave.add %9, %10 {cleave.layer = #cleave.layer<0>} : tensor<16x16x32xf32>
    %12 = cleave.reshape %11 {cleave.layer = #cleave.layer<0>} : tensor<16x16x32xf32> -> tensor<16x16x2x16xf32>
    %13 = cleave.transpose %12 perm [0, 2, 1, 3] {cleave.layer = #cleave.layer<0>} : tensor<16x16x2x16xf32> -> tensor<16x2x16x16xf32>
    %14 = cleave.matmul %3, %arg8 {cleave.layer = #cleave.layer<0>} : tensor<16x16x32xf32>, tensor<32x32xf32> -> tensor<16x16x32xf32>
    %15 = cleave.broadcast %arg9 dims [2] {cleave.layer = #cleave.layer<0>} : tensor<32xf32> -> tensor<16x16x32xf32>
    %16 = cleave.add %14, %15 {cleave.layer = #cleave.layer<0>} : tensor<16x16x32xf32>
    %17 = cleave.reshape %16 {cleave.layer = #cleave.layer<0>} : tensor<16x16x32xf32> -> tensor<16x16x2x16xf32>
    %18 = cleave.transpose %17 perm [0, 2, 1, 3] {cleave.layer = #cleave.layer<0>} : tensor<16x16x2x16xf32> -> tensor<16x2x16x16xf32>
    %19:2 = cleave.attention %8, %13, %18 causal {cleave.layer = #cleave.layer<0>} : tensor<16x2x16x16xf32>, tensor<16x2x16x16xf32>, tensor<16x2x16x16xf32>
    %20 = cleave.transpose %19#0 perm [0, 2, 1, 3] {cleave.layer = #cleave.layer<0>} : tensor<16x2x16x16xf32> -> tensor<16x16x2x16xf32>
    %21 = cleave.reshape %20 {cleave.layer = #cleave.layer<0>} : tensor<16x16x2x16xf32> -> tensor<16x16x32xf32>
    %22 = cleave.matmul %21, %arg10 {cleave.layer = #cleave.layer<0>} : tensor<16x16x32xf32>, tensor<32x32xf32> -> tensor<16x16x32xf32>
    %23 = cleave.broadcast %arg11 dims [2] {cleave.layer = #cleave.layer<0>} : tensor<32xf32> -> tensor<16x16x32xf32>
    %24 = cleave.add %22, %23 {cleave.layer = #cleave.layer<0>} : tensor<16x16x32xf32>
    %25 = cleave.add %2, %24 {cleave.layer = #cleave.layer<0>} : tensor<16x16x32xf32>
    %26 = cleave.layer_norm %25, %arg12, %arg13 {cleave.layer = #cleave.layer<0>} : tensor<16x16x32xf32>, tensor<32xf32>
    %27 = cleave.matmul %26, %arg14 {cleave.layer = #cleave.layer<0>} : tensor<16x16x32xf32>, tensor<32x128xf32> -> tensor<16x16x128xf32>
    %28 = cleave.broadcast %arg15 dims [2] {cleave.layer = #cleave.layer<0>} : tensor<128xf32> -> tensor<16x16x128xf32>
    %29 = cleave.add %27, %28 {cleave.layer = #cleave.layer<0>} : tensor<16x16x128xf32>
    %30 = cleave.gelu %29 {cleave.layer = #cleave.layer<0>} : tensor<16x16x128xf32>
    %31 = cleave.matmul %30, %arg16 {cleave.layer = #cleave.layer<0>} : tensor<16x16x128xf32>, tensor<128x32xf32> -> tensor<16x16x32xf32>
    %32 = cleave.broadcast %arg17 dims [2] {cleave.layer = #cleave.layer<0>} : tensor<32xf32> -> tensor<16x16x32xf32>
    %33 = cleave.add %31, %32 {cleave.layer = #cleave.layer<0>} : tensor<16x16x32xf32>
    %34 = cleave.add %25, %33 {cleave.layer = #cleave.layer<0>} : tensor<16x16x32xf32>
    %35 = cleave.layer_norm %34, %arg18, %arg19 {cleave.layer = #cleave.layer<1>} : tensor<16x16x32xf32>, tensor<32xf32>
    %36 = cleave.matmul %35, %arg20 {cleave.layer = #cleave.layer<1>} : tensor<16x16x32xf32>, tensor<32x32xf32> -> tensor<16x16x32xf32>
    %37 = cleave.broadcast %arg21 dims [2] {cleave.layer = #cleave.layer<1>} : tensor<32xf32> -> tensor<16x16x32xf32>
    %38 = cleave.add %36, %37 {cleave.layer = #cleave.layer<1>} : tensor<16x16x32xf32>
    %39 = cleave.reshape %38 {cleave.layer = #cleave.layer<1>} : tensor<16x16x32xf32> -> tensor<16x16x2x16xf32>
    %40 = cleave.transpose %39 perm [0, 2, 1, 3] {cleave.layer = #cleave.layer<1>} : tensor<16x16x2x16xf32> -> tensor<16x2x16x16xf32>
    %41 = cleave.matmul %35, %arg22 {cleave.layer = #cleave.layer<1>} : tensor<16x16x32xf32>, tensor<32x32xf32> -> tensor<16x16x32xf32>
    %42 = cleave.broadcast %arg23 dims [2] {cleave.layer = #cleave.layer<1>} : tensor<32xf32> -> tensor<16x16x32xf32>
    %43 = cleave.add %41, %42 {cleave.layer = #cleave.layer<1>} : tensor<16x16x32xf32>
    %44 = cleave.reshape %43 {cleave.layer = #cleave.layer<1>} : tensor<16x16x32xf32> -> tensor<16x16x2x16xf32>
    %45 = cleave.transpose %44 perm [0, 2, 1, 3] {cleave.layer = #cleave.layer<1>} : tensor<16x16x2x16xf32> -> tensor<16x2x16x16xf32>
    %46 = cleave.matmul %35, %arg24 {cleave.layer = #cleave.layer<1>} : tensor<16x16x32xf32>, tensor<32x32xf32> -> tensor<16x16x32xf32>
    %47 = cleave.broadcast %arg25 dims [2] {cleave.layer = #cleave.layer<1>} : tensor<32xf32> -> tensor<16x16x32xf32>
    %48 = cleave.add %46, %47 {cleave.layer = #cleave.layer<1>} : tensor<16x16x32xf32>
    %49 = cleave.reshape %48 {cleave.layer = #cleave.layer<1>} : tensor<16x16x32xf32> -> tensor<16x16x2x16xf32>
    %50 = cleave.transpose %49 perm [0, 2, 1, 3] {cleave.layer = #cleave.layer<1>} : tensor<16x16x2x16xf32> -> tensor<16x2x16x16xf32>
    %51:2 = cleave.attention %40, %45, %50 causal {cleave.layer = #cleave.layer<1>} : tensor<16x2x16x16xf32>, tensor<16x2x16x16xf32>, tensor<16x2x16x16xf32>
    %52 = cleave.transpose %51#0 perm [0, 2, 1, 3] {cleave.layer = #cleave.layer<1>} : tensor<16x2x16x16xf32> -> tensor<16x16x2x16xf32>
    %53 = cleave.reshape %52 {cleave.layer = #cleave.layer<1>} : tensor<16x16x2x16xf32> -> tensor<16x16x32xf32>
    %54 = cleave.matmul %53, %arg26 {cleave.layer = #cleave.layer<1>} : tensor<16x16x32xf32>, tensor<32x32xf32> -> tensor<16x16x32xf32>
    %55 = cleave.broadcast %arg27 dims [2] {cleave.layer = #cleave.layer<1>} : tensor<32xf32> -> tensor<16x16x32xf32>
    %56 = cleave.add %54, %55 {cleave.layer = #cleave.layer<1>} : tensor<16x16x32xf32>
    %57 = cleave.add %34, %56 {cleave.layer = #cleave.layer<1>} : tensor<16x16x32xf32>
    %58 = cleave.layer_norm %57, %arg28, %arg29 {cleave.layer = #cleave.layer<1>} : tensor<16x16x32xf32>, tensor<32xf32>
    %59 = cleave.matmul %58, %arg30 {cleave.layer = #cleave.layer<1>} : tensor<16x16x32xf32>, tensor<32x128xf32> -> tensor<16x16x128xf32>
    %60 = cleave.broadcast %arg31 dims [2] {cleave.layer = #cleave.layer<1>} : tensor<128xf32> -> tensor<16x16x128xf32>
    %61 = cleave.add %59, %60 {cleave.layer = #cleave.layer<1>} : tensor<16x16x128xf32>
    %62 = cleave.gelu %61 {cleave.layer = #cleave.layer<1>} : tensor<16x16x128xf32>
    %63 = cleave.matmul %62, %arg32 {cleave.layer = #cleave.layer<1>} : tensor<16x16x128xf32>, tensor<128x32xf32> -> tensor<16x16x32xf32>
    %64 = cleave.broadcast %arg33 dims [2] {cleave.layer = #cleave.layer<1>} : tensor<32xf32> -> tensor<16x16x32xf32>
    %65 = cleave.add %63, %64 {cleave.layer = #cleave.layer<1>} : tensor<16x16x32xf32>
    %66 = cleave.add %57, %65 {cleave.layer = #cleave.layer<1>} : tensor<16x16x32xf32>
    %67 = cleave.layer_norm %66, %arg34, %arg35 {cleave.layer = #cleave.layer<head>} : tensor<16x16x32xf32>, tensor<32xf32>
    %68 = cleave.matmul %67, %arg0 transpose_rhs {cleave.layer = #cleave.layer<head>} : tensor<16x16x32xf32>, tensor<64x32xf32> -> tensor<16x16x64xf32>
    %69 = cleave.cross_entropy %68, %arg37 {cleave.layer = #cleave.layer<head>} : tensor<16x16x64xf32>, tensor<16x16xi32> -> tensor<16x16xf32>
    %70 = cleave.reduce_mean %69 dims [0, 1] {cleave.layer = #cleave.layer<head>} : tensor<16x16xf32> -> tensor<f32>
    return %70 : tensor<f32>
  }
}

