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
};

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
            : lookupFunctionWithBody(module, function,
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
    // A gradient several stages return in parts (a tied parameter's) is
    // applied by the first of them; the runtime sums the parts there.
    llvm::StringMap<int64_t> firstStage;
    for (func::FuncOp backward : backwards) {
      int64_t stage =
          backward->getAttrOfType<IntegerAttr>(CleaveDialect::kStageAttrName)
              .getInt();
      for (unsigned i = 0; i < backward.getNumResults(); ++i)
        if (auto output = backward.getResultAttrOfType<StringAttr>(
                i, CleaveDialect::kOutputAttrName)) {
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
          if (output && output.getValue().starts_with("grad.") &&
              firstStage.lookup(output.getValue()) == stage)
            params.push_back({BlockArgument(), output.getValue().drop_front(5),
                              Value(), backward.getResultTypes()[i],
                              backward.getResultAttrOfType<ShardingAttr>(
                                  i, CleaveDialect::kBlockAttrName)});
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
    for (BlockArgument arg : step.getArguments()) {
      auto name = step.getArgAttrOfType<StringAttr>(
          arg.getArgNumber(), CleaveDialect::kParamAttrName);
      if (!name)
        continue;
      Value grad = lookupOutput(step, ("grad." + name.getValue()).str());
      if (!grad)
        return step.emitError("training step has no gradient 'grad.")
               << name.getValue() << "'";
      params.push_back({arg, name.getValue(), grad, arg.getType()});
    }
    if (!lookupOutput(step, "loss"))
      return step.emitError("training step returns no 'loss'");
    return params;
  }

  LogicalResult extend(func::FuncOp step) {
    FailureOr<SmallVector<Parameter>> params = findParameters(step);
    if (failed(params))
      return failure();
    if (separate)
      return appendUpdate(createApplyFunction(step, *params, "apply_update"),
                          *params, Value(), FlatSymbolRefAttr());
    return appendUpdate(step, *params, lookupOutput(step, "loss"),
                        FlatSymbolRefAttr());
  }

  /// {role = name}, and the block of a partitioned tensor.
  static DictionaryAttr getArgumentAttrs(Builder &attrs, StringRef role,
                                         StringRef name, ShardingAttr block) {
    SmallVector<NamedAttribute> entries = {
        attrs.getNamedAttr(role, attrs.getStringAttr(name))};
    if (block)
      entries.push_back(attrs.getNamedAttr(CleaveDialect::kBlockAttrName, block));
    return attrs.getDictionaryAttr(entries);
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
      types.push_back(param.type);
      argAttrs.push_back(getArgumentAttrs(attrs, CleaveDialect::kParamAttrName,
                                          param.name, param.block));
    }
    for (const Parameter &param : params) {
      types.push_back(param.type);
      argAttrs.push_back(getArgumentAttrs(attrs, CleaveDialect::kInputAttrName,
                                          ("grad." + param.name).str(),
                                          param.block));
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
    auto addArgument = [&](Type type, StringRef role, const Twine &name,
                           ShardingAttr block = {}) -> BlockArgument {
      unsigned index = step.getNumArguments();
      (void)step.insertArgument(
          index, type, getArgumentAttrs(attrs, role, name.str(), block), loc);
      return step.getArgument(index);
    };
    bool adam = optimizer == OptimizerKind::AdamW;
    BlockArgument lr = addArgument(scalarF32, CleaveDialect::kInputAttrName, "lr");
    BlockArgument stepNumber =
        adam ? addArgument(scalarF32, CleaveDialect::kInputAttrName, "step")
             : BlockArgument();
    SmallVector<SmallVector<BlockArgument>> states;
    for (const Parameter &param : params) {
      Type type = param.value.getType();
      SmallVector<BlockArgument> state;
      if (adam) {
        state.push_back(addArgument(type, CleaveDialect::kStateAttrName,
                                    "adam_m." + param.name, param.block));
        state.push_back(addArgument(type, CleaveDialect::kStateAttrName,
                                    "adam_v." + param.name, param.block));
      } else if (momentum > 0) {
        state.push_back(addArgument(type, CleaveDialect::kStateAttrName,
                                    "momentum." + param.name, param.block));
      }
      states.push_back(state);
    }

    ImplicitLocOpBuilder b(loc, ret);
    UpdateBuilder u(b);
    // The global norm over every gradient, before clipping.
    // Per-rank blocks of a partitioned pipeline: squares of blocks split
    // over some axes are summed over those axes first.
    Value total;
    std::map<SmallVector<std::string>, Value> sumsBySplit;
    for (const Parameter &param : params) {
      Value sum = u.sumOfSquares(param.grad);
      SmallVector<std::string> axes;
      if (param.block)
        for (unsigned dim = 0; dim < param.block.getDims().size(); ++dim)
          for (StringRef axis : param.block.getDimAxes(dim))
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
      resultAttrs.push_back(attrs.getDictionaryAttr(attrs.getNamedAttr(
          CleaveDialect::kOutputAttrName, attrs.getStringAttr("loss"))));
    }
    results.push_back(norm);
    resultAttrs.push_back(attrs.getDictionaryAttr(attrs.getNamedAttr(
        CleaveDialect::kOutputAttrName, attrs.getStringAttr("grad_norm"))));
    auto addUpdate = [&](Value next, BlockArgument of) {
      results.push_back(next);
      resultAttrs.push_back(attrs.getDictionaryAttr(attrs.getNamedAttr(
          CleaveDialect::kUpdatesAttrName,
          attrs.getI64IntegerAttr(of.getArgNumber()))));
    };
    SmallVector<std::pair<Value, BlockArgument>> stateUpdates;
    for (auto [param, state] : llvm::zip(params, states)) {
      Type type = param.value.getType();
      Value grad = param.grad;
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
            MulOp::create(b, u.constant(type, weightDecay), param.value));
      Value next = SubOp::create(
          b, param.value, MulOp::create(b, u.spread(lr, type), direction));
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
