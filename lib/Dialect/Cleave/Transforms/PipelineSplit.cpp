//===- PipelineSplit.cpp - Per-stage forward and backward programs --------===//
//
// Every op goes to one piece, (stage, forward or backward), and is cloned
// there in program order. An operand defined in another piece is made
// available where it is used: a function argument, a copied constant, a
// stash from the stage's own forward, or a send/recv pair with a fresh tag.
//
//===----------------------------------------------------------------------===//

#include "cleave/Dialect/Cleave/IR/CleaveOps.h"
#include "cleave/Dialect/Cleave/Transforms/Passes.h"

#include "FunctionLookup.h"

#include "mlir/Analysis/SliceAnalysis.h"
#include "mlir/Dialect/Func/IR/FuncOps.h"
#include "mlir/IR/IRMapping.h"
#include "llvm/ADT/MapVector.h"

#include <vector>

namespace mlir::cleave {
#define GEN_PASS_DEF_CLEAVEPIPELINESPLIT
#include "cleave/Dialect/Cleave/Transforms/Passes.h.inc"
} // namespace mlir::cleave

using namespace mlir;
using namespace mlir::cleave;

namespace {

/// One stage's forward or backward program, built op by op.
struct Piece {
  int64_t stage = 0;
  bool backward = false;
  func::FuncOp function;
  IRMapping mapping;
  SmallVector<Value> arguments; // original values behind each argument
  SmallVector<DictionaryAttr> argumentAttrs;
  SmallVector<Value> results;
  SmallVector<DictionaryAttr> resultAttrs;
};

class Splitter {
public:
  Splitter(func::FuncOp step, int64_t stages)
      : step(step), stages(stages), builder(step.getContext()) {}

  LogicalResult run() {
    for (unsigned i = 0; i < step.getNumResults(); ++i)
      if (step.getResultAttr(i, CleaveDialect::kUpdatesAttrName))
        return step.emitError("updates its parameters: split the gradient "
                              "step before cleave-optimizer, or build the "
                              "update apart (separate=true)");
    auto ret = cast<func::ReturnOp>(step.getBody().front().getTerminator());
    Value loss = lookupOutput(step, OutputRole::Loss);
    if (!loss)
      return step.emitError(
          "training step returns no loss (cleave.output_role loss)");
    markForward(loss);
    createPieces();
    for (auto [index, value] : llvm::enumerate(ret.getOperands()))
      if (failed(findSplitSum(value, index)))
        return failure();
    for (Operation &op : step.getBody().front().without_terminator()) {
      if (op.hasTrait<OpTrait::ConstantLike>() || splitSumOps.contains(&op))
        continue;
      if (op.getNumRegions() != 0 &&
          !op.hasTrait<OpTrait::IsIsolatedFromAbove>())
        return op.emitError("reads values through its regions: pipeline "
                            "stages cannot see them");
      FailureOr<Piece *> piece = getPiece(&op);
      if (failed(piece))
        return failure();
      for (Value operand : op.getOperands()) {
        FailureOr<Value> local = getIn(operand, **piece, &op);
        if (failed(local))
          return failure();
        (*piece)->mapping.map(operand, *local);
      }
      builder.setInsertionPointToEnd(&(*piece)->function.getBody().front());
      builder.clone(op, (*piece)->mapping);
    }
    for (auto [index, value] : llvm::enumerate(ret.getOperands()))
      if (failed(addResult(value, index)))
        return failure();
    orderTransfers();
    finishPieces();
    step.erase();
    return success();
  }

private:
  /// The ops the loss depends on.
  void markForward(Value loss) {
    BackwardSliceOptions options;
    options.inclusive = true;
    options.omitBlockArguments = true;
    (void)getBackwardSlice(loss, &forwardOps, options);
  }

  void createPieces() {
    builder.setInsertionPoint(step);
    for (int64_t stage = 0; stage < stages; ++stage)
      for (bool backward : {false, true}) {
        Piece piece;
        piece.stage = stage;
        piece.backward = backward;
        std::string name = (step.getSymName() + "_stage" + Twine(stage) +
                            (backward ? "_backward" : "_forward"))
                               .str();
        piece.function = func::FuncOp::create(
            builder, step.getLoc(), name, builder.getFunctionType({}, {}));
        piece.function.addEntryBlock();
        piece.function->setAttr(CleaveDialect::kStageAttrName,
                                builder.getI64IntegerAttr(stage));
        setFunctionRole(piece.function, backward ? FunctionRole::StageBackward
                                                 : FunctionRole::StageForward);
        pieces.push_back(std::move(piece));
      }
  }

