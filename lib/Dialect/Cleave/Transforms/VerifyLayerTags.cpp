//===- VerifyLayerTags.cpp - Check layer provenance on every op -----------===//

#include "cleave/Dialect/Cleave/IR/CleaveOps.h"
#include "cleave/Dialect/Cleave/Transforms/Passes.h"

namespace mlir::cleave {
#define GEN_PASS_DEF_CLEAVEVERIFYLAYERTAGS
#include "cleave/Dialect/Cleave/Transforms/Passes.h.inc"
} // namespace mlir::cleave

using namespace mlir;
using namespace mlir::cleave;

namespace {
struct VerifyLayerTagsPass
    : public mlir::cleave::impl::CleaveVerifyLayerTagsBase<
          VerifyLayerTagsPass> {
  void runOnOperation() override {
    bool missing = false;
    getOperation().walk([&](Operation *op) {
      if (!isa_and_nonnull<CleaveDialect>(op->getDialect()))
        return;
      // Constants belong to no layer: folding materializes them anywhere, and
      // every consumer can rematerialize its own copy.
      if (op->hasTrait<OpTrait::ConstantLike>())
        return;
      if (op->hasAttr(CleaveDialect::kLayerAttrName))
        return;
      op->emitError("op has no '")
          << CleaveDialect::kLayerAttrName << "' layer tag";
      missing = true;
    });
    if (missing || failed(getDenseBlockCount(getOperation())))
      signalPassFailure();
    markAllAnalysesPreserved();
  }
};
} // namespace
