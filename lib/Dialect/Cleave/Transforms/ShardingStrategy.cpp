//===- ShardingStrategy.cpp - What strategy passes share ------------------===//

#include "ShardingStrategy.h"

#include "FunctionLookup.h"

using namespace mlir;
using namespace mlir::cleave;

FailureOr<StrategyAxis> mlir::cleave::findStrategyAxis(ModuleOp module,
                                                       StringRef axis,
                                                       StringRef strategy) {
  SmallVector<MeshOp> meshes;
  for (auto mesh : module.getOps<MeshOp>())
    if (mesh.getAxisSize(axis))
      meshes.push_back(mesh);
  if (meshes.size() != 1)
    return module.emitError("the ")
           << strategy << " strategy needs exactly one cleave.mesh with axis '"
           << axis << "', found " << meshes.size();
  return StrategyAxis{meshes[0], axis, *meshes[0].getAxisSize(axis)};
}

FailureOr<StrategyTarget> mlir::cleave::findStrategyTarget(ModuleOp module,
                                                           StringRef function,
                                                           StringRef axis,
                                                           StringRef strategy,
                                                           const Twine &what) {
  func::FuncOp target = lookupFunctionWithBody(
      module, function, {FunctionRole::Step, FunctionRole::Forward}, what);
  if (!target)
    return failure();
  FailureOr<StrategyAxis> split = findStrategyAxis(module, axis, strategy);
  if (failed(split))
    return failure();
  return StrategyTarget{target, *split};
}

std::string mlir::cleave::describeArgument(func::FuncOp function,
                                           unsigned index) {
  for (StringRef attrName :
       {CleaveDialect::kParamAttrName, CleaveDialect::kInputAttrName,
        CleaveDialect::kStateAttrName})
    if (auto name = function.getArgAttrOfType<StringAttr>(index, attrName))
      return "'" + name.getValue().str() + "'";
  return "argument " + std::to_string(index);
}

static ShardingAttr getSplit(MLIRContext *context, RankedTensorType type,
                             int64_t dim, const StrategyAxis &axis) {
  Builder builder(context);
  SmallVector<Attribute> dims;
  for (int64_t d = 0; d < type.getRank(); ++d)
    dims.push_back(d == dim ? builder.getStrArrayAttr({axis.axis})
                            : builder.getArrayAttr({}));
  MeshOp mesh = axis.mesh;
  return ShardingAttr::get(
      context, FlatSymbolRefAttr::get(mesh.getSymNameAttr()),
      builder.getArrayAttr(dims), builder.getArrayAttr({}));
}

static LogicalResult checkDivisible(func::FuncOp function, RankedTensorType type,
                                    int64_t dim, const StrategyAxis &axis,
                                    const Twine &what) {
  if (dim < 0 || type.getDimSize(dim) % axis.size == 0)
    return success();
  int64_t size = type.getDimSize(dim);
  return function.emitError() << what << ": dimension " << dim << " of size "
                              << size << " does not split over " << axis.axis
                              << "=" << axis.size << "; pad it to "
                              << (size + axis.size - 1) / axis.size * axis.size
                              << " or use fewer devices";
}

LogicalResult mlir::cleave::constrainArgument(func::FuncOp function,
                                              unsigned index, int64_t dim,
                                              const StrategyAxis &axis,
                                              int64_t priority) {
  BlockArgument arg = function.getArgument(index);
  auto type = cast<RankedTensorType>(arg.getType());
  if (failed(checkDivisible(function, type, dim, axis,
                            describeArgument(function, index))))
    return failure();
  OpBuilder builder = OpBuilder::atBlockBegin(&function.getBody().front());
  auto shard = ShardOp::create(builder, arg.getLoc(), type, arg,
                               getSplit(function.getContext(), type, dim, axis),
                               builder.getI64IntegerAttr(priority));
  arg.replaceAllUsesExcept(shard.getResult(), shard);
  return success();
}

LogicalResult mlir::cleave::constrainResult(func::FuncOp function,
                                            unsigned index, int64_t dim,
                                            const StrategyAxis &axis,
                                            int64_t priority) {
  Operation *ret = function.getBody().front().getTerminator();
  Value value = ret->getOperand(index);
  auto type = cast<RankedTensorType>(value.getType());
  std::string what = "result " + std::to_string(index);
  if (auto name = function.getResultAttrOfType<StringAttr>(
          index, CleaveDialect::kOutputAttrName))
    what = "'" + name.getValue().str() + "'";
  if (failed(checkDivisible(function, type, dim, axis, what)))
    return failure();
  OpBuilder builder(ret);
  auto shard = ShardOp::create(builder, ret->getLoc(), type, value,
                               getSplit(function.getContext(), type, dim, axis),
                               builder.getI64IntegerAttr(priority));
  ret->setOperand(index, shard.getResult());
  return success();
}

FailureOr<Value> mlir::cleave::constrainValue(func::FuncOp function,
                                              Value value, int64_t dim,
                                              const StrategyAxis &axis,
                                              int64_t priority) {
  auto type = cast<RankedTensorType>(value.getType());
  if (failed(
          checkDivisible(function, type, dim, axis, "a normalization's value")))
    return failure();
  OpBuilder builder(function.getContext());
  builder.setInsertionPointAfterValue(value);
  auto shard = ShardOp::create(builder, value.getLoc(), type, value,
                               getSplit(function.getContext(), type, dim, axis),
                               builder.getI64IntegerAttr(priority));
  value.replaceAllUsesExcept(shard.getResult(), shard);
  return shard.getResult();
}

LogicalResult mlir::cleave::constrainToSplits(func::FuncOp function,
                                              const TensorSplits &splits,
                                              const StrategyAxis &axis,
                                              int64_t priority) {
  for (const ParameterSplit &param : splits.parameters)
    if (param.dim >= 0 &&
        failed(constrainArgument(function, param.parameter.getArgNumber(),
                                 param.dim, axis, priority + param.order)))
      return failure();
  int64_t valuePriority = priority;
  for (const ParameterSplit &param : splits.parameters)
    valuePriority =
        std::max<int64_t>(valuePriority, priority + param.order + 1);
  for (const ValueSplit &value : splits.values)
    if (failed(constrainValue(function, value.value, value.dim, axis,
                              valuePriority + value.order)))
      return failure();
  return success();
}
