//===- StrategyIlpTest.cpp - The exact strategy choice --------------------===//

#include "cleave/Planner/StrategyIlp.h"

#include <gtest/gtest.h>

#include <random>

using namespace mlir;
using namespace mlir::cleave::planner;

namespace {

/// The cheapest choice by trying every one.
double bruteForce(const StrategyGraph &graph) {
  std::vector<unsigned> choice(graph.nodeCosts.size(), 0);
  double best = getStrategyCost(graph, choice);
  while (true) {
    size_t node = 0;
    while (node < choice.size() &&
           ++choice[node] == graph.nodeCosts[node].size())
      choice[node++] = 0;
    if (node == choice.size())
      return best;
    best = std::min(best, getStrategyCost(graph, choice));
  }
}

TEST(StrategyIlpTest, NodesAloneTakeTheirCheapest) {
  StrategyGraph graph;
  graph.addNode({3.0, 1.0, 2.0});
  graph.addNode({0.5});
  std::string error;
  FailureOr<std::vector<unsigned>> choice = solveStrategies(graph, error);
  ASSERT_TRUE(succeeded(choice)) << error;
  EXPECT_EQ(*choice, (std::vector<unsigned>{1, 0}));
}

// Each node alone prefers strategy 0, but any pair that disagrees with
// (1, 1) pays 10 on the edge: only the joint choice is cheapest (2 < 10).
TEST(StrategyIlpTest, EdgesOverruleTheCheapestNode) {
  StrategyGraph graph;
  unsigned a = graph.addNode({0.0, 1.0});
  unsigned b = graph.addNode({0.0, 1.0});
  graph.edges.push_back({a, b, {10.0, 10.0, 10.0, 0.0}});
  std::string error;
  FailureOr<std::vector<unsigned>> choice = solveStrategies(graph, error);
  ASSERT_TRUE(succeeded(choice)) << error;
  EXPECT_EQ(*choice, (std::vector<unsigned>{1, 1}));
  EXPECT_DOUBLE_EQ(getStrategyCost(graph, *choice), 2.0);
}

// An edge to a node without a choice folds into the other end; edges
// between the same nodes in both directions add up.
TEST(StrategyIlpTest, FoldsAndMergesEdges) {
  StrategyGraph graph;
  unsigned fixed = graph.addNode({0.0});
  unsigned a = graph.addNode({0.0, 0.0});
  unsigned b = graph.addNode({0.0, 0.0, 0.0});
  graph.edges.push_back({fixed, a, {5.0, 0.0}});
  graph.edges.push_back({a, b, {0.0, 4.0, 4.0, 4.0, 4.0, 1.0}});
  graph.edges.push_back({b, a, {0.0, 0.0, 0.0, 9.0, 0.0, 2.0}});
  std::string error;
  FailureOr<std::vector<unsigned>> choice = solveStrategies(graph, error);
  ASSERT_TRUE(succeeded(choice)) << error;
  // a = 0 pays 5; a = 1 with b = 2 pays 1 + 2 = 3, the minimum.
  EXPECT_EQ(*choice, (std::vector<unsigned>{0, 1, 2}));
  EXPECT_DOUBLE_EQ(getStrategyCost(graph, *choice), 3.0);
}

TEST(StrategyIlpTest, MatchesBruteForceOnRandomGraphs) {
  std::mt19937 random(7);
  std::uniform_real_distribution<double> cost(0.0, 10.0);
  for (int trial = 0; trial < 20; ++trial) {
    StrategyGraph graph;
    for (int node = 0; node < 7; ++node) {
      std::vector<double> costs(1 + random() % 3);
      for (double &c : costs)
        c = cost(random);
      graph.addNode(costs);
    }
    for (int edge = 0; edge < 12; ++edge) {
      unsigned from = random() % 7, to = random() % 7;
      if (from == to)
        continue;
      std::vector<double> costs(graph.nodeCosts[from].size() *
                                graph.nodeCosts[to].size());
      for (double &c : costs)
        c = cost(random);
      graph.edges.push_back({from, to, costs});
    }
    std::string error;
    FailureOr<std::vector<unsigned>> choice = solveStrategies(graph, error);
    ASSERT_TRUE(succeeded(choice)) << error;
    EXPECT_NEAR(getStrategyCost(graph, *choice), bruteForce(graph), 1e-9)
        << "trial " << trial;
  }
}

TEST(StrategyIlpTest, RejectsMalformedGraphs) {
  std::string error;
  StrategyGraph empty;
  empty.addNode({});
  EXPECT_TRUE(failed(solveStrategies(empty, error)));
  EXPECT_EQ(error, "node 0 has no strategy");

  StrategyGraph mismatched;
  mismatched.addNode({1.0, 2.0});
  mismatched.addNode({1.0});
  mismatched.edges.push_back({0, 1, {1.0}});
  EXPECT_TRUE(failed(solveStrategies(mismatched, error)));
  EXPECT_EQ(error, "malformed edge 0 -> 1");
}

} // namespace
