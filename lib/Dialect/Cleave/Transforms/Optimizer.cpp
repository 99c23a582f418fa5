//===- Optimizer.cpp - SGD and AdamW updates appended to a training step --===//

#include "cleave/Dialect/Cleave/IR/CleaveOps.h"
#include "cleave/Dialect/Cleave/Transforms/Passes.h"

#include "FunctionLookup.h"

#include "mlir/IR/ImplicitLocOpBuilder.h"

#include <cmath>
#include <map>

namespace mlir::cleave {
#define GEN_PASS_DEF_CLEAVEOPTIMIZER
#include "cleave/Dialect/Cleave/Transforms/Passes.h.inc"
} // namespace mlir::cleave

using namespace mlir;
using namespace mlir::cleave;

namespace {

/// A parameter argument and its gradient result.
struct Parameter {
  BlockArgument value;
  StringRef name;
  Value grad;
  Type type;
  /// In a partitioned pipeline: how the per-rank tensor splits the global
  /// one (`cleave.block` of its gradient), which its update's arguments
  /// keep.
  ShardingAttr block = {};
  /// The parameter's cleave.init, which its update's argument keeps.
  InitAttr init = {};
  /// In a partitioned pipeline: the parameter's own block and per-rank
  /// type where they differ from its gradient's (ZeRO-2 splits only the
  /// gradient); null otherwise.
  ShardingAttr valueBlock = {};
  Type valueType = {};

  Type getValueType() const { return valueType ? valueType : type; }
  ShardingAttr getValueBlock() const { return valueBlock ? valueBlock : block; }
};

/// Where a ZeRO update splits its state: the data-parallel axis.
constexpr StringLiteral kZeroAxis = "dp";

/// The dimension of `block` that `axis` splits, or -1.
int64_t getSplitDim(ShardingAttr block, StringRef axis) {
  if (!block)
    return -1;
  for (unsigned dim = 0; dim < block.getDims().size(); ++dim)
    if (llvm::is_contained(block.getDimAxes(dim), axis))
      return dim;
  return -1;
}

/// `block` (null: whole) of a rank-`rank` tensor with `axis` added to
/// dimension `dim`.
ShardingAttr addSplit(MLIRContext *context, FlatSymbolRefAttr mesh,
                      ShardingAttr block, int64_t rank, int64_t dim,
                      StringRef axis) {
  Builder b(context);
  SmallVector<Attribute> dims;
  for (int64_t d = 0; d < rank; ++d) {
    SmallVector<StringRef> axes;
    if (block)
      axes = llvm::to_vector(block.getDimAxes(d));
    if (d == dim)
      axes.push_back(axis);
    dims.push_back(b.getStrArrayAttr(axes));
  }
  return ShardingAttr::get(context, block ? block.getMesh() : mesh,
                           b.getArrayAttr(dims),
                           block ? block.getPartial() : b.getArrayAttr({}));
}

class UpdateBuilder {
public:
  UpdateBuilder(ImplicitLocOpBuilder &b) : b(b) {}

  /// A tensor of `type` filled with `value`.
  Value constant(Type type, double value) {
    return FillOp::create(b, type, b.getF64FloatAttr(value));
  }
  /// `scalar` (a rank-0 f32 tensor) cast and broadcast to `type`.
  Value spread(Value scalar, Type type) {
    auto tensor = cast<RankedTensorType>(type);
    auto scalarType = RankedTensorType::get({}, tensor.getElementType());
    if (scalar.getType() != scalarType)
      scalar = CastOp::create(b, scalarType, scalar);
    return BroadcastOp::create(b, type, scalar, ArrayRef<int64_t>{});
  }
  /// sum(x * x) over every element, as a rank-0 f32 tensor.
  Value sumOfSquares(Value x) {
    auto type = cast<RankedTensorType>(x.getType());
    auto f32 = RankedTensorType::get(type.getShape(), b.getF32Type());
    if (type != f32)
      x = CastOp::create(b, f32, x);
    Value squares = MulOp::create(b, x, x);
    SmallVector<int64_t> dims;
    for (int64_t dim = 0; dim < type.getRank(); ++dim)
      dims.push_back(dim);
    return dims.empty() ? squares : Value(ReduceSumOp::create(b, squares, dims));
  }
  /// a * x + c * y for scalars a, c.
  Value blend(double a, Value x, double c, Value y) {
    Type type = x.getType();
    return AddOp::create(b, MulOp::create(b, constant(type, a), x),
                         MulOp::create(b, constant(type, c), y));
  }

