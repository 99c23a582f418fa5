//===- TensorSplitSearch.cpp - Tensor parallelism by exact search ---------===//
//
// Builds, per group of identical layers, the strategy graph of one layer of
// the training step over the factor rules, prices each strategy and each
// resharding between them on the cluster (the collectives partitioning
// inserts for it), and solves it exactly (planner::solveStrategies).
//
//===----------------------------------------------------------------------===//

#include "cleave/Analysis/TensorSplitSearch.h"

#include "cleave/Analysis/ShardingSupport.h"
#include "cleave/Planner/StrategyIlp.h"

#include "mlir/Analysis/SliceAnalysis.h"

#include "llvm/ADT/MapVector.h"
#include "llvm/ADT/SmallBitVector.h"
#include "llvm/ADT/StringSet.h"
#include "llvm/Support/Format.h"

#include <array>
#include <map>
#include <utility>

using namespace mlir;
using namespace mlir::cleave;
using namespace mlir::cleave::sharding;

namespace {

/// What a cluster's device and the axis's link cost.
struct Rates {
  /// The peak of the IR's precision and the cluster, whose GEMM
  /// efficiency (by shape where measured) scales it.
  double peakFlops;
  const planner::Cluster *cluster;
  double bytesPerSecond;
  planner::Link link;
  int64_t size;

  /// Seconds for `flops` of products of shape m x n x k.
  double getGemmTime(double flops, double m, double n, double k) const {
    return flops / (peakFlops * cluster->getGemmEfficiency(m, n, k));
  }
};

enum class Collective { None, AllReduce, ReduceScatter, AllGather, AllToAll };

StringRef getCollectiveName(Collective kind) {
  switch (kind) {
  case Collective::None:
    return "none";
  case Collective::AllReduce:
    return "all-reduce";
  case Collective::ReduceScatter:
    return "reduce-scatter";
  case Collective::AllGather:
    return "all-gather";
  case Collective::AllToAll:
    return "all-to-all";
  }
  llvm_unreachable("unknown collective");
}

/// The dimension `axis` splits, or -1.
int64_t getSplitDim(const TensorSharding &sharding, StringRef axis) {
  for (auto [dim, axes] : llvm::enumerate(sharding.dims))
    if (llvm::is_contained(axes, axis))
      return dim;
  return -1;
}

/// What turning `from` into `to` on `axis` takes (partitioning's choices).
Collective getCollective(const TensorSharding &from, const TensorSharding &to,
                         StringRef axis) {
  int64_t fromDim = getSplitDim(from, axis), toDim = getSplitDim(to, axis);
  if (llvm::is_contained(from.partial, axis))
    return toDim < 0 ? Collective::AllReduce : Collective::ReduceScatter;
  if (fromDim == toDim || fromDim < 0)
    return Collective::None; // equal, or a local slice
  return toDim < 0 ? Collective::AllGather : Collective::AllToAll;
}

double getBytes(Type type) {
  auto tensor = cast<RankedTensorType>(type);
  unsigned bits = tensor.getElementType().getIntOrFloatBitWidth();
  return static_cast<double>(tensor.getNumElements()) * ((bits + 7) / 8);
}

double getCollectiveTime(Collective kind, double bytes, const Rates &rates) {
  switch (kind) {
  case Collective::None:
    return 0.0;
  case Collective::AllReduce:
    return planner::getAllReduceTime(bytes, rates.size, rates.link);
  case Collective::ReduceScatter:
  case Collective::AllGather:
    return planner::getAllGatherTime(bytes, rates.size, rates.link);
  case Collective::AllToAll:
    // Every device keeps 1/n of its block and sends the rest.
    return planner::getAllGatherTime(bytes / rates.size, rates.size,
                                     rates.link);
  }
  llvm_unreachable("unknown collective");
}

/// The bytes each of `size` devices sends for `kind` on a tensor of `bytes`
/// (whole), as the collective ops count them: an all-reduce 2 (n - 1) / n
/// of it, the others (n - 1) / n of their larger side, which for an
/// all-to-all is one device's block.
double getCommunicatedBytes(Collective kind, double bytes, int64_t size) {
  double share = size <= 1 ? 0.0 : static_cast<double>(size - 1) / size;
  switch (kind) {
  case Collective::None:
    return 0.0;
  case Collective::AllReduce:
    return 2.0 * share * bytes;
  case Collective::ReduceScatter:
  case Collective::AllGather:
    return share * bytes;
  case Collective::AllToAll:
    return share * bytes / size;
  }
  llvm_unreachable("unknown collective");
}

/// Dimensions that carry the batch or the sequence: every dimension of the
/// step's inputs and whatever the factor rules tie to them. Those splits
/// belong to data parallelism, not to the tensor-parallel axis.
class BatchDims {
public:
  explicit BatchDims(func::FuncOp function) { run(function); }

