//===- CostTest.cpp - Cost interface of the cleave ops --------------------===//

#include "cleave/Analysis/CostSummary.h"
#include "cleave/Dialect/Cleave/IR/CleaveOps.h"

#include "mlir/Dialect/Func/IR/FuncOps.h"
#include "mlir/IR/MLIRContext.h"
#include "mlir/Parser/Parser.h"

#include <gtest/gtest.h>

using namespace mlir;
using namespace mlir::cleave;

namespace {

class CostTest : public ::testing::Test {
protected:
  CostTest() { context.loadDialect<CleaveDialect, func::FuncDialect>(); }

  /// Parses `body` as the body of `func.func @f(args)` and returns the first
  /// op of type OpTy in it.
  template <typename OpTy>
  OpTy parseFirst(llvm::StringRef source) {
    module = parseSourceString<ModuleOp>(source, &context);
    EXPECT_TRUE(module) << "failed to parse:\n" << source.str();
    OpTy found;
    if (module)
      module->walk([&](OpTy op) {
        if (!found)
          found = op;
      });
    EXPECT_TRUE(found);
    return found;
  }

  MLIRContext context;
  OwningOpRef<ModuleOp> module;
};

TEST_F(CostTest, MatmulCountsTwoFlopsPerMultiplyAdd) {
  auto op = parseFirst<MatmulOp>(R"mlir(
    func.func @f(%a: tensor<3x5x7xf32>, %b: tensor<11x7xf32>) {
      %0 = cleave.matmul %a, %b transpose_rhs : tensor<3x5x7xf32>, tensor<11x7xf32> -> tensor<3x5x11xf32>
      return
    })mlir");
  ASSERT_TRUE(op);
  MatmulOp::Dims dims = op.getDims();
  EXPECT_EQ(dims.batch, 3);
  EXPECT_EQ(dims.m, 5);
  EXPECT_EQ(dims.n, 11);
  EXPECT_EQ(dims.k, 7);
  auto cost = cast<CostOpInterface>(op.getOperation());
  EXPECT_EQ(cost.getMatmulFlops(), 2.0 * 3 * 5 * 11 * 7);
  EXPECT_EQ(cost.getFlops(), cost.getMatmulFlops());
  EXPECT_EQ(cost.getBytesRead(), (3 * 5 * 7 + 11 * 7) * 4.0);
  EXPECT_EQ(cost.getBytesWritten(), 3 * 5 * 11 * 4.0);
}

TEST_F(CostTest, TransposedLhsContractsOverRows) {
  auto op = parseFirst<MatmulOp>(R"mlir(
    func.func @f(%a: tensor<6x4xbf16>, %b: tensor<6x9xbf16>) {
      %0 = cleave.matmul %a, %b transpose_lhs : tensor<6x4xbf16>, tensor<6x9xbf16> -> tensor<4x9xbf16>
      return
    })mlir");
  ASSERT_TRUE(op);
  EXPECT_EQ(op.getDims().k, 6);
  EXPECT_EQ(cast<CostOpInterface>(op.getOperation()).getMatmulFlops(),
            2.0 * 4 * 9 * 6);
  // bf16 elements are two bytes.
  EXPECT_EQ(cast<CostOpInterface>(op.getOperation()).getBytesWritten(),
            4 * 9 * 2.0);
}

TEST_F(CostTest, AttentionCountsBothProductsInFull) {
  auto op = parseFirst<AttentionOp>(R"mlir(
    func.func @f(%q: tensor<2x3x5x8xf32>, %k: tensor<2x3x7x8xf32>) {
      %0:2 = cleave.attention %q, %k, %k causal : tensor<2x3x5x8xf32>, tensor<2x3x7x8xf32>, tensor<2x3x7x8xf32>
      return
    })mlir");
  ASSERT_TRUE(op);
  auto cost = cast<CostOpInterface>(op.getOperation());
  double scores = 2.0 * 3 * 5 * 7;
  EXPECT_EQ(cost.getMatmulFlops(), 4.0 * scores * 8);
  EXPECT_EQ(cost.getFlops(), 4.0 * scores * 8 + 6.0 * scores);
  EXPECT_DOUBLE_EQ(op.getEffectiveScale(), 1.0 / std::sqrt(8.0));
}

TEST_F(CostTest, ElementwiseAndNormFlopsPerElement) {
  module = parseSourceString<ModuleOp>(R"mlir(
    func.func @f(%x: tensor<4x6xf32>, %g: tensor<6xf32>) {
      %0 = cleave.add %x, %x : tensor<4x6xf32>
      %1 = cleave.gelu %x : tensor<4x6xf32>
      %2 = cleave.silu %x : tensor<4x6xf32>
      %3 = cleave.softmax %x : tensor<4x6xf32>
      %4 = cleave.layer_norm %x, %g, %g : tensor<4x6xf32>, tensor<6xf32>
      %5 = cleave.rms_norm %x, %g : tensor<4x6xf32>, tensor<6xf32>
      %6 = cleave.reduce_mean %x dims [1] : tensor<4x6xf32> -> tensor<4xf32>
      %7 = cleave.reshape %x : tensor<4x6xf32> -> tensor<24xf32>
      %8 = cleave.transpose %x perm [1, 0] : tensor<4x6xf32> -> tensor<6x4xf32>
      return
    })mlir",
                                       &context);
  ASSERT_TRUE(module);
  llvm::StringMap<double> flops;
  llvm::StringMap<double> written;
  module->walk([&](CostOpInterface op) {
    flops[op->getName().getStringRef()] = op.getFlops();
    written[op->getName().getStringRef()] = op.getBytesWritten();
  });
  EXPECT_EQ(flops["cleave.add"], 24);
  EXPECT_EQ(flops["cleave.gelu"], 8 * 24);
  EXPECT_EQ(flops["cleave.silu"], 4 * 24);
  EXPECT_EQ(flops["cleave.softmax"], 5 * 24);
  EXPECT_EQ(flops["cleave.layer_norm"], 8 * 24);
  EXPECT_EQ(flops["cleave.rms_norm"], 4 * 24);
  EXPECT_EQ(flops["cleave.reduce_mean"], 24 + 4);
  EXPECT_EQ(flops["cleave.transpose"], 0);
  // A reshape moves no data; a transpose does.
  EXPECT_EQ(written["cleave.reshape"], 0);
  EXPECT_EQ(written["cleave.transpose"], 24 * 4);
}

