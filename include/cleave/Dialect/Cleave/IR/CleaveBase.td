//===- CleaveBase.td - Cleave dialect definition -----------*- tablegen -*-===//
//
// The `cleave` dialect: value-semantics tensor ops for describing models that
// Cleave differentiates, shards and lowers.
//
//===----------------------------------------------------------------------===//

#ifndef CLEAVE_DIALECT_CLEAVE_IR_CLEAVEBASE_TD
#define CLEAVE_DIALECT_CLEAVE_IR_CLEAVEBASE_TD

include "mlir/IR/OpBase.td"
include "mlir/IR/AttrTypeBase.td"

def Cleave_Dialect : Dialect {
  let name = "cleave";
  let cppNamespace = "::mlir::cleave";
  let summary = "Tensor ops for models that Cleave trains and parallelizes";
  let description = [{
    The `cleave` dialect describes a model as pure functions over statically
    shaped ranked tensors (f64, f32, bf16, f16 and signless integers). Ops have
    value semantics; shapes are always static because the planner needs every
    size.

    Function arguments that are trainable parameters carry the argument
    attribute `cleave.param = "name"`; data inputs carry
    `cleave.input = "name"`. Names are unique within a function and are the
    tensor names used by checkpoints.

    Every op created by the model builders carries its layer provenance,
    `cleave.layer = #cleave.layer<embed>`, `#cleave.layer<N>` for transformer
    block `N`, or `#cleave.layer<head>`, and passes keep it on the ops they
    create.

    Every op implements the cost interface (FLOPs, with a multiply-add counted
    as 2, and bytes read and written, all as `double`).
  }];
  let hasConstantMaterializer = 1;
  let hasOperationAttrVerify = 1;
  let hasRegionArgAttrVerify = 1;
  let hasRegionResultAttrVerify = 1;
  let useDefaultAttributePrinterParser = 1;
  let extraClassDeclaration = [{
    /// Argument attribute naming a trainable parameter.
    static constexpr ::llvm::StringLiteral kParamAttrName = "cleave.param";
    /// Argument attribute naming a data input (tokens, targets, features).
    static constexpr ::llvm::StringLiteral kInputAttrName = "cleave.input";
    /// Argument attribute next to cleave.input: the input's
    /// #cleave.input_role (tokens, targets, features, gradient, learning_rate,
    /// step_number).
    static constexpr ::llvm::StringLiteral kInputRoleAttrName =
        "cleave.input_role";
    /// Argument attribute next to cleave.param: its #cleave.init.
    static constexpr ::llvm::StringLiteral kInitAttrName = "cleave.init";
    /// Result attribute next to cleave.output: the result's
    /// #cleave.output_role (loss, grad_norm, gradient).
    static constexpr ::llvm::StringLiteral kOutputRoleAttrName =
        "cleave.output_role";
    /// Argument attribute naming optimizer state (momentum, Adam moments):
    /// float tensors kept between steps and checkpointed, like parameters.
    static constexpr ::llvm::StringLiteral kStateAttrName = "cleave.state";
    /// Argument and result attribute: the #cleave.sharding the value has. On
    /// an op, an array of them, one per result (cleave-propagate-sharding).
    static constexpr ::llvm::StringLiteral kShardingAttrName =
        "cleave.sharding";
    /// Argument and result attribute of a partitioned function: the
    /// #cleave.sharding of the global tensor this per-device value is the
    /// block of (cleave-partition).
    static constexpr ::llvm::StringLiteral kBlockAttrName = "cleave.block";
    /// Result attribute naming a result in output files ("loss").
    static constexpr ::llvm::StringLiteral kOutputAttrName = "cleave.output";
    /// Result attribute: the result is the next value of the argument with
    /// this index (a parameter or state updated by a training step).
    static constexpr ::llvm::StringLiteral kUpdatesAttrName = "cleave.updates";
    /// Operation attribute holding the op's layer provenance.
    static constexpr ::llvm::StringLiteral kLayerAttrName = "cleave.layer";
    /// Operation attribute set by cleave-assign-stages: the op's global
    /// pipeline stage (i64).
    static constexpr ::llvm::StringLiteral kStageAttrName = "cleave.stage";
    /// Function attribute set by cleave-assign-stages: the stage of each
    /// transformer block (an i64 array).
    static constexpr ::llvm::StringLiteral kBlockStagesAttrName =
        "cleave.block_stages";
    /// Argument and result attribute set by cleave-pipeline-split: the
    /// stash a stage's forward returns and its backward takes (i64 id).
    static constexpr ::llvm::StringLiteral kStashAttrName = "cleave.stash";
    /// Result attribute set by cleave-defer-gradient-reduction on a
    /// gradient returned as a pending dp sum whose update takes only its dp
    /// block: the dimension the runtime reduce-scatters it along (i64).
    static constexpr ::llvm::StringLiteral kScatterDimAttrName =
        "cleave.scatter_dim";
    /// Function attribute set by cleave-optimizer on a pipeline's updates:
    /// the pp rank whose stages' gradients the function applies (i64).
    static constexpr ::llvm::StringLiteral kPipelineRankAttrName =
        "cleave.pipeline_rank";
    /// Function attribute set by cleave-micro-batch: the function computes
    /// one of this many micro-batches of a step (i64 > 1), whose gradients
    /// the training loop accumulates before the update.
    static constexpr ::llvm::StringLiteral kMicroBatchesAttrName =
        "cleave.micro_batches";
    /// Function attribute: the function's #cleave.role (forward, step,
    /// update, stage forward or backward).
    static constexpr ::llvm::StringLiteral kRoleAttrName = "cleave.role";
    /// Module attribute set by cleave-pipeline-split: the #cleave.schedule
    /// its stages run.
    static constexpr ::llvm::StringLiteral kScheduleAttrName =
        "cleave.schedule";
    /// Module attribute set by cleave-auto-parallel (the planner's choice)
    /// or cleave-set-plan (a person's): the #cleave.plan the training
    /// pipeline follows.
    static constexpr ::llvm::StringLiteral kPlanAttrName = "cleave.plan";
    /// Operation attribute set by cleave-plan-memory: the arena byte offset
    /// of each result (an i64 array, one entry per result).
    static constexpr ::llvm::StringLiteral kArenaOffsetsAttrName =
        "cleave.arena_offsets";
    /// Operation attribute (unit) on the copies cleave-recompute makes, and
    /// on the parameter gathers cleave-partition repeats for the backward:
    /// it also keeps CSE from merging them back into the originals.
    static constexpr ::llvm::StringLiteral kRecomputeAttrName =
        "cleave.recompute";
    /// Function attribute set by cleave-plan-memory: the arena's peak size in
    /// bytes.
    static constexpr ::llvm::StringLiteral kArenaBytesAttrName =
        "cleave.arena_bytes";
  }];
}

class Cleave_Op<string mnemonic, list<Trait> traits = []>
    : Op<Cleave_Dialect, mnemonic, traits>;

class Cleave_Attr<string name, string attrMnemonic, list<Trait> traits = []>
    : AttrDef<Cleave_Dialect, name, traits> {
  let mnemonic = attrMnemonic;
}

//===----------------------------------------------------------------------===//
// Type constraints
//===----------------------------------------------------------------------===//

def Cleave_FloatElement : AnyTypeOf<[F64, F32, BF16, F16]>;
def Cleave_Element : AnyTypeOf<[F64, F32, BF16, F16, AnySignlessInteger]>;

def Cleave_Tensor : StaticShapeTensorOf<[F64, F32, BF16, F16, AnySignlessInteger]>;
def Cleave_FloatTensor : StaticShapeTensorOf<[F64, F32, BF16, F16]>;
def Cleave_IntTensor : StaticShapeTensorOf<[AnySignlessInteger]>;
def Cleave_IndexTensor : StaticShapeTensorOf<[I32, I64]>;
def Cleave_BoolTensor : StaticShapeTensorOf<[I1]>;

#endif // CLEAVE_DIALECT_CLEAVE_IR_CLEAVEBASE_TD
