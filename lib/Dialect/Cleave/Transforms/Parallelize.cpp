//===- Parallelize.cpp - Mesh, strategies, propagation, partitioning ------===//

#include "cleave/Dialect/Cleave/IR/CleaveOps.h"
#include "cleave/Dialect/Cleave/Transforms/Passes.h"
#include "cleave/Planner/Planner.h"

#include "mlir/Pass/PassManager.h"
#include "llvm/ADT/StringExtras.h"

namespace mlir::cleave {
#define GEN_PASS_DEF_CLEAVEPARALLELIZE
#include "cleave/Dialect/Cleave/Transforms/Passes.h.inc"
} // namespace mlir::cleave

using namespace mlir;
using namespace mlir::cleave;

namespace {

constexpr StringLiteral kMeshName = "mesh";

using MeshAxis = MeshAxisSpec;

FailureOr<SmallVector<MeshAxis>> parseMesh(ModuleOp module, StringRef text) {
  std::string message;
  FailureOr<SmallVector<MeshAxis>> axes = parseMeshSpec(text, message);
  if (failed(axes))
    return module.emitError("cleave-parallelize: ") << message;
  return axes;
}

/// Adds `cleave.mesh @mesh`, or checks that an existing one matches.
LogicalResult addMesh(ModuleOp module, ArrayRef<MeshAxis> axes) {
  Builder builder(module.getContext());
  SmallVector<StringRef> names =
      llvm::map_to_vector(axes, [](const MeshAxis &a) { return StringRef(a.name); });
  SmallVector<int64_t> sizes =
      llvm::map_to_vector(axes, [](const MeshAxis &a) { return a.size; });
  if (auto existing = module.lookupSymbol<MeshOp>(kMeshName)) {
    if (existing.getAxes() == builder.getStrArrayAttr(names) &&
        existing.getSizes() == ArrayRef<int64_t>(sizes))
      return success();
    return existing.emitError("cleave-parallelize: the module's @mesh differs "
                              "from the requested mesh");
  }
  OpBuilder top = OpBuilder::atBlockBegin(module.getBody());
  MeshOp::create(top, module.getLoc(), kMeshName, builder.getStrArrayAttr(names),
                 builder.getDenseI64ArrayAttr(sizes));
  return success();
}

struct CleaveParallelizePass
    : public cleave::impl::CleaveParallelizeBase<CleaveParallelizePass> {
  using Base::Base;

  /// Without a mesh: the strategies of the module's plan (recorded by
  /// cleave-auto-parallel or cleave-set-plan), on a @mesh of the axes the
  /// plan uses (added when missing); the pp axis is the pipeline passes' to
  /// use.
  LogicalResult readPlan(ModuleOp module, SmallVector<std::string> &strategies,
                         std::string &planCluster) {
    auto plan = module->getAttrOfType<PlanAttr>(CleaveDialect::kPlanAttrName);
    if (!plan)
      return module.emitError("cleave-parallelize needs a mesh, e.g. "
                              "mesh=dp=2,tp=2, or a plan (cleave.plan from "
                              "cleave-auto-parallel or cleave-set-plan)");
    strategies = plan.getShardingStrategies();
    planCluster = plan.getCluster().str();
    if (strategies.empty())
      return success();
    SmallVector<MeshAxis> used = plan.getUsedAxes();
    auto existing = module.lookupSymbol<MeshOp>(kMeshName);
    if (!existing)
      return addMesh(module, used);
    for (const MeshAxis &axis : used)
      if (existing.getAxisSize(axis.name) != axis.size)
        return existing.emitError("cleave-parallelize: the module's @mesh "
                                  "differs from the plan's mesh ")
               << formatMeshSpec(used);
    return success();
  }

  void runOnOperation() override {
    ModuleOp module = getOperation();
    SmallVector<std::string> strategies;
    std::string planCluster;
    if (module->hasAttr(CleaveDialect::kPlanAttrName) &&
        (!mesh.empty() || !strategy.empty())) {
      module.emitError("cleave-parallelize: the module has a plan "
                       "(cleave.plan); give neither mesh nor strategy");
      return signalPassFailure();
    }
    if (mesh.empty()) {
      if (failed(readPlan(module, strategies, planCluster)))
        return signalPassFailure();
      // Every axis of the plan is whole: nothing to split.
      if (strategies.empty())
        return;
      return runStrategies(module, strategies, planCluster);
    }
    FailureOr<SmallVector<MeshAxis>> axes = parseMesh(module, mesh);
    if (failed(axes) || failed(addMesh(module, *axes)))
      return signalPassFailure();

    if (strategy.empty()) {
      for (const MeshAxis &axis : *axes) {
        if (axis.name == "dp")
          strategies.push_back("dp");
        else if (axis.name == "tp")
          strategies.push_back("megatron");
        else {
          module.emitError("cleave-parallelize: axis '")
              << axis.name << "' has no canonical strategy (dp: data "
              << "parallel, tp: Megatron); name one with strategy=";
          return signalPassFailure();
        }
      }
    } else {
      for (const std::string &name : strategy) {
        if (StringRef(name).trim().empty()) {
          module.emitError("cleave-parallelize: an empty strategy in "
                           "strategy=");
          return signalPassFailure();
        }
        strategies.push_back(StringRef(name).trim().str());
      }
    }
    runStrategies(module, strategies, cluster);
  }

  void runStrategies(ModuleOp module, ArrayRef<std::string> strategies,
                     StringRef searchCluster) {
    OpPassManager pipeline(ModuleOp::getOperationName());
    for (const std::string &name : strategies) {
      if (name == "dp") {
        CleaveShardDataParallelOptions options;
        options.function = function;
        pipeline.addPass(createCleaveShardDataParallel(options));
      } else if (name == "megatron" || name == "megatron-sp") {
        CleaveShardMegatronOptions options;
        options.function = function;
        options.sequenceParallel = name == "megatron-sp";
        pipeline.addPass(createCleaveShardMegatron(options));
      } else if (name == "search") {
        CleaveSearchTensorShardingOptions options;
        options.function = function;
        if (!searchCluster.empty())
          options.cluster = searchCluster.str();
        pipeline.addPass(createCleaveSearchTensorSharding(options));
      } else if (name == "zero1" || name == "zero2" || name == "zero3") {
        CleaveShardZeroOptions options;
        options.function = function;
        options.stage = name.back() - '0';
        pipeline.addPass(createCleaveShardZero(options));
      } else {
        module.emitError("cleave-parallelize: unknown strategy '")
            << name
            << "' (dp, megatron, megatron-sp, search, zero1, zero2, zero3)";
        return signalPassFailure();
      }
    }
    pipeline.addNestedPass<func::FuncOp>(createCleavePropagateSharding());
    pipeline.addNestedPass<func::FuncOp>(createCleavePartition());
    if (failed(runPipeline(pipeline, module)))
      signalPassFailure();
  }
};

} // namespace
