//===- ModelBuilder.cpp - Configs, presets and shared builder helpers -----===//

#include "ModelBuilder.h"

#include "llvm/ADT/StringSwitch.h"

#include <cmath>

using namespace mlir;
using namespace mlir::cleave;

//===----------------------------------------------------------------------===//
// Configurations and presets
//===----------------------------------------------------------------------===//

std::optional<ModelFamily> mlir::cleave::parseModelFamily(StringRef name) {
  return llvm::StringSwitch<std::optional<ModelFamily>>(name)
      .Case("gpt", ModelFamily::Gpt)
      .Case("llama", ModelFamily::Llama)
      .Case("mlp", ModelFamily::Mlp)
      .Default(std::nullopt);
}

StringRef mlir::cleave::getModelFamilyName(ModelFamily family) {
  switch (family) {
  case ModelFamily::Gpt:
    return "gpt";
  case ModelFamily::Llama:
    return "llama";
  case ModelFamily::Mlp:
    return "mlp";
  }
  llvm_unreachable("unknown model family");
}

int64_t ModelConfig::getFfn() const {
  if (ffn != 0)
    return ffn;
  if (family == ModelFamily::Llama)
    return llvm::alignTo((8 * hidden + 2) / 3, 64);
  return 4 * hidden;
}

int64_t ModelConfig::getPaddedVocab() const {
  return llvm::alignTo(vocab, vocabMultiple);
}

namespace {
struct Preset {
  StringRef name;
  ModelFamily family;
  int64_t layers, hidden, heads, ffn, seq, vocab;
  /// llama: key/value heads (0: as many as heads), rotary base, norm
  /// epsilon and Llama 3.1's frequency scaling factor (0: none).
  int64_t kvHeads = 0;
  double ropeBase = 10000.0, normEpsilon = 1e-5, ropeScalingFactor = 0.0;
};
} // namespace

// Public configurations: the GPT-2 and GPT-3 papers; the Llama 2, Llama 3,
// Llama 3.1 and Mistral 7B releases (their Hugging Face config.json files;
// `seq` is the context length they were trained at).
static constexpr Preset kPresets[] = {
    {"gpt2-small", ModelFamily::Gpt, 12, 768, 12, 3072, 1024, 50257},
    {"gpt2-medium", ModelFamily::Gpt, 24, 1024, 16, 4096, 1024, 50257},
    {"gpt2-large", ModelFamily::Gpt, 36, 1280, 20, 5120, 1024, 50257},
    {"gpt2-xl", ModelFamily::Gpt, 48, 1600, 25, 6400, 1024, 50257},
    {"gpt3-175b", ModelFamily::Gpt, 96, 12288, 96, 49152, 2048, 50257},
    {"llama2-7b", ModelFamily::Llama, 32, 4096, 32, 11008, 4096, 32000},
    {"llama3-8b", ModelFamily::Llama, 32, 4096, 32, 14336, 8192, 128256, 8,
     500000.0},
    {"llama3-70b", ModelFamily::Llama, 80, 8192, 64, 28672, 8192, 128256, 8,
     500000.0},
    {"llama3.1-405b", ModelFamily::Llama, 126, 16384, 128, 53248, 8192, 128256,
     8, 500000.0, 1e-5, 8.0},
    {"mistral-7b", ModelFamily::Llama, 32, 4096, 32, 14336, 4096, 32000, 8,
     10000.0},
};

ArrayRef<StringRef> mlir::cleave::getPresetNames() {
  static const SmallVector<StringRef> names = [] {
    SmallVector<StringRef> result;
    for (const Preset &preset : kPresets)
      result.push_back(preset.name);
    return result;
  }();
  return names;
}