  bool isMarked(Value value, unsigned dim) const {
    auto it = marked.find(value);
    return it != marked.end() && it->second.test(dim);
  }
  /// Whether a dimension of `value` carries the batch or the sequence.
  bool isActivation(Value value) const {
    auto it = marked.find(value);
    return it != marked.end() && it->second.any();
  }
  /// The factors of `rule` that touch a marked dimension of `op`.
  llvm::SmallBitVector getMarkedFactors(Operation *op,
                                        const ShardingRule &rule) const {
    llvm::SmallBitVector factors(rule.factorSizes.size());
    forEachDim(op, rule, [&](Value value, unsigned dim, ArrayRef<int64_t> fs) {
      if (isMarked(value, dim))
        for (int64_t f : fs)
          factors.set(f);
    });
    return factors;
  }

private:
  template <typename Fn>
  static void forEachDim(Operation *op, const ShardingRule &rule, Fn fn) {
    for (auto [value, dims] : llvm::zip(op->getOperands(), rule.operands))
      for (auto [dim, factors] : llvm::enumerate(dims))
        fn(value, dim, factors);
    for (auto [value, dims] : llvm::zip(op->getResults(), rule.results))
      for (auto [dim, factors] : llvm::enumerate(dims))
        fn(value, dim, factors);
  }

  bool mark(Value value, unsigned dim) {
    auto type = cast<RankedTensorType>(value.getType());
    auto [it, inserted] =
        marked.try_emplace(value, llvm::SmallBitVector(type.getRank()));
    if (it->second.test(dim))
      return false;
    it->second.set(dim);
    return true;
  }

  void run(func::FuncOp function) {
    for (BlockArgument arg : function.getArguments())
      if (function.getArgAttr(arg.getArgNumber(),
                              CleaveDialect::kInputAttrName))
        for (int64_t dim = 0;
             dim < cast<RankedTensorType>(arg.getType()).getRank(); ++dim)
          mark(arg, dim);
    Block &body = function.getBody().front();
    DenseMap<Operation *, ShardingRule> rules;
    for (Operation &op : body)
      if (auto ruleOp = dyn_cast<ShardingRuleOpInterface>(op))
        rules[&op] = ruleOp.getShardingRule();
    auto visit = [&](Operation &op) {
      bool changed = false;
      if (auto shard = dyn_cast<ShardOp>(op)) {
        for (int64_t dim = 0; dim < shard.getType().getRank(); ++dim)
          if (isMarked(shard.getInput(), dim) ||
              isMarked(shard.getResult(), dim))
            changed |=
                mark(shard.getInput(), dim) | mark(shard.getResult(), dim);
        return changed;
      }
      auto it = rules.find(&op);
      if (it == rules.end())
        return false;
      llvm::SmallBitVector factors = getMarkedFactors(&op, it->second);
      if (factors.none())
        return false;
      forEachDim(
          &op, it->second,
          [&](Value value, unsigned dim, ArrayRef<int64_t> fs) {
            if (llvm::any_of(fs, [&](int64_t f) { return factors.test(f); }))
              changed |= mark(value, dim);
          });
      return changed;
    };
    bool changed = true;
    while (changed) {
      changed = false;
      for (Operation &op : body)
        changed |= visit(op);
      for (Operation &op : llvm::reverse(body))
        changed |= visit(op);
    }
  }

  DenseMap<Value, llvm::SmallBitVector> marked;
};

SmallVector<BlockArgument> getLayerParameters(func::FuncOp function,
                                              ArrayRef<Operation *> ops);
StringRef getParameterName(func::FuncOp function, BlockArgument param);

/// One strategy of a node: the shardings it needs of its operands and
/// gives its results, and what it costs itself.
struct Strategy {
  SmallVector<TensorSharding> operands, results;
  /// The split dimension (parameters) or factor (ops); -1 for none.
  int64_t choice = -1;
  double compute = 0.0;
  double update = 0.0;
  double collective = 0.0;
  /// The tensor behind `collective`: the op's results, all-reduced twice.
  double collectiveTensorBytes = 0.0;
  /// Per device: an op's matrix-product FLOPs, the bytes it reads and
  /// writes besides (memory-bound work) and its results' bytes; a
  /// parameter's bytes.
  double matmulFlops = 0.0, memoryBytes = 0.0, resultBytes = 0.0;
};

/// Where a value moves from one node's strategy to another's (or to a
/// consumer outside the layer, which needs it whole).
struct Transition {
  unsigned from, fromResult;
  std::optional<unsigned> to;
  unsigned toOperand = 0;
  double bytes;
  /// The value is an activation (a dimension carries the batch).
  bool scalesWithBatch = false;
  /// The value is used by a forward op (or made by one, when it leaves the
  /// layer): a recomputed layer moves it again.
  bool forward = false;
};

/// The strategy graph of one layer, and what is needed to read its answer.
class LayerProblem {
public:
  LayerProblem(func::FuncOp function, ArrayRef<Operation *> ops,
               const BatchDims &batch, const MeshAxes &mesh, StringRef axis,
               const Rates &rates,
               const DenseMap<BlockArgument, int64_t> &decided,
               const DenseSet<Operation *> &forward)
      : function(function), forward(forward), mesh(mesh), axis(axis),
        rates(rates) {
    for (Operation *op : ops)
      if (auto ruleOp = dyn_cast<ShardingRuleOpInterface>(op))
        addOp(op, ruleOp.getShardingRule(), batch);
    for (BlockArgument param : getLayerParameters(function, ops))
      getOrAddParameter(param, decided);
    for (Operation *op : ops)
      if (opNodes.contains(op))
        addTransitions(op, batch, decided);
  }

