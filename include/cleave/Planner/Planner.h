//===- Planner.h - Choosing the data / tensor / pipeline plan --*- C++ -*-===//
//
// The planner predicts the step time and memory of every plan for a model on
// a cluster and picks the fastest that fits. A plan is a mesh (dp x tp x pp
// and which of dp and pp sits inside the node), the micro-batch size and
// count, the pipeline schedule, the ZeRO stage and activation recompute.
// Tensor parallelism splits the blocks as Megatron-LM does (cleave-shard-
// megatron): attention heads and the MLP's hidden columns, the output
// projections by rows, the vocabulary of the embedding and head.
//
// The cost model is analytic and physically grounded: the model's FLOPs and
// bytes come from the ops' cost interface (ModelProfile), the hardware's
// peaks from datasheets and its efficiencies from measurement (Cluster, a
// data file), collectives from alpha-beta models over the link their mesh
// axis spans, the pipeline from its schedule's bubble.
//
//===----------------------------------------------------------------------===//

#ifndef CLEAVE_PLANNER_PLANNER_H
#define CLEAVE_PLANNER_PLANNER_H

#include "cleave/Pipeline/Schedule.h"

#include "mlir/Dialect/Func/IR/FuncOps.h"
#include "mlir/Support/LLVM.h"
#include "llvm/ADT/STLFunctionalExtras.h"

#include <map>
#include <optional>
#include <string>
#include <vector>

namespace mlir::cleave::planner {

//===----------------------------------------------------------------------===//
// Clusters
//===----------------------------------------------------------------------===//

/// One link level: per device, bytes per second in one direction, and the
/// latency of one message.
struct Link {
  double bandwidth = 0.0;
  double latency = 0.0;
};

/// Measured GEMM efficiency (a share of the peak) over a grid of shapes.
struct GemmTable {
  /// Ascending sizes of each axis of the grid.
  std::vector<double> m, n, k;
  /// efficiency[(i * n.size() + j) * k.size() + l] for m[i], n[j], k[l].
  std::vector<double> efficiency;
};

/// What a cluster file says about hiding the data-parallel reduction
/// behind the backward (its `overlap` object; docs/overlap.md).
struct OverlapModel {
  /// The share of the last micro-batch's backward a reduction can run
  /// under (0: none is hidden, where the file says nothing).
  double backwardShare = 0.0;
  /// Seconds from a bucket filling to its collective starting.
  double bucketLatency = 0.0;
  /// The bucket cap the training loop uses (--bucket-mb).
  double bucketBytes = 25.0 * 1024 * 1024;
};

/// A once-per-step reduction split into what the step still waits for
/// and what the backward hides; together, its time with the buckets'
/// start latencies.
struct ReductionOverlap {
  double exposed = 0.0;
  double hidden = 0.0;
};

/// The overlap of a once-per-step reduction of `bytes` (its collectives
/// taking `seconds` unhidden) whose buckets start as the backward fills
/// them, the backward it can hide under taking `window` seconds: the last
/// bucket starts only when the backward ends, and the rest hides behind
/// backwardShare of the window.
ReductionOverlap getReductionOverlap(const OverlapModel &overlap, double bytes,
                                     double seconds, double window);

struct Cluster {
  std::string name;
  std::string description;
  std::string deviceName;
  /// Dense peak FLOP/s by compute dtype ("bf16", "f16", "tf32", "f32").
  std::vector<std::pair<std::string, double>> peakFlops;
  double memoryBytes = 0.0;
  /// HBM (or DRAM) bytes per second.
  double memoryBandwidth = 0.0;
  /// Measured share of the peak a large GEMM reaches.
  double gemmEfficiency = 1.0;
  /// Measured share of the predicted compute speed a whole training step
  /// reaches on one device (what the backward's and the non-GEMM kernels
  /// lose beyond their FLOPs and bytes); 1 where nobody has measured it.
  double computeEfficiency = 1.0;
  /// Measured seconds the optimizer update takes per parameter; 0 where
  /// nobody has measured it (the update then moves its bytes at memory
  /// bandwidth).
  double updateTimePerParam = 0.0;
  int64_t devicesPerNode = 1;
  Link intraNode, interNode;
  /// Memory a device keeps for the runtime (library workspaces, kernels).
  double workspaceBytes = 0.0;
  /// How the once-per-step data-parallel reduction hides behind the last
  /// micro-batch's backward (docs/overlap.md).
  OverlapModel overlap;

  /// Efficiency of GEMMs by shape, where measured (cpu-local's sweep).
  std::optional<GemmTable> gemmTable;

