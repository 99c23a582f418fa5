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

TEST(InitTest, RulesAsTheIRGivesThem) {
  InitRule zeros{InitRule::Kind::Zeros, 0.0};
  EXPECT_EQ(getInitValue(zeros, 1, "layers.3.mlp.fc.bias", 5), 0.0);
  InitRule ones{InitRule::Kind::Ones, 0.0};
  EXPECT_EQ(getInitValue(ones, 1, "final_norm.scale", 5), 1.0);
  InitRule normal{InitRule::Kind::Normal, 0.005};
  EXPECT_EQ(getInitValue(normal, 9, "layers.0.attn.out.weight", 2),
            0.005 * sampleNormal(9, "layers.0.attn.out.weight", 2));
  // No cleave.init: a normal of standard deviation 0.02.
  EXPECT_EQ(getInitValue(InitRule{}, 9, "layers.0.attn.q.weight", 2),
            0.02 * sampleNormal(9, "layers.0.attn.q.weight", 2));
}

} // namespace