  /// The layer's parameters, in order of first use.
  ArrayRef<BlockArgument> getParameters() const { return parameterOrder; }
  const std::vector<Strategy> &getStrategies(unsigned node) const {
    return strategies[node];
  }
  std::optional<unsigned> getOpNode(Operation *op) const {
    auto it = opNodes.find(op);
    return it == opNodes.end() ? std::nullopt
                               : std::optional<unsigned>(it->second);
  }
  unsigned getParameterNode(BlockArgument param) const {
    return paramNodes.lookup(param);
  }
  unsigned getNumChoices() const {
    unsigned count = 0;
    for (const std::vector<Strategy> &node : strategies)
      count += node.size() > 1;
    return count;
  }
  ArrayRef<Transition> getTransitions() const { return transitions; }
  /// Whether the node is an op of the forward (parameters are not).
  bool isForward(unsigned node) const { return forwardNodes.contains(node); }

  planner::StrategyGraph buildGraph() const;
  Collective getCollectiveOf(const Transition &t,
                             ArrayRef<unsigned> choice) const {
    const TensorSharding &from =
        strategies[t.from][choice[t.from]].results[t.fromResult];
    if (!t.to)
      return getCollective(
          from, TensorSharding::getReplicated(from.dims.size()), axis);
    return getCollective(
        from, strategies[*t.to][choice[*t.to]].operands[t.toOperand], axis);
  }

private:
  void addOp(Operation *op, const ShardingRule &rule, const BatchDims &batch);
  unsigned getOrAddParameter(BlockArgument param,
                             const DenseMap<BlockArgument, int64_t> &decided);
  void addTransitions(Operation *op, const BatchDims &batch,
                      const DenseMap<BlockArgument, int64_t> &decided);
  std::optional<BlockArgument> getParameter(Value value);

