//===- InitTest.cpp - Deterministic parameter initialization --------------===//

#include "cleave/runtime/Init.h"

#include <gtest/gtest.h>

#include <cmath>
#include <vector>

using namespace cleave::rt;

namespace {

TEST(InitTest, ValuesDependOnSeedNameAndIndexOnly) {
  double value = sampleNormal(7, "layers.0.attn.q.weight", 12345);
  EXPECT_EQ(sampleNormal(7, "layers.0.attn.q.weight", 12345), value);
  EXPECT_NE(sampleNormal(8, "layers.0.attn.q.weight", 12345), value);
  EXPECT_NE(sampleNormal(7, "layers.0.attn.k.weight", 12345), value);
  EXPECT_NE(sampleNormal(7, "layers.0.attn.q.weight", 12346), value);
}

TEST(InitTest, SlicesMatchTheWholeTensor) {
  // A [4, 6] weight split into two column blocks, as tensor parallelism
  // would: each block computed from global indices equals the full tensor.
  std::vector<double> full(24);
  for (uint64_t i = 0; i < 24; ++i)
    full[i] = sampleNormal(1, "w", i);
  for (uint64_t block = 0; block < 2; ++block)
    for (uint64_t row = 0; row < 4; ++row)
      for (uint64_t col = 0; col < 3; ++col) {
        uint64_t global = row * 6 + block * 3 + col;
        EXPECT_EQ(sampleNormal(1, "w", global), full[global]);
      }
}

TEST(InitTest, SamplesAreStandardNormal) {
  constexpr int kCount = 200000;
  double sum = 0, sumSquares = 0;
  int beyondTwoSigma = 0;
  for (int i = 0; i < kCount; ++i) {
    double x = sampleNormal(3, "embed.tokens", i);
    sum += x;
    sumSquares += x * x;
    beyondTwoSigma += std::abs(x) > 2.0;
  }
  double mean = sum / kCount;
  double variance = sumSquares / kCount - mean * mean;
  // Standard errors: 1/sqrt(n) ~ 0.0022 for the mean, sqrt(2/n) ~ 0.0032
  // for the variance; 5 sigma bounds.
  EXPECT_NEAR(mean, 0.0, 0.012);
  EXPECT_NEAR(variance, 1.0, 0.016);
  // P(|x| > 2) = 4.55%.
  EXPECT_NEAR(beyondTwoSigma / double(kCount), 0.0455, 0.003);
}

TEST(InitTest, Gpt2RulesByName) {
  InitRule bias = getGpt2InitRule("layers.3.mlp.fc.bias", 12);
  EXPECT_EQ(bias.kind, InitRule::Kind::Zeros);
  EXPECT_EQ(getInitValue(bias, 1, "layers.3.mlp.fc.bias", 5), 0.0);
  InitRule scale = getGpt2InitRule("final_norm.scale", 12);
  EXPECT_EQ(scale.kind, InitRule::Kind::Ones);
  EXPECT_EQ(getInitValue(scale, 1, "final_norm.scale", 5), 1.0);

  InitRule weight = getGpt2InitRule("layers.0.attn.q.weight", 12);
  EXPECT_EQ(weight.kind, InitRule::Kind::Normal);
  EXPECT_DOUBLE_EQ(weight.stddev, 0.02);
  EXPECT_DOUBLE_EQ(getInitValue(weight, 9, "layers.0.attn.q.weight", 2),
                   0.02 * sampleNormal(9, "layers.0.attn.q.weight", 2));
  EXPECT_DOUBLE_EQ(getGpt2InitRule("embed.tokens", 12).stddev, 0.02);

  for (const char *residual :
       {"layers.1.attn.out.weight", "layers.1.mlp.proj.weight",
        "layers.1.attn.o.weight", "layers.1.mlp.down.weight"})
    EXPECT_DOUBLE_EQ(getGpt2InitRule(residual, 8).stddev, 0.02 / 4.0)
        << residual;
}

} // namespace
