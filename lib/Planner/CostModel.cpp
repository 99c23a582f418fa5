//===- CostModel.cpp - Step time and memory of one plan -------------------===//
//
// What a plan costs as Cleave runs it (docs/planner.md has the formulas):
//
// - Compute: GEMM FLOPs at the device's measured GEMM efficiency, the other
//   ops' bytes at memory bandwidth, both scaled by the measured share a
//   whole step reaches (compute_efficiency); a backward costs twice its
//   forward, recompute adds a forward to each block it covers (the first k
//   of each stage; k is asked for, all blocks, or the fewest that fit).
//   Tensor parallelism divides both by tp.
// - Tensor parallelism: per block and micro-batch, two all-reduces of the
//   block's activations forward and two backward (two more when it is
//   recomputed); the vocabulary-parallel embedding and head one each.
// - Pipeline: (m + (p - 1) / v) micro-batch times of the slowest rank, each
//   with the sends of its chunk boundaries; the tied embedding's gradient
//   part and its new value cross the pipeline once per step.
// - Data parallelism: plain dp and ZeRO-1 reduce their gradients once per
//   step (an all-reduce; ZeRO-1 a reduce-scatter and an all-gather of the
//   weights); with micro-batches the training loop does so in buckets
//   during the last micro-batch's backward, and the overlap model of the
//   cluster file says how much of it stays exposed. ZeRO-2 and -3
//   reduce-scatter each micro-batch's gradients behind its backward and
//   all-gather the weights (ZeRO-3: forward and backward of every
//   micro-batch, a layer ahead); the same model gives the exposed part of
//   each (cleave-overlap-collectives builds this; a program built without
//   it waits for all of it).
// - Memory: f32 weights and gradients and AdamW's two f32 moments (ZeRO
//   divides them over dp by stage), the activations of the micro-batches
//   the schedule keeps in flight on each rank (a recomputed block keeps
//   its input only, and one block's are rebuilt at a time), and the
//   runtime's workspace.
//
//===----------------------------------------------------------------------===//

#include "cleave/Planner/Planner.h"

#include "cleave/Dialect/Cleave/IR/CleaveOps.h"

#include "llvm/Support/FormatVariadic.h"

#include <algorithm>
#include <cmath>
#include <limits>
#include <numeric>

using namespace mlir;
using namespace mlir::cleave;
using namespace mlir::cleave::planner;

double mlir::cleave::planner::getAllReduceTime(double bytes, int64_t n,
                                               const Link &link) {
  if (n <= 1)
    return 0.0;
  double steps = 2.0 * static_cast<double>(n - 1);
  return steps * link.latency + steps / n * bytes / link.bandwidth;
}

double mlir::cleave::planner::getAllGatherTime(double bytes, int64_t n,
                                               const Link &link) {
  if (n <= 1)
    return 0.0;
  double steps = static_cast<double>(n - 1);
  return steps * link.latency + steps / n * bytes / link.bandwidth;
}

ReductionOverlap mlir::cleave::planner::getReductionOverlap(
    const OverlapModel &overlap, double bytes, double seconds, double window) {
  if (bytes <= 0.0 || seconds <= 0.0)
    return {};
  double buckets = std::max(1.0, std::ceil(bytes / overlap.bucketBytes));
  double total = seconds + buckets * overlap.bucketLatency;
  double last = seconds * std::min(1.0, overlap.bucketBytes / bytes) +
                overlap.bucketLatency;
  double exposed =
      std::min(total, std::max(last, total - overlap.backwardShare * window));
  return {exposed, total - exposed};
}

double mlir::cleave::planner::getSendTime(double bytes, const Link &link) {
  return link.latency + bytes / link.bandwidth;
}

const Link &mlir::cleave::planner::getAxisLink(const Cluster &cluster,
                                               int64_t stride, int64_t size) {
  // A group inside one node: its span fits the node and tiles it.
  int64_t span = stride * size;
  return span <= cluster.devicesPerNode && cluster.devicesPerNode % span == 0
             ? cluster.intraNode
             : cluster.interNode;
}

SmallVector<std::pair<StringRef, int64_t>, 3> Plan::getAxes() const {
  if (ppInsideDp)
    return {{"dp", dp}, {"pp", pp}, {"tp", tp}};
  return {{"pp", pp}, {"dp", dp}, {"tp", tp}};
}

std::string Plan::getMesh() const {
  SmallVector<MeshAxisSpec> axes;
  for (auto [axis, size] : getAxes())
    axes.push_back({axis.str(), size});
  return formatMeshSpec(axes);
}

SmallVector<std::string, 3> Plan::getStrategies() const {
  SmallVector<std::string, 3> strategies;
  if (dp > 1 || zeroStage > 0)
    strategies.push_back("dp");
  if (tp > 1)
    strategies.push_back(sequenceParallel ? "megatron-sp" : "search");
  if (zeroStage > 0)
    strategies.push_back("zero" + std::to_string(zeroStage));
  return strategies;
}

