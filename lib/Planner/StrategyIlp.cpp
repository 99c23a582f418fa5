//===- StrategyIlp.cpp - Choosing one strategy per node exactly -----------===//
//
// The program: binary x[n][s] (node n picks s, one per node) and, per edge,
// continuous e[i][j] whose row sums are x[from][i] and column sums
// x[to][j]; with x integral these force e[i][j] = x[from][i] * x[to][j], so
// the edge's cost is linear (Alpa's formulation). Edges touching a node with
// one strategy fold into the other end's costs first, which leaves the
// solver only the real choices.
//
//===----------------------------------------------------------------------===//

#include "cleave/Planner/StrategyIlp.h"

#include "llvm/ADT/ArrayRef.h"
#include "llvm/ADT/DenseMap.h"
#include "llvm/ADT/STLExtras.h"

#include <glpk.h>

#include <algorithm>
#include <cmath>
#include <memory>

using namespace mlir;
using namespace mlir::cleave::planner;

double mlir::cleave::planner::getStrategyCost(const StrategyGraph &graph,
                                ArrayRef<unsigned> choice) {
  double total = 0.0;
  for (auto [node, costs] : llvm::enumerate(graph.nodeCosts))
    total += costs[choice[node]];
  for (const StrategyGraph::Edge &edge : graph.edges)
    total += edge.costs[choice[edge.from] * graph.nodeCosts[edge.to].size() +
                        choice[edge.to]];
  return total;
}

namespace {

struct GlpkProblemDeleter {
  void operator()(glp_prob *problem) const { glp_delete_prob(problem); }
};

/// Folds edges into node costs where one end has no choice, and sums the
/// edges between the same two nodes; what is left joins two real choices.
StrategyGraph simplify(const StrategyGraph &graph) {
  StrategyGraph simple;
  simple.nodeCosts = graph.nodeCosts;
  llvm::DenseMap<std::pair<unsigned, unsigned>, unsigned> merged;
  for (const StrategyGraph::Edge &edge : graph.edges) {
    size_t fromCount = graph.nodeCosts[edge.from].size();
    size_t toCount = graph.nodeCosts[edge.to].size();
    if (fromCount == 1 || toCount == 1) {
      bool intoTo = fromCount == 1;
      std::vector<double> &costs = simple.nodeCosts[intoTo ? edge.to : edge.from];
      for (size_t i = 0; i < fromCount; ++i)
        for (size_t j = 0; j < toCount; ++j)
          costs[intoTo ? j : i] += edge.costs[i * toCount + j];
      continue;
    }
    // Keep one orientation per pair: the smaller node first.
    bool flip = edge.from > edge.to;
    std::pair<unsigned, unsigned> key =
        flip ? std::pair(edge.to, edge.from) : std::pair(edge.from, edge.to);
    auto [it, inserted] = merged.try_emplace(key, simple.edges.size());
    if (inserted)
      simple.edges.push_back(
          {key.first, key.second,
           std::vector<double>(fromCount * toCount, 0.0)});
    StrategyGraph::Edge &into = simple.edges[it->second];
    size_t columns = graph.nodeCosts[into.to].size();
    for (size_t i = 0; i < fromCount; ++i)
      for (size_t j = 0; j < toCount; ++j)
        into.costs[flip ? j * columns + i : i * columns + j] +=
            edge.costs[i * toCount + j];
  }
  // An edge whose cost does not depend on the choice is a constant.
  llvm::erase_if(simple.edges, [](const StrategyGraph::Edge &edge) {
    return llvm::all_equal(edge.costs);
  });
  return simple;
}

} // namespace