  std::optional<double> getPeakFlops(StringRef dtype) const;
  /// The share of the peak one m x n x k product reaches: interpolated in
  /// log space from the measured table (clamped at its edges), or the
  /// large-GEMM efficiency where there is no table.
  double getGemmEfficiency(double m, double n, double k) const;
  /// What training here computes in unless told: bf16 where the device has
  /// a bf16 peak, else f32.
  std::string getDefaultPrecision() const {
    return getPeakFlops("bf16") ? "bf16" : "f32";
  }
};

/// Reads a cluster file (schema in docs/planner.md).
FailureOr<Cluster> parseCluster(StringRef json, std::string &error);
/// A shipped cluster by name (share/cleave/clusters/<name>.json, or the
/// directory CLEAVE_CLUSTERS names), or the cluster file at `nameOrPath`.
FailureOr<Cluster> loadCluster(StringRef nameOrPath, std::string &error);
/// The names of the shipped clusters.
std::vector<std::string> listClusters();

//===----------------------------------------------------------------------===//
// The model
//===----------------------------------------------------------------------===//

/// One matrix product of the forward, per sample: `products` independent
/// m x n x k products (a batched product's heads), or one product whose m
/// rows grow with the batch (a projection of every token).
struct GemmShape {
  int64_t m = 0, n = 0, k = 0;
  int64_t products = 1;
  bool rowsGrowWithBatch = true;
};

/// Per-sample forward costs of one part of the model (the embedding, one
/// transformer block, or the head): every quantity scales linearly with the
/// batch. Bytes are as the IR's element type counts them.
struct PartCost {
  double params = 0.0;
  /// Parameters the part's backward ops read (ZeRO-3 gathers them again for
  /// the backward), without and with the part recomputed; negative: all of
  /// them. The training step tells (addStepProfile), the forward does not.
  double backwardParams = -1.0, recomputedBackwardParams = -1.0;
  double matmulFlops = 0.0;
  double otherFlops = 0.0;
  /// Bytes the non-GEMM ops read and write (memory-bound work).
  double memoryBytes = 0.0;
  /// The part of memoryBytes that tensor parallelism does not split: ops
  /// on the residual stream ([..., hidden]: norms, residual adds), which
  /// every tp rank runs whole as in Megatron-LM.
  double replicatedMemoryBytes = 0.0;
  /// Bytes of every tensor the forward produces: what the backward keeps
  /// without recompute.
  double activationBytes = 0.0;
  /// The part of activationBytes on the residual stream, which tensor
  /// parallelism keeps whole on every rank unless it is sequence parallel.
  double replicatedActivationBytes = 0.0;
  /// The products behind matmulFlops, for efficiency by shape (empty: all
  /// at the large-GEMM efficiency).
  std::vector<GemmShape> gemms;
};

/// One collective of a tensor-parallel split the compiler builds, run once
/// per micro-batch, at the IR's batch and precision.
struct SplitCollectiveCost {
  enum class Kind { AllReduce, ReduceScatter, AllGather, AllToAll };
  Kind kind = Kind::AllReduce;
  /// The whole tensor it moves, and the bytes each device sends for it.
  double tensorBytes = 0.0, communicatedBytes = 0.0;
  /// An activation's: it grows with the micro-batch.
  bool scalesWithBatch = false;
  /// The forward's: a recomputed block runs it again.
  bool forward = false;
  /// How many times per part it runs (a block's, averaged over blocks of
  /// several groups).
  double times = 1.0;
};

/// One part (the embedding, a block, the head) under the split
/// cleave-search-tensor-sharding chooses: its collectives, and the share of
/// each of its costs one device keeps (1: whole; 1 / tp: split).
struct SearchedPart {
  std::vector<SplitCollectiveCost> collectives;
  double matmulShare = 1.0, memoryShare = 1.0, activationShare = 1.0,
         parameterShare = 1.0;
};

/// The searched split at one tp size.
struct SearchedSplit {
  SearchedPart embed, block, head;
  /// Collectives of the update the compiler joins to the step (a weight
  /// the update leaves split, gathered to its stored layout), once per
  /// step over all parameters.
  std::vector<SplitCollectiveCost> update;
  /// Whether its collectives were built in the planning precision (mixed
  /// precision applied), so that their bytes are not scaled to it again.
  bool builtInPrecision = false;
};

struct ModelProfile {
  int64_t batch = 0, seq = 0, hidden = 0, heads = 0, vocab = 0, layers = 0;
  /// Key/value heads (fewer than `heads` with grouped-query attention; 0:
  /// as many as `heads`).
  int64_t kvHeads = 0;

