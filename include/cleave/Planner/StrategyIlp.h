//===- StrategyIlp.h - Choosing one strategy per node exactly --*- C++ -*-===//
//
// The intra-operator sharding problem as Alpa states it: every node (an op,
// a parameter) picks one of its strategies and pays that strategy's cost;
// every edge pays for its ends' pair of strategies (the resharding between
// what the producer makes and what the consumer needs). The minimum is an
// integer linear program; GLPK's branch-and-cut solves it exactly.
//
//===----------------------------------------------------------------------===//

#ifndef CLEAVE_PLANNER_STRATEGYILP_H
#define CLEAVE_PLANNER_STRATEGYILP_H

#include "mlir/Support/LLVM.h"
#include "llvm/ADT/ArrayRef.h"

#include <string>
#include <vector>

namespace mlir::cleave::planner {

struct StrategyGraph {
  /// Per node, the cost of each of its strategies (at least one).
  std::vector<std::vector<double>> nodeCosts;
  struct Edge {
    unsigned from, to;
    /// costs[i * |strategies of to| + j]: `from` picks i, `to` picks j.
    std::vector<double> costs;
  };
  std::vector<Edge> edges;

  unsigned addNode(std::vector<double> costs) {
    nodeCosts.push_back(std::move(costs));
    return nodeCosts.size() - 1;
  }
};

/// What the choice costs in all.
double getStrategyCost(const StrategyGraph &graph, ArrayRef<unsigned> choice);

/// The cheapest choice, one strategy index per node. Fails, with the reason
/// in `error`, on a malformed graph or when the solver gives up.
FailureOr<std::vector<unsigned>> solveStrategies(const StrategyGraph &graph,
                                                 std::string &error);

} // namespace mlir::cleave::planner

#endif // CLEAVE_PLANNER_STRATEGYILP_H