  func::FuncOp function;
  const DenseSet<Operation *> &forward;
  const MeshAxes &mesh;
  StringRef axis;
  const Rates &rates;
  std::vector<std::vector<Strategy>> strategies;
  DenseMap<Operation *, unsigned> opNodes;
  DenseSet<unsigned> forwardNodes;
  DenseMap<BlockArgument, unsigned> paramNodes;
  SmallVector<BlockArgument> parameterOrder;
  std::vector<Transition> transitions;
};

std::optional<BlockArgument> LayerProblem::getParameter(Value value) {
  while (auto shard = value.getDefiningOp<ShardOp>())
    value = shard.getInput();
  auto arg = dyn_cast<BlockArgument>(value);
  if (!arg || arg.getOwner()->getParentOp() != function ||
      !function.getArgAttr(arg.getArgNumber(), CleaveDialect::kParamAttrName))
    return std::nullopt;
  return arg;
}

void LayerProblem::addOp(Operation *op, const ShardingRule &rule,
                         const BatchDims &batch) {
  // A matrix product's time depends on its per-device shape: which of m,
  // n, k (or the batch) the split factor is, when split.
  std::optional<std::array<int64_t, 3>> gemm;
  auto matmul = dyn_cast<MatmulOp>(op);
  if (matmul) {
    auto result = cast<RankedTensorType>(matmul.getType());
    auto lhs = cast<RankedTensorType>(matmul.getLhs().getType());
    int64_t rank = result.getRank();
    gemm = {result.getDimSize(rank - 2), result.getDimSize(rank - 1),
            lhs.getDimSize(matmul.getTransposeLhs() ? lhs.getRank() - 2
                                                    : lhs.getRank() - 1)};
  }
  double matmulFlops = 0.0, bytes = 0.0;
  if (auto cost = dyn_cast<CostOpInterface>(op)) {
    matmulFlops = cost.getMatmulFlops();
    bytes = cost.getBytesRead() + cost.getBytesWritten();
  }
  auto getCompute = [&](std::optional<int64_t> factor) {
    if (matmulFlops <= 0.0)
      return bytes / rates.bytesPerSecond / (factor ? rates.size : 1);
    double flops = matmulFlops / (factor ? rates.size : 1);
    if (!gemm)
      return rates.getGemmTime(flops, 4096, 4096, 4096);
    std::array<double, 3> shape = {double((*gemm)[0]), double((*gemm)[1]),
                                   double((*gemm)[2])};
    if (factor) {
      const auto &resultDims = rule.results.front();
      size_t rank = resultDims.size();
      if (llvm::is_contained(resultDims[rank - 1], *factor))
        shape[1] /= rates.size;
      else if (llvm::is_contained(resultDims[rank - 2], *factor))
        shape[0] /= rates.size;
      else if (llvm::none_of(resultDims, [&](const SmallVector<int64_t> &fs) {
                 return llvm::is_contained(fs, *factor);
               }))
        shape[2] /= rates.size;
    }
    return rates.getGemmTime(flops, shape[0], shape[1], shape[2]);
  };
  double compute = getCompute(std::nullopt);
  llvm::SmallBitVector batchFactors = batch.getMarkedFactors(op, rule);
  auto isMajorEverywhere = [&](int64_t factor) {
    for (const auto &dims :
         llvm::concat<const SmallVector<SmallVector<int64_t>>>(rule.operands,
                                                               rule.results))
      for (const SmallVector<int64_t> &factors : dims)
        if (llvm::is_contained(factors, factor) && factors.front() != factor)
          return false;
    return true;
  };

  double memoryBytes = matmulFlops > 0.0 ? 0.0 : bytes;
  double resultBytes = 0.0;
  for (Type type : op->getResultTypes())
    resultBytes += getBytes(type);
  std::vector<Strategy> choices;
  Strategy whole;
  whole.compute = compute;
  whole.matmulFlops = matmulFlops;
  whole.memoryBytes = memoryBytes;
  whole.resultBytes = resultBytes;
  for (const auto &dims : rule.operands)
    whole.operands.push_back(TensorSharding::getReplicated(dims.size()));
  for (const auto &dims : rule.results)
    whole.results.push_back(TensorSharding::getReplicated(dims.size()));
  choices.push_back(std::move(whole));
  for (int64_t factor = 0;
       factor < static_cast<int64_t>(rule.factorSizes.size()); ++factor) {
    FactorKind kind = rule.factorKinds[factor];
    if (kind == FactorKind::NeedsReplication || batchFactors.test(factor) ||
        rule.factorSizes[factor] % rates.size != 0 ||
        !isMajorEverywhere(factor))
      continue;
    FactorAxes axes(rule.factorSizes.size());
    axes[factor].push_back(axis);
    Strategy split;
    split.choice = factor;
    split.compute = getCompute(factor);
    split.matmulFlops = matmulFlops / rates.size;
    split.memoryBytes = memoryBytes / rates.size;
    for (unsigned i = 0; i < rule.operands.size(); ++i)
      split.operands.push_back(projectOperand(rule, axes, i));
    for (unsigned i = 0; i < rule.results.size(); ++i) {
      split.results.push_back(projectResult(rule, axes, i, mesh));
      // A pending sum is whole-sized on every device.
      split.resultBytes +=
          getBytes(op->getResult(i).getType()) /
          (getSplitDim(split.results.back(), axis) >= 0 ? rates.size : 1);
    }
    // A collective factor's per-device form reduces its statistics itself
    // (two all-reduces of the per-row values, as vocab-parallel
    // cross-entropy does).
    if (kind == FactorKind::Collective) {
      double bytes = 0.0;
      for (Type type : op->getResultTypes())
        bytes += getBytes(type);
      split.collective =
          2.0 * getCollectiveTime(Collective::AllReduce, bytes, rates);
      split.collectiveTensorBytes = bytes;
    }
    choices.push_back(std::move(split));
  }
  opNodes[op] = strategies.size();
  if (forward.contains(op))
    forwardNodes.insert(strategies.size());
  strategies.push_back(std::move(choices));
}

unsigned LayerProblem::getOrAddParameter(
    BlockArgument param, const DenseMap<BlockArgument, int64_t> &decided) {
  if (auto it = paramNodes.find(param); it != paramNodes.end())
    return it->second;
  auto type = cast<RankedTensorType>(param.getType());
  // Adam reads and writes the parameter, its two moments and reads the
  // gradient (f32): the update of the local part, at memory bandwidth.
  constexpr double kUpdateBytesPerElement = 7 * 4;
  std::vector<Strategy> choices;
  for (int64_t dim = -1; dim < type.getRank(); ++dim) {
    if (dim >= 0 && type.getDimSize(dim) % rates.size != 0)
      continue;
    if (auto it = decided.find(param); it != decided.end() && it->second != dim)
      continue;
    TensorSharding layout = TensorSharding::getReplicated(type.getRank());
    double elements = type.getNumElements();
    if (dim >= 0) {
      layout.dims[dim].push_back(axis);
      elements /= rates.size;
    }
    Strategy strategy;
    strategy.choice = dim;
    strategy.update = elements * kUpdateBytesPerElement / rates.bytesPerSecond;
    strategy.resultBytes = getBytes(type) * elements / type.getNumElements();
    strategy.operands = {layout};
    strategy.results = {layout};
    choices.push_back(std::move(strategy));
  }
  unsigned node = strategies.size();
  strategies.push_back(std::move(choices));
  paramNodes[param] = node;
  parameterOrder.push_back(param);
  return node;
}

void LayerProblem::addTransitions(
    Operation *op, const BatchDims &batch,
    const DenseMap<BlockArgument, int64_t> &decided) {
  unsigned node = opNodes.lookup(op);
  for (OpOperand &operand : op->getOpOperands()) {
    Value value = operand.get();
    double bytes = getBytes(value.getType());
    if (std::optional<BlockArgument> param = getParameter(value)) {
      unsigned from = getOrAddParameter(*param, decided);
      transitions.push_back({from, 0, node, operand.getOperandNumber(), bytes,
                             /*scalesWithBatch=*/false, forward.contains(op)});
      continue;
    }
    // Values from outside the layer arrive whole: any split is a slice.
    Operation *producer = value.getDefiningOp();
    if (!producer || !opNodes.contains(producer))
      continue;
    transitions.push_back({opNodes.lookup(producer),
                           cast<OpResult>(value).getResultNumber(), node,
                           operand.getOperandNumber(), bytes,
                           batch.isActivation(value), forward.contains(op)});
  }
  // Activations leave the layer whole; a parameter's gradient leaves laid
  // out like the parameter (its consumers elsewhere, the accumulation of a
  // tied parameter's parts, follow that layout).
  Operation *ret = function.getBody().front().getTerminator();
  for (OpResult result : op->getResults()) {
    double bytes = getBytes(result.getType());
    bool activation = batch.isActivation(result);
    // A value is made whole once however many consumers outside need it.
    bool leavesWhole = false;
    for (OpOperand &use : result.getUses()) {
      Operation *user = use.getOwner();
      if (opNodes.contains(user))
        continue;
      std::optional<unsigned> to;
      if (user != ret && !activation)
        continue;
      if (user == ret) {
        auto output = function.getResultAttrOfType<StringAttr>(
            use.getOperandNumber(), CleaveDialect::kOutputAttrName);
        // Only a parameter the layer reads has a choice here.
        if (output && hasOutputRole(function, use.getOperandNumber(),
                                    OutputRole::Gradient))
          for (BlockArgument param : parameterOrder)
            if (getParameterName(function, param) ==
                getGradientParam(output.getValue())) {
              to = paramNodes.lookup(param);
              break;
            }
      }
      if (!to && std::exchange(leavesWhole, true))
        continue;
      transitions.push_back({opNodes.lookup(op), result.getResultNumber(), to,
                             0, bytes, activation, forward.contains(op)});
    }
  }
}

planner::StrategyGraph LayerProblem::buildGraph() const {
  planner::StrategyGraph graph;
  for (const std::vector<Strategy> &node : strategies) {
    std::vector<double> costs;
    for (const Strategy &strategy : node)
      costs.push_back(strategy.compute + strategy.update + strategy.collective);
    graph.addNode(std::move(costs));
  }
  for (const Transition &t : transitions) {
    const std::vector<Strategy> &from = strategies[t.from];
    if (!t.to) {
      for (auto [i, strategy] : llvm::enumerate(from)) {
        const TensorSharding &made = strategy.results[t.fromResult];
        graph.nodeCosts[t.from][i] += getCollectiveTime(
            getCollective(made, TensorSharding::getReplicated(made.dims.size()),
                          axis),
            t.bytes, rates);
      }
      continue;
    }
    const std::vector<Strategy> &to = strategies[*t.to];
    planner::StrategyGraph::Edge edge{t.from, *t.to, {}};
    for (const Strategy &made : from)
      for (const Strategy &needed : to)
        edge.costs.push_back(
            getCollectiveTime(getCollective(made.results[t.fromResult],
                                            needed.operands[t.toOperand], axis),
                              t.bytes, rates));
    graph.edges.push_back(std::move(edge));
  }
  return graph;
}

/// A layer's shape: its ops, their types and how they connect, with values
/// from outside named by type and parameters by order of first use.
std::string getLayerSignature(func::FuncOp function,
                              ArrayRef<Operation *> ops) {
  DenseMap<Operation *, unsigned> index;
  DenseMap<Value, unsigned> params;
  std::string signature;
  llvm::raw_string_ostream os(signature);
  for (Operation *op : ops) {
    index[op] = index.size();
    os << op->getName() << "(";
    for (Value operand : op->getOperands()) {
      Value root = operand;
      while (auto shard = root.getDefiningOp<ShardOp>())
        root = shard.getInput();
      if (Operation *producer = operand.getDefiningOp();
          producer && index.contains(producer))
        os << "%" << index.lookup(producer) << "."
           << cast<OpResult>(operand).getResultNumber();
      else if (isa<BlockArgument>(root) &&
               function.getArgAttr(cast<BlockArgument>(root).getArgNumber(),
                                   CleaveDialect::kParamAttrName))
        os << "p" << params.try_emplace(root, params.size()).first->second
           << ":" << root.getType();
      else
        os << operand.getType();
      os << ",";
    }
    os << ")->";
    llvm::interleaveComma(op->getResultTypes(), os);
    // Attributes other than the layer tag (transpose flags, axes) matter.
    for (NamedAttribute attr : op->getAttrs())
      if (attr.getName() != CleaveDialect::kLayerAttrName &&
          attr.getName() != CleaveDialect::kShardingAttrName)
        os << " " << attr.getName() << "=" << attr.getValue();
    os << ";";
  }
  return signature;
}

std::string describeLayer(Attribute layer) {
  auto tag = dyn_cast<LayerAttr>(layer);
  if (!tag)
    return "?";
  switch (tag.getKind()) {
  case LayerKind::Embed:
    return "embed";
  case LayerKind::Head:
    return "head";
  case LayerKind::Block:
    return std::to_string(tag.getIndex());
  }
  llvm_unreachable("unknown layer kind");
}

StringRef getParameterName(func::FuncOp function, BlockArgument param) {
  return function
      .getArgAttrOfType<StringAttr>(param.getArgNumber(),
                                    CleaveDialect::kParamAttrName)
      .getValue();
}

/// The parameters `ops` read, in order of first use (through constraints).
SmallVector<BlockArgument> getLayerParameters(func::FuncOp function,
                                              ArrayRef<Operation *> ops) {
  SmallVector<BlockArgument> params;
  for (Operation *op : ops)
    for (Value operand : op->getOperands()) {
      while (auto shard = operand.getDefiningOp<ShardOp>())
        operand = shard.getInput();
      auto arg = dyn_cast<BlockArgument>(operand);
      if (arg && arg.getOwner()->getParentOp() == function &&
          function.getArgAttr(arg.getArgNumber(),
                              CleaveDialect::kParamAttrName) &&
          !llvm::is_contained(params, arg))
        params.push_back(arg);
    }
  return params;
}

/// The ops the loss depends on: the forward of the training step.
DenseSet<Operation *> getForwardOps(func::FuncOp step) {
  DenseSet<Operation *> forward;
  Operation *ret = step.getBody().front().getTerminator();
  for (auto [index, value] : llvm::enumerate(ret->getOperands())) {
    if (!hasOutputRole(step, index, OutputRole::Loss))
      continue;
    SetVector<Operation *> slice;
    BackwardSliceOptions options;
    options.inclusive = true;
    options.omitBlockArguments = true;
    (void)getBackwardSlice(value, &slice, options);
    forward.insert(slice.begin(), slice.end());
  }
  return forward;
}

/// What the solved `choice` of `problem` means for every layer of the group.
LayerGroupSplit
describeGroup(func::FuncOp function, ArrayRef<Attribute> members,
              const LayerProblem &problem, ArrayRef<unsigned> choice,
              const planner::StrategyGraph &graph, const Rates &rates,
              ArrayRef<BlockArgument> owned) {
  LayerGroupSplit group;
  group.layers.assign(members.begin(), members.end());
  group.choices = problem.getNumChoices();
  group.total = planner::getStrategyCost(graph, choice);
  for (auto [node, picked] : llvm::enumerate(choice)) {
    const Strategy &strategy = problem.getStrategies(node)[picked];
    group.compute += strategy.compute;
    group.update += strategy.update;
    if (problem.isForward(node)) {
      const Strategy &whole = problem.getStrategies(node).front();
      group.matmulFlops += whole.matmulFlops;
      group.deviceMatmulFlops += strategy.matmulFlops;
      group.memoryBytes += whole.memoryBytes;
      group.deviceMemoryBytes += strategy.memoryBytes;
      group.activationBytes += whole.resultBytes;
      group.deviceActivationBytes += strategy.resultBytes;
    }
    // Two all-reduces of the op's statistics.
    if (strategy.collective > 0.0) {
      SplitCollective statistics;
      statistics.kind = getCollectiveName(Collective::AllReduce);
      statistics.tensorBytes = strategy.collectiveTensorBytes;
      statistics.communicatedBytes = getCommunicatedBytes(
          Collective::AllReduce, strategy.collectiveTensorBytes, rates.size);
      statistics.seconds = strategy.collective / 2.0;
      statistics.scalesWithBatch = true;
      statistics.forward = problem.isForward(node);
      statistics.statistics = true;
      group.collectives.push_back(statistics);
      group.collectives.push_back(statistics);
    }
  }
  for (BlockArgument param : owned) {
    unsigned node = problem.getParameterNode(param);
    group.parameterBytes += getBytes(param.getType());
    group.deviceParameterBytes +=
        problem.getStrategies(node)[choice[node]].resultBytes;
  }
  for (BlockArgument param : problem.getParameters()) {
    unsigned node = problem.getParameterNode(param);
    group.parameterDims.push_back(
        {getParameterName(function, param).str(),
         problem.getStrategies(node)[choice[node]].choice});
  }
  for (const Transition &t : problem.getTransitions()) {
    Collective kind = problem.getCollectiveOf(t, choice);
    if (kind == Collective::None)
      continue;
    SplitCollective collective;
    collective.kind = getCollectiveName(kind);
    collective.tensorBytes = t.bytes;
    collective.communicatedBytes =
        getCommunicatedBytes(kind, t.bytes, rates.size);
    collective.seconds = getCollectiveTime(kind, t.bytes, rates);
    collective.scalesWithBatch = t.scalesWithBatch;
    collective.forward = t.forward;
    group.collectives.push_back(collective);
  }
  return group;
}

} // namespace

