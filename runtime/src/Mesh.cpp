//===- Mesh.cpp - Device meshes and the blocks of sharded tensors ---------===//

#include "cleave/runtime/Mesh.h"

#include <algorithm>
#include <cstring>
#include <sstream>

namespace cleave::rt {

Mesh Mesh::fromSpec(const MeshSpec &spec) {
  Mesh mesh;
  for (int i = 0; i < spec.numAxes; ++i) {
    mesh.axes.emplace_back(spec.axes[i]);
    mesh.sizes.push_back(spec.sizes[i]);
  }
  return mesh;
}

std::string Mesh::toString() const {
  std::string text;
  for (size_t i = 0; i < axes.size(); ++i)
    text += (i ? "," : "") + axes[i] + "=" + std::to_string(sizes[i]);
  return text;
}

int64_t Mesh::getNumDevices() const {
  int64_t count = 1;
  for (int64_t size : sizes)
    count *= size;
  return count;
}

int Mesh::findAxis(const std::string &name) const {
  auto it = std::find(axes.begin(), axes.end(), name);
  return it == axes.end() ? -1 : static_cast<int>(it - axes.begin());
}

std::vector<int64_t> Mesh::getCoordinates(int64_t rank) const {
  std::vector<int64_t> coordinates(axes.size());
  for (size_t i = axes.size(); i-- > 0;) {
    coordinates[i] = rank % sizes[i];
    rank /= sizes[i];
  }
  return coordinates;
}

int64_t Mesh::getRank(const std::vector<int64_t> &coordinates) const {
  int64_t rank = 0;
  for (size_t i = 0; i < axes.size(); ++i)
    rank = rank * sizes[i] + coordinates[i];
  return rank;
}

Status Mesh::parseAxes(const std::string &text,
                       std::vector<int> &axisIndices) const {
  axisIndices.clear();
  std::stringstream stream(text);
  std::string name;
  while (std::getline(stream, name, ',')) {
    int axis = findAxis(name);
    if (axis < 0)
      return Status::error("'" + name + "' is not an axis of mesh " +
                           toString());
    if (std::find(axisIndices.begin(), axisIndices.end(), axis) !=
        axisIndices.end())
      return Status::error("axis '" + name + "' appears twice in '" + text +
                           "'");
    axisIndices.push_back(axis);
  }
  return Status::success();
}

int64_t Mesh::getGroupIndex(const std::vector<int> &group,
                            const std::vector<int64_t> &coordinates) const {
  int64_t index = 0;
  for (int axis : group)
    index = index * sizes[axis] + coordinates[axis];
  return index;
}

int64_t Mesh::getGroupSize(const std::vector<int> &group) const {
  int64_t size = 1;
  for (int axis : group)
    size *= sizes[axis];
  return size;
}

Status getBlock(const Mesh &mesh, const char *split,
                const std::vector<int64_t> &localShape,
                const std::vector<int64_t> &coordinates, Block &block) {
  block.globalShape = localShape;
  block.offsets.assign(localShape.size(), 0);
  block.shape = localShape;
  block.isWriter = true;
  std::vector<bool> splitsTensor(mesh.axes.size(), false);
  if (split && *split) {
    std::vector<std::string> dims;
    std::stringstream stream(split);
    std::string dim;
    while (std::getline(stream, dim, ';'))
      dims.push_back(dim);
    if (split[std::strlen(split) - 1] == ';')
      dims.emplace_back();
    if (dims.size() != localShape.size())
      return Status::error(std::string("the split '") + split + "' has " +
                           std::to_string(dims.size()) +
                           " dimensions, the tensor " +
                           std::to_string(localShape.size()));
    for (size_t d = 0; d < dims.size(); ++d) {
      std::vector<int> group;
      CLEAVE_RETURN_IF_ERROR(mesh.parseAxes(dims[d], group));
      for (int axis : group)
        splitsTensor[axis] = true;
      block.globalShape[d] = localShape[d] * mesh.getGroupSize(group);
      block.offsets[d] = localShape[d] * mesh.getGroupIndex(group, coordinates);
    }
  }
  for (size_t axis = 0; axis < mesh.axes.size(); ++axis)
    if (!splitsTensor[axis] && coordinates[axis] != 0)
      block.isWriter = false;
  return Status::success();
}

int64_t copyOverlap(size_t elementBytes, const Box &from, const void *source,
                    const Box &to, void *destination) {
  size_t rank = from.shape.size();
  // The overlap, in global coordinates.
  std::vector<int64_t> begin(rank), extent(rank);
  for (size_t d = 0; d < rank; ++d) {
    begin[d] = std::max(from.offsets[d], to.offsets[d]);
    int64_t end = std::min(from.offsets[d] + from.shape[d],
                           to.offsets[d] + to.shape[d]);
    if (end <= begin[d])
      return 0;
    extent[d] = end - begin[d];
  }
  if (rank == 0) {
    std::memcpy(destination, source, elementBytes);
    return 1;
  }
  // Copy whole runs along the last dimension; step the others like an
  // odometer.
  int64_t run = extent[rank - 1];
  int64_t runs = 1;
  for (size_t d = 0; d + 1 < rank; ++d)
    runs *= extent[d];
  std::vector<int64_t> position(rank, 0);
  auto offsetIn = [&](const Box &box) {
    int64_t offset = 0;
    for (size_t d = 0; d < rank; ++d)
      offset = offset * box.shape[d] + (begin[d] + position[d] - box.offsets[d]);
    return offset;
  };
  const auto *in = static_cast<const uint8_t *>(source);
  auto *out = static_cast<uint8_t *>(destination);
  for (int64_t r = 0; r < runs; ++r) {
    std::memcpy(out + offsetIn(to) * elementBytes,
                in + offsetIn(from) * elementBytes, run * elementBytes);
    for (size_t d = rank - 1; d-- > 0;) {
      if (++position[d] < extent[d])
        break;
      position[d] = 0;
    }
  }
  return runs * run;
}

} // namespace cleave::rt
