//===- HuggingFace.cpp - Hugging Face checkpoints in and out --------------===//

#include "cleave/Import/HuggingFace.h"

#include "cleave/Dialect/Cleave/IR/CleaveDialect.h"

#include "cleave/runtime/Checkpoint.h"
#include "cleave/runtime/DType.h"
#include "cleave/runtime/Safetensors.h"

#include "llvm/ADT/STLExtras.h"
#include "llvm/ADT/StringMap.h"
#include "llvm/Support/FileSystem.h"
#include "llvm/Support/Format.h"
#include "llvm/Support/FormatVariadic.h"
#include "llvm/Support/JSON.h"
#include "llvm/Support/MemoryBuffer.h"
#include "llvm/Support/Path.h"

#include <cmath>
#include <map>
#include <memory>
#include <set>

using namespace mlir;
using namespace mlir::cleave;
using namespace mlir::cleave::hf;
using llvm::StringRef;

namespace rt = ::cleave::rt;

namespace {

llvm::Error makeError(const llvm::Twine &message) {
  return llvm::createStringError(llvm::inconvertibleErrorCode(), message);
}

//===----------------------------------------------------------------------===//
// config.json
//===----------------------------------------------------------------------===//

/// Reads the fields of one config.json, each error naming the field.
class ConfigReader {
public:
  ConfigReader(const llvm::json::Object &object, std::string path)
      : object(object), path(std::move(path)) {}

  /// The field's value; null when it is absent or null (transformers'
  /// default then applies).
  const llvm::json::Value *getGiven(StringRef key) const {
    const llvm::json::Value *value = object.get(key);
    return value && value->kind() != llvm::json::Value::Null ? value : nullptr;
  }

  /// A positive integer field; `fallback` when absent or null (none: the
  /// field is required).
  llvm::Expected<int64_t> getSize(StringRef key,
                                  std::optional<int64_t> fallback = {}) {
    const llvm::json::Value *value = getGiven(key);
    if (!value) {
      if (fallback)
        return *fallback;
      return fail(key, "is missing");
    }
    std::optional<int64_t> number = value->getAsInteger();
    if (!number || *number < 1 || *number >= (int64_t(1) << 31))
      return fail(key, "must be an integer in [1, 2^31)");
    return *number;
  }

  /// getSize() into `field`.
  llvm::Error readSize(StringRef key, int64_t &field,
                       std::optional<int64_t> fallback = {}) {
    llvm::Expected<int64_t> value = getSize(key, fallback);
    if (!value)
      return value.takeError();
    field = *value;
    return llvm::Error::success();
  }

  llvm::Expected<double> getNumber(StringRef key, double fallback) {
    const llvm::json::Value *value = getGiven(key);
    if (!value)
      return fallback;
    std::optional<double> number = value->getAsNumber();
    if (!number || !std::isfinite(*number))
      return fail(key, "must be a finite number");
    return *number;
  }

  llvm::Expected<bool> getBool(StringRef key, bool fallback) {
    const llvm::json::Value *value = getGiven(key);
    if (!value)
      return fallback;
    std::optional<bool> flag = value->getAsBoolean();
    if (!flag)
      return fail(key, "must be true or false");
    return *flag;
  }

  std::optional<std::string> getString(StringRef key) {
    if (std::optional<StringRef> text = object.getString(key))
      return text->str();
    return std::nullopt;
  }

  /// Refuses `key` unless it is absent, null or `expected`.
  llvm::Error expectBool(StringRef key, bool expected, StringRef why) {
    llvm::Expected<bool> flag = getBool(key, expected);
    if (!flag)
      return flag.takeError();
    if (*flag != expected)
      return fail(key, llvm::Twine("= ") + (*flag ? "true" : "false") +
                           " is not supported: " + why);
    return llvm::Error::success();
  }

  /// Notes a dropout probability: Cleave trains without dropout.
  llvm::Error noteDropout(StringRef key, std::vector<std::string> &notes) {
    llvm::Expected<double> probability = getNumber(key, 0.0);
    if (!probability)
      return probability.takeError();
    if (*probability != 0.0) {
      std::string note;
      llvm::raw_string_ostream os(note);
      os << key << " = " << llvm::format("%g", *probability)
         << " is ignored: Cleave trains without dropout";
      notes.push_back(note);
    }
    return llvm::Error::success();
  }

  const llvm::json::Object &getObject() const { return object; }

