//===- Models.h - Model builders --------------------------------*- C++ -*-===//
//
// Builds reference models (GPT-2, Llama, MLP) as `cleave` IR: one function
// `forward(params..., inputs...) -> loss` whose batch dimension is the global
// batch of one optimizer step.
//
//===----------------------------------------------------------------------===//

#ifndef CLEAVE_MODELS_MODELS_H
#define CLEAVE_MODELS_MODELS_H

#include "mlir/Dialect/Func/IR/FuncOps.h"
#include "mlir/IR/BuiltinOps.h"
#include "llvm/ADT/ArrayRef.h"
#include "llvm/ADT/StringRef.h"
#include "llvm/Support/Error.h"

#include <cstdint>
#include <optional>
#include <string>

namespace mlir::cleave {

enum class ModelFamily { Gpt, Llama, Mlp };

std::optional<ModelFamily> parseModelFamily(llvm::StringRef name);
llvm::StringRef getModelFamilyName(ModelFamily family);

/// Sizes of a model. `ffn == 0` means the family's default: 4 * hidden for
/// gpt and mlp, 8/3 * hidden rounded up to a multiple of 64 for llama.
struct ModelConfig {
  ModelFamily family = ModelFamily::Gpt;
  int64_t layers = 2;
  int64_t hidden = 64;
  int64_t heads = 4;
  int64_t ffn = 0;
  int64_t seq = 16;
  int64_t vocab = 256;
  /// gpt and llama: the token table's rows (and the logits' columns) are
  /// padded up to a multiple of this; the loss masks the padding classes
  /// (cross_entropy's `classes`), so the model trains as if unpadded.
  int64_t vocabMultiple = 1;
  int64_t batch = 1;
  /// Element type of parameters and activations: f64, f32, bf16 or f16. The
  /// loss is computed in f32 for 16-bit types (f64 for f64).
  std::string dtype = "f32";
  double normEpsilon = 1e-5;
  double ropeBase = 10000.0;
  /// llama: key/value heads (grouped-query attention); 0 means `heads`.
  int64_t kvHeads = 0;
  /// llama: Llama 3.1's rescaled rotary frequencies (#cleave.rope_scaling);
  /// a factor of 0 leaves them unscaled.
  struct RopeScaling {
    double factor = 0.0, lowFreqFactor = 1.0, highFreqFactor = 4.0;
    int64_t originalMaxPositions = 8192;
  } ropeScaling;

  /// The feed-forward size after applying the family default.
  int64_t getFfn() const;
  /// The key/value heads after applying the default (`heads`).
  int64_t getKvHeads() const { return kvHeads ? kvHeads : heads; }
  /// The vocabulary rounded up to a multiple of vocabMultiple.
  int64_t getPaddedVocab() const;
};

/// Names of the presets, e.g. gpt2-small.
llvm::ArrayRef<llvm::StringRef> getPresetNames();

/// Sets the sizes of `preset` in `config` (its family must match).
llvm::Error applyPreset(ModelConfig &config, llvm::StringRef preset);

/// Checks sizes and dtype; the message names the offending field.
llvm::Error validateModelConfig(const ModelConfig &config);

/// Builds `forward` at the end of `module`. `config` must be valid.
func::FuncOp buildModel(ModuleOp module, const ModelConfig &config);

} // namespace mlir::cleave

#endif // CLEAVE_MODELS_MODELS_H