  /// Whether tensor parallelism of `tp` splits the attention by heads:
  /// tp divides the query heads, and the key/value heads too unless there
  /// is one, whose projections every tp rank then computes whole
  /// (multi-query attention).
  bool canSplitHeads(int64_t tp) const {
    return heads % tp == 0 && (kvHeads % tp == 0 || kvHeads == 1);
  }
  /// "the H heads" (`noun`), and "and the K key/value heads" with
  /// grouped-query attention, for messages.
  std::string describeHeads(llvm::StringRef noun) const;
  /// The IR's float element size in bytes.
  int64_t elementBytes = 4;
  bool tiedEmbedding = false;
  PartCost embed, block, head;
  /// The searched tensor-parallel splits by tp size, for the plans that
  /// build them (not sequence parallel ones, which build Megatron-LM's).
  /// A tp size missing here is priced as Megatron-LM's split.
  std::map<int64_t, SearchedSplit> searchedSplits;
  /// The collectives partitioning builds for Megatron-LM's split with
  /// sequence parallelism, by tp size (its shares are Megatron-LM's).
  std::map<int64_t, SearchedSplit> sequenceParallelSplits;

  double getForwardMatmulFlops(int64_t samples) const {
    return samples *
           (embed.matmulFlops + layers * block.matmulFlops + head.matmulFlops);
  }
  double getParams() const {
    return embed.params + layers * block.params + head.params;
  }
};

/// Profiles a forward function built by cleave-models (or any model whose
/// ops carry layer tags, one block per `cleave.layer<i>`): every block must
/// cost the same.
FailureOr<ModelProfile> profileModel(func::FuncOp forward);

//===----------------------------------------------------------------------===//
// Plans and their cost
//===----------------------------------------------------------------------===//

struct Plan {
  int64_t dp = 1, tp = 1, pp = 1;
  /// Whether the pp axis sits inside dp (mesh dp, pp, tp) or outside it
  /// (pp, dp, tp); tp is always innermost.
  bool ppInsideDp = true;
  int64_t microBatchSize = 1;
  int64_t microBatches = 1;
  pipeline::ScheduleKind schedule = pipeline::ScheduleKind::OneFOneB;
  int64_t virtualStages = 1;
  int64_t zeroStage = 0;
  bool recompute = false;
  /// With recompute: only the fewest blocks of each stage that fit the
  /// memory limit (the first of the stage), not all of them.
  bool recomputeFewest = false;
  /// Megatron-LM's sequence parallelism within tp: the residual stream
  /// split on the sequence (strategy megatron-sp instead of the search).
  bool sequenceParallel = false;