llvm::Error mlir::cleave::applyPreset(ModelConfig &config, StringRef name) {
  for (const Preset &preset : kPresets) {
    if (preset.name != name)
      continue;
    if (preset.family != config.family)
      return llvm::createStringError(
          "preset '%s' is a %s model, not %s", name.str().c_str(),
          getModelFamilyName(preset.family).str().c_str(),
          getModelFamilyName(config.family).str().c_str());
    config.layers = preset.layers;
    config.hidden = preset.hidden;
    config.heads = preset.heads;
    config.ffn = preset.ffn;
    config.seq = preset.seq;
    config.vocab = preset.vocab;
    config.kvHeads = preset.kvHeads;
    config.ropeBase = preset.ropeBase;
    config.normEpsilon = preset.normEpsilon;
    config.ropeScaling = ModelConfig::RopeScaling();
    config.ropeScaling.factor = preset.ropeScalingFactor;
    return llvm::Error::success();
  }
  std::string known;
  llvm::raw_string_ostream os(known);
  llvm::interleaveComma(getPresetNames(), os);
  return llvm::createStringError("unknown preset '%s' (known: %s)",
                                 name.str().c_str(), known.c_str());
}

llvm::Error mlir::cleave::validateModelConfig(const ModelConfig &config) {
  // Sizes stay far below int64 limits even when multiplied together.
  constexpr int64_t kMaxSize = int64_t(1) << 31;
  // mlp uses neither heads nor ffn.
  bool isMlp = config.family == ModelFamily::Mlp;
  struct Field {
    StringRef name;
    int64_t value;
    bool used;
  } fields[] = {{"layers", config.layers, true},
                {"hidden", config.hidden, true},
                {"heads", config.heads, !isMlp},
                {"ffn", config.getFfn(), !isMlp},
                {"seq", config.seq, true},
                {"vocab", config.vocab, true},
                {"batch", config.batch, true}};
  for (const Field &field : fields)
    if (field.used && (field.value < 1 || field.value >= kMaxSize))
      return llvm::createStringError("%s must be in [1, 2^31), got %lld",
                                     field.name.str().c_str(),
                                     static_cast<long long>(field.value));
  if (config.family != ModelFamily::Mlp && config.hidden % config.heads != 0)
    return llvm::createStringError(
        "heads (%lld) must divide hidden (%lld)",
        static_cast<long long>(config.heads),
        static_cast<long long>(config.hidden));
  if (config.kvHeads != 0 && config.family != ModelFamily::Llama)
    return llvm::createStringError(
        "kv-heads (grouped-query attention) is for llama only");
  if (config.kvHeads < 0 || config.kvHeads > config.heads ||
      (config.kvHeads != 0 && config.heads % config.kvHeads != 0))
    return llvm::createStringError("kv-heads (%lld) must divide heads (%lld)",
                                   static_cast<long long>(config.kvHeads),
                                   static_cast<long long>(config.heads));
  if (config.family == ModelFamily::Llama &&
      (config.hidden / config.heads) % 2 != 0)
    return llvm::createStringError(
        "llama needs an even head size for rotary embeddings, got "
        "hidden / heads = %lld",
        static_cast<long long>(config.hidden / config.heads));
  // The largest activations are the logits [batch, seq, vocab] and the MLP
  // hidden state [batch, seq, ffn].
  double tokens = static_cast<double>(config.batch) * config.seq;
  if (tokens * config.vocab >= 0x1p62)
    return llvm::createStringError(
        "batch * seq * vocab = %.0f elements is too large",
        tokens * config.vocab);
  if (!isMlp && tokens * config.getFfn() >= 0x1p62)
    return llvm::createStringError(
        "batch * seq * ffn = %.0f elements is too large",
        tokens * config.getFfn());
  constexpr int64_t kMaxVocabMultiple = 1 << 16;
  if (config.vocabMultiple < 1 || config.vocabMultiple > kMaxVocabMultiple)
    return llvm::createStringError(
        "vocab-multiple must be in [1, %lld], got %lld",
        static_cast<long long>(kMaxVocabMultiple),
        static_cast<long long>(config.vocabMultiple));
  if (isMlp && config.vocabMultiple != 1)
    return llvm::createStringError(
        "vocab-multiple pads a token vocabulary: gpt and llama only");
  if (config.dtype != "f64" && config.dtype != "f32" &&
      config.dtype != "bf16" && config.dtype != "f16")
    return llvm::createStringError(
        "dtype must be one of f64, f32, bf16, f16, got '%s'",
        config.dtype.c_str());
  if (!(config.normEpsilon >= 0.0) || std::isinf(config.normEpsilon))
    return llvm::createStringError(
        "norm epsilon must be finite and non-negative");
  if (!(config.ropeBase > 0.0) || std::isinf(config.ropeBase))
    return llvm::createStringError("rope theta must be finite and positive");
  const ModelConfig::RopeScaling &scaling = config.ropeScaling;
  if (scaling.factor != 0.0) {
    if (config.family != ModelFamily::Llama)
      return llvm::createStringError(
          "rope scaling is for llama's rotary embedding only");
    if (!(scaling.factor > 0.0) || std::isinf(scaling.factor) ||
        !(scaling.lowFreqFactor > 0.0) ||
        !(scaling.highFreqFactor > scaling.lowFreqFactor) ||
        std::isinf(scaling.highFreqFactor) || scaling.originalMaxPositions < 1)
      return llvm::createStringError(
          "rope scaling needs a positive finite factor, 0 < low_freq_factor "
          "< high_freq_factor and positive original_max_position_embeddings");
  }
  return llvm::Error::success();
}