  Piece &getPiece(int64_t stage, bool backward) {
    return pieces[2 * stage + (backward ? 1 : 0)];
  }

  FailureOr<Piece *> getPiece(Operation *op) {
    auto stage = op->getAttrOfType<IntegerAttr>(CleaveDialect::kStageAttrName);
    if (!stage)
      return op->emitError("has no '")
             << CleaveDialect::kStageAttrName
             << "': run cleave-assign-stages on this function first";
    if (stage.getInt() >= stages)
      return op->emitError("stage ")
             << stage.getInt() << " is beyond the function's " << stages
             << " stages";
    return &getPiece(stage.getInt(), !forwardOps.contains(op));
  }

  /// `value` (of the original function) as `piece` sees it when `user`
  /// needs it.
  FailureOr<Value> getIn(Value value, Piece &piece, Operation *user) {
    auto key = std::make_pair(value, &piece);
    if (auto it = available.find(key); it != available.end())
      return it->second;
    FailureOr<Value> local = makeAvailable(value, piece, user);
    if (succeeded(local))
      available[key] = *local;
    return local;
  }

  /// `gather` built again in `piece`, at its top, from the piece's own
  /// argument.
  FailureOr<Value> regather(AllGatherOp gather, Piece &piece, Operation *user) {
    FailureOr<Value> input = getIn(gather.getInput(), piece, user);
    if (failed(input))
      return failure();
    OpBuilder::InsertionGuard guard(builder);
    builder.setInsertionPointAfterValue(*input);
    IRMapping mapping;
    mapping.map(gather.getInput(), *input);
    return builder.clone(*gather, mapping)->getResult(0);
  }

  FailureOr<Value> makeAvailable(Value value, Piece &piece, Operation *user) {
    Block &body = piece.function.getBody().front();
    if (auto argument = dyn_cast<BlockArgument>(value)) {
      piece.arguments.push_back(value);
      piece.argumentAttrs.push_back(step.getArgAttrDict(argument.getArgNumber()));
      return body.addArgument(value.getType(), argument.getLoc());
    }
    Operation *def = value.getDefiningOp();
    if (def->hasTrait<OpTrait::ConstantLike>()) {
      OpBuilder::InsertionGuard guard(builder);
      builder.setInsertionPointToStart(&body);
      return builder.clone(*def)->getResult(
          cast<OpResult>(value).getResultNumber());
    }
    FailureOr<Piece *> source = getPiece(def);
    if (failed(source))
      return failure();
    Piece &from = **source;
    if (&from == &piece)
      return piece.mapping.lookup(value);
    // A parameter split over the mesh (ZeRO-3) is gathered again where
    // another piece needs it whole: keeping the whole copy for that piece
    // would undo the split, once per micro-batch in flight.
    if (auto gather = dyn_cast<AllGatherOp>(def);
        gather && isa<BlockArgument>(gather.getInput()))
      return regather(gather, piece, user);
    if (from.stage == piece.stage) {
      if (from.backward)
        return user->emitError("needs a value the backward pass of stage ")
               << from.stage << " computes, in its forward pass";
      return stash(value, from, piece);
    }
    // Across stages: activations go down the pipeline in the forward pass,
    // gradients up it in the backward pass.
    if (from.backward && !piece.backward)
      return user->emitError("needs, in the forward pass of stage ")
             << piece.stage << ", a value the backward pass of stage "
             << from.stage << " computes";
    bool downstream = from.stage < piece.stage;
    if (!from.backward && !piece.backward && !downstream)
      return user->emitError("needs, in the forward pass of stage ")
             << piece.stage << ", a value from the forward pass of the later "
             << "stage " << from.stage;
    if (from.backward && downstream)
      return user->emitError("needs, in the backward pass of stage ")
             << piece.stage << ", a value from the backward pass of the "
             << "earlier stage " << from.stage;
    if (!from.backward && piece.backward) {
      // A forward value for another stage's backward travels with the pass
      // that runs in between: an earlier stage's activation is received in
      // this stage's forward and stashed; a later stage's is stashed there
      // and sent from its backward.
      Piece &forward = getPiece(piece.stage, false);
      if (downstream) {
        if (failed(getIn(value, forward, user)))
          return failure();
        return stash(value, forward, piece);
      }
      Piece &later = getPiece(from.stage, true);
      FailureOr<Value> stashed = getIn(value, later, user);
      if (failed(stashed))
        return failure();
      return transfer(*stashed, value, later, piece);
    }
    return transfer(from.mapping.lookup(value), value, from, piece);
  }

