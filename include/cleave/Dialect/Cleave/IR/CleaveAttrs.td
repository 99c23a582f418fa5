//===- CleaveAttrs.td - Cleave attributes ------------------*- tablegen -*-===//

#ifndef CLEAVE_DIALECT_CLEAVE_IR_CLEAVEATTRS_TD
#define CLEAVE_DIALECT_CLEAVE_IR_CLEAVEATTRS_TD

include "cleave/Dialect/Cleave/IR/CleaveBase.td"
include "mlir/IR/EnumAttr.td"

def Cleave_LayerKind : I32EnumAttr<"LayerKind", "part of a model a layer is",
    [I32EnumAttrCase<"Embed", 0, "embed">,
     I32EnumAttrCase<"Block", 1, "block">,
     I32EnumAttrCase<"Head", 2, "head">]> {
  let cppNamespace = "::mlir::cleave";
  let genSpecializedAttr = 0;
}

def Cleave_LayerAttr : Cleave_Attr<"Layer", "layer"> {
  let summary = "Layer provenance of an op";
  let description = [{
    Which part of the model an op belongs to: the embedding, transformer block
    `N` (counted from 0) or the head (final norm, output projection, loss).
    Recompute, pipeline stage assignment and the planner's per-layer search
    group ops by this attribute.

    ```mlir
    %0 = cleave.add %a, %b {cleave.layer = #cleave.layer<3>} : tensor<4xf32>
    %1 = cleave.softmax %c {cleave.layer = #cleave.layer<head>} : tensor<4xf32>
    ```
  }];
  let parameters = (ins "::mlir::cleave::LayerKind":$kind, "int64_t":$index);
  let hasCustomAssemblyFormat = 1;
  let builders = [
    AttrBuilder<(ins "int64_t":$block), [{
      return $_get($_ctxt, ::mlir::cleave::LayerKind::Block, block);
    }]>
  ];
  let extraClassDeclaration = [{
    static LayerAttr getEmbed(::mlir::MLIRContext *context) {
      return get(context, LayerKind::Embed, 0);
    }
    static LayerAttr getHead(::mlir::MLIRContext *context) {
      return get(context, LayerKind::Head, 0);
    }
    /// Position in model order: embed < block 0 < ... < block N < head.
    std::pair<int, int64_t> getOrderKey() const {
      return {static_cast<int>(getKind()), getIndex()};
    }
  }];
}

def Cleave_ShardingAttr : Cleave_Attr<"Sharding", "sharding"> {
  let summary = "How a tensor is split over a device mesh";
  let description = [{
    Names a `cleave.mesh` and lists, for every tensor dimension, the mesh
    axes that split it, outermost first (an empty list: not split). `partial`
    lists the axes along which the value is a pending sum: each device holds
    an addend, and an all-reduce over those axes completes it. A fully
    replicated value has only empty lists.

    ```mlir
    // [batch, seq, hidden]: batch split on dp, hidden on tp.
    #cleave.sharding<@mesh, [[dp], [], [tp]]>
    // A row-parallel matmul's output before its all-reduce.
    #cleave.sharding<@mesh, [[dp], [], []], partial = [tp]>
    ```

    Where a sharding meets a tensor (`cleave.shard`, a function argument),
    the verifier checks that the mesh exists, every axis is one of its axes,
    no axis appears twice, and every split dimension is divisible by the
    product of its axes' sizes.
  }];
  let parameters = (ins "::mlir::FlatSymbolRefAttr":$mesh,
                        "::mlir::ArrayAttr":$dims,
                        "::mlir::ArrayAttr":$partial);
  let hasCustomAssemblyFormat = 1;
  let extraClassDeclaration = [{
    /// The axes splitting dimension `dim`.
    ::llvm::SmallVector<::llvm::StringRef> getDimAxes(unsigned dim) const;
    /// The axes of the pending partial sum.
    ::llvm::SmallVector<::llvm::StringRef> getPartialAxes() const;
  }];
}

def Cleave_FunctionRole : I32EnumAttr<"FunctionRole",
    "what a function is to a training program",
    [I32EnumAttrCase<"Forward", 4, "forward">,
     I32EnumAttrCase<"Step", 0, "step">,
     I32EnumAttrCase<"Update", 1, "update">,
     I32EnumAttrCase<"StageForward", 2, "stage_forward">,
     I32EnumAttrCase<"StageBackward", 3, "stage_backward">]> {
  let cppNamespace = "::mlir::cleave";
  let genSpecializedAttr = 0;
}

