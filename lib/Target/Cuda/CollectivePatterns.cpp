//===- CollectivePatterns.cpp - Transfers and collectives -----------------===//
//
// Pipeline sends and receives, and collectives on the sub-communicator of
// the op's mesh axes, numbered in the module's group table.
//
//===----------------------------------------------------------------------===//

#include "FunctionEmitter.h"

#include "llvm/ADT/TypeSwitch.h"

using namespace mlir;
using namespace mlir::cleave;

std::string FunctionEmitter::getGroup(ArrayAttr axes) {
  std::string key;
  for (Attribute axis : axes)
    key += (key.empty() ? "" : ",") + cast<StringAttr>(axis).str();
  auto *it = llvm::find(meshGroups.groups, key);
  if (it == meshGroups.groups.end()) {
    meshGroups.groups.push_back(key);
    it = std::prev(meshGroups.groups.end());
  }
  return std::to_string(it - meshGroups.groups.begin());
}

LogicalResult FunctionEmitter::emitTransfer(Operation &op, Value value,
                                            int64_t peer, int64_t tag) {
  Builder builder(op.getContext());
  std::string group = getGroup(builder.getStrArrayAttr({"pp"}));
  std::string peerIndex = std::to_string(peer % meshGroups.pipelineRanks);
  std::string bytes =
      std::to_string(static_cast<int64_t>(getTotalBytes(value.getType())));
  if (isa<RecvOp>(op))
    receives.push_back("{" + group + ", " + peerIndex + ", " +
                       std::to_string(tag) + ", " + bytes + "}");
  return call(isa<SendOp>(op) ? "sendTo" : "receiveFrom",
              {group, peerIndex, std::to_string(tag), bytes, get(value)}, op);
}

LogicalResult FunctionEmitter::emitCollective(Operation &op) {
  auto reduction = [](ReductionKind kind) {
    return std::string(kind == ReductionKind::max
                           ? "cleave::rt::ReduceKind::Max"
                           : "cleave::rt::ReduceKind::Sum");
  };
  if (auto index = dyn_cast<DeviceIndexOp>(op))
    return call("deviceIndex",
                {getGroup(index.getAxes()), get(index.getResult())}, op);
  Value input = op.getOperand(0), result = op.getResult(0);
  std::string shape = getShapeLiteral(getShape(input));
  if (isStartedCollective(&op))
    return emitStart(op);
  // Gathering and taking the local slice move bytes along one dimension.
  auto alongDim = [&](StringRef function, ArrayAttr axes, int64_t dim) {
    return call(function,
                {getGroup(axes), getElementBytes(input), shape,
                 std::to_string(dim), get(input), get(result)},
                op);
  };
  return llvm::TypeSwitch<Operation *, LogicalResult>(&op)
      .Case([&](AllReduceOp reduce) {
        return call("allReduce",
                    {getGroup(reduce.getAxes()), getDType(input),
                     std::to_string(getElementCount(getShape(input))),
                     reduction(reduce.getKind()), get(input), get(result)},
                    op);
      })
      .Case([&](AllGatherOp gather) {
        return alongDim("allGather", gather.getAxes(), gather.getDim());
      })
      .Case([&](ReduceScatterOp scatter) {
        return call("reduceScatter",
                    {getGroup(scatter.getAxes()), getDType(input), shape,
                     std::to_string(scatter.getDim()),
                     reduction(scatter.getKind()), get(input), get(result)},
                    op);
      })
      .Case([&](AllToAllOp exchange) {
        return call("allToAll",
                    {getGroup(exchange.getAxes()), getElementBytes(input),
                     shape, std::to_string(exchange.getSplitDim()),
                     std::to_string(exchange.getConcatDim()), get(input),
                     get(result)},
                    op);
      })
      .Case([&](LocalSliceOp slice) {
        return alongDim("localSlice", slice.getAxes(), slice.getDim());
      })
      .Default([](Operation *other) {
        return other->emitOpError("is not a collective");
      });
}

LogicalResult FunctionEmitter::emitStart(Operation &op) {
  Value input = op.getOperand(0), result = op.getResult(0);
  std::string shape = getShapeLiteral(getShape(input));
  LogicalResult started =
      llvm::TypeSwitch<Operation *, LogicalResult>(&op)
          .Case([&](AllReduceOp reduce) {
            return call("startAllReduce",
                        {getGroup(reduce.getAxes()), getDType(input),
                         std::to_string(getElementCount(getShape(input))),
                         get(input), get(result)},
                        op);
          })
          .Case([&](AllGatherOp gather) {
            return call("startAllGather",
                        {getGroup(gather.getAxes()), getElementBytes(input),
                         shape, std::to_string(gather.getDim()), get(input),
                         get(result)},
                        op);
          })
          .Case([&](ReduceScatterOp scatter) {
            return call("startReduceScatter",
                        {getGroup(scatter.getAxes()), getDType(input), shape,
                         std::to_string(scatter.getDim()), get(input),
                         get(result)},
                        op);
          });
  if (failed(started))
    return failure();
  // Collectives started back to back go out as one group.
  if (isStartedCollective(op.getNextNode()))
    return success();
  return call("launchCollectives", {}, op);
}
