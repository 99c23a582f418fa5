//===- ShardingSupport.h - Shardings as lists, factor axes ------*- C++ -*-===//
//
// What sharding propagation and partitioning share: a tensor sharding as
// plain lists (easy to grow and compare), the sizes of a mesh's axes, and
// the two steps both passes build on: assigning mesh axes to an op's
// factors from the shardings of its values, and projecting those factor
// axes back onto each operand and result.
//
//===----------------------------------------------------------------------===//

#ifndef CLEAVE_ANALYSIS_SHARDINGSUPPORT_H
#define CLEAVE_ANALYSIS_SHARDINGSUPPORT_H

#include "cleave/Dialect/Cleave/IR/CleaveOps.h"

#include "llvm/ADT/StringMap.h"

#include <optional>

namespace mlir::cleave::sharding {

using AxisList = llvm::SmallVector<llvm::StringRef, 2>;

/// A tensor's sharding: per dimension the axes splitting it, outermost
/// first, and the axes of a pending partial sum (in mesh order).
struct TensorSharding {
  llvm::SmallVector<AxisList> dims;
  AxisList partial;

  static TensorSharding getReplicated(int64_t rank);
  static TensorSharding get(ShardingAttr attr);
  ShardingAttr toAttr(MLIRContext *context, FlatSymbolRefAttr mesh) const;
  /// Whether `axis` splits a dimension or is pending.
  bool usesAxis(llvm::StringRef axis) const;
  bool operator==(const TensorSharding &other) const {
    return dims == other.dims && partial == other.partial;
  }
  bool operator!=(const TensorSharding &other) const {
    return !(*this == other);
  }
};

/// Whether `axes` starts with `prefix`: splitting by `axes` refines
/// splitting by `prefix`.
inline bool isPrefix(llvm::ArrayRef<llvm::StringRef> prefix,
                     llvm::ArrayRef<llvm::StringRef> axes) {
  return prefix.size() <= axes.size() &&
         llvm::equal(prefix, axes.take_front(prefix.size()));
}

/// A mesh's axis sizes by name.
class MeshAxes {
public:
  explicit MeshAxes(MeshOp mesh);
  FlatSymbolRefAttr getName() const { return name; }
  /// The product of the axes' sizes.
  int64_t getSize(llvm::ArrayRef<llvm::StringRef> axes) const;
  /// Sorts `axes` in the mesh's order.
  void sort(AxisList &axes) const;

private:
  FlatSymbolRefAttr name;
  llvm::StringMap<int64_t> sizes;
  llvm::StringMap<unsigned> positions;
};

/// Per factor of a rule, the axes splitting it.
using FactorAxes = llvm::SmallVector<AxisList>;

/// Two values of one op asking for different splits of the same factor (or
/// the same axis on two factors); indices count operands, then results.
struct FactorConflict {
  unsigned first;
  unsigned second;
};

/// Assigns mesh axes to the rule's factors from the known shardings
/// (null: unknown), consulted in `order` (by default operands, then
/// results; indices count operands, then results). A factor
/// keeps the first axes it is given; an axis goes to one factor only;
/// factors that need replication get none; a dimension made of several
/// factors splits its major factor first. `conflict`, when given, receives
/// the first disagreement.
FactorAxes deriveFactorAxes(const ShardingRule &rule,
                            llvm::ArrayRef<const TensorSharding *> values,
                            const MeshAxes &mesh,
                            std::optional<FactorConflict> *conflict = nullptr,
                            llvm::ArrayRef<unsigned> order = {});

/// The sharding operand `index` has under `axes`.
TensorSharding projectOperand(const ShardingRule &rule, const FactorAxes &axes,
                              unsigned index);
/// The sharding result `index` has under `axes`: split factors it does not
/// mention (reductions) leave it partial on their axes.
TensorSharding projectResult(const ShardingRule &rule, const FactorAxes &axes,
                             unsigned index, const MeshAxes &mesh);

/// The per-device type of `type` under `sharding`.
RankedTensorType getLocalType(RankedTensorType type,
                              const TensorSharding &sharding,
                              const MeshAxes &mesh);

} // namespace mlir::cleave::sharding

#endif // CLEAVE_ANALYSIS_SHARDINGSUPPORT_H