  /// The forward piece `from` returns `value`; the backward piece `to` takes
  /// it.
  FailureOr<Value> stash(Value value, Piece &from, Piece &to) {
    FailureOr<Value> local = getIn(value, from, value.getDefiningOp());
    if (failed(local))
      return failure();
    NamedAttribute id(builder.getStringAttr(CleaveDialect::kStashAttrName),
                      builder.getI64IntegerAttr(nextStash++));
    from.results.push_back(*local);
    from.resultAttrs.push_back(builder.getDictionaryAttr(id));
    to.arguments.push_back(value);
    to.argumentAttrs.push_back(builder.getDictionaryAttr(id));
    return to.function.getBody().front().addArgument(value.getType(),
                                                     value.getLoc());
  }

  /// A send of `sent` (the original `value` in `from`) right after it is
  /// computed, and a receive in `to`. Tags are renumbered once every
  /// transfer is placed (see orderTransfers).
  Value transfer(Value sent, Value value, Piece &from, Piece &to) {
    int64_t tag = nextTag++;
    OpBuilder::InsertionGuard guard(builder);
    builder.setInsertionPointAfterValue(sent);
    SendOp::create(builder, value.getLoc(), sent, to.stage, tag);
    builder.setInsertionPointToEnd(&to.function.getBody().front());
    return RecvOp::create(builder, value.getLoc(), value.getType(), from.stage,
                          tag);
  }

  /// Numbers the transfers in the order each program sends them and moves
  /// every receive to the start of its program, in tag order: between any
  /// two programs, sends and receives then come in the same order, which
  /// order-matched transports (NCCL point-to-point) need.
  void orderTransfers() {
    DenseMap<int64_t, int64_t> renumbered;
    int64_t next = 0;
    for (Piece &piece : pieces)
      piece.function.walk([&](SendOp send) {
        renumbered[send.getTag()] = next;
        send.setTag(next++);
      });
    for (Piece &piece : pieces) {
      SmallVector<RecvOp> receives;
      piece.function.walk([&](RecvOp recv) {
        recv.setTag(renumbered.lookup(recv.getTag()));
        receives.push_back(recv);
      });
      llvm::sort(receives, [](RecvOp a, RecvOp b) {
        return a.getTag() < b.getTag();
      });
      Block &body = piece.function.getBody().front();
      for (RecvOp recv : llvm::reverse(receives))
        recv->moveBefore(&body, body.begin());
    }
  }

  /// A gradient summed from parts that several stages' backward passes
  /// compute (a tied parameter's): the sum's adds are left out, and each of
  /// those stages returns its own part under the gradient's name, for the
  /// runtime to sum once per step rather than send every micro-batch.
  LogicalResult findSplitSum(Value value, unsigned index) {
    if (!isGradientResult(step, index))
      return success();
    // A sum all-reduce (data parallelism) of the sum is the sum of the
    // parts' all-reduces: each stage reduces its own part.
    SmallVector<Operation *> reduces;
    while (auto reduce = value.getDefiningOp<AllReduceOp>()) {
      if (!reduce->hasOneUse() || reduce.getKind() != ReductionKind::sum)
        break;
      reduces.push_back(reduce);
      value = reduce.getInput();
    }
    SmallVector<Operation *> adds;
    SmallVector<Value> leaves;
    SmallVector<Value> worklist = {value};
    while (!worklist.empty()) {
      Value next = worklist.pop_back_val();
      auto add = next.getDefiningOp<AddOp>();
      if (add && add->hasOneUse()) {
        adds.push_back(add);
        worklist.append({add.getLhs(), add.getRhs()});
        continue;
      }
      leaves.push_back(next);
    }
    llvm::MapVector<Piece *, SmallVector<Value>> parts;
    for (Value leaf : leaves) {
      Operation *def = leaf.getDefiningOp();
      if (!def || def->hasTrait<OpTrait::ConstantLike>())
        return success();
      FailureOr<Piece *> piece = getPiece(def);
      if (failed(piece))
        return failure();
      if (!(*piece)->backward)
        return success();
      parts[*piece].push_back(leaf);
    }
    if (parts.size() < 2)
      return success();
    splitSumOps.insert(adds.begin(), adds.end());
    splitSumOps.insert(reduces.begin(), reduces.end());
    splitSums[index] = {parts.takeVector(), std::move(reduces)};
    return success();
  }

