//===- cleave-models.cpp - Emit reference models as cleave IR -------------===//
//
//   cleave-models gpt --preset gpt2-small --batch 8 > gpt2.mlir
//   cleave-models llama --layers 2 --hidden 64 --heads 4 --seq 16
//   cleave-models mlp --layers 3 --hidden 128 --vocab 10
//
//===----------------------------------------------------------------------===//

#include "cleave/Dialect/Cleave/IR/CleaveDialect.h"
#include "cleave/Models/Models.h"

#include "mlir/Dialect/Func/IR/FuncOps.h"
#include "mlir/IR/MLIRContext.h"
#include "mlir/IR/Verifier.h"
#include "mlir/Support/FileUtilities.h"
#include "llvm/Support/CommandLine.h"
#include "llvm/Support/InitLLVM.h"
#include "llvm/Support/ToolOutputFile.h"
#include "llvm/Support/WithColor.h"

#include <cmath>

using namespace mlir;
using namespace mlir::cleave;
namespace cl = llvm::cl;

static cl::OptionCategory category("Model options");

static cl::opt<std::string> family(cl::Positional, cl::Required,
                                   cl::desc("<gpt|llama|mlp>"),
                                   cl::cat(category));
static cl::opt<std::string>
    preset("preset",
           cl::desc("Start from a published configuration: gpt2-small, "
                    "gpt2-medium, gpt2-large, gpt2-xl, gpt3-175b (gpt), "
                    "llama2-7b, llama3-8b, llama3-70b, llama3.1-405b, "
                    "mistral-7b (llama); other flags override it"),
           cl::value_desc("name"), cl::cat(category));
static cl::opt<int64_t> layers("layers", cl::desc("Number of blocks (2)"),
                               cl::cat(category));
static cl::opt<int64_t> hidden("hidden", cl::desc("Model width (64)"),
                               cl::cat(category));
static cl::opt<int64_t> heads("heads",
                              cl::desc("Attention heads; must divide hidden "
                                       "(4)"),
                              cl::cat(category));
static cl::opt<int64_t>
    ffn("ffn",
        cl::desc("Feed-forward width (4*hidden for gpt and mlp, 8/3*hidden "
                 "rounded up to a multiple of 64 for llama)"),
        cl::cat(category));
static cl::opt<int64_t> seq("seq", cl::desc("Sequence length (16)"),
                            cl::cat(category));
static cl::opt<int64_t> vocab("vocab",
                              cl::desc("Vocabulary size, or classes for mlp "
                                       "(256)"),
                              cl::cat(category));
static cl::opt<int64_t> vocabMultiple(
    "vocab-multiple",
    cl::desc("gpt, llama: pad the token table and the logits to a multiple "
             "of this (128 suits GEMMs and tensor-parallel splits); the loss "
             "masks the padding classes (1: no padding)"),
    cl::cat(category));
static cl::opt<int64_t>
    batch("batch", cl::desc("Global batch of one optimizer step (1)"),
          cl::cat(category));
static cl::opt<std::string> dtype("dtype",
                                  cl::desc("Element type: f64, f32, bf16, f16 "
                                           "(f32)"),
                                  cl::cat(category));
static cl::opt<double> normEpsilon(
    "norm-eps",
    cl::desc("gpt, llama: epsilon of the layer and RMS norms (1e-5; Hugging "
             "Face's layer_norm_epsilon, rms_norm_eps)"),
    cl::cat(category));
static cl::opt<double> ropeTheta(
    "rope-theta",
    cl::desc("llama: base of the rotary embedding's frequencies (10000; "
             "Llama 3: 500000; Hugging Face's rope_theta)"),
    cl::cat(category));
static cl::opt<int64_t> kvHeads(
    "kv-heads",
    cl::desc("llama: key/value heads of grouped-query attention; must divide "
             "heads (as many as heads; Hugging Face's num_key_value_heads)"),
    cl::cat(category));
static cl::opt<std::string> ropeScaling(
    "rope-scaling",
    cl::desc("llama: Llama 3.1's rescaled rotary frequencies as "
             "FACTOR,LOW,HIGH,ORIGINAL (Hugging Face's rope_scaling of type "
             "llama3: factor, low_freq_factor, high_freq_factor, "
             "original_max_position_embeddings), e.g. 8,1,4,8192"),
    cl::value_desc("f,l,h,n"), cl::cat(category));