//===----------------------------------------------------------------------===//
// ModelBuilder
//===----------------------------------------------------------------------===//

static Type parseElementType(MLIRContext *context, StringRef dtype) {
  return llvm::StringSwitch<Type>(dtype)
      .Case("f64", Float64Type::get(context))
      .Case("bf16", BFloat16Type::get(context))
      .Case("f16", Float16Type::get(context))
      .Default(Float32Type::get(context));
}

ModelBuilder::ModelBuilder(ModuleOp module, const ModelConfig &config)
    : config(config), builder(module.getContext()),
      elementType(parseElementType(module.getContext(), config.dtype)),
      location(builder.getUnknownLoc()),
      currentLayer(LayerAttr::getEmbed(module.getContext())) {
  builder.setInsertionPointToEnd(module.getBody());
  function = func::FuncOp::create(builder, builder.getUnknownLoc(), "forward",
                                  builder.getFunctionType({}, {}));
  body = function.addEntryBlock();
  builder.setInsertionPointToStart(body);
}

Type ModelBuilder::getLossElementType() const {
  if (elementType.isF64())
    return elementType;
  return Float32Type::get(elementType.getContext());
}

void ModelBuilder::setScope(StringRef scope) {
  location = NameLoc::get(builder.getStringAttr(scope));
}

InitAttr ModelBuilder::getNormalInit() const {
  return InitAttr::get(builder.getContext(), InitKind::Normal, 0.02);
}

InitAttr ModelBuilder::getZerosInit() const {
  return InitAttr::get(builder.getContext(), InitKind::Zeros);
}

InitAttr ModelBuilder::getOnesInit() const {
  return InitAttr::get(builder.getContext(), InitKind::Ones);
}

InitAttr ModelBuilder::getResidualInit() const {
  return InitAttr::get(
      builder.getContext(), InitKind::Normal,
      0.02 / std::sqrt(2.0 * static_cast<double>(
                                 std::max<int64_t>(config.layers, 1))));
}

Value ModelBuilder::param(StringRef name, ArrayRef<int64_t> shape,
                          InitAttr init) {
  Location loc = NameLoc::get(builder.getStringAttr(name));
  unsigned index = numParams++;
  params.push_back({index, name.str(), init ? init : getNormalInit()});
  return body->insertArgument(index, RankedTensorType::get(shape, elementType),
                              loc);
}

Value ModelBuilder::input(StringRef name, ArrayRef<int64_t> shape,
                          Type inputElementType, InputRole role) {
  inputs.push_back({name.str(), role});
  return body->addArgument(RankedTensorType::get(shape, inputElementType),
                           NameLoc::get(builder.getStringAttr(name)));
}

std::pair<Value, Value> ModelBuilder::tokenInputs() {
  Type i32 = IntegerType::get(elementType.getContext(), 32);
  Value tokens =
      input("tokens", {config.batch, config.seq}, i32, InputRole::Tokens);
  Value targets =
      input("targets", {config.batch, config.seq}, i32, InputRole::Targets);
  return {tokens, targets};
}

