//===- PropagateSharding.cpp - Complete shardings from constraints --------===//
//
// Spreads shardings from function arguments and cleave.shard constraints
// through the ops' factor rules, one priority level at a time, each to a
// fixed point. Shardings only grow (whole dimensions gain axes), so the
// sweeps terminate; the rules that pick between alternatives are in the
// pass description.
//
//===----------------------------------------------------------------------===//

#include "cleave/Dialect/Cleave/IR/CleaveOps.h"
#include "cleave/Dialect/Cleave/Transforms/Passes.h"

#include "cleave/Analysis/ShardingSupport.h"

#include <set>

namespace mlir::cleave {
#define GEN_PASS_DEF_CLEAVEPROPAGATESHARDING
#include "cleave/Dialect/Cleave/Transforms/Passes.h.inc"
} // namespace mlir::cleave

using namespace mlir;
using namespace mlir::cleave;
using namespace mlir::cleave::sharding;

namespace {

/// Argument and result shardings are settled before any constraint.
constexpr int64_t kSignatureLevel = -1;

struct ValueState {
  TensorSharding sharding;
  /// The priority level that first reached the value.
  int64_t level;
  /// The constraint (or function, for its signature) it came from.
  Operation *origin;
};

class Propagation {
public:
  Propagation(func::FuncOp function, MeshAxes mesh)
      : function(function), mesh(std::move(mesh)) {}

  LogicalResult run();
  void annotate();

private:
  LogicalResult runLevel();
  LogicalResult propagateOp(Operation *op);
  bool grow(Value value, const TensorSharding &want, Operation *origin,
            bool fromConstraint = false);
  bool growState(Value value, const TensorSharding &want, Operation *origin,
                 bool fromConstraint);
  void markDirty(Value value);
  bool isParameter(Value value);
  LogicalResult reportConflict(Operation *op, Value first, Value second);

