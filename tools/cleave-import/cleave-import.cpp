//===- cleave-import.cpp - Hugging Face models in as cleave IR ------------===//
//
//   cleave-import hf DIR [--batch B] [--seq S] [--dtype T]
//                 [--vocab-multiple N] -o OUT
//
// Writes OUT/model.mlir (the model as cleave-models builds it) and
// OUT/params.safetensors (its parameters, in Cleave's names and layouts),
// for `cleavec train OUT/model.mlir --init-from OUT/params.safetensors`.
//
//===----------------------------------------------------------------------===//

#include "cleave/Dialect/Cleave/IR/CleaveDialect.h"
#include "cleave/Import/HuggingFace.h"
#include "cleave/Models/Models.h"

#include "mlir/Dialect/Func/IR/FuncOps.h"
#include "mlir/IR/MLIRContext.h"
#include "mlir/IR/Verifier.h"
#include "mlir/Support/FileUtilities.h"
#include "llvm/Support/CommandLine.h"
#include "llvm/Support/FileSystem.h"
#include "llvm/Support/InitLLVM.h"
#include "llvm/Support/Path.h"
#include "llvm/Support/ToolOutputFile.h"
#include "llvm/Support/WithColor.h"

using namespace mlir;
using namespace mlir::cleave;
namespace cl = llvm::cl;

static cl::OptionCategory category("Import options");

static cl::opt<std::string> format(cl::Positional, cl::Required,
                                   cl::desc("<hf>"), cl::cat(category));
static cl::opt<std::string>
    inputDir(cl::Positional, cl::Required,
             cl::desc("<a Hugging Face model directory: config.json and "
                      "model.safetensors or model.safetensors.index.json>"),
             cl::cat(category));
static cl::opt<int64_t> batch("batch",
                              cl::desc("Global batch of one optimizer step "
                                       "(1)"),
                              cl::cat(category));
static cl::opt<int64_t>
    seq("seq",
        cl::desc("Sequence length; at most the config's positions "
                 "(max_position_embeddings, n_positions: the default)"),
        cl::cat(category));
static cl::opt<std::string>
    dtype("dtype",
          cl::desc("Element type of the model and the written parameters: "
                   "f64, f32, bf16, f16 (f32; the checkpoint's own "
                   "type converts)"),
          cl::init("f32"), cl::cat(category));
static cl::opt<int64_t> vocabMultiple(
    "vocab-multiple",
    cl::desc("Pad the vocabulary to a multiple of this, as cleave-models "
             "does (128 lets GPT-2's 50257 tokens split over tensor "
             "parallelism); the padding starts at zero, the loss masks it "
             "and export-hf drops it (1: no padding)"),
    cl::init(1), cl::cat(category));
static cl::opt<std::string>
    outputDir("o", cl::Required,
              cl::desc("Output directory: model.mlir and params.safetensors"),
              cl::value_desc("directory"), cl::cat(category));

static int fail(const llvm::Twine &message) {
  llvm::WithColor::error(llvm::errs(), "cleave-import") << message << "\n";
  return 1;
}

int main(int argc, char **argv) {
  llvm::InitLLVM init(argc, argv);
  cl::HideUnrelatedOptions(category);
  cl::ParseCommandLineOptions(
      argc, argv,
      "Import a Hugging Face GPT2LMHeadModel, LlamaForCausalLM or "
      "MistralForCausalLM as cleave IR and Cleave parameters\n");
  if (format != "hf")
    return fail("unknown format '" + format + "' (expected hf)");

  // The flags first, so that their errors name them.
  if (batch.getNumOccurrences() && (batch < 1 || batch >= (int64_t(1) << 31)))
    return fail("--batch must be in [1, 2^31)");
  if (seq.getNumOccurrences() && (seq < 1 || seq >= (int64_t(1) << 31)))
    return fail("--seq must be in [1, 2^31)");
  if (!llvm::is_contained({"f64", "f32", "bf16", "f16"}, dtype))
    return fail("--dtype must be one of f64, f32, bf16, f16, got '" + dtype +
                "'");
  if (vocabMultiple < 1 || vocabMultiple > (1 << 16))
    return fail("--vocab-multiple must be in [1, 65536]");
  hf::ImportOptions options;
  if (batch.getNumOccurrences())
    options.batch = batch;
  if (seq.getNumOccurrences())
    options.seq = seq;
  options.dtype = dtype;
  options.vocabMultiple = vocabMultiple;
  llvm::Expected<hf::HuggingFaceModel> model =
      hf::readConfig(inputDir, options);
  if (!model)
    return fail(llvm::toString(model.takeError()));
  for (const std::string &note : model->notes)
    llvm::WithColor::note(llvm::errs(), "cleave-import") << note << "\n";

  if (std::error_code error = llvm::sys::fs::create_directories(outputDir))
    return fail(outputDir + ": " + error.message());
  llvm::SmallString<256> paramsPath(outputDir), modelPath(outputDir);
  llvm::sys::path::append(paramsPath, "params.safetensors");
  llvm::sys::path::append(modelPath, "model.mlir");
  if (llvm::Error error =
          hf::importWeights(inputDir, *model, options.dtype, paramsPath))
    return fail(llvm::toString(std::move(error)));

  MLIRContext context;
  context.loadDialect<CleaveDialect, func::FuncDialect>();
  OwningOpRef<ModuleOp> module = ModuleOp::create(UnknownLoc::get(&context));
  buildModel(*module, model->config);
  if (failed(verify(*module)))
    return fail("the imported model does not verify");
  std::string errorMessage;
  auto output = openOutputFile(modelPath, &errorMessage);
  if (!output)
    return fail(errorMessage);
  module->print(output->os());
  output->os() << "\n";
  output->keep();

  const ModelConfig &config = model->config;
  llvm::outs() << "cleave-import: " << model->architecture << ": "
               << config.layers << " layers, hidden " << config.hidden << ", "
               << config.heads << " heads";
  if (config.getKvHeads() != config.heads)
    llvm::outs() << " (" << config.getKvHeads() << " key/value)";
  llvm::outs() << ", vocabulary " << config.vocab;
  if (config.getPaddedVocab() != config.vocab)
    llvm::outs() << " (padded to " << config.getPaddedVocab() << ")";
  llvm::outs() << ", sequence " << config.seq << ", batch " << config.batch
               << ", " << config.dtype << "\ncleave-import: wrote " << modelPath
               << " and " << paramsPath << "\n";
  return 0;
}