  llvm::Error fail(StringRef key, const llvm::Twine &what) {
    return makeError(path + ": '" + key + "' " + what);
  }

private:
  const llvm::json::Object &object;
  std::string path;
};

/// The architecture of `config.json`: the causal LM class of its
/// `model_type`, as transformers chooses it, which `architectures` (when
/// given) must name; without a `model_type`, the first `architectures`.
llvm::Expected<std::string> getArchitecture(ConfigReader &reader) {
  const llvm::json::Object &object = reader.getObject();
  std::optional<std::string> named;
  if (const llvm::json::Array *list = object.getArray("architectures"))
    if (!list->empty())
      if (std::optional<StringRef> name = list->front().getAsString())
        named = name->str();
  std::optional<std::string> type = reader.getString("model_type");
  if (!type) {
    if (!named)
      return reader.fail("model_type", "is missing (and so is "
                                       "'architectures')");
    return *named;
  }
  std::string architecture = *type == "gpt2"      ? "GPT2LMHeadModel"
                             : *type == "llama"   ? "LlamaForCausalLM"
                             : *type == "mistral" ? "MistralForCausalLM"
                                                  : "";
  if (architecture.empty())
    return reader.fail("model_type",
                       "= '" + *type +
                           "' is not supported (supported: gpt2, llama, "
                           "mistral)");
  if (named && *named != architecture)
    return reader.fail("architectures",
                       "names '" + *named + "', but model_type '" + *type +
                           "' is transformers' " + architecture);
  return architecture;
}

/// The chosen sequence length: at most the model's positions.
llvm::Expected<int64_t> chooseSequence(ConfigReader &reader, StringRef key,
                                       int64_t positions,
                                       const ImportOptions &options) {
  int64_t seq = options.seq.value_or(positions);
  if (seq < 1)
    return makeError("--seq must be positive");
  if (seq > positions && options.checkSequence)
    return reader.fail(key, llvm::formatv("is {0}: the sequence length {1} "
                                          "does not fit",
                                          positions, seq));
  return seq;
}

/// Adds the mappings of a [rows, columns] matrix or a vector.
struct MappingTable {
  std::vector<TensorMapping> &mappings;

