//===- ProfilerTest.cpp - CLEAVE_PROFILE's bookkeeping and table ----------===//

#include "cleave/runtime/Profile.h"
#include "cleave/runtime/Program.h"

#include <gtest/gtest.h>

#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <sstream>
#include <string>

using namespace cleave::rt;

namespace {

/// Mark i is at time i milliseconds.
class FakeClock final : public ProfileClock {
public:
  explicit FakeClock(int *cleared) : cleared(cleared) {}
  Status mark(int &index) override {
    index = next++;
    return Status::success();
  }
  Status getSeconds(int from, int to, double &seconds) override {
    seconds = (to - from) * 1e-3;
    return Status::success();
  }
  void clear() override {
    next = 0;
    ++*cleared;
  }

private:
  int next = 0;
  int *cleared;
};

const OpInfo kOps[] = {
    {"cleave.matmul", "m.mlir:3:5", "0", "F32", 2e9, 1e6},
    {"cleave.layer_norm", "m.mlir:4:5", "head", "F32", 0, 4e6},
};
Program makeProgram() {
  Program program{};
  program.name = "forward";
  program.ops = kOps;
  program.numOps = 2;
  return program;
}

/// The whitespace-separated fields of the table row of op `name`.
std::vector<std::string> getRow(const std::string &table,
                                const std::string &name) {
  std::istringstream lines(table);
  for (std::string line; std::getline(lines, line);) {
    std::istringstream fields(line);
    std::vector<std::string> row;
    for (std::string field; fields >> field;)
      row.push_back(field);
    if (row.size() > 1 && row[1] == name)
      return row;
  }
  return {};
}

TEST(ProfilerTest, SumsEachOpsSpansOverCollects) {
  int cleared = 0;
  Profiler profiler(std::make_unique<FakeClock>(&cleared));
  Program program = makeProgram();
  // Op 0 spans marks 0..3 (3 ms), op 1 marks 4..5 (1 ms).
  profiler.begin(0);
  profiler.end(0); // mark 1
  profiler.begin(1);
  profiler.end(1); // marks 2..3: 1 ms
  ASSERT_TRUE(profiler.collect(program).ok());
  EXPECT_EQ(cleared, 1);
  profiler.begin(0);
  profiler.end(0);
  ASSERT_TRUE(profiler.collect(program).ok());

  std::vector<Profiler::OpStats> stats = profiler.getStats();
  ASSERT_EQ(stats.size(), 2u);
  EXPECT_EQ(stats[0].op, 0); // 2 ms over two calls
  EXPECT_EQ(stats[0].calls, 2);
  EXPECT_DOUBLE_EQ(stats[0].seconds, 2e-3);
  EXPECT_EQ(stats[1].op, 1);
  EXPECT_EQ(stats[1].calls, 1);
  EXPECT_DOUBLE_EQ(stats[1].seconds, 1e-3);

  profiler.reset();
  EXPECT_TRUE(profiler.getStats().empty());
}

TEST(ProfilerTest, PrintsRatesAndShareOfThePeaks) {
  int cleared = 0;
  Profiler profiler(std::make_unique<FakeClock>(&cleared));
  DevicePeaks peaks;
  peaks.device = "test device";
  peaks.memoryBandwidth = 8e9;
  peaks.flops["F32"] = 4e12;
  profiler.setPeaks(peaks);
  Program program = makeProgram();
  profiler.begin(0);
  profiler.end(0);
  profiler.begin(1);
  profiler.end(1);
  ASSERT_TRUE(profiler.collect(program).ok());

  char *text = nullptr;
  size_t size = 0;
  std::FILE *out = open_memstream(&text, &size);
  profiler.print(out);
  std::fclose(out);
  std::string table(text, size);
  std::free(text);
  EXPECT_NE(table.find("profile: 2 ops, 2.000 ms in all; peaks of test device"),
            std::string::npos)
      << table;
  // The matmul: 2 GFLOP in 1 ms is 2 TFLOP/s, half the f32 peak.
  EXPECT_EQ(getRow(table, "matmul"),
            (std::vector<std::string>{"profile:", "matmul", "m.mlir:3:5", "0",
                                      "1", "1.000", "1000.0", "50.0%", "1.000",
                                      "1.0", "2.000", "50%"}));
  // The norm: 4 MB in 1 ms is 4 GB/s, half the memory peak.
  EXPECT_EQ(getRow(table, "layer_norm"),
            (std::vector<std::string>{"profile:", "layer_norm", "m.mlir:4:5",
                                      "head", "1", "1.000", "1000.0", "50.0%",
                                      "4.000", "4.0", "0.000", "50%"}));
}

TEST(ProfilerTest, ReadsPeaksFromClusterFiles) {
  std::string path = ::testing::TempDir() + "/cluster.json";
  std::ofstream(path) << R"({"device": {"name": "X", "memory_bandwidth": 3e12,
                             "peak_flops": {"bf16": 9e14, "f32": 6e13}}})";
  DevicePeaks peaks;
  ASSERT_TRUE(readDevicePeaks(path, peaks).ok());
  EXPECT_EQ(peaks.device, "X");
  EXPECT_EQ(peaks.memoryBandwidth, 3e12);
  EXPECT_EQ(peaks.flops["BF16"], 9e14);
  EXPECT_EQ(peaks.flops["F32"], 6e13);

  std::ofstream(path) << "[1, 2]";
  Status status = readDevicePeaks(path, peaks);
  ASSERT_FALSE(status.ok());
  EXPECT_NE(status.message().find("has no \"device\" object"), std::string::npos);
  status = readDevicePeaks(path + ".missing", peaks);
  ASSERT_FALSE(status.ok());
  EXPECT_NE(status.message().find("cannot read"), std::string::npos);
}

TEST(ProfilerTest, EnvironmentTurnsItOnOrRefusesBadValues) {
  Context context;
  ASSERT_TRUE(context.initialize().ok());
  std::unique_ptr<Profiler> profiler;
  ::unsetenv("CLEAVE_PROFILE_CLUSTER");
  ::setenv("CLEAVE_PROFILE", "0", 1);
  ASSERT_TRUE(Profiler::createFromEnvironment(context, profiler).ok());
  EXPECT_EQ(profiler, nullptr);
  ::setenv("CLEAVE_PROFILE", "yes", 1);
  Status status = Profiler::createFromEnvironment(context, profiler);
  ASSERT_FALSE(status.ok());
  EXPECT_NE(status.message().find("CLEAVE_PROFILE must be 0 or 1"),
            std::string::npos);
  ::setenv("CLEAVE_PROFILE", "1", 1);
  ASSERT_TRUE(Profiler::createFromEnvironment(context, profiler).ok());
  ASSERT_NE(profiler, nullptr);
  EXPECT_EQ(context.getProfiler(), profiler.get());
  // On the CPU the clock is the host's: a span is non-negative.
  Program program = makeProgram();
  beginOp(context, 1);
  endOp(context, 1);
  ASSERT_TRUE(profiler->collect(program).ok());
  ASSERT_EQ(profiler->getStats().size(), 1u);
  EXPECT_GE(profiler->getStats()[0].seconds, 0.0);
  context.setProfiler(nullptr);
  ::unsetenv("CLEAVE_PROFILE");
}

} // namespace
