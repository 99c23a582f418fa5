//===- Search.cpp - Every plan, costed and ranked -------------------------===//
//
// Enumerates the meshes dp x tp x pp of the device count (tp dividing the
// heads, pp at most the blocks), both placements of dp and pp around the
// innermost tp, every micro-batch size dividing each data-parallel rank's
// share of the batch, each schedule (interleaving with every chunk count
// that divides the blocks), ZeRO stages 0-3 when dp > 1 and recompute on or
// off or only on the fewest blocks of each stage that fit, with tp > 1
// Megatron's sequence parallelism or not, minus what
// the user fixed. Identical blocks are costed once, so a plan costs O(1)
// and the search is linear in the plans.
//
//===----------------------------------------------------------------------===//

#include "cleave/Planner/Planner.h"

#include "cleave/Dialect/Cleave/IR/CleaveOps.h"

#include <algorithm>
#include <cmath>

using namespace mlir;
using namespace mlir::cleave;
using namespace mlir::cleave::planner;

// Far past any batch ever used; keeps the search's divisor walks instant
// (the device count is a mesh's, at most kMaxMeshDevices).
static constexpr int64_t kMaxGlobalBatch = int64_t(1) << 32;

static std::vector<int64_t> getDivisors(int64_t n) {
  std::vector<int64_t> divisors;
  for (int64_t d = 1; d * d <= n; ++d)
    if (n % d == 0) {
      divisors.push_back(d);
      if (d * d != n)
        divisors.push_back(n / d);
    }
  std::sort(divisors.begin(), divisors.end());
  return divisors;
}

LogicalResult mlir::cleave::planner::setPlannerChoices(PlannerOptions &options,
                                                       const Cluster &cluster,
                                                       StringRef mesh,
                                                       StringRef schedule,
                                                       std::string &message) {
  auto fail = [&](const Twine &text) {
    message = text.str();
    return failure();
  };
  if (options.devices < 1 || options.devices > kMaxMeshDevices)
    return fail("planning needs 1 to " + Twine(kMaxMeshDevices) +
                " devices, got " + Twine(options.devices));
  if (options.globalBatch > kMaxGlobalBatch)
    return fail("the global batch must be at most " + Twine(kMaxGlobalBatch) +
                " sequences, got " + Twine(options.globalBatch));
  if (options.precision != "bf16" && options.precision != "f16" &&
      options.precision != "f32")
    return fail("precision must be bf16, f16 or f32, got '" +
                options.precision + "'");
  if (!cluster.getPeakFlops(options.precision))
    return fail("cluster '" + cluster.name + "' gives no peak for " +
                options.precision);
  if (options.recomputeLayers && *options.recomputeLayers < 0)
    return fail("the blocks to recompute per stage must not be negative");
  if (options.recomputeLayers && options.recompute && !*options.recompute)
    return fail("recompute-layers needs recompute");
  if (options.globalBatch < 0 || !(options.memoryLimit >= 0) ||
      std::isinf(options.memoryLimit) ||
      options.microBatchSize.value_or(0) < 0 ||
      options.zeroStage.value_or(0) < 0 || options.zeroStage.value_or(0) > 3)
    return fail("the global batch, memory limit and micro-batch size must not "
                "be negative, the ZeRO stage is 0 to 3");
  if (!schedule.empty()) {
    options.schedule = pipeline::parseScheduleKind(schedule);
    if (!options.schedule)
      return fail("the schedule must be gpipe, 1f1b or interleaved, got '" +
                  schedule + "'");
  }
  if (mesh.empty())
    return success();
  FailureOr<SmallVector<MeshAxisSpec>> axes = parseMeshSpec(mesh, message);
  if (failed(axes))
    return failure();
  Plan fixed;
  for (const auto &[name, size] : *axes) {
    if (name == "dp")
      fixed.dp = size;
    else if (name == "tp")
      fixed.tp = size;
    else if (name == "pp")
      fixed.pp = size;
    else
      return fail("a planned mesh's axes are dp, tp and pp, got '" + name +
                  "'");
  }
  if (fixed.getDevices() != options.devices)
    return fail("mesh " + mesh + " has " + Twine(fixed.getDevices()) +
                " devices, not the " + Twine(options.devices) + " to plan for");
  options.mesh = fixed;
  return success();
}