FailureOr<std::vector<unsigned>>
mlir::cleave::planner::solveStrategies(const StrategyGraph &graph, std::string &error) {
  size_t nodes = graph.nodeCosts.size();
  for (auto [node, costs] : llvm::enumerate(graph.nodeCosts)) {
    if (costs.empty()) {
      error = "node " + std::to_string(node) + " has no strategy";
      return failure();
    }
    if (llvm::any_of(costs, [](double c) { return !std::isfinite(c); })) {
      error = "node " + std::to_string(node) + " has a cost that is not finite";
      return failure();
    }
  }
  for (const StrategyGraph::Edge &edge : graph.edges) {
    if (edge.from >= nodes || edge.to >= nodes || edge.from == edge.to ||
        edge.costs.size() != graph.nodeCosts[edge.from].size() *
                                 graph.nodeCosts[edge.to].size() ||
        llvm::any_of(edge.costs, [](double c) { return !std::isfinite(c); })) {
      error = "malformed edge " + std::to_string(edge.from) + " -> " +
              std::to_string(edge.to);
      return failure();
    }
  }

  StrategyGraph simple = simplify(graph);
  std::vector<unsigned> choice(nodes, 0);
  auto pickCheapest = [&](unsigned node) {
    const std::vector<double> &costs = simple.nodeCosts[node];
    choice[node] = std::min_element(costs.begin(), costs.end()) - costs.begin();
  };
  for (unsigned node = 0; node < nodes; ++node)
    pickCheapest(node);
  if (simple.edges.empty())
    return choice;

  // Scale costs to O(1e6) so that GLPK's absolute tolerances do not blur
  // differences of microseconds.
  double largest = 0.0;
  for (const std::vector<double> &costs : simple.nodeCosts)
    for (double c : costs)
      largest = std::max(largest, std::abs(c));
  for (const StrategyGraph::Edge &edge : simple.edges)
    for (double c : edge.costs)
      largest = std::max(largest, std::abs(c));
  double scale = largest > 0.0 ? 1e6 / largest : 1.0;

  std::unique_ptr<glp_prob, GlpkProblemDeleter> problem(glp_create_prob());
  glp_prob *lp = problem.get();
  glp_set_obj_dir(lp, GLP_MIN);
  // Only nodes on some edge choose in the program; the others already did.
  std::vector<int> firstColumn(nodes, 0);
  for (const StrategyGraph::Edge &edge : simple.edges)
    for (unsigned node : {edge.from, edge.to})
      firstColumn[node] = -1;
  std::vector<int> rowIndex(1, 0), columnIndex(1, 0);
  std::vector<double> values(1, 0.0);
  auto addEntry = [&](int row, int column, double value) {
    rowIndex.push_back(row);
    columnIndex.push_back(column);
    values.push_back(value);
  };
  for (unsigned node = 0; node < nodes; ++node) {
    if (firstColumn[node] == 0)
      continue;
    const std::vector<double> &costs = simple.nodeCosts[node];
    int first = glp_add_cols(lp, costs.size());
    firstColumn[node] = first;
    int row = glp_add_rows(lp, 1);
    glp_set_row_bnds(lp, row, GLP_FX, 1.0, 1.0);
    for (size_t s = 0; s < costs.size(); ++s) {
      glp_set_col_kind(lp, first + s, GLP_BV);
      glp_set_obj_coef(lp, first + s, costs[s] * scale);
      addEntry(row, first + s, 1.0);
    }
  }
  for (const StrategyGraph::Edge &edge : simple.edges) {
    size_t rows = simple.nodeCosts[edge.from].size();
    size_t columns = simple.nodeCosts[edge.to].size();
    int first = glp_add_cols(lp, rows * columns);
    for (size_t k = 0; k < rows * columns; ++k) {
      glp_set_col_bnds(lp, first + k, GLP_DB, 0.0, 1.0);
      glp_set_obj_coef(lp, first + k, edge.costs[k] * scale);
    }
    // Row sums equal the producer's choice, column sums the consumer's:
    // sum over `count` entries (the k-th at first + k * stride) minus
    // `choice` is zero.
    auto addSumRow = [&](int start, size_t count, size_t stride, int choice) {
      int row = glp_add_rows(lp, 1);
      glp_set_row_bnds(lp, row, GLP_FX, 0.0, 0.0);
      for (size_t k = 0; k < count; ++k)
        addEntry(row, static_cast<int>(start + k * stride), 1.0);
      addEntry(row, choice, -1.0);
    };
    for (size_t i = 0; i < rows; ++i)
      addSumRow(first + static_cast<int>(i * columns), columns, 1,
                firstColumn[edge.from] + static_cast<int>(i));
    for (size_t j = 0; j < columns; ++j)
      addSumRow(first + static_cast<int>(j), rows, columns,
                firstColumn[edge.to] + static_cast<int>(j));
  }
  glp_load_matrix(lp, values.size() - 1, rowIndex.data(), columnIndex.data(),
                  values.data());

  glp_iocp parameters;
  glp_init_iocp(&parameters);
  parameters.msg_lev = GLP_MSG_OFF;
  parameters.presolve = GLP_ON;
  parameters.tm_lim = 60 * 1000;
  int status = glp_intopt(lp, &parameters);
  if (status != 0 || glp_mip_status(lp) != GLP_OPT) {
    error = status == GLP_ETMLIM
                ? "the sharding program was not solved within 60 seconds"
                : "GLPK could not solve the sharding program (code " +
                      std::to_string(status) + ")";
    return failure();
  }
  for (unsigned node = 0; node < nodes; ++node) {
    if (firstColumn[node] <= 0)
      continue;
    for (size_t s = 0; s < simple.nodeCosts[node].size(); ++s)
      if (glp_mip_col_val(lp, firstColumn[node] + s) > 0.5)
        choice[node] = s;
  }
  return choice;
}