static cl::opt<std::string> outputFilename("o", cl::desc("Output file"),
                                           cl::value_desc("filename"),
                                           cl::init("-"), cl::cat(category));

static int fail(const llvm::Twine &message) {
  llvm::WithColor::error(llvm::errs(), "cleave-models") << message << "\n";
  return 1;
}

int main(int argc, char **argv) {
  llvm::InitLLVM init(argc, argv);
  cl::HideUnrelatedOptions(category);
  cl::ParseCommandLineOptions(argc, argv,
                              "Emit a reference model as cleave IR\n");

  std::optional<ModelFamily> parsedFamily = parseModelFamily(family);
  if (!parsedFamily)
    return fail("unknown model '" + family + "' (expected gpt, llama or mlp)");

  ModelConfig config;
  config.family = *parsedFamily;
  if (preset.getNumOccurrences())
    if (llvm::Error error = applyPreset(config, preset))
      return fail("--preset: " + llvm::toString(std::move(error)));

  // Flags given explicitly override the preset.
  auto override = [](const cl::opt<int64_t> &flag, int64_t &field) {
    if (flag.getNumOccurrences())
      field = flag;
  };
  override(layers, config.layers);
  override(hidden, config.hidden);
  override(heads, config.heads);
  // 0 is the family default inside the config; given, it is a size.
  if (ffn.getNumOccurrences() && ffn == 0)
    return fail("--ffn must be in [1, 2^31), got 0");
  override(ffn, config.ffn);
  override(seq, config.seq);
  override(vocab, config.vocab);
  override(vocabMultiple, config.vocabMultiple);
  override(batch, config.batch);
  if (dtype.getNumOccurrences())
    config.dtype = dtype;
  if (normEpsilon.getNumOccurrences()) {
    if (config.family == ModelFamily::Mlp)
      return fail("--norm-eps sets the norms of gpt and llama; mlp has none");
    config.normEpsilon = normEpsilon;
  }
  if (ropeTheta.getNumOccurrences()) {
    if (config.family != ModelFamily::Llama)
      return fail("--rope-theta sets llama's rotary embedding; " + family +
                  " has none");
    config.ropeBase = ropeTheta;
  }

  if (kvHeads.getNumOccurrences()) {
    if (config.family != ModelFamily::Llama)
      return fail("--kv-heads sets llama's grouped-query attention; " + family +
                  " has none");
    config.kvHeads = kvHeads;
  }
  if (ropeScaling.getNumOccurrences()) {
    if (config.family != ModelFamily::Llama)
      return fail("--rope-scaling sets llama's rotary embedding; " + family +
                  " has none");
    SmallVector<StringRef> parts;
    StringRef(ropeScaling).split(parts, ',');
    ModelConfig::RopeScaling &scaling = config.ropeScaling;
    double original = 0;
    if (parts.size() != 4 || parts[0].trim().getAsDouble(scaling.factor) ||
        parts[1].trim().getAsDouble(scaling.lowFreqFactor) ||
        parts[2].trim().getAsDouble(scaling.highFreqFactor) ||
        parts[3].trim().getAsDouble(original) ||
        original != std::floor(original) ||
        !(original >= 1 && original < 0x1p62))
      return fail("--rope-scaling takes FACTOR,LOW,HIGH,ORIGINAL (four "
                  "numbers, ORIGINAL a positive integer), got '" +
                  ropeScaling + "'");
    if (!(scaling.factor > 0.0))
      return fail("--rope-scaling: the factor must be positive");
    scaling.originalMaxPositions = static_cast<int64_t>(original);
  }

  if (llvm::Error error = validateModelConfig(config))
    return fail("invalid " + family + " configuration: " +
                llvm::toString(std::move(error)));

  MLIRContext context;
  context.loadDialect<CleaveDialect, func::FuncDialect>();
  OwningOpRef<ModuleOp> module = ModuleOp::create(UnknownLoc::get(&context));
  buildModel(*module, config);
  if (failed(verify(*module)))
    return fail("the generated model does not verify");

  std::string errorMessage;
  auto output = openOutputFile(outputFilename, &errorMessage);
  if (!output)
    return fail(errorMessage);
  module->print(output->os());
  output->os() << "\n";
  output->keep();
  return 0;
}
