//===- PlanReport.cpp - `cleavec plan` ------------------------------------===//

#include "cleave/Driver/PlanReport.h"

#include "llvm/Support/Format.h"
#include "llvm/Support/FormatVariadic.h"
#include "llvm/Support/JSON.h"

using namespace mlir;
using namespace mlir::cleave;
using namespace mlir::cleave::planner;

namespace {

constexpr double kGiB = 1024.0 * 1024.0 * 1024.0;

std::string describeSchedule(const Plan &plan) {
  std::string text = pipeline::getScheduleName(plan.schedule).str();
  if (plan.virtualStages > 1)
    text += " v=" + std::to_string(plan.virtualStages);
  return text;
}

/// "none", "full", or the blocks recomputed on each pipeline rank.
std::string describeRecompute(const RankedPlan &ranked) {
  if (!ranked.plan.recompute)
    return "none";
  if (ranked.cost.recomputeLayers.empty())
    return "full";
  std::string text;
  llvm::raw_string_ostream os(text);
  llvm::interleave(ranked.cost.recomputeLayers, os, ",");
  return text;
}

void printRow(int64_t rank, const RankedPlan &ranked, llvm::raw_ostream &os) {
  const Plan &plan = ranked.plan;
  const PlanCost &cost = ranked.cost;
  os << llvm::formatv(
      "{0,4} {1,-20} {2,5} x {3,-5} {4,-14} {5,4} {6,-9} {7,9:f4} {8,8:f1} "
      "{9,6:f1}% {10,8:f2} {11,9:f3}\n",
      rank, plan.getMesh() + (plan.sequenceParallel ? " sp" : ""),
      plan.microBatchSize, plan.microBatches, describeSchedule(plan),
      plan.zeroStage, describeRecompute(ranked), cost.stepTime,
      cost.tflopsPerDevice, 100.0 * cost.mfu, cost.peakMemory / kGiB,
      cost.communicatedBytes / 1e9);
}

llvm::json::Array getCollectivesJson(const PlanCost &cost) {
  llvm::json::Array collectives;
  for (const CollectiveCost &collective : cost.collectives)
    collectives.push_back(llvm::json::Object{{"name", collective.name},
                                             {"per_step", collective.count},
                                             {"bytes", collective.bytes},
                                             {"seconds", collective.seconds}});
  return collectives;
}

llvm::json::Object toJson(const RankedPlan &ranked) {
  const Plan &plan = ranked.plan;
  const PlanCost &cost = ranked.cost;
  return llvm::json::Object{
      {"mesh", llvm::json::Object{{"dp", plan.dp},
                                  {"tp", plan.tp},
                                  {"pp", plan.pp},
                                  {"order",
                                   plan.ppInsideDp ? "dp,pp,tp" : "pp,dp,tp"}}},
      {"micro_batch_size", plan.microBatchSize},
      {"micro_batches", plan.microBatches},
      {"schedule", pipeline::getScheduleName(plan.schedule)},
      {"virtual_stages", plan.virtualStages},
      {"zero_stage", plan.zeroStage},
      {"sequence_parallel", plan.sequenceParallel},
      {"recompute", !plan.recompute                ? "none"
                    : cost.recomputeLayers.empty() ? "full"
                                                   : "partial"},
      {"recompute_layers", llvm::json::Array(cost.recomputeLayers)},
      {"padded_vocab", cost.paddedVocab},
      {"layers_per_stage", llvm::json::Array(cost.layersPerStage)},
      {"collectives", getCollectivesJson(cost)},
      {"predicted", llvm::json::Object{
                        {"step_time_s", cost.stepTime},
                        {"tflops_per_gpu", cost.tflopsPerDevice},
                        {"mfu", cost.mfu},
                        {"peak_memory_bytes", cost.peakMemory},
                        {"communicated_bytes", cost.communicatedBytes},
                        {"breakdown_s",
                         llvm::json::Object{
                             {"compute", cost.compute},
                             {"recompute", cost.recompute},
                             {"tensor_parallel", cost.tensorParallel},
                             {"pipeline_transfers", cost.pipelineTransfers},
                             {"bubble", cost.bubble},
                             {"data_parallel", cost.dataParallel},
                             {"data_parallel_hidden", cost.dataParallelHidden},
                             {"optimizer", cost.optimizer}}}}}};
}

} // namespace