  /// Result `index` of the step goes to the piece that computes it; a
  /// gradient that is a constant or an argument goes to the backward of the
  /// stage whose ops read its parameter.
  LogicalResult addResult(Value value, unsigned index) {
    DictionaryAttr attrs = step.getResultAttrDict(index);
    if (auto split = splitSums.find(index); split != splitSums.end()) {
      for (auto &[piece, leaves] : split->second.parts) {
        Value sum;
        for (Value leaf : leaves) {
          FailureOr<Value> local = getIn(leaf, *piece, step.getOperation());
          if (failed(local))
            return failure();
          if (!sum) {
            sum = *local;
            continue;
          }
          OpBuilder::InsertionGuard guard(builder);
          builder.setInsertionPointToEnd(&piece->function.getBody().front());
          auto add = AddOp::create(builder, leaf.getLoc(), sum, *local);
          if (Attribute layer =
                  leaf.getDefiningOp()->getAttr(CleaveDialect::kLayerAttrName))
            add->setAttr(CleaveDialect::kLayerAttrName, layer);
          sum = add;
        }
        OpBuilder::InsertionGuard guard(builder);
        builder.setInsertionPointToEnd(&piece->function.getBody().front());
        for (Operation *reduce : llvm::reverse(split->second.reduces)) {
          IRMapping mapping;
          mapping.map(reduce->getOperand(0), sum);
          sum = builder.clone(*reduce, mapping)->getResult(0);
        }
        piece->results.push_back(sum);
        piece->resultAttrs.push_back(attrs);
      }
      return success();
    }
    Operation *def = value.getDefiningOp();
    Piece *owner = nullptr;
    if (def && !def->hasTrait<OpTrait::ConstantLike>()) {
      FailureOr<Piece *> piece = getPiece(def);
      if (failed(piece))
        return failure();
      owner = *piece;
    } else {
      owner = &getPiece(getParamStage(attrs), true);
    }
    FailureOr<Value> local = getIn(value, *owner, step.getOperation());
    if (failed(local))
      return failure();
    owner->results.push_back(*local);
    owner->resultAttrs.push_back(attrs);
    return success();
  }

  /// The lowest stage of the ops that read the parameter a gradient result
  /// (cleave.output_role gradient) is the gradient of, else 0.
  int64_t getParamStage(DictionaryAttr attrs) {
    auto output =
        attrs ? attrs.getAs<StringAttr>(CleaveDialect::kOutputAttrName)
              : StringAttr();
    auto role =
        attrs ? attrs.getAs<OutputRoleAttr>(CleaveDialect::kOutputRoleAttrName)
              : OutputRoleAttr();
    if (!output || !role || role.getValue() != OutputRole::Gradient)
      return 0;
    StringRef name = getGradientParam(output.getValue());
    for (BlockArgument argument : step.getArguments()) {
      auto param = step.getArgAttrOfType<StringAttr>(
          argument.getArgNumber(), CleaveDialect::kParamAttrName);
      if (!param || param.getValue() != name)
        continue;
      std::optional<int64_t> lowest;
      for (Operation *user : argument.getUsers())
        if (auto stage = user->getAttrOfType<IntegerAttr>(
                CleaveDialect::kStageAttrName))
          lowest = std::min(lowest.value_or(stage.getInt()), stage.getInt());
      return lowest.value_or(0);
    }
    return 0;
  }

