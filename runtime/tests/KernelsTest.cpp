//===- KernelsTest.cpp - CPU backend kernels against plain loops ----------===//
//
// GEMM, iota, rotary, integer reductions and the portability header's
// conversions; every row, column and data-movement kernel is checked at
// stressing shapes and in every float type by KernelShapesTest.cpp.

#include "cleave/runtime/Kernels.h"
#include "cleave/runtime/Portability.h"

#include "TestSupport.h"

#include <gtest/gtest.h>

#include <cmath>
#include <type_traits>
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

/// gemm() with an epilogue against the plain gemm() followed by the sum
/// and gelu computed here: the same bits, in the operand type T and in the
/// f32 output of 16-bit operands.
template <typename T>
void checkEpilogues(Context &context, DType dtype, bool wideOutput) {
  using Out = std::conditional_t<
      std::is_same_v<T, double>, double,
      std::conditional_t<std::is_same_v<T, float>, float, T>>;
  using Stored = std::conditional_t<std::is_same_v<T, double>, double, float>;
  const int64_t batch = 3, m = 5, n = 7, k = 6;
  auto fill = [](size_t count, float scale, auto zero) {
    using V = decltype(zero);
    std::vector<V> values(count);
    for (size_t i = 0; i < count; ++i)
      values[i] = cleave::convert<V>(
          scale * static_cast<float>((i * 7919) % 23) - 1.0f);
    return values;
  };
  std::vector<T> a = fill(batch * m * k, 0.1f, T{});
  std::vector<T> b = fill(k * n, 0.2f, T{});
  for (bool transposeA : {false, true}) {
    for (GemmEpilogue epilogue : {GemmEpilogue::Bias, GemmEpilogue::BiasGelu}) {
      for (bool keepSum : {false, true}) {
        if (keepSum && epilogue != GemmEpilogue::BiasGelu)
          continue;
        auto run = [&](auto zero) {
          using C = decltype(zero);
          std::vector<C> bias = fill(n, 0.3f, C{});
          std::vector<C> plain(batch * m * n), fused(batch * m * n),
              pre(batch * m * n);
          GemmArgs args;
          args.batch = batch;
          args.m = m;
          args.n = n;
          args.k = k;
          args.transposeA = transposeA;
          args.a = a.data();
          args.b = b.data();
          args.strideA = m * k;
          args.strideC = m * n;
          args.wideOutput = wideOutput;
          args.c = plain.data();
          ASSERT_TRUE(gemm(context, dtype, args, "test").ok());
          args.c = fused.data();
          args.epilogue = epilogue;
          args.bias = bias.data();
          args.preActivation = keepSum ? pre.data() : nullptr;
          ASSERT_TRUE(gemm(context, dtype, args, "test").ok());
          for (int64_t i = 0; i < batch * m * n; ++i) {
            auto sum =
                cleave::toCompute(plain[i]) + cleave::toCompute(bias[i % n]);
            C expected = cleave::store<C>(
                epilogue == GemmEpilogue::Bias ? sum : cleave::gelu(sum));
            ASSERT_EQ(cleave::toCompute(fused[i]), cleave::toCompute(expected))
                << "element " << i;
            if (keepSum)
              ASSERT_EQ(cleave::toCompute(pre[i]),
                        cleave::toCompute(cleave::store<C>(sum)));
          }
        };
        if (wideOutput)
          run(Stored{});
        else
          run(Out{});
      }
    }
  }
}

TEST_F(KernelsTest, GemmEpiloguesEqualTheProductThenTheSumAndGelu) {
  checkEpilogues<float>(context, DType::F32, false);
  checkEpilogues<double>(context, DType::F64, false);
  checkEpilogues<cleave::bf16>(context, DType::BF16, false);
  checkEpilogues<cleave::bf16>(context, DType::BF16, true);
  checkEpilogues<cleave::f16>(context, DType::F16, true);
}

TEST_F(KernelsTest, GemmRefusesEpiloguesItCannotApply) {
  std::vector<float> a(4, 1.0f), b(4, 1.0f), c(4), bias(2), pre(4);
  GemmArgs args;
  args.m = args.n = args.k = 2;
  args.a = a.data();
  args.b = b.data();
  args.c = c.data();
  auto expectError = [&](const char *text) {
    Status status = gemm(context, DType::F32, args, "m.mlir:2:3");
    ASSERT_FALSE(status.ok());
    EXPECT_NE(status.message().find("m.mlir:2:3"), std::string::npos);
    EXPECT_NE(status.message().find(text), std::string::npos)
        << status.message();
  };
  args.epilogue = GemmEpilogue::Bias;
  expectError("without a bias");
  args.bias = bias.data();
  args.accumulate = true;
  expectError("accumulating");
  args.accumulate = false;
  args.preActivation = pre.data();
  expectError("without gelu");
  args.epilogue = GemmEpilogue::None;
  expectError("without an epilogue");
}

TEST_F(KernelsTest, RotaryRotatesPairsByPosition) {
  const int64_t seq = 3, dim = 4;
  std::vector<float> x = iota(seq * dim, 0.25f), y(seq * dim);
  ASSERT_TRUE(rotary(context, DType::F32, 1, seq, dim, 100.0, RopeScaling{},
                     false, x.data(), y.data(), "t")
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