def Cleave_FunctionRoleAttr : EnumAttr<Cleave_Dialect, Cleave_FunctionRole, "role"> {
  let summary = "The role of a function in a training program";
  let description = [{
    Set on `func.func` as `cleave.role` by the passes that create the
    function, and read by later passes, the emitter and the runtime instead
    of the function's name:

    - `forward`: the model itself, as the model builders write it (the
      function the training passes start from when none is named);
    - `step`: the gradient step `cleave-autodiff` derives (the training step
      once `cleave-optimizer` appends the update to it);
    - `update`: an update that applies gradients it takes as arguments
      (`cleave-optimizer` with `separate`, or one per pp rank);
    - `stage_forward`, `stage_backward`: one micro-batch's forward or
      backward ops of a pipeline stage (`cleave-pipeline-split`).

    ```mlir
    func.func @train_step(...) attributes {cleave.role = #cleave.role<step>}
    ```
  }];
  let assemblyFormat = "`<` $value `>`";
}

def Cleave_ScheduleAttr : Cleave_Attr<"Schedule", "schedule"> {
  let summary = "The pipeline schedule a module of stages runs";
  let description = [{
    Recorded on the module as `cleave.schedule` by `cleave-pipeline-split`:
    the schedule (`gpipe`, `1f1b` or `interleaved`), the pp ranks it runs
    over, the model chunks (virtual stages) per rank, and the micro-batches
    per step. The emitter writes the schedule's per-rank table from it, and
    the program takes its micro-batch count from there.

    ```mlir
    module attributes {cleave.schedule = #cleave.schedule<"1f1b", ranks = 2,
                                           virtual_stages = 1, micro_batches = 4>}
    ```
  }];
  let parameters = (ins StringRefParameter<"schedule name">:$kind,
                        "int64_t":$ranks, "int64_t":$virtualStages,
                        "int64_t":$microBatches);
  let assemblyFormat = [{
    `<` $kind `,` `ranks` `=` $ranks `,` `virtual_stages` `=` $virtualStages
    `,` `micro_batches` `=` $microBatches `>`
  }];
  let genVerifyDecl = 1;
}

def Cleave_InputRole : I32EnumAttr<"InputRole",
    "what a data input is to a training program",
    [I32EnumAttrCase<"Tokens", 0, "tokens">,
     I32EnumAttrCase<"Targets", 1, "targets">,
     I32EnumAttrCase<"Features", 2, "features">,
     I32EnumAttrCase<"Gradient", 3, "gradient">,
     I32EnumAttrCase<"LearningRate", 4, "learning_rate">,
     I32EnumAttrCase<"StepNumber", 5, "step_number">]> {
  let cppNamespace = "::mlir::cleave";
  let genSpecializedAttr = 0;
}

def Cleave_InputRoleAttr : EnumAttr<Cleave_Dialect, Cleave_InputRole,
                                    "input_role"> {
  let summary = "The role of a data input in a training program";
  let description = [{
    Set next to `cleave.input` as `cleave.input_role` on the inputs a
    training loop feeds: `tokens` (the token ids a language model reads),
    `targets` (the labels its loss compares against), `features` (the dense
    inputs of a model without tokens), `gradient` (an accumulated gradient an
    update applies), `learning_rate` and `step_number` (the scalars the
    optimizer reads each step). The planner finds the batch and sequence by
    it, and the runtime which arguments the data loader and the schedule
    fill; the tensor's name is only its name. Tokens and targets are integer
    tensors, the two scalars rank-0 floats, and each role but `gradient`
    appears at most once per function.

    ```mlir
    %tokens: tensor<8x64xi32> {cleave.input = "tokens",
                               cleave.input_role = #cleave.input_role<tokens>}
    ```
  }];
  let assemblyFormat = "`<` $value `>`";
}

def Cleave_OutputRole : I32EnumAttr<"OutputRole",
    "what a result is to a training program",
    [I32EnumAttrCase<"Loss", 0, "loss">,
     I32EnumAttrCase<"GradNorm", 1, "grad_norm">,
     I32EnumAttrCase<"Gradient", 2, "gradient">]> {
  let cppNamespace = "::mlir::cleave";
  let genSpecializedAttr = 0;
}

def Cleave_OutputRoleAttr : EnumAttr<Cleave_Dialect, Cleave_OutputRole,
                                     "output_role"> {
  let summary = "The role of a result in a training program";
  let description = [{
    Set next to `cleave.output` as `cleave.output_role` on the results a
    training loop reads: `loss` (the step's mean loss, set by
    `cleave-autodiff`), `grad_norm` (the global gradient norm, set by
    `cleave-optimizer`) and `gradient` (a parameter's gradient, named
    `grad.<parameter>`). Passes find the loss and the gradients by it, and
    the runtime what to log and which results to accumulate over
    micro-batches. The loss and the norm are rank-0 floats, once per
    function.

    ```mlir
    -> (tensor<f32> {cleave.output = "loss",
                     cleave.output_role = #cleave.output_role<loss>})
    ```
  }];
  let assemblyFormat = "`<` $value `>`";
}