FailureOr<TensorSplits> mlir::cleave::searchTensorSplits(
    func::FuncOp step, MeshOp meshOp, StringRef axis, int64_t size,
    const planner::Cluster &cluster, StringRef precision) {
  if (!step.getBody().hasOneBlock())
    return step.emitError(
        "the tensor-sharding search needs a single-block function");

  // Prices: GEMMs at the calibrated rate of the IR's precision, other ops
  // at memory bandwidth, collectives on the link the axis spans (innermost
  // on the mesh, as the planner lays tp out).
  bool lowPrecision = false;
  step.walk([&](Operation *op) {
    for (Type type : op->getResultTypes())
      if (auto tensor = dyn_cast<RankedTensorType>(type))
        lowPrecision |=
            tensor.getElementType().isBF16() || tensor.getElementType().isF16();
  });
  // An f32 step to be trained in 16 bits (as cleave-mixed-precision will
  // make it): the 16-bit peak, and half the bytes, which at twice the
  // bandwidths takes the same time.
  double bandwidthScale = 1.0;
  if ((precision == "bf16" || precision == "f16") && !lowPrecision) {
    lowPrecision = true;
    bandwidthScale = 2.0;
  }
  std::optional<double> peak =
      cluster.getPeakFlops(lowPrecision ? "bf16" : "f32");
  if (!peak)
    peak = cluster.getPeakFlops("f32");
  if (!peak)
    return step.emitError("cluster '")
           << cluster.name << "' gives no peak FLOP/s for this precision";
  planner::Link link = planner::getAxisLink(cluster, 1, size);
  link.bandwidth *= bandwidthScale;
  Rates rates{*peak, &cluster, cluster.memoryBandwidth * bandwidthScale, link,
              size};
  MeshAxes mesh(meshOp);
  BatchDims batch(step);
  DenseSet<Operation *> forward = getForwardOps(step);
  DenseMap<BlockArgument, Attribute> firstReader;
  for (Operation &op : step.getBody().front())
    if (Attribute layer = op.getAttr(CleaveDialect::kLayerAttrName))
      for (BlockArgument param : getLayerParameters(step, {&op}))
        firstReader.try_emplace(param, layer);

  llvm::MapVector<Attribute, SmallVector<Operation *>> layers;
  for (Operation &op : step.getBody().front().without_terminator())
    if (Attribute layer = op.getAttr(CleaveDialect::kLayerAttrName))
      layers[layer].push_back(&op);
  llvm::MapVector<StringRef, SmallVector<Attribute>> groups;
  llvm::StringSet<> signatures;
  for (auto &[layer, ops] : layers)
    groups[signatures.insert(getLayerSignature(step, ops)).first->getKey()]
        .push_back(layer);

  // Parameters two groups share (a tied embedding) are the heavier group's
  // to choose: the lighter one adapts to it.
  auto getFlops = [&](const SmallVector<Attribute> &members) {
    double flops = 0.0;
    for (Operation *op : layers[members.front()])
      if (auto cost = dyn_cast<CostOpInterface>(op))
        flops += cost.getFlops();
    return flops * members.size();
  };
  SmallVector<std::pair<double, SmallVector<Attribute>>> ordered;
  for (auto &[signature, members] : groups)
    ordered.push_back({getFlops(members), members});
  llvm::stable_sort(
      ordered, [](const auto &a, const auto &b) { return a.first > b.first; });

  TensorSplits splits;
  DenseMap<BlockArgument, int64_t> decided;
  // Split results take one priority per position in their group's layer,
  // shared by identical layers (propagation runs once per level).
  unsigned valueOrder = 0;
  std::string error;
  for (const auto &[flops, members] : ordered) {
    LayerProblem problem(step, layers[members.front()], batch, mesh, axis,
                         rates, decided, forward);
    planner::StrategyGraph graph = problem.buildGraph();
    FailureOr<std::vector<unsigned>> choice =
        planner::solveStrategies(graph, error);
    if (failed(choice))
      return layers[members.front()].front()->emitError(
                 "the tensor-sharding search failed at layer ")
             << describeLayer(members.front()) << ": " << error;
    // Every identical layer takes the representative's choice, parameter
    // by parameter in order of first use.
    ArrayRef<BlockArgument> solved = problem.getParameters();
    // A parameter counts for the layer that reads it first (a tied table
    // for the embedding), as the planner's profile counts it.
    SmallVector<BlockArgument> owned;
    for (BlockArgument param : solved)
      if (firstReader.lookup(param) == members.front())
        owned.push_back(param);
    // The activations the solution splits, by position in the layer: every
    // identical layer's op at that position takes the same split.
    SmallVector<std::tuple<unsigned, unsigned, int64_t>> splitResults;
    for (auto [position, op] : llvm::enumerate(layers[members.front()])) {
      std::optional<unsigned> node = problem.getOpNode(op);
      if (!node)
        continue;
      const Strategy &picked = problem.getStrategies(*node)[(*choice)[*node]];
      for (auto [index, result] : llvm::enumerate(picked.results))
        if (int64_t dim = getSplitDim(result, axis);
            dim >= 0 && result.partial.empty())
          splitResults.push_back({static_cast<unsigned>(position),
                                  static_cast<unsigned>(index), dim});
    }
    for (Attribute layer : members) {
      ArrayRef<Operation *> ops = layers[layer];
      for (auto [k, split] : llvm::enumerate(splitResults)) {
        auto [position, index, dim] = split;
        splits.values.push_back({ops[position]->getResult(index), dim,
                                 valueOrder + static_cast<unsigned>(k)});
      }
      SmallVector<BlockArgument> params =
          getLayerParameters(step, layers[layer]);
      for (auto [index, pair] : llvm::enumerate(llvm::zip(params, solved))) {
        auto [param, source] = pair;
        unsigned node = problem.getParameterNode(source);
        int64_t dim = problem.getStrategies(node)[(*choice)[node]].choice;
        if (decided.try_emplace(param, dim).second)
          splits.parameters.push_back(
              {param, dim, static_cast<unsigned>(index)});
      }
    }
    valueOrder += splitResults.size();
    splits.groups.push_back(
        describeGroup(step, members, problem, *choice, graph, rates, owned));
  }
  return splits;
}

