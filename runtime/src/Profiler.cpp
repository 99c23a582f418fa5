//===- Profiler.cpp - CLEAVE_PROFILE: per-op times and rooflines ----------===//

#include "cleave/runtime/Profile.h"
#include "cleave/runtime/Program.h"

#include "Trace.h"

#include <nlohmann/json.hpp>

#include <algorithm>
#include <cmath>
#include <cstdlib>
#include <fstream>

using nlohmann::json;

namespace cleave::rt {

Status readDevicePeaks(const std::string &clusterFile, DevicePeaks &peaks) {
  std::ifstream in(clusterFile);
  if (!in)
    return Status::error("cannot read the cluster file '" + clusterFile + "'");
  json root = json::parse(in, nullptr, /*allow_exceptions=*/false);
  if (root.is_discarded() || !root.is_object() ||
      !root.contains("device") || !root["device"].is_object())
    return Status::error("cluster file '" + clusterFile +
                         "' has no \"device\" object");
  const json &device = root["device"];
  peaks = DevicePeaks();
  if (device.contains("name") && device["name"].is_string())
    peaks.device = device["name"].get<std::string>();
  if (device.contains("memory_bandwidth") &&
      device["memory_bandwidth"].is_number())
    peaks.memoryBandwidth = device["memory_bandwidth"].get<double>();
  if (device.contains("peak_flops") && device["peak_flops"].is_object())
    for (const auto &[type, value] : device["peak_flops"].items())
      if (value.is_number()) {
        std::string name = type;
        std::transform(name.begin(), name.end(), name.begin(), ::toupper);
        peaks.flops[name] = value.get<double>();
      }
  return Status::success();
}

Status Profiler::createFromEnvironment(Context &context,
                                       std::unique_ptr<Profiler> &profiler) {
  profiler.reset();
  const char *setting = std::getenv("CLEAVE_PROFILE");
  const char *trace = std::getenv("CLEAVE_TRACE");
  bool table = setting && std::string(setting) != "0";
  if (setting && std::string(setting) != "0" && std::string(setting) != "1")
    return Status::error(std::string("CLEAVE_PROFILE must be 0 or 1, got '") +
                         setting + "'");
  // A trace times each op too, without printing the table.
  if (!table && !(trace && *trace))
    return Status::success();
  auto created = std::make_unique<Profiler>(createProfileClock(context));
  created->printsTable = table;
  if (const char *cluster = std::getenv("CLEAVE_PROFILE_CLUSTER");
      cluster && *cluster) {
    DevicePeaks peaks;
    CLEAVE_RETURN_IF_ERROR(readDevicePeaks(cluster, peaks));
    created->setPeaks(std::move(peaks));
  }
  profiler = std::move(created);
  context.setProfiler(profiler.get());
  return Status::success();
}

void Profiler::begin(int op) {
  int index = -1;
  Status marked = clock->mark(index);
  if (!marked.ok() && failure.ok())
    failure = marked;
  openOp = op;
  openMark = index;
  if (firstMark < 0 && index >= 0) {
    firstMark = index;
    firstMarkMicros = Trace::now();
  }
}

void Profiler::end(int op) {
  int index = -1;
  Status marked = clock->mark(index);
  if (!marked.ok() && failure.ok())
    failure = marked;
  if (op == openOp && openMark >= 0 && index >= 0)
    spans.push_back({op, openMark, index});
  openOp = openMark = -1;
}

Status Profiler::collect(const Program &program) {
  CLEAVE_RETURN_IF_ERROR(failure);
  for (const Span &span : spans) {
    double seconds = 0;
    CLEAVE_RETURN_IF_ERROR(clock->getSeconds(span.from, span.to, seconds));
    OpStats &entry = stats[{&program, span.op}];
    entry.program = &program;
    entry.op = span.op;
    entry.calls += 1;
    entry.seconds += seconds;
    if (Trace *trace = Trace::get(); trace && trace->recordsOps()) {
      // The op's place on the device's timeline, from the run's first mark.
      double offset = 0;
      CLEAVE_RETURN_IF_ERROR(clock->getSeconds(firstMark, span.from, offset));
      double start = firstMarkMicros + offset * 1e6;
      const OpInfo &info = program.ops[span.op];
      trace->add("op", std::string(info.name) + " " + info.location, start,
                 start + seconds * 1e6);
    }
  }
  firstMark = -1;
  spans.clear();
  clock->clear();
  return Status::success();
}

std::vector<Profiler::OpStats> Profiler::getStats() const {
  std::vector<OpStats> all;
  for (const auto &entry : stats)
    all.push_back(entry.second);
  std::stable_sort(all.begin(), all.end(),
                   [](const OpStats &a, const OpStats &b) {
                     return a.seconds > b.seconds;
                   });
  return all;
}

void Profiler::print(std::FILE *out) const {
  std::vector<OpStats> all = getStats();
  double total = 0;
  for (const OpStats &entry : all)
    total += entry.seconds;
  std::fprintf(out, "profile: %zu ops, %.3f ms in all", all.size(),
               total * 1e3);
  if (!peaks.device.empty())
    std::fprintf(out, "; peaks of %s", peaks.device.c_str());
  std::fprintf(out, "\n");
  std::fprintf(out,
               "profile: %-18s %-30s %-6s %6s %10s %10s %6s %9s %8s %8s %6s\n",
               "op", "location", "layer", "calls", "total ms", "mean us",
               "share", "MB/call", "GB/s", "TFLOP/s", "peak");
  for (const OpStats &entry : all) {
    const OpInfo &info = entry.program->ops[entry.op];
    double mean = entry.seconds / entry.calls;
    double bandwidth = mean > 0 ? info.bytes / mean : 0;
    double rate = mean > 0 ? info.flops / mean : 0;
    // The share of the roofline this op reached: against the compute peak
    // for GEMM-like work, the memory peak for the rest.
    double ofPeak = 0;
    auto flopsPeak = peaks.flops.find(info.dtype);
    if (flopsPeak != peaks.flops.end() && info.flops > 4 * info.bytes)
      ofPeak = rate / flopsPeak->second;
    else if (peaks.memoryBandwidth > 0)
      ofPeak = bandwidth / peaks.memoryBandwidth;
    std::string name = info.name;
    if (name.rfind("cleave.", 0) == 0)
      name = name.substr(7);
    std::string location = info.location;
    if (location.size() > 30)
      location = "..." + location.substr(location.size() - 27);
    char peak[16] = "-";
    if (ofPeak > 0)
      std::snprintf(peak, sizeof(peak), "%.0f%%", 100 * ofPeak);
    std::fprintf(out,
                 "profile: %-18s %-30s %-6s %6lld %10.3f %10.1f %5.1f%% "
                 "%9.3f %8.1f %8.3f %6s\n",
                 name.c_str(), location.c_str(),
                 *info.layer ? info.layer : "-",
                 static_cast<long long>(entry.calls), entry.seconds * 1e3,
                 mean * 1e6, total > 0 ? 100 * entry.seconds / total : 0.0,
                 info.bytes / 1e6, bandwidth / 1e9, rate / 1e12, peak);
  }
}

Status FiniteCheck::isRequested(bool &requested) {
  // Read once: every program run asks.
  static const std::pair<Status, bool> answer = [] {
    const char *value = std::getenv("CLEAVE_CHECK_FINITE");
    std::string text = value ? value : "";
    if (!text.empty() && text != "0" && text != "1")
      return std::make_pair(
          Status::error("CLEAVE_CHECK_FINITE must be 0 or 1, got '" + text +
                        "'"),
          false);
    return std::make_pair(Status::success(), text == "1");
  }();
  requested = answer.second;
  return answer.first;
}

void FiniteCheck::afterOp(int op) {
  if (!failure.ok() || op < 0 || op >= program.numOps)
    return;
  const OpInfo &info = program.ops[op];
  for (int i = 0; i < info.numResults; ++i) {
    const OpResult &result = info.results[i];
    if (!isFloatDType(result.dtype))
      continue;
    host.resize(result.count * getDTypeSize(result.dtype));
    failure =
        context.copyToHost(host.data(), arena + result.offset, host.size());
    if (!failure.ok())
      return;
    std::optional<std::pair<uint64_t, double>> bad =
        findNonFiniteElement(result.dtype, host.data(), result.count);
    if (!bad)
      continue;
    std::string where =
        *info.location ? std::string(" at ") + info.location : std::string();
    std::string layer =
        *info.layer ? std::string(" (layer ") + info.layer + ")" : "";
    failure = Status::error(std::string("CLEAVE_CHECK_FINITE: ") + info.name +
                            where + layer + " in '" + program.name +
                            "' is the first op to produce " +
                            (std::isnan(bad->second) ? "NaN"
                             : bad->second > 0       ? "inf"
                                                     : "-inf") +
                            " (result " + std::to_string(i) + ", element " +
                            std::to_string(bad->first) + ")");
    return;
  }
}

} // namespace cleave::rt