def Cleave_InitKind : I32EnumAttr<"InitKind",
    "how a parameter's initial values are drawn",
    [I32EnumAttrCase<"Zeros", 0, "zeros">,
     I32EnumAttrCase<"Ones", 1, "ones">,
     I32EnumAttrCase<"Normal", 2, "normal">]> {
  let cppNamespace = "::mlir::cleave";
  let genSpecializedAttr = 0;
}

// A double kept as an APFloat (hashable, compared bit for bit), printed so
// that it parses back to the same value.
def Cleave_StddevParameter : APFloatParameter<"a standard deviation"> {
  let parser = [{ [&]() -> ::mlir::FailureOr<::llvm::APFloat> {
    double value;
    if ($_parser.parseFloat(value))
      return ::mlir::failure();
    return ::llvm::APFloat(value);
  }() }];
  let printer = "$_printer.printFloat($_self)";
  let defaultValue = "::llvm::APFloat(0.0)";
}

def Cleave_InitAttr : Cleave_Attr<"Init", "init"> {
  let summary = "How a parameter is initialized";
  let description = [{
    Set next to `cleave.param` as `cleave.init` by the model builders: zeros,
    ones, or a normal distribution of mean 0 and the given standard
    deviation. Values are a function of (seed, parameter name, global
    element index), so every mesh starts from the same model. A parameter
    without one starts from `normal` with standard deviation 0.02.

    ```mlir
    %w: tensor<64x64xf32> {cleave.param = "layers.0.attn.out.weight",
                           cleave.init = #cleave.init<normal, 0.0070710678118654745>}
    %b: tensor<64xf32> {cleave.param = "layers.0.attn.out.bias",
                        cleave.init = #cleave.init<zeros>}
    ```
  }];
  let parameters = (ins EnumParameter<Cleave_InitKind>:$kind,
                        Cleave_StddevParameter:$stddev);
  let assemblyFormat = "`<` $kind (`,` $stddev^)? `>`";
  let genVerifyDecl = 1;
  let builders = [
    AttrBuilder<(ins "InitKind":$kind, CArg<"double", "0.0">:$stddev), [{
      return $_get($_ctxt, kind, ::llvm::APFloat(stddev));
    }]>
  ];
  let extraClassDeclaration = [{
    double getStandardDeviation() const {
      return getStddev().convertToDouble();
    }
  }];
}

class Cleave_FloatParameter<string desc> : APFloatParameter<desc> {
  let parser = [{ [&]() -> ::mlir::FailureOr<::llvm::APFloat> {
    double value;
    if ($_parser.parseFloat(value))
      return ::mlir::failure();
    return ::llvm::APFloat(value);
  }() }];
  let printer = "$_printer.printFloat($_self)";
}

def Cleave_RopeScalingAttr : Cleave_Attr<"RopeScaling", "rope_scaling"> {
  let summary = "Llama 3.1's rescaled rotary frequencies";
  let description = [{
    Set on `cleave.rotary` as `scaling`: the frequency `f = base^(-2i/D)` of
    each rotated pair is divided by `factor` where its wavelength `2 pi / f`
    exceeds `original_max_positions / low_freq_factor`, kept where it is
    below `original_max_positions / high_freq_factor`, and blended in
    between with weight `w = (original_max_positions / wavelength -
    low_freq_factor) / (high_freq_factor - low_freq_factor)`:
    `f' = (1 - w) f / factor + w f`. This is Hugging Face's `rope_scaling`
    of `rope_type = "llama3"`, which Llama 3.1 and later use.

    ```mlir
    %q2 = cleave.rotary %q {base = 5.0e+05 : f64, scaling =
        #cleave.rope_scaling<factor = 8.0, low_freq_factor = 1.0,
                             high_freq_factor = 4.0,
                             original_max_positions = 8192>}
        : tensor<2x32x64x128xf32>
    ```
  }];
  let parameters = (ins Cleave_FloatParameter<"divisor of low frequencies">:$factor,
                        Cleave_FloatParameter<"wavelength bound of the divided frequencies">:$low_freq_factor,
                        Cleave_FloatParameter<"wavelength bound of the kept frequencies">:$high_freq_factor,
                        "int64_t":$original_max_positions);
  let assemblyFormat = "`<` struct(params) `>`";
  let genVerifyDecl = 1;
}