std::string mlir::cleave::getPrecisionAdvice(const Cluster &cluster,
                                             StringRef precision) {
  std::optional<double> bf16 = cluster.getPeakFlops("bf16");
  if (!bf16)
    return "";
  std::optional<double> f32 = cluster.getPeakFlops("f32");
  std::string peaks =
      f32 ? std::string(llvm::formatv("bf16 peak {0:f0} TFLOP/s against "
                                      "{1:f0} for f32",
                                      *bf16 / 1e12, *f32 / 1e12))
          : std::string(
                llvm::formatv("bf16 peak {0:f0} TFLOP/s", *bf16 / 1e12));
  if (precision == "f32")
    return "cleavec: precision: f32 gives the CPU's numbers; on " +
           cluster.name + " (" + peaks +
           ") train with --precision bf16 (f32 master weights and optimizer "
           "state), the recommended precision here\n";
  return "cleavec: precision: " + precision.str() + ", recommended on " +
         cluster.name + " (" + peaks +
         "); master weights and optimizer state stay f32\n";
}

void mlir::cleave::printPlanReport(const ModelProfile &model,
                                   const Cluster &cluster,
                                   const PlannerOptions &options,
                                   const SearchResult &result,
                                   const PlanReportOptions &report,
                                   llvm::raw_ostream &os) {
  int64_t batch = options.globalBatch > 0 ? options.globalBatch : model.batch;
  const RankedPlan &best = result.plans.front();
  const Plan &plan = best.plan;
  const PlanCost &cost = best.cost;
  os << llvm::formatv(
      "cleavec: model: {0} blocks, hidden {1}, {2} heads, vocabulary {3}, "
      "sequence {4}, {5:f1}M parameters{6}\n",
      model.layers, model.hidden, model.heads, model.vocab, model.seq,
      model.getParams() / 1e6, model.tiedEmbedding ? " (tied embedding)" : "");
  os << llvm::formatv("cleavec: cluster: {0} x {1} ({2}, {3} per node), "
                      "global batch {4}, {5}\n",
                      options.devices, cluster.deviceName, cluster.name,
                      cluster.devicesPerNode, batch, options.precision);
  os << getPrecisionAdvice(cluster, options.precision);
  os << llvm::formatv(
      "cleavec: chosen: mesh {0}{6}, micro-batches {1} x {2}, schedule {3}, "
      "ZeRO-{4}, recompute {5}\n",
      plan.getMesh(), plan.microBatchSize, plan.microBatches,
      describeSchedule(plan), plan.zeroStage,
      cost.recomputeLayers.empty()
          ? describeRecompute(best)
          : describeRecompute(best) +
                " blocks per pipeline rank (the first of each stage)",
      plan.sequenceParallel ? " with sequence parallelism" : "");
  if (plan.pp > 1) {
    os << "cleavec: stages: blocks per pipeline rank ";
    llvm::interleave(cost.layersPerStage, os, ",");
    os << (plan.virtualStages > 1 ? " (even: interleaved chunks)\n"
           : cost.stagesBalanced
               ? " (the stage DP's balance of time under the memory limit)\n"
               : " (even: no cut fits the memory limit)\n");
  }
  os << llvm::formatv(
      "cleavec: predicted: step {0:f4} s, {1:f1} TFLOP/s per device, MFU "
      "{2:f1}%, {3:f2} GiB per device, {4:f3} GB sent per device per step\n",
      cost.stepTime, cost.tflopsPerDevice, 100.0 * cost.mfu,
      cost.peakMemory / kGiB, cost.communicatedBytes / 1e9);
  os << llvm::formatv(
      "cleavec: why: the fastest of {0} plans that fit ({1} considered); its "
      "step: compute {2:f4} s, recompute {8:f4} s, tensor parallel {3:f4} s, "
      "pipeline transfers {4:f4} s, bubble {5:f4} s, data parallel {6:f4} s, "
      "optimizer {7:f4} s\n",
      result.plans.size(), result.considered, cost.compute, cost.tensorParallel,
      cost.pipelineTransfers, cost.bubble, cost.dataParallel, cost.optimizer,
      cost.recompute);
  bool oncePerStep =
      (plan.microBatches > 1 || plan.pp > 1) && plan.zeroStage <= 1;
  if (cost.dataParallelHidden > 0.0)
    os << llvm::formatv(
        "cleavec: overlap: {0}: {1:f4} s of it hidden (the cluster's overlap "
        "model); the step waits {2:f4} s for data parallelism\n",
        oncePerStep ? "one data-parallel reduction per step, in buckets "
                      "behind the last micro-batch's backward"
        : plan.zeroStage == 3
            ? "each micro-batch's gradient reduce-scatters behind its "
              "backward, its weight gathers a layer ahead"
            : "each micro-batch's gradient reductions behind its backward",
        cost.dataParallelHidden, cost.dataParallel);
  if (cost.paddedVocab != model.vocab)
    os << "cleavec: the vocabulary is padded from " << model.vocab << " to "
       << cost.paddedVocab << " (a multiple of 128 x tp, as Megatron-LM does): "
       << "build the model with --vocab-multiple " << 128 * plan.tp
       << " (the loss masks the padding classes) to run this plan\n";
  if (report.explain) {
    os << llvm::formatv(
        "cleavec: memory per device: weights {0:f2} GiB, gradients {1:f2} "
        "GiB, optimizer state {2:f2} GiB, activations {3:f2} GiB, workspace "
        "{4:f2} GiB\n",
        cost.weightsMemory / kGiB, cost.gradientsMemory / kGiB,
        cost.optimizerMemory / kGiB, cost.activationMemory / kGiB,
        cost.workspaceMemory / kGiB);
    os << llvm::formatv("cleavec: bubble: {0:f1}% of the pipeline's time\n",
                        100.0 * cost.bubbleFraction);
    for (const CollectiveCost &collective : cost.collectives)
      os << llvm::formatv("cleavec: collective: {0}: {1:f0} per step of {2:f3} "
                          "MB, {3:f4} s\n",
                          collective.name, collective.count,
                          collective.bytes / 1e6, collective.seconds);
  }
  os << llvm::formatv(
      "{0,4} {1,-20} {2,13} {3,-14} {4,4} {5,-9} {6,9} {7,8} {8,7} {9,8} "
      "{10,9}\n",
      "rank", "mesh", "micro-batches", "schedule", "zero", "recompute",
      "step s", "TFLOP/s", "MFU", "mem GiB", "comm GB");
  for (size_t i = 0; i < result.plans.size() &&
                     i <= static_cast<size_t>(report.alternatives);
       ++i)
    printRow(static_cast<int64_t>(i + 1), result.plans[i], os);
}

void mlir::cleave::printPlanJson(const ModelProfile &model,
                                 const Cluster &cluster,
                                 const PlannerOptions &options,
                                 const SearchResult &result,
                                 const PlanReportOptions &report,
                                 llvm::raw_ostream &os) {
  llvm::json::Object object = toJson(result.plans.front());
  llvm::json::Array alternatives;
  for (size_t i = 1; i < result.plans.size() &&
                     i <= static_cast<size_t>(report.alternatives);
       ++i)
    alternatives.push_back(toJson(result.plans[i]));
  object["alternatives"] = std::move(alternatives);
  object["cluster"] = cluster.name;
  object["devices"] = options.devices;
  object["global_batch"] =
      options.globalBatch > 0 ? options.globalBatch : model.batch;
  object["precision"] = options.precision;
  object["recommended_precision"] = cluster.getDefaultPrecision();
  object["plans_considered"] = result.considered;
  object["plans_fitting"] = static_cast<int64_t>(result.plans.size());
  os << llvm::formatv("{0:2}", llvm::json::Value(std::move(object))) << "\n";
}
