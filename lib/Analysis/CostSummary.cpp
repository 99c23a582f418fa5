//===- CostSummary.cpp - Whole-function cost totals -----------------------===//

#include "cleave/Analysis/CostSummary.h"
#include "cleave/Dialect/Cleave/IR/CleaveOps.h"

using namespace mlir;
using namespace mlir::cleave;

CostSummary mlir::cleave::computeCostSummary(FunctionOpInterface function) {
  CostSummary summary;
  for (unsigned i = 0, e = function.getNumArguments(); i < e; ++i) {
    if (!function.getArgAttr(i, CleaveDialect::kParamAttrName))
      continue;
    summary.params += getNumElements(function.getArgumentTypes()[i]);
  }
  function.walk([&](CostOpInterface op) {
    double flops = op.getFlops();
    double matmulFlops = op.getMatmulFlops();
    summary.flops += flops;
    summary.matmulFlops += matmulFlops;
    summary.bytesRead += op.getBytesRead();
    summary.activationBytes += op.getBytesWritten();
    summary.communicatedBytes += op.getCommunicatedBytes();
    OpKindCost &kind = summary.byOp[op->getName().getStringRef()];
    ++kind.count;
    kind.flops += flops;
    kind.matmulFlops += matmulFlops;
  });
  return summary;
}
