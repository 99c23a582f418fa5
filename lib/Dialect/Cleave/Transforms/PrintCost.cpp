//===- PrintCost.cpp - Print per-function cost reports --------------------===//

#include "cleave/Analysis/CostSummary.h"
#include "cleave/Dialect/Cleave/IR/CleaveOps.h"
#include "cleave/Dialect/Cleave/Transforms/Passes.h"

#include "mlir/Dialect/Func/IR/FuncOps.h"
#include "mlir/Interfaces/FunctionInterfaces.h"
#include "llvm/Support/Format.h"
#include "llvm/Support/FormatVariadic.h"
#include "llvm/Support/JSON.h"
#include "llvm/Support/raw_ostream.h"

#include <map>
#include <set>

namespace mlir::cleave {
#define GEN_PASS_DEF_CLEAVEPRINTCOST
#include "cleave/Dialect/Cleave/Transforms/Passes.h.inc"
} // namespace mlir::cleave

using namespace mlir;
using namespace mlir::cleave;

/// A non-negative whole number with thousands separators: 124,439,808.
static std::string withSeparators(double value) {
  std::string digits = llvm::formatv("{0:F0}", value).str();
  std::string out;
  for (size_t i = 0; i < digits.size(); ++i) {
    if (i > 0 && (digits.size() - i) % 3 == 0)
      out += ',';
    out += digits[i];
  }
  return out;
}

/// A double that holds a whole number, printed exactly (no exponent), so
/// that exact counts can be compared as text.
static void printWholeNumber(llvm::raw_ostream &os, double value) {
  os << llvm::format("%.0f", value);
}

static void printJson(llvm::raw_ostream &os, StringRef name,
                      const CostSummary &cost) {
  // Numbers are written by hand: llvm::json prints doubles with %g and would
  // round large FLOP counts.
  os << "{\"function\": ";
  os << llvm::json::Value(name.str());
  for (auto [key, value] :
       {std::pair("params", cost.params), std::pair("flops", cost.flops),
        std::pair("matmul_flops", cost.matmulFlops),
        std::pair("activation_bytes", cost.activationBytes),
        std::pair("bytes_read", cost.bytesRead),
        std::pair("comm_bytes", cost.communicatedBytes)}) {
    os << ", \"" << key << "\": ";
    printWholeNumber(os, value);
  }
  os << ", \"ops\": {";
  llvm::interleaveComma(cost.byOp, os, [&](const auto &entry) {
    os << llvm::json::Value(entry.first.str()) << ": {\"count\": "
       << entry.second.count << ", \"flops\": ";
    printWholeNumber(os, entry.second.flops);
    os << "}";
  });
  os << "}}\n";
}

static void printTable(llvm::raw_ostream &os, StringRef name,
                       const CostSummary &cost) {
  auto row = [&](StringRef label, StringRef count, double value) {
    os << "  " << llvm::left_justify(label, 24) << llvm::right_justify(count, 8)
       << llvm::right_justify(withSeparators(value), 32) << "\n";
  };
  os << "cost of @" << name << "\n";
  os << "  " << llvm::left_justify("parameters", 24)
     << llvm::right_justify(withSeparators(cost.params), 40) << "\n";
  os << "  " << llvm::left_justify("activation bytes", 24)
     << llvm::right_justify(withSeparators(cost.activationBytes), 40) << "\n";
  // Only partitioned programs communicate: the row appears when they do.
  if (cost.communicatedBytes > 0)
    os << "  " << llvm::left_justify("communicated bytes", 24)
       << llvm::right_justify(withSeparators(cost.communicatedBytes), 40)
       << "\n";
  os << "  " << llvm::left_justify("op", 24) << llvm::right_justify("count", 8)
     << llvm::right_justify("FLOPs", 32) << "\n";
  for (const auto &[opName, kind] : cost.byOp)
    row(opName, std::to_string(kind.count), kind.flops);
  row("matmul FLOPs", "", cost.matmulFlops);
  row("total FLOPs", "", cost.flops);
}

static double getTensorBytes(Type type) {
  auto tensor = cast<RankedTensorType>(type);
  return static_cast<double>(tensor.getNumElements()) *
         tensor.getElementTypeBitWidth() / 8.0;
}

