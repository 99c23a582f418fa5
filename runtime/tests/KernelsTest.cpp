//===- KernelsTest.cpp - CPU backend kernels against plain loops ----------===//

#include "cleave/runtime/Kernels.h"
#include "cleave/runtime/Portability.h"

#include "TestSupport.h"

#include <gtest/gtest.h>

#include <cmath>
#include <vector>

using namespace cleave::rt;

namespace {

class KernelsTest : public ::testing::Test {
protected:
  void SetUp() override { ASSERT_TRUE(context.initialize().ok()); }

  static std::vector<float> iota(size_t count, float scale) {
    std::vector<float> values(count);
    for (size_t i = 0; i < count; ++i)
      values[i] = scale * static_cast<float>((i * 7919) % 23) - 1.0f;
    return values;
  }

  Context context;
};

TEST_F(KernelsTest, IotaNumbersOneDimension) {
  std::vector<int32_t> middle(2 * 3 * 2), last(6);
  ASSERT_TRUE(::cleave::rt::iota(context, makeShape({2, 3, 2}), 1, middle.data(), "test").ok());
  EXPECT_EQ(middle, (std::vector<int32_t>{0, 0, 1, 1, 2, 2, 0, 0, 1, 1, 2, 2}));
  ASSERT_TRUE(::cleave::rt::iota(context, makeShape({6}), 0, last.data(), "test").ok());
  EXPECT_EQ(last, (std::vector<int32_t>{0, 1, 2, 3, 4, 5}));
}

TEST_F(KernelsTest, GemmMatchesLoopsWithTransposesAndSharedRhs) {
  const int64_t batch = 3, m = 4, n = 5, k = 6;
  for (bool transposeA : {false, true}) {
    for (bool transposeB : {false, true}) {
      for (bool sharedB : {false, true}) {
        std::vector<float> a = iota(batch * m * k, 0.1f);
        std::vector<float> b = iota(batch * k * n, 0.2f);
        std::vector<float> c(batch * m * n);
        GemmArgs args;
        args.batch = batch;
        args.m = m;
        args.n = n;
        args.k = k;
        args.transposeA = transposeA;
        args.transposeB = transposeB;
        args.a = a.data();
        args.b = b.data();
        args.c = c.data();
        args.strideA = m * k;
        args.strideB = sharedB ? 0 : k * n;
        args.strideC = m * n;
        ASSERT_TRUE(gemm(context, DType::F32, args, "test").ok());
        for (int64_t p = 0; p < batch; ++p)
          for (int64_t i = 0; i < m; ++i)
            for (int64_t j = 0; j < n; ++j) {
              double expected = 0;
              for (int64_t l = 0; l < k; ++l) {
                float x = a[p * m * k + (transposeA ? l * m + i : i * k + l)];
                float y = b[p * args.strideB +
                            (transposeB ? j * k + l : l * n + j)];
                expected += static_cast<double>(x) * y;
              }
              EXPECT_NEAR(c[p * m * n + i * n + j], expected, 1e-4);
            }
      }
    }
  }
}

TEST_F(KernelsTest, GemmRejectsIntegers) {
  GemmArgs args;
  args.m = args.n = args.k = 1;
  Status status = gemm(context, DType::I32, args, "m.mlir:1:1");
  ASSERT_FALSE(status.ok());
  EXPECT_NE(status.message().find("m.mlir:1:1"), std::string::npos);
}

TEST_F(KernelsTest, LayerNormNormalizesRows) {
  const int64_t rows = 3, cols = 8;
  std::vector<float> x = iota(rows * cols, 0.5f), y(rows * cols);
  std::vector<float> scale(cols, 2.0f), bias(cols, 0.5f);
  ASSERT_TRUE(layerNorm(context, DType::F32, rows, cols, x.data(),
                        scale.data(), bias.data(), 1e-5, y.data(), "t")
                  .ok());
  for (int64_t r = 0; r < rows; ++r) {
    double mean = 0, var = 0;
    for (int64_t j = 0; j < cols; ++j)
      mean += x[r * cols + j] / double(cols);
    for (int64_t j = 0; j < cols; ++j)
      var += std::pow(x[r * cols + j] - mean, 2) / double(cols);
    for (int64_t j = 0; j < cols; ++j)
      EXPECT_NEAR(y[r * cols + j],
                  (x[r * cols + j] - mean) / std::sqrt(var + 1e-5) * 2 + 0.5,
                  1e-5);
  }
}

TEST_F(KernelsTest, CausalAttentionMatchesLoops) {
  const int64_t batch = 2, s = 3, t = 3, d = 4;
  std::vector<float> q = iota(batch * s * d, 0.1f), k = iota(batch * t * d, 0.2f),
                     v = iota(batch * t * d, 0.3f), out(batch * s * d);
  AttentionArgs args;
  args.batch = batch;
  args.s = s;
  args.t = t;
  args.d = d;
  args.causal = true;
  args.scale = 0.5;
  args.q = q.data();
  args.k = k.data();
  args.v = v.data();
  args.output = out.data();
  ASSERT_TRUE(attention(context, DType::F32, args, "t").ok());
  for (int64_t b = 0; b < batch; ++b)
    for (int64_t i = 0; i < s; ++i) {
      std::vector<double> weights(i + 1);
      double largest = -INFINITY, sum = 0;
      for (int64_t j = 0; j <= i; ++j) {
        double dot = 0;
        for (int64_t l = 0; l < d; ++l)
          dot += q[(b * s + i) * d + l] * k[(b * t + j) * d + l];
        weights[j] = 0.5 * dot;
        largest = std::max(largest, weights[j]);
      }
      for (double &w : weights)
        sum += (w = std::exp(w - largest));
      for (int64_t l = 0; l < d; ++l) {
        double expected = 0;
        for (int64_t j = 0; j <= i; ++j)
          expected += weights[j] / sum * v[(b * t + j) * d + l];
        EXPECT_NEAR(out[(b * s + i) * d + l], expected, 1e-5);
      }
    }
}

TEST_F(KernelsTest, CrossEntropyReportsBadTargets) {
  std::vector<float> logits = {1, 2, 3, 0, 0, 0};
  std::vector<int32_t> targets = {2, 7};
  std::vector<float> loss(2);
  ASSERT_TRUE(crossEntropy(context, DType::F32, DType::I32, 2, 3,
                           logits.data(), targets.data(), loss.data(), 4, "t")
                  .ok());
  EXPECT_NEAR(loss[0], std::log(std::exp(1.) + std::exp(2.) + std::exp(3.)) - 3,
              1e-6);
  int32_t site = 0;
  ASSERT_TRUE(context.takeIndexError(&site).ok());
  EXPECT_EQ(site, 4);
  ASSERT_TRUE(context.takeIndexError(&site).ok());
  EXPECT_EQ(site, 0);
}

TEST_F(KernelsTest, EmbeddingGathersRows) {
  std::vector<float> table = {0, 1, 10, 11, 20, 21};
  std::vector<int64_t> indices = {2, 0, 1};
  std::vector<float> out(6);
  ASSERT_TRUE(embedding(context, DType::F32, DType::I64, 3, 3, 2, table.data(),
                        indices.data(), out.data(), 1, "t")
                  .ok());
  EXPECT_EQ(out, (std::vector<float>{20, 21, 0, 1, 10, 11}));
}

TEST_F(KernelsTest, RotaryRotatesPairsByPosition) {
  const int64_t seq = 3, dim = 4;
  std::vector<float> x = iota(seq * dim, 0.25f), y(seq * dim);
  ASSERT_TRUE(rotary(context, DType::F32, 1, seq, dim, 100.0, false, x.data(),
                     y.data(), "t")
                  .ok());
  for (int64_t p = 0; p < seq; ++p)
    for (int64_t i = 0; i < dim / 2; ++i) {
      double angle = p * std::pow(100.0, -2.0 * i / dim);
      float a = x[p * dim + i], b = x[p * dim + i + dim / 2];
      EXPECT_NEAR(y[p * dim + i], a * std::cos(angle) - b * std::sin(angle), 1e-6);
      EXPECT_NEAR(y[p * dim + i + dim / 2],
                  b * std::cos(angle) + a * std::sin(angle), 1e-6);
    }
}

TEST_F(KernelsTest, ReduceOverMiddleDimension) {
  std::vector<float> x = iota(2 * 3 * 4, 1.0f), sum(8), largest(8);
  Shape shape = makeShape({2, 3, 4});
  ASSERT_TRUE(reduce(context, DType::F32, ReduceKind::Sum, shape, 0b010,
                     x.data(), sum.data(), "t")
                  .ok());
  ASSERT_TRUE(reduce(context, DType::F32, ReduceKind::Max, shape, 0b010,
                     x.data(), largest.data(), "t")
                  .ok());
  for (int i = 0; i < 2; ++i)
    for (int l = 0; l < 4; ++l) {
      float expectedSum = 0, expectedMax = -INFINITY;
      for (int j = 0; j < 3; ++j) {
        expectedSum += x[(i * 3 + j) * 4 + l];
        expectedMax = std::max(expectedMax, x[(i * 3 + j) * 4 + l]);
      }
      EXPECT_FLOAT_EQ(sum[i * 4 + l], expectedSum);
      EXPECT_EQ(largest[i * 4 + l], expectedMax);
    }
}

TEST_F(KernelsTest, TransposeSliceAndInsertMoveBytes) {
  std::vector<int32_t> x(2 * 3 * 4), t(24), block(2 * 2), back(24, -1);
  for (int i = 0; i < 24; ++i)
    x[i] = i;
  int perm[] = {2, 0, 1};
  ASSERT_TRUE(transpose(context, 4, makeShape({2, 3, 4}), perm, x.data(),
                        t.data(), "t")
                  .ok());
  // t has shape [4, 2, 3]: t[l][i][j] = x[i][j][l].
  EXPECT_EQ(t[(3 * 2 + 1) * 3 + 2], x[(1 * 3 + 2) * 4 + 3]);

  int64_t offsets[] = {1, 2};
  ASSERT_TRUE(extractSlice(context, 4, makeShape({6, 4}), offsets,
                           makeShape({2, 2}), x.data(), block.data(), "t")
                  .ok());
  EXPECT_EQ(block, (std::vector<int32_t>{6, 7, 10, 11}));
  ASSERT_TRUE(insertSlice(context, 4, makeShape({2, 2}), offsets,
                          makeShape({6, 4}), block.data(), back.data(), "t")
                  .ok());
  EXPECT_EQ(back[6], 6);
  EXPECT_EQ(back[11], 11);
  EXPECT_EQ(back[5], -1);
}

TEST(PortabilityTest, SixteenBitFloatsRoundToNearestEven) {
  using cleave::fromFloat;
  using cleave::toCompute;
  // 1 + 2^-8 lies halfway between two bf16 values: ties go to even (1.0).
  EXPECT_EQ(toCompute(fromFloat<cleave::bf16>(1.00390625f)), 1.0f);
  EXPECT_EQ(toCompute(fromFloat<cleave::bf16>(1.01171875f)), 1.015625f);
  EXPECT_EQ(toCompute(fromFloat<cleave::f16>(1.00048828125f)), 1.0f);
  EXPECT_EQ(toCompute(fromFloat<cleave::f16>(65504.0f)), 65504.0f);
  EXPECT_TRUE(std::isinf(toCompute(fromFloat<cleave::f16>(70000.0f))));
  EXPECT_EQ(toCompute(fromFloat<cleave::f16>(5.9604644775390625e-8f)),
            5.9604644775390625e-8f);
  EXPECT_EQ(toCompute(fromFloat<cleave::f16>(-2.5f)), -2.5f);
  EXPECT_TRUE(std::isnan(toCompute(fromFloat<cleave::f16>(NAN))));
}

} // namespace