def Cleave_PlanAttr : Cleave_Attr<"Plan", "plan"> {
  let summary = "A parallelization plan: the mesh and how each axis is used";
  let description = [{
    The plan the training pipeline compiles, recorded on the module as
    `cleave.plan` by the first pass of the pipeline: `cleave-auto-parallel`
    (what the planner chose) or `cleave-set-plan` (what a person asked for).
    Every later phase reads it from here. It holds the mesh (spelled as
    everywhere, `dp=2,tp=4`, outermost axis first), the strategy of each
    axis in mesh order (`dp`, `zero1`-`zero3` or `none` on dp; `megatron`,
    `search` or `none` on tp; `pipeline` or `none` on pp), the micro-batch
    size and count, the pipeline schedule with its virtual stages and the
    transformer blocks of each pp rank, the ZeRO stage, recompute (with,
    optionally, how many blocks of each pipeline stage it covers: the first
    `recompute_layers` of them, one count for every stage or one per stage
    and virtual stage) and the compute precision. A plan the planner chose also carries the vocabulary
    as padded, the cluster it was priced on, and the predicted step time,
    peak memory per device and MFU.

    Axes whose strategy is `none` are not used: the program runs on the
    others (`getUsedAxes`). A `pipeline` pp axis of size 1 pipelines
    micro-batches through one stage, which is how a sharded mesh
    accumulates micro-batches.

    ```mlir
    module attributes {cleave.plan = #cleave.plan<mesh = "dp=8,pp=1,tp=1",
        strategies = ["zero1", "none", "none"], micro_batch_size = 8,
        zero_stage = 1, precision = "bf16",
        padded_vocab = 50304, cluster = "dgx-a100-80g",
        step_time_s = 4.49e-02 : f64, peak_memory_bytes = 9.5e+09 : f64,
        mfu = 4.99e-01 : f64>}
    module attributes {cleave.plan = #cleave.plan<mesh = "dp=2,pp=2",
        strategies = ["dp", "pipeline"], micro_batches = 4>}
    ```

    Parameters left out take their defaults: micro-batch size 0 (the
    model's batch over the micro-batches), one micro-batch, `1f1b`, one
    virtual stage, blocks split evenly, no ZeRO, no recompute (with
    recompute: every block), `f32`.

    The verifier checks that the pieces agree: the mesh's axes and the
    strategy of each (an axis of more than one device needs one), the ZeRO
    stage against the dp strategy, the schedule against its virtual stages,
    the stages against the pp axis (a schedule other than 1f1b, virtual
    stages and layers per stage need a pipelined pp axis; layers per stage
    only with one virtual stage), recompute_layers against recompute and
    the stages, and that predictions name their cluster.
  }];
  let parameters = (ins
      StringRefParameter<"mesh, outermost axis first">:$mesh,
      "::mlir::ArrayAttr":$strategies,
      DefaultValuedParameter<"int64_t", "0",
          "samples per micro-batch (0: the model's batch over micro_batches)">
          :$micro_batch_size,
      DefaultValuedParameter<"int64_t", "1", "micro-batches per step">
          :$micro_batches,
      StringRefParameter<"pipeline schedule", "\"1f1b\"">:$schedule,
      DefaultValuedParameter<"int64_t", "1", "model chunks per pp rank">
          :$virtual_stages,
      OptionalParameter<"::mlir::DenseI64ArrayAttr",
          "transformer blocks per pp rank (absent: even)">:$layers_per_stage,
      DefaultValuedParameter<"int64_t", "0", "ZeRO stage">:$zero_stage,
      DefaultValuedParameter<"bool", "false", "recompute activations">
          :$recompute,
      OptionalParameter<"::mlir::DenseI64ArrayAttr",
          "blocks recomputed per stage (absent: all)">:$recompute_layers,
      StringRefParameter<"compute precision", "\"f32\"">:$precision,
      DefaultValuedParameter<"int64_t", "0",
          "vocabulary as padded (0: the model's)">:$padded_vocab,
      StringRefParameter<"cluster priced on", "\"\"">:$cluster,
      OptionalParameter<"::mlir::FloatAttr", "predicted step time">
          :$step_time_s,
      OptionalParameter<"::mlir::FloatAttr", "predicted peak memory">
          :$peak_memory_bytes,
      OptionalParameter<"::mlir::FloatAttr", "predicted MFU">:$mfu);
  let assemblyFormat = "`<` struct(params) `>`";
  let genVerifyDecl = 1;
  let extraClassDeclaration = [{
    /// The size of mesh axis `name`, 1 when the mesh has none.
    int64_t getAxisSize(::llvm::StringRef name) const;
    /// The strategy of mesh axis `name`, "none" when the mesh has none.
    ::llvm::StringRef getAxisStrategy(::llvm::StringRef name) const;
    /// The axes whose strategy is not `none`, in mesh order: the mesh the
    /// program runs on.
    ::llvm::SmallVector<MeshAxisSpec> getUsedAxes() const;
    /// The sharding strategies cleave-parallelize runs for this plan, in
    /// order: data parallel, the tensor split, then ZeRO (which shards what
    /// the others left replicated).
    ::llvm::SmallVector<std::string> getShardingStrategies() const;
  }];
}

#endif // CLEAVE_DIALECT_CLEAVE_IR_CLEAVEATTRS_TD