  void add(std::string cleave, std::string hf, std::vector<int64_t> hfShape,
           bool transpose = false, std::vector<int64_t> offsets = {}) {
    if (offsets.empty())
      offsets.assign(hfShape.size(), 0);
    mappings.push_back({std::move(cleave), std::move(hf), std::move(hfShape),
                        transpose, std::move(offsets), false, false});
  }
  /// A vocabulary table: Cleave's may be padded past it.
  void addVocabulary(std::string cleave, std::string hf,
                     std::vector<int64_t> hfShape, bool transpose = false) {
    add(std::move(cleave), std::move(hf), std::move(hfShape), transpose);
    mappings.back().padded = true;
  }
};

llvm::Error readGpt2(ConfigReader &reader, const ImportOptions &options,
                     HuggingFaceModel &model) {
  ModelConfig &config = model.config;
  config.family = ModelFamily::Gpt;
  if (llvm::Error error = reader.readSize("n_embd", config.hidden))
    return error;
  if (llvm::Error error = reader.readSize("n_layer", config.layers))
    return error;
  if (llvm::Error error = reader.readSize("n_head", config.heads))
    return error;
  if (llvm::Error error = reader.readSize("vocab_size", config.vocab))
    return error;
  if (llvm::Error error =
          reader.readSize("n_inner", config.ffn, 4 * config.hidden))
    return error;
  int64_t positions = 0;
  if (llvm::Error error = reader.readSize("n_positions", positions, 1024))
    return error;
  llvm::Expected<int64_t> seq =
      chooseSequence(reader, "n_positions", positions, options);
  if (!seq)
    return seq.takeError();
  config.seq = *seq;
  llvm::Expected<double> epsilon = reader.getNumber("layer_norm_epsilon", 1e-5);
  if (!epsilon)
    return epsilon.takeError();
  config.normEpsilon = *epsilon;

  // Cleave's gelu is the tanh approximation, which these names all mean.
  std::string activation =
      reader.getString("activation_function").value_or("gelu_new");
  if (!llvm::is_contained({"gelu_new", "gelu_pytorch_tanh", "gelu_fast"},
                          activation))
    return reader.fail("activation_function",
                       "= '" + activation +
                           "' is not supported: Cleave's GPT-2 uses the tanh "
                           "GELU (gelu_new)");
  if (llvm::Error error = reader.expectBool(
          "scale_attn_weights", true, "Cleave scales scores by 1/sqrt(D)"))
    return error;
  if (llvm::Error error =
          reader.expectBool("scale_attn_by_inverse_layer_idx", false,
                            "Cleave scales every layer's scores alike"))
    return error;
  if (llvm::Error error = reader.expectBool("add_cross_attention", false,
                                            "Cleave's GPT-2 is a decoder only"))
    return error;
  if (llvm::Error error = reader.expectBool(
          "tie_word_embeddings", true,
          "Cleave's GPT-2 ties its head to the token embedding"))
    return error;
  for (StringRef key : {"resid_pdrop", "embd_pdrop", "attn_pdrop"})
    if (llvm::Error error = reader.noteDropout(key, model.notes))
      return error;

  int64_t h = config.hidden, f = config.ffn, v = config.vocab;
  MappingTable table{model.mappings};
  table.addVocabulary("embed.tokens", "transformer.wte.weight", {v, h});
  table.add("embed.positions", "transformer.wpe.weight", {positions, h});
  for (int64_t layer = 0; layer < config.layers; ++layer) {
    std::string cleave = "layers." + std::to_string(layer) + ".";
    std::string hf = "transformer.h." + std::to_string(layer) + ".";
    table.add(cleave + "ln1.scale", hf + "ln_1.weight", {h});
    table.add(cleave + "ln1.bias", hf + "ln_1.bias", {h});
    // Conv1D weights are [in, out]; c_attn's columns are q, k, v.
    const char *parts[] = {"q", "k", "v"};
    for (int64_t part = 0; part < 3; ++part) {
      table.add(cleave + "attn." + parts[part] + ".weight",
                hf + "attn.c_attn.weight", {h, 3 * h}, false, {0, part * h});
      table.add(cleave + "attn." + parts[part] + ".bias",
                hf + "attn.c_attn.bias", {3 * h}, false, {part * h});
    }
    table.add(cleave + "attn.out.weight", hf + "attn.c_proj.weight", {h, h});
    table.add(cleave + "attn.out.bias", hf + "attn.c_proj.bias", {h});
    table.add(cleave + "ln2.scale", hf + "ln_2.weight", {h});
    table.add(cleave + "ln2.bias", hf + "ln_2.bias", {h});
    table.add(cleave + "mlp.fc.weight", hf + "mlp.c_fc.weight", {h, f});
    table.add(cleave + "mlp.fc.bias", hf + "mlp.c_fc.bias", {f});
    table.add(cleave + "mlp.proj.weight", hf + "mlp.c_proj.weight", {f, h});
    table.add(cleave + "mlp.proj.bias", hf + "mlp.c_proj.bias", {h});
  }
  table.add("final_norm.scale", "transformer.ln_f.weight", {h});
  table.add("final_norm.bias", "transformer.ln_f.bias", {h});
  // The tied head, when a checkpoint repeats it.
  table.addVocabulary("embed.tokens", "lm_head.weight", {v, h});
  model.mappings.back().exportOnly = true;
  return llvm::Error::success();
}

llvm::Error readRopeScaling(ConfigReader &reader, ModelConfig &config) {
  const llvm::json::Value *value = reader.getGiven("rope_scaling");
  if (!value)
    return llvm::Error::success();
  const llvm::json::Object *scaling = value->getAsObject();
  if (!scaling)
    return reader.fail("rope_scaling", "must be an object or null");
  // transformers copies a legacy `type` over `rope_type`.
  std::optional<StringRef> type = scaling->getString("type");
  std::optional<StringRef> ropeType = scaling->getString("rope_type");
  if (type && ropeType && *type != *ropeType)
    return reader.fail("rope_scaling",
                       "has type '" + type->str() + "' and rope_type '" +
                           ropeType->str() + "', which disagree");
  if (!type)
    type = ropeType;
  if (type && *type == "default")
    return llvm::Error::success();
  if (!type || *type != "llama3")
    return reader.fail("rope_scaling",
                       "of type '" + (type ? type->str() : std::string()) +
                           "' is not supported (supported: llama3, default)");
  ModelConfig::RopeScaling &rope = config.ropeScaling;
  auto number = [&](StringRef key, double &field) -> llvm::Error {
    const llvm::json::Value *entry = scaling->get(key);
    std::optional<double> parsed = entry ? entry->getAsNumber() : std::nullopt;
    if (!parsed || !std::isfinite(*parsed))
      return reader.fail("rope_scaling",
                         "needs a finite number '" + key + "' (llama3)");
    field = *parsed;
    return llvm::Error::success();
  };
  double original = 0;
  if (llvm::Error error = number("factor", rope.factor))
    return error;
  if (llvm::Error error = number("low_freq_factor", rope.lowFreqFactor))
    return error;
  if (llvm::Error error = number("high_freq_factor", rope.highFreqFactor))
    return error;
  if (llvm::Error error = number("original_max_position_embeddings", original))
    return error;
  if (!(rope.factor > 0) || !(rope.lowFreqFactor > 0) ||
      !(rope.highFreqFactor > rope.lowFreqFactor) || !(original >= 1) ||
      original != std::floor(original) || original >= 0x1p62)
    return reader.fail("rope_scaling",
                       "needs factor > 0, 0 < low_freq_factor < "
                       "high_freq_factor and a positive integer "
                       "original_max_position_embeddings");
  rope.originalMaxPositions = static_cast<int64_t>(original);
  return llvm::Error::success();
}

llvm::Error readLlama(ConfigReader &reader, const ImportOptions &options,
                      bool mistral, HuggingFaceModel &model) {
  ModelConfig &config = model.config;
  config.family = ModelFamily::Llama;
  if (llvm::Error error = reader.readSize("hidden_size", config.hidden))
    return error;
  if (llvm::Error error = reader.readSize("num_hidden_layers", config.layers))
    return error;
  if (llvm::Error error = reader.readSize("num_attention_heads", config.heads))
    return error;
  if (llvm::Error error =
          reader.readSize("num_key_value_heads", config.kvHeads, config.heads))
    return error;
  if (llvm::Error error = reader.readSize("intermediate_size", config.ffn))
    return error;
  if (llvm::Error error = reader.readSize("vocab_size", config.vocab))
    return error;
  if (config.hidden % config.heads != 0)
    return reader.fail("num_attention_heads",
                       llvm::formatv("({0}) must divide hidden_size ({1})",
                                     config.heads, config.hidden));
  if (config.heads % config.kvHeads != 0)
    return reader.fail("num_key_value_heads",
                       llvm::formatv("({0}) must divide num_attention_heads "
                                     "({1})",
                                     config.kvHeads, config.heads));
  int64_t headSize = config.hidden / config.heads;
  llvm::Expected<int64_t> declaredHeadSize =
      reader.getSize("head_dim", headSize);
  if (!declaredHeadSize)
    return declaredHeadSize.takeError();
  if (*declaredHeadSize != headSize)
    return reader.fail("head_dim",
                       llvm::formatv("= {0} is not supported: Cleave's heads "
                                     "are hidden_size / num_attention_heads "
                                     "= {1}",
                                     *declaredHeadSize, headSize));
  int64_t positions = 0;
  // transformers' defaults: 2048 for Llama, 4096 * 32 for Mistral.
  if (llvm::Error error = reader.readSize("max_position_embeddings", positions,
                                          mistral ? 131072 : 2048))
    return error;
  llvm::Expected<int64_t> seq =
      chooseSequence(reader, "max_position_embeddings", positions, options);
  if (!seq)
    return seq.takeError();
  config.seq = *seq;
  if (mistral && options.checkSequence) {
    // Absent means MistralConfig's default, 4096; null means no window.
    llvm::Expected<int64_t> window =
        reader.getObject().get("sliding_window") &&
                !reader.getGiven("sliding_window")
            ? llvm::Expected<int64_t>(*seq)
            : reader.getSize("sliding_window", 4096);
    if (!window)
      return window.takeError();
    if (*window < *seq)
      return reader.fail(
          "sliding_window",
          llvm::formatv("= {0} is shorter than the sequence length {1}: "
                        "Cleave's attention has no sliding window (choose "
                        "--seq {0} or less)",
                        *window, *seq));
  }
  llvm::Expected<double> epsilon = reader.getNumber("rms_norm_eps", 1e-6);
  if (!epsilon)
    return epsilon.takeError();
  config.normEpsilon = *epsilon;
  llvm::Expected<double> theta = reader.getNumber("rope_theta", 10000.0);
  if (!theta)
    return theta.takeError();
  config.ropeBase = *theta;
  if (llvm::Error error = readRopeScaling(reader, config))
    return error;
  // transformers' Mistral (4.46) builds its rotary embedding from the base
  // alone: a scaling there is ignored, so it would compute otherwise here.
  if (mistral && config.ropeScaling.factor != 0.0)
    return reader.fail("rope_scaling",
                       "is set, but transformers' Mistral ignores it; Cleave "
                       "does not guess which is meant");
  std::string activation = reader.getString("hidden_act").value_or("silu");
  if (activation != "silu")
    return reader.fail("hidden_act",
                       "= '" + activation +
                           "' is not supported: Cleave's gated MLP uses silu");
  if (llvm::Error error = reader.expectBool("attention_bias", false,
                                            "Cleave's projections have no "
                                            "bias"))
    return error;
  if (llvm::Error error = reader.expectBool(
          "mlp_bias", false, "Cleave's projections have no bias"))
    return error;
  if (llvm::Error error = reader.expectBool(
          "tie_word_embeddings", false, "Cleave's llama has a head of its own"))
    return error;
  if (llvm::Error error = reader.noteDropout("attention_dropout", model.notes))
    return error;

  int64_t h = config.hidden, f = config.ffn, v = config.vocab;
  int64_t kv = config.kvHeads * headSize;
  MappingTable table{model.mappings};
  table.addVocabulary("embed.tokens", "model.embed_tokens.weight", {v, h});
  for (int64_t layer = 0; layer < config.layers; ++layer) {
    std::string cleave = "layers." + std::to_string(layer) + ".";
    std::string hf = "model.layers." + std::to_string(layer) + ".";
    table.add(cleave + "attn_norm.scale", hf + "input_layernorm.weight", {h});
    // nn.Linear weights are [out, in].
    table.add(cleave + "attn.q.weight", hf + "self_attn.q_proj.weight", {h, h},
              true);
    table.add(cleave + "attn.k.weight", hf + "self_attn.k_proj.weight", {kv, h},
              true);
    table.add(cleave + "attn.v.weight", hf + "self_attn.v_proj.weight", {kv, h},
              true);
    table.add(cleave + "attn.o.weight", hf + "self_attn.o_proj.weight", {h, h},
              true);
    table.add(cleave + "mlp_norm.scale", hf + "post_attention_layernorm.weight",
              {h});
    table.add(cleave + "mlp.gate.weight", hf + "mlp.gate_proj.weight", {f, h},
              true);
    table.add(cleave + "mlp.up.weight", hf + "mlp.up_proj.weight", {f, h},
              true);
    table.add(cleave + "mlp.down.weight", hf + "mlp.down_proj.weight", {h, f},
              true);
  }
  table.add("final_norm.scale", "model.norm.weight", {h});
  table.addVocabulary("head.weight", "lm_head.weight", {v, h}, true);
  return llvm::Error::success();
}

//===----------------------------------------------------------------------===//
// Weights
//===----------------------------------------------------------------------===//

/// A Hugging Face model's weight files, opened as they are needed.
class HuggingFaceWeights {
public:
  static llvm::Expected<std::unique_ptr<HuggingFaceWeights>>
  open(StringRef dir) {
    auto weights = std::make_unique<HuggingFaceWeights>();
    weights->dir = dir.str();
    llvm::SmallString<256> single(dir), index(dir);
    llvm::sys::path::append(single, "model.safetensors");
    llvm::sys::path::append(index, "model.safetensors.index.json");
    if (llvm::sys::fs::exists(index)) {
      llvm::ErrorOr<std::unique_ptr<llvm::MemoryBuffer>> text =
          llvm::MemoryBuffer::getFile(index);
      if (!text)
        return makeError(index + ": " + text.getError().message());
      llvm::Expected<llvm::json::Value> json =
          llvm::json::parse((*text)->getBuffer());
      if (!json)
        return makeError(index + ": " + llvm::toString(json.takeError()));
      const llvm::json::Object *root = json->getAsObject();
      const llvm::json::Object *map =
          root ? root->getObject("weight_map") : nullptr;
      if (!map)
        return makeError(index + ": no 'weight_map' object");
      for (const auto &[name, file] : *map) {
        std::optional<StringRef> path = file.getAsString();
        // Files stay inside the model directory.
        if (!path || path->empty() || path->contains("..") ||
            llvm::sys::path::is_absolute(*path))
          return makeError(index + ": the file of '" + name.str() +
                           "' must be a relative path inside " + dir);
        weights->fileOf[name.str()] = path->str();
      }
      weights->indexPath = index.str().str();
      return std::move(weights);
    }
    if (!llvm::sys::fs::exists(single))
      return makeError(dir + ": no model.safetensors or "
                             "model.safetensors.index.json (only safetensors "
                             "weights are read)");
    const rt::SafetensorsReader *reader = nullptr;
    if (llvm::Error error = weights->getReader("model.safetensors", reader))
      return std::move(error);
    for (const rt::TensorInfo &tensor : reader->getTensors())
      weights->fileOf[tensor.name] = "model.safetensors";
    return std::move(weights);
  }