namespace {

TEST(PortabilityTest, ConvertFollowsCastSemantics) {
  using cleave::convert;
  EXPECT_EQ(convert<int32_t>(2.9f), 2);
  EXPECT_EQ(convert<int32_t>(-2.9f), -2);
  EXPECT_EQ(convert<int32_t>(1e10f), INT32_MAX);
  EXPECT_EQ(convert<int32_t>(-1e10f), INT32_MIN);
  EXPECT_EQ(convert<int32_t>(NAN), 0);
  EXPECT_EQ(convert<int64_t>(9.3e18), INT64_MAX);
  EXPECT_TRUE(convert<bool>(0.5f));
  EXPECT_FALSE(convert<bool>(0.0f));
  // From f64, bf16 rounds once: 1 + 2^-8 + 2^-30 is above the halfway point
  // 1 + 2^-8, so it rounds up; going through float first would tie to 1.
  EXPECT_EQ(cleave::toCompute(convert<cleave::bf16>(1.0 + 0x1p-8 + 0x1p-30)),
            1.0078125f);
  EXPECT_EQ(cleave::toCompute(convert<cleave::f16>(1.0 + 0x1p-11 + 0x1p-40)),
            1.0009765625f);
}

TEST(PortabilityTest, IntegerDivisionNeverTraps) {
  EXPECT_EQ(cleave::divide(7, 2), 3);
  EXPECT_EQ(cleave::divide(-7, 2), -3);
  EXPECT_EQ(cleave::divide(7, 0), 0);
  EXPECT_EQ(cleave::divide(INT32_MIN, -1), INT32_MIN);
  EXPECT_TRUE(std::isinf(cleave::divide(1.0f, -0.0f)));
}

TEST_F(KernelsTest, IntegerReductions) {
  std::vector<int32_t> x = {3, -9, 4, 1, -2, -8};
  std::vector<int32_t> largest(2), sum(2);
  Shape shape = makeShape({2, 3});
  ASSERT_TRUE(reduce(context, DType::I32, ReduceKind::Max, shape, 0b10,
                     x.data(), largest.data(), "t")
                  .ok());
  ASSERT_TRUE(reduce(context, DType::I32, ReduceKind::Sum, shape, 0b10,
                     x.data(), sum.data(), "t")
                  .ok());
  EXPECT_EQ(largest, (std::vector<int32_t>{4, 1}));
  EXPECT_EQ(sum, (std::vector<int32_t>{-2, -9}));
}

} // namespace