FailureOr<SearchResult>
mlir::cleave::planner::searchPlans(const ModelProfile &model,
                                   const Cluster &cluster,
                                   const PlannerOptions &options,
                                   std::string &error) {
  int64_t devices = options.devices;
  int64_t batch = options.globalBatch > 0 ? options.globalBatch : model.batch;
  if (devices < 1) {
    error = "the device count must be at least 1";
    return failure();
  }
  if (batch > kMaxGlobalBatch) {
    error = "the global batch must be at most " +
            std::to_string(kMaxGlobalBatch) + " sequences, got " +
            std::to_string(batch);
    return failure();
  }
  SearchResult result;
  // For when nothing fits: the plan that needs the least memory, and
  // whether cleavec's limits ruled plans out.
  std::optional<RankedPlan> smallest;
  std::string smallestWhy, lastWhy;
  bool anyMesh = false;
  for (int64_t tp : getDivisors(devices)) {
    for (int64_t pp : getDivisors(devices / tp)) {
      int64_t dp = devices / tp / pp;
      if (options.mesh && (options.mesh->dp != dp || options.mesh->tp != tp ||
                           options.mesh->pp != pp))
        continue;
      if (!model.canSplitHeads(tp) || pp > model.layers || batch % dp != 0 ||
          (options.unpaddedVocabulary && model.vocab % tp != 0))
        continue;
      anyMesh = true;
      for (int64_t size : getDivisors(batch / dp)) {
        if (options.microBatchSize && *options.microBatchSize != size)
          continue;
        int64_t micro = batch / dp / size;
        std::vector<std::pair<pipeline::ScheduleKind, int64_t>> schedules = {
            {pipeline::ScheduleKind::OneFOneB, 1}};
        if (pp > 1) {
          schedules.push_back({pipeline::ScheduleKind::GPipe, 1});
          for (int64_t v = 2; v * pp <= model.layers; ++v)
            if (model.layers % (v * pp) == 0 && micro % pp == 0)
              schedules.push_back({pipeline::ScheduleKind::Interleaved, v});
        }
        for (auto [schedule, virtualStages] : schedules) {
          if (options.schedule && *options.schedule != schedule)
            continue;
          for (int64_t zero = 0; zero <= (dp > 1 ? 3 : 0); ++zero) {
            if (options.zeroStage && *options.zeroStage != zero &&
                !(dp == 1 && zero == 0))
              continue;
            // Recompute: none, every block, or the fewest blocks of each
            // stage that fit.
            for (auto [recompute, fewest] :
                 {std::pair(false, false), std::pair(true, false),
                  std::pair(true, true)}) {
              if (options.recompute && *options.recompute != recompute)
                continue;
              if (fewest && (options.recompute || options.recomputeLayers ||
                             virtualStages > 1))
                continue;
              // Both placements of pp around tp, each with and without
              // sequence parallelism.
              for (auto [ppInsideDp, sequence] :
                   {std::pair(true, false), std::pair(true, true),
                    std::pair(false, false), std::pair(false, true)}) {
                if (!ppInsideDp && (dp == 1 || pp == 1))
                  continue;
                if (sequence && (tp == 1 || model.seq % tp != 0))
                  continue;
                Plan plan;
                plan.dp = dp;
                plan.tp = tp;
                plan.pp = pp;
                plan.ppInsideDp = ppInsideDp;
                plan.microBatchSize = size;
                plan.microBatches = micro;
                plan.schedule = schedule;
                plan.virtualStages = virtualStages;
                plan.zeroStage = zero;
                plan.recompute = recompute;
                plan.recomputeFewest = fewest;
                plan.sequenceParallel = sequence;
                std::string why;
                std::optional<PlanCost> cost =
                    evaluatePlan(model, cluster, options, plan, why);
                // The fewest blocks that fit may be none or all: plans
                // the other two settings give.
                if (cost && fewest &&
                    (cost->recomputeLayers.empty() ||
                     llvm::all_of(cost->recomputeLayers,
                                  [](int64_t k) { return k == 0; })))
                  continue;
                ++result.considered;
                if (cost && cost->fits) {
                  result.plans.push_back({plan, *cost});
                } else if (cost && (!smallest || cost->peakMemory <
                                                     smallest->cost.peakMemory)) {
                  smallest = RankedPlan{plan, *cost};
                  smallestWhy = why;
                } else if (!cost) {
                  lastWhy = plan.getMesh() + ": " + why;
                }
              }
            }
          }
        }
      }
    }
  }
  if (!anyMesh) {
    error =
        "no mesh of " + std::to_string(devices) +
        " devices runs this model: tp must divide " +
        model.describeHeads("heads") +
        (options.unpaddedVocabulary
             ? " and the " + std::to_string(model.vocab) + "-token vocabulary"
             : std::string()) +
        ", pp be at most the " + std::to_string(model.layers) +
        " blocks, and dp divide the global batch of " + std::to_string(batch);
    if (options.mesh)
      error += " (and the mesh is fixed to " + options.mesh->getMesh() + ")";
    return failure();
  }
  if (result.plans.empty() && !smallest) {
    if (result.considered == 0)
      error = "no plan matches the choices given (micro-batch size, "
              "schedule, ZeRO stage, recompute): interleaving needs pp > 1, "
              "micro-batches a multiple of pp and chunks that divide the "
              "blocks";
    else
      error = "no plan runs this model: " + lastWhy;
    return failure();
  }
  if (result.plans.empty()) {
    error = "no plan fits in memory";
    if (smallest)
      error += ": the smallest (" + smallest->plan.getMesh() + ", ZeRO-" +
               std::to_string(smallest->plan.zeroStage) +
               (smallest->plan.recompute ? ", recompute" : "") + ") " +
               smallestWhy;
    return failure();
  }
  std::stable_sort(result.plans.begin(), result.plans.end(),
                   [](const RankedPlan &a, const RankedPlan &b) {
                     return a.cost.stepTime < b.cost.stepTime;
                   });
  return result;
}