  void finishPieces() {
    for (Piece &piece : pieces) {
      Block &body = piece.function.getBody().front();
      builder.setInsertionPointToEnd(&body);
      func::ReturnOp::create(builder, step.getLoc(), piece.results);
      piece.function.setType(builder.getFunctionType(
          body.getArgumentTypes(), ValueRange(piece.results).getTypes()));
      // All at once: one at a time is quadratic in the arguments.
      updateArgAttrs(piece.function, [&](unsigned index, NamedAttrList &attrs) {
        if (index < piece.argumentAttrs.size() && piece.argumentAttrs[index])
          attrs = NamedAttrList(piece.argumentAttrs[index]);
      });
      updateResultAttrs(
          piece.function, [&](unsigned index, NamedAttrList &attrs) {
            if (index < piece.resultAttrs.size() && piece.resultAttrs[index])
              attrs = NamedAttrList(piece.resultAttrs[index]);
          });
    }
  }

  func::FuncOp step;
  int64_t stages;
  OpBuilder builder;
  SetVector<Operation *> forwardOps;
  std::vector<Piece> pieces;
  DenseMap<std::pair<Value, Piece *>, Value> available;
  /// Gradients whose parts several stages return, by result index, and the
  /// adds that summed them.
  struct SplitSum {
    SmallVector<std::pair<Piece *, SmallVector<Value>>, 0> parts;
    /// Outermost first.
    SmallVector<Operation *> reduces;
  };
  DenseMap<unsigned, SplitSum> splitSums;
  DenseSet<Operation *> splitSumOps;
  int64_t nextTag = 0;
  int64_t nextStash = 0;
};

struct PipelineSplitPass
    : public cleave::impl::CleavePipelineSplitBase<PipelineSplitPass> {
  using Base::Base;

  void runOnOperation() override {
    func::FuncOp step =
        lookupFunctionWithBody(getOperation(), function, {FunctionRole::Step},
                               "to split into pipeline stages");
    if (!step)
      return signalPassFailure();
    auto stages = step->getAttrOfType<DenseI64ArrayAttr>(
        CleaveDialect::kBlockStagesAttrName);
    if (!stages || stages.empty()) {
      step.emitError("has no '") << CleaveDialect::kBlockStagesAttrName
                                 << "': run cleave-assign-stages first";
      return signalPassFailure();
    }
    if (!step.getBody().hasOneBlock()) {
      step.emitError("pipeline stages need a single-block function");
      return signalPassFailure();
    }
    int64_t stageCount = stages.asArrayRef().back() + 1;
    FailureOr<ScheduleAttr> schedule = getSchedule(step, stageCount);
    if (failed(schedule))
      return signalPassFailure();
    Splitter splitter(step, stageCount);
    if (failed(splitter.run()))
      return signalPassFailure();
    ModuleOp module = getOperation();
    module->setAttr(CleaveDialect::kScheduleAttrName, *schedule);
    if (module.getOps<MeshOp>().empty()) {
      // The transfers and the update's gradient norm run over this axis.
      OpBuilder builder = OpBuilder::atBlockBegin(module.getBody());
      MeshOp::create(builder, module.getLoc(), "mesh",
                     builder.getStrArrayAttr({"pp"}),
                     builder.getDenseI64ArrayAttr({schedule->getRanks()}));
    }
  }

  /// The schedule the options ask for over `stageCount` stages: its ranks
  /// are `ranks`, or the pp axis of the module's mesh, or one per stage.
  FailureOr<ScheduleAttr> getSchedule(func::FuncOp step, int64_t stageCount) {
    ModuleOp module = getOperation();
    SmallVector<MeshOp> meshes(module.getOps<MeshOp>());
    std::optional<int64_t> meshRanks;
    if (meshes.size() == 1)
      meshRanks = meshes.front().getAxisSize("pp");
    int64_t rankCount = ranks ? ranks.getValue() : meshRanks.value_or(stageCount);
    if (meshes.size() > 1 || (!meshes.empty() && meshRanks != rankCount))
      return step.emitError("a pipeline over ")
             << rankCount
             << " ranks needs the module's one cleave.mesh to have an axis "
                "pp of that size";
    if (rankCount < 1 || stageCount % rankCount != 0)
      return step.emitError("")
             << stageCount << " pipeline stages do not divide over "
             << rankCount << " pp ranks";
    auto emitError = [&] { return step.emitError(); };
    auto recorded = ScheduleAttr::getChecked(
        emitError, &getContext(), pipeline::getScheduleName(schedule), rankCount,
        stageCount / rankCount, microBatches.getValue());
    if (!recorded)
      return failure();
    return recorded;
  }
};

} // namespace
