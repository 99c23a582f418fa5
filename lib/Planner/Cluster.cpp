//===- Cluster.cpp - Hardware and cluster data files ----------------------===//

#include "cleave/Planner/Planner.h"

#include "llvm/Support/FileSystem.h"
#include "llvm/Support/JSON.h"
#include "llvm/Support/MemoryBuffer.h"
#include "llvm/Support/Path.h"

#include <algorithm>
#include <cmath>
#include <cstdlib>

using namespace mlir;
using namespace mlir::cleave::planner;

std::optional<double> Cluster::getPeakFlops(StringRef dtype) const {
  for (const auto &[name, flops] : peakFlops)
    if (name == dtype)
      return flops;
  return std::nullopt;
}

namespace {

/// Where `value` falls on `axis` in log space: the index below it and the
/// weight of the one above (clamped at the ends).
std::pair<size_t, double> locate(const std::vector<double> &axis,
                                 double value) {
  if (axis.size() == 1 || value <= axis.front())
    return {0, 0.0};
  if (value >= axis.back())
    return {axis.size() - 2, 1.0};
  size_t upper = std::upper_bound(axis.begin(), axis.end(), value) - axis.begin();
  double low = std::log(axis[upper - 1]), high = std::log(axis[upper]);
  return {upper - 1, (std::log(value) - low) / (high - low)};
}

} // namespace

double Cluster::getGemmEfficiency(double m, double n, double k) const {
  if (!gemmTable)
    return gemmEfficiency;
  const GemmTable &table = *gemmTable;
  auto [i, wi] = locate(table.m, m);
  auto [j, wj] = locate(table.n, n);
  auto [l, wl] = locate(table.k, k);
  // Trilinear interpolation over the cell's corners (one point on an axis
  // of size one).
  double total = 0.0;
  for (size_t di = 0; di < 2; ++di)
    for (size_t dj = 0; dj < 2; ++dj)
      for (size_t dl = 0; dl < 2; ++dl) {
        double weight = (di ? wi : 1 - wi) * (dj ? wj : 1 - wj) *
                        (dl ? wl : 1 - wl);
        if (weight == 0.0)
          continue;
        size_t index = ((i + di) * table.n.size() + (j + dj)) * table.k.size() +
                       (l + dl);
        total += weight * table.efficiency[index];
      }
  return total;
}

namespace {

/// Reads the positive number at `path` (a.b.c) of `root`.
bool readNumber(const llvm::json::Object &root, StringRef path, double &out,
                std::string &error) {
  SmallVector<StringRef> keys;
  path.split(keys, '.');
  const llvm::json::Object *object = &root;
  for (size_t i = 0; i + 1 < keys.size(); ++i) {
    object = object->getObject(keys[i]);
    if (!object) {
      error = ("missing object '" + keys[i] + "' (for " + path + ")").str();
      return false;
    }
  }
  std::optional<double> value = object->getNumber(keys.back());
  if (!value || !(*value > 0)) {
    error = ("'" + path + "' must be a positive number").str();
    return false;
  }
  out = *value;
  return true;
}

} // namespace