  /// Every tensor's name, as the files spell it.
  std::vector<std::string> getNames() const {
    std::vector<std::string> names;
    for (const auto &entry : fileOf)
      names.push_back(entry.first);
    return names;
  }

  /// The file's spelling of `canonical`: itself, or without the
  /// "transformer." / "model." prefix of a model saved without its head.
  std::optional<std::string> find(StringRef canonical) const {
    if (fileOf.count(canonical.str()))
      return canonical.str();
    for (StringRef prefix : {"transformer.", "model."})
      if (canonical.starts_with(prefix) &&
          fileOf.count(canonical.drop_front(prefix.size()).str()))
        return canonical.drop_front(prefix.size()).str();
    return std::nullopt;
  }

  /// The tensor `name` (as the files spell it), of any type.
  llvm::Error getRaw(const std::string &name, const rt::TensorInfo *&info,
                     const uint8_t *&data) {
    const rt::SafetensorsReader *reader = nullptr;
    if (llvm::Error error = getReader(fileOf.at(name), reader))
      return error;
    info = reader->find(name);
    if (!info)
      return makeError(reader->getPath() + ": no tensor '" + name +
                       "', which " + indexPath + " places there");
    data = reader->getData(*info);
    return llvm::Error::success();
  }

  /// The float tensor `name` (as the files spell it), checked against
  /// `shape`.
  llvm::Error get(const std::string &name, const std::vector<int64_t> &shape,
                  const rt::TensorInfo *&info, const uint8_t *&data) {
    if (llvm::Error error = getRaw(name, info, data))
      return error;
    llvm::SmallString<256> file(dir);
    llvm::sys::path::append(file, fileOf.at(name));
    if (!rt::isFloatDType(info->dtype))
      return makeError(file + ": tensor '" + name + "' is " +
                       rt::getDTypeName(info->dtype) +
                       "; weights must be F32, BF16, F16 or F64");
    if (info->shape != shape)
      return makeError(file + ": tensor '" + name + "' has shape " +
                       rt::formatShape(info->shape) +
                       ", but config.json implies " + rt::formatShape(shape));
    return llvm::Error::success();
  }

private:
  llvm::Error getReader(const std::string &file,
                        const rt::SafetensorsReader *&reader) {
    std::unique_ptr<rt::SafetensorsReader> &slot = readers[file];
    if (!slot) {
      llvm::SmallString<256> path(dir);
      llvm::sys::path::append(path, file);
      auto opened = std::make_unique<rt::SafetensorsReader>();
      rt::Status status =
          rt::SafetensorsReader::open(path.str().str(), *opened);
      if (!status.ok())
        return makeError(status.message());
      slot = std::move(opened);
    }
    reader = slot.get();
    return llvm::Error::success();
  }

