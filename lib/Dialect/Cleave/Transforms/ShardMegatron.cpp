//===- ShardMegatron.cpp - Megatron-LM tensor parallelism -----------------===//
//
// Column splits for the projections into heads and into the MLP, row splits
// for the projections back, vocabulary splits for the embedding and output
// head: matched by the parameter names of the reference models.
//
//===----------------------------------------------------------------------===//

#include "cleave/Dialect/Cleave/Transforms/Passes.h"

#include "FunctionLookup.h"
#include "ShardingStrategy.h"

namespace mlir::cleave {
#define GEN_PASS_DEF_CLEAVESHARDMEGATRON
#include "cleave/Dialect/Cleave/Transforms/Passes.h.inc"
} // namespace mlir::cleave

using namespace mlir;
using namespace mlir::cleave;

namespace {

struct ParameterSplit {
  StringLiteral suffix;
  int64_t dim;
};

// Weights are [in, out]: a column split cuts `out` (dimension 1), a row split
// `in` (dimension 0); the embedding is [vocab, hidden], the head [hidden,
// vocab].
constexpr ParameterSplit kSplits[] = {
    {"attn.q.weight", 1},    {"attn.k.weight", 1},    {"attn.v.weight", 1},
    {"attn.q.bias", 0},      {"attn.k.bias", 0},      {"attn.v.bias", 0},
    {"mlp.fc.weight", 1},    {"mlp.fc.bias", 0},      {"mlp.gate.weight", 1},
    {"mlp.up.weight", 1},    {"attn.out.weight", 0},  {"attn.o.weight", 0},
    {"mlp.proj.weight", 0},  {"mlp.down.weight", 0},  {"embed.tokens", 0},
    {"head.weight", 1},
};

std::optional<int64_t> getSplitDim(StringRef name) {
  for (const ParameterSplit &split : kSplits)
    if (name == split.suffix ||
        (name.ends_with(split.suffix) &&
         name.drop_back(split.suffix.size()).ends_with(".")))
      return split.dim;
  return std::nullopt;
}

struct CleaveShardMegatronPass
    : public cleave::impl::CleaveShardMegatronBase<CleaveShardMegatronPass> {
  using Base::Base;

  void runOnOperation() override {
    ModuleOp module = getOperation();
    func::FuncOp step = lookupFunctionWithBody(module, function,
                                               "to split over tensor parallelism");
    if (!step)
      return signalPassFailure();
    FailureOr<StrategyAxis> split = findStrategyAxis(module, axis, "Megatron");
    if (failed(split))
      return signalPassFailure();
    // Heads are the unit of an attention split.
    WalkResult heads = step.walk([&](AttentionOp attention) {
      auto query = attention.getQuery().getType();
      if (query.getRank() < 4 || query.getDimSize(1) % split->size == 0)
        return WalkResult::advance();
      attention.emitError() << query.getDimSize(1) << " attention heads do not "
                            << "split over " << axis << "=" << split->size;
      return WalkResult::interrupt();
    });
    if (heads.wasInterrupted())
      return signalPassFailure();
    bool matched = false;
    for (unsigned i = 0; i < step.getNumArguments(); ++i) {
      auto name = step.getArgAttrOfType<StringAttr>(i, CleaveDialect::kParamAttrName);
      std::optional<int64_t> dim = name ? getSplitDim(name.getValue()) : std::nullopt;
      if (!dim)
        continue;
      matched = true;
      if (failed(constrainArgument(step, i, *dim, *split, priority)))
        return signalPassFailure();
    }
    if (!matched) {
      step.emitError("no parameter has a name the Megatron strategy splits "
                     "(e.g. 'layers.0.attn.q.weight', see docs/models.md)");
      return signalPassFailure();
    }
  }
};

} // namespace