  int64_t getDevices() const { return dp * tp * pp; }
  /// The mesh's axes and sizes, outermost first: (dp, pp, tp) or
  /// (pp, dp, tp).
  SmallVector<std::pair<StringRef, int64_t>, 3> getAxes() const;
  /// "dp=8,pp=1,tp=1" in mesh order.
  std::string getMesh() const;
  /// The cleave-parallelize strategies that build the plan's dp and tp
  /// axes: `dp` (with ZeRO as well), the tensor-sharding `search` when tp
  /// splits (`megatron-sp` with sequence parallelism), then the ZeRO
  /// stage.
  SmallVector<std::string, 3> getStrategies() const;
};

/// One kind of collective of a step: how many per step, the bytes of each
/// (the whole buffer), and their seconds in all.
struct CollectiveCost {
  std::string name;
  double count = 0.0;
  double bytes = 0.0;
  double seconds = 0.0;
};

struct PlanCost {
  /// Seconds per optimizer step and its parts (they add up to stepTime).
  double stepTime = 0.0;
  double compute = 0.0;
  /// The forwards recompute repeats (compute holds the rest).
  double recompute = 0.0;
  double tensorParallel = 0.0;
  double pipelineTransfers = 0.0;
  double bubble = 0.0;
  double dataParallel = 0.0;
  /// The data-parallel reduction's seconds the backward hides (not in
  /// dataParallel, which is what the step waits for).
  double dataParallelHidden = 0.0;
  double optimizer = 0.0;
  /// The bubble's share of the pipeline's time.
  double bubbleFraction = 0.0;
  /// The most any device holds, and its parts.
  double peakMemory = 0.0;
  double weightsMemory = 0.0, gradientsMemory = 0.0, optimizerMemory = 0.0,
         activationMemory = 0.0, workspaceMemory = 0.0;
  /// Model FLOPs as Megatron-LM counts them (matmul FLOPs: 3x the forward,
  /// 4x with full recompute) per second per device, and the model FLOPs
  /// utilization (3x the forward over the peak).
  double tflopsPerDevice = 0.0;
  double mfu = 0.0;
  /// Bytes each device sends per step.
  double communicatedBytes = 0.0;
  /// The step's collectives by kind (their seconds make up tensorParallel,
  /// pipelineTransfers and dataParallel).
  std::vector<CollectiveCost> collectives;
  /// The vocabulary after Megatron's padding to a multiple of 128 * tp.
  int64_t paddedVocab = 0;
  /// Blocks on each pipeline rank (the stage DP's cut; even with virtual
  /// stages).
  std::vector<int64_t> layersPerStage;
  /// With partial recompute: the blocks recomputed on each pipeline rank,
  /// the first of its stage (empty: none, or every block).
  std::vector<int64_t> recomputeLayers;
  /// Whether the stage DP cut them (false: an even split, for interleaved
  /// chunks or because no cut fits the memory limit).
  bool stagesBalanced = false;
  /// Whether peakMemory fits the memory limit.
  bool fits = true;
};

struct PlannerOptions {
  int64_t devices = 1;
  /// Samples per optimizer step; 0 takes the model's batch.
  int64_t globalBatch = 0;
  /// Bytes a device may use; 0 takes the cluster's device memory.
  double memoryLimit = 0.0;
  /// The compute dtype the cost model assumes: "bf16" (mixed precision
  /// with f32 master weights) or "f32".
  std::string precision = "bf16";
  /// Only plans that run the model as it is: tp must divide the vocabulary
  /// (cleavec does not pad it). Otherwise the vocabulary is padded to a
  /// multiple of 128 * tp as Megatron-LM does, and the report says so.
  bool unpaddedVocabulary = false;
  /// Choices the user fixed; the others are searched.
  std::optional<Plan> mesh; // dp, tp, pp only
  std::optional<int64_t> microBatchSize;
  std::optional<pipeline::ScheduleKind> schedule;
  std::optional<int64_t> zeroStage;
  std::optional<bool> recompute;
  /// Recompute the first K blocks of each stage only.
  std::optional<int64_t> recomputeLayers;
};

/// The vocabulary a plan with `tp` runs: padded to a multiple of 128 * tp
/// as Megatron-LM does, unless `options` run the model as it is.
int64_t getPaddedVocab(int64_t vocab, int64_t tp,
                       const PlannerOptions &options);

/// The cost of `plan`; nullopt (with the reason in `why`) for a plan that
/// cannot run the model (a split that does not divide). A plan that needs
/// more memory than the limit is costed with `fits` false and the reason
/// in `why`.
std::optional<PlanCost> evaluatePlan(const ModelProfile &model,
                                     const Cluster &cluster,
                                     const PlannerOptions &options,
                                     const Plan &plan, std::string &why);

struct RankedPlan {
  Plan plan;
  PlanCost cost;
};

struct SearchResult {
  /// Every plan that fits, fastest first.
  std::vector<RankedPlan> plans;
  int64_t considered = 0;
};

/// Checks `options` against `cluster` and fixes what a person typed: the
/// mesh `mesh` (`dp=2,tp=2`; empty: searched) and the schedule `schedule`
/// (empty: searched). The precision must have a peak on the cluster, sizes
/// must not be negative, the ZeRO stage is 0 to 3, and a fixed mesh has
/// `options.devices` devices. `cleavec plan` and cleave-auto-parallel both
/// ask through it; on failure, `message` says why.
LogicalResult setPlannerChoices(PlannerOptions &options, const Cluster &cluster,
                                StringRef mesh, StringRef schedule,
                                std::string &message);

/// Searches every plan; fails (with the reason in `error`) when none fits.
FailureOr<SearchResult> searchPlans(const ModelProfile &model,
                                    const Cluster &cluster,
                                    const PlannerOptions &options,
                                    std::string &error);

//===----------------------------------------------------------------------===//
// Cost formulas (exposed for tests)
//===----------------------------------------------------------------------===//

/// Ring all-reduce of `bytes` over `n` devices: 2(n-1) alpha + 2(n-1)/n S/B.
double getAllReduceTime(double bytes, int64_t n, const Link &link);
/// Ring all-gather or reduce-scatter (S the whole result): (n-1) alpha +
/// (n-1)/n S/B.
double getAllGatherTime(double bytes, int64_t n, const Link &link);
/// One point-to-point message: alpha + S/B.
double getSendTime(double bytes, const Link &link);
/// Alpa's stage DP over a sequence of `layers` identical blocks: the counts
/// per stage (each at least one, `stages` of them) that minimize the
/// slowest stage's `time(stage, count)` among the cuts where every stage
/// `fits(stage, count)`. Empty when no cut fits. Both must be monotone in
/// the count: time growing, and a stage that fits still fits with fewer.
std::vector<int64_t>
partitionStages(int64_t layers, int64_t stages,
                llvm::function_ref<double(int64_t, int64_t)> time,
                llvm::function_ref<bool(int64_t, int64_t)> fits);
/// The link the groups of a mesh axis use: `stride` devices apart, `size`
/// of them; inside a node when the group's span fits one.
const Link &getAxisLink(const Cluster &cluster, int64_t stride, int64_t size);

} // namespace mlir::cleave::planner

#endif // CLEAVE_PLANNER_PLANNER_H