  std::string dir;
  std::string indexPath = "the weights";
  std::map<std::string, std::string> fileOf;
  std::map<std::string, std::unique_ptr<rt::SafetensorsReader>> readers;
};

/// The strides of a row-major `shape`.
std::vector<int64_t> getStrides(const std::vector<int64_t> &shape) {
  std::vector<int64_t> strides(shape.size(), 1);
  for (size_t i = shape.size(); i-- > 1;)
    strides[i - 1] = strides[i] * shape[i];
  return strides;
}

/// The Cleave shape of `mapping` when its block is the whole tensor.
std::vector<int64_t> getWholeShape(const TensorMapping &mapping) {
  std::vector<int64_t> shape = mapping.hfShape;
  if (mapping.transpose)
    std::reverse(shape.begin(), shape.end());
  return shape;
}

/// Visits every element of the block `mapping` makes of its Hugging Face
/// tensor: `visit(cleaveIndex, hfIndex)`, both flat, row-major.
template <typename Visit>
void forEachMappedElement(const TensorMapping &mapping,
                          const std::vector<int64_t> &cleaveShape,
                          Visit visit) {
  // The strides of the (transposed) view the block is taken from.
  std::vector<int64_t> viewStrides = getStrides(mapping.hfShape);
  if (mapping.transpose)
    std::reverse(viewStrides.begin(), viewStrides.end());
  int64_t base = 0;
  for (size_t dim = 0; dim < cleaveShape.size(); ++dim)
    base += mapping.offsets[dim] * viewStrides[dim];
  // A padded vocabulary's extra entries lie past the view: none to visit.
  std::vector<int64_t> view = getWholeShape(mapping);
  std::optional<uint64_t> count = rt::getNumElements(cleaveShape);
  std::vector<int64_t> index(cleaveShape.size(), 0);
  for (uint64_t flat = 0; flat < count.value_or(0); ++flat) {
    int64_t hf = base;
    bool inside = true;
    for (size_t dim = 0; dim < index.size(); ++dim) {
      hf += index[dim] * viewStrides[dim];
      inside &= mapping.offsets[dim] + index[dim] < view[dim];
    }
    if (inside)
      visit(static_cast<int64_t>(flat), hf);
    for (size_t dim = index.size(); dim-- > 0;) {
      if (++index[dim] < cleaveShape[dim])
        break;
      index[dim] = 0;
    }
  }
}

/// Checks that the block of `cleaveShape` at the mapping's offsets lies in
/// the Hugging Face tensor.
llvm::Error checkBlock(const TensorMapping &mapping,
                       const std::vector<int64_t> &cleaveShape) {
  std::vector<int64_t> view = getWholeShape(mapping);
  bool fits = view.size() == cleaveShape.size();
  // A padded vocabulary covers the whole table and more.
  for (size_t dim = 0; fits && dim < view.size(); ++dim)
    fits = mapping.padded
               ? mapping.offsets[dim] == 0 && cleaveShape[dim] >= view[dim]
               : mapping.offsets[dim] + cleaveShape[dim] <= view[dim];
  if (!fits)
    return makeError("parameter '" + mapping.cleaveName + "' of shape " +
                     rt::formatShape(cleaveShape) + " does not fit in '" +
                     mapping.hfName + "' of shape " +
                     rt::formatShape(mapping.hfShape));
  return llvm::Error::success();
}

llvm::Expected<rt::DType> parseCleaveDType(StringRef dtype) {
  if (dtype == "f64")
    return rt::DType::F64;
  if (dtype == "f32")
    return rt::DType::F32;
  if (dtype == "bf16")
    return rt::DType::BF16;
  if (dtype == "f16")
    return rt::DType::F16;
  return makeError("dtype must be one of f64, f32, bf16, f16, got '" + dtype +
                   "'");
}

/// The shape of every parameter the model builder makes for `config`.
std::map<std::string, std::vector<int64_t>>
getParameterShapes(const ModelConfig &config) {
  MLIRContext context;
  OwningOpRef<ModuleOp> module = ModuleOp::create(UnknownLoc::get(&context));
  func::FuncOp forward = buildModel(*module, config);
  std::map<std::string, std::vector<int64_t>> shapes;
  for (unsigned i = 0; i < forward.getNumArguments(); ++i)
    if (auto name = forward.getArgAttrOfType<StringAttr>(
            i, CleaveDialect::kParamAttrName)) {
      auto type = cast<RankedTensorType>(forward.getArgument(i).getType());
      shapes[name.str()] =
          std::vector<int64_t>(type.getShape().begin(), type.getShape().end());
    }
  return shapes;
}

} // namespace