/// Bytes each pp rank of a pipelined program sends per step for parameters
/// that stages on several ranks share (a tied embedding). The pipeline
/// runtime exchanges them around the update, so they count with the update
/// of the sending rank: each rank whose backward computes a part of such a
/// parameter's gradient sends it to the rank whose update applies the
/// parameter, which sends the new value to every other rank reading it.
static std::map<int64_t, double> getSharedParameterBytes(ModuleOp module) {
  std::map<std::string, std::pair<int64_t, double>> owners; // rank, bytes
  int64_t ranks = 0;
  for (auto function : module.getOps<func::FuncOp>()) {
    auto rank = function->getAttrOfType<IntegerAttr>(
        CleaveDialect::kPipelineRankAttrName);
    if (!rank || getFunctionRole(function) != FunctionRole::Update)
      continue;
    ranks = std::max(ranks, rank.getInt() + 1);
    for (BlockArgument arg : function.getArguments())
      if (auto name = function.getArgAttrOfType<StringAttr>(
              arg.getArgNumber(), CleaveDialect::kParamAttrName))
        owners[name.str()] = {rank.getInt(), getTensorBytes(arg.getType())};
  }
  std::map<int64_t, double> sent;
  if (ranks < 2)
    return sent;
  std::map<std::string, std::set<int64_t>> readers, computers;
  std::map<std::string, double> gradientBytes;
  for (auto function : module.getOps<func::FuncOp>()) {
    std::optional<FunctionRole> role = getFunctionRole(function);
    auto stage =
        function->getAttrOfType<IntegerAttr>(CleaveDialect::kStageAttrName);
    if (!stage || (role != FunctionRole::StageForward &&
                   role != FunctionRole::StageBackward))
      continue;
    int64_t rank = stage.getInt() % ranks;
    for (BlockArgument arg : function.getArguments())
      if (auto name = function.getArgAttrOfType<StringAttr>(
              arg.getArgNumber(), CleaveDialect::kParamAttrName))
        readers[name.str()].insert(rank);
    for (unsigned i = 0; i < function.getNumResults(); ++i) {
      auto output = function.getResultAttrOfType<StringAttr>(
          i, CleaveDialect::kOutputAttrName);
      if (!output || !hasOutputRole(function, i, OutputRole::Gradient))
        continue;
      std::string param = getGradientParam(output.getValue()).str();
      computers[param].insert(rank);
      gradientBytes[param] = getTensorBytes(function.getResultTypes()[i]);
    }
  }
  for (const auto &[name, reading] : readers) {
    auto owner = owners.find(name);
    if (owner == owners.end())
      continue;
    auto [ownerRank, bytes] = owner->second;
    for (int64_t rank : reading)
      if (rank != ownerRank)
        sent[ownerRank] += bytes;
    auto computing = computers.find(name);
    if (computing == computers.end() || computing->second.size() < 2)
      continue;
    for (int64_t rank : computing->second)
      if (rank != ownerRank)
        sent[rank] += gradientBytes[name];
  }
  return sent;
}

/// Bytes each pp rank sends per step completing the pending sums its stage
/// programs return (cleave-defer-gradient-reduction): the training loop
/// reduces each once per step, so they count with the rank's update. A sum
/// the update takes a block of is reduce-scattered, any other all-reduced.
static std::map<int64_t, double> getDeferredSumBytes(ModuleOp module) {
  std::map<int64_t, double> sent;
  int64_t ranks = 1;
  if (auto schedule =
          module->getAttrOfType<ScheduleAttr>(CleaveDialect::kScheduleAttrName))
    ranks = schedule.getRanks();
  for (auto function : module.getOps<func::FuncOp>()) {
    auto stage =
        function->getAttrOfType<IntegerAttr>(CleaveDialect::kStageAttrName);
    if (!stage)
      continue;
    for (unsigned i = 0; i < function.getNumResults(); ++i) {
      auto block = function.getResultAttrOfType<ShardingAttr>(
          i, CleaveDialect::kBlockAttrName);
      if (!block || block.getPartialAxes().empty())
        continue;
      auto mesh = SymbolTable::lookupNearestSymbolFrom<MeshOp>(function,
                                                               block.getMesh());
      int64_t group = 1;
      for (StringRef axis : block.getPartialAxes())
        group *= mesh ? mesh.getAxisSize(axis).value_or(1) : 1;
      double share = group <= 1 ? 0.0 : double(group - 1) / group;
      bool scattered = static_cast<bool>(
          function.getResultAttr(i, CleaveDialect::kScatterDimAttrName));
      sent[stage.getInt() % ranks] +=
          (scattered ? 1.0 : 2.0) * share *
          getTensorBytes(function.getResultTypes()[i]);
    }
  }
  return sent;
}

namespace {
struct PrintCostPass
    : public mlir::cleave::impl::CleavePrintCostBase<PrintCostPass> {
  using CleavePrintCostBase::CleavePrintCostBase;

  void runOnOperation() override {
    llvm::raw_ostream &os = llvm::outs();
    std::map<int64_t, double> shared = getSharedParameterBytes(getOperation());
    for (auto [rank, bytes] : getDeferredSumBytes(getOperation()))
      shared[rank] += bytes;
    getOperation().walk([&](FunctionOpInterface function) {
      if (function.isExternal())
        return;
      CostSummary cost = computeCostSummary(function);
      if (auto rank = function->getAttrOfType<IntegerAttr>(
              CleaveDialect::kPipelineRankAttrName))
        cost.communicatedBytes += shared[rank.getInt()];
      if (json)
        printJson(os, function.getName(), cost);
      else
        printTable(os, function.getName(), cost);
    });
    os.flush();
    markAllAnalysesPreserved();
  }
};
} // namespace
