//===- BucketsTest.cpp - Gradients into reduction buckets -----------------===//

#include "cleave/runtime/Buckets.h"

#include <gtest/gtest.h>

using namespace cleave::rt;

namespace {

using Ids = std::vector<int>;

// A bucket closes as soon as it holds the cap or more, in the order its
// tensors became final; a tensor larger than the cap fills one alone.
TEST(BucketsTest, ABucketClosesWhenItReachesTheCap) {
  BucketFiller filler(100);
  EXPECT_EQ(filler.add(0, 7, 40), Ids());
  EXPECT_EQ(filler.add(0, 3, 40), Ids());
  EXPECT_EQ(filler.add(0, 5, 20), (Ids{7, 3, 5}));
  EXPECT_EQ(filler.add(0, 1, 500), (Ids{1}));
  EXPECT_EQ(filler.add(0, 2, 10), Ids());
  EXPECT_EQ(filler.flush(), (std::vector<Ids>{{2}}));
  EXPECT_TRUE(filler.flush().empty());
}

// Tensors that cannot share a collective fill buckets of their own; the
// flush closes them in the order they opened, so every rank starts them
// in the same order.
TEST(BucketsTest, KeysFillSeparateBucketsFlushedInOpeningOrder) {
  BucketFiller filler(100);
  EXPECT_EQ(filler.add(9, 0, 60), Ids());
  EXPECT_EQ(filler.add(4, 1, 60), Ids());
  EXPECT_EQ(filler.add(9, 2, 10), Ids());
  EXPECT_EQ(filler.add(4, 3, 60), (Ids{1, 3}));
  EXPECT_EQ(filler.add(4, 4, 1), Ids());
  EXPECT_EQ(filler.flush(), (std::vector<Ids>{{0, 2}, {4}}));
}

} // namespace