bool HuggingFaceModel::isIgnorable(StringRef name) const {
  // Attention masks (GPT-2) and rotary frequencies (older Llamas) are
  // buffers that some checkpoints carry.
  if (name.ends_with(".attn.bias") || name.ends_with(".attn.masked_bias") ||
      name.ends_with(".rotary_emb.inv_freq"))
    return true;
  return llvm::any_of(mappings, [&](const TensorMapping &mapping) {
    return mapping.exportOnly &&
           (mapping.hfName == name ||
            StringRef(mapping.hfName).ends_with(("." + name).str()));
  });
}

llvm::Expected<HuggingFaceModel> hf::readConfig(StringRef dir,
                                                const ImportOptions &options) {
  llvm::SmallString<256> path(dir);
  llvm::sys::path::append(path, "config.json");
  llvm::ErrorOr<std::unique_ptr<llvm::MemoryBuffer>> text =
      llvm::MemoryBuffer::getFile(path);
  if (!text)
    return makeError(path + ": " + text.getError().message());
  llvm::Expected<llvm::json::Value> json =
      llvm::json::parse((*text)->getBuffer());
  if (!json)
    return makeError(path + ": " + llvm::toString(json.takeError()));
  const llvm::json::Object *object = json->getAsObject();
  if (!object)
    return makeError(path + ": not a JSON object");
  ConfigReader reader(*object, path.str().str());

  HuggingFaceModel model;
  llvm::Expected<std::string> architecture = getArchitecture(reader);
  if (!architecture)
    return architecture.takeError();
  model.architecture = *architecture;
  llvm::Error error = llvm::Error::success();
  if (model.architecture == "GPT2LMHeadModel")
    error = readGpt2(reader, options, model);
  else if (model.architecture == "LlamaForCausalLM")
    error = readLlama(reader, options, /*mistral=*/false, model);
  else if (model.architecture == "MistralForCausalLM")
    error = readLlama(reader, options, /*mistral=*/true, model);
  else
    error = reader.fail("architectures",
                        "names '" + model.architecture +
                            "', which is not supported (supported: "
                            "GPT2LMHeadModel, LlamaForCausalLM, "
                            "MistralForCausalLM)");
  if (error)
    return std::move(error);
  model.config.batch = options.batch.value_or(1);
  model.config.dtype = options.dtype;
  model.config.vocabMultiple = options.vocabMultiple;
  if (llvm::Error invalid = validateModelConfig(model.config))
    return makeError(path + ": " + llvm::toString(std::move(invalid)));
  return model;
}