namespace {

int64_t ceilDiv(int64_t a, int64_t b) { return (a + b - 1) / b; }

/// Micro-batches (or, interleaved, model chunks) whose activations rank
/// `rank` keeps at once under `plan`'s schedule.
int64_t getInFlight(const Plan &plan, int64_t rank) {
  int64_t p = plan.pp, m = plan.microBatches, v = plan.virtualStages;
  switch (plan.schedule) {
  case pipeline::ScheduleKind::GPipe:
    return m * v;
  case pipeline::ScheduleKind::OneFOneB:
    return std::min(m, p - rank);
  case pipeline::ScheduleKind::Interleaved:
    // With m == p every forward is warm-up.
    if (m == p)
      return m * v;
    return std::min(m * v, 2 * (p - rank - 1) + (v - 1) * p + 1);
  }
  return m * v;
}

} // namespace

std::vector<int64_t> mlir::cleave::planner::partitionStages(
    int64_t layers, int64_t stages,
    llvm::function_ref<double(int64_t, int64_t)> time,
    llvm::function_ref<bool(int64_t, int64_t)> fits) {
  if (stages < 1 || layers < stages)
    return {};
  // The most blocks each stage can hold (fits is monotone in the count).
  std::vector<int64_t> capacity(stages, 0);
  for (int64_t k = 0; k < stages; ++k) {
    int64_t low = 0, high = layers - stages + 1;
    while (low < high) {
      int64_t mid = (low + high + 1) / 2;
      if (fits(k, mid))
        low = mid;
      else
        high = mid - 1;
    }
    capacity[k] = low;
  }
  // slowest[k][n]: the best slowest stage of the first k stages holding the
  // first n blocks; from[k][n] the count stage k-1 then holds. A stage's
  // time grows with its count while the best of the stages before it
  // shrinks, so the best count is where the two cross: a binary search
  // instead of a scan keeps the DP at O(stages x layers x log layers).
  constexpr double kNone = std::numeric_limits<double>::infinity();
  std::vector<std::vector<double>> slowest(
      stages + 1, std::vector<double>(layers + 1, kNone));
  std::vector<std::vector<int64_t>> from(stages + 1,
                                         std::vector<int64_t>(layers + 1, 0));
  slowest[0][0] = 0.0;
  for (int64_t k = 1; k <= stages; ++k) {
    // Every later stage needs a block of its own.
    for (int64_t n = k; n <= layers - (stages - k); ++n) {
      int64_t most = std::min(capacity[k - 1], n - (k - 1));
      if (most < 1)
        continue;
      auto candidate = [&](int64_t count) {
        return std::max(slowest[k - 1][n - count], time(k - 1, count));
      };
      // The first count at which this stage is at least as slow as the
      // best of the ones before.
      int64_t low = 1, high = most;
      while (low < high) {
        int64_t mid = (low + high) / 2;
        if (time(k - 1, mid) >= slowest[k - 1][n - mid])
          high = mid;
        else
          low = mid + 1;
      }
      for (int64_t count : {low - 1, low}) {
        if (count < 1 || count > most)
          continue;
        double value = candidate(count);
        if (value < slowest[k][n]) {
          slowest[k][n] = value;
          from[k][n] = count;
        }
      }
    }
  }
  if (slowest[stages][layers] == kNone)
    return {};
  std::vector<int64_t> counts(stages);
  for (int64_t k = stages, n = layers; k > 0; n -= counts[k - 1], --k)
    counts[k - 1] = from[k][n];
  return counts;
}

int64_t mlir::cleave::planner::getPaddedVocab(int64_t vocab, int64_t tp,
                                              const PlannerOptions &options) {
  int64_t quantum = tp > 1 && !options.unpaddedVocabulary ? 128 * tp : 1;
  return ceilDiv(vocab, quantum) * quantum;
}

