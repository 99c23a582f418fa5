//===- TensorSplitSearch.h - Tensor parallelism by exact search -*- C++ -*-===//
//
// The core of the tensor-sharding search, shared by the pass that applies
// its answer (cleave-search-tensor-sharding) and the planner that prices it:
// per group of identical layers, the strategy graph of one layer of the
// training step (forward and backward ops alike) over the factor rules,
// priced on a cluster with the collectives partitioning would insert, and
// solved exactly.
//
//===----------------------------------------------------------------------===//

#ifndef CLEAVE_ANALYSIS_TENSORSPLITSEARCH_H
#define CLEAVE_ANALYSIS_TENSORSPLITSEARCH_H

#include "cleave/Dialect/Cleave/IR/CleaveOps.h"
#include "cleave/Planner/Planner.h"

#include "mlir/Dialect/Func/IR/FuncOps.h"

#include <string>
#include <vector>

namespace mlir::cleave {

/// One collective a layer's split needs, once per layer and step.
struct SplitCollective {
  /// "all-reduce", "reduce-scatter", "all-gather" or "all-to-all".
  llvm::StringRef kind;
  /// The bytes of the (whole) tensor it moves.
  double tensorBytes = 0.0;
  /// Bytes each device sends, counted as the collective ops count them
  /// (an all-reduce 2 (n - 1) / n of its tensor), at the IR's batch.
  double communicatedBytes = 0.0;
  /// Its time on the axis's link, at the IR's batch.
  double seconds = 0.0;
  /// An activation's: its size grows with the batch.
  bool scalesWithBatch = false;
  /// Made by the forward (the loss depends on its producer), so a
  /// recomputed layer runs it again.
  bool forward = false;
  /// An op's own reduction of its statistics (a vocabulary-parallel
  /// cross-entropy's), not a resharding between ops.
  bool statistics = false;
};

/// The answer for one group of identical layers.
struct LayerGroupSplit {
  /// The layers' tags (cleave.layer), the first the one solved.
  llvm::SmallVector<Attribute> layers;
  /// Nodes with more than one strategy.
  unsigned choices = 0;
  /// Per layer, in seconds: the strategies' own compute and update, and
  /// the whole (compute, update and collectives).
  double compute = 0.0, update = 0.0, total = 0.0;
  /// The solved layer's parameters in order of first use, with the
  /// dimension the axis splits (-1: whole).
  llvm::SmallVector<std::pair<std::string, int64_t>> parameterDims;
  /// The collectives of one layer's split (a parameter's resharding and
  /// the op's own statistics included).
  std::vector<SplitCollective> collectives;
  /// What the split leaves each device of one layer's forward, whole and
  /// per device: matrix-product FLOPs, the other ops' bytes read and
  /// written, and the bytes of the results (the activations the backward
  /// keeps). Parameters count in the group that decides them.
  double matmulFlops = 0.0, deviceMatmulFlops = 0.0;
  double memoryBytes = 0.0, deviceMemoryBytes = 0.0;
  double activationBytes = 0.0, deviceActivationBytes = 0.0;
  double parameterBytes = 0.0, deviceParameterBytes = 0.0;
};

/// A parameter's split, as every layer of its group takes it.
struct ParameterSplit {
  BlockArgument parameter;
  /// The dimension the axis splits; -1 for whole.
  int64_t dim = -1;
  /// Its position among its layer's parameters in order of first use:
  /// where two splits meet, the earlier must win.
  unsigned order = 0;
};

/// An op's result split as the solution of its layer's group splits it.
struct ValueSplit {
  Value value;
  int64_t dim = -1;
  /// Its position among its group's split results (groups one after
  /// another): identical layers share it, as they share the split.
  unsigned order = 0;
};

struct TensorSplits {
  std::vector<LayerGroupSplit> groups;
  /// Every layer's parameters, each once (a parameter two groups share is
  /// the heavier group's, solved first).
  std::vector<ParameterSplit> parameters;
  /// The ops' results the solution splits (never a pending sum).
  std::vector<ValueSplit> values;
};

/// Searches the splits of `step`'s parameters over the mesh axis `axis` of
/// `size` devices of `mesh`, priced on `cluster` (collectives on the
/// innermost link of that size, as the planner lays tp out) in the IR's
/// precision, or in `precision` ("bf16", "f16") for an f32 step that will
/// be trained in it. Reports failures as diagnostics on `step`'s ops.
FailureOr<TensorSplits> searchTensorSplits(func::FuncOp step, MeshOp mesh,
                                           llvm::StringRef axis, int64_t size,
                                           const planner::Cluster &cluster,
                                           llvm::StringRef precision = "");

/// Prints each group's splits, predicted time per layer and collectives.
void printTensorSplits(const TensorSplits &splits, llvm::raw_ostream &os);

} // namespace mlir::cleave

#endif // CLEAVE_ANALYSIS_TENSORSPLITSEARCH_H