  func::FuncOp function;
  MeshAxes mesh;
  DenseMap<Value, ValueState> states;
  /// Arguments whose sharding the signature gives.
  DenseSet<Value> given;
  int64_t level = kSignatureLevel;
  /// The body's ops by position, and the positions of those whose values
  /// grew since they were last propagated: an op whose values did not
  /// change would grow nothing, so a level's sweeps visit only these.
  SmallVector<Operation *> ops;
  DenseMap<Operation *, unsigned> positions;
  std::set<unsigned> dirty;
};

/// The level a constraint joins at: its priority (the attribute is
/// unsigned in C++, a verified non-negative i64 in the IR).
int64_t getLevel(ShardOp shard) {
  return static_cast<int64_t>(shard.getPriority());
}

/// Whether two shardings ask for different splits: a dimension both split
/// differently (neither refining the other), or one axis on two dimensions.
/// What one leaves whole, the other may split.
bool disagree(const TensorSharding &a, const TensorSharding &b) {
  for (auto [dim, pair] : llvm::enumerate(llvm::zip(a.dims, b.dims))) {
    auto &[x, y] = pair;
    if (!isPrefix(x, y) && !isPrefix(y, x))
      return true;
    for (StringRef axis : y)
      for (auto [other, axes] : llvm::enumerate(a.dims))
        if (other != dim && llvm::is_contained(axes, axis))
          return true;
  }
  return false;
}

TensorSharding withoutPartial(TensorSharding sharding) {
  sharding.partial.clear();
  return sharding;
}

/// A parameter argument, or a constraint on one: what the forward and
/// backward passes read as the parameter.
bool Propagation::isParameter(Value value) {
  if (auto shard = value.getDefiningOp<ShardOp>())
    return isParameter(shard.getInput());
  auto arg = dyn_cast<BlockArgument>(value);
  return arg && arg.getOwner()->getParentOp() == function &&
         function.getArgAttr(arg.getArgNumber(), CleaveDialect::kParamAttrName);
}

void Propagation::markDirty(Value value) {
  if (Operation *producer = value.getDefiningOp())
    if (auto it = positions.find(producer); it != positions.end())
      dirty.insert(it->second);
  for (Operation *user : value.getUsers())
    if (auto it = positions.find(user); it != positions.end())
      dirty.insert(it->second);
}

bool Propagation::grow(Value value, const TensorSharding &want,
                       Operation *origin, bool fromConstraint) {
  if (!growState(value, want, origin, fromConstraint))
    return false;
  markDirty(value);
  return true;
}

bool Propagation::growState(Value value, const TensorSharding &want,
                            Operation *origin, bool fromConstraint) {
  // An argument's given sharding is how it arrives; a parameter's layout
  // is what checkpoints store: only its own constraints split it.
  if (given.contains(value) || (!fromConstraint && isParameter(value)))
    return false;
  auto [it, inserted] =
      states.try_emplace(value, ValueState{want, level, origin});
  if (inserted)
    return true;
  TensorSharding &current = it->second.sharding;
  bool changed = false;
  auto type = cast<RankedTensorType>(value.getType());
  auto constraint = value.getDefiningOp<ShardOp>();
  for (auto [dim, axes] : llvm::enumerate(want.dims)) {
    AxisList &have = current.dims[dim];
    if (axes.empty() || have == axes)
      continue;
    // A dimension a constraint splits is split exactly so.
    if (constraint && !fromConstraint &&
        !constraint.getSharding().getDimAxes(dim).empty())
      continue;
    // Splits only get finer: a whole or split dimension takes the wanted
    // axes that extend its own; a constraint may append its axes to
    // another split.
    AxisList grown;
    if (have.size() < axes.size() && isPrefix(have, axes))
      grown = axes;
    else if (fromConstraint && !have.empty())
      llvm::append_range(grown = have, axes);
    else
      continue;
    ArrayRef<StringRef> added = ArrayRef<StringRef>(grown).drop_front(have.size());
    // An added axis may not split another dimension; a pending sum on it
    // becomes this split (a reduce-scatter).
    bool taken = llvm::any_of(added, [&](StringRef axis) {
      return llvm::any_of(current.dims, [&](const AxisList &other) {
        return llvm::is_contained(other, axis);
      });
    });
    if (taken || type.getDimSize(dim) % mesh.getSize(grown) != 0)
      continue;
    llvm::erase_if(current.partial, [&](StringRef axis) {
      return llvm::is_contained(added, axis);
    });
    have = grown;
    changed = true;
  }
  for (StringRef axis : want.partial) {
    if (current.usesAxis(axis))
      continue;
    current.partial.push_back(axis);
    mesh.sort(current.partial);
    changed = true;
  }
  return changed;
}

LogicalResult Propagation::reportConflict(Operation *op, Value first,
                                          Value second) {
  InFlightDiagnostic diag =
      op->emitError("conflicting shardings of equal priority ")
      << level << ": its operands and results ask for different splits";
  for (Value value : {first, second}) {
    Operation *origin = states.lookup(value).origin;
    if (origin && origin != op)
      diag.attachNote(origin->getLoc()) << "one of them comes from here";
  }
  return diag;
}

LogicalResult Propagation::propagateOp(Operation *op) {
  // An active constraint passes splits both ways, like a copy; a parameter
  // behind it keeps what the constraint itself asked for.
  if (auto shard = dyn_cast<ShardOp>(op)) {
    if (getLevel(shard) > level)
      return success();
    Value input = shard.getInput(), result = shard.getResult();
    for (auto [from, to] : {std::pair(result, input), std::pair(input, result)})
      if (auto it = states.find(from); it != states.end())
        grow(to, withoutPartial(it->second.sharding), it->second.origin,
             /*fromConstraint=*/to == input && !isParameter(input));
    return success();
  }
  auto ruleOp = dyn_cast<ShardingRuleOpInterface>(op);
  if (!ruleOp)
    return success();
  SmallVector<Value> values(op->getOperands());
  llvm::append_range(values, op->getResults());
  SmallVector<const TensorSharding *> known;
  Operation *origin = nullptr;
  for (Value value : values) {
    auto it = states.find(value);
    known.push_back(it == states.end() ? nullptr : &it->second.sharding);
    if (it != states.end() && (!origin || it->second.level == level))
      origin = it->second.origin;
  }
  if (llvm::all_of(known, [](const TensorSharding *s) { return !s; }))
    return success();

  ShardingRule rule = ruleOp.getShardingRule();
  std::optional<FactorConflict> conflict;
  FactorAxes axes = deriveFactorAxes(rule, known, mesh, &conflict);
  if (conflict && level != kSignatureLevel &&
      states.lookup(values[conflict->first]).level == level &&
      states.lookup(values[conflict->second]).level == level)
    return reportConflict(op, values[conflict->first],
                          values[conflict->second]);

  for (auto [index, operand] : llvm::enumerate(op->getOperands()))
    grow(operand, projectOperand(rule, axes, index), origin);
  for (auto [index, result] : llvm::enumerate(op->getResults()))
    grow(result, projectResult(rule, axes, index, mesh), origin);
  return success();
}

LogicalResult Propagation::runLevel() {
  Block &body = function.getBody().front();
  // Constraints of this level split their results (where earlier levels
  // left dimensions whole) and pull their inputs along.
  for (auto shard : body.getOps<ShardOp>()) {
    if (getLevel(shard) != level)
      continue;
    dirty.insert(positions.lookup(shard.getOperation()));
    TensorSharding want = TensorSharding::get(shard.getSharding());
    Value input = shard.getInput(), result = shard.getResult();
    auto it = states.find(input);
    if (it != states.end() && it->second.level == level &&
        it->second.origin != shard.getOperation() &&
        disagree(it->second.sharding, want)) {
      InFlightDiagnostic diag =
          shard.emitError("conflicting shardings of equal priority ")
          << level << " for the same value";
      if (Operation *other = it->second.origin)
        diag.attachNote(other->getLoc()) << "the other sharding comes from here";
      return diag;
    }
    grow(result, want, shard, /*fromConstraint=*/true);
    grow(input, withoutPartial(states.find(result)->second.sharding), shard,
         /*fromConstraint=*/true);
  }

  // Sweeps forward and back until nothing grows, as over the whole body,
  // but visiting only dirty ops: one made dirty ahead of a sweep's cursor
  // is visited in that sweep, one behind it in the next.
  while (!dirty.empty()) {
    std::set<unsigned> behind;
    for (unsigned cursor = 0;;) {
      auto next = dirty.lower_bound(cursor);
      behind.insert(dirty.begin(), next);
      dirty.erase(dirty.begin(), next);
      if (dirty.empty())
        break;
      unsigned position = *dirty.begin();
      dirty.erase(dirty.begin());
      if (failed(propagateOp(ops[position])))
        return failure();
      cursor = position + 1;
    }
    dirty.swap(behind);
    behind.clear();
    for (int64_t cursor = static_cast<int64_t>(ops.size());;) {
      auto next = dirty.lower_bound(static_cast<unsigned>(cursor));
      behind.insert(next, dirty.end());
      dirty.erase(next, dirty.end());
      if (dirty.empty())
        break;
      unsigned position = *std::prev(dirty.end());
      dirty.erase(std::prev(dirty.end()));
      if (failed(propagateOp(ops[position])))
        return failure();
      cursor = position;
    }
    dirty.swap(behind);
  }
  return success();
}

LogicalResult Propagation::run() {
  Block &body = function.getBody().front();
  for (Operation &op : body) {
    positions[&op] = ops.size();
    dirty.insert(ops.size());
    ops.push_back(&op);
  }
  for (BlockArgument arg : function.getArguments()) {
    if (auto attr = function.getArgAttrOfType<ShardingAttr>(
            arg.getArgNumber(), CleaveDialect::kShardingAttrName)) {
      states[arg] = ValueState{TensorSharding::get(attr), level, function};
      given.insert(arg);
    }
  }
  Operation *ret = body.getTerminator();
  for (unsigned i = 0; i < function.getNumResults(); ++i)
    if (auto attr = function.getResultAttrOfType<ShardingAttr>(
            i, CleaveDialect::kShardingAttrName))
      grow(ret->getOperand(i), withoutPartial(TensorSharding::get(attr)),
           function);

  std::set<int64_t> levels = {kSignatureLevel};
  for (auto shard : body.getOps<ShardOp>())
    levels.insert(getLevel(shard));
  for (int64_t next : levels) {
    level = next;
    if (failed(runLevel()))
      return failure();
  }
  return success();
}

void Propagation::annotate() {
  MLIRContext *context = function.getContext();
  auto getAttr = [&](Value value, bool complete) {
    auto it = states.find(value);
    TensorSharding sharding =
        it == states.end()
            ? TensorSharding::getReplicated(
                  cast<RankedTensorType>(value.getType()).getRank())
            : it->second.sharding;
    if (complete)
      sharding.partial.clear();
    return sharding.toAttr(context, mesh.getName());
  };
  Block &body = function.getBody().front();
  for (Operation &op : body.without_terminator()) {
    if (!isa<ShardingRuleOpInterface, ShardOp>(op))
      continue;
    SmallVector<Attribute> shardings = llvm::map_to_vector(
        op.getResults(),
        [&](Value result) -> Attribute { return getAttr(result, false); });
    op.setAttr(CleaveDialect::kShardingAttrName,
               ArrayAttr::get(context, shardings));
  }
  updateArgAttrs(function, [&](unsigned index, NamedAttrList &attrs) {
    attrs.set(CleaveDialect::kShardingAttrName,
              getAttr(function.getArgument(index), true));
  });
  // A result that updates an argument comes out laid out like it, so that
  // one step's outputs are the next step's inputs; a parameter's gradient
  // comes out laid out like the parameter, so that an update elsewhere
  // (after accumulation, or on a pipeline stage) takes both alike, unless
  // a constraint on the returned value (ZeRO's) says otherwise.
  llvm::StringMap<BlockArgument> params;
  for (BlockArgument arg : function.getArguments())
    if (auto name = function.getArgAttrOfType<StringAttr>(
            arg.getArgNumber(), CleaveDialect::kParamAttrName))
      params[name.getValue()] = arg;
  Operation *ret = body.getTerminator();
  SmallVector<Attribute> resultShardings(function.getNumResults());
  for (unsigned i = 0; i < function.getNumResults(); ++i) {
    if (function.getResultAttr(i, CleaveDialect::kShardingAttrName))
      continue;
    auto updates = function.getResultAttrOfType<IntegerAttr>(
        i, CleaveDialect::kUpdatesAttrName);
    auto output = function.getResultAttrOfType<StringAttr>(
        i, CleaveDialect::kOutputAttrName);
    BlockArgument like =
        updates ? function.getArgument(updates.getInt()) : BlockArgument();
    if (output && hasOutputRole(function, i, OutputRole::Gradient) &&
        !ret->getOperand(i).getDefiningOp<ShardOp>())
      like = params.lookup(getGradientParam(output.getValue()));
    resultShardings[i] =
        like ? getAttr(like, true) : getAttr(ret->getOperand(i), true);
  }
  updateResultAttrs(function, [&](unsigned index, NamedAttrList &attrs) {
    if (resultShardings[index])
      attrs.set(CleaveDialect::kShardingAttrName, resultShardings[index]);
  });
}

/// The mesh every sharding in `function` names; null when there is none,
/// failure when they name several or it does not exist.
FailureOr<MeshOp> findFunctionMesh(func::FuncOp function) {
  FlatSymbolRefAttr name;
  Operation *first = nullptr;
  auto check = [&](Attribute attr, Operation *where) -> LogicalResult {
    auto sharding = dyn_cast_or_null<ShardingAttr>(attr);
    if (!sharding)
      return success();
    if (!name) {
      name = sharding.getMesh();
      first = where;
      return success();
    }
    if (sharding.getMesh() == name)
      return success();
    InFlightDiagnostic diag =
        where->emitError("shardings of one function must name one mesh, but "
                         "this one names ")
        << sharding.getMesh();
    diag.attachNote(first->getLoc()) << "and this one " << name;
    return diag;
  };
  for (unsigned i = 0; i < function.getNumArguments(); ++i)
    if (failed(check(function.getArgAttr(i, CleaveDialect::kShardingAttrName),
                     function)))
      return failure();
  for (unsigned i = 0; i < function.getNumResults(); ++i)
    if (failed(check(function.getResultAttr(i, CleaveDialect::kShardingAttrName),
                     function)))
      return failure();
  WalkResult walk = function.walk([&](ShardOp shard) {
    return failed(check(shard.getSharding(), shard)) ? WalkResult::interrupt()
                                                     : WalkResult::advance();
  });
  if (walk.wasInterrupted())
    return failure();
  if (!name)
    return MeshOp();
  auto mesh = SymbolTable::lookupNearestSymbolFrom<MeshOp>(function, name);
  if (!mesh)
    return function.emitError("no cleave.mesh named ") << name;
  return mesh;
}

struct CleavePropagateShardingPass
    : public cleave::impl::CleavePropagateShardingBase<CleavePropagateShardingPass> {
  /// Gives every use of a tensor made from scalars alone (a splat constant
  /// or a broadcast scalar, which CSE shares between unrelated parameters'
  /// updates) its own copy: the copies may then be split differently, where
  /// one shared value would meet conflicting shardings. Dense constants are
  /// left shared: copying them would copy their data.
  static void splitSharedConstants(func::FuncOp function) {
    auto isMadeFromScalars = [](Operation &op) {
      if (op.getNumResults() != 1 || !isMemoryEffectFree(&op))
        return false;
      auto type = dyn_cast<RankedTensorType>(op.getResult(0).getType());
      if (!type || type.getRank() == 0)
        return false;
      if (auto constant = dyn_cast<ConstantOp>(op))
        return isa<SplatElementsAttr>(constant.getValue());
      auto isScalar = [](Type operand) {
        auto tensor = dyn_cast<RankedTensorType>(operand);
        return tensor && tensor.getRank() == 0;
      };
      return llvm::all_of(op.getOperandTypes(), isScalar);
    };
    SmallVector<Operation *> shared;
    for (Operation &op : function.getBody().front().without_terminator())
      if (isa<ShardingRuleOpInterface>(op) && isMadeFromScalars(op) &&
          !op.getResult(0).hasOneUse() && !op.getResult(0).use_empty())
        shared.push_back(&op);
    for (Operation *op : shared) {
      SmallVector<OpOperand *> uses(llvm::make_pointer_range(op->getUses()));
      OpBuilder builder(op);
      for (OpOperand *use : llvm::drop_begin(uses))
        use->set(builder.clone(*op)->getResult(0));
    }
  }

  void runOnOperation() override {
    func::FuncOp function = getOperation();
    if (function.isDeclaration())
      return;
    FailureOr<MeshOp> mesh = findFunctionMesh(function);
    if (failed(mesh))
      return signalPassFailure();
    if (!*mesh)
      return;
    if (!function.getBody().hasOneBlock())
      return function.emitError("sharding needs a single-block function"),
             signalPassFailure();
    for (Operation &op : function.getBody().front().without_terminator())
      if (!isa<ShardingRuleOpInterface, ShardOp>(op)) {
        op.emitError("has no sharding rule; propagate shardings before "
                     "fusing or partitioning");
        return signalPassFailure();
      }
    splitSharedConstants(function);
    Propagation propagation(function, MeshAxes(*mesh));
    if (failed(propagation.run()))
      return signalPassFailure();
    propagation.annotate();
  }
};

} // namespace