Value ModelBuilder::broadcastLastDim(Value vector, Value like) {
  auto likeType = cast<RankedTensorType>(like.getType());
  return create<BroadcastOp>(likeType, vector,
                             ArrayRef<int64_t>{likeType.getRank() - 1});
}

Value ModelBuilder::linear(Value x, StringRef name, int64_t in, int64_t out,
                           bool bias, InitAttr weightInit) {
  Value weight = param((name + ".weight").str(), {in, out}, weightInit);
  Value y = create<MatmulOp>(x, weight);
  if (!bias)
    return y;
  Value b = param((name + ".bias").str(), {out}, getZerosInit());
  return create<AddOp>(y, broadcastLastDim(b, y));
}

Value ModelBuilder::splitHeads(Value x, int64_t nh) {
  int64_t b = config.batch, s = config.seq;
  int64_t hd = config.hidden / config.heads;
  Value split = create<ReshapeOp>(
      RankedTensorType::get({b, s, nh, hd}, elementType), x);
  return create<TransposeOp>(split, ArrayRef<int64_t>{0, 2, 1, 3});
}

Value ModelBuilder::mergeHeads(Value x) {
  Value merged = create<TransposeOp>(x, ArrayRef<int64_t>{0, 2, 1, 3});
  return create<ReshapeOp>(
      RankedTensorType::get({config.batch, config.seq, config.hidden},
                            elementType),
      merged);
}

Value ModelBuilder::meanCrossEntropy(Value logits, Value targets,
                                     int64_t classes) {
  Type lossType = getLossElementType();
  auto logitsType = cast<RankedTensorType>(logits.getType());
  if (logitsType.getElementType() != lossType)
    logits = create<CastOp>(logitsType.clone(lossType), logits);
  IntegerAttr classesAttr;
  if (classes != logitsType.getShape().back())
    classesAttr = builder.getI64IntegerAttr(classes);
  Value perToken = create<CrossEntropyOp>(
      RankedTensorType::get(
          cast<RankedTensorType>(targets.getType()).getShape(), lossType),
      logits, targets, classesAttr);
  auto rank = cast<RankedTensorType>(perToken.getType()).getRank();
  SmallVector<int64_t> dims = llvm::to_vector(llvm::seq<int64_t>(0, rank));
  return create<ReduceMeanOp>(perToken, dims);
}

func::FuncOp ModelBuilder::finish(Value loss) {
  func::ReturnOp::create(builder, location, loss);
  function.setType(
      builder.getFunctionType(body->getArgumentTypes(), {loss.getType()}));
  // All argument attributes at once: setting them one by one rebuilds the
  // whole list each time, quadratic in the parameters.
  SmallVector<DictionaryAttr> argAttrs(body->getNumArguments());
  for (const Parameter &param : params)
    argAttrs[param.index] = builder.getDictionaryAttr(
        {builder.getNamedAttr(CleaveDialect::kParamAttrName,
                              builder.getStringAttr(param.name)),
         builder.getNamedAttr(CleaveDialect::kInitAttrName, param.init)});
  for (auto [offset, input] : llvm::enumerate(inputs))
    argAttrs[numParams + offset] = builder.getDictionaryAttr(
        {builder.getNamedAttr(CleaveDialect::kInputAttrName,
                              builder.getStringAttr(input.first)),
         builder.getNamedAttr(
             CleaveDialect::kInputRoleAttrName,
             InputRoleAttr::get(builder.getContext(), input.second))});
  function.setAllArgAttrs(argAttrs);
  setFunctionRole(function, FunctionRole::Forward);
  return function;
}

func::FuncOp mlir::cleave::buildModel(ModuleOp module,
                                      const ModelConfig &config) {
  module.getContext()->loadDialect<CleaveDialect, func::FuncDialect>();
  ModelBuilder b(module, config);
  Value loss;
  switch (config.family) {
  case ModelFamily::Gpt:
    loss = buildGptLoss(b);
    break;
  case ModelFamily::Llama:
    loss = buildLlamaLoss(b);
    break;
  case ModelFamily::Mlp:
    loss = buildMlpLoss(b);
    break;
  }
  return b.finish(loss);
}
