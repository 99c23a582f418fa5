//===- cleavec.cpp - The end-to-end Cleave driver -------------------------===//
//
//   cleavec build model.mlir --target cpu -o out/
//   cleavec build model.mlir --target cuda -o out/ --init-params p.safetensors
//
// Runs the emission pipeline, writes the CUDA C++ source, compiles and links
// it against libcleave_runtime into an executable, and reports each step.
//
//===----------------------------------------------------------------------===//

#include "InitParams.h"
#include "CleavecConfig.h"

#include "cleave/Dialect/Cleave/IR/CleaveDialect.h"
#include "cleave/Dialect/Cleave/Transforms/Passes.h"
#include "cleave/Target/Cuda/CudaEmitter.h"

#include "mlir/Dialect/Arith/IR/Arith.h"
#include "mlir/Dialect/Func/IR/FuncOps.h"
#include "mlir/Dialect/Tensor/IR/Tensor.h"
#include "mlir/IR/MLIRContext.h"
#include "mlir/IR/Verifier.h"
#include "mlir/Parser/Parser.h"
#include "mlir/Pass/PassManager.h"
#include "mlir/Support/FileUtilities.h"
#include "mlir/Transforms/Passes.h"
#include "llvm/Support/CommandLine.h"
#include "llvm/Support/FileSystem.h"
#include "llvm/Support/InitLLVM.h"
#include "llvm/Support/Path.h"
#include "llvm/Support/Program.h"
#include "llvm/Support/SourceMgr.h"
#include "llvm/Support/ToolOutputFile.h"
#include "llvm/Support/WithColor.h"

using namespace mlir;
using namespace mlir::cleave;
namespace cl = llvm::cl;

static cl::OptionCategory category("cleavec options");

static cl::list<std::string> positional(cl::Positional,
                                        cl::desc("build <model.mlir>"),
                                        cl::cat(category));
static cl::opt<std::string> target("target",
                                   cl::desc("Where the program runs: cpu "
                                            "(OpenMP + OpenBLAS) or cuda"),
                                   cl::init("cpu"), cl::cat(category));
static cl::opt<std::string> outputDir("o", cl::desc("Output directory"),
                                      cl::value_desc("dir"), cl::cat(category));
static cl::opt<std::string>
    initParams("init-params",
               cl::desc("Also write GPT-2 style initial parameters for the "
                        "entry function to this safetensors file"),
               cl::value_desc("file"), cl::cat(category));
static cl::opt<uint64_t> seed("seed",
                              cl::desc("Seed of --init-params (0)"),
                              cl::init(0), cl::cat(category));
static cl::opt<std::string> entry("entry",
                                  cl::desc("Function to build (default: the "
                                           "only one, or 'forward')"),
                                  cl::cat(category));
static cl::opt<std::string>
    cudaArchs("cuda-arch",
              cl::desc("Comma-separated GPU architectures for --target cuda"),
              cl::init("80,90"), cl::cat(category));
static cl::opt<bool> gradients(
    "gradients",
    cl::desc("Build the gradient program instead: cleave-autodiff's "
             "train_step, returning the loss and grad.<param> for each "
             "parameter"),
    cl::init(false), cl::cat(category));
static cl::opt<bool> emitOnly("emit-only",
                              cl::desc("Write the source and print the build "
                                       "command without running it"),
                              cl::init(false), cl::cat(category));