  ImplicitLocOpBuilder &b;
};

struct OptimizerPass
    : public mlir::cleave::impl::CleaveOptimizerBase<OptimizerPass> {
  using Base::Base;

  /// The pp ranks of a module of pipeline stages; 0 for one training step.
  int64_t pipelineRanks = 0;

  void runOnOperation() override {
    ModuleOp module = getOperation();
    // A module of pipeline stages records the schedule they run.
    pipelineRanks = 0;
    if (auto schedule = module->getAttrOfType<ScheduleAttr>(
            CleaveDialect::kScheduleAttrName))
      pipelineRanks = schedule.getRanks();
    func::FuncOp step =
        pipelineRanks > 0
            ? findStageBackward(module)
            : lookupFunctionWithBody(module, function, {FunctionRole::Step},
                                     "to extend: run cleave-autodiff first");
    if (!step)
      return signalPassFailure();
    if (!(beta1 >= 0 && beta1 < 1 && beta2 >= 0 && beta2 < 1 && epsilon > 0 &&
          momentum >= 0 && momentum < 1 && weightDecay >= 0 && clipNorm >= 0)) {
      step.emitError("optimizer options out of range: need 0 <= beta1, beta2, "
                     "momentum < 1, epsilon > 0, weight-decay >= 0 and "
                     "clip-norm >= 0");
      return signalPassFailure();
    }
    if (pipelineRanks > 0 ? failed(extendPipeline(module))
                          : failed(extend(step)))
      return signalPassFailure();
  }

  /// The backward function of the last stage of `function`, or null after
  /// reporting that there is none.
  func::FuncOp findStageBackward(ModuleOp module) {
    func::FuncOp last;
    for (func::FuncOp candidate : module.getOps<func::FuncOp>())
      if (isStageBackward(candidate))
        last = candidate;
    if (!last)
      module.emitError("the module's cleave.schedule has no stage_backward "
                       "function to update");
    return last;
  }

  static bool isStageBackward(func::FuncOp candidate) {
    return getFunctionRole(candidate) == FunctionRole::StageBackward;
  }

  /// One update per pp rank over its stages' gradients; the gradient norm
  /// sums over the pp axis.
  LogicalResult extendPipeline(ModuleOp module) {
    FlatSymbolRefAttr mesh;
    for (MeshOp candidate : module.getOps<MeshOp>())
      if (candidate.getAxisSize("pp") == pipelineRanks)
        mesh = FlatSymbolRefAttr::get(candidate.getSymNameAttr());
    if (!mesh && pipelineRanks > 1)
      return module.emitError("a pipeline over ")
             << pipelineRanks
             << " ranks needs a cleave.mesh with an axis pp of that size";
    SmallVector<func::FuncOp> backwards;
    for (func::FuncOp candidate : module.getOps<func::FuncOp>())
      if (isStageBackward(candidate))
        backwards.push_back(candidate);
    // Each parameter's initialization, from the stages that read it.
    llvm::StringMap<InitAttr> inits;
    for (func::FuncOp candidate : module.getOps<func::FuncOp>())
      for (unsigned i = 0; i < candidate.getNumArguments(); ++i)
        if (auto name = candidate.getArgAttrOfType<StringAttr>(
                i, CleaveDialect::kParamAttrName))
          if (auto init = candidate.getArgAttrOfType<InitAttr>(
                  i, CleaveDialect::kInitAttrName))
            inits.try_emplace(name.getValue(), init);
    // Each parameter's block and per-rank type as the stages hold it.
    llvm::StringMap<std::pair<ShardingAttr, Type>> valueLayouts;
    for (func::FuncOp candidate : module.getOps<func::FuncOp>()) {
      std::optional<FunctionRole> role = getFunctionRole(candidate);
      if (role != FunctionRole::StageForward &&
          role != FunctionRole::StageBackward)
        continue;
      for (unsigned i = 0; i < candidate.getNumArguments(); ++i)
        if (auto name = candidate.getArgAttrOfType<StringAttr>(
                i, CleaveDialect::kParamAttrName))
          valueLayouts.try_emplace(name.getValue(),
                                   candidate.getArgAttrOfType<ShardingAttr>(
                                       i, CleaveDialect::kBlockAttrName),
                                   candidate.getArgumentTypes()[i]);
    }
    // A gradient several stages return in parts (a tied parameter's) is
    // applied by the first of them; the runtime sums the parts there.
    llvm::StringMap<int64_t> firstStage;
    for (func::FuncOp backward : backwards) {
      int64_t stage =
          backward->getAttrOfType<IntegerAttr>(CleaveDialect::kStageAttrName)
              .getInt();
      for (unsigned i = 0; i < backward.getNumResults(); ++i)
        if (auto output = backward.getResultAttrOfType<StringAttr>(
                i, CleaveDialect::kOutputAttrName);
            output && isGradientResult(backward, i)) {
          auto [it, inserted] = firstStage.try_emplace(output.getValue(), stage);
          if (!inserted)
            it->second = std::min(it->second, stage);
        }
    }
    for (int64_t rank = 0; rank < pipelineRanks; ++rank) {
      SmallVector<Parameter> params;
      func::FuncOp last;
      for (func::FuncOp backward : backwards) {
        int64_t stage = backward->getAttrOfType<IntegerAttr>(
                                    CleaveDialect::kStageAttrName)
                            .getInt();
        if (stage % pipelineRanks != rank)
          continue;
        last = backward;
        // A backward may not read a parameter whose gradient it returns
        // (the position embedding's is a sum of incoming gradients).
        for (unsigned i = 0; i < backward.getNumResults(); ++i) {
          auto output = backward.getResultAttrOfType<StringAttr>(
              i, CleaveDialect::kOutputAttrName);
          if (!output || !isGradientResult(backward, i) ||
              firstStage.lookup(output.getValue()) != stage)
            continue;
          StringRef param = getGradientParam(output.getValue());
          Parameter entry{BlockArgument(),
                          param,
                          Value(),
                          backward.getResultTypes()[i],
                          backward.getResultAttrOfType<ShardingAttr>(
                              i, CleaveDialect::kBlockAttrName),
                          inits.lookup(param)};
          if (auto it = valueLayouts.find(param);
              it != valueLayouts.end() && it->second.second != entry.type) {
            entry.valueBlock = it->second.first;
            entry.valueType = it->second.second;
          }
          params.push_back(entry);
        }
      }
      if (!last)
        return module.emitError("pp rank ")
               << rank << " has no pipeline stage: the stages do not divide "
               << "over " << pipelineRanks << " ranks";
      func::FuncOp apply = createApplyFunction(
          last, params, ("apply_update_rank" + Twine(rank)).str());
      apply->setAttr(CleaveDialect::kPipelineRankAttrName,
                     Builder(module.getContext()).getI64IntegerAttr(rank));
      if (failed(appendUpdate(apply, params, Value(), mesh)))
        return failure();
    }
    return success();
  }

  FailureOr<SmallVector<Parameter>> findParameters(func::FuncOp step) {
    SmallVector<Parameter> params;
    llvm::StringMap<unsigned> gradients = getGradientResults(step);
    Operation *ret = step.getBody().front().getTerminator();
    for (BlockArgument arg : step.getArguments()) {
      auto name = step.getArgAttrOfType<StringAttr>(
          arg.getArgNumber(), CleaveDialect::kParamAttrName);
      if (!name)
        continue;
      auto gradient = gradients.find(name.getValue());
      Value grad = gradient == gradients.end()
                       ? Value()
                       : ret->getOperand(gradient->second);
      if (!grad)
        return step.emitError("training step has no gradient '")
               << getGradientName(name.getValue())
               << "' (cleave.output_role gradient)";
      auto init = step.getArgAttrOfType<InitAttr>(arg.getArgNumber(),
                                                  CleaveDialect::kInitAttrName);
      params.push_back({arg, name.getValue(), grad, arg.getType(), {}, init});
    }
    if (!lookupOutput(step, OutputRole::Loss))
      return step.emitError(
          "training step returns no loss (cleave.output_role loss)");
    return params;
  }

  LogicalResult extend(func::FuncOp step) {
    FailureOr<SmallVector<Parameter>> params = findParameters(step);
    if (failed(params))
      return failure();
    if (separate)
      return appendUpdate(createApplyFunction(step, *params, "apply_update"),
                          *params, Value(), FlatSymbolRefAttr());
    return appendUpdate(step, *params, lookupOutput(step, OutputRole::Loss),
                        FlatSymbolRefAttr());
  }

  /// {kind = name}, the block of a partitioned tensor, and `extra`.
  static DictionaryAttr getArgumentAttrs(Builder &attrs, StringRef kind,
                                         StringRef name, ShardingAttr block,
                                         ArrayRef<NamedAttribute> extra = {}) {
    SmallVector<NamedAttribute> entries = {
        attrs.getNamedAttr(kind, attrs.getStringAttr(name))};
    if (block)
      entries.push_back(attrs.getNamedAttr(CleaveDialect::kBlockAttrName, block));
    llvm::append_range(entries, extra);
    return attrs.getDictionaryAttr(entries);
  }

  static NamedAttribute getInputRole(Builder &attrs, InputRole role) {
    return attrs.getNamedAttr(CleaveDialect::kInputRoleAttrName,
                              InputRoleAttr::get(attrs.getContext(), role));
  }

  /// A result named after its role (loss, grad_norm), with the role.
  static DictionaryAttr getOutputAttrs(Builder &attrs, OutputRole role) {
    return attrs.getDictionaryAttr(
        {attrs.getNamedAttr(CleaveDialect::kOutputAttrName,
                            attrs.getStringAttr(stringifyOutputRole(role))),
         attrs.getNamedAttr(CleaveDialect::kOutputRoleAttrName,
                            OutputRoleAttr::get(attrs.getContext(), role))});
  }

  /// `@<name>(params..., grad.<param> inputs...)`, empty, after `step`;
  /// rebinds `params` to its arguments.
  func::FuncOp createApplyFunction(func::FuncOp step,
                                   SmallVector<Parameter> &params,
                                   StringRef name) {
    MLIRContext *context = step.getContext();
    Builder attrs(context);
    SmallVector<Type> types;
    SmallVector<Attribute> argAttrs;
    for (const Parameter &param : params) {
      types.push_back(param.getValueType());
      SmallVector<NamedAttribute> init;
      if (param.init)
        init.push_back(
            attrs.getNamedAttr(CleaveDialect::kInitAttrName, param.init));
      argAttrs.push_back(getArgumentAttrs(attrs, CleaveDialect::kParamAttrName,
                                          param.name, param.getValueBlock(),
                                          init));
    }
    for (const Parameter &param : params) {
      types.push_back(param.type);
      argAttrs.push_back(getArgumentAttrs(
          attrs, CleaveDialect::kInputAttrName, getGradientName(param.name),
          param.block, getInputRole(attrs, InputRole::Gradient)));
    }
    OpBuilder builder(context);
    builder.setInsertionPointAfter(step);
    auto apply = func::FuncOp::create(builder, step.getLoc(), name,
                                      builder.getFunctionType(types, {}));
    apply.setAllArgAttrs(argAttrs);
    setFunctionRole(apply, FunctionRole::Update);
    Block *block = apply.addEntryBlock();
    builder.setInsertionPointToEnd(block);
    func::ReturnOp::create(builder, step.getLoc());
    for (auto [i, param] : llvm::enumerate(params)) {
      param.value = apply.getArgument(i);
      param.grad = apply.getArgument(params.size() + i);
    }
    return apply;
  }

  /// Where a parameter's update runs: the block and per-rank type of its
  /// state, and the dimensions (or -1) along which the gradient and the
  /// parameter are sliced over the ZeRO axis to get there.
  struct UpdateLayout {
    ShardingAttr block;
    Type type;
    int64_t gradientSliceDim = -1;
    int64_t valueSliceDim = -1;
  };

  /// The ZeRO stage of a pipeline's updates: the option, else the plan's.
  int64_t getZeroStage(ModuleOp module) {
    if (zeroStage >= 0)
      return zeroStage;
    auto plan = module->getAttrOfType<PlanAttr>(CleaveDialect::kPlanAttrName);
    return plan ? plan.getZeroStage() : 0;
  }

  FailureOr<SmallVector<UpdateLayout>>
  getUpdateLayouts(func::FuncOp step, ArrayRef<Parameter> params,
                   FlatSymbolRefAttr mesh) {
    SmallVector<UpdateLayout> layouts;
    int64_t zero = mesh ? getZeroStage(step->getParentOfType<ModuleOp>()) : 0;
    if (zero < 0 || zero > 3)
      return step.emitError("zero-stage must be 0 to 3, got ") << zero;
    // The ZeRO axis's size: blocks may be split over it (ZeRO-2 and -3
    // before the split) whatever this update's own stage.
    int64_t ranks = 1;
    if (mesh)
      if (auto meshOp =
              SymbolTable::lookupNearestSymbolFrom<MeshOp>(step, mesh))
        ranks = meshOp.getAxisSize(kZeroAxis).value_or(1);
    for (const Parameter &param : params) {
      UpdateLayout layout{param.block, param.type};
      auto type = cast<RankedTensorType>(param.type);
      if (zero > 0 && ranks > 1 && getSplitDim(param.block, kZeroAxis) < 0) {
        // The first dimension no other axis splits and the axis divides.
        for (int64_t dim = 0; dim < type.getRank(); ++dim) {
          if ((param.block && !param.block.getDimAxes(dim).empty()) ||
              type.getDimSize(dim) % ranks != 0)
            continue;
          SmallVector<int64_t> shape(type.getShape());
          shape[dim] /= ranks;
          layout.block = addSplit(step.getContext(), mesh, param.block,
                                  type.getRank(), dim, kZeroAxis);
          layout.type = RankedTensorType::get(shape, type.getElementType());
          layout.gradientSliceDim = dim;
          break;
        }
      }
      int64_t stateDim = getSplitDim(layout.block, kZeroAxis);
      int64_t valueDim = getSplitDim(param.getValueBlock(), kZeroAxis);
      if (stateDim >= 0 && valueDim < 0) {
        layout.valueSliceDim = stateDim;
        SmallVector<int64_t> whole(
            cast<RankedTensorType>(layout.type).getShape());
        whole[stateDim] *= ranks;
        if (ArrayRef<int64_t>(whole) !=
            cast<RankedTensorType>(param.getValueType()).getShape())
          return step.emitError("the ZeRO block of '")
                 << param.name << "' does not slice its parameter";
      } else if (valueDim != stateDim) {
        return step.emitError("'")
               << param.name << "' is split over " << kZeroAxis
               << " on dimension " << valueDim << ", its gradient on dimension "
               << stateDim;
      }
      layouts.push_back(layout);
    }
    return layouts;
  }

  /// Adds the optimizer's arguments to `step` and replaces its results with
  /// (loss if given, gradient norm, updated parameters and state). In a
  /// pipeline, `normMesh` is its mesh: the squares are also summed over the
  /// pp axis and over the axes that split each gradient.
  LogicalResult appendUpdate(func::FuncOp step, ArrayRef<Parameter> params,
                             Value loss, FlatSymbolRefAttr normMesh) {
    auto ret = cast<func::ReturnOp>(step.getBody().front().getTerminator());

    MLIRContext *context = step.getContext();
    Builder attrs(context);
    Location loc = step.getLoc();
    auto scalarF32 = RankedTensorType::get({}, Float32Type::get(context));
    // The new arguments are appended at once: one at a time, each would
    // rebuild the function's type and argument attributes (quadratic).
    const unsigned first = step.getNumArguments();
    SmallVector<Type> newTypes;
    SmallVector<DictionaryAttr> newAttrs;
    auto addArgument = [&](Type type, StringRef kind, const Twine &name,
                           ShardingAttr block = {},
                           ArrayRef<NamedAttribute> extra = {}) -> unsigned {
      newTypes.push_back(type);
      newAttrs.push_back(
          getArgumentAttrs(attrs, kind, name.str(), block, extra));
      return first + newTypes.size() - 1;
    };
    bool adam = optimizer == OptimizerKind::AdamW;
    unsigned lrIndex =
        addArgument(scalarF32, CleaveDialect::kInputAttrName, "lr", {},
                    getInputRole(attrs, InputRole::LearningRate));
    std::optional<unsigned> stepIndex;
    if (adam)
      stepIndex = addArgument(scalarF32, CleaveDialect::kInputAttrName, "step",
                              {}, getInputRole(attrs, InputRole::StepNumber));
    FailureOr<SmallVector<UpdateLayout>> layouts =
        getUpdateLayouts(step, params, normMesh);
    if (failed(layouts))
      return failure();
    SmallVector<SmallVector<unsigned>> stateIndices;
    for (auto [param, layout] : llvm::zip(params, *layouts)) {
      Type type = layout.type;
      SmallVector<unsigned> state;
      if (adam) {
        state.push_back(addArgument(type, CleaveDialect::kStateAttrName,
                                    "adam_m." + param.name, layout.block));
        state.push_back(addArgument(type, CleaveDialect::kStateAttrName,
                                    "adam_v." + param.name, layout.block));
      } else if (momentum > 0) {
        state.push_back(addArgument(type, CleaveDialect::kStateAttrName,
                                    "momentum." + param.name, layout.block));
      }
      stateIndices.push_back(state);
    }
    (void)step.insertArguments(SmallVector<unsigned>(newTypes.size(), first),
                               newTypes, newAttrs,
                               SmallVector<Location>(newTypes.size(), loc));
    BlockArgument lr = step.getArgument(lrIndex);
    BlockArgument stepNumber =
        stepIndex ? step.getArgument(*stepIndex) : BlockArgument();
    SmallVector<SmallVector<BlockArgument>> states;
    for (ArrayRef<unsigned> indices : stateIndices)
      states.push_back(llvm::map_to_vector(
          indices, [&](unsigned index) { return step.getArgument(index); }));

    ImplicitLocOpBuilder b(loc, ret);
    UpdateBuilder u(b);
    // Each rank's part of the update: its ZeRO block of the gradient and the
    // parameter (local slices; no communication).
    SmallVector<Value> grads, values;
    for (auto [param, layout] : llvm::zip(params, *layouts)) {
      auto slice = [&](Value value, int64_t dim) -> Value {
        if (dim < 0)
          return value;
        return LocalSliceOp::create(b, layout.type, value, normMesh,
                                    b.getStrArrayAttr({kZeroAxis}),
                                    b.getI64IntegerAttr(dim));
      };
      grads.push_back(slice(param.grad, layout.gradientSliceDim));
      values.push_back(slice(param.value, layout.valueSliceDim));
    }
    // The global norm over every gradient, before clipping.
    // Per-rank blocks of a partitioned pipeline: squares of blocks split
    // over some axes are summed over those axes first.
    Value total;
    std::map<SmallVector<std::string>, Value> sumsBySplit;
    for (auto [grad, layout] : llvm::zip(grads, *layouts)) {
      Value sum = u.sumOfSquares(grad);
      SmallVector<std::string> axes;
      if (layout.block)
        for (unsigned dim = 0; dim < layout.block.getDims().size(); ++dim)
          for (StringRef axis : layout.block.getDimAxes(dim))
            axes.push_back(axis.str());
      llvm::sort(axes);
      Value &group = sumsBySplit[axes];
      group = group ? Value(AddOp::create(b, group, sum)) : sum;
    }
    for (auto &[axes, sum] : sumsBySplit) {
      if (!axes.empty()) {
        if (!normMesh) {
          step.emitError("partitioned gradients need the pipeline's mesh");
          return failure();
        }
        SmallVector<StringRef> names(axes.begin(), axes.end());
        sum = AllReduceOp::create(
            b, scalarF32, sum, normMesh, b.getStrArrayAttr(names),
            b.getAttr<ReductionKindAttr>(ReductionKind::sum));
      }
      total = total ? Value(AddOp::create(b, total, sum)) : sum;
    }
    if (normMesh && pipelineRanks > 1) {
      if (!total)
        total = u.constant(scalarF32, 0);
      total = AllReduceOp::create(
          b, scalarF32, total, normMesh, b.getStrArrayAttr({"pp"}),
          b.getAttr<ReductionKindAttr>(ReductionKind::sum));
    }
    Value norm = total ? Value(SqrtOp::create(b, total)) : u.constant(scalarF32, 0);
    Value clip;
    if (clipNorm > 0 && total) {
      Value limit = u.constant(scalarF32, clipNorm);
      Value ratio = DivOp::create(
          b, limit, AddOp::create(b, norm, u.constant(scalarF32, 1e-6)));
      clip = MinOp::create(b, ratio, u.constant(scalarF32, 1.0));
    }
    // Bias corrections 1 - beta^t from the step input, in f64: in f32,
    // 1 - 0.999^t loses four digits to cancellation.
    Value correction1, correction2;
    if (adam) {
      auto scalarF64 = RankedTensorType::get({}, Float64Type::get(context));
      Value t = CastOp::create(b, scalarF64, stepNumber);
      auto power = [&](double beta) -> Value {
        Value exponent =
            MulOp::create(b, t, u.constant(scalarF64, std::log(beta)));
        return SubOp::create(b, u.constant(scalarF64, 1.0),
                             ExpOp::create(b, exponent));
      };
      correction1 = power(beta1);
      correction2 = power(beta2);
    }

    SmallVector<Value> results;
    SmallVector<Attribute> resultAttrs;
    if (loss) {
      results.push_back(loss);
      resultAttrs.push_back(getOutputAttrs(attrs, OutputRole::Loss));
    }
    results.push_back(norm);
    resultAttrs.push_back(getOutputAttrs(attrs, OutputRole::GradNorm));
    auto addUpdate = [&](Value next, BlockArgument of) {
      results.push_back(next);
      resultAttrs.push_back(attrs.getDictionaryAttr(attrs.getNamedAttr(
          CleaveDialect::kUpdatesAttrName,
          attrs.getI64IntegerAttr(of.getArgNumber()))));
    };
    SmallVector<std::pair<Value, BlockArgument>> stateUpdates;
    for (auto [param, state, layout, grad, value] :
         llvm::zip(params, states, *layouts, grads, values)) {
      Type type = layout.type;
      if (clip)
        grad = MulOp::create(b, grad, u.spread(clip, type));
      Value direction;
      if (adam) {
        Value m = u.blend(beta1, state[0], 1.0 - beta1, grad);
        Value v = u.blend(beta2, state[1], 1.0 - beta2, MulOp::create(b, grad, grad));
        Value mHat = DivOp::create(b, m, u.spread(correction1, type));
        Value vHat = DivOp::create(b, v, u.spread(correction2, type));
        Value denominator = AddOp::create(b, SqrtOp::create(b, vHat),
                                          u.constant(type, epsilon));
        direction = DivOp::create(b, mHat, denominator);
        stateUpdates.push_back({m, state[0]});
        stateUpdates.push_back({v, state[1]});
      } else if (momentum > 0) {
        Value v = AddOp::create(
            b, MulOp::create(b, u.constant(type, momentum), state[0]), grad);
        direction = v;
        stateUpdates.push_back({v, state[0]});
      } else {
        direction = grad;
      }
      if (weightDecay > 0 && cast<RankedTensorType>(type).getRank() >= 2)
        direction = AddOp::create(
            b, direction,
            MulOp::create(b, u.constant(type, weightDecay), value));
      Value next = SubOp::create(
          b, value, MulOp::create(b, u.spread(lr, type), direction));
      if (layout.valueSliceDim >= 0)
        next = AllGatherOp::create(b, param.value.getType(), next, normMesh,
                                   b.getStrArrayAttr({kZeroAxis}),
                                   b.getI64IntegerAttr(layout.valueSliceDim));
      addUpdate(next, param.value);
    }
    for (auto [next, of] : stateUpdates)
      addUpdate(next, of);

    func::ReturnOp::create(b, results);
    ret.erase();
    step.setType(FunctionType::get(context, step.getArgumentTypes(),
                                   ValueRange(results).getTypes()));
    step.setAllResultAttrs(resultAttrs);
    return success();
  }
};

} // namespace