llvm::Error hf::importWeights(StringRef dir, const HuggingFaceModel &model,
                              StringRef dtype, StringRef output) {
  llvm::Expected<rt::DType> target = parseCleaveDType(dtype);
  if (!target)
    return target.takeError();
  llvm::Expected<std::unique_ptr<HuggingFaceWeights>> weights =
      HuggingFaceWeights::open(dir);
  if (!weights)
    return weights.takeError();

  // The weights agree with the config before the model is built, which a
  // config of absurd sizes would make slow.
  struct Source {
    const rt::TensorInfo *info = nullptr;
    const uint8_t *data = nullptr;
  };
  std::vector<Source> sources(model.mappings.size());
  std::set<std::string> read;
  for (auto [mapping, source] : llvm::zip(model.mappings, sources)) {
    if (mapping.exportOnly)
      continue;
    std::optional<std::string> name = (*weights)->find(mapping.hfName);
    if (!name)
      return makeError(dir + ": the weights have no tensor '" + mapping.hfName +
                       "' (Cleave's '" + mapping.cleaveName + "')");
    if (llvm::Error error =
            (*weights)->get(*name, mapping.hfShape, source.info, source.data))
      return error;
    read.insert(*name);
  }

  std::map<std::string, std::vector<int64_t>> shapes =
      getParameterShapes(model.config);
  std::map<std::string, std::vector<uint8_t>> parameters;
  size_t elementBytes = rt::getDTypeSize(*target);
  for (auto [mapping, source] : llvm::zip(model.mappings, sources)) {
    if (mapping.exportOnly)
      continue;
    auto shape = shapes.find(mapping.cleaveName);
    if (shape == shapes.end())
      return makeError("internal: no parameter '" + mapping.cleaveName + "'");
    if (llvm::Error error = checkBlock(mapping, shape->second))
      return error;
    std::vector<uint8_t> &bytes = parameters[mapping.cleaveName];
    bytes.resize(rt::getNumElements(shape->second).value_or(0) * elementBytes);
    rt::DType from = source.info->dtype;
    size_t sourceBytes = rt::getDTypeSize(from);
    forEachMappedElement(mapping, shape->second, [&](int64_t to, int64_t at) {
      double value = 0;
      rt::readFloatElement(from, source.data + at * sourceBytes, value);
      rt::writeFloatElement(*target, value, bytes.data() + to * elementBytes);
    });
  }
  for (const std::string &name : (*weights)->getNames())
    if (!read.count(name) && !model.isIgnorable(name))
      return makeError(dir + ": tensor '" + name + "' is not a parameter of " +
                       model.architecture +
                       " as config.json describes it (a config field "
                       "Cleave does not model?)");

  rt::SafetensorsWriter writer;
  for (const auto &[name, shape] : shapes) {
    auto bytes = parameters.find(name);
    if (bytes == parameters.end())
      return makeError("internal: no Hugging Face tensor for '" + name + "'");
    rt::Status status = writer.add(name, *target, shape, bytes->second.data());
    if (!status.ok())
      return makeError(status.message());
  }
  writer.setMetadata("source", "Hugging Face " + model.architecture);
  rt::Status status = writer.write(output.str());
  if (!status.ok())
    return makeError(status.message());
  return llvm::Error::success();
}