void mlir::cleave::printTensorSplits(const TensorSplits &splits,
                                     llvm::raw_ostream &os) {
  // Consecutive blocks print as a range.
  auto getBlock = [](Attribute layer) -> std::optional<int64_t> {
    auto tag = dyn_cast<LayerAttr>(layer);
    if (!tag || tag.getKind() != LayerKind::Block)
      return std::nullopt;
    return tag.getIndex();
  };
  auto ms = [](double seconds) {
    return llvm::format("%.4f ms", seconds * 1e3);
  };
  for (const LayerGroupSplit &group : splits.groups) {
    ArrayRef<Attribute> members = group.layers;
    os << "layer" << (members.size() > 1 ? "s " : " ");
    std::optional<int64_t> first = getBlock(members.front());
    bool consecutive = members.size() > 2 && first;
    for (auto [index, layer] : llvm::enumerate(members))
      consecutive &= first && getBlock(layer) == *first + int64_t(index);
    if (consecutive)
      os << describeLayer(members.front()) << "-"
         << describeLayer(members.back());
    else
      llvm::interleaveComma(
          members, os, [&](Attribute layer) { os << describeLayer(layer); });
    os << ": " << group.choices << " choices";
    if (members.size() > 1)
      os << ", solved once for " << members.size() << " identical layers";
    os << "\n  predicted per layer: " << ms(group.total) << " (compute "
       << ms(group.compute) << ", update " << ms(group.update)
       << ", collectives " << ms(group.total - group.compute - group.update)
       << ")\n";
    for (const auto &[name, dim] : group.parameterDims) {
      os << "  " << name << ": ";
      if (dim < 0)
        os << "whole\n";
      else
        os << "split dim " << dim << "\n";
    }
    std::map<StringRef, std::pair<int64_t, double>> collectives;
    for (const SplitCollective &collective : group.collectives) {
      if (collective.statistics)
        continue;
      auto &[count, bytes] = collectives[collective.kind];
      ++count;
      bytes += collective.tensorBytes;
    }
    os << "  collectives:";
    if (collectives.empty())
      os << " none";
    for (auto &[name, entry] : collectives)
      os << " " << entry.first << " " << name << " ("
         << llvm::format("%.0f", entry.second) << " B)";
    os << "\n";
  }
}
