//===- LlamaModel.cpp - Llama style decoder -------------------------------===//
//
// Token embedding, pre-norm blocks with RMSNorm, rotary position embeddings
// on queries and keys, causal attention (grouped-query with kv < heads) and
// a SwiGLU MLP (no biases), a final RMSNorm and an untied LM head; mean
// token cross-entropy. With n heads of size d = h / n and kv key/value
// heads, parameters: 2 V h + l (2 h^2 + 2 h kv d + 3 h f + 2 h) + h.
//
//===----------------------------------------------------------------------===//

#include "ModelBuilder.h"

using namespace mlir;
using namespace mlir::cleave;

Value mlir::cleave::buildLlamaLoss(ModelBuilder &b) {
  const ModelConfig &c = b.getConfig();
  MLIRContext *context = b.getElementType().getContext();
  int64_t h = c.hidden;
  int64_t ffn = c.getFfn();
  int64_t kvHeads = c.getKvHeads();
  int64_t kvWidth = kvHeads * (h / c.heads);
  RopeScalingAttr scaling;
  if (c.ropeScaling.factor != 0.0)
    scaling = RopeScalingAttr::get(context, llvm::APFloat(c.ropeScaling.factor),
                                   llvm::APFloat(c.ropeScaling.lowFreqFactor),
                                   llvm::APFloat(c.ropeScaling.highFreqFactor),
                                   c.ropeScaling.originalMaxPositions);

  auto [tokens, targets] = b.tokenInputs();

  b.setLayer(LayerAttr::getEmbed(context));
  b.setScope("embed");
  Value x = b.create<EmbeddingOp>(
      b.param("embed.tokens", {c.getPaddedVocab(), h}), tokens);

  auto rmsNorm = [&](Value input, const std::string &name) {
    Value scale = b.param(name + ".scale", {h}, b.getOnesInit());
    return b.create<RmsNormOp>(input.getType(), input, scale,
                               llvm::APFloat(c.normEpsilon));
  };
  auto rotary = [&](Value input) {
    return b.create<RotaryOp>(input.getType(), input, llvm::APFloat(c.ropeBase),
                              /*inverse=*/false, scaling);
  };

  for (int64_t layer = 0; layer < c.layers; ++layer) {
    std::string prefix = "layers." + std::to_string(layer);
    b.setLayer(LayerAttr::get(context, layer));

    b.setScope(prefix + ".attn");
    Value normed = rmsNorm(x, prefix + ".attn_norm");
    Value q = rotary(
        b.splitHeads(b.linear(normed, prefix + ".attn.q", h, h, false)));
    Value k = rotary(b.splitHeads(
        b.linear(normed, prefix + ".attn.k", h, kvWidth, false), kvHeads));
    Value v = b.splitHeads(
        b.linear(normed, prefix + ".attn.v", h, kvWidth, false), kvHeads);
    Value attended = b.create<AttentionOp>(q, k, v,
                                           /*causal=*/true,
                                           /*scale=*/FloatAttr());
    x = b.create<AddOp>(x, b.linear(b.mergeHeads(attended), prefix + ".attn.o",
                                    h, h, false, b.getResidualInit()));

    b.setScope(prefix + ".mlp");
    normed = rmsNorm(x, prefix + ".mlp_norm");
    Value gate = b.create<SiluOp>(
        b.linear(normed, prefix + ".mlp.gate", h, ffn, false));
    Value up = b.linear(normed, prefix + ".mlp.up", h, ffn, false);
    Value hidden = b.create<MulOp>(gate, up);
    x = b.create<AddOp>(x, b.linear(hidden, prefix + ".mlp.down", ffn, h, false,
                                    b.getResidualInit()));
  }

  b.setLayer(LayerAttr::getHead(context));
  b.setScope("head");
  x = rmsNorm(x, "final_norm");
  Value logits = b.linear(x, "head", h, c.getPaddedVocab(), false);
  return b.meanCrossEntropy(logits, targets, c.vocab);
}
