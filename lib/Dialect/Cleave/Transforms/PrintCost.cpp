//===- PrintCost.cpp - Print per-function cost reports --------------------===//

#include "cleave/Analysis/CostSummary.h"
#include "cleave/Dialect/Cleave/IR/CleaveOps.h"
#include "cleave/Dialect/Cleave/Transforms/Passes.h"

#include "mlir/Interfaces/FunctionInterfaces.h"
#include "llvm/Support/Format.h"
#include "llvm/Support/FormatVariadic.h"
#include "llvm/Support/JSON.h"
#include "llvm/Support/raw_ostream.h"

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

namespace {
struct PrintCostPass
    : public mlir::cleave::impl::CleavePrintCostBase<PrintCostPass> {
  using CleavePrintCostBase::CleavePrintCostBase;

  void runOnOperation() override {
    llvm::raw_ostream &os = llvm::outs();
    getOperation().walk([&](FunctionOpInterface function) {
      if (function.isExternal())
        return;
      CostSummary cost = computeCostSummary(function);
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
