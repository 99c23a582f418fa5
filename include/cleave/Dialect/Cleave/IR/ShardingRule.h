//===- ShardingRule.h - How an op's dimensions can be split -----*- C++ -*-===//
//
// Shardy-style factor rules. Every dimension of every operand and result of
// an op is a product of factors (usually one, more for a reshape that splits
// or merges dimensions); a factor is parallel (splitting it splits the op
// into independent pieces), a reduction (splitting it leaves partial sums)
// needs replication (the op reads all of it at once, e.g. softmax's row)
// or is collective (the op splits on it, but its per-device form
// communicates itself and returns complete results: vocab-parallel
// cross-entropy). Propagation and partitioning only look at these rules.
//
//===----------------------------------------------------------------------===//

#ifndef CLEAVE_DIALECT_CLEAVE_IR_SHARDINGRULE_H
#define CLEAVE_DIALECT_CLEAVE_IR_SHARDINGRULE_H

#include "mlir/IR/BuiltinAttributes.h"
#include "mlir/IR/Value.h"
#include "llvm/ADT/ArrayRef.h"
#include "llvm/ADT/DenseMap.h"
#include "llvm/ADT/SmallVector.h"
#include "llvm/ADT/StringRef.h"

#include <cstdint>

namespace mlir::cleave {

enum class FactorKind { Parallel, Reduction, NeedsReplication, Collective };

struct ShardingRule {
  /// The factors: sizes and kinds, by index.
  llvm::SmallVector<int64_t> factorSizes;
  llvm::SmallVector<FactorKind> factorKinds;
  /// For each operand and each result: per dimension, its factors, major
  /// to minor (empty for a size-1 dimension that a broadcast repeats).
  llvm::SmallVector<llvm::SmallVector<llvm::SmallVector<int64_t>>> operands;
  llvm::SmallVector<llvm::SmallVector<llvm::SmallVector<int64_t>>> results;

  int64_t addFactor(int64_t size, FactorKind kind) {
    factorSizes.push_back(size);
    factorKinds.push_back(kind);
    return static_cast<int64_t>(factorSizes.size()) - 1;
  }
};

/// What an op's partitioning sees: the mesh axes that split each factor of
/// its rule and the per-device types of its results.
struct LocalOpContext {
  FlatSymbolRefAttr mesh;
  ShardingRule rule;
  /// Per factor, the mesh axes splitting it, outermost first.
  llvm::SmallVector<llvm::SmallVector<llvm::StringRef>> factorAxes;
  /// Per factor, the product of its axes' sizes.
  llvm::SmallVector<int64_t> factorGroupSizes;
  llvm::SmallVector<Type> resultTypes;
  /// The global max and sum of exponentials of vocab-parallel logits, by
  /// (logits, targets), so that the loss's gradient reuses the forward's.
  llvm::DenseMap<std::pair<Value, Value>, std::pair<Value, Value>>
      *softmaxStatistics = nullptr;
};

} // namespace mlir::cleave

#endif // CLEAVE_DIALECT_CLEAVE_IR_SHARDINGRULE_H