llvm::Error hf::exportCheckpoint(StringRef checkpointDir, StringRef likeDir,
                                 StringRef outputDir) {
  // Copying DIR's files onto themselves would empty them.
  if (llvm::sys::fs::equivalent(outputDir, likeDir) ||
      llvm::sys::fs::equivalent(outputDir, checkpointDir))
    return makeError("-o " + outputDir +
                     " is the model or the checkpoint directory: export to "
                     "a new directory");
  rt::CheckpointReader checkpoint;
  rt::Status status =
      rt::CheckpointReader::open(checkpointDir.str(), checkpoint);
  if (!status.ok())
    return makeError(status.message());
  const rt::CheckpointIndex &index = checkpoint.getIndex();
  // The sequence length only sizes GPT-2's position block: take it from
  // the checkpoint.
  ImportOptions options;
  options.checkSequence = false;
  auto positions = index.tensors.find("embed.positions");
  if (positions != index.tensors.end() && !positions->second.shape.empty())
    options.seq = positions->second.shape.front();
  llvm::Expected<HuggingFaceModel> model = readConfig(likeDir, options);
  if (!model)
    return model.takeError();
  llvm::Expected<std::unique_ptr<HuggingFaceWeights>> weights =
      HuggingFaceWeights::open(likeDir);
  if (!weights)
    return weights.takeError();

  // Start from the model's own tensors (in their dtype), then write every
  // parameter's block over them.
  struct Output {
    rt::DType dtype;
    std::vector<int64_t> shape;
    std::vector<uint8_t> bytes;
  };
  std::map<std::string, Output> outputs;
  for (const std::string &name : (*weights)->getNames()) {
    const rt::TensorInfo *info = nullptr;
    const uint8_t *data = nullptr;
    if (llvm::Error error = (*weights)->getRaw(name, info, data))
      return error;
    outputs[name] = {info->dtype, info->shape,
                     std::vector<uint8_t>(data, data + info->getByteSize())};
  }
  for (const TensorMapping &mapping : model->mappings) {
    std::optional<std::string> name = (*weights)->find(mapping.hfName);
    if (!name) {
      if (mapping.exportOnly)
        continue;
      return makeError(likeDir + ": the weights have no tensor '" +
                       mapping.hfName + "' to write '" + mapping.cleaveName +
                       "' into");
    }
    Output &output = outputs[*name];
    const rt::TensorInfo *info = nullptr;
    const uint8_t *data = nullptr;
    if (llvm::Error error = (*weights)->get(*name, mapping.hfShape, info, data))
      return error;
    auto tensor = index.tensors.find(mapping.cleaveName);
    if (tensor == index.tensors.end())
      return makeError(checkpointDir + ": the checkpoint has no parameter '" +
                       mapping.cleaveName + "' (trained from another model?)");
    const std::vector<int64_t> &shape = tensor->second.shape;
    if (llvm::Error error = checkBlock(mapping, shape))
      return makeError(checkpointDir + ": " + llvm::toString(std::move(error)));
    rt::DType dtype = tensor->second.dtype;
    if (!rt::isFloatDType(dtype))
      return makeError(checkpointDir + ": parameter '" + mapping.cleaveName +
                       "' is not a float tensor");
    std::vector<uint8_t> parameter(rt::getNumElements(shape).value_or(0) *
                                   rt::getDTypeSize(dtype));
    rt::Box whole{std::vector<int64_t>(shape.size(), 0), shape};
    status = checkpoint.read(mapping.cleaveName, dtype, shape, whole,
                             parameter.data());
    if (!status.ok())
      return makeError(status.message());
    size_t from = rt::getDTypeSize(dtype), to = rt::getDTypeSize(output.dtype);
    forEachMappedElement(mapping, shape, [&](int64_t cleave, int64_t hf) {
      double value = 0;
      rt::readFloatElement(dtype, parameter.data() + cleave * from, value);
      rt::writeFloatElement(output.dtype, value, output.bytes.data() + hf * to);
    });
  }

  if (std::error_code error = llvm::sys::fs::create_directories(outputDir))
    return makeError(outputDir + ": " + error.message());
  rt::SafetensorsWriter writer;
  for (const auto &[name, output] : outputs) {
    status = writer.add(name, output.dtype, output.shape, output.bytes.data());
    if (!status.ok())
      return makeError(status.message());
  }
  // transformers reads only PyTorch-format safetensors.
  writer.setMetadata("format", "pt");
  llvm::SmallString<256> weightsPath(outputDir);
  llvm::sys::path::append(weightsPath, "model.safetensors");
  status = writer.write(weightsPath.str().str());
  if (!status.ok())
    return makeError(status.message());

  // The config, tokenizer and the rest come along; the weights do not.
  std::error_code error;
  for (llvm::sys::fs::directory_iterator entry(likeDir, error), end;
       entry != end && !error; entry.increment(error)) {
    StringRef file = llvm::sys::path::filename(entry->path());
    if (file.ends_with(".safetensors") ||
        file == "model.safetensors.index.json" || file.ends_with(".bin") ||
        file.ends_with(".pt") || file.ends_with(".pth") ||
        !llvm::sys::fs::is_regular_file(entry->path()))
      continue;
    llvm::SmallString<256> target(outputDir);
    llvm::sys::path::append(target, file);
    if (std::error_code copyError =
            llvm::sys::fs::copy_file(entry->path(), target))
      return makeError(target + ": " + copyError.message());
  }
  if (error)
    return makeError(likeDir + ": " + error.message());
  return llvm::Error::success();
}