TEST_F(CostTest, CrossEntropyAndByteSizes) {
  auto op = parseFirst<CrossEntropyOp>(R"mlir(
    func.func @f(%l: tensor<3x10xf16>, %t: tensor<3xi64>) {
      %0 = cleave.cross_entropy %l, %t : tensor<3x10xf16>, tensor<3xi64> -> tensor<3xf16>
      return
    })mlir");
  ASSERT_TRUE(op);
  auto cost = cast<CostOpInterface>(op.getOperation());
  EXPECT_EQ(cost.getFlops(), 4.0 * 30 + 2.0 * 3);
  EXPECT_EQ(cost.getBytesRead(), 30 * 2.0 + 3 * 8.0);
  EXPECT_EQ(getTotalBytes(RankedTensorType::get(
                {5}, IntegerType::get(&context, 1))),
            5.0);
}

TEST_F(CostTest, SummaryCountsOnlyParameters) {
  module = parseSourceString<ModuleOp>(R"mlir(
    func.func @f(%w: tensor<4x8xf32> {cleave.param = "w"},
                 %x: tensor<2x4xf32> {cleave.input = "x"},
                 %y: tensor<100xf32>) -> tensor<2x8xf32> {
      %0 = cleave.matmul %x, %w : tensor<2x4xf32>, tensor<4x8xf32> -> tensor<2x8xf32>
      %1 = cleave.exp %0 : tensor<2x8xf32>
      %2 = cleave.exp %1 : tensor<2x8xf32>
      return %2 : tensor<2x8xf32>
    })mlir",
                                       &context);
  ASSERT_TRUE(module);
  auto function = *module->getOps<func::FuncOp>().begin();
  CostSummary summary = computeCostSummary(function);
  EXPECT_EQ(summary.params, 32);
  EXPECT_EQ(summary.matmulFlops, 2.0 * 2 * 8 * 4);
  EXPECT_EQ(summary.flops, 2.0 * 2 * 8 * 4 + 16 + 16);
  EXPECT_EQ(summary.activationBytes, 3 * 16 * 4.0);
  ASSERT_EQ(summary.byOp.size(), 2u);
  EXPECT_EQ(summary.byOp["cleave.exp"].count, 2);
  EXPECT_EQ(summary.byOp["cleave.exp"].flops, 32);
}

TEST_F(CostTest, CollectivesCountBytesSentPerDevice) {
  module = parseSourceString<ModuleOp>(R"mlir(
    cleave.mesh @mesh(dp = 2, tp = 4)
    func.func @f(%x: tensor<8x64xf32>) {
      %0 = cleave.all_reduce %x on @mesh [tp] sum : tensor<8x64xf32>
      %1 = cleave.all_gather %x on @mesh [dp] dim 0 : tensor<8x64xf32> -> tensor<16x64xf32>
      %2 = cleave.reduce_scatter %1 on @mesh [dp] sum dim 0 : tensor<16x64xf32> -> tensor<8x64xf32>
      %3 = cleave.all_to_all %x on @mesh [tp] split 1 concat 0 : tensor<8x64xf32> -> tensor<32x16xf32>
      %4 = cleave.local_slice %x on @mesh [dp, tp] dim 1 : tensor<8x64xf32> -> tensor<8x8xf32>
      %5 = cleave.add %x, %x : tensor<8x64xf32>
      return
    })mlir",
                                     &context);
  ASSERT_TRUE(module);
  // 8x64 f32 is 2048 bytes: a ring all-reduce over 4 sends 2 * 3/4 of it;
  // gathers, scatters and all-to-all send (n - 1)/n of the larger side.
  std::vector<double> bytes;
  module->walk([&](CostOpInterface op) {
    bytes.push_back(op.getCommunicatedBytes());
  });
  EXPECT_EQ(bytes, (std::vector<double>{3072, 2048, 2048, 1536, 0, 0}));
}

} // namespace