FailureOr<Cluster> mlir::cleave::planner::parseCluster(StringRef json,
                                                       std::string &error) {
  llvm::Expected<llvm::json::Value> parsed = llvm::json::parse(json);
  if (!parsed) {
    error = "not JSON: " + llvm::toString(parsed.takeError());
    return failure();
  }
  const llvm::json::Object *root = parsed->getAsObject();
  if (!root) {
    error = "a cluster file is a JSON object";
    return failure();
  }
  Cluster cluster;
  std::optional<StringRef> name = root->getString("name");
  const llvm::json::Object *device = root->getObject("device");
  if (!name || !device) {
    error = "a cluster file needs 'name' and 'device'";
    return failure();
  }
  cluster.name = name->str();
  cluster.description = root->getString("description").value_or("").str();
  cluster.deviceName = device->getString("name").value_or("").str();
  const llvm::json::Object *peaks = device->getObject("peak_flops");
  if (!peaks || peaks->empty()) {
    error = "'device.peak_flops' must map dtypes to FLOP/s";
    return failure();
  }
  for (const auto &[dtype, value] : *peaks) {
    std::optional<double> flops = value.getAsNumber();
    if (!flops || !(*flops > 0)) {
      error = "'device.peak_flops." + dtype.str() + "' must be a positive number";
      return failure();
    }
    cluster.peakFlops.push_back({dtype.str(), *flops});
  }
  llvm::sort(cluster.peakFlops);
  double devicesPerNode = 0;
  if (!readNumber(*root, "device.memory_bytes", cluster.memoryBytes, error) ||
      !readNumber(*root, "device.memory_bandwidth", cluster.memoryBandwidth,
                  error) ||
      !readNumber(*root, "device.gemm_efficiency", cluster.gemmEfficiency,
                  error) ||
      !readNumber(*root, "devices_per_node", devicesPerNode, error) ||
      !readNumber(*root, "links.intra_node.bandwidth",
                  cluster.intraNode.bandwidth, error) ||
      !readNumber(*root, "links.intra_node.latency", cluster.intraNode.latency,
                  error) ||
      !readNumber(*root, "links.inter_node.bandwidth",
                  cluster.interNode.bandwidth, error) ||
      !readNumber(*root, "links.inter_node.latency", cluster.interNode.latency,
                  error))
    return failure();
  if (cluster.gemmEfficiency > 1) {
    error = "'device.gemm_efficiency' is a share of the peak, at most 1";
    return failure();
  }
  if (devicesPerNode != static_cast<int64_t>(devicesPerNode)) {
    error = "'devices_per_node' must be a whole number";
    return failure();
  }
  cluster.devicesPerNode = static_cast<int64_t>(devicesPerNode);
  cluster.workspaceBytes = root->getNumber("workspace_bytes").value_or(0.0);
  if (!(cluster.workspaceBytes >= 0) || std::isinf(cluster.workspaceBytes)) {
    error = "'workspace_bytes' must be a finite, non-negative size";
    return failure();
  }
  cluster.computeEfficiency =
      device->getNumber("compute_efficiency").value_or(1.0);
  cluster.updateTimePerParam =
      device->getNumber("update_time_per_param").value_or(0.0);
  if (!(cluster.updateTimePerParam >= 0)) {
    error = "'device.update_time_per_param' must not be negative";
    return failure();
  }
  if (!(cluster.computeEfficiency > 0 && cluster.computeEfficiency <= 1)) {
    error = "'device.compute_efficiency' is a share, in (0, 1]";
    return failure();
  }
  if (root->get("overlap")) {
    const llvm::json::Object *overlap = root->getObject("overlap");
    std::optional<double> share =
        overlap ? overlap->getNumber("backward_share") : std::nullopt;
    std::optional<double> latency =
        overlap ? overlap->getNumber("bucket_latency") : std::nullopt;
    if (!share || !(*share >= 0 && *share <= 1) || !latency ||
        !(*latency >= 0 && *latency < 1)) {
      error = "'overlap' needs 'backward_share', a share in [0, 1], and "
              "'bucket_latency', seconds in [0, 1)";
      return failure();
    }
    cluster.overlap.backwardShare = *share;
    cluster.overlap.bucketLatency = *latency;
  }
  if (device->get("gemm_table") && !device->getObject("gemm_table")) {
    error = "'device.gemm_table' must be an object";
    return failure();
  }
  if (const llvm::json::Object *table = device->getObject("gemm_table")) {
    GemmTable gemms;
    auto readAxis = [&](StringRef name, std::vector<double> &axis) {
      const llvm::json::Array *values = table->getArray(name);
      if (!values || values->empty())
        return false;
      for (const llvm::json::Value &value : *values) {
        std::optional<double> size = value.getAsNumber();
        if (!size || *size < 1 || (!axis.empty() && *size <= axis.back()))
          return false;
        axis.push_back(*size);
      }
      return true;
    };
    const llvm::json::Array *efficiency = table->getArray("efficiency");
    if (!readAxis("m", gemms.m) || !readAxis("n", gemms.n) ||
        !readAxis("k", gemms.k) || !efficiency ||
        efficiency->size() != gemms.m.size() * gemms.n.size() * gemms.k.size()) {
      error = "'device.gemm_table' needs ascending sizes 'm', 'n', 'k' and "
              "an 'efficiency' per shape (m-major)";
      return failure();
    }
    for (const llvm::json::Value &value : *efficiency) {
      std::optional<double> share = value.getAsNumber();
      if (!share || !(*share > 0 && *share <= 1)) {
        error = "'device.gemm_table' efficiencies are shares, in (0, 1]";
        return failure();
      }
      gemms.efficiency.push_back(*share);
    }
    cluster.gemmTable = std::move(gemms);
  }
  return cluster;
}

static std::string getClusterDirectory() {
  if (const char *dir = std::getenv("CLEAVE_CLUSTERS"); dir && *dir)
    return dir;
  return CLEAVE_CLUSTERS_DIR;
}

FailureOr<Cluster> mlir::cleave::planner::loadCluster(StringRef nameOrPath,
                                                      std::string &error) {
  std::string path = nameOrPath.str();
  if (!nameOrPath.ends_with(".json")) {
    SmallString<256> shipped(getClusterDirectory());
    llvm::sys::path::append(shipped, nameOrPath + ".json");
    path = shipped.str().str();
    if (!llvm::sys::fs::exists(path)) {
      std::string known;
      for (const std::string &name : listClusters())
        known += (known.empty() ? "" : ", ") + name;
      error = "unknown cluster '" + nameOrPath.str() + "'; known: " + known +
              " (or give a cluster file, NAME.json)";
      return failure();
    }
  }
  llvm::ErrorOr<std::unique_ptr<llvm::MemoryBuffer>> file =
      llvm::MemoryBuffer::getFile(path);
  if (!file) {
    error = "cannot read '" + path + "': " + file.getError().message();
    return failure();
  }
  FailureOr<Cluster> cluster = parseCluster((*file)->getBuffer(), error);
  if (failed(cluster))
    error = "'" + path + "': " + error;
  return cluster;
}

std::vector<std::string> mlir::cleave::planner::listClusters() {
  std::vector<std::string> names;
  std::error_code ec;
  for (llvm::sys::fs::directory_iterator it(getClusterDirectory(), ec), end;
       it != end && !ec; it.increment(ec))
    if (StringRef(it->path()).ends_with(".json"))
      names.push_back(llvm::sys::path::stem(it->path()).str());
  llvm::sort(names);
  return names;
}
