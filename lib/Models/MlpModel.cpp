//===- MlpModel.cpp - Multi-layer perceptron classifier -------------------===//
//
// `layers` hidden linears of width `hidden` with biases and ReLU, then a
// linear head to `vocab` classes; mean cross-entropy over the batch. Inputs
// are features [batch, hidden] and class targets [batch].
//
//===----------------------------------------------------------------------===//

#include "ModelBuilder.h"

using namespace mlir;
using namespace mlir::cleave;

Value mlir::cleave::buildMlpLoss(ModelBuilder &b) {
  const ModelConfig &c = b.getConfig();
  MLIRContext *context = b.getElementType().getContext();
  Value x =
      b.input("features", {c.batch, c.hidden}, b.getElementType(),
              InputRole::Features);
  Value targets = b.input("targets", {c.batch}, IntegerType::get(context, 32),
                          InputRole::Targets);

  for (int64_t layer = 0; layer < c.layers; ++layer) {
    std::string name = "layers." + std::to_string(layer);
    b.setLayer(LayerAttr::get(context, layer));
    b.setScope(name);
    x = b.create<ReluOp>(b.linear(x, name, c.hidden, c.hidden, true));
  }

  b.setLayer(LayerAttr::getHead(context));
  b.setScope("head");
  Value logits = b.linear(x, "head", c.hidden, c.vocab, true);
  return b.meanCrossEntropy(logits, targets, c.vocab);
}
