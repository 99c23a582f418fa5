//===- GptModel.cpp - GPT-2 style decoder ---------------------------------===//
//
// Token + learned position embeddings, pre-LN blocks with causal multi-head
// attention and a GELU MLP (all linears with biases), a final layer norm and
// an LM head tied to the token embedding; mean token cross-entropy.
// Parameters: 12 l h^2 + 13 l h + (V + s) h + 2 h when ffn = 4 h.
//
//===----------------------------------------------------------------------===//

#include "ModelBuilder.h"

using namespace mlir;
using namespace mlir::cleave;

Value mlir::cleave::buildGptLoss(ModelBuilder &b) {
  const ModelConfig &c = b.getConfig();
  MLIRContext *context = b.getElementType().getContext();
  Type elementType = b.getElementType();
  int64_t h = c.hidden;

  auto [tokens, targets] = b.tokenInputs();

  b.setLayer(LayerAttr::getEmbed(context));
  b.setScope("embed");
  Value tokenTable = b.param("embed.tokens", {c.getPaddedVocab(), h});
  Value positionTable = b.param("embed.positions", {c.seq, h});
  Value x = b.create<EmbeddingOp>(tokenTable, tokens);
  Value positions = b.create<BroadcastOp>(
      RankedTensorType::get({c.batch, c.seq, h}, elementType), positionTable,
      ArrayRef<int64_t>{1, 2});
  x = b.create<AddOp>(x, positions);

  auto layerNorm = [&](Value input, const std::string &name) {
    Value scale = b.param(name + ".scale", {h}, b.getOnesInit());
    Value bias = b.param(name + ".bias", {h}, b.getZerosInit());
    return b.create<LayerNormOp>(input.getType(), input, scale, bias,
                                 llvm::APFloat(c.normEpsilon));
  };

  for (int64_t layer = 0; layer < c.layers; ++layer) {
    std::string prefix = "layers." + std::to_string(layer);
    b.setLayer(LayerAttr::get(context, layer));

    b.setScope(prefix + ".attn");
    Value normed = layerNorm(x, prefix + ".ln1");
    Value q = b.splitHeads(b.linear(normed, prefix + ".attn.q", h, h, true));
    Value k = b.splitHeads(b.linear(normed, prefix + ".attn.k", h, h, true));
    Value v = b.splitHeads(b.linear(normed, prefix + ".attn.v", h, h, true));
    Value attended = b.create<AttentionOp>(q, k, v,
                                           /*causal=*/true,
                                           /*scale=*/FloatAttr());
    Value projected = b.linear(b.mergeHeads(attended), prefix + ".attn.out", h,
                               h, true, b.getResidualInit());
    x = b.create<AddOp>(x, projected);

    b.setScope(prefix + ".mlp");
    normed = layerNorm(x, prefix + ".ln2");
    Value hidden = b.create<GeluOp>(
        b.linear(normed, prefix + ".mlp.fc", h, c.getFfn(), true));
    x = b.create<AddOp>(x, b.linear(hidden, prefix + ".mlp.proj", c.getFfn(), h,
                                    true, b.getResidualInit()));
  }

  b.setLayer(LayerAttr::getHead(context));
  b.setScope("head");
  x = layerNorm(x, "final_norm");
  Value logits = b.create<MatmulOp>(x, tokenTable, /*transposeLhs=*/false,
                                    /*transposeRhs=*/true);
  return b.meanCrossEntropy(logits, targets, c.vocab);
}
