//===- ModelsTest.cpp - Model builders ------------------------------------===//

#include "cleave/Analysis/CostSummary.h"
#include "cleave/Dialect/Cleave/IR/CleaveOps.h"
#include "cleave/Models/Models.h"

#include "mlir/IR/MLIRContext.h"
#include "mlir/IR/Verifier.h"
#include "llvm/ADT/StringSet.h"

#include <gtest/gtest.h>

using namespace mlir;
using namespace mlir::cleave;

namespace {

struct BuiltModel {
  OwningOpRef<ModuleOp> module;
  func::FuncOp function;
};

BuiltModel build(MLIRContext &context, const ModelConfig &config) {
  BuiltModel result;
  result.module = ModuleOp::create(UnknownLoc::get(&context));
  result.function = buildModel(*result.module, config);
  return result;
}

ModelConfig gptConfig(int64_t layers, int64_t hidden, int64_t heads,
                      int64_t seq, int64_t vocab, int64_t batch) {
  ModelConfig config;
  config.family = ModelFamily::Gpt;
  config.layers = layers;
  config.hidden = hidden;
  config.heads = heads;
  config.seq = seq;
  config.vocab = vocab;
  config.batch = batch;
  return config;
}

TEST(ModelsTest, GptMatchesClosedForms) {
  MLIRContext context;
  for (const ModelConfig &c :
       {gptConfig(1, 8, 1, 1, 2, 1), gptConfig(2, 64, 4, 16, 256, 2),
        gptConfig(3, 96, 3, 37, 1001, 7), gptConfig(12, 768, 12, 1024, 50257, 1),
        gptConfig(4, 1024, 16, 128, 50304, 8)}) {
    ASSERT_FALSE(llvm::errorToBool(validateModelConfig(c)));
    BuiltModel model = build(context, c);
    ASSERT_TRUE(succeeded(verify(*model.module)));
    CostSummary cost = computeCostSummary(model.function);
    int64_t l = c.layers, h = c.hidden, s = c.seq, v = c.vocab, b = c.batch;
    EXPECT_EQ(cost.params, 12 * l * h * h + 13 * l * h + (v + s) * h + 2 * h);
    // Megatron: 24 B s l h^2 (1 + s / (6h)) + 2 B s h V; every term is an
    // integer below 2^53 here, so the double total must be exact.
    double megatron = 24.0 * b * s * l * h * h + 4.0 * b * s * s * l * h +
                      2.0 * b * s * h * v;
    EXPECT_EQ(cost.matmulFlops, megatron) << "layers " << l << " hidden " << h;
  }
}

TEST(ModelsTest, LlamaAndMlpParameterCounts) {
  MLIRContext context;
  ModelConfig llama;
  llama.family = ModelFamily::Llama;
  llama.layers = 3;
  llama.hidden = 64;
  llama.heads = 4;
  llama.vocab = 300;
  EXPECT_EQ(llama.getFfn(), 192); // 8/3 * 64 rounded up to 64.
  BuiltModel model = build(context, llama);
  ASSERT_TRUE(succeeded(verify(*model.module)));
  int64_t h = 64, f = 192, v = 300;
  EXPECT_EQ(computeCostSummary(model.function).params,
            2 * v * h + 3 * (4 * h * h + 3 * h * f + 2 * h) + h);

  ModelConfig mlp;
  mlp.family = ModelFamily::Mlp;
  mlp.layers = 2;
  mlp.hidden = 16;
  mlp.vocab = 10;
  model = build(context, mlp);
  ASSERT_TRUE(succeeded(verify(*model.module)));
  EXPECT_EQ(computeCostSummary(model.function).params,
            2 * (16 * 16 + 16) + 16 * 10 + 10);
}

TEST(ModelsTest, SignatureNamesAndLayerOrder) {
  MLIRContext context;
  for (ModelFamily family :
       {ModelFamily::Gpt, ModelFamily::Llama, ModelFamily::Mlp}) {
    ModelConfig config;
    config.family = family;
    config.layers = 3;
    BuiltModel model = build(context, config);
    func::FuncOp function = model.function;
    ASSERT_TRUE(succeeded(verify(*model.module)));

    // Parameters first, then the two named inputs; all names unique.
    llvm::StringSet<> names;
    unsigned numArgs = function.getNumArguments();
    for (unsigned i = 0; i < numArgs; ++i) {
      bool isInput = i + 2 >= numArgs;
      auto name = function.getArgAttrOfType<StringAttr>(
          i, isInput ? CleaveDialect::kInputAttrName
                     : CleaveDialect::kParamAttrName);
      ASSERT_TRUE(name) << "argument " << i;
      EXPECT_TRUE(names.insert(name.getValue()).second) << name.str();
    }
    EXPECT_TRUE(names.contains("targets"));

    // One scalar loss.
    ASSERT_EQ(function.getNumResults(), 1u);
    EXPECT_EQ(cast<RankedTensorType>(function.getResultTypes()[0]).getRank(),
              0);

    // Every op is tagged, and tags never go back in model order, which is
    // what pipeline stage cuts rely on.
    std::pair<int, int64_t> previous{-1, 0};
    int64_t blocksSeen = 0;
    function.walk([&](Operation *op) {
      if (!isa<CleaveDialect>(op->getDialect()))
        return;
      auto layer = op->getAttrOfType<LayerAttr>(CleaveDialect::kLayerAttrName);
      ASSERT_TRUE(layer) << op->getName().getStringRef().str();
      EXPECT_LE(previous, layer.getOrderKey());
      if (layer.getKind() == LayerKind::Block &&
          layer.getOrderKey() != previous)
        ++blocksSeen;
      previous = layer.getOrderKey();
    });
    EXPECT_EQ(blocksSeen, 3);
    EXPECT_EQ(previous.first, static_cast<int>(LayerKind::Head));
  }
}

TEST(ModelsTest, SixteenBitModelsComputeTheLossInF32) {
  MLIRContext context;
  ModelConfig config;
  config.dtype = "bf16";
  BuiltModel model = build(context, config);
  ASSERT_TRUE(succeeded(verify(*model.module)));
  EXPECT_TRUE(cast<RankedTensorType>(model.function.getResultTypes()[0])
                  .getElementType()
                  .isF32());
  EXPECT_TRUE(cast<RankedTensorType>(model.function.getArgumentTypes()[0])
                  .getElementType()
                  .isBF16());
}

TEST(ModelsTest, PresetsAndOverrides) {
  ModelConfig config;
  ASSERT_FALSE(llvm::errorToBool(applyPreset(config, "gpt2-xl")));
  EXPECT_EQ(config.layers, 48);
  EXPECT_EQ(config.hidden, 1600);
  EXPECT_EQ(config.heads, 25);
  EXPECT_EQ(config.getFfn(), 6400);
  EXPECT_EQ(config.vocab, 50257);

  ModelConfig llama;
  llama.family = ModelFamily::Llama;
  std::string message = llvm::toString(applyPreset(llama, "gpt2-small"));
  EXPECT_EQ(message, "preset 'gpt2-small' is a gpt model, not llama");
  message = llvm::toString(applyPreset(llama, "nope"));
  EXPECT_NE(message.find("unknown preset 'nope'"), std::string::npos);
  EXPECT_EQ(getPresetNames().size(), 10u);

  // Grouped-query presets set the key/value heads and the rotary base, and
  // Llama 3.1 its frequency scaling; a later preset resets what it omits.
  ASSERT_FALSE(static_cast<bool>(applyPreset(llama, "llama3.1-405b")));
  EXPECT_EQ(llama.getKvHeads(), 8);
  EXPECT_EQ(llama.ropeBase, 500000.0);
  EXPECT_EQ(llama.ropeScaling.factor, 8.0);
  EXPECT_EQ(llama.ropeScaling.originalMaxPositions, 8192);
  ASSERT_FALSE(static_cast<bool>(applyPreset(llama, "llama2-7b")));
  EXPECT_EQ(llama.getKvHeads(), 32);
  EXPECT_EQ(llama.ropeBase, 10000.0);
  EXPECT_EQ(llama.ropeScaling.factor, 0.0);
}

TEST(ModelsTest, InvalidConfigurationsNameTheField) {
  auto check = [](ModelConfig config, llvm::StringRef expected) {
    std::string message = llvm::toString(validateModelConfig(config));
    EXPECT_NE(message.find(expected.str()), std::string::npos)
        << "got: " << message;
  };
  ModelConfig config;
  config.heads = 3;
  check(config, "heads (3) must divide hidden (64)");
  config = ModelConfig();
  config.family = ModelFamily::Llama;
  config.kvHeads = 3;
  check(config, "kv-heads (3) must divide heads (4)");
  config.kvHeads = 2;
  config.family = ModelFamily::Gpt;
  check(config, "kv-heads (grouped-query attention) is for llama only");
  config = ModelConfig();
  config.family = ModelFamily::Llama;
  config.ropeScaling.factor = 8.0;
  config.ropeScaling.lowFreqFactor = 4.0;
  config.ropeScaling.highFreqFactor = 1.0;
  check(config, "0 < low_freq_factor < high_freq_factor");
  config = ModelConfig();
  config.seq = 0;
  check(config, "seq must be in [1, 2^31), got 0");
  config = ModelConfig();
  config.dtype = "int4";
  check(config, "dtype must be one of f64, f32, bf16, f16, got 'int4'");
  config = ModelConfig();
  config.family = ModelFamily::Llama;
  config.hidden = 12;
  config.heads = 4;
  check(config, "even head size");
  // heads is irrelevant to an MLP.
  config = ModelConfig();
  config.family = ModelFamily::Mlp;
  config.heads = 5;
  EXPECT_FALSE(llvm::errorToBool(validateModelConfig(config)));
}

} // namespace