namespace {

llvm::raw_ostream &error() {
  return llvm::WithColor::error(llvm::errs(), "cleavec");
}

/// The compiler command line for `source` -> `executable`.
FailureOr<SmallVector<std::string>> getBuildCommand(StringRef source,
                                                     StringRef executable) {
  SmallVector<std::string> command;
  if (target == "cpu") {
    command = {CLEAVEC_CXX_COMPILER, "-O3", "-std=c++17", "-fopenmp",
               "-I" CLEAVEC_RUNTIME_INCLUDE_DIR, source.str(), "-o",
               executable.str(), CLEAVEC_RUNTIME_CPU_LIBRARY,
               CLEAVEC_RUNTIME_LIBRARY, CLEAVEC_OPENBLAS_LIBRARY,
               // The OpenMP OpenBLAS, not whichever the system default is.
               "-Wl,-rpath," CLEAVEC_OPENBLAS_DIR};
    return command;
  }
  if (StringRef(CLEAVEC_RUNTIME_CUDA_LIBRARY).empty()) {
    error() << "the CUDA backend was not built: nvcc was not found when the "
               "project was configured\n";
    return failure();
  }
  command = {CLEAVEC_NVCC, "-O3", "-std=c++17"};
  SmallVector<StringRef> archs;
  StringRef(cudaArchs).split(archs, ',', -1, false);
  for (StringRef arch : archs) {
    if (arch.empty() || !llvm::all_of(arch, llvm::isDigit)) {
      error() << "--cuda-arch wants numbers like 80,90, got '" << cudaArchs
              << "'\n";
      return failure();
    }
    command.push_back(("-gencode=arch=compute_" + arch + ",code=sm_" + arch).str());
  }
  command.insert(command.end(),
                 {"-I" CLEAVEC_RUNTIME_INCLUDE_DIR, source.str(), "-o",
                  executable.str(), CLEAVEC_RUNTIME_CUDA_LIBRARY,
                  CLEAVEC_RUNTIME_LIBRARY, "-lcublasLt", "-lcublas"});
  return command;
}

std::string joinCommand(ArrayRef<std::string> command) {
  std::string text;
  for (const std::string &word : command)
    text += (text.empty() ? "" : " ") + word;
  return text;
}

LogicalResult build(MLIRContext &context, StringRef modelPath) {
  if (target != "cpu" && target != "cuda") {
    error() << "--target must be cpu or cuda, got '" << target << "'\n";
    return failure();
  }
  if (outputDir.empty()) {
    error() << "missing -o <dir>\n";
    return failure();
  }

  llvm::SourceMgr sourceMgr;
  std::string message;
  auto file = openInputFile(modelPath, &message);
  if (!file) {
    error() << message << "\n";
    return failure();
  }
  sourceMgr.AddNewSourceBuffer(std::move(file), llvm::SMLoc());
  SourceMgrDiagnosticHandler diagnostics(sourceMgr, &context);
  OwningOpRef<ModuleOp> module = parseSourceFile<ModuleOp>(sourceMgr, &context);
  if (!module)
    return failure();

  PassManager pm(&context);
  std::string passes = "canonicalize, cse, ";
  pm.addPass(createCanonicalizerPass());
  pm.addPass(createCSEPass());
  if (gradients) {
    CleaveAutodiffOptions autodiff;
    if (!entry.empty())
      autodiff.function = entry;
    pm.addPass(createCleaveAutodiff(autodiff));
    passes += "cleave-autodiff, canonicalize, cse, ";
    pm.addPass(createCanonicalizerPass());
    pm.addPass(createCSEPass());
  }
  pm.addNestedPass<func::FuncOp>(createCleaveFuse());
  pm.addNestedPass<func::FuncOp>(createCleavePlanMemory());
  if (failed(pm.run(*module)))
    return failure();

  std::error_code ec = llvm::sys::fs::create_directories(outputDir);
  if (ec) {
    error() << "cannot create '" << outputDir << "': " << ec.message() << "\n";
    return failure();
  }
  StringRef stem = llvm::sys::path::stem(modelPath);
  SmallString<256> source(outputDir), executable(outputDir);
  llvm::sys::path::append(source, stem + (target == "cuda" ? ".cu" : ".cpp"));
  llvm::sys::path::append(executable, stem);

  CudaEmitterOptions options;
  options.entry = gradients ? std::string("train_step") : std::string(entry);
  CudaEmitterSummary summary;
  {
    auto output = openOutputFile(source, &message);
    if (!output) {
      error() << message << "\n";
      return failure();
    }
    if (failed(translateToCuda(*module, output->os(), options, &summary)))
      return failure();
    output->keep();
    // Closed here: the compiler reads the file next.
  }

  llvm::outs() << "cleavec: passes: " << passes
               << "cleave-fuse, cleave-plan-memory\n"
               << "cleavec: entry '" << summary.entry << "': "
               << summary.kernels << " fused kernels, " << summary.libraryCalls
               << " runtime calls, arena " << summary.arenaBytes << " bytes\n"
               << "cleavec: wrote " << source << "\n";

  if (!initParams.empty()) {
    auto function = module->lookupSymbol<func::FuncOp>(summary.entry);
    FailureOr<int64_t> count = writeInitialParams(function, initParams, seed);
    if (failed(count))
      return failure();
    llvm::outs() << "cleavec: wrote " << *count << " initial parameters (seed "
                 << seed << ") to " << initParams << "\n";
  }

  FailureOr<SmallVector<std::string>> command =
      getBuildCommand(source, executable);
  if (failed(command))
    return failure();
  llvm::outs() << "cleavec: build: " << joinCommand(*command) << "\n";
  if (emitOnly)
    return success();
  llvm::outs().flush();
  SmallVector<StringRef> args((*command).begin(), (*command).end());
  std::string executeError;
  int status = llvm::sys::ExecuteAndWait(args.front(), args, std::nullopt, {},
                                         0, 0, &executeError);
  if (status != 0) {
    error() << "the " << target << " build failed"
            << (executeError.empty() ? "" : ": " + executeError)
            << " (exit status " << status << ")\n";
    return failure();
  }
  llvm::outs() << "cleavec: built " << executable << "\n";
  return success();
}

} // namespace

int main(int argc, char **argv) {
  llvm::InitLLVM init(argc, argv);
  cl::HideUnrelatedOptions(category);
  cl::ParseCommandLineOptions(
      argc, argv,
      "Cleave end-to-end driver\n\n"
      "  cleavec build MODEL.mlir --target cpu|cuda -o DIR "
      "[--init-params FILE --seed N]\n");
  if (positional.empty() || positional[0] != "build") {
    error() << (positional.empty() ? std::string("missing command")
                                   : "unknown command '" + positional[0] + "'")
            << "; the command is 'build' (see --help)\n";
    return 1;
  }
  if (positional.size() != 2) {
    error() << "'build' takes one model file\n";
    return 1;
  }
  DialectRegistry registry;
  registry.insert<CleaveDialect, func::FuncDialect, arith::ArithDialect,
                  tensor::TensorDialect>();
  MLIRContext context(registry);
  return failed(build(context, positional[1])) ? 1 : 0;
}
