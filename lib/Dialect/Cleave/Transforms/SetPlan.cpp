//===- SetPlan.cpp - Record the plan a person asked for -------------------===//

#include "cleave/Dialect/Cleave/IR/CleaveOps.h"
#include "cleave/Dialect/Cleave/Transforms/Passes.h"

#include "llvm/ADT/StringMap.h"
#include "llvm/ADT/StringSet.h"

namespace mlir::cleave {
#define GEN_PASS_DEF_CLEAVESETPLAN
#include "cleave/Dialect/Cleave/Transforms/Passes.h.inc"
} // namespace mlir::cleave

using namespace mlir;
using namespace mlir::cleave;

namespace {

/// The mesh axis a strategy partitions over.
StringRef getStrategyAxis(StringRef strategy) {
  if (strategy == "dp" || strategy == "zero1" || strategy == "zero2" ||
      strategy == "zero3")
    return "dp";
  if (strategy == "megatron" || strategy == "megatron-sp" ||
      strategy == "search")
    return "tp";
  return "";
}

struct SetPlanPass : public cleave::impl::CleaveSetPlanBase<SetPlanPass> {
  using Base::Base;

  void runOnOperation() override {
    ModuleOp module = getOperation();
    if (failed(verifyUnplanned(module, getArgument())))
      return signalPassFailure();
    std::string message;
    FailureOr<SmallVector<MeshAxisSpec>> axes =
        mesh.empty() ? SmallVector<MeshAxisSpec>()
                     : parseMeshSpec(mesh, message);
    if (failed(axes)) {
      module.emitError("cleave-set-plan: ") << message;
      return signalPassFailure();
    }
    // Each axis's canonical strategy, then the ones the options name.
    llvm::StringMap<std::string> byAxis;
    for (const MeshAxisSpec &axis : *axes)
      byAxis[axis.name] = axis.name == "dp"   ? "dp"
                          : axis.name == "tp" ? "megatron"
                          : axis.name == "pp" ? "pipeline"
                                              : "";
    llvm::StringSet<> named;
    for (StringRef name : strategy) {
      name = name.trim();
      StringRef axis = getStrategyAxis(name);
      if (axis.empty()) {
        module.emitError("cleave-set-plan: unknown strategy '")
            << name
            << "' (dp, zero1, zero2, zero3, megatron, megatron-sp, search)";
        return signalPassFailure();
      }
      if (!byAxis.count(axis)) {
        module.emitError("cleave-set-plan: strategy '")
            << name << "' needs a " << axis << " axis in the mesh";
        return signalPassFailure();
      }
      // `dp,zeroN` spells ZeRO's data parallelism too.
      if (!named.insert(axis).second &&
          !(byAxis[axis] == "dp" && name.starts_with("zero"))) {
        module.emitError("cleave-set-plan: two strategies for the ")
            << axis << " axis: " << byAxis[axis] << " and " << name;
        return signalPassFailure();
      }
      byAxis[axis] = name.str();
    }
    Builder builder(module.getContext());
    SmallVector<Attribute> strategies;
    int64_t zeroStage = 0;
    for (const MeshAxisSpec &axis : *axes) {
      StringRef chosen = byAxis[axis.name];
      if (chosen.starts_with("zero"))
        zeroStage = chosen.back() - '0';
      // An unknown axis: the plan's verifier names the axes it takes.
      strategies.push_back(
          builder.getStringAttr(chosen.empty() ? "none" : chosen));
    }
    DenseI64ArrayAttr layers;
    if (!layersPerStage.empty())
      layers = builder.getDenseI64ArrayAttr(
          SmallVector<int64_t>(layersPerStage.begin(), layersPerStage.end()));
    DenseI64ArrayAttr recomputed;
    if (!recomputeLayers.empty())
      recomputed = builder.getDenseI64ArrayAttr(
          SmallVector<int64_t>(recomputeLayers.begin(), recomputeLayers.end()));
    auto emitError = [&] { return module.emitError("cleave-set-plan: "); };
    PlanAttr plan = PlanAttr::getChecked(
        emitError, module.getContext(), StringRef(mesh),
        builder.getArrayAttr(strategies), /*micro_batch_size=*/int64_t(0),
        int64_t(microBatches), StringRef(schedule), int64_t(virtualStages),
        layers, int64_t(zeroStage), bool(recompute), recomputed,
        StringRef(precision),
        /*padded_vocab=*/int64_t(0), StringRef(cluster), FloatAttr(),
        FloatAttr(), FloatAttr());
    if (!plan)
      return signalPassFailure();
    module->setAttr(CleaveDialect::kPlanAttrName, plan);
  }
};

} // namespace