std::optional<PlanCost> mlir::cleave::planner::evaluatePlan(
    const ModelProfile &model, const Cluster &cluster,
    const PlannerOptions &options, const Plan &plan, std::string &why) {
  int64_t batch = options.globalBatch > 0 ? options.globalBatch : model.batch;
  int64_t p = plan.pp, v = plan.virtualStages, m = plan.microBatches;
  int64_t b = plan.microBatchSize;
  if (plan.dp * b * m != batch) {
    why = "dp x micro-batch size x micro-batches must be the global batch";
    return std::nullopt;
  }
  if (!model.canSplitHeads(plan.tp)) {
    why = "tp=" + std::to_string(plan.tp) + " does not divide " +
          model.describeHeads("attention heads");
    return std::nullopt;
  }
  if (options.unpaddedVocabulary && model.vocab % plan.tp != 0) {
    why = "tp=" + std::to_string(plan.tp) + " does not divide the " +
          std::to_string(model.vocab) + "-token vocabulary";
    return std::nullopt;
  }
  if (p > model.layers || (v > 1 && model.layers % (p * v) != 0)) {
    why = "the " + std::to_string(model.layers) + " blocks do not split into " +
          std::to_string(p * v) + " stages";
    return std::nullopt;
  }
  if (plan.sequenceParallel && (plan.tp == 1 || model.seq % plan.tp != 0)) {
    why = "sequence parallelism splits the " + std::to_string(model.seq) +
          "-token sequence over tp=" + std::to_string(plan.tp) +
          ", which must be more than 1 and divide it";
    return std::nullopt;
  }
  if (v > 1 && (plan.schedule != pipeline::ScheduleKind::Interleaved ||
                m % p != 0)) {
    why = "virtual stages need the interleaved schedule and micro-batches a "
          "multiple of pp";
    return std::nullopt;
  }
  std::optional<double> peak = cluster.getPeakFlops(options.precision);
  if (!peak || (options.precision != "bf16" && options.precision != "f16" &&
                options.precision != "f32")) {
    why = "precision " + options.precision +
          (peak ? " is not bf16, f16 or f32" : " has no peak in the cluster");
    return std::nullopt;
  }

  PlanCost cost;
  cost.paddedVocab = getPaddedVocab(model.vocab, plan.tp, options);
  double vocabScale =
      static_cast<double>(cost.paddedVocab) / static_cast<double>(model.vocab);
  PartCost embed = model.embed, block = model.block, head = model.head;
  double tableParams = static_cast<double>(model.vocab) * model.hidden;
  embed.params += tableParams * (vocabScale - 1);
  if (!model.tiedEmbedding)
    head.params += tableParams * (vocabScale - 1);
  head.matmulFlops *= vocabScale;
  for (GemmShape &gemm : head.gemms)
    if (gemm.n == model.vocab)
      gemm.n = cost.paddedVocab;
  head.memoryBytes *= vocabScale;
  head.activationBytes *= vocabScale;

  // Bytes per element as trained, relative to the IR's. Mixed precision
  // (cleave-mixed-precision) computes in 16 bits but keeps parameters and
  // gradients in f32; AdamW keeps m and v in f32.
  bool mixed = options.precision != "f32";
  double computeBytes = mixed ? 2.0 : 4.0;
  double byteScale = computeBytes / static_cast<double>(model.elementBytes);
  double weightBytes = 4.0, gradientBytes = 4.0, stateBytes = 8.0;
  double zeroGatherBytes = plan.zeroStage == 3 ? computeBytes : weightBytes;
  double reducedBytes = computeBytes;

  double rate = *peak * cluster.gemmEfficiency;
  double tp = static_cast<double>(plan.tp);
  // Unless the plan is sequence parallel (which builds Megatron-LM's split),
  // the compiler builds the tensor-sharding search's split: price what it
  // leaves each device and the collectives it needs. Without the search's
  // answer for this tp, Megatron-LM's split.
  // A padded vocabulary is a model the search has not seen (the user
  // rebuilds it with --vocab-multiple): Megatron's split too.
  const SearchedSplit *searched = nullptr;
  if (plan.tp > 1 && !plan.sequenceParallel && cost.paddedVocab == model.vocab)
    if (auto it = model.searchedSplits.find(plan.tp);
        it != model.searchedSplits.end())
      searched = &it->second;
  // The collectives the compiler builds: the searched split's, or for a
  // sequence-parallel plan those partitioning builds for Megatron-LM's
  // split; null: Megatron-LM's, by formula.
  const SearchedSplit *built = searched;
  if (plan.tp > 1 && plan.sequenceParallel && cost.paddedVocab == model.vocab)
    if (auto it = model.sequenceParallelSplits.find(plan.tp);
        it != model.sequenceParallelSplits.end())
      built = &it->second;
  // The searched form of a part, or null where Megatron's split applies.
  auto getSearched = [&](const PartCost &part) -> const SearchedPart * {
    if (!searched)
      return nullptr;
    if (&part == &embed)
      return &searched->embed;
    return &part == &head ? &searched->head : &searched->block;
  };
  // The share of a part's parameters or activations one device keeps:
  // the search's, or 1 / tp as Megatron splits them.
  auto getShare = [&](const PartCost &part, double SearchedPart::*share) {
    const SearchedPart *split = getSearched(part);
    return split ? split->*share : 1.0 / tp;
  };
  // GEMMs at the efficiency of their shape, split as Megatron splits them:
  // a batched product by heads, a projection along the larger of n
  // (column) and k (row). The shapes weigh the rate; the FLOPs are the cost
  // interface's (a causal attention's half of its products included).
  auto gemmTime = [&](const PartCost &part) {
    const SearchedPart *split = getSearched(part);
    // How many ways the part's products are split.
    double ways = split ? 1.0 / std::max(split->matmulShare, 1.0 / tp) : tp;
    double flops = b * part.matmulFlops / ways;
    if (part.gemms.empty())
      return flops / rate;
    double seconds = 0.0, shapeFlops = 0.0;
    for (const GemmShape &gemm : part.gemms) {
      double m = gemm.m, n = gemm.n, k = gemm.k;
      double products = gemm.products;
      (gemm.rowsGrowWithBatch ? m : products) *= b;
      if (ways > 1.0) {
        if (!gemm.rowsGrowWithBatch && gemm.products % plan.tp == 0)
          products /= ways;
        else
          (n >= k ? n : k) /= ways;
      }
      shapeFlops += 2.0 * m * n * k * products;
      seconds += 2.0 * m * n * k * products /
                 (*peak * cluster.getGemmEfficiency(m, n, k));
    }
    return shapeFlops > 0 ? seconds * flops / shapeFlops : flops / rate;
  };
  auto forwardTime = [&](const PartCost &part) {
    double split = part.memoryBytes - part.replicatedMemoryBytes;
    double bytes = split / tp + part.replicatedMemoryBytes;
    if (const SearchedPart *searchedPart = getSearched(part))
      bytes = part.memoryBytes * searchedPart->memoryShare;
    return (gemmTime(part) +
            b * bytes * byteScale / cluster.memoryBandwidth) /
           cluster.computeEfficiency;
  };
  // Mesh order outermost first: (dp, pp, tp) or (pp, dp, tp).
  const Link &tpLink = getAxisLink(cluster, 1, plan.tp);
  int64_t ppStride = plan.ppInsideDp ? plan.tp : plan.tp * plan.dp;
  int64_t dpStride = plan.ppInsideDp ? plan.tp * plan.pp : plan.tp;
  const Link &ppLink = getAxisLink(cluster, ppStride, plan.pp);
  const Link &dpLink = getAxisLink(cluster, dpStride, plan.dp);

  double activation =
      static_cast<double>(b) * model.seq * model.hidden * computeBytes;
  double tpAllReduce = getAllReduceTime(activation, plan.tp, tpLink);
  // A recomputed block runs its forward twice and repeats its forward
  // all-reduces.
  double blockPasses = 3.0 * forwardTime(block);
  double recomputePasses = 4.0 * forwardTime(block);
  double embedTime = 3.0 * forwardTime(embed), headTime = 3.0 * forwardTime(head);
  double dp = static_cast<double>(plan.dp);

  // A stage of `count` blocks on pipeline rank `rank`, the first
  // `recomputed` of them recomputed: the embedding joins the first, the
  // head (and a tied table's copy) the last.
  auto stageCompute = [&](int64_t rank, int64_t count, int64_t recomputed) {
    return (count - recomputed) * blockPasses + recomputed * recomputePasses +
           (rank == 0 ? embedTime : 0.0) + (rank == p - 1 ? headTime : 0.0);
  };
  // Tensor parallelism's collectives per micro-batch on a stage: the
  // searched split's, activations scaled to the micro-batch and precision;
  // else Megatron-LM's: two all-reduces of the residual stream per block in
  // the forward and two in the backward, a recomputed block's forward two
  // more, and two for the embedding and the head.
  struct TpTraffic {
    /// Collectives, their seconds, the tensors they move and the bytes
    /// each device sends for them.
    double collectives = 0.0, seconds = 0.0, tensorBytes = 0.0, bytes = 0.0;
  };
  auto addCollectives = [&](TpTraffic &traffic,
                            const std::vector<SplitCollectiveCost> &part,
                            double repeats, bool forwardOnly) {
    for (const SplitCollectiveCost &collective : part) {
      if (forwardOnly && !collective.forward)
        continue;
      double scale =
          (built->builtInPrecision ? 1.0 : byteScale) *
          (collective.scalesWithBatch ? static_cast<double>(b) / model.batch
                                      : 1.0);
      double tensor = collective.tensorBytes * scale;
      double seconds = 0.0;
      switch (collective.kind) {
      case SplitCollectiveCost::Kind::AllReduce:
        seconds = getAllReduceTime(tensor, plan.tp, tpLink);
        break;
      case SplitCollectiveCost::Kind::ReduceScatter:
      case SplitCollectiveCost::Kind::AllGather:
        seconds = getAllGatherTime(tensor, plan.tp, tpLink);
        break;
      case SplitCollectiveCost::Kind::AllToAll:
        seconds = getAllGatherTime(tensor / tp, plan.tp, tpLink);
        break;
      }
      double times = repeats * collective.times;
      traffic.collectives += times;
      traffic.seconds += times * seconds;
      traffic.tensorBytes += times * tensor;
      traffic.bytes += times * collective.communicatedBytes * scale;
    }
  };
  auto stageTpTraffic = [&](int64_t rank, int64_t count, int64_t recomputed) {
    TpTraffic traffic;
    if (plan.tp <= 1)
      return traffic;
    if (!built) {
      traffic.collectives = 4.0 * count + 2.0 * recomputed + 2.0;
      traffic.seconds = traffic.collectives * tpAllReduce;
      traffic.bytes = traffic.collectives * 2.0 * (tp - 1) / tp * activation;
      return traffic;
    }
    addCollectives(traffic, built->block.collectives, count, false);
    addCollectives(traffic, built->block.collectives, recomputed, true);
    if (rank == 0)
      addCollectives(traffic, built->embed.collectives, 1.0, false);
    if (rank == p - 1)
      addCollectives(traffic, built->head.collectives, 1.0, false);
    return traffic;
  };
  auto stageTp = [&](int64_t rank, int64_t count, int64_t recomputed) {
    return stageTpTraffic(rank, count, recomputed).seconds;
  };
  auto parameterShare = [&](const PartCost &part) {
    return getShare(part, &SearchedPart::parameterShare);
  };
  // The tied token table (not the positions) as one device holds it: the
  // last stage keeps a copy, which the first stage's update applies.
  double table = static_cast<double>(cost.paddedVocab) * model.hidden *
                 parameterShare(embed);
  double tiedCopy = model.tiedEmbedding && p > 1 ? table : 0.0;
  auto stageParams = [&](int64_t rank, int64_t count) {
    return count * block.params * parameterShare(block) +
           (rank == 0 ? embed.params * parameterShare(embed) : 0.0) +
           (rank == p - 1 ? head.params * parameterShare(head) + tiedCopy
                          : 0.0);
  };
  struct StageMemory {
    double weights, gradients, optimizer, activations;
    double total() const { return weights + gradients + optimizer + activations; }
  };
  auto stageMemory = [&](int64_t rank, int64_t count, int64_t recomputed) {
    double params = stageParams(rank, count);
    StageMemory memory;
    memory.weights = params * weightBytes / (plan.zeroStage == 3 ? dp : 1.0);
    memory.gradients = params * gradientBytes / (plan.zeroStage >= 2 ? dp : 1.0);
    memory.optimizer = params * stateBytes / (plan.zeroStage >= 1 ? dp : 1.0);
    // A recomputed block keeps its input; one block's activations are
    // rebuilt at a time. The others keep all of theirs.
    // Tensor parallelism splits the activations inside attention and the
    // MLP; the residual stream only with sequence parallelism.
    double streamSplit = plan.sequenceParallel ? tp : 1.0;
    double perBlock =
        b * byteScale *
        (searched
             ? block.activationBytes * searched->block.activationShare
             : (block.activationBytes - block.replicatedActivationBytes) / tp +
                   block.replicatedActivationBytes / streamSplit);
    double stageActivations = recomputed * activation / streamSplit +
                              (recomputed > 0 ? perBlock : 0.0) +
                              (count - recomputed) * perBlock;
    double chunkActivations =
        count >= v ? stageActivations / static_cast<double>(v)
                   : stageActivations / static_cast<double>(count);
    // Chunks in flight hold their blocks' activations; the embedding's or
    // head's belong to one chunk in v (the first or the last).
    double extra =
        (rank == 0 ? embed.activationBytes *
                         getShare(embed, &SearchedPart::activationShare)
                   : 0.0) +
        (rank == p - 1 ? head.activationBytes *
                             getShare(head, &SearchedPart::activationShare)
                       : 0.0);
    double inFlight = static_cast<double>(getInFlight(plan, rank));
    memory.activations = inFlight * chunkActivations +
                         std::ceil(inFlight / v) * extra * b * byteScale;
    return memory;
  };
  double limit = options.memoryLimit > 0 ? options.memoryLimit
                                         : cluster.memoryBytes;
  auto fitsLimit = [&](const StageMemory &memory) {
    return memory.total() + cluster.workspaceBytes <= limit;
  };
  // Blocks recomputed on a stage: none without recompute; the count asked
  // for; the fewest that fit (as one would set Megatron-LM's
  // --recompute-num-layers) when the plan says so and its chunks are
  // whole stages; else every block.
  auto getRecomputed = [&](int64_t rank, int64_t count) -> int64_t {
    if (!plan.recompute)
      return 0;
    // The first K of each stage: of each of a rank's v chunks.
    if (options.recomputeLayers)
      return v > 1 ? v * std::min(*options.recomputeLayers, count / v)
                   : std::min(*options.recomputeLayers, count);
    if (!plan.recomputeFewest || v > 1)
      return count;
    for (int64_t k = 0; k < count; ++k)
      if (fitsLimit(stageMemory(rank, count, k)))
        return k;
    return count;
  };

  // Blocks per stage: interleaved chunks split evenly; otherwise the stage
  // DP balances the slowest stage under the memory limit, falling back to
  // an even split (which then reports the memory it lacks).
  std::vector<int64_t> blocks(p, ceilDiv(model.layers, p));
  if (p > 1) {
    for (int64_t rank = 0; rank < p; ++rank)
      blocks[rank] = model.layers / p + (rank < model.layers % p ? 1 : 0);
    if (v == 1) {
      std::vector<int64_t> balanced = partitionStages(
          model.layers, p,
          [&](int64_t rank, int64_t count) {
            int64_t recomputed = getRecomputed(rank, count);
            return stageCompute(rank, count, recomputed) +
                   stageTp(rank, count, recomputed);
          },
          [&](int64_t rank, int64_t count) {
            return fitsLimit(
                stageMemory(rank, count, getRecomputed(rank, count)));
          });
      if (!balanced.empty()) {
        blocks = std::move(balanced);
        cost.stagesBalanced = true;
      }
    }
  }
  cost.layersPerStage = blocks;
  std::vector<int64_t> recomputed(p);
  for (int64_t rank = 0; rank < p; ++rank)
    recomputed[rank] = getRecomputed(rank, blocks[rank]);
  bool fullRecompute = plan.recompute && recomputed == blocks;
  if (plan.recompute && !fullRecompute)
    cost.recomputeLayers = recomputed;
  auto stageTime = [&](int64_t rank) {
    return stageCompute(rank, blocks[rank], recomputed[rank]) +
           stageTp(rank, blocks[rank], recomputed[rank]);
  };
  auto memoryOf = [&](int64_t rank) {
    return stageMemory(rank, blocks[rank], recomputed[rank]);
  };

  // Per micro-batch, the slowest stage sets the pace.
  int64_t slowest = 0, fullest = 0, busiest = 0;
  for (int64_t rank = 1; rank < p; ++rank) {
    if (stageTime(rank) > stageTime(slowest))
      slowest = rank;
    if (memoryOf(rank).total() > memoryOf(fullest).total())
      fullest = rank;
    if (stageTpTraffic(rank, blocks[rank], recomputed[rank]).bytes >
        stageTpTraffic(busiest, blocks[busiest], recomputed[busiest]).bytes)
      busiest = rank;
  }
  double computePerMicro =
      stageCompute(slowest, blocks[slowest], recomputed[slowest]);
  double tpPerMicro = stageTp(slowest, blocks[slowest], recomputed[slowest]);
  // Stages pass the residual stream, split on the sequence when the plan
  // is sequence parallel.
  double boundary = plan.sequenceParallel
                        ? activation / static_cast<double>(plan.tp)
                        : activation;
  double transfersPerMicro =
      p > 1 ? 2.0 * v * getSendTime(boundary, ppLink) : 0.0;
  double perMicro = computePerMicro + tpPerMicro + transfersPerMicro;
  double fill = static_cast<double>(p - 1) / static_cast<double>(v);
  // The recomputed forwards, apart from the rest of the compute.
  cost.recompute = m * recomputed[slowest] * forwardTime(block);
  cost.compute = m * computePerMicro - cost.recompute;
  // The update's own collectives, once per step, each stage for its share
  // of the parameters.
  TpTraffic updateTraffic;
  if (built)
    addCollectives(updateTraffic, built->update, 1.0, false);
  auto updateShare = [&](int64_t rank) {
    double stage = blocks[rank] * block.params +
                   (rank == 0 ? embed.params : 0.0) +
                   (rank == p - 1 ? head.params : 0.0);
    return stage / std::max(1.0, model.getParams());
  };
  cost.tensorParallel =
      m * tpPerMicro + updateTraffic.seconds * updateShare(slowest);
  cost.pipelineTransfers = m * transfersPerMicro;
  cost.bubble = fill * perMicro;
  cost.bubbleFraction = fill / (m + fill);

  // Parameters per device: the stage holding the most; and those a
  // stage's backward reads (ZeRO-3 gathers them again there), its
  // recomputed blocks' counted as recomputed.
  double params = 0.0;
  int64_t largest = 0;
  for (int64_t rank = 0; rank < p; ++rank)
    if (stageParams(rank, blocks[rank]) > params) {
      params = stageParams(rank, blocks[rank]);
      largest = rank;
    }
  auto backwardShare = [&](const PartCost &part, double PartCost::*field) {
    double read = part.*field < 0.0 ? part.params : part.*field;
    return read * parameterShare(part);
  };
  auto stageBackwardParams = [&](int64_t rank) {
    return (blocks[rank] - recomputed[rank]) *
               backwardShare(block, &PartCost::backwardParams) +
           recomputed[rank] *
               backwardShare(block, &PartCost::recomputedBackwardParams) +
           (rank == 0 ? backwardShare(embed, &PartCost::backwardParams) : 0.0) +
           (rank == p - 1 ? backwardShare(head, &PartCost::backwardParams)
                          : 0.0);
  };
  double backwardParams = stageBackwardParams(largest);

  // Gradients over dp. With micro-batches (the pipeline path) the training
  // loop reduces dp and ZeRO-1 gradients once per step, accumulated in f32,
  // in buckets behind the last micro-batch's backward (a tied table's
  // parts, which cross the pipeline, all-reduced even under ZeRO-1).
  // ZeRO-2 and -3 reduce-scatter each micro-batch's gradients. Without ZeRO
  // an all-reduce; with it a reduce-scatter of the gradients and an
  // all-gather of the updated weights (ZeRO-3: of the weights before each
  // micro-batch's forward, and of those its backward reads before the
  // backward, instead).
  bool pipelined = m > 1 || p > 1;
  bool deferred = pipelined && plan.zeroStage <= 1;
  double reductions = pipelined ? static_cast<double>(m) : 1.0;
  auto sharedTable = [&](int64_t rank) {
    return rank == 0 ? (tiedCopy > 0.0 ? table : 0.0)
                     : (rank == p - 1 ? tiedCopy : 0.0);
  };
  // Gradients reduced inside the backward are reduced before their cast
  // back to f32: in mixed precision, in 16 bits.
  double gradientTensor = params * reducedBytes;
  double weightTensor = params * weightBytes;
  auto addCollective = [&](StringRef name, double count, double bytes,
                           double seconds) {
    if (count > 0 && seconds > 0)
      cost.collectives.push_back({name.str(), count, bytes, seconds});
  };
  TpTraffic tpTraffic =
      stageTpTraffic(busiest, blocks[busiest], recomputed[busiest]);
  // Sequence parallelism makes each all-reduce a reduce-scatter and an
  // all-gather: the same bytes and time on a ring.
  if (built)
    addCollective(searched ? "tp collectives of the searched split"
                           : "tp collectives of the sequence-parallel split",
                  m * tpTraffic.collectives,
                  tpTraffic.tensorBytes / std::max(1.0, tpTraffic.collectives),
                  cost.tensorParallel);
  else if (plan.tp > 1)
    addCollective(plan.sequenceParallel
                      ? "tp reduce-scatter and all-gather of activations"
                      : "tp all-reduce of activations",
                  m * tpTraffic.collectives, activation, cost.tensorParallel);
  if (p > 1)
    addCollective("pp send of activations and their gradients", m * 2.0 * v,
                  boundary, cost.pipelineTransfers);
  // What a micro-batch's forward and backward take: the windows
  // collectives started early (cleave-overlap-collectives) or behind the
  // backward hide under.
  double forwardWindow = (computePerMicro - cost.recompute / m) / 3.0;
  double backwardWindow =
      (computePerMicro - cost.recompute / m) * 2.0 / 3.0 + cost.recompute / m;
  if (deferred) {
    // One reduction per step of the f32 accumulators (ZeRO-1: a
    // reduce-scatter into the blocks the update applies), exposed as the
    // overlap model says.
    double once = params * gradientBytes;
    double scattered = plan.zeroStage == 1
                           ? (params - sharedTable(largest)) * gradientBytes
                           : 0.0;
    double reduce = getAllGatherTime(scattered, plan.dp, dpLink) +
                    getAllReduceTime(once - scattered, plan.dp, dpLink);
    ReductionOverlap overlap =
        getReductionOverlap(cluster.overlap, once, reduce, backwardWindow);
    cost.dataParallel = overlap.exposed;
    cost.dataParallelHidden = overlap.hidden;
    addCollective(plan.zeroStage == 0
                      ? "dp all-reduce of gradients, once per step"
                      : "dp reduce-scatter of gradients, once per step",
                  1.0, once, reduce);
    if (plan.zeroStage == 1) {
      double gather = getAllGatherTime(weightTensor, plan.dp, dpLink);
      cost.dataParallel += gather;
      addCollective("dp all-gather of weights", 1.0, weightTensor, gather);
    }
  } else if (plan.zeroStage == 0) {
    // One micro-batch: the all-reduces run behind the rest of its backward.
    double reduce = getAllReduceTime(gradientTensor, plan.dp, dpLink);
    ReductionOverlap overlap = getReductionOverlap(
        cluster.overlap, gradientTensor, reduce, backwardWindow);
    cost.dataParallel = reductions * overlap.exposed;
    cost.dataParallelHidden = reductions * overlap.hidden;
    addCollective("dp all-reduce of gradients", reductions, gradientTensor,
                  reductions * reduce);
  } else {
    // Each micro-batch's reduce-scatters run behind the rest of its
    // backward, with ZeRO-3's gathers of the weights the backward reads.
    // ZeRO-3 gathers the forward's weights a layer ahead, behind the
    // forward (in mixed precision, their 16-bit casts); ZeRO-1 and -2
    // gather the updated weights after the update, in the open.
    double gatheredTensor = params * zeroGatherBytes;
    double scatter = getAllGatherTime(gradientTensor, plan.dp, dpLink);
    double gather = getAllGatherTime(gatheredTensor, plan.dp, dpLink);
    addCollective("dp reduce-scatter of gradients", reductions, gradientTensor,
                  reductions * scatter);
    double behindBackwardBytes = gradientTensor, behindBackward = scatter;
    ReductionOverlap forward{gather, 0.0};
    double gathers = 1.0;
    if (plan.zeroStage == 3) {
      gathers = m;
      forward = getReductionOverlap(cluster.overlap, gatheredTensor, gather,
                                    forwardWindow);
    }
    addCollective("dp all-gather of weights", gathers, gatheredTensor,
                  gathers * gather);
    if (plan.zeroStage == 3 && params > 0.0) {
      double backwardTensor = backwardParams * zeroGatherBytes;
      double regather = getAllGatherTime(backwardTensor, plan.dp, dpLink);
      behindBackwardBytes += backwardTensor;
      behindBackward += regather;
      addCollective("dp all-gather of weights the backward reads", m,
                    backwardTensor, m * regather);
    }
    ReductionOverlap backward = getReductionOverlap(
        cluster.overlap, behindBackwardBytes, behindBackward, backwardWindow);
    cost.dataParallel =
        reductions * backward.exposed + gathers * forward.exposed;
    cost.dataParallelHidden =
        reductions * backward.hidden + gathers * forward.hidden;
  }
  if (model.tiedEmbedding && p > 1) {
    double exchange = getSendTime(table * gradientBytes, ppLink) +
                      getSendTime(table * weightBytes, ppLink);
    cost.pipelineTransfers += exchange;
    addCollective("pp send of the tied table's gradient and value", 2.0,
                  table * gradientBytes, exchange);
  }
  // The update: its measured time per parameter, or reading and writing
  // weights, gradients and state once at memory bandwidth.
  double updated = plan.zeroStage >= 1 ? params / dp : params;
  cost.optimizer =
      cluster.updateTimePerParam > 0
          ? updated * cluster.updateTimePerParam
          : 2.0 * updated * (weightBytes + gradientBytes + stateBytes) /
                cluster.memoryBandwidth;
  cost.stepTime = cost.compute + cost.recompute + cost.tensorParallel +
                  cost.pipelineTransfers + cost.bubble + cost.dataParallel +
                  cost.optimizer;

  // Memory: the fullest stage's.
  StageMemory memory = memoryOf(fullest);
  cost.weightsMemory = memory.weights;
  cost.gradientsMemory = memory.gradients;
  cost.optimizerMemory = memory.optimizer;
  cost.activationMemory = memory.activations;
  cost.workspaceMemory = cluster.workspaceBytes;
  cost.peakMemory = cost.weightsMemory + cost.gradientsMemory +
                    cost.optimizerMemory + cost.activationMemory +
                    cost.workspaceMemory;

  double devices = static_cast<double>(plan.getDevices());
  double forwardFlops = model.getForwardMatmulFlops(batch);
  // Megatron-LM counts full recompute as a fourth pass over the model;
  // partial recompute adds the recomputed blocks' forward.
  double recomputedBlocks = 0.0;
  for (int64_t rank = 0; rank < p; ++rank)
    recomputedBlocks += static_cast<double>(recomputed[rank]);
  recomputedBlocks *=
      static_cast<double>(model.layers) /
      std::max<double>(1.0, std::accumulate(blocks.begin(), blocks.end(), 0.0));
  double passes = fullRecompute ? 4.0
                                : 3.0 + recomputedBlocks * batch *
                                            block.matmulFlops / forwardFlops;
  cost.tflopsPerDevice = passes * forwardFlops / cost.stepTime / devices / 1e12;
  cost.mfu = 3.0 * forwardFlops / (cost.stepTime * devices * *peak);
  // Bytes per device: the most any pipeline rank sends. Ring collectives
  // send (n - 1) / n of the buffer per step, twice for an all-reduce;
  // point-to-point sends the whole buffer. A pipeline rank sends
  // activations forward and their gradients backward: both on a rank
  // between the ends, one fewer chunk's worth on an end (each end of a
  // two-stage pipeline sends one direction per chunk).
  double pipelineSends = 0.0;
  if (p > 1)
    pipelineSends = (p > 2 ? 2.0 * v : 2.0 * v - 1.0) * m * boundary;
  // Scalars (f32): each micro-batch's loss averaged over dp on the last
  // stage, and the gradient norm's squares summed once per step over the
  // axes that split gradients: dp under ZeRO, tp where its split divides a
  // parameter, pp.
  auto scalarReduce = [](double n) {
    return n > 1.0 ? 2.0 * (n - 1.0) / n * 4.0 : 0.0;
  };
  bool tpSplitsParameters =
      plan.tp > 1 && (!searched || searched->embed.parameterShare < 1.0 ||
                      searched->block.parameterShare < 1.0 ||
                      searched->head.parameterShare < 1.0);
  double normScalars = (plan.zeroStage >= 1 ? scalarReduce(dp) : 0.0) +
                       (tpSplitsParameters ? scalarReduce(tp) : 0.0) +
                       scalarReduce(static_cast<double>(p));
  // Bytes a rank's dp collectives send per step: each reduction of its
  // stage's gradients (an all-reduce twice), and the gathers of the
  // weights its update applies (the last stage's tied copy is applied by
  // the first), or under ZeRO-3 each micro-batch's gathers for the forward
  // and for what the backward reads.
  auto dpBytes = [&](int64_t rank) {
    double stage = stageParams(rank, blocks[rank]);
    double applied = stage - (rank == p - 1 ? tiedCopy : 0.0);
    double units = 0.0;
    double shared = sharedTable(rank);
    if (deferred && plan.zeroStage == 0)
      units = 2.0 * stage * gradientBytes;
    else if (deferred)
      units = (stage + shared) * gradientBytes + applied * weightBytes;
    else if (plan.zeroStage == 0)
      units = 2.0 * reductions * stage * reducedBytes;
    else if (plan.zeroStage == 3)
      units = reductions * stage * reducedBytes +
              m * (stage + stageBackwardParams(rank)) * zeroGatherBytes;
    else
      units = reductions * stage * reducedBytes + applied * weightBytes;
    return units * (dp - 1) / dp;
  };
  cost.communicatedBytes = 0.0;
  for (int64_t rank = 0; rank < p; ++rank) {
    double sent =
        m * stageTpTraffic(rank, blocks[rank], recomputed[rank]).bytes +
        updateTraffic.bytes * updateShare(rank) + dpBytes(rank) +
        pipelineSends + normScalars +
        // The loss: once per step, its dp sum deferred with the
        // gradients' on the pipeline path.
        (rank == p - 1 ? scalarReduce(dp) : 0.0) +
        // The last rank sends the tied table's gradient, the first its
        // value.
        (rank == 0 || rank == p - 1 ? tiedCopy : 0.0) *
            std::max(gradientBytes, weightBytes);
    cost.communicatedBytes = std::max(cost.communicatedBytes, sent);
  }

  if (cost.peakMemory > limit) {
    cost.fits = false;
    why = llvm::formatv("needs {0:f1} GiB per device, more than the {1:f1} "
                        "GiB there is",
                        cost.peakMemory / double(1 << 30),
                        limit / double(1 << 30))
              .str();
  }
  return cost;
}
