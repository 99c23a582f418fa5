//===- ShardingSupportTest.cpp - Factor axes from and to shardings --------===//

#include "cleave/Analysis/ShardingSupport.h"

#include "mlir/Dialect/Func/IR/FuncOps.h"
#include "mlir/IR/MLIRContext.h"
#include "mlir/Parser/Parser.h"

#include <gtest/gtest.h>

using namespace mlir;
using namespace mlir::cleave;
using namespace mlir::cleave::sharding;

namespace {

using Axes = std::vector<std::vector<std::string>>;

Axes toAxes(ArrayRef<AxisList> lists) {
  Axes result;
  for (const AxisList &axes : lists)
    result.emplace_back(axes.begin(), axes.end());
  return result;
}

class ShardingSupportTest : public ::testing::Test {
protected:
  ShardingSupportTest() { context.loadDialect<CleaveDialect, func::FuncDialect>(); }

  /// A sharding splitting each dimension on `dims`' axes.
  TensorSharding split(Axes dims) {
    TensorSharding sharding;
    for (const auto &axes : dims) {
      AxisList &list = sharding.dims.emplace_back();
      for (const std::string &axis : axes)
        list.push_back(StringAttr::get(&context, axis).getValue());
    }
    return sharding;
  }

  /// The rule of the first cleave op in `body`, on a mesh dp=2, tp=2.
  ShardingRule ruleOf(StringRef body) {
    std::string source = "cleave.mesh @mesh(dp = 2, tp = 2)\n" + body.str();
    module = parseSourceString<ModuleOp>(source, &context);
    EXPECT_TRUE(module);
    ShardingRule rule;
    module->walk([&](Operation *op) {
      if (auto mesh = dyn_cast<MeshOp>(op))
        meshAxes.emplace(mesh);
      else if (auto ruleOp = dyn_cast<ShardingRuleOpInterface>(op);
               ruleOp && rule.factorSizes.empty())
        rule = ruleOp.getShardingRule();
    });
    return rule;
  }

  MLIRContext context;
  OwningOpRef<ModuleOp> module;
  std::optional<MeshAxes> meshAxes;
};

TEST_F(ShardingSupportTest, RowParallelMatmulLeavesAPendingSum) {
  ShardingRule rule = ruleOf(R"mlir(
    func.func @f(%x: tensor<4x8xf32>, %w: tensor<8x6xf32>) {
      %0 = cleave.matmul %x, %w : tensor<4x8xf32>, tensor<8x6xf32> -> tensor<4x6xf32>
      return
    })mlir");
  TensorSharding x = split({{}, {"tp"}}), w = split({{"tp"}, {}});
  FactorAxes axes = deriveFactorAxes(rule, {&x, &w, nullptr}, *meshAxes);
  // Factors m, n, k: only the contraction is split.
  EXPECT_EQ(toAxes(axes), (Axes{{}, {}, {"tp"}}));
  TensorSharding result = projectResult(rule, axes, 0, *meshAxes);
  EXPECT_EQ(toAxes(result.dims), (Axes{{}, {}}));
  EXPECT_EQ(std::vector<std::string>(result.partial.begin(), result.partial.end()),
            std::vector<std::string>{"tp"});
}

TEST_F(ShardingSupportTest, SplitHiddenSplitsHeadsNotHeadSize) {
  ShardingRule rule = ruleOf(R"mlir(
    func.func @f(%x: tensor<2x8xf32>) {
      %0 = cleave.reshape %x : tensor<2x8xf32> -> tensor<2x2x4xf32>
      return
    })mlir");
  TensorSharding x = split({{}, {"tp"}});
  FactorAxes axes = deriveFactorAxes(rule, {&x, nullptr}, *meshAxes);
  EXPECT_EQ(toAxes(projectResult(rule, axes, 0, *meshAxes).dims),
            (Axes{{}, {"tp"}, {}}));
}

TEST_F(ShardingSupportTest, AxesThatDoNotDivideTheMajorFactorAreDropped) {
  // Three heads do not split in two; splitting the head size instead would
  // not give each device a contiguous block of the hidden dimension.
  ShardingRule rule = ruleOf(R"mlir(
    func.func @f(%x: tensor<2x12xf32>) {
      %0 = cleave.reshape %x : tensor<2x12xf32> -> tensor<2x3x4xf32>
      return
    })mlir");
  TensorSharding x = split({{}, {"tp"}});
  FactorAxes axes = deriveFactorAxes(rule, {&x, nullptr}, *meshAxes);
  EXPECT_EQ(toAxes(projectOperand(rule, axes, 0).dims), (Axes{{}, {}}));
}

TEST_F(ShardingSupportTest, FinerSplitsRefineAndOthersConflict) {
  ShardingRule rule = ruleOf(R"mlir(
    func.func @f(%a: tensor<8x4xf32>, %b: tensor<8x4xf32>) {
      %0 = cleave.add %a, %b : tensor<8x4xf32>
      return
    })mlir");
  TensorSharding coarse = split({{"tp"}, {}}), fine = split({{"tp", "dp"}, {}});
  std::optional<FactorConflict> conflict;
  FactorAxes axes =
      deriveFactorAxes(rule, {&coarse, &fine, nullptr}, *meshAxes, &conflict);
  EXPECT_EQ(toAxes(axes), (Axes{{"tp", "dp"}, {}}));
  EXPECT_FALSE(conflict);

  TensorSharding other = split({{"dp"}, {}});
  axes = deriveFactorAxes(rule, {&coarse, &other, nullptr}, *meshAxes, &conflict);
  EXPECT_EQ(toAxes(axes), (Axes{{"tp"}, {}}));
  ASSERT_TRUE(conflict);
  EXPECT_EQ(conflict->first, 0u);
  EXPECT_EQ(conflict->second, 1u);
}

TEST_F(ShardingSupportTest, RowsReadWholeGetNoAxes) {
  ShardingRule rule = ruleOf(R"mlir(
    func.func @f(%x: tensor<4x8xf32>) {
      %0 = cleave.softmax %x : tensor<4x8xf32>
      return
    })mlir");
  TensorSharding x = split({{"dp"}, {"tp"}});
  FactorAxes axes = deriveFactorAxes(rule, {&x, nullptr}, *meshAxes);
  EXPECT_EQ(toAxes(axes), (Axes{{"dp"}, {}}));
}

} // namespace
