//===- Buckets.cpp - Grouping gradients into reduction buckets ------------===//

#include "cleave/runtime/Buckets.h"

#include <algorithm>

namespace cleave::rt {

std::vector<int> BucketFiller::add(int key, int id, size_t bytes) {
  auto [it, opened] = open.try_emplace(key);
  if (opened)
    it->second.serial = serial++;
  it->second.ids.push_back(id);
  it->second.bytes += static_cast<double>(bytes);
  if (it->second.bytes < capBytes)
    return {};
  std::vector<int> closed = std::move(it->second.ids);
  open.erase(it);
  return closed;
}

std::vector<std::vector<int>> BucketFiller::flush() {
  std::vector<std::pair<long, std::vector<int>>> byOpening;
  for (auto &[key, bucket] : open)
    byOpening.emplace_back(bucket.serial, std::move(bucket.ids));
  open.clear();
  std::sort(byOpening.begin(), byOpening.end(),
            [](const auto &a, const auto &b) { return a.first < b.first; });
  std::vector<std::vector<int>> closed;
  for (auto &[opened, ids] : byOpening)
    closed.push_back(std::move(ids));
  return closed;
}

} // namespace cleave::rt
