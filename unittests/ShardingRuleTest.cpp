//===- ShardingRuleTest.cpp - Factor rules of the cleave ops --------------===//

#include "cleave/Dialect/Cleave/IR/CleaveOps.h"

#include "mlir/Dialect/Func/IR/FuncOps.h"
#include "mlir/IR/MLIRContext.h"
#include "mlir/Parser/Parser.h"

#include <gtest/gtest.h>

using namespace mlir;
using namespace mlir::cleave;

namespace {

using Dims = std::vector<std::vector<int64_t>>;

Dims toDims(const SmallVector<SmallVector<int64_t>> &dims) {
  Dims result;
  for (const auto &factors : dims)
    result.emplace_back(factors.begin(), factors.end());
  return result;
}

class ShardingRuleTest : public ::testing::Test {
protected:
  ShardingRuleTest() { context.loadDialect<CleaveDialect, func::FuncDialect>(); }

  /// The rule of the first cleave op in `source`.
  ShardingRule ruleOf(StringRef source) {
    module = parseSourceString<ModuleOp>(source, &context);
    EXPECT_TRUE(module);
    ShardingRule rule;
    bool found = false;
    module->walk([&](ShardingRuleOpInterface op) {
      if (!found)
        rule = op.getShardingRule();
      found = true;
    });
    EXPECT_TRUE(found);
    return rule;
  }

