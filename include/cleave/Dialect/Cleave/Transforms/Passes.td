//===- Passes.td - Cleave passes ---------------------------*- tablegen -*-===//

#ifndef CLEAVE_DIALECT_CLEAVE_TRANSFORMS_PASSES_TD
#define CLEAVE_DIALECT_CLEAVE_TRANSFORMS_PASSES_TD

include "mlir/Pass/PassBase.td"

def CleavePrintCost : Pass<"cleave-print-cost", "mlir::ModuleOp"> {
  let summary = "Print parameters, FLOPs and activation bytes per function";
  let description = [{
    For every function in the module, prints the parameter count (elements of
    the arguments marked `cleave.param`), FLOPs per op kind and in total, the
    part of them done as matrix products (`matmul_flops`; attention's two
    products count in full, causal or not, as Megatron-LM counts them) and
    activation bytes (bytes of every tensor the function's ops produce,
    reshapes excluded since they move no data) and, for programs with
    collectives, the bytes each device sends (`comm_bytes`; the table shows
    a `communicated bytes` row only when it is not zero). A pipeline rank's
    update (`cleave.pipeline_rank`) also counts what the runtime sends
    around it for parameters that stages on several ranks share (a tied
    embedding): the rank's parts of their gradients, to the rank that
    applies them, and, from that rank, their new values to the others. It
    also counts the pending sums the rank's stage programs return
    (`cleave-defer-gradient-reduction`), which the training loop completes
    once per step: an all-reduce each, or a reduce-scatter for those with
    `cleave.scatter_dim`.

    The report goes to standard output before the module; add `-o /dev/null`
    to see the report alone. With `json=true` it prints one JSON object per
    function and line:

    ```json
    {"function": "forward", "params": 124439808, "flops": ..., "matmul_flops": ...,
     "activation_bytes": ..., "bytes_read": ..., "comm_bytes": ...,
     "ops": {"cleave.matmul": {"count": 73, "flops": ...}, ...}}
    ```

    FLOPs and bytes are computed as `double`; values below 2^53 are exact.
  }];
  let options = [
    Option<"json", "json", "bool", /*default=*/"false",
           "Print JSON (one object per function and line) instead of a table">
  ];
  let dependentDialects = ["mlir::cleave::CleaveDialect"];
}

