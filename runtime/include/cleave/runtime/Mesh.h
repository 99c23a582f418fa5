//===- Mesh.h - Device meshes and the blocks of sharded tensors -*- C++ -*-===//
//
// A partitioned program runs as one process per device of a mesh with named
// axes. Ranks map to mesh coordinates row-major (the last axis varies
// fastest), so the devices of the innermost axis (tp) are neighbours. A
// sharded tensor is split, dimension by dimension, over lists of mesh axes
// (first axis outermost); each rank holds one block of it. These helpers
// compute blocks and copy between them; they run on the host.
//
//===----------------------------------------------------------------------===//

#ifndef CLEAVE_RUNTIME_MESH_H
#define CLEAVE_RUNTIME_MESH_H

#include "cleave/runtime/Status.h"

#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

namespace cleave::rt {

/// The mesh a generated program was partitioned for, and the axis groups its
/// collectives run over.
struct MeshSpec {
  const char *const *axes;
  const int64_t *sizes;
  int numAxes;
  /// Each group lists mesh axes, comma-separated in the order the program
  /// numbers devices in ("tp", "dp,tp"): collective `i` runs within the
  /// ranks that differ only along group `i`'s axes.
  const char *const *groups;
  int numGroups;
};

/// A mesh with its axes by index.
struct Mesh {
  std::vector<std::string> axes;
  std::vector<int64_t> sizes;

  static Mesh fromSpec(const MeshSpec &spec);
  /// "dp=2,tp=2".
  std::string toString() const;
  int64_t getNumDevices() const;
  /// The axis named `name`, or -1.
  int findAxis(const std::string &name) const;
  /// The coordinates of `rank` (row-major, last axis fastest).
  std::vector<int64_t> getCoordinates(int64_t rank) const;
  /// The inverse of getCoordinates.
  int64_t getRank(const std::vector<int64_t> &coordinates) const;
  /// Parses "dp,tp" into axis indices; fails on unknown or repeated axes.
  Status parseAxes(const std::string &text, std::vector<int> &axisIndices) const;
  /// The index of the device at `coordinates` within its group along `axes`
  /// (first axis outermost), and the group's size.
  int64_t getGroupIndex(const std::vector<int> &axes,
                        const std::vector<int64_t> &coordinates) const;
  int64_t getGroupSize(const std::vector<int> &axes) const;
};

/// Where one rank's block lies in a sharded tensor.
struct Block {
  std::vector<int64_t> globalShape;
  std::vector<int64_t> offsets;
  std::vector<int64_t> shape;
  /// Whether this rank writes the block to a checkpoint: the first of the
  /// ranks holding the same block (coordinate 0 on every axis that does not
  /// split the tensor).
  bool isWriter = true;
};

/// The block of a tensor whose per-rank shape is `localShape`, split as
/// `split` says (per dimension the axes splitting it, dimensions separated by
/// ';' and axes by ',': "dp;" splits dimension 0 of a matrix over dp), for the
/// rank at `coordinates`. A null `split` means replicated.
Status getBlock(const Mesh &mesh, const char *split,
                const std::vector<int64_t> &localShape,
                const std::vector<int64_t> &coordinates, Block &block);

/// A box of a row-major tensor of `globalShape`: its offsets and extent.
struct Box {
  std::vector<int64_t> offsets;
  std::vector<int64_t> shape;
};

/// Copies the elements that boxes `from` and `to` of the same tensor share,
/// from `source` (holding `from`, row-major) into `destination` (holding
/// `to`). Returns the number of elements copied.
int64_t copyOverlap(size_t elementBytes, const Box &from, const void *source,
                    const Box &to, void *destination);

} // namespace cleave::rt

#endif // CLEAVE_RUNTIME_MESH_H