  MLIRContext context;
  OwningOpRef<ModuleOp> module;
};

TEST_F(ShardingRuleTest, MatmulHasBatchRowsColumnsAndAReduction) {
  ShardingRule rule = ruleOf(R"mlir(
    func.func @f(%a: tensor<2x8x4xf32>, %w: tensor<16x4xf32>) {
      %0 = cleave.matmul %a, %w transpose_rhs : tensor<2x8x4xf32>, tensor<16x4xf32> -> tensor<2x8x16xf32>
      return
    })mlir");
  // Factors: batch 2, m 8, n 16, k 4 (reduction).
  EXPECT_EQ(rule.factorSizes, (SmallVector<int64_t>{2, 8, 16, 4}));
  EXPECT_EQ(rule.factorKinds[3], FactorKind::Reduction);
  EXPECT_EQ(toDims(rule.operands[0]), (Dims{{0}, {1}, {3}}));
  // The transposed rank-2 weight is [n, k] and shared by the batch.
  EXPECT_EQ(toDims(rule.operands[1]), (Dims{{2}, {3}}));
  EXPECT_EQ(toDims(rule.results[0]), (Dims{{0}, {1}, {2}}));
}

TEST_F(ShardingRuleTest, ReshapeSplitsHiddenIntoHeads) {
  ShardingRule rule = ruleOf(R"mlir(
    func.func @f(%x: tensor<2x16x64xf32>) {
      %0 = cleave.reshape %x : tensor<2x16x64xf32> -> tensor<2x16x4x16xf32>
      return
    })mlir");
  // Hidden (64) is the product of the heads (4) and head size (16), in
  // that order: sharding heads shards hidden.
  EXPECT_EQ(rule.factorSizes, (SmallVector<int64_t>{2, 16, 4, 16}));
  EXPECT_EQ(toDims(rule.operands[0]), (Dims{{0}, {1}, {2, 3}}));
  EXPECT_EQ(toDims(rule.results[0]), (Dims{{0}, {1}, {2}, {3}}));
}

TEST_F(ShardingRuleTest, BroadcastAndReductions) {
  ShardingRule broadcast = ruleOf(R"mlir(
    func.func @f(%b: tensor<1x64xf32>) {
      %0 = cleave.broadcast %b dims [1, 2] : tensor<1x64xf32> -> tensor<2x8x64xf32>
      return
    })mlir");
  // The repeated size-1 dimension has no factor; the kept one shares it.
  EXPECT_EQ(toDims(broadcast.operands[0]), (Dims{{}, {2}}));

  ShardingRule mean = ruleOf(R"mlir(
    func.func @f(%x: tensor<2x8xf32>) {
      %0 = cleave.reduce_mean %x dims [0] : tensor<2x8xf32> -> tensor<8xf32>
      return
    })mlir");
  EXPECT_EQ(mean.factorKinds[0], FactorKind::Reduction);
  EXPECT_EQ(mean.factorKinds[1], FactorKind::Parallel);
  EXPECT_EQ(toDims(mean.results[0]), (Dims{{1}}));
}

TEST_F(ShardingRuleTest, RowOpsReadTheirRowsWhole) {
  ShardingRule norm = ruleOf(R"mlir(
    func.func @f(%x: tensor<2x8x64xf32>, %g: tensor<64xf32>) {
      %0 = cleave.layer_norm %x, %g, %g : tensor<2x8x64xf32>, tensor<64xf32>
      return
    })mlir");
  EXPECT_EQ(norm.factorKinds[2], FactorKind::NeedsReplication);
  EXPECT_EQ(toDims(norm.operands[1]), (Dims{{2}}));

  ShardingRule attention = ruleOf(R"mlir(
    func.func @f(%q: tensor<2x4x8x16xf32>, %k: tensor<2x4x12x16xf32>) {
      %0:2 = cleave.attention %q, %k, %k causal : tensor<2x4x8x16xf32>, tensor<2x4x12x16xf32>, tensor<2x4x12x16xf32>
      return
    })mlir");
  // Batch and heads are parallel; keys, head size and (causal) queries
  // are whole. The logsumexp has the queries' rows.
  EXPECT_EQ(attention.factorSizes, (SmallVector<int64_t>{2, 4, 8, 12, 16}));
  EXPECT_EQ(attention.factorKinds[1], FactorKind::Parallel);
  EXPECT_EQ(attention.factorKinds[2], FactorKind::NeedsReplication);
  EXPECT_EQ(attention.factorKinds[3], FactorKind::NeedsReplication);
  EXPECT_EQ(toDims(attention.operands[1]), (Dims{{0}, {1}, {3}, {4}}));
  EXPECT_EQ(toDims(attention.results[1]), (Dims{{0}, {1}, {2}}));

  // Self-attention: q and k have one type, and k still takes the keys'
  // factor, by position.
  ShardingRule self = ruleOf(R"mlir(
    func.func @f(%q: tensor<2x4x8x16xf32>) {
      %0:2 = cleave.attention %q, %q, %q : tensor<2x4x8x16xf32>, tensor<2x4x8x16xf32>, tensor<2x4x8x16xf32>
      return
    })mlir");
  EXPECT_EQ(self.factorKinds[2], FactorKind::Parallel);
  EXPECT_EQ(toDims(self.operands[0]), (Dims{{0}, {1}, {2}, {4}}));
  EXPECT_EQ(toDims(self.operands[1]), (Dims{{0}, {1}, {3}, {4}}));
}

TEST_F(ShardingRuleTest, EmbeddingAndLossSplitTheVocabulary) {
  ShardingRule embedding = ruleOf(R"mlir(
    func.func @f(%w: tensor<256x64xf32>, %ids: tensor<2x8xi32>) {
      %0 = cleave.embedding %w, %ids : tensor<256x64xf32>, tensor<2x8xi32> -> tensor<2x8x64xf32>
      return
    })mlir");
  EXPECT_EQ(toDims(embedding.operands[0]), (Dims{{2}, {3}}));
  // Each device's rows give part of the sum.
  EXPECT_EQ(embedding.factorKinds[2], FactorKind::Reduction);
  EXPECT_EQ(toDims(embedding.results[0]), (Dims{{0}, {1}, {3}}));

  ShardingRule loss = ruleOf(R"mlir(
    func.func @f(%l: tensor<2x8x256xf32>, %t: tensor<2x8xi32>) {
      %0 = cleave.cross_entropy %l, %t : tensor<2x8x256xf32>, tensor<2x8xi32> -> tensor<2x8xf32>
      return
    })mlir");
  EXPECT_EQ(toDims(loss.operands[1]), (Dims{{0}, {1}}));
  EXPECT_EQ(loss.factorKinds[2], FactorKind::Collective);
}

} // namespace