def CleaveAutoParallel : Pass<"cleave-auto-parallel", "mlir::ModuleOp"> {
  let summary = "Choose the data / tensor / pipeline plan from the cost model";
  let description = [{
    Plans the forward function (`function`, or the module's only one) for
    `devices` devices of `cluster`, as `cleavec plan` does (see
    docs/planner.md), and records the choice as the module's `cleave.plan`,
    a `#cleave.plan` (see the dialect reference) that the rest of the
    training pipeline follows:

    ```mlir
    module attributes {cleave.plan = #cleave.plan<mesh = "dp=8,pp=1,tp=1",
        strategies = ["zero1", "none", "none"], micro_batch_size = 8,
        zero_stage = 1, precision = "bf16", padded_vocab = 50257,
        cluster = "dgx-a100-80g", step_time_s = 0.0464 : f64,
        peak_memory_bytes = 1.02e+10 : f64, mfu = 0.484 : f64>} { ... }
    ```

    The mesh is the planner's (dp, pp, tp in mesh order); an axis the plan
    does not use has the strategy `none`. The pp axis is `pipeline` when
    there are stages, and also when a sharded mesh takes several
    micro-batches (they are pipelined through one stage). The plan's
    `@mesh` is added by the passes that partition the step.

    `objective=time` takes the fastest plan that fits, `objective=memory`
    the one needing the least memory per device. `mesh`, `schedule`,
    `micro-batch-size` and `zero-stage` fix those choices; `training`
    keeps to plans that train the model as it is (tp divides its
    vocabulary). A module that already has a plan or a mesh, an unknown
    cluster, a device count no mesh divides and a model that fits nowhere
    are errors.
  }];
  let options = [
    Option<"function", "function", "std::string", /*default=*/"\"\"",
           "The forward function to plan (default: the only one)">,
    Option<"devices", "devices", "int64_t", /*default=*/"1",
           "Devices to plan for">,
    Option<"cluster", "cluster", "std::string", /*default=*/"\"\"",
           "A shipped cluster name or a cluster file NAME.json">,
    Option<"globalBatch", "global-batch", "int64_t", /*default=*/"0",
           "Samples per step (0: the model's batch)">,
    Option<"memoryLimit", "memory-limit", "double", /*default=*/"0.0",
           "GiB a device may use (0: the device's memory)">,
    Option<"precision", "precision", "std::string", /*default=*/"\"\"",
           "bf16, f16 or f32 (default: bf16 where the cluster has a bf16 "
           "peak)">,
    Option<"mesh", "mesh", "std::string", /*default=*/"\"\"",
           "A fixed mesh, dp=2,tp=2 (default: searched)">,
    Option<"schedule", "schedule", "std::string", /*default=*/"\"\"",
           "A fixed pipeline schedule: gpipe, 1f1b or interleaved">,
    Option<"microBatchSize", "micro-batch-size", "int64_t", /*default=*/"0",
           "A fixed micro-batch size (0: searched)">,
    Option<"zeroStage", "zero-stage", "int64_t", /*default=*/"-1",
           "A fixed ZeRO stage, 0 to 3 (-1: searched)">,
    Option<"training", "training", "bool", /*default=*/"false",
           "Only plans that train the model as it is: tp divides its "
           "vocabulary">,
    Option<"objective", "objective", "mlir::cleave::PlanObjective",
           /*default=*/"mlir::cleave::PlanObjective::Time",
           "What the chosen plan minimizes",
           [{::llvm::cl::values(
               clEnumValN(mlir::cleave::PlanObjective::Time, "time",
                          "the step time, among plans that fit"),
               clEnumValN(mlir::cleave::PlanObjective::Memory, "memory",
                          "the memory per device"))}]>,
  ];
  let dependentDialects = ["mlir::cleave::CleaveDialect"];
}

def CleaveSetPlan : Pass<"cleave-set-plan", "mlir::ModuleOp"> {
  let summary = "Record the plan a person asked for";
  let description = [{
    Records `cleave.plan`, a `#cleave.plan`, from the options: what
    `cleave-auto-parallel` records from the planner's choice, here chosen
    by hand (cleavec's `--mesh`, `--strategy`, `--micro-batches` and the
    rest). The rest of the training pipeline reads the plan from the
    module.

    `strategy` names at most one strategy per axis: `dp` or `zero1`-`zero3`
    (data parallel with ZeRO's stage; `dp,zero1` is accepted for `zero1`)
    on dp, `megatron` or `search` on tp; an axis it does not name gets its
    canonical strategy (dp: data parallel, tp: Megatron), and a pp axis is
    `pipeline`. Without `mesh` the plan is one device's.

    ```mlir
    // cleave-set-plan{mesh=dp=2,tp=2 strategy=dp,zero1 precision=bf16}
    module attributes {cleave.plan = #cleave.plan<mesh = "dp=2,tp=2",
        strategies = ["zero1", "megatron"], zero_stage = 1,
        precision = "bf16">} { ... }
    ```

    A module that already has a plan or a mesh, an axis other than dp, tp
    and pp, a strategy for an axis the mesh lacks or two for one axis, and
    what the plan's verifier rejects are errors.
  }];
  let options = [
    Option<"mesh", "mesh", "std::string", /*default=*/"\"\"",
           "Mesh axes and sizes, outermost first: dp=2,tp=2,pp=2">,
    ListOption<"strategy", "strategy", "std::string",
               "Strategies of the dp and tp axes: dp, zero1-3, megatron, megatron-sp, "
               "search">,
    Option<"microBatches", "micro-batches", "int64_t", /*default=*/"1",
           "Micro-batches per step">,
    Option<"schedule", "schedule", "std::string", /*default=*/"\"1f1b\"",
           "Pipeline schedule: gpipe, 1f1b or interleaved">,
    Option<"virtualStages", "virtual-stages", "int64_t", /*default=*/"1",
           "Model chunks per pp rank">,
    ListOption<"layersPerStage", "layers-per-stage", "int64_t",
               "Transformer blocks per pp rank (default: even)">,
    Option<"recompute", "recompute", "bool", /*default=*/"false",
           "Recompute each layer's activations in the backward">,
    ListOption<"recomputeLayers", "recompute-layers", "int64_t",
               "With recompute: the first K blocks of each pipeline stage "
               "(one K for all, or one per stage; default: every block)">,
    Option<"precision", "precision", "std::string", /*default=*/"\"f32\"",
           "Compute precision: f32, bf16 or f16">,
    Option<"cluster", "cluster", "std::string", /*default=*/"\"\"",
           "The cluster the search strategy prices its choices on">,
  ];
  let dependentDialects = ["mlir::cleave::CleaveDialect"];
}

def CleaveVerifyLayerTags : Pass<"cleave-verify-layer-tags", "mlir::ModuleOp"> {
  let summary = "Check that every cleave op carries its layer provenance";
  let description = [{
    Fails with an error located at each `cleave` op that has no
    `cleave.layer` attribute, and at a block tag past the module's blocks:
    transformer blocks are tagged 0..N-1 without a gap, since the tags
    size the planner's and stage assignment's tables. `cleave.constant` is
    exempt from tagging: constants belong to
    no layer, since folding creates them and any consumer can rematerialize
    its own copy. Passes that rewrite IR must keep layer tags, and
    the per-layer passes (recompute, pipeline stages, the planner) rely on
    them; running this after a pipeline proves that nothing was dropped.
  }];
  let dependentDialects = ["mlir::cleave::CleaveDialect"];
}

def CleaveAssignStages : Pass<"cleave-assign-stages", "mlir::func::FuncOp"> {
  let summary = "Assign transformer blocks to pipeline stages";
  let description = [{
    Cuts a model's layers into `stages` x `virtual-stages` contiguous
    pipeline stages and tags every op with its stage: `cleave.stage = s`
    (the stage of its `cleave.layer`). The embedding goes with the first
    block, the head with the last, and every stage holds at least one
    block. The function records the stage of each block in
    `cleave.block_stages` (an `array<i64>`), so passes that create ops later
    (autodiff, the optimizer) can place them by their layer tag.

    Without `layers-per-stage`, the cut minimizes the most FLOPs any stage
    does (the cost interface summed per layer, embedding and head included),
    then the most parameter bytes any stage holds. `layers-per-stage=3,3,2`
    gives the block counts of the stages instead. With virtual stages (the
    interleaved schedule) every chunk gets the same number of blocks, as in
    Megatron-LM, so the blocks must divide evenly over stages x
    virtual-stages; rank r then holds the global stages c * stages + r.

    Without `function`, it stages the training step (`cleave.role` step)
    and functions without a role; the model a step was derived from (role
    `forward`) is staged only when named. With `report=true` it prints one
    line per stage: its blocks, FLOPs, share of the total and parameter
    bytes.

    ```
    cleave-opt model.mlir --cleave-assign-stages='function=forward stages=4 report=true'
    ```

    Errors: more stages than blocks, block counts that do not sum to the
    model's blocks, blocks that do not divide over the virtual stages, and
    ops without a layer tag.
  }];
  let options = [
    Option<"function", "function", "std::string", /*default=*/"\"\"",
           "The function to stage (default: those with cleave.role step or "
           "with no role)">,
    Option<"stages", "stages", "int64_t", /*default=*/"1",
           "Pipeline ranks (the pp axis size)">,
    Option<"virtualStages", "virtual-stages", "int64_t", /*default=*/"1",
           "Model chunks per rank (interleaved schedule)">,
    ListOption<"layersPerStage", "layers-per-stage", "int64_t",
               "Blocks per stage, first to last (default: balanced)">,
    Option<"report", "report", "bool", /*default=*/"false",
           "Print each stage's blocks, FLOPs and parameter bytes">,
  ];
  let dependentDialects = ["mlir::cleave::CleaveDialect"];
}

def CleavePipelineSplit : Pass<"cleave-pipeline-split", "mlir::ModuleOp"> {
  let summary = "Cut a training step into per-stage forward and backward programs";
  let description = [{
    Replaces the gradient step (`cleave-autodiff`'s `@train_step`, staged by
    `cleave-assign-stages`) with two functions per stage s:
    `@train_step_stage<s>_forward` runs one micro-batch's forward ops of the
    stage, `@train_step_stage<s>_backward` its backward ops. (The forward ops
    are the ones the loss depends on.) Where a value crosses stages, the
    producer sends it (`cleave.send ... to stage t tag k`) and the consumer
    receives it (`cleave.recv from stage s tag k`). Each tag names one
    transfer, so the pairs match one to one: activations go forward, their
    gradients backward. A gradient summed from parts that several stages
    compute (a tied parameter's) is not summed per micro-batch: each of
    those stages returns its part under the gradient's name, and the
    runtime adds the accumulated parts once per step. Tags follow the order in which
    each program sends, and every program receives at its start in tag
    order, so two programs always agree on the order of their transfers. A
    forward value the stage's own backward needs is stashed: the forward
    function returns it and the backward function takes it
    (`cleave.stash = k` on both ends); the runtime keeps one stash per
    micro-batch in flight. A forward value another stage's backward needs
    travels with the pass in between (received and stashed by an earlier
    consumer, stashed and sent from its backward by a later producer). A
    value that a forward pass needs from a backward pass, or from a later
    stage's forward, cannot be scheduled and is an error, and so is a step
    that already updates its parameters (split before `cleave-optimizer`).

    Arguments keep their `cleave.param`/`cleave.input` names, and results
    keep their `cleave.output` names (the loss on the last stage's forward,
    each gradient on the backward of the stage, or stages, that compute
    it). Each function carries `cleave.stage` and its `cleave.role`
    (`stage_forward` or `stage_backward`). Constants are copied into every
    function that uses them.

    The module records the schedule its stages run as `cleave.schedule`
    (`#cleave.schedule<"1f1b", ranks = 2, virtual_stages = 1,
    micro_batches = 4>`): the stages divide over `ranks` pp ranks (default:
    the pp axis of the module's mesh, or one stage per rank), each rank
    running `stages / ranks` virtual stages. A module without a mesh gets
    `cleave.mesh @mesh` with that one pp axis.
  }];
  let options = [
    Option<"function", "function", "std::string", /*default=*/"\"\"",
           "The gradient step to split "
           "(default: the one with cleave.role step)">,
    Option<"ranks", "ranks", "int64_t", /*default=*/"0",
           "pp ranks the stages run on (default: the mesh's pp axis, or one "
           "rank per stage)">,
    Option<"schedule", "schedule", "mlir::cleave::pipeline::ScheduleKind",
           /*default=*/"mlir::cleave::pipeline::ScheduleKind::OneFOneB",
           "Pipeline schedule",
           [{::llvm::cl::values(
               clEnumValN(mlir::cleave::pipeline::ScheduleKind::GPipe, "gpipe",
                          "all forwards, then all backwards"),
               clEnumValN(mlir::cleave::pipeline::ScheduleKind::OneFOneB,
                          "1f1b", "one forward, one backward"),
               clEnumValN(mlir::cleave::pipeline::ScheduleKind::Interleaved,
                          "interleaved", "1F1B over virtual stages"))}]>,
    Option<"microBatches", "micro-batches", "int64_t", /*default=*/"1",
           "Micro-batches per step">,
  ];
  let dependentDialects = ["mlir::cleave::CleaveDialect"];
}

def CleaveDeferGradientReduction
    : Pass<"cleave-defer-gradient-reduction", "mlir::ModuleOp"> {
  let summary = "Reduce data-parallel gradients once per step, not per "
                "micro-batch";
  let description = [{
    Runs on the per-stage programs of `cleave-pipeline-split` once
    `cleave-optimizer` has given each pp rank its update. Partitioning
    completes each gradient with an all-reduce over the data-parallel axis
    inside the stage's backward, which runs once per micro-batch. This pass
    removes that axis from the sum: the backward returns its addend, marked
    as a pending sum (`cleave.block` with `partial = [dp]`), and the
    training loop accumulates the micro-batches' addends locally and
    reduces them once per step, in buckets started while the last
    micro-batch's backward still runs (docs/overlap.md). The loss, summed
    over dp on the last stage's forward, is deferred the same way.

    A gradient whose update reads only its dp block (ZeRO-1: every use is a
    `cleave.local_slice` over dp along one dimension d) becomes that block:
    the update's argument takes the block's type and sharding, its slices
    go, and the backward's result carries `cleave.scatter_dim = d`, so the
    runtime reduce-scatters rather than all-reduces. A gradient that
    several stages compute parts of (a tied table's) is all-reduced: the
    runtime sums each rank's part over dp, then the parts over pp on the
    rank that applies it. Casts, and gathers over other axes, may stand
    between the sum and the return (a sum commutes with both); a gradient
    completed any other way keeps its sum. ZeRO-2 and ZeRO-3
    reduce-scatter each micro-batch's gradients into sharded accumulators
    and are left as they are.

    ```mlir
    // before
    %g = cleave.all_reduce %partial on @mesh [dp] sum : tensor<32x32xf32>
    return %g : tensor<32x32xf32>
    // after: {cleave.block = #cleave.sharding<@mesh, [[], []], partial = [dp]>}
    return %partial : tensor<32x32xf32>
    ```
  }];
  let options = [
    Option<"axis", "axis", "std::string", /*default=*/"\"dp\"",
           "The data-parallel mesh axis">,
  ];
  let dependentDialects = ["mlir::cleave::CleaveDialect"];
}

def CleaveAutodiff : Pass<"cleave-autodiff", "mlir::ModuleOp"> {
  let summary = "Derive a training step (loss and gradients) from a forward function";
  let description = [{
    Reverse-mode automatic differentiation. From a function
    `@forward(params..., inputs...) -> loss` (a scalar float tensor) it builds
    `@train_step` with the same arguments, returning the loss followed by one
    gradient per `cleave.param` argument, in argument order. Results carry
    what they are, `cleave.output_role` loss or gradient, which later passes
    and the runtime read, and a name for output files: `cleave.output =
    "loss"` and `"grad.<param>"`. Without `function`, it differentiates the
    function whose `cleave.role` is `forward`; the step gets the role `step`.

    The pass is generic: it walks the forward ops backwards and asks each op
    for its vector-Jacobian product through `DifferentiableOpInterface`.
    Gradients of values used several times (a tied embedding and output
    projection) are summed; broadcasts reduce their gradient back; integer
    operands (token ids, targets) and masks get none. A parameter the loss
    does not depend on gets a zero gradient. Every backward op carries the
    layer tag of the forward op it differentiates. An op without a rule is a
    located error.
  }];
  let options = [
    Option<"function", "function", "std::string", /*default=*/"\"\"",
           "The forward function to differentiate "
           "(default: the one with cleave.role forward)">,
    Option<"stepName", "name", "std::string", /*default=*/"\"train_step\"",
           "Name of the function to create">,
  ];
  let dependentDialects = ["mlir::cleave::CleaveDialect"];
}

def CleaveMixedPrecision : Pass<"cleave-mixed-precision", "mlir::ModuleOp"> {
  let summary = "Compute an f32 forward function in bf16 or f16";
  let description = [{
    Mixed precision: parameters stay f32 (the optimizer updates these master
    weights) and are cast to `precision` where the forward function reads
    them, as are f32 inputs. Every other f32 value becomes a 16-bit value,
    except what needs the range and precision of f32: `cross_entropy` takes
    its logits in f32 and reductions (`reduce_sum`, `reduce_mean`,
    `reduce_max`) read and return f32, so the loss is f32. The runtime
    computes 16-bit ops in f32 and rounds on store; GEMMs accumulate in f32.
    Run it before `cleave-autodiff`: the gradient of each cast brings the
    parameter gradients back to f32.
  }];
  let options = [
    Option<"function", "function", "std::string", /*default=*/"\"\"",
           "The forward function (default: the one with cleave.role forward)">,
    Option<"precision", "precision", "mlir::cleave::ComputePrecision",
           /*default=*/"mlir::cleave::ComputePrecision::BF16",
           "The compute precision",
           [{::llvm::cl::values(
               clEnumValN(mlir::cleave::ComputePrecision::BF16, "bf16",
                          "bfloat16"),
               clEnumValN(mlir::cleave::ComputePrecision::F16, "f16",
                          "IEEE half precision"))}]>,
  ];
  let dependentDialects = ["mlir::cleave::CleaveDialect"];
}

def CleaveMicroBatch : Pass<"cleave-micro-batch", "mlir::ModuleOp"> {
  let summary = "Shrink a forward function to one of m equal micro-batches";
  let description = [{
    Rewrites the forward function so that it processes `1/factor` of its
    batch: dimension 0 of every `cleave.input` argument (the batch, which
    they must share) and of every value computed from it shrinks by
    `factor`. A broadcast that introduces the batch dimension (position
    embeddings) shrinks too; a reduction over dimension 0 (the mean loss)
    ends the batch. The training loop then runs the function once per
    micro-batch and averages losses and gradients, which for a mean loss is
    exactly the full batch's loss and gradient, with the activations of one
    micro-batch alive at a time.

    Anything that moves data across the batch dimension (a reshape that
    folds it into another dimension, a concat or slice along it) is
    rejected with a located error.
  }];
  let options = [
    Option<"function", "function", "std::string", /*default=*/"\"\"",
           "The forward function to shrink "
           "(default: the one with cleave.role forward)">,
    Option<"factor", "factor", "int64_t", /*default=*/"1",
           "Number of micro-batches">,
  ];
  let dependentDialects = ["mlir::cleave::CleaveDialect"];
}

def CleaveOptimizer : Pass<"cleave-optimizer", "mlir::ModuleOp"> {
  let summary = "Append the optimizer update to a training step";
  let description = [{
    Turns the gradients `cleave-autodiff` returns into an update. The step
    function gains arguments `lr` (and, for AdamW, `step`, counted from 1)
    as scalar f32 inputs, and one optimizer-state argument per parameter and
    moment (`cleave.state = "adam_m.<param>"`, `"adam_v.<param>"` or
    `"momentum.<param>"`), so that later passes can shard state like the
    parameters. It returns the loss, the global gradient norm (before
    clipping) and the next value of every parameter and state argument, each
    marked `cleave.updates = <argument index>` so the runtime updates the
    buffers in place.

    - `sgd`: `v = momentum * v + g` (no state when momentum is 0),
      `p -= lr * (v + weight_decay * p)`.
    - `adamw`: `m = b1 m + (1 - b1) g`, `v = b2 v + (1 - b2) g^2`,
      `p -= lr * (m / (1 - b1^t) / (sqrt(v / (1 - b2^t)) + eps) + wd * p)`
      with decoupled weight decay.

    Weight decay applies to matrices (rank >= 2) only, not to biases and
    norm scales. With `clip-norm` > 0, gradients are scaled by
    `min(1, clip / (norm + 1e-6))` first.

    With `separate=true` the step is left alone and the update goes into a
    new function `@apply_update` (`cleave.role = #cleave.role<update>`),
    whose gradient arguments are inputs named
    `grad.<param>`: the runtime accumulates gradients over micro-batches and
    applies them once.

    A module of pipeline stages (`cleave-pipeline-split`, which records
    `cleave.schedule` over p ranks) gets one update per pp rank r,
    `@apply_update_rank<r>` (marked `cleave.pipeline_rank = r`), over the
    parameters whose gradients the backward functions of its stages
    (s % p == r) return. The gradient norm is global: each update sums its
    squares and adds the other ranks' with a `cleave.all_reduce` over the
    `pp` axis of the module's mesh, which must exist when p > 1.

    There, `zero-stage` (by default the module's `cleave.plan`'s) splits
    the update over the mesh's `dp` axis as ZeRO does. Each rank keeps the
    optimizer state of one `dp` block of every parameter (split on its
    first dimension that no other axis splits and that divides), slices its
    block of the parameter and the gradient (no communication), updates it
    and all-gathers the updated parameter. Gradients the stages already
    return split over `dp` (ZeRO-2, `cleave-shard-zero` before the split)
    are used as they come, and parameters split over it (ZeRO-3) are
    updated where they are, with no gather. The norm's squares of split
    blocks are summed over `dp` too.
  }];
  let options = [
    Option<"function", "function", "std::string", /*default=*/"\"\"",
           "The training step to extend "
           "(default: the one with cleave.role step)">,
    Option<"optimizer", "optimizer", "mlir::cleave::OptimizerKind",
           /*default=*/"mlir::cleave::OptimizerKind::AdamW", "The update rule",
           [{::llvm::cl::values(
               clEnumValN(mlir::cleave::OptimizerKind::AdamW, "adamw",
                          "AdamW, decoupled weight decay"),
               clEnumValN(mlir::cleave::OptimizerKind::Sgd, "sgd",
                          "SGD with momentum"))}]>,
    Option<"momentum", "momentum", "double", /*default=*/"0.0", "SGD momentum">,
    Option<"beta1", "beta1", "double", /*default=*/"0.9", "AdamW beta1">,
    Option<"beta2", "beta2", "double", /*default=*/"0.999", "AdamW beta2">,
    Option<"epsilon", "epsilon", "double", /*default=*/"1e-8", "AdamW epsilon">,
    Option<"weightDecay", "weight-decay", "double", /*default=*/"0.0",
           "Weight decay of matrices">,
    Option<"clipNorm", "clip-norm", "double", /*default=*/"0.0",
           "Clip the global gradient norm to this (0: off)">,
    Option<"zeroStage", "zero-stage", "int64_t", /*default=*/"-1",
           "Pipeline stages: the ZeRO stage of the updates (0-3; -1: the "
           "module's cleave.plan's, 0 without one)">,
    Option<"separate", "separate", "bool", /*default=*/"false",
           "Put the update in its own function, apply_update(params, "
           "grad.<param> inputs, lr, step, state), for gradient "
           "accumulation over micro-batches; the step keeps returning the "
           "loss and gradients">,
  ];
  let dependentDialects = ["mlir::cleave::CleaveDialect"];
}

def CleaveRecompute : Pass<"cleave-recompute", "mlir::ModuleOp"> {
  let summary = "Recompute each layer's activations in the backward pass";
  let description = [{
    Activation recompute (checkpointing) per layer, on the training step
    `cleave-autodiff` built. The forward ops are those the loss depends on;
    for every transformer block (`#cleave.layer<N>`), the values it passes
    to other layers (the residual stream at its boundaries) stay alive, and
    everything else the backward pass reads from the block is computed again
    from those boundaries, parameters and inputs, just before the block's
    first backward op. The originals then die right after the forward pass
    has used them, so only the boundaries of all layers and one layer's
    internals are alive at once: `cleave-plan-memory` reports the smaller
    arena. Recomputation repeats the same ops in the same order, so the
    results do not change.

    `layers` sets the granularity, as Megatron-LM's `--recompute-num-layers`
    does: the first K blocks of each pipeline stage are recomputed, the
    others keep their activations. One K applies to every stage; a list
    gives each stage (in order, virtual stages included) its own. Stages are
    read from the ops' `cleave.stage` (`cleave-assign-stages`); a step
    without them is one stage. Without `layers` every block is recomputed.
  }];
  let options = [
    Option<"function", "function", "std::string", /*default=*/"\"\"",
           "The training step (default: the one with cleave.role step)">,
    ListOption<"layers", "layers", "int64_t",
               "Blocks recomputed per stage, the first of each: one count "
               "for all stages or one per stage (default: every block)">,
  ];
  let dependentDialects = ["mlir::cleave::CleaveDialect"];
  let statistics = [
    Statistic<"numRecomputed", "recomputed-ops", "Forward ops recomputed">,
  ];
}

def CleaveFuse : Pass<"cleave-fuse", "mlir::func::FuncOp"> {
  let summary = "Group elementwise and broadcast ops into fused kernels";
  let description = [{
    Walks the function in program order and puts every elementwise op
    (`add` ... `silu`, `compare`, `select`, `cast`, `fill`) and every
    `broadcast` into a `cleave.fused` kernel. An op joins the kernel of one of
    its operands when it has the same shape and all its other operands are
    computed before that kernel starts; otherwise it starts a new kernel. A
    broadcast always starts a kernel (its input comes from outside), so a
    bias broadcast, the add that uses it and the activation after it become
    one kernel. When an op joins one kernel and another kernel also feeds
    it, the two merge if everything both read exists before the earlier one
    starts (two chains meeting in an add, as in an optimizer's moment
    update). Values used after a kernel become its results; the rest never
    reach memory.

    Every elementwise op ends up inside a `cleave.fused` op, which is what
    `cleave-translate --cleave-to-cpp` expects. The layer tag is kept when all
    ops of a kernel share it.

    Before grouping, GEMM epilogues: a cast to f32 that is the only use of a
    bf16 or f16 `matmul` folds into it (an f32 result), so the GEMM stores
    its f32 accumulator instead of a rounded copy that the cast widens
    again. Mixed precision's weight gradients reach their f32 buffers, and
    the loss its f32 logits, this way. Then a matmul whose only use adds a
    bias broadcast along its last dimension becomes `cleave.matmul_bias`,
    taking the `gelu` of the sum with it when there is one (the sum stays a
    second result while anything else, such as the backward, reads it): the
    GEMM's epilogue adds the bias and applies the activation as it stores.
    `epilogues=false` leaves matmuls and their bias adds apart.
  }];
  let dependentDialects = ["mlir::cleave::CleaveDialect"];
  let options = [
    Option<"epilogues", "epilogues", "bool", /*default=*/"true",
           "Fold bias adds and gelu after a matmul into cleave.matmul_bias">,
  ];
  let statistics = [
    Statistic<"numWideningCasts", "widening-casts",
              "Casts to f32 folded into the matmul that feeds them">,
    Statistic<"numBiasEpilogues", "bias-epilogues",
              "Matmuls given their bias (and gelu) as an epilogue">,
    Statistic<"numKernels", "kernels", "Fused kernels created">,
    Statistic<"numFusedOps", "fused-ops", "Ops moved into fused kernels">,
  ];
}

def CleaveOverlapCollectives
    : Pass<"cleave-overlap-collectives", "mlir::func::FuncOp"> {
  let summary = "Run data-parallel collectives while other layers compute";
  let description = [{
    Makes the data-parallel collectives whose results are not needed at once
    asynchronous: each is started early and read through a `cleave.wait`
    placed late, so the ops in between compute while it moves data.

    The function's ops fall into segments, the maximal runs of one layer
    tag (`cleave.layer`) in program order: in a forward the embedding, the
    blocks and the head; in a backward the same in reverse.

    - A parameter's gather over `dp` (ZeRO-3: an `all_gather` of a
      function argument, or of a cast of one, fused or not) is prefetched
      one segment ahead: it starts, after the segment's other casts, where
      the segment before the one that reads it begins, and its wait stands
      before its first reader.
    - A sum over `dp` (`all_reduce` or `reduce_scatter`) whose result is
      first read in a later segment (a gradient: ZeRO-2 and ZeRO-3
      reduce-scatter each micro-batch's, plain data parallelism on one
      micro-batch all-reduces them before the update) runs behind the
      backward: its wait stands before its first reader, or before the
      second segment after its own, whichever comes first, so at most two
      segments' full gradients are alive at once. A sum's only reader that
      reads nothing else and has no side effects (mixed precision's cast to
      f32) moves down to its own first reader first.

    The sums of one segment with the same axes, kind and element type form
    buckets of up to `bucket-mb` MiB, each started once its last gradient
    is computed; a segment's gathers stand together. Collectives started
    back to back go out as one group (one NCCL launch), which the runtime
    splits at its own `--bucket-mb`. Only sums, and collectives over
    contiguous blocks (no elements before the split dimension), are
    started; collectives already read through a wait are left alone.
    `cleave-plan-memory` keeps a started collective's input alive until its
    wait.

    ```mlir
    // before: layer 1's weight is gathered where layer 1 reads it
    %h = cleave.gelu %x {cleave.layer = #cleave.layer<0>} : ...
    %w = cleave.all_gather %arg1 on @mesh [dp] dim 0 {cleave.layer = #cleave.layer<1>} : ...
    %y = cleave.matmul %h, %w {cleave.layer = #cleave.layer<1>} : ...
    // after: gathered while layer 0 computes
    %w = cleave.all_gather %arg1 on @mesh [dp] dim 0 {cleave.layer = #cleave.layer<1>} : ...
    %h = cleave.gelu %x {cleave.layer = #cleave.layer<0>} : ...
    %w_ready = cleave.wait %w {cleave.layer = #cleave.layer<1>} : ...
    %y = cleave.matmul %h, %w_ready {cleave.layer = #cleave.layer<1>} : ...
    ```
  }];
  let options = [
    Option<"bucketMegabytes", "bucket-mb", "double", /*default=*/"25.0",
           "Largest group of collectives started together, in MiB">,
  ];
  let dependentDialects = ["mlir::cleave::CleaveDialect"];
}

def CleavePlanMemory : Pass<"cleave-plan-memory", "mlir::func::FuncOp"> {
  let summary = "Give every intermediate tensor an offset in one arena";
  let description = [{
    Assigns each op result a byte offset in a single per-function arena
    (`cleave.arena_offsets`, one per result) and records the arena's peak size
    on the function (`cleave.arena_bytes`). A buffer lives from the op that
    defines it to its last use; returned values live to the end. Buffers are
    placed in program order at the smallest free gap that fits (best fit),
    and a buffer is freed only after the op that last reads it has written
    its results, so an op never writes over its own operands. Sizes are
    rounded up to 256 bytes, the arena's alignment.

    `reshape` moves no data: its result shares its operand's buffer (and
    keeps it alive), as a `wait`'s shares its collective's. A collective
    read through a `wait` still reads its input until the wait, so the
    input's buffer lives at least that long. Function arguments live
    outside the arena.

    With `report=true` the pass prints `arena: <function>: <bytes> bytes,
    <buffers> buffers` to standard output.
  }];
  let options = [
    Option<"report", "report", "bool", /*default=*/"false",
           "Print each function's peak arena size to standard output">
  ];
  let dependentDialects = ["mlir::cleave::CleaveDialect"];
}

def CleavePropagateSharding : Pass<"cleave-propagate-sharding", "mlir::func::FuncOp"> {
  let summary = "Complete the shardings of a function from its constraints";
  let description = [{
    Starts from the shardings of function arguments and from `cleave.shard`
    constraints, and spreads them through every op's sharding rule, forward
    and backward, to a fixed point. Then every op carries
    `cleave.sharding = [...]` (one `#cleave.sharding` per result, including
    the axes of partial sums its reductions leave) and every argument and
    result carries `cleave.sharding`. Functions with no sharding anywhere are
    left alone.

    Deterministic rules decide between alternatives:
    - Argument shardings come first, then constraints by `priority`, 0
      (the highest) first; each level spreads to a fixed point before the
      next one starts, so a lower priority only splits dimensions that are
      still whole.
    - A sharding only grows: a whole dimension can gain axes, a split one
      never changes. A pending partial sum may turn into a split of the
      same axis (a reduce-scatter).
    - Within an op, operands are consulted before results, in order; a
      factor keeps the first axes it is given and an axis splits one factor.
    - Two values that ask for different splits at the same priority (two
      constraints that contradict each other) are an error, with a note at
      the other constraint.
    - A tensor made from scalars alone (a constant, a broadcast scalar) with
      several users is first copied once per user, so that CSE sharing one
      between unrelated parameters does not make their splits conflict.
  }];
  let dependentDialects = ["mlir::cleave::CleaveDialect"];
}

def CleavePartition : Pass<"cleave-partition", "mlir::func::FuncOp"> {
  let summary = "Rewrite a sharded function into the per-device program";
  let description = [{
    Takes a function annotated by `cleave-propagate-sharding` and rewrites it
    into the program one device runs: every tensor takes its per-device
    type, ops compute on their blocks (through each op's partition hook:
    vocab-parallel embedding and cross-entropy build their masked forms),
    and collectives appear where shardings change:
    - a partial sum becomes a `reduce_scatter` when the consumer wants it
      split on the same axis, an `all_reduce` otherwise, and is left pending
      through linear ops (`add`/`sub` of equally partial values, `neg`,
      `reshape`, `transpose`, `broadcast`, `reduce_sum`, and `mul`,
      `div` or `matmul` by a complete value) so that summed
      contributions are reduced once; a complete float scalar added to or
      subtracted from a pending one that keeps accumulating joins it,
      scaled by 1 / devices;
    - a dimension that gains axes is cut locally (`local_slice`, free), an
      axis that moves between dimensions is an `all_to_all`, and one that
      must go is an `all_gather`, tried in that order, one axis move at a
      time;
    - each value is resharded at most once per target sharding, except a
      parameter in a function that returns a loss: the ops the loss does
      not depend on (the backward, recomputed copies, the update) reshard
      it again, as ZeRO-3 gathers its weights again for the backward, so
      no device keeps every gathered weight from forward to backward; the
      repeats carry `cleave.recompute`, which keeps CSE from merging them.
    Where an op could take its splits from its operands or from its
    results, the choice that moves fewer bytes wins: a parameter's reshard
    counts its share among the ops of the same half of the step that read
    it (they share it), and a result's later reshard counts unless it is a
    pending sum added to another pending on the same axes.
    `cleave.shard` constraints disappear and arguments and results take
    their per-device types; their `cleave.sharding` becomes `cleave.block`,
    the sharding of the global tensor whose block each device holds. The
    function must be fully annotated, on one mesh, before anything is
    rewritten.
  }];
  let dependentDialects = ["mlir::cleave::CleaveDialect"];
}

def CleaveShardDataParallel : Pass<"cleave-shard-data-parallel", "mlir::ModuleOp"> {
  let summary = "Split the batch over a mesh axis (data parallelism)";
  let description = [{
    Constrains the leading (batch) dimension of every non-scalar
    `cleave.input` argument of `function` to `axis`. Propagation then splits
    the activations, and partitioning turns the parameters' gradients into
    partial sums all-reduced over `axis`. The batch must divide evenly.
  }];
  let options = [
    Option<"function", "function", "std::string", /*default=*/"\"\"",
           "Function to shard (default: the one with cleave.role step, else "
           "forward)">,
    Option<"axis", "axis", "std::string", /*default=*/"\"dp\"",
           "Mesh axis to split the batch over">,
    Option<"priority", "priority", "int64_t", /*default=*/"0",
           "Priority of the constraints (0 is the highest)">,
  ];
  let dependentDialects = ["mlir::cleave::CleaveDialect"];
}

def CleaveShardMegatron : Pass<"cleave-shard-megatron", "mlir::ModuleOp"> {
  let summary = "Split attention heads, MLPs and the vocabulary (tensor parallelism)";
  let description = [{
    Megatron-LM's tensor parallelism as constraints on parameters, read off
    the step's forward products and their sharding rules, not names. In a
    transformer block, a product whose activation comes, after the block's
    last normalization, from other products with parameter weights is
    row-parallel: its weight splits along its rule's contraction factor
    (the attention output and MLP output projections). Those products are
    column-parallel: their weights split along the output factor, and so do
    the rank-1 biases added to them (query, key, value, MLP input). The
    output head's weight splits along its output factor, the vocabulary,
    and an embedding table along its rows, the vocabulary. A product with
    no partner in its block is left whole.
    Propagation carries the splits through heads and activations;
    partitioning then adds one all-reduce per attention and per MLP block
    forward, one each backward, and the vocab-parallel embedding and loss.
    Every attention op's heads and the vocabulary must divide by the axis.

    With `sequence-parallel` (strategy `megatron-sp`), Megatron-LM's
    sequence parallelism: the input and output of every normalization in
    the forward (the residual stream where the products do not split it)
    are also constrained to split on the sequence, the dimension before the
    last, at a lower priority than the weights. Propagation carries that
    split through the residual adds and into the backward, so partitioning
    turns each block's all-reduces into a reduce-scatter onto the sequence
    and an all-gather before the next column-parallel product, and the
    norms, residual adds and their gradients run on 1/tp of the sequence.
    The sequence must divide by the axis.
  }];
  let options = [
    Option<"function", "function", "std::string", /*default=*/"\"\"",
           "Function to shard (default: the one with cleave.role step, else "
           "forward)">,
    Option<"axis", "axis", "std::string", /*default=*/"\"tp\"",
           "Mesh axis to split over">,
    Option<"priority", "priority", "int64_t", /*default=*/"0",
           "Priority of the constraints (0 is the highest)">,
    Option<"sequenceParallel", "sequence-parallel", "bool",
           /*default=*/"false",
           "Also split the norms' inputs and outputs on the sequence "
           "(Megatron-LM's sequence parallelism)">,
  ];
  let dependentDialects = ["mlir::cleave::CleaveDialect"];
}

def CleaveSearchTensorSharding
    : Pass<"cleave-search-tensor-sharding", "mlir::ModuleOp"> {
  let summary = "Choose each parameter's tensor-parallel split by an exact, cost-driven search";
  let description = [{
    Tensor parallelism found rather than prescribed. Every op of the
    training step chooses which of its factors the axis splits (or none),
    every parameter which dimension (or none); a choice costs its compute
    (divided by the axis when split: GEMMs at the cluster's calibrated
    rate, other ops at memory bandwidth), the optimizer's update of the
    parameter's local part, and the collectives between what a producer
    makes and what its consumers need (all-reduce, reduce-scatter,
    all-gather, all-to-all, alpha-beta over the axis's link). The cheapest
    choice of a layer is an integer linear program, solved exactly with
    GLPK; identical layers (same ops, same shapes) are solved once. Factors
    tied to the batch or the sequence are left to data parallelism;
    activations enter and leave a layer whole on the axis, and a
    parameter's gradient leaves laid out like the parameter. The chosen splits
    become constraints on the parameters, as cleave-shard-megatron's do,
    and on the op results the solution splits (one priority per position
    in a layer, after the parameters'), so that propagation lays the step
    out as the solution priced it rather than resolving meetings of splits
    its own way; partitioning then places the collectives.

    With `report`, prints per layer group the splits, the predicted time
    and the collectives the choice implies.
  }];
  let options = [
    Option<"function", "function", "std::string", /*default=*/"\"\"",
           "Function to shard (default: the one with cleave.role step, else "
           "forward)">,
    Option<"axis", "axis", "std::string", /*default=*/"\"tp\"",
           "Mesh axis to split over">,
    Option<"cluster", "cluster", "std::string", /*default=*/"\"dgx-a100-80g\"",
           "Cluster whose devices and links price the choices (a shipped "
           "name or a cluster file)">,
    Option<"priority", "priority", "int64_t", /*default=*/"0",
           "Priority of the constraints (0 is the highest)">,
    Option<"report", "report", "bool", /*default=*/"false",
           "Print the chosen splits and their predicted cost">,
  ];
  let dependentDialects = ["mlir::cleave::CleaveDialect"];
}

def CleaveShardZero : Pass<"cleave-shard-zero", "mlir::ModuleOp"> {
  let summary = "Split optimizer state, gradients and parameters over the data-parallel axis (ZeRO)";
  let description = [{
    ZeRO as constraints, at a lower priority than data parallelism, which
    must have split the batch over the axis first. Each constrained argument is split on its
    first dimension that divides by the axis and that a constraint already
    on it (Megatron's) leaves whole; it stays whole if there is none. Updated
    parameters and state come out laid out like their arguments.
    - `stage=1`: optimizer state (`cleave.state` arguments). Propagation
      splits the update, so each gradient is reduce-scattered where it is
      complete and each updated parameter all-gathered into the result; no
      gradient or parameter is all-reduced.
    - `stage=2`: the same constraints. ZeRO-2 adds to ZeRO-1 that no device
      keeps a whole gradient, and the stage-1 program already reduce-scatters
      each gradient right where it is complete.
    - `stage=3`: also the parameters (`cleave.param` arguments), which are
      all-gathered where they are used and updated in pieces.

    A step without optimizer state whose update is built apart (pipeline
    stages, micro-batches: `cleave-optimizer` runs after the split) returns
    gradients instead. Stage 1 places nothing there (the gradients stay
    whole and the update slices them); stages 2 and 3 constrain each
    parameter's gradient result to be split on the dimension its state
    would be, so that it is reduce-scattered where it is complete; stage 3
    also constrains the parameters.
  }];
  let options = [
    Option<"function", "function", "std::string", /*default=*/"\"\"",
           "Function to shard (default: the one with cleave.role step, else "
           "forward)">,
    Option<"axis", "axis", "std::string", /*default=*/"\"dp\"",
           "Mesh axis to split over">,
    Option<"stage", "stage", "int64_t", /*default=*/"1", "ZeRO stage: 1, 2 or 3">,
    Option<"priority", "priority", "int64_t", /*default=*/"1",
           "Priority of the constraints (0 is the highest)">,
  ];
  let dependentDialects = ["mlir::cleave::CleaveDialect"];
}

def CleaveParallelize : Pass<"cleave-parallelize", "mlir::ModuleOp"> {
  let summary = "Shard a training step over a mesh: strategies, propagation, partitioning";
  let description = [{
    Adds `cleave.mesh @mesh` from `mesh` (e.g. `mesh=dp=2,tp=2`, outermost
    axis first), runs one strategy per entry of `strategy` (e.g.
    `strategy=dp,megatron,zero1`: `dp`, `megatron`, `search`, `zero1`,
    `zero2`, `zero3`; the data-parallel and ZeRO strategies use the axis
    `dp`, Megatron and the searched tensor parallelism
    (`cleave-search-tensor-sharding`, priced on `cluster`) the axis `tp`;
    they run in the order given, and ZeRO needs
    `dp` before it), then `cleave-propagate-sharding` and
    `cleave-partition` on `function`. Without `strategy`, each axis gets the
    canonical strategy of its name (`dp`: data parallel, `tp`: Megatron);
    any other axis name needs an explicit strategy. Without `mesh` and
    `strategy`, it follows the module's plan (`cleave.plan`, recorded by
    `cleave-auto-parallel` or `cleave-set-plan`): on a `@mesh` of the axes
    the plan uses (added when missing), `dp` when the dp axis has a
    strategy, the plan's tp strategy (the searched one priced on the plan's
    cluster), then its ZeRO stage; the pp axis is left to the pipeline
    passes. A module with a plan takes neither `mesh` nor `strategy`.
    The optimizer's global
    gradient norm counts each parameter once: a replicated gradient's
    square sum is already complete on every device, a split one's is summed
    across its devices.
  }];
  let options = [
    Option<"mesh", "mesh", "std::string", /*default=*/"\"\"",
           "Mesh axes and sizes, outermost first: name=size,...">,
    ListOption<"strategy", "strategy", "std::string",
               "Strategies in order: dp, megatron, megatron-sp, search, zero1, zero2, zero3">,
    Option<"function", "function", "std::string", /*default=*/"\"\"",
           "Function to shard (default: the one with cleave.role step, else "
           "forward)">,
    Option<"cluster", "cluster", "std::string", /*default=*/"\"\"",
           "Cluster the search strategy prices its choices on (default "
           "dgx-a100-80g)">,
  ];
  let dependentDialects = ["mlir::cleave::CleaveDialect"];
}

#endif // CLEAVE_DIALECT_CLEAVE_TRANSFORMS_PASSES_TD
