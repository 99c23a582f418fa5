//===- HuggingFace.h - Hugging Face checkpoints in and out ------*- C++ -*-===//
//
// Reads a Hugging Face model directory (config.json and its safetensors
// weights, one file or a sharded index) of GPT2LMHeadModel,
// LlamaForCausalLM or MistralForCausalLM into a cleave-models
// configuration and Cleave's parameters, and writes a trained Cleave
// checkpoint back as such a directory. One table per architecture says
// which block of which Hugging Face tensor each Cleave parameter is, so
// that import and export are each other's inverse.
//
//===----------------------------------------------------------------------===//

#ifndef CLEAVE_IMPORT_HUGGINGFACE_H
#define CLEAVE_IMPORT_HUGGINGFACE_H

#include "cleave/Models/Models.h"

#include "llvm/ADT/StringRef.h"
#include "llvm/Support/Error.h"

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

namespace mlir::cleave::hf {

struct ImportOptions {
  /// The global batch of the imported model (1 when unset).
  std::optional<int64_t> batch;
  /// The sequence length (the config's maximum positions when unset).
  std::optional<int64_t> seq;
  /// The element type of the model and of the written parameters.
  std::string dtype = "f32";
  /// Pads the vocabulary to a multiple of this (cleave-models'
  /// --vocab-multiple): the padding rows start at zero and the loss masks
  /// them.
  int64_t vocabMultiple = 1;
  /// Whether the sequence must fit the positions and a sliding window
  /// (export, which reads no sequence, skips it).
  bool checkSequence = true;
};

/// One Cleave parameter as a block of a Hugging Face tensor: the tensor
/// (transposed first when `transpose`: nn.Linear's [out, in] against
/// Cleave's [in, out]) at `offsets`, the parameter's shape.
struct TensorMapping {
  std::string cleaveName;
  std::string hfName;
  /// The Hugging Face tensor's shape, as the config implies it.
  std::vector<int64_t> hfShape;
  bool transpose = false;
  std::vector<int64_t> offsets;
  /// Written on export only (a tied head that the checkpoint may repeat).
  bool exportOnly = false;
  /// A vocabulary table, which Cleave's padded vocabulary may extend past
  /// the tensor: those entries are zero on import and dropped on export.
  bool padded = false;
};

struct HuggingFaceModel {
  /// As config.json names it, e.g. "LlamaForCausalLM".
  std::string architecture;
  ModelConfig config;
  std::vector<TensorMapping> mappings;
  /// Config fields read but without effect on Cleave's computation, for
  /// the user to know (dropout: Cleave trains without it).
  std::vector<std::string> notes;

  /// Whether the checkpoint tensor `name` (its prefix-free name) is one
  /// Cleave may leave unread: buffers and a tied head.
  bool isIgnorable(llvm::StringRef name) const;
};

/// Reads DIR/config.json. Every field that changes what the model computes
/// is honoured or refused with an error naming it.
llvm::Expected<HuggingFaceModel> readConfig(llvm::StringRef dir,
                                            const ImportOptions &options);

/// Writes the parameters of `model`, read from DIR's weights, to `output`
/// (safetensors, Cleave's names and layouts, `dtype`). Every parameter must
/// be found with the shape the config implies, and every checkpoint tensor
/// must be a parameter (or a buffer); 16-bit and f64 weights convert.
llvm::Error importWeights(llvm::StringRef dir, const HuggingFaceModel &model,
                          llvm::StringRef dtype, llvm::StringRef output);

/// Writes the parameters of the Cleave checkpoint `checkpointDir` (any
/// mesh) as a Hugging Face directory `outputDir` like `likeDir`: its
/// config and other files copied, its weights replaced by the trained ones
/// in its own dtype, one model.safetensors.
llvm::Error exportCheckpoint(llvm::StringRef checkpointDir,
                             llvm::StringRef likeDir,
                             llvm::StringRef outputDir);

} // namespace mlir::cleave::hf

#endif // CLEAVE_IMPORT_HUGGINGFACE_H
